//! Password hashing: argon2id with a random salt, off the async threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use cadre_domain::DomainError;

/// The argon2id PHC string of `password`.
pub async fn hash(password: &str) -> Result<String, DomainError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(crate::tokens::no_randomness)?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|error| failed("cannot encode a salt", error))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| failed("cannot hash a password", error))
    })
    .await
    .map_err(|error| failed("the hashing task failed", error))?
}

/// A salt or a hash that could not be made: an internal error, not a storage one.
fn failed(what: &str, error: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(format!("{what}: {error}"))
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_hash_is_an_internal_error() {
        let error = failed(
            "cannot hash a password",
            argon2::password_hash::Error::Password,
        );
        assert!(matches!(error, DomainError::Internal(_)), "{error:?}");
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let first = hash("correct horse battery").await.unwrap_or_default();
        let second = hash("correct horse battery").await.unwrap_or_default();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a fresh salt each time");
        assert!(verify("correct horse battery", &first));
        assert!(!verify("wrong horse battery", &first));
    }
}
