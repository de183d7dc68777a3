//! Workers: claiming runnable processes and running them one committed step at a time, and
//! recording the failures of their steps.

use std::future::Future;
use std::time::Duration;

use cadre_domain::{
    DomainError, Lease, Process, ProcessStatus, ProcessUpdate, State, StepRecord, StepStatus,
};
use chrono::TimeDelta;
use serde_json::{Value, json};
use tracing::{Instrument, info_span};
use uuid::Uuid;

use super::Engine;
use crate::step::{
    Condition, FailureKind, Patch, RetryPolicy, Step, StepContext, StepError, StepKind, merge,
};

/// What running one step produced.
enum Execution {
    /// The step ran (or was skipped) and the state moves on.
    Advanced(Patch, StepStatus),
    /// An input step: wait for an operator.
    Suspend,
    /// The `done` step.
    Complete,
    /// The step failed; with a policy, it is retried.
    Failed(StepError, Option<RetryPolicy>),
}

/// The longest a worker pauses between tries while the store keeps failing.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

impl Engine {
    /// Claims one runnable process and runs it until it completes, suspends, fails, waits or
    /// loses its lease. Returns the process id, or `None` when nothing was runnable.
    pub async fn run_next(&self) -> Result<Option<Uuid>, DomainError> {
        let now = self.clock.now();
        let claim = self
            .store
            .claim_process(&self.config.worker_id, now, now + self.config.lease)
            .await?;
        let Some((process, lease)) = claim else {
            return Ok(None);
        };
        let id = process.id;
        let span = info_span!("process", process_id = %id, workflow = %process.workflow_name);
        self.run_claimed(process, lease).instrument(span).await?;
        Ok(Some(id))
    }

    /// Runs processes until none is runnable now; returns how many runs it made.
    pub async fn run_until_idle(&self) -> Result<usize, DomainError> {
        let mut runs = 0;
        while self.run_next().await?.is_some() {
            runs += 1;
        }
        Ok(runs)
    }

    /// Works until `shutdown` resolves: runs processes as they become runnable, sleeping
    /// `poll_interval` when idle. A step in progress finishes before the worker stops.
    pub async fn run_worker(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Consecutive failures (the database down, say): each doubles the pause before the
        // next try, up to `MAX_ERROR_BACKOFF`, until a try succeeds.
        let mut failures: u32 = 0;
        loop {
            let idle = match self.run_next().await {
                Ok(Some(_)) => {
                    failures = 0;
                    false
                }
                Ok(None) => {
                    failures = 0;
                    true
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, failures, "worker could not run a process");
                    true
                }
            };
            if failures > 0 {
                let pause = self
                    .config
                    .poll_interval
                    .saturating_mul(1 << failures.min(16))
                    .min(MAX_ERROR_BACKOFF);
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(pause) => {}
                }
            } else if idle {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = self.work_available.notified() => {}
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            } else {
                // Between processes, stop if shutdown was requested, without waiting for it.
                let stop = tokio::select! {
                    biased;
                    () = &mut shutdown => true,
                    () = std::future::ready(()) => false,
                };
                if stop {
                    return;
                }
            }
        }
    }

    async fn run_claimed(&self, process: Process, mut lease: Lease) -> Result<(), DomainError> {
        let Some(workflow) = self.registry.get(&process.workflow_name).cloned() else {
            let reason = format!("workflow {:?} is not registered", process.workflow_name);
            return self.fail_unrunnable(&process, &lease, reason).await;
        };
        let mut state = process.state.clone();
        let mut next_key = process.next_step.clone();
        let mut attempt = process.attempt;
        // Log entries of pure steps (`init`), committed with the next step's transaction.
        let mut pending: Vec<StepRecord> = Vec::new();
        while let Some(key) = next_key.clone() {
            let Some((index, step)) = workflow.steps.find(&key) else {
                let reason = format!(
                    "workflow {} version {} has no step {key:?} (the process started on version {})",
                    workflow.name, workflow.version, process.workflow_version
                );
                return self.fail_unrunnable(&process, &lease, reason).await;
            };
            let following = workflow.steps.steps().get(index + 1);
            let started_at = self.clock.now();
            // A repeated step's runs are logged under their own names.
            let run_name = match &step.kind {
                StepKind::Repeat { again, label, .. } if again(&state) => label(&state),
                _ => step.name.clone(),
            };
            let record = |step: &Step, status, state: &State, error: Option<Value>| StepRecord {
                step_key: step.key.clone(),
                name: if step.key == key {
                    run_name.clone()
                } else {
                    step.name.clone()
                },
                status,
                state: state.clone(),
                error,
                created_by: process.created_by.clone(),
                started_at,
                completed_at: self.clock.now(),
            };
            if matches!(step.kind, StepKind::Pure) {
                pending.push(record(step, StepStatus::Success, &state, None));
                next_key = following.map(|step| step.key.clone());
                continue;
            }
            let txn = self.store.begin().await?;
            let execution = {
                let ctx = StepContext {
                    store: txn.as_ref(),
                    outbound: self.outbound.as_ref(),
                    process_id: process.id,
                    now: started_at,
                    state: &state,
                };
                let run = execute(step, &ctx)
                    .instrument(info_span!("step", key = %step.key, name = %step.name));
                let timer = std::time::Instant::now();
                let execution = self.keeping_lease(&mut lease, run).await;
                let status = match &execution {
                    Some(Execution::Advanced(_, status)) => Some(*status),
                    Some(Execution::Suspend) => Some(StepStatus::Suspend),
                    Some(Execution::Complete) => Some(StepStatus::Complete),
                    Some(Execution::Failed(..)) => Some(StepStatus::Failed),
                    None => None,
                };
                if let Some(status) = status {
                    let took = timer.elapsed();
                    for observer in &self.observers {
                        observer.step_ran(&workflow.name, &step.key, status, took);
                    }
                }
                match execution {
                    Some(execution) => execution,
                    // Another worker or an operator took the process: the step's writes roll
                    // back with its transaction, and nothing is recorded.
                    None => return Ok(()),
                }
            };
            let now = self.clock.now();
            // The process keeps the time it became due: `run_at` is indexed, and leaving it
            // alone lets PostgreSQL rewrite the row in place (a HOT update) at each step.
            let update = |status, next_step: Option<String>, state: &State| ProcessUpdate {
                status,
                last_step: Some(step.name.clone()),
                next_step,
                state: state.clone(),
                failed_reason: None,
                traceback: None,
                run_at: process.run_at,
                attempt: 0,
                now,
            };
            // Should the commit fail, the step fails with the log and state it started from.
            let logged = pending.len();
            let before = state.clone();
            let (update, renew) = match execution {
                Execution::Advanced(patch, status) => {
                    merge(&mut state, patch);
                    pending.push(record(step, status, &state, None));
                    let again = match &step.kind {
                        StepKind::Repeat { again, .. } => again(&state),
                        _ => false,
                    };
                    match following {
                        _ if again => (
                            update(ProcessStatus::Running, Some(key), &state),
                            Some(now + self.config.lease),
                        ),
                        // `done` has no effects: it completes the process in this transaction.
                        Some(
                            done @ Step {
                                kind: StepKind::Done,
                                ..
                            },
                        ) => {
                            pending.push(record(done, StepStatus::Complete, &state, None));
                            let mut update = update(ProcessStatus::Completed, None, &state);
                            update.last_step = Some(done.name.clone());
                            (update, None)
                        }
                        _ => {
                            let next = following.map(|step| step.key.clone());
                            (
                                update(ProcessStatus::Running, next, &state),
                                Some(now + self.config.lease),
                            )
                        }
                    }
                }
                Execution::Suspend => {
                    pending.push(record(step, StepStatus::Suspend, &state, None));
                    (update(ProcessStatus::Suspended, Some(key), &state), None)
                }
                Execution::Complete => {
                    pending.push(record(step, StepStatus::Complete, &state, None));
                    (update(ProcessStatus::Completed, None, &state), None)
                }
                // The database failed, not the step: its writes roll back, and the process is
                // run again from this step once the lease expires.
                Execution::Failed(error, _) if error.kind == FailureKind::Storage => {
                    drop(txn);
                    return Err(DomainError::Storage(error.message));
                }
                Execution::Failed(error, policy) => {
                    // The step's own writes roll back; the failure is recorded on its own.
                    drop(txn);
                    pending.push(record(step, StepStatus::Failed, &state, None));
                    return self
                        .record_failure(
                            &process,
                            &lease,
                            pending,
                            error,
                            policy,
                            attempt + 1,
                            update(ProcessStatus::Failed, Some(key), &state),
                        )
                        .await;
                }
            };
            let finished = renew.is_none();
            let committed = async {
                if update.status == ProcessStatus::Completed {
                    for hook in &self.hooks {
                        hook.completed(txn.as_ref(), &workflow, &state, update.now)
                            .await?;
                    }
                }
                let renewed = txn.commit_steps(&lease, &pending, &update, renew).await?;
                txn.commit().await?;
                Ok(renewed)
            }
            .await;
            let renewed = match lost_lease_is_stop(committed) {
                Ok(Some(renewed)) => renewed,
                Ok(None) => return Ok(()),
                // The database failed, not the step: the process is run again once the lease
                // expires.
                Err(error @ (DomainError::Storage(_) | DomainError::Internal(_))) => {
                    return Err(error);
                }
                // What the commit broke (a duplicate identifying value, a reference, a
                // concurrent save) fails the step, as an error of its own would.
                Err(error) => {
                    // This step's own entry (record_failure marks it), without `done`'s.
                    pending.truncate(logged + 1);
                    if let Some(own) = pending.last_mut() {
                        own.state = before.clone();
                    }
                    let failure = ProcessUpdate {
                        status: ProcessStatus::Failed,
                        last_step: Some(step.name.clone()),
                        next_step: Some(step.key.clone()),
                        state: before,
                        ..update
                    };
                    return self
                        .record_failure(
                            &process,
                            &lease,
                            pending,
                            error.into(),
                            retry_policy(step),
                            attempt + 1,
                            failure,
                        )
                        .await;
                }
            };
            pending.clear();
            if finished {
                if update.status == ProcessStatus::Completed {
                    tracing::info!("process completed");
                }
                return Ok(());
            }
            lease = renewed;
            next_key = update.next_step;
            attempt = 0;
        }
        Ok(())
    }

    /// Records a failed attempt of the last step in `records`: the process waits for a retry
    /// when the step's policy allows another attempt, and fails otherwise.
    #[allow(clippy::too_many_arguments)]
    async fn record_failure(
        &self,
        process: &Process,
        lease: &Lease,
        mut records: Vec<StepRecord>,
        error: StepError,
        policy: Option<RetryPolicy>,
        attempts: i64,
        update: ProcessUpdate,
    ) -> Result<(), DomainError> {
        let now = update.now;
        let retry_at = policy.and_then(|policy| {
            (attempts < i64::from(policy.max_attempts)).then(|| {
                let delay = policy.delay(u32::try_from(attempts).unwrap_or(u32::MAX));
                now + TimeDelta::from_std(delay).unwrap_or(TimeDelta::MAX)
            })
        });
        let failed = match (process.is_task, error.kind) {
            (true, FailureKind::ApiUnavailable) => ProcessStatus::ApiUnavailable,
            (true, FailureKind::InconsistentData) => ProcessStatus::InconsistentData,
            _ => ProcessStatus::Failed,
        };
        let (step_status, process_status, run_at) = match retry_at {
            Some(run_at) => (StepStatus::Waiting, ProcessStatus::Waiting, run_at),
            None => (StepStatus::Failed, failed, now),
        };
        let Some(last) = records.last_mut() else {
            return Ok(());
        };
        tracing::warn!(step = %last.step_key, %error, attempt = attempts, status = %process_status, "step failed");
        last.status = step_status;
        last.error = Some(json!({
            "error": error.message,
            "detail": error.detail,
            "attempt": attempts,
        }));
        let failure = ProcessUpdate {
            status: process_status,
            failed_reason: Some(error.message.clone()),
            traceback: Some(format!(
                "step {:?} ({}), attempt {attempts}: {}",
                last.name, last.step_key, error.message
            )),
            run_at,
            attempt: attempts,
            ..update
        };
        let txn = self.store.begin().await?;
        let done = txn.commit_steps(lease, &records, &failure, None).await;
        if lost_lease_is_stop(done)?.is_some() {
            txn.commit().await?;
        }
        Ok(())
    }

    /// Fails a process that cannot run at all (its workflow or step is gone).
    async fn fail_unrunnable(
        &self,
        process: &Process,
        lease: &Lease,
        reason: String,
    ) -> Result<(), DomainError> {
        tracing::error!(%reason, "process cannot run");
        let now = self.clock.now();
        let key = process.next_step.clone().unwrap_or_default();
        let txn = self.store.begin().await?;
        let done = txn
            .commit_steps(
                lease,
                &[StepRecord {
                    step_key: key.clone(),
                    name: key.clone(),
                    status: StepStatus::Failed,
                    state: process.state.clone(),
                    error: Some(json!({ "error": reason })),
                    created_by: process.created_by.clone(),
                    started_at: now,
                    completed_at: now,
                }],
                &ProcessUpdate {
                    status: ProcessStatus::Failed,
                    last_step: process.last_step.clone(),
                    next_step: process.next_step.clone(),
                    state: process.state.clone(),
                    failed_reason: Some(reason.clone()),
                    traceback: Some(reason),
                    run_at: now,
                    attempt: process.attempt,
                    now,
                },
                None,
            )
            .await;
        if lost_lease_is_stop(done)?.is_some() {
            txn.commit().await?;
        }
        Ok(())
    }
}

impl Engine {
    /// Runs a step while renewing `lease` every third of its length (outside the step's
    /// transaction), so that a long step keeps its process; `None` when the lease was lost
    /// meanwhile. A step running longer than `max_step` fails with that reason.
    async fn keeping_lease(
        &self,
        lease: &mut Lease,
        step: impl Future<Output = Execution>,
    ) -> Option<Execution> {
        let every = (self.config.lease / 3)
            .to_std()
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_millis(10));
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // Renewals run beside the step, never in its way: on SQLite the step's transaction holds
        // the only write lock, and a renewal then waits for it.
        let renewals = async {
            loop {
                heartbeat.tick().await;
                let until = self.clock.now() + self.config.lease;
                match self.store.renew_lease(lease, until).await {
                    Ok(renewed) => *lease = renewed,
                    Err(DomainError::LeaseLost { .. }) => return,
                    Err(error) => tracing::debug!(%error, "could not renew the lease yet"),
                }
            }
        };
        tokio::select! {
            execution = step => Some(execution),
            () = tokio::time::sleep(self.config.max_step) => {
                let reason = format!(
                    "the step ran longer than {} s, the most a step may run",
                    self.config.max_step.as_secs_f64()
                );
                Some(Execution::Failed(StepError::new(reason), None))
            }
            () = renewals => {
                tracing::warn!("lease lost while a step ran; the step is rolled back");
                None
            }
        }
    }
}

/// A step commit that lost its lease means another worker or an operator took the process:
/// stop quietly (the transaction rolls back when dropped). Other errors propagate.
fn lost_lease_is_stop(result: Result<Lease, DomainError>) -> Result<Option<Lease>, DomainError> {
    match result {
        Ok(lease) => Ok(Some(lease)),
        Err(error @ DomainError::LeaseLost { .. }) => {
            tracing::warn!(%error, "lease lost; the step is rolled back");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The retry policy of a step's body, if it is a retry step (or a conditional one).
fn retry_policy(step: &Step) -> Option<RetryPolicy> {
    match &step.kind {
        StepKind::Retry(_, policy) => Some(*policy),
        StepKind::Conditional(_, inner) => retry_policy(inner),
        _ => None,
    }
}

/// Runs one step against the state in `ctx`.
async fn execute(step: &Step, ctx: &StepContext<'_>) -> Execution {
    match &step.kind {
        StepKind::Plain(body) => match body.run(ctx).await {
            Ok(patch) => Execution::Advanced(patch, StepStatus::Success),
            Err(error) => Execution::Failed(error, None),
        },
        StepKind::Retry(body, policy) => match body.run(ctx).await {
            Ok(patch) => Execution::Advanced(patch, StepStatus::Success),
            Err(error) => Execution::Failed(error, Some(*policy)),
        },
        StepKind::Input(_) => Execution::Suspend,
        StepKind::Pure => Execution::Advanced(Patch::new(), StepStatus::Success),
        StepKind::Conditional(condition, inner) => {
            if condition(ctx.state) {
                Box::pin(execute(inner, ctx)).await
            } else {
                Execution::Advanced(Patch::new(), StepStatus::Skipped)
            }
        }
        StepKind::Group(members) => run_group(members, ctx).await,
        StepKind::Repeat { body, again, .. } => {
            if !again(ctx.state) {
                return Execution::Advanced(Patch::new(), StepStatus::Skipped);
            }
            match body.run(ctx).await {
                Ok(patch) => Execution::Advanced(patch, StepStatus::Success),
                Err(error) => Execution::Failed(error, None),
            }
        }
        StepKind::Done => Execution::Complete,
    }
}

/// Runs the members of a step group in order over a working state; the group's patch is the
/// difference they made together.
async fn run_group(members: &[Step], ctx: &StepContext<'_>) -> Execution {
    let mut working = ctx.state.clone();
    let mut patch = Patch::new();
    for member in members {
        let (body, condition): (_, Option<&Condition>) = match &member.kind {
            StepKind::Plain(body) => (body, None),
            StepKind::Conditional(condition, inner) => match &inner.kind {
                StepKind::Plain(body) => (body, Some(condition)),
                _ => return Execution::Failed(StepError::new("unsupported step in group"), None),
            },
            _ => return Execution::Failed(StepError::new("unsupported step in group"), None),
        };
        if condition.is_some_and(|condition| !condition(&working)) {
            continue;
        }
        let member_ctx = StepContext {
            store: ctx.store,
            outbound: ctx.outbound,
            process_id: ctx.process_id,
            now: ctx.now,
            state: &working,
        };
        match body.run(&member_ctx).await {
            Ok(member_patch) => {
                merge(&mut patch, member_patch.clone());
                merge(&mut working, member_patch);
            }
            Err(error) => {
                return Execution::Failed(
                    StepError::new(format!("{}: {}", member.name, error.message)),
                    None,
                );
            }
        }
    }
    Execution::Advanced(patch, StepStatus::Success)
}
