//! Delivery of the outbox: mails through a [`Mailer`], webhook calls as HTTP POSTs, each
//! attempt recorded, failures retried with backoff until the retry policy gives up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cadre_domain::{Clock, DomainError, OutboxKind, OutboxMessage, Store};
use cadre_engine::RetryPolicy;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::mail::{Mail, MailError, Mailer};

/// What a webhook is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAction {
    /// A user was created (a registration completed).
    CreateUser,
    /// A user was deleted.
    DeleteUser,
    /// A user's status changed.
    UpdateUserStatus,
}

/// A webhook the operator configured: a URL that gets a JSON POST when `action` happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The operator's name for it (shown in logs and the outbox).
    pub name: String,
    /// When it is called.
    pub action: WebhookAction,
    /// Where the POST goes (`http://` or `https://`).
    pub url: String,
}

impl Webhook {
    /// The call of this webhook with `body`.
    pub fn call(&self, body: Value) -> WebhookCall {
        WebhookCall {
            name: self.name.clone(),
            url: self.url.clone(),
            body,
        }
    }
}

/// One webhook call to make: the payload of an `OutboxKind::Webhook` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookCall {
    /// The webhook's name.
    pub name: String,
    /// Where the POST goes.
    pub url: String,
    /// The JSON body.
    pub body: Value,
}

/// A new outbox message of `kind` with `payload`, due at `now`.
fn new_message(kind: OutboxKind, payload: Value, now: DateTime<Utc>) -> OutboxMessage {
    OutboxMessage {
        id: Uuid::now_v7(),
        kind,
        payload,
        created_at: now,
        attempts: 0,
        next_attempt_at: Some(now),
        delivered_at: None,
        last_error: None,
    }
}

/// The outbox message that sends `mail`, due at `now`. Enqueue it in the transaction of the
/// change that causes it.
pub fn mail_message(mail: &Mail, now: DateTime<Utc>) -> OutboxMessage {
    // Strings only: serialising cannot fail (and a null payload would be given up loudly).
    let payload = serde_json::to_value(mail).unwrap_or(Value::Null);
    new_message(OutboxKind::Mail, payload, now)
}

/// The outbox message that makes `call`, due at `now`. Enqueue it in the transaction of the
/// change that causes it.
pub fn webhook_message(call: &WebhookCall, now: DateTime<Utc>) -> OutboxMessage {
    // Strings and a JSON value only: serialising cannot fail.
    let payload = serde_json::to_value(call).unwrap_or(Value::Null);
    new_message(OutboxKind::Webhook, payload, now)
}

/// Why one delivery attempt failed.
enum Failure {
    /// Worth another attempt (the server was down, answered 5xx, timed out).
    Transient(String),
    /// No attempt can succeed (a payload that does not parse, a malformed address or URL).
    Permanent(String),
}

/// Delivers due outbox messages.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    /// The HTTP client, or why it could not be built (then every webhook attempt fails so).
    http: Result<reqwest::Client, String>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// How long a claimed message is left to the dispatcher that claimed it.
    pub const CLAIM: Duration = Duration::from_secs(300);

    /// Messages taken per [`Dispatcher::deliver_due`].
    pub const BATCH: u64 = 100;
    /// How long one webhook call may take.
    pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

    /// A dispatcher over `store`, sending mail through `mailer`, timing attempts by `clock` and
    /// retrying failures per `retry` (`max_attempts` attempts in all, then given up).
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        let http = http_client();
        if let Err(error) = &http {
            tracing::error!(%error, "no HTTP client: webhook calls will fail");
        }
        Self {
            store,
            mailer,
            clock,
            retry,
            http,
        }
    }

    /// Delivers the messages due now (at most [`Dispatcher::BATCH`]) and records each attempt;
    /// returns how many were delivered. Only storage failures are errors: a failed delivery
    /// is recorded on its message and retried later, or given up after the last attempt.
    pub async fn deliver_due(&self) -> Result<usize, DomainError> {
        let due = self
            .store
            .due_messages(self.clock.now(), Self::BATCH)
            .await?;
        let mut delivered = 0;
        for message in due {
            let at = self.clock.now();
            // Another dispatcher may have taken it since it was read.
            let Some(seen) = message.next_attempt_at else {
                continue;
            };
            if !self
                .store
                .claim_message(message.id, seen, later(at, Self::CLAIM))
                .await?
            {
                continue;
            }
            let attempt = message.attempts.saturating_add(1);
            match self.deliver(&message).await {
                Ok(()) => {
                    self.store
                        .record_attempt(message.id, at, None, None)
                        .await?;
                    tracing::debug!(id = %message.id, kind = message.kind.as_str(), attempt, "delivered");
                    delivered += 1;
                }
                Err(Failure::Transient(error)) if attempt < self.retry.max_attempts => {
                    let next = later(at, self.retry.delay(attempt));
                    self.store
                        .record_attempt(message.id, at, Some(&error), Some(next))
                        .await?;
                    tracing::info!(
                        id = %message.id,
                        kind = message.kind.as_str(),
                        attempt,
                        %next,
                        %error,
                        "delivery failed, will retry"
                    );
                }
                Err(Failure::Transient(error) | Failure::Permanent(error)) => {
                    self.store
                        .record_attempt(message.id, at, Some(&error), None)
                        .await?;
                    tracing::warn!(
                        id = %message.id,
                        kind = message.kind.as_str(),
                        attempt,
                        %error,
                        "delivery given up"
                    );
                }
            }
        }
        Ok(delivered)
    }

    /// Calls [`Dispatcher::deliver_due`] every `poll` until `shutdown` completes; errors are
    /// logged and the loop goes on. A batch under way is finished before stopping, so that no
    /// delivery goes unrecorded.
    pub async fn run(&self, poll: Duration, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            match self.deliver_due().await {
                Ok(0) => {}
                Ok(delivered) => tracing::debug!(delivered, "outbox messages delivered"),
                Err(error) => tracing::error!(%error, "outbox delivery failed"),
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// One attempt at delivering `message`.
    async fn deliver(&self, message: &OutboxMessage) -> Result<(), Failure> {
        match message.kind {
            OutboxKind::Mail => {
                let mail: Mail =
                    serde_json::from_value(message.payload.clone()).map_err(|error| {
                        Failure::Permanent(format!("the payload is not a mail: {error}"))
                    })?;
                self.mailer
                    .send(message.id, &mail)
                    .await
                    .map_err(|error| match error {
                        MailError::Address(_) | MailError::Config(_) | MailError::Template(_) => {
                            Failure::Permanent(error.to_string())
                        }
                        MailError::Send(_) | MailError::Io(_) => {
                            Failure::Transient(error.to_string())
                        }
                    })
            }
            OutboxKind::Webhook => {
                let call: WebhookCall =
                    serde_json::from_value(message.payload.clone()).map_err(|error| {
                        Failure::Permanent(format!("the payload is not a webhook call: {error}"))
                    })?;
                self.call(message.id, &call).await
            }
        }
    }

    /// POSTs the body of `call`; a 2xx answer is success.
    async fn call(&self, message_id: Uuid, call: &WebhookCall) -> Result<(), Failure> {
        let url = reqwest::Url::parse(&call.url).map_err(|error| {
            Failure::Permanent(format!(
                "webhook {}: bad URL {:?}: {error}",
                call.name, call.url
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::Permanent(format!(
                "webhook {}: URL {:?} is neither http nor https",
                call.name, call.url
            )));
        }
        let client = self
            .http
            .as_ref()
            .map_err(|error| Failure::Transient(format!("no HTTP client: {error}")))?;
        let response = client
            .post(url)
            .header("Idempotency-Key", message_id.to_string())
            .json(&call.body)
            .send()
            .await
            .map_err(|error| {
                Failure::Transient(format!("webhook {}: {}", call.name, error_chain(&error)))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(200).collect();
        Err(Failure::Transient(format!(
            "webhook {}: HTTP {status}{}{excerpt}",
            call.name,
            if excerpt.is_empty() { "" } else { ": " }
        )))
    }
}

/// `at` plus `delay`, saturating.
fn later(at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| at.checked_add_signed(delay))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// An error with its causes, `: `-joined (reqwest's own message leaves out the cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// Makes rustls over ring the process's default TLS crypto provider, unless one is set.
/// reqwest is built without a provider in this workspace (aws-lc-rs needs a C toolchain), so
/// every process must call this before it builds an HTTP client.
pub fn use_ring_for_tls() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race against another installer is fine: then there is a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The webhook client: rustls over ring, the platform's roots, a 10 s timeout, no redirects.
fn http_client() -> Result<reqwest::Client, String> {
    use_ring_for_tls();
    reqwest::Client::builder()
        .timeout(Dispatcher::WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cadre/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| error_chain(&error))
}
