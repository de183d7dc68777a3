//! Metrics in the OpenMetrics text format (which Prometheus scrapes), with prometheus-client:
//! requests by route and status with their latency, steps by workflow with their duration and
//! sign-in failures, counted as they happen; processes by status, the runnable queue and the
//! outbox backlog, read from the database at each scrape.
//!
//! `GET /metrics` answers admins (a token or a session); with `metrics_address` set, the same
//! answer is served to anyone who reaches that address, and to nobody else (see
//! [`Metrics::router`]).

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cadre_domain::{ProcessStatus, StepStatus};
use cadre_engine::StepObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    /// The route's template (`/api/subscriptions/{id}`), never the path itself, so that the
    /// label's values are bounded; `none` for paths no route matches.
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    workflow: String,
    step: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

fn request_seconds() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn step_seconds() -> Histogram {
    // 1 ms to about 70 min (the longest a step may run is an hour by default).
    Histogram::new(exponential_buckets(0.001, 4.0, 12))
}

/// The server's metrics and the registry they are encoded from.
pub struct Metrics {
    registry: Registry,
    requests: Family<ResponseLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    step_seconds: Family<StepLabels, Histogram, fn() -> Histogram>,
    sign_in_failures: Counter,
    processes: Family<StatusLabels, Gauge>,
    runnable: Gauge,
    oldest_runnable_seconds: Gauge<f64, AtomicU64>,
    outbox: Family<StatusLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `cadre` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cadre");
        let requests = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let request_seconds = Family::new_with_constructor(request_seconds as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's headers to its answer, by method and route",
            request_seconds.clone(),
        );
        let step_seconds = Family::new_with_constructor(step_seconds as fn() -> Histogram);
        registry.register(
            "step_duration_seconds",
            "Time a step's body ran, by workflow, step and how it ended",
            step_seconds.clone(),
        );
        let sign_in_failures = Counter::default();
        registry.register(
            "sign_in_failures",
            "Sign-ins refused for a wrong name or password or an account that cannot sign in",
            sign_in_failures.clone(),
        );
        let processes = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "processes",
            "Processes by status (read at each scrape)",
            processes.clone(),
        );
        let runnable = Gauge::default();
        registry.register(
            "runnable_processes",
            "Processes a worker could claim now: due, their lease free or expired",
            runnable.clone(),
        );
        let oldest_runnable_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_runnable_process_age_seconds",
            "How long the longest-waiting runnable process has been due (0 when none is)",
            oldest_runnable_seconds.clone(),
        );
        let outbox = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "outbox_backlog",
            "Mails and webhook calls not delivered: waiting for an attempt, or given up",
            outbox.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            step_seconds,
            sign_in_failures,
            processes,
            runnable,
            oldest_runnable_seconds,
            outbox,
        }
    }

    /// Counts a sign-in refused for its credentials.
    pub fn sign_in_failed(&self) {
        self.sign_in_failures.inc();
    }

    fn answered(&self, method: &'static str, route: String, status: u16, took: Duration) {
        self.request_seconds
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&ResponseLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Reads what the database holds now, then encodes every metric.
    async fn scrape(&self, state: &AppState) -> Result<String, ApiError> {
        let store = state.engine.store();
        let now = state.engine.clock().now();
        let counts = store.process_counts(now).await?;
        for status in ProcessStatus::ALL {
            let count = counts
                .by_status
                .iter()
                .find(|(counted, _)| counted == status)
                .map_or(0, |(_, count)| *count);
            self.processes
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(gauge_value(count));
        }
        self.runnable.set(gauge_value(counts.runnable));
        let age = counts
            .oldest_runnable
            .and_then(|due| (now - due).to_std().ok())
            .unwrap_or_default();
        self.oldest_runnable_seconds.set(age.as_secs_f64());
        let backlog = store.outbox_backlog().await?;
        for (status, count) in [("waiting", backlog.waiting), ("failed", backlog.failed)] {
            self.outbox
                .get_or_create(&StatusLabels { status })
                .set(gauge_value(count));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(ApiError::internal)?;
        Ok(text)
    }

    /// The router of the separate metrics listener (`metrics_address`): `GET /metrics` for
    /// anyone who reaches it.
    pub fn router(state: AppState) -> Router {
        Router::new()
            .route("/metrics", get(open_metrics))
            .with_state(state)
    }
}

impl StepObserver for Metrics {
    fn step_ran(&self, workflow: &str, step: &str, status: StepStatus, took: Duration) {
        self.step_seconds
            .get_or_create(&StepLabels {
                workflow: workflow.to_owned(),
                step: step.to_owned(),
                status: status.as_str(),
            })
            .observe(took.as_secs_f64());
    }
}

fn gauge_value(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The metrics for an admin (`GET /metrics` beside the API).
pub(crate) async fn admin_metrics(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    open_metrics(State(state)).await
}

async fn open_metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.metrics.scrape(&state).await?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

/// Middleware: counts every answer by method, route template and status, with its latency.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "none".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .answered(method, route, response.status().as_u16(), started.elapsed());
    response
}

/// The method as a label: the standard ones by name, any other as `other`, so that a client
/// cannot grow the label's values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
