//! What every handler shares.

use cadre_accounts::Accounts;
use cadre_engine::Engine;
use cadre_groups::WorkflowGroups;
use std::sync::Arc;

use cadre_outbound::SealingKey;
use cadre_provisioning::Provisioner;
use cadre_registration::Registration;
use cadre_registration::delivery::Dispatcher;

use crate::auth::TokenCache;
use crate::limit::ClientLimiter;
use crate::metrics::Metrics;

/// The application state handed to handlers: a handle on the [`Services`], cloned for every
/// request (by axum's `State` and each middleware that takes it), so a clone is one reference
/// count whatever the services hold.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state for `services`.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What handlers share: the engine (and through it the store and the workflow registry), the
/// workflow groups, the provisioning loads and registration.
pub struct Services {
    /// The workflow engine (starts, resumes and aborts processes; owns the store).
    pub engine: Engine,
    /// Workflow groups and their files.
    pub groups: WorkflowGroups,
    /// Bulk provisioning loads.
    pub provisioner: Provisioner,
    /// Self-registration and discoverable groups.
    pub registration: Registration,
    /// Sign-in, sessions and passwords.
    pub accounts: Accounts,
    /// The per-address budget of sign-in attempts.
    pub sign_in_limiter: Arc<ClientLimiter>,
    /// Delivers the outbox (mails, webhook calls); run by the workers' side of `cadre serve`.
    pub dispatcher: Arc<Dispatcher>,
    /// The per-address budget of the endpoints anyone may call.
    pub limiter: Arc<ClientLimiter>,
    /// Token rows read in the last second.
    pub tokens: Arc<TokenCache>,
    /// Days an audit event is kept (0: for ever).
    pub audit_retention_days: u32,
    /// Days a done outbox message keeps its body (0: for ever).
    pub outbox_retention_days: u32,
    /// Days after a process ended before its step states are emptied (0: for ever).
    pub step_state_retention_days: u32,
    /// How long and how many requests are served.
    pub limits: RequestLimits,
    /// The reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// Requests, steps and sign-in failures counted, for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The key outbound targets' credentials are sealed with; without it no target can be
    /// configured.
    pub outbound_key: Option<SealingKey>,
}

impl Services {
    /// Signs in with [`Accounts::sign_in`], counting the refusals in the metrics.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<cadre_accounts::SignedIn, cadre_accounts::AccountError> {
        let signed_in = self.accounts.sign_in(login, password, addr).await;
        if matches!(
            signed_in,
            Err(cadre_accounts::AccountError::InvalidCredentials)
        ) {
            self.metrics.sign_in_failed();
        }
        signed_in
    }
}

/// The bounds of the work requests make.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// The longest a whole request may take (then 408).
    pub request_timeout: std::time::Duration,
    /// The longest a request body may send nothing (then the request fails).
    pub body_idle: std::time::Duration,
    /// Requests handled at once; more wait their turn.
    pub max_concurrent: usize,
    /// The longest a request's headers may take to arrive (then the connection closes).
    pub header_read: std::time::Duration,
}
