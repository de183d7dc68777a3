//! The server process: opening the database, the HTTP listener, the engine workers, and a
//! graceful shutdown that lets running processes finish their current run.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use cadre_accounts::Accounts;
use cadre_domain::{DomainError, Role, Store, SystemClock, TokenRepository};
use cadre_engine::{DefinitionError, Engine, EngineConfig, Registry, RetryPolicy, Workflow};
use cadre_groups::{LocalVolume, Recovery, WorkflowGroups};
use cadre_outbound::push::Pusher;
use cadre_provisioning::Provisioner;
use cadre_registration::delivery::Dispatcher;
use cadre_registration::mail::{FileMailer, MailError, Mailer, SmtpMailer, Templates};
use cadre_registration::{Passwords, Registration, UserWebhooks};
use cadre_store::{ProductMigrations, SeaStore};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use thiserror::Error;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::classify::StatusInRangeAsFailures;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::api;
use crate::config::{Config, Mode};
use crate::error::{ApiError, ErrorCode};
use crate::limit::ClientLimiter;
use crate::metrics::Metrics;
use crate::state::{AppState, RequestLimits, Services};

/// Why the server could not start or stopped with an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// The URL, without its password.
        url: String,
        /// What went wrong.
        source: DomainError,
    },
    /// A workflow is malformed or two share a name.
    #[error(transparent)]
    Workflows(#[from] DefinitionError),
    /// Mail is misconfigured (SMTP settings, the templates folder).
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    /// A setting is unusable (the argon2 parameters, say).
    #[error("configuration: {0}")]
    Config(String),
    /// Listening or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What the server was doing.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A cadre server: the built-in products (User and UserGroup), the provisioning loads and the
/// registration tasks, plus what a downstream crate adds — its products' migrations, its
/// workflows with their forms, and routes of its own.
///
/// ```no_run
/// # async fn example(config: cadre_server::Config) -> Result<(), cadre_server::ServeError> {
/// cadre_server::Cadre::new()
///     // .migrations(cadre_store::ProductMigrations::of::<MyMigrator>())
///     // .workflows(my_product::workflows())
///     .serve(&config, std::future::pending())
///     .await
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Cadre {
    migrations: Vec<ProductMigrations>,
    workflows: Vec<Workflow>,
    routes: Option<OpenApiRouter<AppState>>,
    pages: Option<Router<AppState>>,
}

impl Cadre {
    /// The server with the built-in products only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the migrations of a product crate, applied after cadre's own.
    pub fn migrations(mut self, migrations: ProductMigrations) -> Self {
        self.migrations.push(migrations);
        self
    }

    /// Adds `workflows` (with their forms) to the built-in ones.
    pub fn workflows(mut self, workflows: impl IntoIterator<Item = Workflow>) -> Self {
        self.workflows.extend(workflows);
        self
    }

    /// Adds `routes` to the API; their utoipa annotations join the OpenAPI document. Handlers
    /// take the same extractors as cadre's own (`auth::Caller`, `auth::Admin`, the state).
    pub fn routes(mut self, routes: OpenApiRouter<AppState>) -> Self {
        self.routes = Some(match self.routes.take() {
            Some(earlier) => earlier.merge(routes),
            None => routes,
        });
        self
    }

    /// Adds `pages`: routes for people (HTML), served beside the API but not part of its OpenAPI
    /// document, such as `cadre-web`'s. Handlers take the same state.
    pub fn pages(mut self, pages: Router<AppState>) -> Self {
        self.pages = Some(match self.pages.take() {
            Some(earlier) => earlier.merge(pages),
            None => pages,
        });
        self
    }

    /// The workflows this server runs: the built-in User and UserGroup workflows with their
    /// forms, the provisioning loads, the registration tasks, the reconcile of an outbound
    /// target, and the added ones.
    pub fn registry(&self) -> Result<Registry, DefinitionError> {
        let mut registry = cadre_products::registry()?;
        for workflow in cadre_provisioning::workflows()
            .into_iter()
            .chain(cadre_registration::workflows())
            .chain([cadre_products::push::reconcile_workflow()])
            .chain(self.workflows.iter().cloned())
        {
            registry.register(workflow)?;
        }
        Ok(registry)
    }

    /// Opens the database at `database_url` (a SQLite file is created if absent), applies
    /// pending migrations (cadre's, which install the demo catalogue on a new database, then
    /// the added ones), and returns an engine with [`Cadre::registry`] over it.
    pub async fn open(&self, database_url: &str) -> Result<Engine, ServeError> {
        self.open_with(database_url, EngineConfig::default()).await
    }

    /// [`Cadre::open`] with the engine's settings `engine`.
    pub async fn open_with(
        &self,
        database_url: &str,
        engine: EngineConfig,
    ) -> Result<Engine, ServeError> {
        let database_error = |source| ServeError::Database {
            url: redact(database_url),
            source,
        };
        let conn = cadre_store::connect(database_url)
            .await
            .map_err(database_error)?;
        cadre_store::migrate_with(&conn, &self.migrations)
            .await
            .map_err(database_error)?;
        let store: Arc<dyn Store> = Arc::new(SeaStore::new(conn));
        Ok(Engine::new(
            store,
            self.registry()?,
            Arc::new(SystemClock),
            engine,
        ))
    }

    /// The API's routes and their OpenAPI document: cadre's and the added ones.
    fn api(&self) -> (Router<AppState>, utoipa::openapi::OpenApi) {
        let routes = api::routes();
        match &self.routes {
            Some(added) => routes.merge(added.clone()),
            None => routes,
        }
        .split_for_parts()
    }

    /// The OpenAPI document served at `/api/openapi.json`.
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        self.api().1
    }

    /// The HTTP application: the API, its OpenAPI document at `/api/openapi.json`, the pages of
    /// mailed links under `/tokens/`, the added pages, the SCIM service provider at `/scim/v2`, refusals as security events, request
    /// tracing, and problem bodies for unknown paths.
    pub fn router(&self, state: AppState) -> Router {
        let limits = state.limits;
        let (api, openapi) = self.api();
        let openapi = Arc::new(openapi);
        let api = match &self.pages {
            Some(pages) => api.merge(pages.clone()),
            None => api,
        }
        .merge(crate::scim::routes());
        api.route(
            "/api/openapi.json",
            get(move || {
                let openapi = Arc::clone(&openapi);
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .route("/metrics", get(crate::metrics::admin_metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::refusals::record,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::limit::forwarded_client,
        ))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such path") })
        // 510 is the form protocol asking for the next page, not a failure; the server's own
        // failures (500 to 509) are.
        // Bounded work: a request waits its turn beyond the concurrency limit, answers 408
        // past its time, and fails when its body stalls.
        .layer(RequestBodyTimeoutLayer::new(limits.body_idle))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent))
        // Counted outside the limit, so that time spent waiting for a turn shows.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(TraceLayer::new(
            StatusInRangeAsFailures::new(500..=509).into_make_classifier(),
        ))
        // Every answer: never sniffed, never framed, no referrer; an answer that says more
        // (a page's own policy) keeps its own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
    }

    /// `cadre serve`: opens the database, then runs what `config.mode` asks for until `shutdown`
    /// completes.
    pub async fn serve(
        &self,
        config: &Config,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let engine = self
            .open_with(
                &config.database_url,
                EngineConfig {
                    lease: chrono::TimeDelta::seconds(config.lease_seconds as i64),
                    ..EngineConfig::default()
                },
            )
            .await?;
        tracing::info!(database = %redact(&config.database_url), "database ready");
        let listener = match config.mode {
            Mode::WorkersOnly => None,
            Mode::All | Mode::ApiOnly => {
                let address = (config.bind, config.port);
                let listener =
                    TcpListener::bind(address)
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
        let metrics_listener = match config.metrics_address {
            Some(address) => {
                Some(
                    TcpListener::bind(address)
                        .await
                        .map_err(|source| ServeError::Io {
                            context: format!("cannot listen on {address} for metrics"),
                            source,
                        })?,
                )
            }
            None => None,
        };
        hint_at_first_token(engine.store().as_ref()).await;
        let state = app_state(engine, config)?;
        recover_files(&state.groups, state.limits.request_timeout).await;
        let Some(metrics_listener) = metrics_listener else {
            return self.run(state, listener, workers, shutdown).await;
        };
        // The metrics listener outlives the API's, so that a scrape sees the workers finish.
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = axum::serve(metrics_listener, Metrics::router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = metrics_stopped.await;
            })
            .into_future();
        let metrics = tokio::spawn(metrics);
        tracing::info!(address = ?config.metrics_address, "serving /metrics");
        let served = self.run(state, listener, workers, shutdown).await;
        let _ = stop_metrics.send(());
        if let Ok(Err(error)) = metrics.await {
            tracing::warn!(%error, "the metrics listener failed");
        }
        served
    }

    /// Serves the API on `listener` (if any) and runs `workers` engine workers until `shutdown`
    /// completes; then stops accepting requests, lets in-flight requests and each worker's current
    /// process run finish, and returns.
    pub async fn run(
        &self,
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
        // The outbox and the purge of expired registrations and sessions and of old audit
        // events run where the workers run.
        let mut background = Vec::new();
        if workers > 0 {
            let dispatcher = Arc::clone(&state.dispatcher);
            let mut stopped_delivery = stopped.clone();
            background.push(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped_delivery.wait_for(|stop| *stop).await;
                };
                dispatcher.run(DELIVERY_POLL, shutdown).await;
            }));
            let registration = state.registration.clone();
            let accounts = state.accounts.clone();
            let engine = state.engine.clone();
            let retention_days = state.audit_retention_days;
            let outbox_days = state.outbox_retention_days;
            let step_state_days = state.step_state_retention_days;
            let groups = state.groups.clone();
            let request_timeout = state.limits.request_timeout;
            let mut stopped_purge = stopped.clone();
            background.push(tokio::spawn(async move {
                loop {
                    match registration.purge().await {
                        Ok(0) => {}
                        Ok(purged) => tracing::info!(purged, "purged expired registrations"),
                        Err(error) => {
                            tracing::warn!(%error, "could not purge expired registrations")
                        }
                    }
                    match accounts.purge_sessions().await {
                        Ok(0) => {}
                        Ok(purged) => tracing::info!(purged, "purged expired sessions"),
                        Err(error) => tracing::warn!(%error, "could not purge expired sessions"),
                    }
                    let store = engine.store().as_ref();
                    match api::audit::purge(store, engine.clock().as_ref(), retention_days).await {
                        Ok(0) => {}
                        Ok(purged) => tracing::info!(purged, "purged old audit events"),
                        Err(error) => tracing::warn!(%error, "could not purge old audit events"),
                    }
                    if outbox_days > 0 {
                        let before =
                            engine.clock().now() - chrono::TimeDelta::days(i64::from(outbox_days));
                        match store.forget_done_messages(before).await {
                            Ok(0) => {}
                            Ok(forgotten) => {
                                tracing::info!(
                                    forgotten,
                                    "forgot the bodies of old outbox messages"
                                )
                            }
                            Err(error) => {
                                tracing::warn!(%error, "could not forget old outbox messages")
                            }
                        }
                    }
                    if step_state_days > 0 {
                        let before = engine.clock().now()
                            - chrono::TimeDelta::days(i64::from(step_state_days));
                        match store.prune_step_states(before).await {
                            Ok(0) => {}
                            Ok(pruned) => {
                                tracing::info!(pruned, "emptied the step states of old processes")
                            }
                            Err(error) => {
                                tracing::warn!(%error, "could not prune old step states")
                            }
                        }
                    }
                    recover_files(&groups, request_timeout).await;
                    tokio::select! {
                        _ = tokio::time::sleep(PURGE_INTERVAL) => {}
                        _ = stopped_purge.wait_for(|stop| *stop) => return,
                    }
                }
            }));
        }

        let served = match listener {
            Some(listener) => {
                let address = listener.local_addr().map_err(|source| ServeError::Io {
                    context: "cannot read the listening address".into(),
                    source,
                })?;
                tracing::info!("listening on http://{address} (OpenAPI at /api/openapi.json)");
                let header_read = state.limits.header_read;
                serve_http(listener, self.router(state), header_read, shutdown).await;
                Ok(())
            }
            None => {
                shutdown.await;
                Ok(())
            }
        };
        tracing::info!("shutting down: waiting for workers to finish their current process");
        // Ignored error: no worker is listening any more, which is the goal.
        let _ = stop.send(true);
        for handle in handles.into_iter().chain(background) {
            if let Err(error) = handle.await {
                tracing::error!(%error, "a worker panicked");
            }
        }
        served
    }
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
/// `config.files_dir`, up to `config.max_upload_bytes` each; registration mails through
/// `config.smtp`, or into `config.mail_dir` without one, with the templates of
/// `config.templates_dir` replacing the bundled ones; completed processes that create or
/// terminate users call the configured webhooks; the User and UserGroup workflows push to the
/// outbound targets, their credentials opened with `config.outbound_key`.
pub fn app_state(engine: Engine, config: &Config) -> Result<AppState, ServeError> {
    let settings = Arc::new(config.registration.clone());
    let metrics = Arc::new(Metrics::new());
    let outbound_key = config
        .outbound_key()
        .map_err(|error| ServeError::Config(format!("outbound_key: {error}")))?;
    let pusher = Pusher::new(
        outbound_key.clone(),
        engine.store().clone(),
        engine.clock().clone(),
    );
    let engine = engine
        .with_completion_hook(Arc::new(UserWebhooks::new(settings.webhooks.clone())))
        .with_step_observer(metrics.clone())
        .with_outbound(Arc::new(pusher));
    let volume = Arc::new(LocalVolume::new(&config.files_dir));
    let groups = WorkflowGroups::new(engine.clone(), volume, config.max_upload_bytes);
    let provisioner = Provisioner::new(engine.clone());
    let templates = Arc::new(Templates::new(config.templates_dir.as_deref())?);
    let passwords = Passwords::new(config.accounts.argon2, config.accounts.concurrency())
        .map_err(|error| ServeError::Config(error.to_string()))?;
    let registration = Registration::new(
        engine.clone(),
        Arc::clone(&templates),
        Arc::clone(&settings),
        passwords.clone(),
    );
    let accounts = Accounts::new(
        engine.store().clone(),
        engine.clock().clone(),
        passwords,
        templates,
        Arc::new(config.accounts.clone()),
        Arc::clone(&settings),
    );
    let mailer: Arc<dyn Mailer> = match &config.smtp {
        Some(smtp) => Arc::new(SmtpMailer::new(smtp)?),
        None => Arc::new(FileMailer::new(&config.mail_dir)),
    };
    let dispatcher = Arc::new(Dispatcher::new(
        engine.store().clone(),
        mailer,
        engine.clock().clone(),
        RetryPolicy {
            max_attempts: 10,
            initial: Duration::from_secs(config.outbox_retry_seconds),
            factor: 2.0,
            max_delay: Duration::from_secs(3600),
        },
    ));
    let limiter = Arc::new(ClientLimiter::new(settings.requests_per_minute));
    let sign_in_limiter = Arc::new(ClientLimiter::new(config.accounts.sign_ins_per_minute));
    Ok(AppState::new(Services {
        engine,
        groups,
        provisioner,
        registration,
        accounts,
        sign_in_limiter,
        dispatcher,
        limiter,
        tokens: Arc::default(),
        audit_retention_days: config.audit_retention_days,
        outbox_retention_days: config.outbox_retention_days,
        step_state_retention_days: config.step_state_retention_days,
        limits: RequestLimits {
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            body_idle: Duration::from_secs(config.body_idle_seconds),
            max_concurrent: config.max_concurrent_requests,
            header_read: Duration::from_secs(config.header_timeout_seconds),
        },
        trusted_proxies: config.trusted_proxies.clone().into(),
        metrics,
        outbound_key,
    }))
}

/// Serves `app` on `listener` until `shutdown`, then lets the open connections finish. Each
/// request's headers must arrive within `header_read` (hyper's HTTP/1 timer), so a client
/// trickling its headers cannot hold a connection; requests carry their peer address
/// (`ConnectInfo`).
async fn serve_http(
    listener: TcpListener,
    app: Router,
    header_read: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// Finishes file uploads and deletions that an earlier run (or a node that died) left half
/// done. An upload is abandoned once it is older than `request_timeout`: no request runs
/// longer, so a younger one may still be running in another server process.
async fn recover_files(groups: &WorkflowGroups, request_timeout: Duration) {
    let grace = chrono::TimeDelta::from_std(request_timeout).unwrap_or(chrono::TimeDelta::MAX);
    match groups.recover(grace).await {
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

/// How often the outbox is looked at.
const DELIVERY_POLL: Duration = Duration::from_secs(1);

/// How often expired registrations and sessions, old audit events, outbox bodies and step
/// states are purged, and abandoned uploads removed.
const PURGE_INTERVAL: Duration = Duration::from_secs(600);

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
