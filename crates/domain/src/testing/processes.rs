//! Processes in memory: their step logs, inputs and subscription links, claims with leases,
//! step commits fenced by the lease token, and operator transitions, as the real store's
//! `processes.rs` keeps them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ports::Page;
use crate::process::{
    Lease, NewProcess, Process, ProcessCounts, ProcessQuery, ProcessRepository, ProcessStatus,
    ProcessStep, ProcessUpdate, StepRecord, Target,
};

use super::{Access, DUPLICATE, MISSING_REFERENCE, Tables};

/// The input type of the form answers a process starts with.
const INITIAL_STATE: &str = "initial_state";

/// Statuses a worker may pick up, when the lease is free and the process is due.
const CLAIMABLE: [ProcessStatus; 4] = [
    ProcessStatus::Created,
    ProcessStatus::Resumed,
    ProcessStatus::Running,
    ProcessStatus::Waiting,
];

/// A process row with its lease columns.
#[derive(Debug, Clone)]
struct Row {
    process: Process,
    lease_owner: Option<String>,
    lease_expires_at: Option<DateTime<Utc>>,
    /// Moved on by every claim and every operator transition.
    lease_token: i64,
}

/// A raw input of a process.
#[derive(Debug, Clone)]
struct Input {
    process_id: Uuid,
    input_type: String,
    input: Value,
    at: DateTime<Utc>,
}

/// The processes, their logs, inputs and links to subscriptions.
#[derive(Debug, Clone, Default)]
pub(super) struct Processes {
    rows: BTreeMap<Uuid, Row>,
    steps: HashMap<Uuid, Vec<ProcessStep>>,
    inputs: Vec<Input>,
    /// `(process, subscription, linked at)`, in the order they were linked.
    links: Vec<(Uuid, Uuid, DateTime<Utc>)>,
}

impl Processes {
    /// The status of process `id`, if it exists.
    pub(super) fn status(&self, id: Uuid) -> Option<ProcessStatus> {
        self.rows.get(&id).map(|row| row.process.status)
    }

    /// The raw inputs of process `id`, oldest first.
    pub(super) fn inputs_of(&self, id: Uuid) -> Vec<(String, Value, DateTime<Utc>)> {
        let mut inputs: Vec<&Input> = self
            .inputs
            .iter()
            .filter(|input| input.process_id == id)
            .collect();
        inputs.sort_by_key(|input| input.at);
        inputs
            .into_iter()
            .map(|input| (input.input_type.clone(), input.input.clone(), input.at))
            .collect()
    }

    /// Appends `steps` to the log of process `id` under the ids `ids`.
    fn log(&mut self, id: Uuid, steps: &[StepRecord], ids: &[Uuid]) {
        let log = self.steps.entry(id).or_default();
        log.extend(steps.iter().zip(ids).map(|(step, step_id)| ProcessStep {
            id: *step_id,
            process_id: id,
            step_key: step.step_key.clone(),
            name: step.name.clone(),
            status: step.status,
            state: step.state.clone(),
            error: step.error.clone(),
            created_by: step.created_by.clone(),
            started_at: step.started_at,
            completed_at: step.completed_at,
        }));
    }

    fn link(&mut self, id: Uuid, subscription_id: Uuid, now: DateTime<Utc>) {
        let linked = self
            .links
            .iter()
            .any(|(process, subscription, _)| *process == id && *subscription == subscription_id);
        if !linked {
            self.links.push((id, subscription_id, now));
        }
    }
}

/// Writes `update` into the process row (not its lease).
fn apply(process: &mut Process, update: &ProcessUpdate) {
    process.status = update.status;
    process.last_step = update.last_step.clone();
    process.next_step = update.next_step.clone();
    process.state = update.state.clone();
    process.failed_reason = update.failed_reason.clone();
    process.traceback = update.traceback.clone();
    process.last_modified_at = update.now;
    process.run_at = update.run_at;
    process.attempt = update.attempt;
}

fn create(tables: &mut Tables, new: &NewProcess) -> Result<Process> {
    if tables.processes.rows.contains_key(&new.id) {
        return Err(DomainError::Conflict(DUPLICATE.to_owned()));
    }
    if let Some(subscription_id) = new.subscription_id
        && !tables.subscriptions.contains(subscription_id)
    {
        return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
    }
    let process = Process {
        id: new.id,
        workflow_name: new.workflow_name.clone(),
        workflow_version: new.workflow_version,
        target: new.target,
        is_task: new.target == Target::System,
        status: ProcessStatus::Created,
        last_step: None,
        next_step: Some(new.first_step.clone()),
        state: new.state.clone(),
        failed_reason: None,
        traceback: None,
        created_by: new.created_by.clone(),
        started_at: new.now,
        last_modified_at: new.now,
        run_at: new.now,
        attempt: 0,
    };
    let processes = Arc::make_mut(&mut tables.processes);
    processes.rows.insert(
        new.id,
        Row {
            process: process.clone(),
            lease_owner: None,
            lease_expires_at: None,
            lease_token: 0,
        },
    );
    processes.inputs.push(Input {
        process_id: new.id,
        input_type: INITIAL_STATE.to_owned(),
        input: new.input.clone(),
        at: new.now,
    });
    if let Some(subscription_id) = new.subscription_id {
        processes.link(new.id, subscription_id, new.now);
    }
    Ok(process)
}

/// Whether a worker could claim `row` at `now`: due, runnable, its lease free or expired.
fn claimable(row: &Row, now: DateTime<Utc>) -> bool {
    CLAIMABLE.contains(&row.process.status)
        && row.process.run_at <= now
        && row.lease_expires_at.is_none_or(|expires| expires < now)
}

/// Claims the runnable process due first (then by id) for `owner`.
fn claim(
    tables: &mut Tables,
    owner: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Option<(Process, Lease)> {
    let due = tables
        .processes
        .rows
        .values()
        .filter(|row| claimable(row, now))
        .min_by_key(|row| (row.process.run_at, row.process.id))?
        .process
        .id;
    let row = Arc::make_mut(&mut tables.processes).rows.get_mut(&due)?;
    row.process.status = ProcessStatus::Running;
    row.process.last_modified_at = now;
    row.lease_owner = Some(owner.to_owned());
    row.lease_expires_at = Some(expires_at);
    row.lease_token += 1;
    let lease = Lease {
        process_id: due,
        owner: owner.to_owned(),
        token: row.lease_token,
        expires_at,
    };
    Some((row.process.clone(), lease))
}

fn commit(
    tables: &mut Tables,
    lease: &Lease,
    steps: &[StepRecord],
    step_ids: &[Uuid],
    update: &ProcessUpdate,
    renew_until: Option<DateTime<Utc>>,
) -> Result<Lease> {
    let processes = Arc::make_mut(&mut tables.processes);
    let row = processes
        .rows
        .get_mut(&lease.process_id)
        .filter(|row| row.lease_token == lease.token)
        .ok_or_else(|| DomainError::LeaseLost {
            process: lease.process_id,
            owner: lease.owner.clone(),
        })?;
    apply(&mut row.process, update);
    row.lease_owner = renew_until.map(|_| lease.owner.clone());
    row.lease_expires_at = renew_until;
    processes.log(lease.process_id, steps, step_ids);
    Ok(Lease {
        expires_at: renew_until.unwrap_or(update.now),
        ..lease.clone()
    })
}

fn transition(
    tables: &mut Tables,
    id: Uuid,
    from: &[ProcessStatus],
    step: Option<&StepRecord>,
    step_id: Uuid,
    update: &ProcessUpdate,
) -> Result<Process> {
    let processes = Arc::make_mut(&mut tables.processes);
    let row = processes
        .rows
        .get_mut(&id)
        .ok_or_else(|| DomainError::not_found("process", id))?;
    if !from.contains(&row.process.status) {
        return Err(DomainError::Conflict(format!(
            "process {id} is {}; this action needs one of: {}",
            row.process.status,
            from.iter()
                .map(|status| status.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    apply(&mut row.process, update);
    row.lease_owner = None;
    row.lease_expires_at = None;
    row.lease_token += 1;
    let process = row.process.clone();
    let steps = step.map(std::slice::from_ref).unwrap_or_default();
    processes.log(id, steps, &[step_id]);
    Ok(process)
}

#[async_trait]
impl<T: Access> ProcessRepository for T {
    async fn create_process(&self, new: &NewProcess) -> Result<Process> {
        let new = new.clone();
        self.write(move |tables, _| create(tables, &new))
    }

    async fn process(&self, id: Uuid) -> Result<Process> {
        self.read(|tables, _| {
            tables
                .processes
                .rows
                .get(&id)
                .map(|row| row.process.clone())
        })
        .ok_or_else(|| DomainError::not_found("process", id))
    }

    async fn process_steps(&self, id: Uuid) -> Result<Vec<ProcessStep>> {
        let mut steps =
            self.read(|tables, _| tables.processes.steps.get(&id).cloned().unwrap_or_default());
        steps.sort_by_key(|step| (step.completed_at, step.id));
        Ok(steps)
    }

    async fn list_processes(&self, query: &ProcessQuery) -> Result<Page<Process>> {
        let mut matching: Vec<Process> = self.read(|tables, _| {
            let processes = &tables.processes;
            processes
                .rows
                .values()
                .map(|row| &row.process)
                .filter(|process| {
                    query
                        .workflow_name
                        .as_ref()
                        .is_none_or(|name| &process.workflow_name == name)
                        && query.status.is_none_or(|status| process.status == status)
                        && query
                            .created_by
                            .as_ref()
                            .is_none_or(|actor| &process.created_by == actor)
                        && query
                            .started_since
                            .is_none_or(|since| process.started_at >= since)
                        && query
                            .started_before
                            .is_none_or(|before| process.started_at < before)
                        && query.subscription_id.is_none_or(|subscription_id| {
                            processes.links.iter().any(|(linked, subscription, _)| {
                                *linked == process.id && *subscription == subscription_id
                            })
                        })
                })
                .cloned()
                .collect()
        });
        matching.sort_by_key(|process| std::cmp::Reverse((process.started_at, process.id)));
        let total = matching.len() as u64;
        let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let limit = query.limit.map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        });
        let items = matching.into_iter().skip(offset).take(limit).collect();
        Ok(Page { items, total })
    }

    async fn process_subscriptions(&self, id: Uuid) -> Result<Vec<Uuid>> {
        let mut links: Vec<(DateTime<Utc>, Uuid)> = self.read(|tables, _| {
            tables
                .processes
                .links
                .iter()
                .filter(|(process, _, _)| *process == id)
                .map(|(_, subscription, at)| (*at, *subscription))
                .collect()
        });
        links.sort_by_key(|(at, _)| *at);
        Ok(links
            .into_iter()
            .map(|(_, subscription)| subscription)
            .collect())
    }

    async fn link_subscription(
        &self,
        id: Uuid,
        subscription_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(move |tables, _| {
            if !tables.processes.rows.contains_key(&id)
                || !tables.subscriptions.contains(subscription_id)
            {
                return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
            }
            Arc::make_mut(&mut tables.processes).link(id, subscription_id, now);
            Ok(())
        })
    }

    async fn claim_process(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Process, Lease)>> {
        let owner = owner.to_owned();
        self.write(move |tables, _| Ok(claim(tables, &owner, now, expires_at)))
    }

    async fn renew_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<Lease> {
        let lease = lease.clone();
        self.write(move |tables, _| {
            let row = Arc::make_mut(&mut tables.processes)
                .rows
                .get_mut(&lease.process_id)
                .filter(|row| {
                    row.lease_token == lease.token
                        && row.lease_owner.as_deref() == Some(lease.owner.as_str())
                })
                .ok_or_else(|| DomainError::LeaseLost {
                    process: lease.process_id,
                    owner: lease.owner.clone(),
                })?;
            row.lease_expires_at = Some(until);
            Ok(Lease {
                expires_at: until,
                ..lease.clone()
            })
        })
    }

    async fn process_counts(&self, now: DateTime<Utc>) -> Result<ProcessCounts> {
        Ok(self.read(|tables, _| {
            let rows = tables.processes.rows.values();
            let mut counts = ProcessCounts::default();
            for status in ProcessStatus::ALL {
                let count = rows
                    .clone()
                    .filter(|row| row.process.status == *status)
                    .count();
                if count > 0 {
                    counts.by_status.push((*status, count as u64));
                }
            }
            let runnable = rows.filter(|row| claimable(row, now));
            counts.runnable = runnable.clone().count() as u64;
            counts.oldest_runnable = runnable.map(|row| row.process.run_at).min();
            counts
        }))
    }

    async fn prune_step_states(&self, before: DateTime<Utc>) -> Result<u64> {
        self.write(move |tables, _| {
            let processes = Arc::make_mut(&mut tables.processes);
            let ended: Vec<Uuid> = processes
                .rows
                .values()
                .filter(|row| {
                    row.process.status.is_final() && row.process.last_modified_at < before
                })
                .map(|row| row.process.id)
                .collect();
            let mut pruned = 0;
            for id in ended {
                for step in processes.steps.get_mut(&id).into_iter().flatten() {
                    if !step.state.is_empty() {
                        step.state = crate::State::new();
                        pruned += 1;
                    }
                }
            }
            Ok(pruned)
        })
    }

    async fn commit_steps(
        &self,
        lease: &Lease,
        steps: &[StepRecord],
        update: &ProcessUpdate,
        renew_until: Option<DateTime<Utc>>,
    ) -> Result<Lease> {
        let step_ids: Vec<Uuid> = steps.iter().map(|_| self.new_id()).collect();
        let (lease, steps, update) = (lease.clone(), steps.to_vec(), update.clone());
        self.write(move |tables, _| commit(tables, &lease, &steps, &step_ids, &update, renew_until))
    }

    async fn transition_process(
        &self,
        id: Uuid,
        from: &[ProcessStatus],
        step: Option<&StepRecord>,
        update: &ProcessUpdate,
    ) -> Result<Process> {
        let step_id = self.new_id();
        let (from, step, update) = (from.to_vec(), step.cloned(), update.clone());
        self.write(move |tables, _| transition(tables, id, &from, step.as_ref(), step_id, &update))
    }

    async fn record_input(
        &self,
        id: Uuid,
        input_type: &str,
        input: &Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (input_type, input) = (input_type.to_owned(), input.clone());
        self.write(move |tables, _| {
            if !tables.processes.rows.contains_key(&id) {
                return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
            }
            Arc::make_mut(&mut tables.processes).inputs.push(Input {
                process_id: id,
                input_type: input_type.clone(),
                input: input.clone(),
                at: now,
            });
            Ok(())
        })
    }
}
