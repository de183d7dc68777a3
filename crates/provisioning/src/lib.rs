//! Bulk provisioning: full and incremental loads of users and user groups, following
//! gooddata-pipelines' semantics, hardened.
//!
//! - [`input`] reads CSV, JSON and JSON Lines rows and reports every bad row (row, column,
//!   reason) before anything is written.
//! - [`Provisioner::start`] stores the rows and starts a `provision_users` or
//!   `provision_user_groups` task process in the engine: `validate >> plan >> apply batch k of
//!   n >> report`. The plan diffs the input against the stored subscriptions (lists compared as
//!   sets, nothing written for equal rows); a full load removes only subscriptions that loads
//!   manage, never protected users, and refuses to remove more than a set share unless forced.
//!   Each batch commits with its step, so a crash resumes at the next unapplied batch.
//! - Writes go through the domain models, in batches: a provisioned user is a User subscription
//!   like one the create workflow makes (active, in sync, same blocks and values).
//! - [`Provisioner::report`] returns the per-row report.

mod apply;
pub mod input;
mod plan;
mod report;
mod settings;
mod workflow;

use std::collections::BTreeSet;

use cadre_domain::models::DomainModel;
use cadre_domain::{ChunkPart, DomainError, LoadChunk, Process, ProcessStatus, Role, Store};
use cadre_engine::{Engine, EngineError};
use cadre_products::models::UserInactive;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

pub use input::{Format, InputErrors, Mode, RowError, UserGroupRow, UserRow};
pub use plan::MAX_GROUP_DEPTH;
pub use report::{Counts, Outcome, RowReport};
pub use settings::{ALWAYS_PROTECTED, LoadSettings};
pub use workflow::workflows;

/// Input rows stored per chunk.
const INPUT_CHUNK: usize = 1000;

/// What a load provisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Users.
    Users,
    /// User groups.
    UserGroups,
}

impl Kind {
    /// The task workflow that runs loads of this kind.
    pub fn workflow(self) -> &'static str {
        match self {
            Kind::Users => "provision_users",
            Kind::UserGroups => "provision_user_groups",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Users => "Provision users",
            Kind::UserGroups => "Provision user groups",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Users => "users",
            Kind::UserGroups => "user groups",
        }
    }
}

/// The rows of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// User rows.
    Users(Vec<UserRow>),
    /// User group rows.
    UserGroups(Vec<UserGroupRow>),
}

/// The first stored chunk of a load: what it is and how it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LoadHeader {
    kind: Kind,
    settings: LoadSettings,
    rows: u64,
}

/// Why a load could not start or be reported.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The process could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The process is not a load.
    #[error("process {0} is not a provisioning load")]
    NotALoad(Uuid),
}

/// A load as it stands: its process, its counts and its rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// The load's process.
    pub process_id: Uuid,
    /// Where the process is.
    pub status: ProcessStatus,
    /// Why it failed, if it did (a refused plan, a failed batch).
    pub failed_reason: Option<String>,
    /// Whether the load only planned.
    pub dry_run: bool,
    /// Batches planned and applied.
    pub batches: u64,
    /// Batches applied so far.
    pub applied: u64,
    /// The counts of `rows`.
    pub counts: Counts,
    /// One row per input row and removal: its outcome, or in a dry run its planned outcome.
    pub rows: Vec<RowReport>,
}

/// Starts loads and reports on them.
#[derive(Clone)]
pub struct Provisioner {
    engine: Engine,
}

impl Provisioner {
    /// A provisioner over `engine`, whose registry must hold [`workflows`].
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// The user ids a load by `caller` (a User subscription, or none for an operator) must
    /// not touch: `admin`, the caller, every user who holds the admin role, and every user an
    /// unrevoked admin token acts for.
    pub async fn protected_users(
        &self,
        caller: Option<Uuid>,
    ) -> Result<BTreeSet<String>, DomainError> {
        let store = self.engine.store();
        let mut subscriptions: Vec<Uuid> = store
            .list_tokens()
            .await?
            .into_iter()
            .filter(|token| token.role == Role::Admin && token.revoked_at.is_none())
            .filter_map(|token| token.user_id)
            .collect();
        subscriptions.extend(caller);
        subscriptions.extend(store.holders_of(Role::Admin).await?);
        let mut protected = BTreeSet::from([ALWAYS_PROTECTED.to_owned()]);
        for record in store.load_subscriptions(&subscriptions).await? {
            if let Ok(user) = UserInactive::from_record(record) {
                protected.extend(user.user.user_id.map(|id| id.as_str().to_owned()));
            }
        }
        Ok(protected)
    }

    /// Stores `rows` and starts the load's process; workers run it. The rows must have been
    /// read in `settings.mode`.
    pub async fn start(
        &self,
        rows: &Rows,
        settings: LoadSettings,
        created_by: &str,
    ) -> Result<Process, ProvisionError> {
        let inactive = match rows {
            Rows::Users(rows) => rows.iter().find(|row| !row.active).map(|row| row.row),
            Rows::UserGroups(rows) => rows.iter().find(|row| !row.active).map(|row| row.row),
        };
        if let (Mode::Full, Some(row)) = (settings.mode, inactive) {
            return Err(DomainError::invalid(
                "mode",
                format!("row {row} is inactive, and only incremental loads have inactive rows"),
            )
            .into());
        }
        let (kind, values) = match rows {
            Rows::Users(rows) => (Kind::Users, to_values(rows)?),
            Rows::UserGroups(rows) => (Kind::UserGroups, to_values(rows)?),
        };
        self.start_stored(kind, values, settings, created_by).await
    }

    /// Loads the input of dry run `id` again, without uploading it again: a new load with its
    /// settings but `dry_run` and `force` as given (applied, or planned again past the removal
    /// guard), protecting `protected` (the users the new caller's loads must not touch). A new
    /// load plans against the data as it is when it runs, so it applies what is true then.
    pub async fn rerun(
        &self,
        id: Uuid,
        dry_run: bool,
        force: bool,
        protected: BTreeSet<String>,
        created_by: &str,
    ) -> Result<Process, ProvisionError> {
        let process = self.engine.store().process(id).await?;
        let load_id = load_id_of(&process).ok_or(ProvisionError::NotALoad(id))?;
        let (header, values) = workflow::stored_input(self.engine.store().as_ref(), load_id)
            .await
            .map_err(|error| DomainError::Storage(error.message))?;
        if !header.settings.dry_run {
            return Err(DomainError::Conflict(format!(
                "load {id} was applied already; only a dry run's input is loaded again"
            ))
            .into());
        }
        let settings = LoadSettings {
            dry_run,
            force,
            protected,
            ..header.settings
        };
        self.start_stored(header.kind, values, settings, created_by)
            .await
    }

    /// Stores a load's rows, already as JSON, and starts its process.
    async fn start_stored(
        &self,
        kind: Kind,
        values: Vec<Value>,
        settings: LoadSettings,
        created_by: &str,
    ) -> Result<Process, ProvisionError> {
        let load_id = Uuid::now_v7();
        let header = LoadHeader {
            kind,
            settings,
            rows: values.len() as u64,
        };
        let mut chunks = vec![LoadChunk {
            seq: 0,
            content: json(&header)?,
            report: None,
        }];
        for (seq, part) in (1..).zip(values.chunks(INPUT_CHUNK)) {
            chunks.push(LoadChunk {
                seq,
                content: Value::Array(part.to_vec()),
                report: None,
            });
        }
        let store: &dyn Store = self.engine.store().as_ref();
        store
            .add_load_chunks(
                load_id,
                ChunkPart::Input,
                &chunks,
                self.engine.clock().now(),
            )
            .await?;
        let page = serde_json::json!({ "load_id": load_id });
        Ok(self
            .engine
            .start(kind.workflow(), &[page], created_by)
            .await?)
    }

    /// The report of the load run by process `id`.
    pub async fn report(&self, id: Uuid) -> Result<LoadReport, ProvisionError> {
        let store = self.engine.store();
        let process = store.process(id).await?;
        let load_id = load_id_of(&process).ok_or(ProvisionError::NotALoad(id))?;
        let dry_run = process
            .state
            .get("settings")
            .and_then(|settings| settings.get("dry_run"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let rows = workflow::report_rows(store.as_ref(), load_id, dry_run)
            .await
            .map_err(|error| DomainError::Storage(error.message))?;
        let count = |key: &str| process.state.get(key).and_then(Value::as_u64).unwrap_or(0);
        Ok(LoadReport {
            process_id: id,
            status: process.status,
            failed_reason: process.failed_reason.clone(),
            dry_run,
            batches: count("batches"),
            applied: count("applied"),
            counts: Counts::of(&rows),
            rows,
        })
    }
}

/// The load a process runs, if it is a load.
fn load_id_of(process: &Process) -> Option<Uuid> {
    let is_load = [Kind::Users, Kind::UserGroups]
        .iter()
        .any(|kind| kind.workflow() == process.workflow_name);
    process
        .state
        .get("load_id")
        .and_then(|id| serde_json::from_value::<Uuid>(id.clone()).ok())
        .filter(|_| is_load)
}

fn json(value: &impl Serialize) -> Result<Value, DomainError> {
    serde_json::to_value(value).map_err(|error| DomainError::invalid("load", error.to_string()))
}

fn to_values<T: Serialize>(rows: &[T]) -> Result<Vec<Value>, DomainError> {
    rows.iter().map(json).collect()
}
