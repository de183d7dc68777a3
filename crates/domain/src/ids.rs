//! Validated identifiers and normalised names.
//!
//! Each type can only hold a valid value: construct it with `parse`, which normalises first and
//! then validates. Storage adapters and lookups use the same constructors, so a value is
//! normalised identically on write and on lookup.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::DomainError;

/// An external identifier (user id, user group id): `^(?!\.)[.A-Za-z0-9_-]{1,255}$`.
///
/// Case-sensitive and never rewritten, because other systems hold it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(String);

impl ExternalId {
    /// The longest identifier accepted.
    pub const MAX_LEN: usize = 255;

    /// Validates `value` as an external identifier.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let invalid = |reason: String| DomainError::invalid("id", format!("{value:?} {reason}"));
        if value.is_empty() {
            return Err(invalid("must not be empty".to_owned()));
        }
        if value.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if value.starts_with('.') {
            return Err(invalid("must not start with '.'".to_owned()));
        }
        let allowed = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if let Some(bad) = value.chars().find(|c| !allowed(c)) {
            return Err(invalid(format!(
                "contains {bad:?}; only letters A-Z and a-z, digits, '.', '_' and '-' are allowed"
            )));
        }
        Ok(Self(value.to_owned()))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier as a name, for things named after their id (every identifier is a valid
    /// name: non-empty, short, printable ASCII without spaces).
    pub fn to_name(&self) -> Name {
        Name(self.0.clone())
    }
}

/// A human name (user name, group name, first or last name): trimmed, Unicode NFC, non-empty,
/// at most 255 characters, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// The longest name accepted, in characters.
    pub const MAX_CHARS: usize = 255;

    /// Normalises and validates `value` as a name.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let normalised: String = value.trim().nfc().collect();
        if normalised.is_empty() {
            return Err(DomainError::invalid("name", "must not be empty"));
        }
        if normalised.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::invalid(
                "name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if normalised.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address: trimmed, NFC, case-folded to lower case, `local@domain` with a dotted
/// domain, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The longest address accepted (RFC 5321 path limit).
    pub const MAX_LEN: usize = 254;

    /// Normalises and validates `value` as an email address.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let normalised: String = value.trim().nfc().flat_map(char::to_lowercase).collect();
        let invalid = |reason: &str| DomainError::invalid("email", format!("{value:?} {reason}"));
        if normalised.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 254 characters"));
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err(invalid("has no '@'"));
        };
        if local.is_empty() || local.contains('@') {
            return Err(invalid("needs exactly one '@' with a local part before it"));
        }
        let labels_ok = domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(invalid("needs a domain such as example.org after the '@'"));
        }
        if normalised
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("must not contain spaces or control characters"));
        }
        Ok(Self(normalised))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> String {
                value.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    )*};
}

string_newtype_impls!(ExternalId, Name, Email);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn external_ids_follow_the_pattern() {
        for ok in ["a", "user_1", "A.b-c_9", "x.", &"z".repeat(255)] {
            assert_eq!(
                ExternalId::parse(ok).map(|id| id.to_string()),
                Ok(ok.to_owned())
            );
        }
        for bad in [
            "",
            ".hidden",
            "has space",
            "slash/",
            "ümlaut",
            &"z".repeat(256),
        ] {
            let error = ExternalId::parse(bad).expect_err(bad);
            assert!(
                matches!(error, DomainError::InvalidArgument { ref field, .. } if field == "id")
            );
        }
    }

    #[test]
    fn external_id_errors_say_what_is_wrong() {
        let message = ExternalId::parse("a b").expect_err("space").to_string();
        assert_eq!(
            message,
            "invalid id: \"a b\" contains ' '; only letters A-Z and a-z, digits, '.', '_' and '-' are allowed"
        );
    }

    #[test]
    fn names_are_trimmed_and_nfc_normalised() {
        let decomposed = "  Jose\u{301} ";
        let name = Name::parse(decomposed).expect("valid");
        assert_eq!(name.as_str(), "Jos\u{e9}");
        assert_eq!(name, Name::parse("Jos\u{e9}").expect("valid"));
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("tab\tinside").is_err());
        assert!(Name::parse(&"n".repeat(256)).is_err());
    }

    #[test]
    fn emails_are_case_folded_and_checked() {
        let email = Email::parse("  Alice.Smith@Example.ORG ").expect("valid");
        assert_eq!(email.as_str(), "alice.smith@example.org");
        for bad in [
            "alice",
            "@example.org",
            "alice@localhost",
            "a@b@c.org",
            "a b@c.org",
            "a@-x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: ExternalId = serde_json::from_str("\"grp_1\"").expect("valid id");
        assert_eq!(ok.as_str(), "grp_1");
        let bad = serde_json::from_str::<ExternalId>("\".grp\"").expect_err("leading dot");
        assert!(bad.to_string().contains("must not start with '.'"), "{bad}");
        let email: Email = serde_json::from_str("\"Bob@Example.org\"").expect("valid email");
        assert_eq!(
            serde_json::to_string(&email).expect("serialise"),
            "\"bob@example.org\""
        );
    }

    proptest! {
        #[test]
        fn normalisation_is_idempotent(raw in "\\PC{0,40}") {
            if let Ok(name) = Name::parse(&raw) {
                prop_assert_eq!(Name::parse(name.as_str()), Ok(name.clone()));
            }
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            }
        }

        #[test]
        fn valid_external_ids_are_accepted_unchanged(id in "[A-Za-z0-9_-][.A-Za-z0-9_-]{0,254}") {
            prop_assert_eq!(ExternalId::parse(&id).map(String::from), Ok(id));
        }
    }
}
