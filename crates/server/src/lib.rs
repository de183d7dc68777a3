//! cadre's server: the REST API over the engine and the store, and the process that serves it.
//!
//! [`Cadre`] is a server a downstream crate composes: the built-in products plus its own
//! migrations, workflows and routes. [`Cadre::router`] is the HTTP application (axum) with its
//! OpenAPI document ([`Cadre::openapi`]); [`Cadre::serve`] is `cadre serve`: configuration
//! ([`Config`]), database, listener, engine workers and graceful shutdown. [`auth`] issues and checks API tokens; [`scim`] is the SCIM 2.0 service provider at
//! `/scim/v2`. Handlers reach storage only through the domain's ports and the engine's public API.

pub mod api;
pub mod auth;
pub mod config;
mod error;
mod extract;
mod limit;
mod link_pages;
pub mod metrics;
pub mod multipart;
mod refusals;
pub mod scim;
mod server;
mod state;
pub mod targets;
mod visibility;
pub use state::{AppState, RequestLimits, Services};

pub use config::{Config, LogFormat, Mode};
pub use error::{ApiError, ErrorCode, Problem};
pub use limit::client_addr;
pub use link_pages::audit_decision;
pub use server::{Cadre, ServeError, app_state};
