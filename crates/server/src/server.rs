//! The server process: opening the database, the HTTP listener, the engine workers, and a
//! graceful shutdown that lets running processes finish their current run.

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use cadre_domain::{DomainError, Role, Store, SystemClock, TokenRepository};
use cadre_engine::{DefinitionError, Engine, EngineConfig, Registry};
use cadre_groups::{LocalVolume, Recovery, WorkflowGroups};
use cadre_provisioning::Provisioner;
use cadre_store::SeaStore;
use thiserror::Error;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::api;
use crate::config::{Config, Mode};
use crate::error::ApiError;
use crate::state::AppState;

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// The URL, without its password.
        url: String,
        /// What went wrong.
        source: DomainError,
    },
    /// A built-in workflow is malformed (a bug).
    #[error(transparent)]
    Workflows(#[from] DefinitionError),
    /// Listening or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What the server was doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Opens the database at `database_url` (a SQLite file is created if absent), applies pending
/// migrations (which install the demo catalogue on a new database), and returns an engine
/// with the built-in workflows and the provisioning tasks over it.
pub async fn open(database_url: &str) -> Result<Engine, ServeError> {
    let database_error = |source| ServeError::Database {
        url: redact(database_url),
        source,
    };
    let conn = cadre_store::connect(database_url)
        .await
        .map_err(database_error)?;
    cadre_store::migrate(&conn).await.map_err(database_error)?;
    let store: Arc<dyn Store> = Arc::new(SeaStore::new(conn));
    Ok(Engine::new(
        store,
        registry()?,
        Arc::new(SystemClock),
        EngineConfig::default(),
    ))
}

/// The workflows `cadre serve` runs: the built-in User and UserGroup workflows with their
/// forms, and the provisioning loads.
pub fn registry() -> Result<Registry, DefinitionError> {
    let mut registry = cadre_engine::workflows::registry()?;
    for workflow in cadre_provisioning::workflows() {
        registry.register(workflow)?;
    }
    Ok(registry)
}

/// `url` with any password replaced by `***`, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The application state for `engine` and `config`: workflow groups keep their files in
/// `config.files_dir`, up to `config.max_upload_bytes` each.
pub fn app_state(engine: Engine, config: &Config) -> AppState {
    let volume = Arc::new(LocalVolume::new(&config.files_dir));
    let groups = WorkflowGroups::new(engine.clone(), volume, config.max_upload_bytes);
    let provisioner = Provisioner::new(engine.clone());
    AppState {
        engine,
        groups,
        provisioner,
    }
}

/// The HTTP application: the API, its OpenAPI document at `/api/openapi.json`, request tracing,
/// and problem bodies for unknown paths.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::routes();
    let openapi = Arc::new(openapi);
    api.route(
        "/api/openapi.json",
        get(move || {
            let openapi = Arc::clone(&openapi);
            async move { Json(openapi.as_ref().clone()) }
        }),
    )
    .fallback(|| async { ApiError::new(axum::http::StatusCode::NOT_FOUND, "no such path") })
    .layer(TraceLayer::new_for_http())
    .with_state(state)
}

/// `cadre serve`: opens the database, then runs what `config.mode` asks for until `shutdown`
/// completes.
pub async fn serve(
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine = open(&config.database_url).await?;
    tracing::info!(database = %redact(&config.database_url), "database ready");
    let listener = match config.mode {
        Mode::WorkersOnly => None,
        Mode::All | Mode::ApiOnly => {
            let address = (config.bind, config.port);
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::Io {
                    context: format!("cannot listen on {}:{}", config.bind, config.port),
                    source,
                })?;
            Some(listener)
        }
    };
    let workers = match config.mode {
        Mode::ApiOnly => 0,
        Mode::All | Mode::WorkersOnly => config.workers,
    };
    hint_at_first_token(engine.store().as_ref()).await;
    let state = app_state(engine, config);
    recover_files(&state.groups).await;
    run(state, listener, workers, shutdown).await
}

/// Finishes file uploads and deletions that an earlier run left half done (uploads older than
/// an hour: younger ones may still be running in another server process).
async fn recover_files(groups: &WorkflowGroups) {
    match groups.recover(chrono::TimeDelta::hours(1)).await {
        Ok(recovery) if recovery != Recovery::default() => {
            tracing::info!(?recovery, "finished interrupted file operations");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not finish interrupted file operations"),
    }
}

async fn hint_at_first_token(tokens: &dyn TokenRepository) {
    match tokens.list_tokens().await {
        Ok(tokens)
            if !tokens
                .iter()
                .any(|token| token.role == Role::Admin && token.revoked_at.is_none()) =>
        {
            tracing::info!(
                "no admin token yet: create one with `cadre token create --name admin --role admin` (same database settings)"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not list API tokens"),
    }
}

/// Serves the API on `listener` (if any) and runs `workers` engine workers until `shutdown`
/// completes; then stops accepting requests, lets in-flight requests and each worker's current
/// process run finish, and returns.
pub async fn run(
    state: AppState,
    listener: Option<TcpListener>,
    workers: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let engine = state.engine.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = (0..workers)
        .map(|n| {
            let worker = engine.with_worker_id(format!("{}-{n}", std::process::id()));
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    // An error means the sender is gone, which also means stop.
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                worker.run_worker(shutdown).await;
            })
        })
        .collect();
    tracing::info!(workers, "engine workers started");

    let served = match listener {
        Some(listener) => {
            let address = listener.local_addr().map_err(|source| ServeError::Io {
                context: "cannot read the listening address".into(),
                source,
            })?;
            tracing::info!("listening on http://{address} (OpenAPI at /api/openapi.json)");
            axum::serve(listener, router(state))
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|source| ServeError::Io {
                    context: "serving HTTP failed".into(),
                    source,
                })
        }
        None => {
            shutdown.await;
            Ok(())
        }
    };
    tracing::info!("shutting down: waiting for workers to finish their current process");
    // Ignored error: no worker is listening any more, which is the goal.
    let _ = stop.send(true);
    for handle in handles {
        if let Err(error) = handle.await {
            tracing::error!(%error, "a worker panicked");
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("postgres://cadre:s3cret@db:5432/cadre"),
            "postgres://cadre:***@db:5432/cadre"
        );
        assert_eq!(
            redact("postgres://cadre@db/cadre"),
            "postgres://cadre@db/cadre"
        );
        assert_eq!(
            redact("sqlite://cadre.db?mode=rwc"),
            "sqlite://cadre.db?mode=rwc"
        );
    }
}
