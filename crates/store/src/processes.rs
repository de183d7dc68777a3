//! Processes, their step logs, inputs and subscription links; claiming with leases.
//!
//! Claiming is one `UPDATE … WHERE id IN (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING`,
//! atomic on both backends: PostgreSQL skips rows other workers have locked, SQLite serialises
//! writers (and drops the lock clause). Every step commit is fenced by the lease token.

use async_trait::async_trait;
use cadre_domain::{
    DomainError, IdSource, Lease, NewProcess, Page, Process, ProcessQuery, ProcessRepository,
    ProcessStatus, ProcessStep, ProcessUpdate, Result, State, StepRecord, Target,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, OnConflict, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionSession,
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

/// Inserts a new process, its initial input and its subscription link, statement by statement
/// (inside the caller's transaction).
async fn insert_process(
    conn: &impl ConnectionTrait,
    new: &NewProcess,
    ids: &dyn IdSource,
) -> Result<()> {
    let now = new.now.fixed_offset();
    processes::Entity::insert(processes::ActiveModel {
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
    })
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

/// PostgreSQL's single-statement process creation: the process row, its initial input and (if
/// any) its subscription link.
fn create_process_statement(new: &NewProcess, process: &Process, ids: &dyn IdSource) -> Statement {
    let now = new.now.fixed_offset();
    let mut values: Vec<sea_orm::Value> = vec![
        process.id.into(),
        process.workflow_name.clone().into(),
        process.workflow_version.into(),
        process.target.as_str().into(),
        process.is_task.into(),
        process.status.as_str().into(),
        process.next_step.clone().into(),
        Value::Object(process.state.clone()).into(),
        process.created_by.clone().into(),
        now.into(),
        ids.new_id().into(),
        INITIAL_STATE.into(),
        new.input.clone().into(),
    ];
    let mut sql = String::from(
        "WITH created AS (INSERT INTO processes (id, workflow_name, workflow_version, \
         workflow_target, is_task, status, next_step, state, created_by, started_at, \
         last_modified_at, run_at, attempt, lease_token) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, 0, 0) RETURNING id), \
         input AS (INSERT INTO input_states (id, process_id, input_type, input_state, input_time) \
         SELECT $11, created.id, $12, $13, $10 FROM created RETURNING process_id) ",
    );
    match new.subscription_id {
        Some(subscription_id) => {
            values.extend([ids.new_id().into(), subscription_id.into()]);
            sql.push_str(
                "INSERT INTO processes_subscriptions (id, process_id, subscription_id, created_at) \
                 SELECT $14, process_id, $15, $10 FROM input",
            );
        }
        None => sql.push_str("SELECT process_id FROM input"),
    }
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// PostgreSQL's single-statement step commit: the process row is updated only if the lease
/// token still matches, and the log rows are inserted only from that update's result, so the
/// statement inserts `steps.len()` rows exactly when the lease held.
fn fenced_commit_statement(
    lease: &Lease,
    steps: &[StepRecord],
    update: &ProcessUpdate,
    owner: Option<String>,
    renew_until: Option<DateTime<Utc>>,
    ids: &dyn IdSource,
) -> Statement {
    let mut values: Vec<sea_orm::Value> = vec![
        update.status.as_str().into(),
        update.last_step.clone().into(),
        update.next_step.clone().into(),
        Value::Object(update.state.clone()).into(),
        update.failed_reason.clone().into(),
        update.traceback.clone().into(),
        update.now.fixed_offset().into(),
        update.run_at.fixed_offset().into(),
        update.attempt.into(),
        owner.into(),
        renew_until.map(|until| until.fixed_offset()).into(),
        lease.process_id.into(),
        lease.token.into(),
    ];
    let mut rows = Vec::with_capacity(steps.len());
    for step in steps {
        let n = values.len();
        rows.push(format!(
            "(${}::uuid, ${}::text, ${}::text, ${}::text, ${}::jsonb, ${}::jsonb, ${}::text, ${}::timestamptz, ${}::timestamptz)",
            n + 1, n + 2, n + 3, n + 4, n + 5, n + 6, n + 7, n + 8, n + 9
        ));
        values.extend([
            ids.new_id().into(),
            step.step_key.clone().into(),
            step.name.clone().into(),
            step.status.as_str().into(),
            Value::Object(step.state.clone()).into(),
            step.error.clone().into(),
            step.created_by.clone().into(),
            step.started_at.fixed_offset().into(),
            step.completed_at.fixed_offset().into(),
        ]);
    }
    let sql = format!(
        "WITH updated AS (UPDATE processes SET status = $1, last_step = $2, next_step = $3, \
         state = $4, failed_reason = $5, traceback = $6, last_modified_at = $7, run_at = $8, \
         attempt = $9, lease_owner = $10, lease_expires_at = $11 \
         WHERE id = $12 AND lease_token = $13 RETURNING id) \
         INSERT INTO process_steps (id, process_id, step_key, name, status, state, error, \
         created_by, started_at, completed_at) \
         SELECT v.id, updated.id, v.step_key, v.name, v.status, v.state, v.error, v.created_by, \
         v.started_at, v.completed_at FROM updated CROSS JOIN (VALUES {}) \
         AS v(id, step_key, name, status, state, error, created_by, started_at, completed_at)",
        rows.join(", ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
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
            let statement = create_process_statement(new, &process, &*self.ids);
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
            // Literal statuses, so that PostgreSQL can use the partial index of runnable
            // processes even with a generic plan.
            .and_where(Expr::cust(format!(
                "status IN ({})",
                CLAIMABLE
                    .iter()
                    .map(|status| format!("'{}'", status.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
            .and_where(Expr::col(processes::Column::RunAt).lte(now_value))
            .and_where(
                Expr::col(processes::Column::LeaseExpiresAt)
                    .is_null()
                    .or(Expr::col(processes::Column::LeaseExpiresAt).lt(now_value)),
            )
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
                fenced_commit_statement(lease, steps, update, owner, renew_until, &*self.ids);
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
