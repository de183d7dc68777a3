//! Rate limiting per client address, for the endpoints anyone can call (registration
//! submissions and token links).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::state::AppState;

/// Requests allowed per client address and minute, with bursts up to the same number.
pub struct ClientLimiter(DefaultKeyedRateLimiter<IpAddr>);

impl ClientLimiter {
    /// A limiter allowing `per_minute` requests per address (at least one).
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self(RateLimiter::keyed(Quota::per_minute(per_minute)))
    }

    /// Counts a request from the client the connection came from (one shared budget when
    /// the server runs without connection information); 429 when its budget is spent, with
    /// `Retry-After` saying when the next request is allowed.
    pub fn check(&self, extensions: &Extensions) -> Result<(), ApiError> {
        let address = client_addr(extensions).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.0.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })?;
        // Forget addresses whose budget is full again, so the table stays small.
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        Ok(())
    }
}

/// The address of the client a request came from: the one a trusted proxy forwarded it for
/// (see [`forwarded_client`]), else the connection's peer when the server runs with connection
/// information (`cadre serve` does).
pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ForwardedFor(address)) = extensions.get::<ForwardedFor>() {
        return Some(*address);
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// The client a trusted proxy says it forwarded a request for.
#[derive(Debug, Clone, Copy)]
struct ForwardedFor(IpAddr);

/// When the connection comes from one of the configured `trusted_proxies`, takes the client
/// from `X-Forwarded-For`: the right-most address there that is not itself a trusted proxy (the
/// ones to its left could be written by anyone). From anyone else the header is ignored.
pub(crate) async fn forwarded_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(peer) = peer
        && state.trusted_proxies.contains(&peer)
    {
        let trusted = |address: &IpAddr| state.trusted_proxies.contains(address);
        let client = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map_while(|address| address.parse::<IpAddr>().ok())
            .find(|address| !trusted(address));
        if let Some(client) = client {
            request.extensions_mut().insert(ForwardedFor(client));
        }
    }
    next.run(request).await
}
