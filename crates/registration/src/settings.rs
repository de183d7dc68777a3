//! How registration behaves: Magpie's settings, with a lifetime per token operation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::Webhook;

/// Registration settings (the `[registration]` table of the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Whether people may sign up at all; when false the registration routes answer 404.
    pub enabled: bool,
    /// Whether an admin approves each confirmed registration.
    pub approval_required: bool,
    /// Who gets the approve/decline links.
    pub approval_recipients: Vec<String>,
    /// Who is told of each completed registration (none: no notification).
    pub notify_recipients: Vec<String>,
    /// The shortest password accepted.
    pub password_min_length: usize,
    /// User names nobody may register (compared ignoring case).
    pub reserved_names: Vec<String>,
    /// How long a confirmation link works.
    #[serde(with = "seconds")]
    pub confirm_ttl: Duration,
    /// How long approve and decline links work.
    #[serde(with = "seconds")]
    pub decision_ttl: Duration,
    /// How long a group-terms link works.
    #[serde(with = "seconds")]
    pub terms_ttl: Duration,
    /// The public address of the server, for the links in mails.
    pub base_url: String,
    /// The name mails sign with.
    pub site_name: String,
    /// The product registered users get (a User product, by name).
    pub user_product: String,
    /// Submissions, resends and token visits allowed per client address and minute.
    pub requests_per_minute: u32,
    /// Confirmation links resent per registration (so per address) and hour; more resends
    /// answer alike and send nothing.
    pub resends_per_hour: u32,
    /// Mails sent per address and hour because a submission named it without a registration
    /// following (someone tried to register with it, or the name it came with is taken); more
    /// such submissions answer alike and send nothing.
    pub notices_per_hour: u32,
    /// Called when a registered user is created.
    pub webhooks: Vec<Webhook>,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            approval_required: false,
            approval_recipients: Vec::new(),
            notify_recipients: Vec::new(),
            password_min_length: 12,
            reserved_names: [
                "admin",
                "administrator",
                "anonymous",
                "current",
                "root",
                "system",
            ]
            .map(str::to_owned)
            .to_vec(),
            confirm_ttl: Duration::from_secs(24 * 3600),
            decision_ttl: Duration::from_secs(7 * 24 * 3600),
            terms_ttl: Duration::from_secs(7 * 24 * 3600),
            base_url: "http://127.0.0.1:8080".to_owned(),
            site_name: "cadre".to_owned(),
            user_product: "User internal".to_owned(),
            requests_per_minute: 20,
            resends_per_hour: 3,
            notices_per_hour: 3,
            webhooks: Vec::new(),
        }
    }
}

/// Durations as whole seconds in configuration files (`#[serde(with = "seconds")]`), at most
/// [`seconds::MAX`]: a longer one is a mistake, and would overflow the clock where it is added.
pub mod seconds {
    use std::time::Duration;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    /// The longest duration a setting takes: ten years, in seconds.
    pub const MAX: u64 = 10 * 365 * 24 * 3600;

    /// Writes `duration` as whole seconds.
    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(duration.as_secs())
    }

    /// Reads whole seconds, refusing more than [`MAX`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = u64::deserialize(deserializer)?;
        if seconds > MAX {
            return Err(D::Error::custom(format!(
                "{seconds} seconds is more than ten years ({MAX} seconds), the most a duration may be"
            )));
        }
        Ok(Duration::from_secs(seconds))
    }
}
