//! The public surface of the library crates: the enums that will grow are `#[non_exhaustive]`,
//! so that a new variant does not break the crates that match on them.

use std::path::{Path, PathBuf};

/// Errors and kinds whose variants will grow. Enums whose set is fixed by a protocol, the
/// schema or stored values (`Lifecycle`, `ProcessStatus`, `Target`, `Role`, `TokenOperation`,
/// `OutboxKind`, `FileStatus`, `Outcome`, …) stay exhaustive on purpose: a new value there needs
/// every match to decide what it means.
const GROWING: [&str; 15] = [
    "DomainError",
    "FormError",
    "EngineError",
    "DefinitionError",
    "StepKind",
    "FailureKind",
    "FieldKind",
    "ListItem",
    "GroupError",
    "ProvisionError",
    "RegistrationError",
    "MailError",
    "ApiError",
    "ServeError",
    "ErrorCode",
];

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            found.push((path, text));
        }
    }
}

#[test]
fn enums_that_will_grow_are_non_exhaustive() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates"),
        &mut files,
    );
    for name in GROWING {
        let declaration = format!("pub enum {name} {{");
        let declared: Vec<(&PathBuf, &str)> = files
            .iter()
            .filter_map(|(path, text)| text.find(&declaration).map(|at| (path, &text[..at])))
            .collect();
        assert_eq!(declared.len(), 1, "{name} is declared once: {declared:?}");
        let (path, before) = declared[0];
        // The doc comment and attributes right above the declaration.
        let non_exhaustive = before
            .lines()
            .rev()
            .map(str::trim)
            .take_while(|line| line.starts_with("#[") || line.starts_with("///"))
            .any(|line| line == "#[non_exhaustive]");
        assert!(
            non_exhaustive,
            "{name} in {} is not #[non_exhaustive]",
            path.display()
        );
    }
}
