//! Outbound provisioning targets: the applications cadre pushes its users and groups into, a SCIM
//! 2.0 service provider or an LDAP directory, as an admin configures them.
//!
//! A target's credential (a bearer token or a password) is kept sealed: encrypting and opening
//! it is the edge's business (it needs the key from the configuration and a CSPRNG); this module
//! holds the types, their rules and the repository port.

mod push;

pub use push::{
    Change, GroupSnapshot, NoOutbound, Outbound, PushError, PushState, PushStateRepository,
    ReconcileAction, ReconcileOptions, ReconcileReport, ReconcileRow, UserSnapshot,
};

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::Name;

/// How cadre reaches a target and authenticates to it (the secret apart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Connection {
    /// A SCIM 2.0 service provider.
    Scim {
        /// Its base URL, `https://host/…/scim/v2` (`http` only to this machine), without
        /// credentials, query or fragment.
        base_url: String,
        /// Basic authentication as this user, the secret its password; without it the secret
        /// is sent as a bearer token.
        #[serde(default)]
        username: Option<String>,
        /// Whether the target takes `/Bulk` requests.
        #[serde(default)]
        bulk: bool,
    },
    /// An LDAP directory.
    Ldap {
        /// `ldaps://host:port`, or `ldap://host:port` with `start_tls` (without it only to this
        /// machine); nothing after the port.
        url: String,
        /// Whether an `ldap://` connection is upgraded with StartTLS before binding.
        #[serde(default)]
        start_tls: bool,
        /// The DN cadre binds as; the secret is its password.
        bind_dn: String,
        /// Where people go (`ou=people,dc=example,dc=org`).
        people_dn: String,
        /// Where groups go (`ou=groups,dc=example,dc=org`).
        groups_dn: String,
        /// The object class of people, `inetOrgPerson` by default.
        #[serde(default = "inet_org_person")]
        user_class: String,
        /// The object class of groups, `groupOfNames` by default.
        #[serde(default = "group_of_names")]
        group_class: String,
    },
}

fn inet_org_person() -> String {
    "inetOrgPerson".to_owned()
}

fn group_of_names() -> String {
    "groupOfNames".to_owned()
}

/// The most bytes of a URL, DN, class or name in a target.
pub const MAX_SETTING_LEN: usize = 1024;

impl Connection {
    /// The kind's wire name: `scim` or `ldap`.
    pub fn kind(&self) -> &'static str {
        match self {
            Connection::Scim { .. } => "scim",
            Connection::Ldap { .. } => "ldap",
        }
    }

    /// What a credential is bound to: the kind, the address and the identity it signs in as.
    /// A stored credential never follows a target whose scope changes.
    pub fn credential_scope(&self) -> (&'static str, &str, Option<&str>) {
        match self {
            Connection::Scim {
                base_url, username, ..
            } => ("scim", base_url, username.as_deref()),
            Connection::Ldap { url, bind_dn, .. } => ("ldap", url, Some(bind_dn)),
        }
    }

    /// Refuses settings no connection could use or that would expose a credential: a SCIM URL
    /// that is not `https://host…` (or `http://` to this machine), one with credentials, a
    /// query or a fragment; an LDAP URL that is not `ldaps://host[:port]`, or
    /// `ldap://host[:port]` without StartTLS to another machine (a password would cross the
    /// network in clear); an
    /// empty setting, one with spaces around it, over [`MAX_SETTING_LEN`] bytes or with control
    /// characters.
    pub fn check(&self) -> Result<()> {
        match self {
            Connection::Scim {
                base_url, username, ..
            } => {
                setting("base_url", base_url)?;
                let (host, rest) = url_with("base_url", base_url, &["https://", "http://"])?;
                if rest.contains(['?', '#']) {
                    return Err(DomainError::invalid(
                        "base_url",
                        "must have no query or fragment",
                    ));
                }
                if starts_with_ignoring_case(base_url, "http://") && !loopback(host) {
                    return Err(DomainError::invalid(
                        "base_url",
                        "must be https:// (http:// only to this machine): the credential must \
                         not cross the network in clear",
                    ));
                }
                if let Some(username) = username {
                    setting("username", username)?;
                    if username.contains(':') {
                        return Err(DomainError::invalid(
                            "username",
                            "a basic-authentication user name has no ':'",
                        ));
                    }
                }
                Ok(())
            }
            Connection::Ldap {
                url,
                start_tls,
                bind_dn,
                people_dn,
                groups_dn,
                user_class,
                group_class,
            } => {
                for (field, value) in [
                    ("url", url),
                    ("bind_dn", bind_dn),
                    ("people_dn", people_dn),
                    ("groups_dn", groups_dn),
                    ("user_class", user_class),
                    ("group_class", group_class),
                ] {
                    setting(field, value)?;
                }
                let (host, rest) = url_with("url", url, &["ldaps://", "ldap://"])?;
                if !matches!(rest, "" | "/") {
                    return Err(DomainError::invalid(
                        "url",
                        "must end at the host and port: the DNs are settings of their own",
                    ));
                }
                if !start_tls && starts_with_ignoring_case(url, "ldap://") && !loopback(host) {
                    return Err(DomainError::invalid(
                        "start_tls",
                        "an ldap:// URL needs StartTLS (or use ldaps://; plain ldap:// only to \
                         this machine): the bind password must not cross the network in clear",
                    ));
                }
                Ok(())
            }
        }
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether `host` (with its port) names this machine.
fn loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Refuses an empty setting, one with spaces around it, one over [`MAX_SETTING_LEN`] bytes, or
/// one with control characters.
fn setting(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.trim() != value {
        return Err(DomainError::invalid(
            field,
            "must not start or end with spaces",
        ));
    }
    if value.len() > MAX_SETTING_LEN {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_SETTING_LEN} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The host (with its port) and the rest of a URL that starts with one of `schemes` followed by
/// a host without credentials; refuses any other.
fn url_with<'a>(field: &str, url: &'a str, schemes: &[&str]) -> Result<(&'a str, &'a str)> {
    let rest = schemes
        .iter()
        .find(|scheme| starts_with_ignoring_case(url, scheme))
        .map(|scheme| &url[scheme.len()..])
        .ok_or_else(|| {
            DomainError::invalid(field, format!("must start with {}", schemes.join(" or ")))
        })?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host, rest) = rest.split_at(end);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(DomainError::invalid(field, "must name a host"));
    }
    if host.contains('@') {
        return Err(DomainError::invalid(
            field,
            "must not hold credentials: they go in the target's secret, which is kept sealed",
        ));
    }
    Ok((host, rest))
}

impl Deprovision {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Deprovision::Delete => "delete",
            Deprovision::Disable => "disable",
        }
    }
}

/// Whether a target receives pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetMode {
    /// Every change is pushed.
    Enabled,
    /// Nothing is pushed until it is enabled again.
    Paused,
}

impl TargetMode {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetMode::Enabled => "enabled",
            TargetMode::Paused => "paused",
        }
    }
}

/// What a target does with a user cadre ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Deprovision {
    /// The remote user is deleted.
    Delete,
    /// The remote user is kept, disabled.
    Disable,
}

/// An application cadre provisions into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundTarget {
    /// Its id.
    pub id: Uuid,
    /// A name for people, unique among targets.
    pub name: Name,
    /// How cadre reaches it.
    pub connection: Connection,
    /// Which of cadre's user fields each target attribute takes (`mail` ← `email`); the
    /// kind's defaults ([`default_mapping`]) when not set.
    pub mapping: BTreeMap<String, String>,
    /// Whether it receives pushes.
    pub mode: TargetMode,
    /// What it does with users cadre ends.
    pub deprovision: Deprovision,
    /// The credential (bearer token or password), sealed by the edge; never shown.
    pub sealed_secret: Vec<u8>,
    /// Who configured it.
    pub created_by: String,
    /// When it was configured.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// cadre's user fields a mapping may name.
pub const USER_FIELDS: &[&str] = &[
    "user_id",
    "username",
    "firstname",
    "lastname",
    "email",
    "auth_id",
    "employee_number",
    "cost_center",
    "organization",
    "division",
    "department",
    "manager",
];

/// The most attributes a mapping names.
pub const MAX_MAPPED: usize = 64;

/// The mapping a target of `kind` (`scim`, `ldap`) starts with.
pub fn default_mapping(kind: &str) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match kind {
        "ldap" => &[
            ("uid", "user_id"),
            ("cn", "username"),
            ("givenName", "firstname"),
            ("sn", "lastname"),
            ("mail", "email"),
            ("employeeNumber", "employee_number"),
            ("departmentNumber", "department"),
        ],
        _ => &[
            ("externalId", "user_id"),
            ("userName", "username"),
            ("name.givenName", "firstname"),
            ("name.familyName", "lastname"),
            ("emails", "email"),
        ],
    };
    pairs
        .iter()
        .map(|(attribute, field)| ((*attribute).to_owned(), (*field).to_owned()))
        .collect()
}

/// Refuses a mapping with more than [`MAX_MAPPED`] attributes, an attribute name that is not
/// letters, digits, `.`, `-` or `_` (at most 128 bytes), a field cadre's users do not have, or
/// none taking `user_id` (the id a target knows a user by, and finds it again by).
pub fn check_mapping(mapping: &BTreeMap<String, String>) -> Result<()> {
    if !mapping.values().any(|field| field == "user_id") {
        return Err(DomainError::invalid(
            "mapping",
            "an attribute must take user_id: the id the target knows the user by",
        ));
    }
    if mapping.len() > MAX_MAPPED {
        return Err(DomainError::invalid(
            "mapping",
            format!("names at most {MAX_MAPPED} attributes"),
        ));
    }
    for (attribute, field) in mapping {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if attribute.is_empty() || attribute.len() > 128 || !attribute.chars().all(allowed) {
            return Err(DomainError::invalid(
                "mapping",
                format!("{attribute:?} is not an attribute name"),
            ));
        }
        if !USER_FIELDS.contains(&field.as_str()) {
            return Err(DomainError::invalid(
                "mapping",
                format!(
                    "{field:?} is not a user field; one of {}",
                    USER_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Outbound targets.
#[async_trait]
pub trait TargetRepository: Send + Sync {
    /// Stores a new target; a name another target has is a conflict.
    async fn create_target(&self, target: &OutboundTarget) -> Result<()>;
    /// One target.
    async fn target(&self, id: Uuid) -> Result<OutboundTarget>;
    /// Every target, by name (its identity key, so without case).
    async fn list_targets(&self) -> Result<Vec<OutboundTarget>>;
    /// Replaces a stored target with `target` (same id); a name another target has is a
    /// conflict.
    async fn save_target(&self, target: &OutboundTarget) -> Result<()>;
    /// Removes a target.
    async fn delete_target(&self, id: Uuid) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ldap(url: &str, start_tls: bool) -> Connection {
        Connection::Ldap {
            url: url.to_owned(),
            start_tls,
            bind_dn: "cn=cadre,dc=example,dc=org".to_owned(),
            people_dn: "ou=people,dc=example,dc=org".to_owned(),
            groups_dn: "ou=groups,dc=example,dc=org".to_owned(),
            user_class: "inetOrgPerson".to_owned(),
            group_class: "groupOfNames".to_owned(),
        }
    }

    fn scim(url: &str, username: Option<&str>) -> Connection {
        Connection::Scim {
            base_url: url.to_owned(),
            username: username.map(str::to_owned),
            bulk: false,
        }
    }

    #[test]
    fn connections_need_a_usable_url_and_no_credential_in_clear() {
        for good in [
            "https://app.example.org/scim/v2",
            "HTTP://127.0.0.1:8080",
            "http://localhost/scim",
            "http://[::1]:9000",
        ] {
            assert!(scim(good, Some("cadre")).check().is_ok(), "{good}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "https:///scim",
            "app.example.org",
            " ",
            " https://app.example.org",
            "http://app.example.org/scim/v2",
            "https://app.example.org/scim?access_token=t",
            "https://app.example.org/scim#t",
        ] {
            assert!(scim(bad, None).check().is_err(), "{bad}");
        }
        assert!(scim("https://x", Some("a:b")).check().is_err());
        let with_password = scim("https://cadre:secret@app.example.org", None).check();
        assert!(
            with_password
                .unwrap_err()
                .to_string()
                .contains("credentials")
        );

        assert!(ldap("ldaps://ldap.example.org:636", false).check().is_ok());
        assert!(ldap("ldaps://ldap.example.org:636/", false).check().is_ok());
        assert!(ldap("ldap://ldap.example.org", true).check().is_ok());
        let clear = ldap("ldap://ldap.example.org", false).check().unwrap_err();
        assert!(clear.to_string().contains("StartTLS"), "{clear}");
        assert!(ldap("ldap://127.0.0.1:3389", false).check().is_ok());
        assert!(ldap("ldap://localhost:3389", false).check().is_ok());
        assert!(ldap("ldap://127.0.0.1.example.org", false).check().is_err());
        assert!(ldap("http://ldap.example.org", true).check().is_err());
        let extension = ldap("ldaps://h/???bindname=cn=x,X-BINDPW=pw", false).check();
        assert!(extension.is_err());
        let mut no_people = ldap("ldaps://x", false);
        if let Connection::Ldap { people_dn, .. } = &mut no_people {
            people_dn.clear();
        }
        assert!(no_people.check().is_err());
        let mut spaced = ldap("ldaps://x", false);
        if let Connection::Ldap { bind_dn, .. } = &mut spaced {
            bind_dn.push(' ');
        }
        assert!(spaced.check().is_err());
        let long = format!("https://{}", "a".repeat(MAX_SETTING_LEN));
        assert!(scim(&long, None).check().is_err());
        let control = scim("https://x/\u{7}", None)
            .check()
            .unwrap_err()
            .to_string();
        assert!(control.contains("control characters"), "{control}");
    }

    #[test]
    fn a_credential_is_bound_to_the_kind_address_and_identity() {
        let app = scim("https://app.example.org", None);
        assert_eq!(
            app.credential_scope(),
            ("scim", "https://app.example.org", None)
        );
        assert_ne!(
            app.credential_scope(),
            scim("https://elsewhere.example.org", None).credential_scope()
        );
        assert_ne!(
            app.credential_scope(),
            scim("https://app.example.org", Some("cadre")).credential_scope()
        );
        assert_eq!(
            ldap("ldaps://x", false).credential_scope(),
            ("ldap", "ldaps://x", Some("cn=cadre,dc=example,dc=org"))
        );
    }

    #[test]
    fn mappings_name_attributes_user_fields_and_the_user_id() {
        assert!(check_mapping(&default_mapping("scim")).is_ok());
        assert!(check_mapping(&default_mapping("ldap")).is_ok());
        let one = |attribute: &str, field: &str| {
            check_mapping(&BTreeMap::from([(attribute.to_owned(), field.to_owned())]))
        };
        assert!(one("uid", "user_id").is_ok());
        assert!(one("mail", "email").is_err(), "no attribute takes user_id");
        let with = |attribute: &str, field: &str| {
            let mut mapping = default_mapping("scim");
            mapping.insert(attribute.to_owned(), field.to_owned());
            check_mapping(&mapping)
        };
        assert!(with("title", "department").is_ok());
        let unknown = with("secret", "password").unwrap_err().to_string();
        assert!(unknown.contains("not a user field"), "{unknown}");
        assert!(one("u id", "user_id").is_err());
        assert!(one("", "user_id").is_err());
        let many: BTreeMap<String, String> = (0..=MAX_MAPPED)
            .map(|n| (format!("a{n}"), "user_id".to_owned()))
            .collect();
        assert!(check_mapping(&many).is_err());
    }
}
