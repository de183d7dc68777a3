//! cadre-forms is usable alone: its normal dependencies pull in no database or HTTP crate.

use std::process::Command;

#[test]
fn normal_dependencies_have_no_database_or_http_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "cadre-forms",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    assert!(tree.lines().any(|line| line.starts_with("cadre-domain ")));
    let forbidden: Vec<&str> = tree
        .lines()
        .filter(|line| {
            ["sea-orm", "sqlx", "axum"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .collect();
    assert!(
        forbidden.is_empty(),
        "forbidden dependencies: {forbidden:?}"
    );
}
