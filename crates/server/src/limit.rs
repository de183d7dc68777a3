//! Rate limiting per client address, for the endpoints anyone can call (registration
//! submissions and token links).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::ConnectInfo;
use axum::http::Extensions;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

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

/// The address of the client a request came from, when the server runs with connection
/// information (`cadre serve` does).
pub fn client_addr(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}
