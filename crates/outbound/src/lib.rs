//! Outbound provisioning: the applications cadre pushes its users and groups into
//! (`cadre_domain::outbound` holds the targets and their rules).
//!
//! A target's credential is sealed with XChaCha20-Poly1305 (the `chacha20poly1305` crate,
//! RustCrypto's audited AEAD) under a 256-bit key from the configuration, with a fresh random
//! nonce per sealing and the target's id as associated data, so that a sealed secret opens only
//! for the target it was sealed for and any change to it is detected.

pub mod connector;
pub mod ldap;
mod listing;
pub mod push;
mod reconcile;
pub mod scim;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use thiserror::Error;
use uuid::Uuid;

/// Bytes of a nonce, stored before the ciphertext.
const NONCE_LEN: usize = 24;

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SealError {
    /// The configured key is not 64 hexadecimal digits.
    #[error(
        "the outbound key must be 64 hexadecimal digits (32 bytes), as `openssl rand -hex 32` prints"
    )]
    BadKey,
    /// No randomness for a nonce.
    #[error("no randomness for a nonce: {0}")]
    Randomness(String),
    /// The cipher refused to seal (a secret too large for it).
    #[error("the secret could not be sealed")]
    Sealing,
    /// The sealed bytes were not sealed with this key for this target, or were changed.
    #[error("the sealed secret does not open with this key for this target")]
    Opening,
}

/// The key target credentials are sealed with.
#[derive(Clone)]
pub struct SealingKey(Key);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

impl SealingKey {
    /// The key in `text`: 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self(Key::from(bytes)))
    }

    /// `secret` sealed for the target `target`: nonce, then ciphertext and tag.
    pub fn seal(&self, target: Uuid, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|error| SealError::Randomness(error.to_string()))?;
        let payload = Payload {
            msg: secret,
            aad: target.as_bytes(),
        };
        let ciphertext = XChaCha20Poly1305::new(&self.0)
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Sealing)?;
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        Ok(sealed)
    }

    /// The secret `sealed` holds for the target `target`.
    pub fn open(&self, target: Uuid, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Opening);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Opening)?;
        let payload = Payload {
            msg: ciphertext,
            aad: target.as_bytes(),
        };
        XChaCha20Poly1305::new(&self.0)
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| SealError::Opening)
    }
}
