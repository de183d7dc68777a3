//! cadre's server: the REST API over the engine and the store, and the process that serves it.
//!
//! [`router`] is the HTTP application (axum) with its OpenAPI document ([`openapi`]);
//! [`serve`] is `cadre serve`: configuration ([`Config`]), database, listener, engine workers
//! and graceful shutdown. [`auth`] issues and checks API tokens. Handlers reach storage only
//! through the domain's ports and the engine's public API.

pub mod api;
pub mod auth;
pub mod config;
mod error;
mod extract;
mod limit;
mod pages;
mod server;
mod state;
pub use state::AppState;

pub use api::openapi;
pub use config::{Config, Mode};
pub use error::{ApiError, Problem};
pub use server::{ServeError, app_state, open, registry, router, run, serve};
