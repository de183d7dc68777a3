//! How a load runs: its mode and safety settings, recorded in its process state.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::input::Mode;

/// The user loads never create, change or remove, whatever the input says.
pub const ALWAYS_PROTECTED: &str = "admin";

/// The settings of one load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadSettings {
    /// Full (the input is the whole truth) or incremental (the input lists changes).
    pub mode: Mode,
    /// Plan only: report what would change and write nothing.
    pub dry_run: bool,
    /// Apply a full load even when it removes more than `max_removal_percent`.
    pub force: bool,
    /// The largest share of the managed subscriptions, in percent, that a full load may
    /// remove without `force`.
    pub max_removal_percent: u32,
    /// Changes per transaction.
    pub batch_size: usize,
    /// User ids loads never touch: `admin`, the caller, the users behind admin tokens.
    pub protected: BTreeSet<String>,
    /// The product new users get (a User product, by name).
    pub user_product: String,
    /// Create users as the create workflow would: a row whose user id is held already fails,
    /// and the users created are not the loads' to manage (a later full load leaves them
    /// alone). SCIM's `/Bulk` creates users this way.
    #[serde(default)]
    pub create_only: bool,
}

impl LoadSettings {
    /// The default settings for `mode`: no dry run, no force, at most 20% removed, batches
    /// of 1000, only `admin` protected, new users on `User internal`, managed by loads.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            dry_run: false,
            force: false,
            max_removal_percent: 20,
            batch_size: 1000,
            protected: BTreeSet::from([ALWAYS_PROTECTED.to_owned()]),
            user_product: "User internal".to_owned(),
            create_only: false,
        }
    }
}
