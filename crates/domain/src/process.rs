//! Workflow processes as stored: statuses, targets, the step log, and the repository port the
//! engine persists through.
//!
//! Wire strings (statuses, targets) are orchestrator-core's, so its clients read them unchanged.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ports::Page;

/// A process's state: a JSON object that each step reads and patches.
pub type State = serde_json::Map<String, Value>;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire string.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| DomainError::invalid(stringify!($name), format!("unknown value {s:?}")))
            }
        }
    };
}

wire_enum!(
    /// What a workflow does to subscriptions.
    Target {
        /// Makes a new subscription.
        Create = "CREATE",
        /// Changes an existing subscription.
        Modify = "MODIFY",
        /// Ends a subscription.
        Terminate = "TERMINATE",
        /// Checks a subscription against the outside world.
        Validate = "VALIDATE",
        /// A task not bound to one subscription.
        System = "SYSTEM",
    }
);

wire_enum!(
    /// Where a process is.
    ProcessStatus {
        /// Stored, not yet picked up by a worker.
        Created = "created",
        /// A worker is executing (or will continue) its steps.
        Running = "running",
        /// Waiting for user input at an input step.
        Suspended = "suspended",
        /// A retry step failed and will be retried at `run_at`.
        Waiting = "waiting",
        /// A step failed; an operator may resume (retry), skip the step, or abort.
        Failed = "failed",
        /// Stopped for good by an operator.
        Aborted = "aborted",
        /// Every step ran.
        Completed = "completed",
        /// Resumed by an operator; a worker will pick it up.
        Resumed = "resumed",
        /// A task failed because an external API was unavailable.
        ApiUnavailable = "api_unavailable",
        /// A task found inconsistent data.
        InconsistentData = "inconsistent_data",
    }
);

wire_enum!(
    /// The outcome of one step, as logged.
    StepStatus {
        /// Ran and changed the state.
        Success = "success",
        /// Not run: its condition was false.
        Skipped = "skipped",
        /// Suspended for user input.
        Suspend = "suspend",
        /// Failed and will be retried.
        Waiting = "waiting",
        /// Failed.
        Failed = "failed",
        /// The process was aborted here.
        Abort = "abort",
        /// The last step: the process completed.
        Complete = "complete",
    }
);

impl ProcessStatus {
    /// Statuses from which an operator may resume the process.
    pub const RESUMABLE: &'static [ProcessStatus] = &[
        ProcessStatus::Suspended,
        ProcessStatus::Waiting,
        ProcessStatus::Failed,
        ProcessStatus::ApiUnavailable,
        ProcessStatus::InconsistentData,
    ];

    /// Whether the process has stopped for good.
    pub fn is_final(self) -> bool {
        matches!(self, ProcessStatus::Completed | ProcessStatus::Aborted)
    }
}

/// A process row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub id: Uuid,
    /// The workflow it runs.
    pub workflow_name: String,
    /// The version of the workflow definition it was started with.
    pub workflow_version: i64,
    /// The workflow's target.
    pub target: Target,
    /// Whether the workflow is a task (target `SYSTEM`).
    pub is_task: bool,
    /// Current status.
    pub status: ProcessStatus,
    /// Display name of the last logged step.
    pub last_step: Option<String>,
    /// Stable key of the next step to run; `None` once completed.
    pub next_step: Option<String>,
    /// The state after the last committed step.
    pub state: State,
    /// Why the last step failed.
    pub failed_reason: Option<String>,
    /// Detail of the last failure (error chain).
    pub traceback: Option<String>,
    /// Who started it.
    pub created_by: String,
    /// When it was started.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub last_modified_at: DateTime<Utc>,
    /// When a worker may next run it.
    pub run_at: DateTime<Utc>,
    /// Failed attempts of the current step so far.
    pub attempt: i64,
}

/// One entry of a process's step log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessStep {
    /// Row id.
    pub id: Uuid,
    /// The process.
    pub process_id: Uuid,
    /// Stable key of the step within its workflow.
    pub step_key: String,
    /// Display name.
    pub name: String,
    /// Outcome.
    pub status: StepStatus,
    /// The state after the step (unchanged for failures).
    pub state: State,
    /// The error of a failed or waiting step.
    pub error: Option<Value>,
    /// Who the step ran for.
    pub created_by: String,
    /// When the step started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub completed_at: DateTime<Utc>,
}

/// A process to create, in status `created`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProcess {
    /// Process id.
    pub id: Uuid,
    /// The workflow to run.
    pub workflow_name: String,
    /// Its version.
    pub workflow_version: i64,
    /// Its target.
    pub target: Target,
    /// Who starts it.
    pub created_by: String,
    /// The initial state (form answers plus process keys).
    pub state: State,
    /// The raw, validated form input, kept for audit.
    pub input: Value,
    /// Key of the first step.
    pub first_step: String,
    /// The subscription the process works on, if the input names one.
    pub subscription_id: Option<Uuid>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A worker's claim on a process. Every step commit presents it; a claim that was taken over
/// (lease expired, process aborted) no longer commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The process.
    pub process_id: Uuid,
    /// The worker holding it.
    pub owner: String,
    /// The fencing token: incremented by every claim and every operator transition.
    pub token: i64,
    /// When the claim lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// A step log entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Stable step key.
    pub step_key: String,
    /// Display name.
    pub name: String,
    /// Outcome.
    pub status: StepStatus,
    /// State after the step.
    pub state: State,
    /// Error of a failed or waiting step.
    pub error: Option<Value>,
    /// Who the step ran for.
    pub created_by: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub completed_at: DateTime<Utc>,
}

/// The process row after a step or an operator action.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessUpdate {
    /// New status.
    pub status: ProcessStatus,
    /// Display name of the last logged step.
    pub last_step: Option<String>,
    /// Key of the next step, `None` when completed.
    pub next_step: Option<String>,
    /// New state.
    pub state: State,
    /// Failure reason, cleared on success.
    pub failed_reason: Option<String>,
    /// Failure detail.
    pub traceback: Option<String>,
    /// When a worker may next run it.
    pub run_at: DateTime<Utc>,
    /// Failed attempts of the next step so far.
    pub attempt: i64,
    /// Now.
    pub now: DateTime<Utc>,
}

/// How many processes there are, for metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessCounts {
    /// Processes in each status that has any.
    pub by_status: Vec<(ProcessStatus, u64)>,
    /// Processes a worker could claim now: due, in a runnable status, their lease free or
    /// expired.
    pub runnable: u64,
    /// When the longest-waiting of those became due.
    pub oldest_runnable: Option<DateTime<Utc>>,
}

/// Which processes to list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessQuery {
    /// Only processes of this workflow.
    pub workflow_name: Option<String>,
    /// Only processes in this status.
    pub status: Option<ProcessStatus>,
    /// Only processes that touched this subscription.
    pub subscription_id: Option<Uuid>,
    /// Only processes started by this actor (exactly).
    pub created_by: Option<String>,
    /// Only processes started at or after this instant.
    pub started_since: Option<DateTime<Utc>>,
    /// Only processes started before this instant.
    pub started_before: Option<DateTime<Utc>>,
    /// Rows to skip (newest first).
    pub offset: u64,
    /// Most rows to return; `None` returns all.
    pub limit: Option<u64>,
}

/// Processes and their step logs.
#[async_trait]
pub trait ProcessRepository: Send + Sync {
    /// Stores a new process in status `created` with its initial input and its link to the
    /// subscription it works on, atomically.
    async fn create_process(&self, new: &NewProcess) -> Result<Process>;
    /// One process.
    async fn process(&self, id: Uuid) -> Result<Process>;
    /// A process's step log, oldest first.
    async fn process_steps(&self, id: Uuid) -> Result<Vec<ProcessStep>>;
    /// Processes matching `query`, newest first.
    async fn list_processes(&self, query: &ProcessQuery) -> Result<Page<Process>>;
    /// The ids of the subscriptions a process touches.
    async fn process_subscriptions(&self, id: Uuid) -> Result<Vec<Uuid>>;
    /// Records that process `id` touches `subscription_id` (idempotent).
    async fn link_subscription(
        &self,
        id: Uuid,
        subscription_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Claims one runnable process for `owner` until `expires_at`: one in `created`, `resumed` or
    /// `running`, or `waiting` and due, whose lease is free or expired. `None` when there is none.
    /// Concurrent claimers never get the same process.
    async fn claim_process(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Process, Lease)>>;
    /// Appends `steps` to the log and updates the process, if `lease` still holds; renews the
    /// lease until `renew_until`, or releases it when `renew_until` is `None`. A lost lease is
    /// [`DomainError::LeaseLost`], and the surrounding transaction must then roll back.
    async fn commit_steps(
        &self,
        lease: &Lease,
        steps: &[StepRecord],
        update: &ProcessUpdate,
        renew_until: Option<DateTime<Utc>>,
    ) -> Result<Lease>;
    /// Extends `lease` until `until` while its step runs (a heartbeat, outside the step's
    /// transaction), if it still holds; a lost lease is [`DomainError::LeaseLost`].
    async fn renew_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<Lease>;
    /// An operator action: if the process is in one of `from`, applies `update`, appends `step` if
    /// given, and revokes any worker's lease. Otherwise a conflict naming the current status.
    async fn transition_process(
        &self,
        id: Uuid,
        from: &[ProcessStatus],
        step: Option<&StepRecord>,
        update: &ProcessUpdate,
    ) -> Result<Process>;
    /// How many processes are in each status, and which could be claimed at `now`.
    async fn process_counts(&self, now: DateTime<Utc>) -> Result<ProcessCounts>;
    /// Empties the step states (each step's snapshot of the process state) of the processes that
    /// ended (completed or aborted) before `before`; their step log lines and their final state
    /// stay. Returns how many steps were emptied; a second call finds none of them again.
    async fn prune_step_states(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Stores a raw input (`initial_state` or `user_input`) of a process.
    async fn record_input(
        &self,
        id: Uuid,
        input_type: &str,
        input: &Value,
        now: DateTime<Utc>,
    ) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_match_orchestrator_core() {
        let targets: Vec<&str> = Target::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            targets,
            ["CREATE", "MODIFY", "TERMINATE", "VALIDATE", "SYSTEM"]
        );
        let statuses: Vec<&str> = ProcessStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            statuses,
            [
                "created",
                "running",
                "suspended",
                "waiting",
                "failed",
                "aborted",
                "completed",
                "resumed",
                "api_unavailable",
                "inconsistent_data"
            ]
        );
        let steps: Vec<&str> = StepStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            steps,
            [
                "success", "skipped", "suspend", "waiting", "failed", "abort", "complete"
            ]
        );
        for status in ProcessStatus::ALL {
            assert_eq!(status.as_str().parse::<ProcessStatus>(), Ok(*status));
            assert_eq!(
                serde_json::to_value(status).unwrap_or_default(),
                Value::String(status.as_str().to_owned())
            );
        }
        assert!("CREATED".parse::<ProcessStatus>().is_err());
    }
}
