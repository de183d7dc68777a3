//! Self-registration, Magpie's procedure hardened: people sign up as pending users, prove their
//! email address with a single-use link, an admin may approve or decline, and completion creates
//! the real user through the create User workflow's steps. Discoverable groups can be joined
//! (after accepting their terms, if they have any). Mails and webhook calls go through an
//! outbox written in the same transaction as the change that causes them.
//!
//! Tokens are 256-bit secrets from the operating system's CSPRNG, stored as SHA-256 hashes,
//! compared in constant time, single use, with a lifetime per operation; passwords are kept
//! only as argon2id hashes; a GET never changes anything.

pub mod delivery;
mod hooks;
pub mod mail;
pub mod password;
mod service;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
mod workflows;

pub use hooks::UserWebhooks;
pub use password::{Argon2Settings, Passwords, Verified};
pub use service::{
    Joined, PendingView, PublicGroup, Redeemed, Registration, RegistrationError, TokenView, Visitor,
};
pub use settings::{RegistrationSettings, seconds};
pub use workflows::{COMPLETE_REGISTRATION, JOIN_USER_GROUP, LEAVE_USER_GROUP, workflows};
