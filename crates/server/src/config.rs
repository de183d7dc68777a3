//! Server configuration: defaults, then a TOML file, then `CADRE_*` environment variables
//! (and `DATABASE_URL`), then command-line flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use cadre_accounts::AccountSettings;
use cadre_outbound::SealingKey;
use cadre_registration::RegistrationSettings;
use cadre_registration::mail::SmtpConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Which parts of the server a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The API and the engine workers.
    #[default]
    All,
    /// The API only; workers run elsewhere on the same database.
    ApiOnly,
    /// Engine workers only, no listener.
    WorkersOnly,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for a log collector: fields stay fields, and text from
    /// requests cannot break a line.
    Json,
}

/// Everything `cadre serve` needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://FILE?mode=rwc` (created if absent) or `postgres://…`.
    pub database_url: String,
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// Engine workers to run in this process.
    pub workers: usize,
    /// Seconds a worker's claim on a process lasts without a step commit or a renewal; a
    /// process whose worker died is taken over by another after this.
    pub lease_seconds: u64,
    /// Which parts to run.
    pub mode: Mode,
    /// Log filter in `RUST_LOG` syntax, e.g. `info` or `cadre_engine=debug,info`.
    pub log: String,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The folder workflow groups' files are kept in (created if absent).
    pub files_dir: PathBuf,
    /// The largest file a workflow group accepts, in bytes.
    pub max_upload_bytes: u64,
    /// Self-registration (`[registration]`; off by default).
    pub registration: RegistrationSettings,
    /// Sign-in, sessions and passwords (`[accounts]`).
    pub accounts: AccountSettings,
    /// The SMTP server mail goes through (`[smtp]`); without one, mails are written as `.eml`
    /// files to `mail_dir`.
    pub smtp: Option<SmtpConfig>,
    /// Where mails go without an SMTP server (created if absent).
    pub mail_dir: PathBuf,
    /// A folder whose mail templates replace the bundled ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// Seconds before a failed mail or webhook call is tried again; the wait doubles with each
    /// attempt, up to an hour, for ten attempts.
    pub outbox_retry_seconds: u64,
    /// Days an audit event is kept; older ones are purged (0 keeps them for ever).
    pub audit_retention_days: u32,
    /// Days a delivered (or given up) mail or webhook call keeps its body, links included; then
    /// only its record of delivery stays (0 keeps bodies for ever).
    pub outbox_retention_days: u32,
    /// Days after a process ended (completed or aborted) before its steps' state snapshots are
    /// emptied; its step log and final state stay (0 keeps them for ever).
    pub step_state_retention_days: u32,
    /// Seconds a whole request may take, from its headers to its answer (then 408).
    pub request_timeout_seconds: u64,
    /// Seconds a request body may send nothing before the request is given up.
    pub body_idle_seconds: u64,
    /// Seconds a request's headers may take to arrive; then the connection closes.
    pub header_timeout_seconds: u64,
    /// Requests handled at once; more wait their turn.
    pub max_concurrent_requests: usize,
    /// The reverse proxies in front of cadre: from them, `X-Forwarded-For` names the client
    /// (for rate limits and the audit log); from anyone else it is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// Where to serve `GET /metrics` to anyone who reaches it (e.g. `127.0.0.1:9464`, for a
    /// Prometheus beside cadre); without it, `/metrics` beside the API answers admins only.
    pub metrics_address: Option<SocketAddr>,
    /// The key outbound targets' credentials are sealed with: 64 hexadecimal digits (`openssl
    /// rand -hex 32`), best given as `CADRE_OUTBOUND_KEY`; without it no target can be
    /// configured. Losing it loses the stored credentials (set them again).
    pub outbound_key: Option<SecretSetting>,
}

/// A setting that is a secret: read as text, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretSetting(pub String);

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The default database: `cadre.db` in the working directory, created if absent.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cadre.db?mode=rwc";

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            workers: 2,
            lease_seconds: 30,
            mode: Mode::All,
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            files_dir: PathBuf::from("cadre-files"),
            max_upload_bytes: cadre_groups::DEFAULT_MAX_FILE_SIZE,
            registration: RegistrationSettings::default(),
            accounts: AccountSettings::default(),
            smtp: None,
            mail_dir: PathBuf::from("cadre-mail"),
            templates_dir: None,
            outbox_retry_seconds: 30,
            audit_retention_days: 365,
            outbox_retention_days: 7,
            step_state_retention_days: 90,
            request_timeout_seconds: 300,
            body_idle_seconds: 30,
            header_timeout_seconds: 10,
            max_concurrent_requests: 256,
            trusted_proxies: Vec::new(),
            metrics_address: None,
            outbound_key: None,
        }
    }
}

impl Config {
    /// The sealing key `outbound_key` gives, if any.
    pub fn outbound_key(&self) -> Result<Option<SealingKey>, cadre_outbound::SealError> {
        self.outbound_key
            .as_ref()
            .map(|key| SealingKey::from_hex(&key.0))
            .transpose()
    }

    /// Defaults, overridden by the TOML file at `file` (which must exist if given), then by
    /// `CADRE_DATABASE_URL`, `CADRE_BIND`, `CADRE_PORT`, `CADRE_WORKERS`, `CADRE_MODE`,
    /// `CADRE_LOG`, `CADRE_LOG_FORMAT`, `CADRE_FILES_DIR`, `CADRE_MAX_UPLOAD_BYTES`, and by `DATABASE_URL`.
    /// (`CADRE_CONFIG` names the file and is not a setting.)
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "configuration file {} does not exist",
                    file.display()
                ))));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("CADRE_").ignore(&["config"]).split("__"))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .map_err(Box::new)?;
        config
            .check()
            .map_err(|problem| Box::new(figment::Error::from(problem)))?;
        Ok(config)
    }

    /// Refuses settings beyond what cadre can use (durations are bounded where they are read).
    fn check(&self) -> Result<(), String> {
        self.outbound_key()
            .map_err(|error| format!("outbound_key: {error}"))?;
        let at_least_one = [
            ("lease_seconds", self.lease_seconds),
            ("request_timeout_seconds", self.request_timeout_seconds),
            ("body_idle_seconds", self.body_idle_seconds),
            ("header_timeout_seconds", self.header_timeout_seconds),
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
            ),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(format!("{key} is 0; it must be at least 1"));
            }
        }
        let bounded = [
            ("lease_seconds", self.lease_seconds, 3_600),
            (
                "request_timeout_seconds",
                self.request_timeout_seconds,
                86_400,
            ),
            ("body_idle_seconds", self.body_idle_seconds, 3_600),
            ("header_timeout_seconds", self.header_timeout_seconds, 3_600),
            (
                "max_concurrent_requests",
                self.max_concurrent_requests as u64,
                100_000,
            ),
            (
                "audit_retention_days",
                u64::from(self.audit_retention_days),
                36_500,
            ),
            (
                "outbox_retention_days",
                u64::from(self.outbox_retention_days),
                36_500,
            ),
            (
                "step_state_retention_days",
                u64::from(self.step_state_retention_days),
                36_500,
            ),
            ("outbox_retry_seconds", self.outbox_retry_seconds, 86_400),
            (
                "accounts.token_days",
                u64::from(self.accounts.token_days),
                36_500,
            ),
            (
                "accounts.token_max_days",
                u64::from(self.accounts.token_max_days),
                36_500,
            ),
        ];
        for (key, value, most) in bounded {
            if value > most {
                return Err(format!("{key} is {value}; it may be at most {most}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
// figment's `Jail` closures return its large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "cadre.toml",
                "port = 9000\nworkers = 4\nmode = \"api-only\"\n",
            )?;
            jail.set_env("CADRE_WORKERS", "8");
            let config = Config::load(Some(Path::new("cadre.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.port, 9000);
            assert_eq!(config.workers, 8);
            assert_eq!(config.mode, Mode::ApiOnly);
            assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
            Ok(())
        });
    }

    #[test]
    fn database_url_selects_the_database() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("DATABASE_URL", "postgres://db.example/cadre");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.database_url, "postgres://db.example/cadre");
            Ok(())
        });
    }

    #[test]
    fn the_variable_naming_the_file_is_not_a_setting() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("cadre.toml", "files_dir = \"/srv/cadre-files\"\n")?;
            jail.set_env("CADRE_CONFIG", "cadre.toml");
            jail.set_env("CADRE_MAX_UPLOAD_BYTES", "1024");
            let config = Config::load(Some(Path::new("cadre.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.files_dir, PathBuf::from("/srv/cadre-files"));
            assert_eq!(config.max_upload_bytes, 1024);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("cadre.toml", "prot = 9000\n")?;
            assert!(Config::load(Some(Path::new("cadre.toml"))).is_err());
            assert!(Config::load(Some(Path::new("absent.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn settings_beyond_what_cadre_can_use_are_refused_with_their_key() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            for (key, value, said) in [
                (
                    "CADRE_REGISTRATION__CONFIRM_TTL",
                    "18446744073709551615",
                    "more than ten years",
                ),
                (
                    "CADRE_ACCOUNTS__SESSION_IDLE",
                    "315360001",
                    "more than ten years",
                ),
                ("CADRE_AUDIT_RETENTION_DAYS", "4000000000", "at most 36500"),
                ("CADRE_OUTBOX_RETRY_SECONDS", "86401", "at most 86400"),
                ("CADRE_ACCOUNTS__TOKEN_MAX_DAYS", "36501", "at most 36500"),
                ("CADRE_OUTBOUND_KEY", "not-hex", "outbound_key"),
            ] {
                jail.set_env(key, value);
                let error = Config::load(None).unwrap_err().to_string();
                assert!(error.contains(said), "{key}: {error}");
                jail.clear_env();
            }
            jail.set_env("CADRE_REGISTRATION__CONFIRM_TTL", "315360000");
            assert!(Config::load(None).is_ok(), "ten years is allowed");
            jail.set_env("CADRE_OUTBOUND_KEY", "ab".repeat(32));
            let config = Config::load(None).unwrap();
            assert!(config.outbound_key().unwrap().is_some());
            assert!(
                !format!("{config:?}").contains(&"ab".repeat(32)),
                "the key is never shown"
            );
            Ok(())
        });
    }
}
