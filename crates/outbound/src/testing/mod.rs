//! Real targets for tests: a `scim2-server` and a `slapd`, each started on a free port of
//! 127.0.0.1 with throwaway state, and stopped when dropped.
//!
//! Neither comes with the Rust toolchain. Where one is missing, [`ScimServer::start`] and
//! [`Slapd::start`] print what was skipped and how to enable it, and give `None`; with
//! `REQUIRE_OUTBOUND_TESTS=1` (which `.ci/run` sets) a missing server fails the test instead.

mod scim_server;
mod slapd;

pub use scim_server::ScimServer;
pub use slapd::Slapd;

/// `None` after saying that `what` was skipped because `missing`, and how to enable it
/// (`enable`); a panic instead under `REQUIRE_OUTBOUND_TESTS=1`.
fn skipped<T>(what: &str, missing: &str, enable: &str) -> Option<T> {
    let required = std::env::var("REQUIRE_OUTBOUND_TESTS").is_ok_and(|value| value == "1");
    assert!(!required, "REQUIRE_OUTBOUND_TESTS=1, but {missing}");
    eprintln!("SKIPPED {what}: {missing}. {enable}");
    None
}

/// A port of 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("no free port on 127.0.0.1: {error}"))
}
