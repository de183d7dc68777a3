//! The engine: starts processes from submitted forms, runs them step by step on workers, and
//! resumes, skips or aborts them for operators.
//!
//! Each step runs in its own transaction, and the same transaction appends the step log entry
//! and moves the process on (fenced by the worker's lease). A crash at any point therefore
//! leaves the process at its last committed step with none of the interrupted step's effects;
//! a restarted worker claims it once its lease expires and runs that step again.
//!
//! Here: the engine, starting processes and reading their forms; `worker` runs them, `operators`
//! resumes, skips and aborts them.

mod operators;
mod worker;

use std::sync::Arc;

use cadre_domain::outbound::{NoOutbound, Outbound};
use cadre_domain::{
    AuditAction, AuditEvent, Clock, DomainError, NewProcess, Origin, Process, ProcessStatus,
    Repositories, State, StepStatus, Store, StoreTransaction,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use thiserror::Error;
use uuid::Uuid;

use crate::FormError;
use crate::step::{Step, StepKind, merge};
use crate::workflow::{Registry, Workflow};

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No workflow has this name.
    #[error("workflow {0:?} does not exist")]
    UnknownWorkflow(String),
    /// The workflow cannot start on this input (subscription busy, wrong lifecycle, …).
    #[error("this workflow cannot be started: {0}")]
    NotStartable(String),
    /// The submitted pages did not produce input.
    #[error(transparent)]
    Form(#[from] FormError),
    /// The store refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This worker's name, recorded as the lease owner.
    pub worker_id: String,
    /// How long a claim lasts without a step commit; another worker takes over after it.
    pub lease: TimeDelta,
    /// How long an idle worker sleeps before looking for work again.
    pub poll_interval: std::time::Duration,
    /// The longest a step may run; past it, it fails with that reason (its writes roll back).
    /// While it runs, the worker renews its lease every third of the lease.
    pub max_step: std::time::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            worker_id: format!("worker-{}", Uuid::now_v7().simple()),
            lease: TimeDelta::seconds(30),
            poll_interval: std::time::Duration::from_millis(200),
            max_step: std::time::Duration::from_secs(3600),
        }
    }
}

/// Something to do when a process completes, in the transaction that completes it, so that
/// what it records (an outbox entry, say) commits with the completion or not at all.
#[async_trait::async_trait]
pub trait CompletionHook: Send + Sync {
    /// Called once for each completed process, with its workflow, final state and the time.
    async fn completed(
        &self,
        txn: &dyn StoreTransaction,
        workflow: &Workflow,
        state: &State,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError>;
}

/// Told of every step a worker of this engine ran (not the pure ones, which do no work): for
/// metrics. Called when the step's body returned (and the worker still holds the process),
/// before its effects commit.
pub trait StepObserver: Send + Sync {
    /// Step `step` of `workflow` ran for `took` and ended as `status` (`failed` when it failed,
    /// whether or not it is retried).
    fn step_ran(&self, workflow: &str, step: &str, status: StepStatus, took: std::time::Duration);
}

/// A workflow engine over a store.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    /// Run in the transaction of each completion.
    hooks: Vec<Arc<dyn CompletionHook>>,
    /// Told of every step run.
    observers: Vec<Arc<dyn StepObserver>>,
    /// Where steps push changes of users and groups.
    outbound: Arc<dyn Outbound>,
    /// Wakes this engine's idle workers when it makes a process runnable; workers elsewhere
    /// find it at their next poll.
    work_available: Arc<tokio::sync::Notify>,
    /// Where the requests this handle serves come from, for the audit log.
    origin: Origin,
}

impl Engine {
    /// An engine over `store` running the workflows of `registry`.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            registry: Arc::new(registry),
            clock,
            config,
            hooks: Vec::new(),
            observers: Vec::new(),
            outbound: Arc::new(NoOutbound),
            work_available: Arc::new(tokio::sync::Notify::new()),
            origin: Origin::default(),
        }
    }

    /// A handle on this engine whose starts, resumes, skips and aborts are audited as coming
    /// from `origin` (the caller's User subscription and address); it shares everything else.
    pub fn with_origin(&self, origin: Origin) -> Self {
        let mut engine = self.clone();
        engine.origin = origin;
        engine
    }

    /// An audit event of `action` by `actor` on `target`, from this handle's origin, now.
    fn event(
        &self,
        action: AuditAction,
        actor: &str,
        target: impl std::fmt::Display,
    ) -> AuditEvent {
        AuditEvent::new(Uuid::now_v7(), self.clock.now(), action, actor)
            .origin(&self.origin)
            .on(target)
    }

    /// Audits a refused or failed operator action or start (not a form's answer that is
    /// incomplete or invalid: that is the form protocol). A failure to record is logged, and the
    /// caller gets the original error.
    async fn audit_refusal<T>(
        &self,
        result: Result<T, EngineError>,
        event: impl FnOnce() -> AuditEvent,
    ) -> Result<T, EngineError> {
        let error = match result {
            Ok(value) => return Ok(value),
            Err(EngineError::Form(error)) => return Err(EngineError::Form(error)),
            Err(error) => error,
        };
        if let Err(failed) = self
            .store
            .record_audit(&event().failed(error.to_string()))
            .await
        {
            tracing::warn!(error = %failed, "could not audit a refused process action");
        }
        Err(error)
    }

    /// This engine with `hook` run in the transaction of every process completion.
    pub fn with_completion_hook(&self, hook: Arc<dyn CompletionHook>) -> Self {
        let mut engine = self.clone();
        engine.hooks.push(hook);
        engine
    }

    /// This engine with `observer` told of every step its workers run.
    pub fn with_step_observer(&self, observer: Arc<dyn StepObserver>) -> Self {
        let mut engine = self.clone();
        engine.observers.push(observer);
        engine
    }

    /// This engine with its steps pushing changes of users and groups through `outbound`
    /// (without it, a push with an enabled target fails: [`NoOutbound`]).
    pub fn with_outbound(&self, outbound: Arc<dyn Outbound>) -> Self {
        let mut engine = self.clone();
        engine.outbound = outbound;
        engine
    }

    /// A second handle on this engine that claims processes as worker `worker_id`; it shares the
    /// store, the registry and the wake-ups of processes this engine starts.
    pub fn with_worker_id(&self, worker_id: impl Into<String>) -> Self {
        let mut engine = self.clone();
        engine.config.worker_id = worker_id.into();
        engine
    }

    /// The workflows this engine runs.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store this engine runs on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock this engine reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn workflow(&self, name: &str) -> Result<&Arc<Workflow>, EngineError> {
        self.registry
            .get(name)
            .ok_or_else(|| EngineError::UnknownWorkflow(name.to_owned()))
    }

    /// Validates `pages` against the workflow's initial form and stores a new process in status
    /// `created`; a worker picks it up. Returns the stored process. Audited as
    /// `process_started` by `created_by` (a refusal too, on the workflow's name).
    pub async fn start(
        &self,
        workflow_name: &str,
        pages: &[Value],
        created_by: &str,
    ) -> Result<Process, EngineError> {
        let result = async {
            let txn = self.store.begin().await?;
            let process = self
                .start_in(txn.as_ref(), workflow_name, pages, created_by)
                .await?;
            txn.commit().await?;
            self.wake_workers();
            Ok(process)
        }
        .await;
        self.audit_refusal(result, || {
            self.event(AuditAction::ProcessStarted, created_by, workflow_name)
        })
        .await
    }

    /// Like [`Engine::start`], but inside the caller's transaction `txn`: the form reads, the
    /// new process and its audit event are part of it, so the process exists if and only if the
    /// transaction commits (e.g. with the single-use token whose use starts it). After the
    /// commit, call [`Engine::wake_workers`] so that this engine's idle workers pick it up at
    /// once (others find it at their next poll).
    pub async fn start_in(
        &self,
        txn: &dyn StoreTransaction,
        workflow_name: &str,
        pages: &[Value],
        created_by: &str,
    ) -> Result<Process, EngineError> {
        let new = self
            .new_process(txn, workflow_name, pages, created_by)
            .await?;
        let process = txn.create_process(&new).await?;
        txn.record_audit(
            &self
                .event(AuditAction::ProcessStarted, created_by, new.id)
                .detail(&new.workflow_name),
        )
        .await?;
        tracing::info!(process_id = %new.id, workflow = %new.workflow_name, "process created");
        Ok(process)
    }

    /// Wakes this engine's idle workers, e.g. after committing a transaction in which
    /// [`Engine::start_in`] created a process.
    pub fn wake_workers(&self) {
        self.work_available.notify_waiters();
    }

    /// The process that `pages` start for `workflow_name`, validated through `repo`, not stored.
    async fn new_process(
        &self,
        repo: &dyn Repositories,
        workflow_name: &str,
        pages: &[Value],
        created_by: &str,
    ) -> Result<NewProcess, EngineError> {
        let workflow = self.workflow(workflow_name)?;
        let id = Uuid::now_v7();
        let mut state = State::new();
        state.insert("process_id".to_owned(), json!(id));
        state.insert("reporter".to_owned(), json!(created_by));
        state.insert("workflow_name".to_owned(), json!(workflow.name));
        state.insert("workflow_target".to_owned(), json!(workflow.target));
        let input = workflow.initial_form.submit(repo, &state, pages).await?;
        let subscription_id = self.check_startable(repo, workflow, &input).await?;
        let raw_input = Value::Array(pages.to_vec());
        merge(&mut state, input);
        Ok(NewProcess {
            id,
            workflow_name: workflow.name.clone(),
            workflow_version: workflow.version,
            target: workflow.target,
            created_by: created_by.to_owned(),
            state,
            input: raw_input,
            first_step: first_step_key(workflow),
            subscription_id,
            now: self.clock.now(),
        })
    }

    /// Refuses to start a workflow on a subscription of another product type, in a lifecycle the
    /// workflow does not allow, or (modify, terminate) held by another process. Returns the
    /// subscription the input names, if any.
    async fn check_startable(
        &self,
        repo: &dyn Repositories,
        workflow: &Workflow,
        input: &State,
    ) -> Result<Option<Uuid>, EngineError> {
        let Some(raw) = input.get("subscription_id") else {
            return Ok(None);
        };
        let subscription_id: Uuid = serde_json::from_value(raw.clone())
            .map_err(|_| EngineError::NotStartable(format!("{raw} is not a subscription id")))?;
        let record = repo.load_subscription(subscription_id).await?;
        match workflow.refusal(&record) {
            Some(reason) => Err(EngineError::NotStartable(reason)),
            None => Ok(Some(subscription_id)),
        }
    }

    /// The JSON Schema of the first page of `workflow`'s initial form (an empty object when the
    /// form asks for nothing).
    pub async fn first_page(&self, workflow: &Workflow) -> Result<Value, EngineError> {
        match workflow
            .initial_form
            .submit(self.store.as_ref(), &State::new(), &[])
            .await
        {
            Err(FormError::NotComplete(body)) => Ok(body.form),
            Err(error) => Err(error.into()),
            Ok(_) => Ok(json!({})),
        }
    }

    /// The JSON Schema of the next page a suspended process asks for, or `None` when it asks
    /// for nothing.
    pub async fn pending_form(&self, process: &Process) -> Result<Option<Value>, EngineError> {
        if process.status != ProcessStatus::Suspended {
            return Ok(None);
        }
        let workflow = self.workflow(&process.workflow_name)?;
        let key = process.next_step.clone().unwrap_or_default();
        let Some((
            _,
            Step {
                kind: StepKind::Input(form),
                ..
            },
        )) = workflow.steps.find(&key)
        else {
            return Ok(None);
        };
        match form.submit(self.store.as_ref(), &process.state, &[]).await {
            Err(FormError::NotComplete(body)) => Ok(Some(body.form)),
            Err(other) => Err(other.into()),
            Ok(_) => Ok(None),
        }
    }
}

/// The key of a workflow's first step (where a new process starts).
fn first_step_key(workflow: &Workflow) -> String {
    workflow
        .steps
        .steps()
        .first()
        .map(|step| step.key.clone())
        .unwrap_or_default()
}
