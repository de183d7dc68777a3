//! Registration tokens on the wire: `<id>.<secret>`, 32 and 64 lowercase hex digits. The id
//! finds the stored token; the 256-bit secret, from the operating system's CSPRNG, is stored
//! only as its SHA-256 and compared in constant time. Accounts' sessions and reset links take the
//! same shape ([`new_secret`], [`parse`], [`secret_matches`]).

use cadre_domain::{DomainError, Email, RegistrationToken, TokenOperation};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A registration link's token just issued: what to store, and the one time its plain form
/// exists (an API token's counterpart is `cadre_server::auth::IssuedToken`).
#[derive(Debug, Clone)]
pub struct IssuedLink {
    /// What the store keeps.
    pub token: RegistrationToken,
    /// What goes into the link; never stored, never returned by the API.
    pub plain: String,
}

/// What a token is about.
#[derive(Debug, Clone, Default)]
pub struct TokenSubject {
    /// The pending user (registration operations).
    pub pending_user_id: Option<Uuid>,
    /// The User subscription (group terms).
    pub user_id: Option<Uuid>,
    /// The UserGroup subscription (group terms).
    pub group_id: Option<Uuid>,
    /// The address the token proves (email changes).
    pub email: Option<Email>,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh 256-bit secret from the operating system's CSPRNG, as 64 hex digits, and the hash
/// to store in its place.
pub fn new_secret() -> Result<(String, String), DomainError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(no_randomness)?;
    let secret = hex::encode(secret);
    let hashed = hash(&secret);
    Ok((secret, hashed))
}

/// Whether `secret` hashes to `stored_hash`, compared in constant time.
pub fn secret_matches(stored_hash: &str, secret: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Issues a token for `operation` about `subject`, valid for `ttl` from `now`.
pub fn issue(
    operation: TokenOperation,
    subject: TokenSubject,
    now: DateTime<Utc>,
    ttl: TimeDelta,
) -> Result<IssuedLink, DomainError> {
    let (secret, secret_hash) = new_secret()?;
    let token = RegistrationToken {
        id: Uuid::now_v7(),
        secret_hash,
        operation,
        pending_user_id: subject.pending_user_id,
        user_id: subject.user_id,
        group_id: subject.group_id,
        email: subject.email,
        created_at: now,
        expires_at: now + ttl,
    };
    let plain = format!("{}.{secret}", token.id.simple());
    Ok(IssuedLink { token, plain })
}

/// The operating system could not give random bytes: an internal error, not a storage one.
pub(crate) fn no_randomness(error: getrandom::Error) -> DomainError {
    DomainError::Internal(format!("no randomness available: {error}"))
}

/// The id and secret of a plain token, or `None` when it is not of the token's shape.
pub fn parse(plain: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = plain.split_once('.')?;
    let hex_of = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !hex_of(id, 32) || !hex_of(secret, 64) {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// Whether `secret` is the secret of `token`, compared in constant time.
pub fn matches(token: &RegistrationToken, secret: &str) -> bool {
    secret_matches(&token.secret_hash, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_randomness_is_an_internal_error() {
        let error = no_randomness(getrandom::Error::UNSUPPORTED);
        assert!(matches!(error, DomainError::Internal(_)), "{error:?}");
    }

    #[test]
    fn an_issued_token_parses_and_matches_only_its_own_secret() {
        let now = Utc::now();
        let issued = issue(
            TokenOperation::ConfirmEmail,
            TokenSubject::default(),
            now,
            TimeDelta::hours(1),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let (id, secret) = parse(&issued.plain).unwrap_or_else(|| panic!("unparsable"));
        assert_eq!(id, issued.token.id);
        assert!(matches(&issued.token, secret));
        assert!(!matches(&issued.token, &"0".repeat(64)));
        assert_ne!(issued.token.secret_hash, secret, "only a hash is kept");
        assert_eq!(issued.token.expires_at, now + TimeDelta::hours(1));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let id = "0".repeat(32);
        let secret = "a".repeat(64);
        assert!(parse(&format!("{id}.{secret}")).is_some());
        for bad in [
            String::new(),
            format!("{id}{secret}"),
            format!("{id}.{}", "A".repeat(64)),
            format!("{id}.{}", "a".repeat(63)),
            format!("{}.{secret}", "g".repeat(32)),
            format!("{id}.{secret}.x"),
        ] {
            assert!(parse(&bad).is_none(), "{bad:?} parsed");
        }
    }
}
