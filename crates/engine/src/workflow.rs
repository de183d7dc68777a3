//! Workflows and the registry of workflows an engine can run.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cadre_domain::{Lifecycle, ProductType, SubscriptionRecord, Target};

use crate::InputForm;
use crate::step::{StepKind, StepList};

/// A workflow: a named, versioned list of steps with an initial form.
#[derive(Clone)]
pub struct Workflow {
    /// Unique name, e.g. `create_user`.
    pub name: String,
    /// What it is for, shown to operators.
    pub description: String,
    /// What it does to subscriptions.
    pub target: Target,
    /// The product types it applies to (empty for tasks).
    pub product_types: Vec<ProductType>,
    /// The lifecycles a subscription must be in for the workflow to start on it (modify,
    /// terminate and validate workflows).
    pub usable_when: Vec<Lifecycle>,
    /// Version of the step list. Bump it when steps change meaning; processes record the version
    /// they started with and resume by step key.
    pub version: i64,
    /// The form a caller fills in to start the workflow.
    pub initial_form: Arc<dyn InputForm>,
    /// The steps, `init >> … >> done`.
    pub steps: StepList,
}

impl fmt::Debug for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workflow")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("version", &self.version)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// A workflow definition that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// Two workflows share a name.
    #[error("workflow {0:?} is registered twice")]
    DuplicateWorkflow(String),
    /// Two steps of one workflow share a key.
    #[error("workflow {workflow:?} has two steps with key {key:?}")]
    DuplicateStepKey {
        /// The workflow.
        workflow: String,
        /// The repeated key.
        key: String,
    },
    /// The step list does not start with `init` and end with `done`.
    #[error("workflow {0:?} must start with init and end with done")]
    Shape(String),
    /// A step group holds a step that cannot run inside one transaction.
    #[error(
        "workflow {workflow:?}: step group {group:?} may hold only plain and conditional steps"
    )]
    GroupContent {
        /// The workflow.
        workflow: String,
        /// The group's key.
        group: String,
    },
}

impl Workflow {
    /// Workflow `name` of `target` on subscriptions of `product_types` (none for a task), at
    /// version 1, starting on subscriptions in the lifecycles `target` implies: modify and
    /// validate need `active`; terminate `active`, `provisioning` or `disabled`; create and tasks
    /// start on none.
    pub fn new(
        name: &str,
        description: &str,
        target: Target,
        product_types: Vec<ProductType>,
        initial_form: Arc<dyn InputForm>,
        steps: StepList,
    ) -> Self {
        let usable_when = match target {
            Target::Modify | Target::Validate => vec![Lifecycle::Active],
            Target::Terminate => vec![
                Lifecycle::Active,
                Lifecycle::Provisioning,
                Lifecycle::Disabled,
            ],
            Target::Create | Target::System => Vec::new(),
        };
        Self {
            name: name.to_owned(),
            description: description.to_owned(),
            target,
            product_types,
            usable_when,
            version: 1,
            initial_form,
            steps,
        }
    }

    /// A description of the workflow as data: name, description, target, product types,
    /// lifecycles it starts in, version and step names. Workflow groups keep a copy.
    pub fn spec(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "target": self.target.to_string(),
            "product_types": self.product_types.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "usable_when": self.usable_when.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "version": self.version,
            "steps": self.steps.steps().iter().map(|step| step.name.clone()).collect::<Vec<_>>(),
        })
    }

    /// Why this workflow cannot start on `record` now, or `None` if it can: the subscription is of
    /// another product type, in a lifecycle the workflow does not allow, or (modify, terminate)
    /// held by another process.
    pub fn refusal(&self, record: &SubscriptionRecord) -> Option<String> {
        let subscription = &record.subscription;
        let id = subscription.id;
        let product_type = &record.product.product_type;
        if !self.product_types.is_empty() && !self.product_types.contains(product_type) {
            let wanted: Vec<&str> = self.product_types.iter().map(|t| t.as_str()).collect();
            return Some(format!(
                "subscription {id} is a {product_type}, not a {}",
                wanted.join(" or ")
            ));
        }
        if !self.usable_when.is_empty() && !self.usable_when.contains(&subscription.lifecycle) {
            let wanted: Vec<&str> = self.usable_when.iter().map(|l| l.as_str()).collect();
            return Some(format!(
                "subscription {id} is {}; {} needs it {}",
                subscription.lifecycle,
                self.name,
                wanted.join(" or ")
            ));
        }
        let exclusive = matches!(self.target, Target::Modify | Target::Terminate);
        if exclusive && !subscription.insync {
            return Some(format!("subscription {id} already has a running process"));
        }
        None
    }

    fn check(&self) -> Result<(), DefinitionError> {
        let steps = self.steps.steps();
        let starts = steps.first().is_some_and(|step| step.key == "init");
        let ends = steps
            .last()
            .is_some_and(|step| matches!(step.kind, StepKind::Done));
        if !starts || !ends {
            return Err(DefinitionError::Shape(self.name.clone()));
        }
        let mut keys = std::collections::HashSet::new();
        for step in steps {
            if !keys.insert(step.key.as_str()) {
                return Err(DefinitionError::DuplicateStepKey {
                    workflow: self.name.clone(),
                    key: step.key.clone(),
                });
            }
            if let StepKind::Group(members) = &step.kind {
                let runnable_in_one_transaction = members.iter().all(|member| {
                    matches!(member.kind, StepKind::Plain(_) | StepKind::Conditional(..))
                });
                if !runnable_in_one_transaction {
                    return Err(DefinitionError::GroupContent {
                        workflow: self.name.clone(),
                        group: step.key.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The workflows an engine knows, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    workflows: BTreeMap<String, Arc<Workflow>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `workflow`, checking its shape and step keys.
    pub fn register(&mut self, workflow: Workflow) -> Result<(), DefinitionError> {
        workflow.check()?;
        if self.workflows.contains_key(&workflow.name) {
            return Err(DefinitionError::DuplicateWorkflow(workflow.name));
        }
        self.workflows
            .insert(workflow.name.clone(), Arc::new(workflow));
        Ok(())
    }

    /// The workflow named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Workflow>> {
        self.workflows.get(name)
    }

    /// Every workflow, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Workflow>> {
        self.workflows.values()
    }
}
