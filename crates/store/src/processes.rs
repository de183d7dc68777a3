//! Processes, their step logs, inputs and subscription links; claiming with leases.
//!
//! Claiming is one `UPDATE … WHERE id IN (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING`,
//! atomic on both backends: PostgreSQL skips rows other workers have locked, SQLite serialises
//! writers (and drops the lock clause). Every step commit is fenced by the lease token.

use async_trait::async_trait;
use cadre_domain::{
    DomainError, IdSource, Lease, NewProcess, Page, Process, ProcessCounts, ProcessQuery,
    ProcessRepository, ProcessStatus, ProcessStep, ProcessUpdate, Result, State, StepRecord,
    Target,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, ExprTrait, IntoIden, LockBehavior, LockType, OnConflict,
    Query, SubQueryStatement, TableRef, ValueTuple, WithClause,
};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement, TransactionSession,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{input_states, process_steps, processes, processes_subscriptions};
use crate::{Conn, Repo, storage_error};

/// The input type of the form answers a process starts with.
const INITIAL_STATE: &str = "initial_state";

/// Statuses a worker may pick up (when the lease is free and the process is due); the partial
/// index `ix_processes_runnable` covers exactly these.
const CLAIMABLE: [ProcessStatus; 4] = [
    ProcessStatus::Created,
    ProcessStatus::Resumed,
    ProcessStatus::Running,
    ProcessStatus::Waiting,
];

/// The processes a worker could claim at `now`: due, in a runnable status, their lease free or
/// expired. Literal statuses, so that PostgreSQL can use the partial index of runnable
/// processes even with a generic plan.
fn claimable(now: DateTime<Utc>) -> Condition {
    let now = now.fixed_offset();
    Condition::all()
        .add(
            Expr::col(processes::Column::Status).is_in(
                CLAIMABLE
                    .iter()
                    .map(|status| Expr::Constant(status.as_str().into())),
            ),
        )
        .add(Expr::col(processes::Column::RunAt).lte(now))
        .add(
            Expr::col(processes::Column::LeaseExpiresAt)
                .is_null()
                .or(Expr::col(processes::Column::LeaseExpiresAt).lt(now)),
        )
}

fn state_of(value: Value) -> Result<State> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(DomainError::Storage(format!(
            "stored process state is not an object: {other}"
        ))),
    }
}

fn to_process(row: processes::Model) -> Result<Process> {
    Ok(Process {
        id: row.id,
        target: row.workflow_target.parse()?,
        status: row.status.parse()?,
        state: state_of(row.state)?,
        workflow_name: row.workflow_name,
        workflow_version: row.workflow_version,
        is_task: row.is_task,
        last_step: row.last_step,
        next_step: row.next_step,
        failed_reason: row.failed_reason,
        traceback: row.traceback,
        created_by: row.created_by,
        started_at: row.started_at.to_utc(),
        last_modified_at: row.last_modified_at.to_utc(),
        run_at: row.run_at.to_utc(),
        attempt: row.attempt,
    })
}

fn to_step(row: process_steps::Model) -> Result<ProcessStep> {
    Ok(ProcessStep {
        id: row.id,
        process_id: row.process_id,
        step_key: row.step_key,
        name: row.name,
        status: row.status.parse()?,
        state: state_of(row.state)?,
        error: row.error,
        created_by: row.created_by,
        started_at: row.started_at.to_utc(),
        completed_at: row.completed_at.to_utc(),
    })
}

/// The columns an update writes, with the lease columns left to the caller.
fn update_model(update: &ProcessUpdate) -> processes::ActiveModel {
    processes::ActiveModel {
        status: Set(update.status.as_str().to_owned()),
        last_step: Set(update.last_step.clone()),
        next_step: Set(update.next_step.clone()),
        state: Set(Value::Object(update.state.clone())),
        failed_reason: Set(update.failed_reason.clone()),
        traceback: Set(update.traceback.clone()),
        last_modified_at: Set(update.now.fixed_offset()),
        run_at: Set(update.run_at.fixed_offset()),
        attempt: Set(update.attempt),
        ..Default::default()
    }
}

async fn insert_steps(
    conn: &impl Conn,
    ids: &dyn IdSource,
    process_id: Uuid,
    steps: &[StepRecord],
) -> Result<()> {
    if steps.is_empty() {
        return Ok(());
    }
    let rows = steps.iter().map(|step| process_steps::ActiveModel {
        id: Set(ids.new_id()),
        process_id: Set(process_id),
        step_key: Set(step.step_key.clone()),
        name: Set(step.name.clone()),
        status: Set(step.status.as_str().to_owned()),
        state: Set(Value::Object(step.state.clone())),
        error: Set(step.error.clone()),
        created_by: Set(step.created_by.clone()),
        started_at: Set(step.started_at.fixed_offset()),
        completed_at: Set(step.completed_at.fixed_offset()),
    });
    process_steps::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    Ok(())
}

/// The process row a [`NewProcess`] becomes.
fn new_process(new: &NewProcess) -> Process {
    Process {
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
    }
}

/// The process row a [`NewProcess`] is stored as: created, its first step next, no lease.
fn process_model(new: &NewProcess) -> processes::ActiveModel {
    let now = new.now.fixed_offset();
    processes::ActiveModel {
        id: Set(new.id),
        workflow_name: Set(new.workflow_name.clone()),
        workflow_version: Set(new.workflow_version),
        workflow_target: Set(new.target.as_str().to_owned()),
        is_task: Set(new.target == Target::System),
        status: Set(ProcessStatus::Created.as_str().to_owned()),
        last_step: Set(None),
        next_step: Set(Some(new.first_step.clone())),
        state: Set(Value::Object(new.state.clone())),
        failed_reason: Set(None),
        traceback: Set(None),
        created_by: Set(new.created_by.clone()),
        started_at: Set(now),
        last_modified_at: Set(now),
        run_at: Set(now),
        attempt: Set(0),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        lease_token: Set(0),
    }
}

/// Inserts a new process, its initial input and its subscription link, statement by statement
/// (inside the caller's transaction).
async fn insert_process(
    conn: &impl ConnectionTrait,
    new: &NewProcess,
    ids: &dyn IdSource,
) -> Result<()> {
    let now = new.now.fixed_offset();
    processes::Entity::insert(process_model(new))
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    input_states::Entity::insert(input_states::ActiveModel {
        id: Set(ids.new_id()),
        process_id: Set(new.id),
        input_type: Set(INITIAL_STATE.to_owned()),
        input_state: Set(new.input.clone()),
        input_time: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map_err(storage_error)?;
    if let Some(subscription_id) = new.subscription_id {
        processes_subscriptions::Entity::insert(processes_subscriptions::ActiveModel {
            id: Set(ids.new_id()),
            process_id: Set(new.id),
            subscription_id: Set(subscription_id),
            created_at: Set(now),
        })
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    }
    Ok(())
}

/// A common table expression `name AS (query)`.
fn cte(name: &'static str, query: impl Into<SubQueryStatement>) -> CommonTableExpression {
    CommonTableExpression::new()
        .table_name(name)
        .query(query)
        .to_owned()
}

/// PostgreSQL's single-statement process creation: the process row, its initial input and (if
/// any) its subscription link, each insert taking its process id from the one before:
/// `WITH created AS (INSERT INTO processes … RETURNING id), input AS (INSERT INTO input_states
/// … SELECT …, created.id, … FROM created RETURNING process_id) INSERT INTO
/// processes_subscriptions … SELECT … FROM input` (or `SELECT process_id FROM input`).
fn create_process_statement(new: &NewProcess, ids: &dyn IdSource) -> Result<Statement> {
    const CREATED: &str = "created";
    const INPUT: &str = "input";
    let now = new.now.fixed_offset();
    let created = processes::Entity::insert(process_model(new))
        .into_query()
        .returning_col(processes::Column::Id)
        .to_owned();
    let input = Query::insert()
        .into_table(input_states::Entity)
        .columns([
            input_states::Column::Id,
            input_states::Column::ProcessId,
            input_states::Column::InputType,
            input_states::Column::InputState,
            input_states::Column::InputTime,
        ])
        .select_from(
            Query::select()
                .expr(Expr::val(ids.new_id()))
                .column((CREATED, processes::Column::Id))
                .expr(Expr::val(INITIAL_STATE))
                .expr(Expr::val(new.input.clone()))
                .expr(Expr::val(now))
                .from(CREATED)
                .take(),
        )
        .map_err(query_error)?
        .returning_col(input_states::Column::ProcessId)
        .to_owned();
    let with = WithClause::new()
        .cte(cte(CREATED, created))
        .cte(cte(INPUT, input))
        .to_owned();
    let statement = match new.subscription_id {
        Some(subscription_id) => Query::insert()
            .into_table(processes_subscriptions::Entity)
            .columns([
                processes_subscriptions::Column::Id,
                processes_subscriptions::Column::ProcessId,
                processes_subscriptions::Column::SubscriptionId,
                processes_subscriptions::Column::CreatedAt,
            ])
            .select_from(
                Query::select()
                    .expr(Expr::val(ids.new_id()))
                    .column(input_states::Column::ProcessId)
                    .expr(Expr::val(subscription_id))
                    .expr(Expr::val(now))
                    .from(INPUT)
                    .take(),
            )
            .map_err(query_error)?
            .to_owned()
            .with(with),
        None => Query::select()
            .column(input_states::Column::ProcessId)
            .from(INPUT)
            .take()
            .with(with),
    };
    Ok(DbBackend::Postgres.build(&statement))
}

/// PostgreSQL's single-statement step commit: the process row is updated only if the lease
/// token still matches, and the log rows are inserted only from that update's result, so the
/// statement inserts `steps.len()` rows exactly when the lease held: `WITH updated AS (UPDATE
/// processes SET … WHERE id = … AND lease_token = … RETURNING id) INSERT INTO process_steps …
/// SELECT v.column1, updated.id, v.column2, … FROM updated CROSS JOIN (VALUES (…), …) AS v`.
fn fenced_commit_statement(
    lease: &Lease,
    steps: &[StepRecord],
    update: &ProcessUpdate,
    owner: Option<String>,
    renew_until: Option<DateTime<Utc>>,
    ids: &dyn IdSource,
) -> Result<Statement> {
    const UPDATED: &str = "updated";
    const STEPS: &str = "v";
    let mut model = update_model(update);
    model.lease_owner = Set(owner);
    model.lease_expires_at = Set(renew_until.map(|until| until.fixed_offset()));
    let updated = processes::Entity::update_many()
        .set(model)
        .filter(processes::Column::Id.eq(lease.process_id))
        .filter(processes::Column::LeaseToken.eq(lease.token))
        .into_query()
        .returning_col(processes::Column::Id)
        .to_owned();
    // The log rows, without their process id: PostgreSQL names the columns of a VALUES list
    // column1, column2, … (sea-query gives the list an alias only, no column names).
    let rows: Vec<ValueTuple> = steps
        .iter()
        .map(|step| {
            ValueTuple::Many(vec![
                ids.new_id().into(),
                step.step_key.clone().into(),
                step.name.clone().into(),
                step.status.as_str().into(),
                Value::Object(step.state.clone()).into(),
                step.error.clone().into(),
                step.created_by.clone().into(),
                step.started_at.fixed_offset().into(),
                step.completed_at.fixed_offset().into(),
            ])
        })
        .collect();
    let value = |n: usize| Expr::col((STEPS, Alias::new(format!("column{n}"))));
    let select = Query::select()
        .expr(value(1))
        .column((UPDATED, processes::Column::Id))
        .exprs((2..=9).map(value))
        .from(UPDATED)
        .cross_join(TableRef::ValuesList(rows, STEPS.into_iden()))
        .take();
    let statement = Query::insert()
        .into_table(process_steps::Entity)
        .columns([
            process_steps::Column::Id,
            process_steps::Column::ProcessId,
            process_steps::Column::StepKey,
            process_steps::Column::Name,
            process_steps::Column::Status,
            process_steps::Column::State,
            process_steps::Column::Error,
            process_steps::Column::CreatedBy,
            process_steps::Column::StartedAt,
            process_steps::Column::CompletedAt,
        ])
        .select_from(select)
        .map_err(query_error)?
        .to_owned()
        .with(WithClause::new().cte(cte(UPDATED, updated)).to_owned());
    Ok(DbBackend::Postgres.build(&statement))
}

/// A statement sea-query refused to build: a mistake in this file, not in the data.
fn query_error(error: sea_orm::sea_query::error::Error) -> DomainError {
    DomainError::Internal(format!("a process statement could not be built: {error}"))
}

impl<C: Conn> Repo<C> {
    async fn process_row(&self, id: Uuid) -> Result<processes::Model> {
        processes::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("process", id))
    }
}

#[async_trait]
impl<C: Conn> ProcessRepository for Repo<C> {
    async fn create_process(&self, new: &NewProcess) -> Result<Process> {
        let process = new_process(new);
        if self.conn.get_database_backend() == DbBackend::Postgres {
            // One round trip: the process, its input and its link in a single statement.
            let statement = create_process_statement(new, &*self.ids)?;
            self.conn
                .execute_raw(statement)
                .await
                .map_err(storage_error)?;
        } else if C::IN_TRANSACTION {
            insert_process(&self.conn, new, &*self.ids).await?;
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            insert_process(&txn, new, &*self.ids).await?;
            txn.commit().await.map_err(storage_error)?;
        }
        Ok(process)
    }

    async fn process(&self, id: Uuid) -> Result<Process> {
        to_process(self.process_row(id).await?)
    }

    async fn process_steps(&self, id: Uuid) -> Result<Vec<ProcessStep>> {
        process_steps::Entity::find()
            .filter(process_steps::Column::ProcessId.eq(id))
            .order_by_asc(process_steps::Column::CompletedAt)
            .order_by_asc(process_steps::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_step)
            .collect()
    }

    async fn list_processes(&self, query: &ProcessQuery) -> Result<Page<Process>> {
        let mut select = processes::Entity::find();
        if let Some(workflow_name) = &query.workflow_name {
            select = select.filter(processes::Column::WorkflowName.eq(workflow_name.as_str()));
        }
        if let Some(status) = query.status {
            select = select.filter(processes::Column::Status.eq(status.as_str()));
        }
        if let Some(created_by) = &query.created_by {
            select = select.filter(processes::Column::CreatedBy.eq(created_by.as_str()));
        }
        if let Some(since) = query.started_since {
            select = select.filter(processes::Column::StartedAt.gte(since.fixed_offset()));
        }
        if let Some(before) = query.started_before {
            select = select.filter(processes::Column::StartedAt.lt(before.fixed_offset()));
        }
        if let Some(subscription_id) = query.subscription_id {
            select = select.filter(
                processes::Column::Id.in_subquery(
                    Query::select()
                        .column(processes_subscriptions::Column::ProcessId)
                        .from(processes_subscriptions::Entity)
                        .and_where(
                            Expr::col(processes_subscriptions::Column::SubscriptionId)
                                .eq(subscription_id),
                        )
                        .take(),
                ),
            );
        }
        let total = select
            .clone()
            .count(&self.conn)
            .await
            .map_err(storage_error)?;
        let rows = select
            .order_by_desc(processes::Column::StartedAt)
            .order_by_desc(processes::Column::Id)
            .limit(query.limit.unwrap_or(i64::MAX as u64))
            .offset(query.offset)
            .all(&self.conn)
            .await
            .map_err(storage_error)?;
        let items = rows
            .into_iter()
            .map(to_process)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    async fn process_subscriptions(&self, id: Uuid) -> Result<Vec<Uuid>> {
        Ok(processes_subscriptions::Entity::find()
            .filter(processes_subscriptions::Column::ProcessId.eq(id))
            .order_by_asc(processes_subscriptions::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(|row| row.subscription_id)
            .collect())
    }

    async fn link_subscription(
        &self,
        id: Uuid,
        subscription_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<()> {
        processes_subscriptions::Entity::insert(processes_subscriptions::ActiveModel {
            id: Set(self.ids.new_id()),
            process_id: Set(id),
            subscription_id: Set(subscription_id),
            created_at: Set(now.fixed_offset()),
        })
        .on_conflict(
            OnConflict::columns([
                processes_subscriptions::Column::ProcessId,
                processes_subscriptions::Column::SubscriptionId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn claim_process(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<(Process, Lease)>> {
        let now_value = now.fixed_offset();
        let due = Query::select()
            .column(processes::Column::Id)
            .from(processes::Entity)
            .cond_where(claimable(now))
            .order_by(processes::Column::RunAt, sea_orm::Order::Asc)
            .order_by(processes::Column::Id, sea_orm::Order::Asc)
            .limit(1)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .take();
        let claimed = processes::Entity::update_many()
            .col_expr(
                processes::Column::Status,
                Expr::value(ProcessStatus::Running.as_str()),
            )
            .col_expr(processes::Column::LeaseOwner, Expr::value(owner))
            .col_expr(
                processes::Column::LeaseExpiresAt,
                Expr::value(expires_at.fixed_offset()),
            )
            .col_expr(
                processes::Column::LeaseToken,
                Expr::col(processes::Column::LeaseToken).add(1),
            )
            .col_expr(processes::Column::LastModifiedAt, Expr::value(now_value))
            .filter(processes::Column::Id.in_subquery(due))
            .exec_with_returning(&self.conn)
            .await
            .map_err(storage_error)?;
        let Some(row) = claimed.into_iter().next() else {
            return Ok(None);
        };
        let lease = Lease {
            process_id: row.id,
            owner: owner.to_owned(),
            token: row.lease_token,
            expires_at,
        };
        Ok(Some((to_process(row)?, lease)))
    }

    async fn commit_steps(
        &self,
        lease: &Lease,
        steps: &[StepRecord],
        update: &ProcessUpdate,
        renew_until: Option<DateTime<Utc>>,
    ) -> Result<Lease> {
        let owner = renew_until.map(|_| lease.owner.clone());
        let held = if self.conn.get_database_backend() == DbBackend::Postgres && !steps.is_empty() {
            // One round trip: the fenced update and the log rows in a single statement.
            let statement =
                fenced_commit_statement(lease, steps, update, owner, renew_until, &*self.ids)?;
            let inserted = self
                .conn
                .execute_raw(statement)
                .await
                .map_err(storage_error)?;
            inserted.rows_affected() == steps.len() as u64
        } else {
            let mut model = update_model(update);
            model.lease_owner = Set(owner);
            model.lease_expires_at = Set(renew_until.map(|until| until.fixed_offset()));
            let updated = processes::Entity::update_many()
                .set(model)
                .filter(processes::Column::Id.eq(lease.process_id))
                .filter(processes::Column::LeaseToken.eq(lease.token))
                .exec(&self.conn)
                .await
                .map_err(storage_error)?;
            let held = updated.rows_affected == 1;
            if held {
                insert_steps(&self.conn, &*self.ids, lease.process_id, steps).await?;
            }
            held
        };
        if !held {
            return Err(DomainError::LeaseLost {
                process: lease.process_id,
                owner: lease.owner.clone(),
            });
        }
        Ok(Lease {
            expires_at: renew_until.unwrap_or(update.now),
            ..lease.clone()
        })
    }

    async fn renew_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<Lease> {
        let renewed = processes::Entity::update_many()
            .col_expr(
                processes::Column::LeaseExpiresAt,
                Expr::value(until.fixed_offset()),
            )
            .filter(processes::Column::Id.eq(lease.process_id))
            .filter(processes::Column::LeaseToken.eq(lease.token))
            .filter(processes::Column::LeaseOwner.eq(lease.owner.as_str()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if renewed.rows_affected != 1 {
            return Err(DomainError::LeaseLost {
                process: lease.process_id,
                owner: lease.owner.clone(),
            });
        }
        Ok(Lease {
            expires_at: until,
            ..lease.clone()
        })
    }

    async fn process_counts(&self, now: DateTime<Utc>) -> Result<ProcessCounts> {
        let by_status: Vec<(String, i64)> = processes::Entity::find()
            .select_only()
            .column(processes::Column::Status)
            .column_as(processes::Column::Id.count(), "count")
            .group_by(processes::Column::Status)
            .into_tuple()
            .all(&self.conn)
            .await
            .map_err(storage_error)?;
        let (runnable, oldest): (i64, Option<sea_orm::prelude::DateTimeWithTimeZone>) =
            processes::Entity::find()
                .select_only()
                .column_as(processes::Column::Id.count(), "runnable")
                .column_as(processes::Column::RunAt.min(), "oldest")
                .filter(claimable(now))
                .into_tuple()
                .one(&self.conn)
                .await
                .map_err(storage_error)?
                .unwrap_or_default();
        let mut counts = ProcessCounts {
            runnable: u64::try_from(runnable).unwrap_or_default(),
            oldest_runnable: oldest.map(|at| at.to_utc()),
            ..ProcessCounts::default()
        };
        for (status, count) in by_status {
            counts
                .by_status
                .push((status.parse()?, u64::try_from(count).unwrap_or_default()));
        }
        Ok(counts)
    }

    async fn prune_step_states(&self, before: DateTime<Utc>) -> Result<u64> {
        let ended = Query::select()
            .column(processes::Column::Id)
            .from(processes::Entity)
            .and_where(
                processes::Column::Status.is_in(
                    ProcessStatus::ALL
                        .iter()
                        .filter(|status| status.is_final())
                        .map(|status| status.as_str()),
                ),
            )
            .and_where(processes::Column::LastModifiedAt.lt(before.fixed_offset()))
            .to_owned();
        let empty = Value::Object(serde_json::Map::new());
        let pruned = process_steps::Entity::update_many()
            .col_expr(process_steps::Column::State, Expr::value(empty.clone()))
            .filter(process_steps::Column::ProcessId.in_subquery(ended))
            .filter(process_steps::Column::State.ne(empty))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(pruned.rows_affected)
    }

    async fn transition_process(
        &self,
        id: Uuid,
        from: &[ProcessStatus],
        step: Option<&StepRecord>,
        update: &ProcessUpdate,
    ) -> Result<Process> {
        let mut model = update_model(update);
        model.lease_owner = Set(None);
        model.lease_expires_at = Set(None);
        model.lease_token = NotSet;
        let updated = processes::Entity::update_many()
            .set(model)
            .col_expr(
                processes::Column::LeaseToken,
                Expr::col(processes::Column::LeaseToken).add(1),
            )
            .filter(processes::Column::Id.eq(id))
            .filter(processes::Column::Status.is_in(from.iter().map(|status| status.as_str())))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected != 1 {
            let current = self.process(id).await?;
            return Err(DomainError::Conflict(format!(
                "process {id} is {}; this action needs one of: {}",
                current.status,
                from.iter()
                    .map(|status| status.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let steps = step.map(std::slice::from_ref).unwrap_or_default();
        insert_steps(&self.conn, &*self.ids, id, steps).await?;
        self.process(id).await
    }

    async fn record_input(
        &self,
        id: Uuid,
        input_type: &str,
        input: &Value,
        now: DateTime<Utc>,
    ) -> Result<()> {
        input_states::Entity::insert(input_states::ActiveModel {
            id: Set(self.ids.new_id()),
            process_id: Set(id),
            input_type: Set(input_type.to_owned()),
            input_state: Set(input.clone()),
            input_time: Set(now.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The PostgreSQL single statements keep their shape: one round trip each, the inserts
    //! chained through common table expressions.

    use super::*;
    use cadre_domain::{StepStatus, UuidV7Source};

    fn at() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    #[test]
    fn process_creation_is_one_statement_of_chained_inserts() {
        let new = NewProcess {
            id: Uuid::nil(),
            workflow_name: "w".to_owned(),
            workflow_version: 1,
            target: Target::Modify,
            created_by: "a".to_owned(),
            state: State::new(),
            input: Value::Null,
            first_step: "init".to_owned(),
            subscription_id: Some(Uuid::nil()),
            now: at(),
        };
        let sql = create_process_statement(&new, &UuidV7Source).unwrap().sql;
        assert!(
            sql.starts_with(r#"WITH "created" AS (INSERT INTO "processes" "#),
            "{sql}"
        );
        assert!(sql.contains(r#"RETURNING "id") , "input" AS (INSERT INTO "input_states" "#));
        assert!(
            sql.ends_with(r#"INSERT INTO "processes_subscriptions" ("id", "process_id", "subscription_id", "created_at") SELECT $24, "process_id", $25, $26 FROM "input""#),
            "{sql}"
        );
    }

    #[test]
    fn a_step_commit_is_one_fenced_statement() {
        let lease = Lease {
            process_id: Uuid::nil(),
            owner: "w".to_owned(),
            token: 1,
            expires_at: at(),
        };
        let step = StepRecord {
            step_key: "s".to_owned(),
            name: "S".to_owned(),
            status: StepStatus::Success,
            state: State::new(),
            error: None,
            created_by: "a".to_owned(),
            started_at: at(),
            completed_at: at(),
        };
        let update = ProcessUpdate {
            status: ProcessStatus::Running,
            last_step: None,
            next_step: None,
            state: State::new(),
            failed_reason: None,
            traceback: None,
            run_at: at(),
            attempt: 0,
            now: at(),
        };
        let steps = [step.clone(), step];
        let sql = fenced_commit_statement(&lease, &steps, &update, None, None, &UuidV7Source)
            .unwrap()
            .sql;
        assert!(
            sql.starts_with(r#"WITH "updated" AS (UPDATE "processes" SET "status" = $1"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"WHERE "processes"."id" = $12 AND "processes"."lease_token" = $13 RETURNING "id") INSERT INTO "process_steps" "#),
            "{sql}"
        );
        assert!(
            sql.ends_with(r#"FROM "updated" CROSS JOIN (VALUES ($14, $15, $16, $17, $18, $19, $20, $21, $22), ($23, $24, $25, $26, $27, $28, $29, $30, $31)) AS "v""#),
            "{sql}"
        );
    }
}
