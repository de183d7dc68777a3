//! The layering invariants of docs/ARCHITECTURE.md, checked against the real dependency graph.

use std::process::Command;

/// The names of every crate `package` depends on for normal builds, transitively.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_domain_has_no_database_and_no_async_runtime() {
    let dependencies = normal_dependencies("cadre-domain");
    assert!(
        dependencies.iter().any(|name| name == "uuid"),
        "the tree was read: {dependencies:?}"
    );
    for forbidden in ["sea-orm", "sea-query", "sqlx", "tokio", "axum"] {
        assert!(
            !dependencies.iter().any(|name| name == forbidden),
            "cadre-domain depends on {forbidden}"
        );
    }
}

#[test]
fn the_store_does_not_reach_up_into_other_layers() {
    let dependencies = normal_dependencies("cadre-store");
    assert!(dependencies.iter().any(|name| name == "sea-orm"));
    for forbidden in ["cadre-forms", "cadre-engine", "cadre-server", "axum"] {
        assert!(
            !dependencies.iter().any(|name| name == forbidden),
            "cadre-store depends on {forbidden}"
        );
    }
}

#[test]
fn the_forms_are_usable_alone() {
    let dependencies = normal_dependencies("cadre-forms");
    assert!(
        dependencies.iter().any(|name| name == "cadre-domain"),
        "the tree was read: {dependencies:?}"
    );
    for forbidden in [
        "sea-orm",
        "sqlx",
        "axum",
        "tokio",
        "cadre-store",
        "cadre-engine",
    ] {
        assert!(
            !dependencies.iter().any(|name| name == forbidden),
            "cadre-forms depends on {forbidden}"
        );
    }
}

/// The engine and the layers above it meet storage only through the domain: each names the
/// layer it builds on, and none pulls in a database or HTTP crate.
#[test]
fn the_engine_and_the_layers_on_it_meet_storage_only_through_the_domain() {
    for (package, builds_on) in [
        ("cadre-engine", "cadre-forms"),
        ("cadre-groups", "cadre-engine"),
        ("cadre-provisioning", "cadre-engine"),
        ("cadre-registration", "cadre-engine"),
    ] {
        let dependencies = normal_dependencies(package);
        assert!(
            dependencies.iter().any(|name| name == builds_on),
            "the tree of {package} was read: {dependencies:?}"
        );
        for forbidden in ["sea-orm", "sqlx", "axum", "cadre-store", "cadre-server"] {
            assert!(
                !dependencies.iter().any(|name| name == forbidden),
                "{package} depends on {forbidden}"
            );
        }
    }
}
