//! What operators do to processes: resume (with input, or as a retry), skip a step, abort.

use std::sync::Arc;

use cadre_domain::{
    AuditAction, AuditEvent, DomainError, Process, ProcessStatus, ProcessUpdate, State, StepRecord,
    StepStatus, StoreTransaction,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{Engine, EngineError};
use crate::InputForm;
use crate::no_input::NoInput;
use crate::step::{Step, StepKind, merge};
use crate::workflow::Workflow;

impl Engine {
    /// The form suspended process `id` waits for, and the state its answers are validated
    /// against (what [`Engine::resume`] checks them with); a process that is not suspended is
    /// a conflict.
    pub async fn awaited_form(&self, id: Uuid) -> Result<(Arc<dyn InputForm>, State), EngineError> {
        let process = self.store.process(id).await?;
        if process.status != ProcessStatus::Suspended {
            return Err(DomainError::Conflict(format!(
                "process {id} is {}; only a suspended process waits for input",
                process.status
            ))
            .into());
        }
        let workflow = self.workflow(&process.workflow_name)?;
        let key = process.next_step.clone().unwrap_or_default();
        let (step, _) = current_step(workflow, &key)?;
        match &step.kind {
            StepKind::Input(form) => Ok((Arc::clone(form), process.state)),
            _ => Err(EngineError::NotStartable(format!(
                "step {key:?} takes no input"
            ))),
        }
    }

    /// Resumes a process: a suspended one with input for its input step (validated like a start),
    /// a failed or waiting one by running the failed step again (`pages` must be `[]` or `[{}]`).
    /// Audited as `process_resumed` by `user` (a refusal too).
    pub async fn resume(
        &self,
        id: Uuid,
        pages: &[Value],
        user: &str,
    ) -> Result<Process, EngineError> {
        let result = self.resume_audited(id, pages, user).await;
        self.audit_refusal(result, || self.event(AuditAction::ProcessResumed, user, id))
            .await
    }

    async fn resume_audited(
        &self,
        id: Uuid,
        pages: &[Value],
        user: &str,
    ) -> Result<Process, EngineError> {
        let process = self.store.process(id).await?;
        let workflow = self.workflow(&process.workflow_name)?;
        let key = process.next_step.clone().unwrap_or_default();
        let now = self.clock.now();
        if process.status == ProcessStatus::Suspended {
            let (step, following) = current_step(workflow, &key)?;
            let StepKind::Input(form) = &step.kind else {
                return Err(EngineError::NotStartable(format!(
                    "step {key:?} takes no input"
                )));
            };
            let input = form
                .submit(self.store.as_ref(), &process.state, pages)
                .await?;
            let mut state = process.state.clone();
            merge(&mut state, input);
            let txn = self.store.begin().await?;
            txn.record_input(id, "user_input", &Value::Array(pages.to_vec()), now)
                .await?;
            let resumed = self
                .operator_transition(
                    txn,
                    id,
                    &[ProcessStatus::Suspended],
                    Some(&operator_record(
                        step,
                        StepStatus::Success,
                        &state,
                        user,
                        now,
                    )),
                    &operator_update(
                        ProcessStatus::Resumed,
                        Some(&step.name),
                        following,
                        &state,
                        now,
                    ),
                    self.event(AuditAction::ProcessResumed, user, id)
                        .detail(format!("with input for step {:?}", step.name)),
                )
                .await?;
            return Ok(resumed);
        }
        let retryable = retryable_statuses();
        if !retryable.contains(&process.status) {
            let wanted: Vec<&str> = retryable.iter().map(|status| status.as_str()).collect();
            return Err(DomainError::Conflict(format!(
                "process {id} is {}; this action needs one of: {}",
                process.status,
                wanted.join(", ")
            ))
            .into());
        }
        // A retry takes no input: `[]`, or the one empty page of an empty form.
        if !pages.is_empty() {
            NoInput
                .submit(self.store.as_ref(), &process.state, pages)
                .await?;
        }
        let txn = self.store.begin().await?;
        let resumed = self
            .operator_transition(
                txn,
                id,
                &retryable_statuses(),
                None,
                &operator_update(
                    ProcessStatus::Resumed,
                    process.last_step.as_deref(),
                    Some(key),
                    &process.state,
                    now,
                ),
                self.event(AuditAction::ProcessResumed, user, id)
                    .detail(format!("retry of a {} process", process.status)),
            )
            .await?;
        Ok(resumed)
    }

    /// Skips the failed (or waiting) step of a process, logging it as skipped, and lets a worker
    /// continue with the step after it. Audited as `process_skipped` by `user` (a refusal too).
    pub async fn skip_step(&self, id: Uuid, user: &str) -> Result<Process, EngineError> {
        let result = self.skip_audited(id, user).await;
        self.audit_refusal(result, || self.event(AuditAction::ProcessSkipped, user, id))
            .await
    }

    async fn skip_audited(&self, id: Uuid, user: &str) -> Result<Process, EngineError> {
        let process = self.store.process(id).await?;
        let retryable = retryable_statuses();
        if !retryable.contains(&process.status) {
            return Err(DomainError::Conflict(format!(
                "process {id} is {}; only a failed or waiting step can be skipped",
                process.status
            ))
            .into());
        }
        let workflow = self.workflow(&process.workflow_name)?;
        let key = process.next_step.clone().unwrap_or_default();
        let (step, following) = current_step(workflow, &key)?;
        let now = self.clock.now();
        let txn = self.store.begin().await?;
        let skipped = self
            .operator_transition(
                txn,
                id,
                &retryable,
                Some(&operator_record(
                    step,
                    StepStatus::Skipped,
                    &process.state,
                    user,
                    now,
                )),
                &operator_update(
                    ProcessStatus::Resumed,
                    Some(&step.name),
                    following,
                    &process.state,
                    now,
                ),
                self.event(AuditAction::ProcessSkipped, user, id)
                    .detail(format!("step {:?}", step.name)),
            )
            .await?;
        Ok(skipped)
    }

    /// Aborts an unfinished process. A worker running it loses its lease: its current step
    /// rolls back and nothing more runs. Subscriptions the process locked are in sync again
    /// (so that the next workflow can take them), in the same transaction. Audited as
    /// `process_aborted` by `user`, with what was released (a refusal too).
    pub async fn abort(&self, id: Uuid, user: &str) -> Result<Process, EngineError> {
        let result = self.abort_audited(id, user).await;
        self.audit_refusal(result, || self.event(AuditAction::ProcessAborted, user, id))
            .await
    }

    async fn abort_audited(&self, id: Uuid, user: &str) -> Result<Process, EngineError> {
        let process = self.store.process(id).await?;
        let now = self.clock.now();
        let unfinished: Vec<ProcessStatus> = ProcessStatus::ALL
            .iter()
            .copied()
            .filter(|status| !status.is_final())
            .collect();
        let abort_step = StepRecord {
            step_key: "abort".to_owned(),
            name: "User Aborted".to_owned(),
            status: StepStatus::Abort,
            state: process.state.clone(),
            error: None,
            created_by: user.to_owned(),
            started_at: now,
            completed_at: now,
        };
        // A process that locked its subscriptions ("unsync" ran, "resync" did not) releases
        // them: nothing else will. A lock another process holds is not this one's to release.
        let holds_lock = self
            .store
            .process_steps(id)
            .await?
            .iter()
            .rev()
            .find(|step| {
                step.status == StepStatus::Success
                    && (step.step_key == "unsync" || step.step_key == "resync")
            })
            .is_some_and(|step| step.step_key == "unsync");
        let txn = self.store.begin().await?;
        let mut released = Vec::new();
        if holds_lock {
            for subscription in txn.process_subscriptions(id).await? {
                let mut record = txn.load_subscription(subscription).await?;
                if !record.subscription.insync {
                    record.subscription.insync = true;
                    txn.save_subscription(&record).await?;
                    released.push(subscription.to_string());
                }
            }
        }
        let mut detail = format!("was {}", process.status);
        if !released.is_empty() {
            detail.push_str(&format!("; released {}", released.join(", ")));
        }
        let aborted = self
            .operator_transition(
                txn,
                id,
                &unfinished,
                Some(&abort_step),
                &ProcessUpdate {
                    last_step: Some("User Aborted".to_owned()),
                    ..operator_update(
                        ProcessStatus::Aborted,
                        None,
                        process.next_step.clone(),
                        &process.state,
                        now,
                    )
                },
                self.event(AuditAction::ProcessAborted, user, id)
                    .detail(detail),
            )
            .await?;
        Ok(aborted)
    }
}

impl Engine {
    /// Moves process `id` from one of `from` as `update` says (logging `record` if given) in
    /// `txn`, after whatever `txn` already holds, records `event` there, commits, and wakes
    /// this engine's workers (the process may be runnable again).
    async fn operator_transition(
        &self,
        txn: Box<dyn StoreTransaction>,
        id: Uuid,
        from: &[ProcessStatus],
        record: Option<&StepRecord>,
        update: &ProcessUpdate,
        event: AuditEvent,
    ) -> Result<Process, EngineError> {
        let moved = txn.transition_process(id, from, record, update).await?;
        txn.record_audit(&event).await?;
        txn.commit().await?;
        self.wake_workers();
        Ok(moved)
    }
}

/// The step with `key` and the key of the step after it.
fn current_step<'a>(
    workflow: &'a Workflow,
    key: &str,
) -> Result<(&'a Step, Option<String>), EngineError> {
    let (index, step) = workflow
        .steps
        .find(key)
        .ok_or_else(|| EngineError::NotStartable(format!("the process has no step {key:?}")))?;
    let following = workflow
        .steps
        .steps()
        .get(index + 1)
        .map(|step| step.key.clone());
    Ok((step, following))
}

fn retryable_statuses() -> Vec<ProcessStatus> {
    ProcessStatus::RESUMABLE
        .iter()
        .copied()
        .filter(|status| *status != ProcessStatus::Suspended)
        .collect()
}

fn operator_record(
    step: &Step,
    status: StepStatus,
    state: &State,
    user: &str,
    now: DateTime<Utc>,
) -> StepRecord {
    StepRecord {
        step_key: step.key.clone(),
        name: step.name.clone(),
        status,
        state: state.clone(),
        error: None,
        created_by: user.to_owned(),
        started_at: now,
        completed_at: now,
    }
}

fn operator_update(
    status: ProcessStatus,
    last_step: Option<&str>,
    next_step: Option<String>,
    state: &State,
    now: DateTime<Utc>,
) -> ProcessUpdate {
    ProcessUpdate {
        status,
        last_step: last_step.map(str::to_owned),
        next_step,
        state: state.clone(),
        failed_reason: None,
        traceback: None,
        run_at: now,
        attempt: 0,
        now,
    }
}
