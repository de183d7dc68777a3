//! Validated identifiers and normalised names.
//!
//! Each type can only hold a valid value: construct it with `parse`, which normalises first and
//! then validates. Storage adapters and lookups use the same constructors, so a value is
//! normalised identically on write and on lookup.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

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
/// at most 255 characters, without invisible characters ([`is_invisible`]: control and format
/// characters, line and paragraph separators, spaces other than U+0020, fillers and variation
/// selectors, private-use and unassigned code points), so that two names that look alike are
/// alike. Uniqueness ignores case: see [`identity_key`].
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
        if let Some(bad) = normalised.chars().find(|c| is_invisible(*c)) {
            return Err(DomainError::invalid(
                "name",
                format!(
                    "must not contain invisible, control or format characters (found U+{:04X})",
                    u32::from(bad)
                ),
            ));
        }
        Ok(Self(normalised))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` shows as nothing (or as a blank) or changes how text around it is shown: general
/// categories Cc (control), Cf (format: zero-width spaces and joiners, bidirectional controls,
/// soft hyphens, tags), Zl and Zp (line and paragraph separators), Zs other than U+0020 (no-break
/// and other spaces), Co, Cs and Cn (private use, surrogates, unassigned), and the other
/// characters that render as blank: the Hangul fillers, the Khmer inherent vowels, the
/// combining grapheme joiner, the Mongolian free variation selectors, variation selectors and
/// the Braille blank.
pub fn is_invisible(c: char) -> bool {
    use GeneralCategory as G;
    match c.general_category() {
        G::Control
        | G::Format
        | G::LineSeparator
        | G::ParagraphSeparator
        | G::PrivateUse
        | G::Surrogate
        | G::Unassigned => true,
        G::SpaceSeparator => c != ' ',
        _ => matches!(
            c,
            '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FFA0}'
                | '\u{E0100}'..='\u{E01EF}'
        ),
    }
}

/// The key an identifying value (a user id, user name, email, group id or group name) is unique
/// by: NFKC, lower case, NFKC again (Unicode's caseless matching of compatibility forms, with
/// simple lower-casing), so that `Zed`, `zed` and a fullwidth `Ｚed` are one name. The value is
/// kept and shown as given; only its claim is folded.
pub fn identity_key(value: &str) -> String {
    let lower: String = value.nfkc().flat_map(char::to_lowercase).collect();
    lower.nfkc().collect()
}

/// Characters an unquoted local part may hold besides ASCII letters and digits (RFC 5322
/// `atext`); non-ASCII letters, marks and digits are allowed too (RFC 6532).
const ATEXT: &str = "!#$%&'*+-/=?^_`{|}~";

/// An email address, as an RFC 5322 `addr-spec` only (no display name, angle brackets,
/// comments, quoted local parts or address literals): trimmed, NFC, case-folded to lower case;
/// the local part a dot-atom of `atext` (or non-ASCII letters, marks and digits), the domain
/// converted to ASCII by IDNA (UTS #46, strict: punycode for internationalised labels) and
/// dotted, at most 254 characters in all.
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
        if normalised
            .chars()
            .any(|c| c.is_whitespace() || is_invisible(c))
        {
            return Err(invalid(
                "must not contain spaces, control, format or invisible characters",
            ));
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err(invalid("has no '@'"));
        };
        if local.is_empty() || local.contains('@') {
            return Err(invalid("needs exactly one '@' with a local part before it"));
        }
        let atom_ok = |atom: &str| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || ATEXT.contains(c)
                        || (!c.is_ascii() && (c.is_alphanumeric() || is_mark(c)))
                })
        };
        if !local.split('.').all(atom_ok) {
            return Err(invalid(
                "must be a plain address such as name@example.org: no display name, quotes, \
                 brackets, comments or dots at the ends of the name",
            ));
        }
        if local.len() > 64 {
            return Err(invalid("has a local part longer than 64 characters"));
        }
        let domain = idna::domain_to_ascii_strict(domain)
            .map_err(|_| invalid("needs a domain such as example.org after the '@'"))?;
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
        let tld_ok = domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()));
        if !domain.contains('.') || !labels_ok || !tld_ok {
            return Err(invalid("needs a domain such as example.org after the '@'"));
        }
        let address = format!("{local}@{domain}");
        if address.len() > Self::MAX_LEN {
            return Err(invalid("is longer than 254 characters"));
        }
        Ok(Self(address))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` is a combining mark (general category M), which non-ASCII local parts may hold.
fn is_mark(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::EnclosingMark
    )
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
    fn names_refuse_invisible_and_format_characters() {
        for bad in [
            "ze\u{200B}d",
            "ze\u{200D}d",
            "\u{202E}dez",
            "ze\u{AD}d",
            "z\u{2028}ed",
            "z\u{2029}ed",
            "z\u{A0}ed",
            "z\u{3000}ed",
            "z\u{3164}ed",
            "ze\u{FE0F}d",
            "z\u{E0041}ed",
            "z\u{E000}ed",
            "z\u{034F}ed",
            "\u{FEFF}zed",
        ] {
            let error = Name::parse(bad).expect_err(bad);
            assert!(error.to_string().contains("invisible"), "{error}");
        }
        for good in [
            "Zed",
            "Zoë Ångström",
            "李小龍",
            "O'Brien-Smith",
            "Jos\u{e9}",
        ] {
            assert!(Name::parse(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn identity_keys_ignore_case_and_compatibility_forms() {
        assert_eq!(identity_key("Zed"), identity_key("zed"));
        assert_eq!(identity_key("\u{FF3A}ed"), "zed");
        assert_eq!(identity_key("ÅNGSTRÖM"), identity_key("ångström"));
        assert_ne!(identity_key("zed"), identity_key("zee"));
        assert_eq!(identity_key("ada@example.org"), "ada@example.org");
    }

    #[test]
    fn emails_are_addr_specs_only() {
        for bad in [
            "\"x\"<victim@example.org>",
            "Victim <victim@example.org>",
            "<victim@example.org>",
            "victim@example.org (comment)",
            "(comment)victim@example.org",
            "\"quoted local\"@example.org",
            "victim@[192.0.2.1]",
            "victim@example.org>",
            ".victim@example.org",
            "victim.@example.org",
            "vic..tim@example.org",
            "vic\u{200B}tim@example.org",
            "victim@exa_mple.org",
            "victim@example.123",
            "a,b@example.org",
            "victim@example.org.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
        for (good, kept) in [
            ("o'brien+tag@example.org", "o'brien+tag@example.org"),
            ("First.Last@Sub.Example.ORG", "first.last@sub.example.org"),
            ("ada@bücher.example", "ada@xn--bcher-kva.example"),
            ("ada@B\u{00DC}CHER.example", "ada@xn--bcher-kva.example"),
            ("zoë@example.org", "zoë@example.org"),
        ] {
            assert_eq!(Email::parse(good).map(String::from), Ok(kept.to_owned()));
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
            let key = identity_key(&raw);
            prop_assert_eq!(identity_key(&key), key);
        }

        #[test]
        fn valid_external_ids_are_accepted_unchanged(id in "[A-Za-z0-9_-][.A-Za-z0-9_-]{0,254}") {
            prop_assert_eq!(ExternalId::parse(&id).map(String::from), Ok(id));
        }
    }
}
