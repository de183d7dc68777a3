//! Tidiness checked on the real workspace: every declared dependency is used, every module
//! says what it is for, and every route the server serves is in its OpenAPI document.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The workspace root.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `cargo metadata` of the workspace's own packages.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The files of the module tree rooted at `root` (a crate root or a module file): the file and,
/// recursively, every module it declares with `mod name;`.
fn module_tree(root: &Path) -> Vec<PathBuf> {
    let declaration =
        Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;").unwrap();
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(file) = pending.pop() {
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        // `lib.rs`, `main.rs` and `mod.rs` keep their modules beside them; `name.rs` in `name/`.
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let dir = file.parent().unwrap();
        let children = if matches!(stem, "lib" | "main" | "mod") || file == root {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        for module in declaration.captures_iter(&source) {
            let name = &module[1];
            let flat = children.join(format!("{name}.rs"));
            let nested = children.join(name).join("mod.rs");
            match (flat.is_file(), nested.is_file()) {
                (true, _) => pending.push(flat),
                (false, true) => pending.push(nested),
                (false, false) => panic!("{}: no file for `mod {name};`", file.display()),
            }
        }
        files.push(file);
    }
    files
}

/// Dependencies that no path in the code names, and why they are declared all the same.
const USED_WITHOUT_A_PATH: &[(&str, &str, &str)] = &[];

/// Every dependency in the `[dependencies]` of a workspace member is named by the code of that
/// crate's library or binaries (as `name::…`, `use name…` or `extern crate name`), renamed
/// ones by their new name. A dependency only tests or benchmarks use belongs in
/// `[dev-dependencies]`; one used only through its features or macros is in
/// `USED_WITHOUT_A_PATH`, with the reason.
#[test]
fn every_dependency_is_used() {
    let metadata = metadata();
    let mut unused = Vec::new();
    let mut allowed_but_used = Vec::new();
    let mut checked = 0;
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let sources: Vec<String> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|target| {
                target["kind"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|kind| kind == "lib" || kind == "bin" || kind == "proc-macro")
            })
            .flat_map(|target| module_tree(Path::new(target["src_path"].as_str().unwrap())))
            .map(|file| std::fs::read_to_string(file).unwrap())
            .collect();
        assert!(!sources.is_empty(), "{name} has no library or binary");
        for dependency in package["dependencies"].as_array().unwrap() {
            if !dependency["kind"].is_null() {
                continue; // dev- and build-dependencies
            }
            let crate_name = dependency["rename"]
                .as_str()
                .unwrap_or_else(|| dependency["name"].as_str().unwrap())
                .replace('-', "_");
            let named = Regex::new(&format!(
                r"(?m)(?:^|[^A-Za-z0-9_:]){crate_name}::|\buse\s+{crate_name}\b|\bextern\s+crate\s+{crate_name}\b"
            ))
            .unwrap();
            let used = sources.iter().any(|source| named.is_match(source));
            let allowed = USED_WITHOUT_A_PATH
                .iter()
                .any(|(package, dependency, _)| *package == name && *dependency == crate_name);
            match (used, allowed) {
                (false, false) => unused.push(format!("{name}: {crate_name}")),
                (true, true) => allowed_but_used.push(format!("{name}: {crate_name}")),
                _ => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} dependencies were checked");
    assert!(
        unused.is_empty(),
        "declared in [dependencies] but not used by the crate's src: {unused:?}"
    );
    assert!(
        allowed_but_used.is_empty(),
        "in USED_WITHOUT_A_PATH but named by the code after all: {allowed_but_used:?}"
    );
}

/// Every Rust file of the crates, the migrations and xtask opens with a module doc comment
/// (`//!`) that says what it holds.
#[test]
fn every_module_says_what_it_is_for() {
    let root = workspace_root();
    let mut folders = vec![root.join("migrations/src"), root.join("xtask/src")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        folders.push(entry.unwrap().path().join("src"));
    }
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 100, "only {} files found", files.len());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|file| {
            let source = std::fs::read_to_string(file).unwrap();
            !source
                .lines()
                .next()
                .is_some_and(|line| line.starts_with("//!"))
        })
        .map(|file| file.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files do not open with a `//!` module doc: {undocumented:?}"
    );
}

/// The paths the router serves, read from the router itself. axum has no API that lists them;
/// its `Debug` output shows the path table (`RouteId(n): "/path"`) of the router's
/// `path_router`, which is what requests are matched against.
fn served_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let start = debug
        .find("path_router:")
        .expect("axum's Debug of Router names its path_router");
    let end = debug[start..]
        .find("fallback_router:")
        .map_or(debug.len(), |end| start + end);
    Regex::new(r#"RouteId\(\d+\): "([^"]*)""#)
        .unwrap()
        .captures_iter(&debug[start..end])
        .map(|path| path[1].to_owned())
        .collect()
}

/// `path` with every `{parameter}` filled in.
fn concrete(path: &str) -> String {
    Regex::new(r"\{[^}]+\}")
        .unwrap()
        .replace_all(path, "x")
        .into_owned()
}

/// Every route the server serves, with every method, is in the OpenAPI document it serves, and
/// the document lists nothing it does not serve; the one exception is the document itself.
/// The paths come from the router's own table, the methods from asking the running server
/// (a method a path does not serve is answered 405 with the ones it does in `Allow`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document() {
    /// Served and deliberately left out of the document: the document itself, and the metrics
    /// for Prometheus (docs/api.md#metrics), which are not REST.
    const NOT_DOCUMENTED: &[&str] = &["/api/openapi.json", "/metrics"];
    /// Served under their own protocol's discovery instead (docs/scim.md).
    const SCIM: &str = "/scim/v2";

    let database = cadre_store::testing::scratch_database().await;
    let files = tempfile::tempdir().unwrap();
    let cadre = cadre_server::Cadre::new();
    let engine = cadre.open(database.url()).await.unwrap();
    let config = cadre_server::Config {
        files_dir: files.path().join("files"),
        mail_dir: files.path().join("mail"),
        ..cadre_server::Config::default()
    };
    let router = cadre.router(cadre_server::app_state(engine, &config).unwrap());
    let paths = served_paths(&router);
    assert!(
        paths.contains("/api/health") && paths.contains("/api/processes/{id}/resume"),
        "the router's path table was not read: {paths:?}"
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();
    let document: Value = client
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let mut served = BTreeMap::new();
    let scim_paths = paths.iter().filter(|path| path.starts_with(SCIM)).count();
    assert!(scim_paths >= 10, "the SCIM routes were not read: {paths:?}");
    for path in paths.iter().filter(|path| !path.starts_with(SCIM)) {
        let response = client
            .request(Method::TRACE, format!("{base}{}", concrete(path)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{path} answers TRACE"
        );
        let allow = response.headers()["allow"].to_str().unwrap().to_owned();
        let methods: BTreeSet<String> = allow
            .split(',')
            .map(|method| method.trim().to_lowercase())
            // axum answers HEAD wherever it answers GET.
            .filter(|method| method != "head")
            .collect();
        served.insert(path.clone(), methods);
    }
    let documented: BTreeMap<String, BTreeSet<String>> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, operations)| {
            let methods = operations.as_object().unwrap().keys().cloned().collect();
            (path.clone(), methods)
        })
        .collect();
    for exception in NOT_DOCUMENTED {
        assert!(
            served.remove(*exception).is_some(),
            "{exception} is no longer served: drop it from NOT_DOCUMENTED"
        );
        assert!(
            !documented.contains_key(*exception),
            "{exception} is documented now"
        );
    }
    assert_eq!(
        served, documented,
        "served routes (left) against the OpenAPI document (right)"
    );
    serving.abort();
}

/// `docs/security.md` names the test of each rule as `path/to/file.rs::test_name` (further
/// tests of the same file as bare names after it): every one must exist.
#[test]
fn every_test_the_security_rules_name_exists() {
    let root = workspace_root();
    let rules = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let reference = Regex::new(r"`([\w/]+\.rs)::(\w+)`((?:, `\w+`)*)").unwrap();
    let bare = Regex::new(r"`(\w+)`").unwrap();
    let mut named = 0;
    for found in reference.captures_iter(&rules) {
        let file = root.join(&found[1]);
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("docs/security.md names {}: {error}", &found[1]));
        let mut tests = vec![found[2].to_owned()];
        tests.extend(bare.captures_iter(&found[3]).map(|name| name[1].to_owned()));
        for test in tests {
            assert!(
                source.contains(&format!("async fn {test}("))
                    || source.contains(&format!("fn {test}(")),
                "docs/security.md names {}::{test}, which does not exist",
                &found[1]
            );
            named += 1;
        }
    }
    assert!(named >= 15, "only {named} tests named");
}
