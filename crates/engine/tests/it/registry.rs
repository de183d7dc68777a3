//! Workflow definitions are checked when registered.

use cadre_engine::{DefinitionError, Registry, done, init, step};

use crate::fixtures::{Touch, touch_twice, workflow};

#[test]
fn definitions_must_be_well_formed() {
    let mut registry = Registry::new();
    registry.register(touch_twice()).unwrap();
    assert_eq!(
        registry.register(touch_twice()),
        Err(DefinitionError::DuplicateWorkflow("touch_twice".to_owned()))
    );
    let duplicate_key = workflow(
        "dup",
        init() >> step("a", "A", Touch("a")) >> step("a", "A again", Touch("a")) >> done(),
    );
    assert_eq!(
        registry.register(duplicate_key),
        Err(DefinitionError::DuplicateStepKey {
            workflow: "dup".to_owned(),
            key: "a".to_owned()
        })
    );
    let no_done = workflow("no_done", init() >> step("a", "A", Touch("a")));
    assert_eq!(
        registry.register(no_done),
        Err(DefinitionError::Shape("no_done".to_owned()))
    );
    assert_eq!(registry.iter().count(), 1);
}
