//! How accounts behave: session lifetimes, the cookie, sign-in throttling, reset links and the
//! argon2id parameters.

use std::time::Duration;

use cadre_registration::{Argon2Settings, seconds};
use serde::{Deserialize, Serialize};

/// Account settings (the `[accounts]` table of the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
    /// A session unused this long ends.
    #[serde(with = "seconds")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however much it is used.
    #[serde(with = "seconds")]
    pub session_lifetime: Duration,
    /// Whether the session cookie is `Secure` (sent over HTTPS only); by default it is when the
    /// public address (`registration.base_url`) is `https://`.
    pub secure_cookie: Option<bool>,
    /// How long a password reset link works.
    #[serde(with = "seconds")]
    pub reset_ttl: Duration,
    /// Consecutive failed sign-ins before each further one locks the account for a while,
    /// doubling from one second up to `max_lock`.
    pub free_failures: u32,
    /// The longest a soft lock lasts.
    #[serde(with = "seconds")]
    pub max_lock: Duration,
    /// Consecutive failed sign-ins after which sign-in is refused until the password is reset
    /// (at most 100, NIST SP 800-63B).
    pub max_failures: u32,
    /// Sign-in attempts allowed per client address and minute.
    pub sign_ins_per_minute: u32,
    /// Password hashes computed at once (default: one per CPU).
    pub hashing_concurrency: Option<usize>,
    /// The argon2id parameters of new hashes; a sign-in replaces a hash made with others.
    pub argon2: Argon2Settings,
    /// Days an API token lasts when its creator names no expiry.
    pub token_days: u32,
    /// The most days a token a user makes for themselves may last.
    pub token_max_days: u32,
    /// The most live (neither revoked nor expired) tokens acting for a user; past it, the user
    /// makes no more.
    pub max_tokens: usize,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            secure_cookie: None,
            reset_ttl: Duration::from_secs(3600),
            free_failures: 5,
            max_lock: Duration::from_secs(15 * 60),
            max_failures: 100,
            sign_ins_per_minute: 30,
            hashing_concurrency: None,
            argon2: Argon2Settings::default(),
            token_days: 30,
            token_max_days: 365,
            max_tokens: 50,
        }
    }
}

impl AccountSettings {
    /// How many hashes run at once.
    pub fn concurrency(&self) -> usize {
        self.hashing_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}
