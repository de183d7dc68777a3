//! The layering invariants of docs/ARCHITECTURE.md, checked against the real dependency graph.

use std::process::Command;

/// The names of every crate `package` depends on for normal builds, transitively.
fn normal_dependencies(package: &str) -> Vec<String> {
    dependencies(package, "normal")
}

/// The names of every crate `package` depends on over the dependency kinds `edges` (`cargo
/// tree -e`), transitively.
fn dependencies(package: &str, edges: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            edges,
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

/// The engine's tests run on the domain's `MemoryStore`: building them takes no database
/// driver, store or migrations.
#[test]
fn the_engine_is_tested_without_a_database() {
    let dependencies = dependencies("cadre-engine", "normal,dev");
    assert!(
        dependencies.iter().any(|name| name == "cadre-domain"),
        "the tree was read: {dependencies:?}"
    );
    for forbidden in ["sea-orm", "sqlx", "cadre-store", "cadre-migrations"] {
        assert!(
            !dependencies.iter().any(|name| name == forbidden),
            "cadre-engine's tests depend on {forbidden}"
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

/// The forms, and a crate that takes them alone (`examples/forms-only`), pull in no database
/// driver, HTTP stack or async runtime.
#[test]
fn the_forms_are_usable_alone() {
    for package in ["cadre-forms", "cadre-example-forms-only"] {
        let dependencies = normal_dependencies(package);
        assert!(
            dependencies.iter().any(|name| name == "cadre-domain"),
            "the tree of {package} was read: {dependencies:?}"
        );
        for forbidden in [
            "sea-orm",
            "sqlx",
            "axum",
            "hyper",
            "reqwest",
            "tokio",
            "async-std",
            "cadre-store",
            "cadre-engine",
        ] {
            assert!(
                !dependencies.iter().any(|name| name == forbidden),
                "{package} depends on {forbidden}"
            );
        }
    }
}

/// The cadre crates each workspace crate may build on (normal dependencies, transitively).
/// Every workspace member is listed, so a new crate states its place in the layers here.
const LAYERS: &[(&str, &[&str])] = &[
    ("cadre-domain", &[]),
    ("cadre-migrations", &[]),
    ("cadre-forms-derive", &[]),
    ("cadre-scim", &[]),
    ("cadre-outbound", &["cadre-domain"]),
    ("cadre-forms", &["cadre-domain", "cadre-forms-derive"]),
    ("cadre-engine", &["cadre-domain"]),
    ("cadre-store", &["cadre-domain", "cadre-migrations"]),
    (
        "cadre-products",
        &["cadre-domain", "cadre-engine", "cadre-forms"],
    ),
    (
        "cadre-groups",
        &[
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-products",
        ],
    ),
    (
        "cadre-provisioning",
        &[
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-products",
        ],
    ),
    (
        "cadre-registration",
        &[
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-products",
        ],
    ),
    (
        "cadre-accounts",
        &[
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-products",
            "cadre-registration",
        ],
    ),
    (
        "cadre-server",
        &[
            "cadre-accounts",
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-groups",
            "cadre-migrations",
            "cadre-outbound",
            "cadre-products",
            "cadre-provisioning",
            "cadre-registration",
            "cadre-scim",
            "cadre-store",
        ],
    ),
    (
        "cadre-web",
        &[
            "cadre-accounts",
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-groups",
            "cadre-migrations",
            "cadre-outbound",
            "cadre-products",
            "cadre-provisioning",
            "cadre-registration",
            "cadre-scim",
            "cadre-server",
            "cadre-store",
        ],
    ),
    ("cadre-example-forms-only", &["cadre-domain", "cadre-forms"]),
    (
        "cadre-example-mailbox",
        &[
            "cadre-accounts",
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-groups",
            "cadre-migrations",
            "cadre-outbound",
            "cadre-products",
            "cadre-provisioning",
            "cadre-registration",
            "cadre-scim",
            "cadre-server",
            "cadre-store",
        ],
    ),
    (
        "cadre",
        &[
            "cadre-accounts",
            "cadre-domain",
            "cadre-engine",
            "cadre-forms",
            "cadre-groups",
            "cadre-migrations",
            "cadre-outbound",
            "cadre-products",
            "cadre-provisioning",
            "cadre-registration",
            "cadre-scim",
            "cadre-server",
            "cadre-store",
            "cadre-web",
        ],
    ),
];

/// The names of the workspace's members, from `cargo metadata`.
fn workspace_members() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success());
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| package["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Each crate builds only on the layers below it: the engine on the domain alone, the products
/// on the engine and the forms, the layers for people on the products; only the server and the
/// binary see the store. Test-only crates (`xtask`, `cadre-tests`) are exempt.
#[test]
fn every_crate_builds_only_on_the_layers_below_it() {
    let members = workspace_members();
    for member in &members {
        if member == "xtask" || member == "cadre-tests" {
            continue;
        }
        assert!(
            LAYERS.iter().any(|(package, _)| package == member),
            "{member} is not in LAYERS: state which crates it may build on"
        );
    }
    for (package, allowed) in LAYERS {
        assert!(
            members.iter().any(|member| member == package),
            "{package} is not a member"
        );
        let cadre_dependencies: Vec<String> = normal_dependencies(package)
            .into_iter()
            .filter(|name| name.starts_with("cadre") && name != package)
            .collect();
        for dependency in &cadre_dependencies {
            // The derive macros come with the forms crate that re-exports them.
            let with_forms = dependency == "cadre-forms-derive" && allowed.contains(&"cadre-forms");
            assert!(
                allowed.contains(&dependency.as_str()) || with_forms,
                "{package} depends on {dependency}; it may build on {allowed:?}"
            );
        }
    }
}

/// The engine and the layers above it meet storage only through the domain: none pulls in a
/// database or HTTP crate.
#[test]
fn the_engine_and_the_layers_on_it_meet_storage_only_through_the_domain() {
    for package in [
        "cadre-engine",
        "cadre-products",
        "cadre-groups",
        "cadre-provisioning",
        "cadre-registration",
    ] {
        let dependencies = normal_dependencies(package);
        assert!(
            dependencies.iter().any(|name| name == "cadre-domain"),
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
