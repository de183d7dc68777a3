//! Workflow processes: the process row (status, position, state and the worker lease), its step
//! log, the raw form inputs it received, and the subscriptions it touches.
//!
//! A process records the stable id of its next step and the version of the workflow it runs,
//! so that resuming never counts rows. The lease columns let many workers share the table:
//! a worker claims a process by taking its lease, and every step commit is fenced by
//! `lease_token`, so a worker that lost its lease cannot commit a step.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(DeriveMigrationName)]
pub struct Migration;

const RUNNABLE_INDEX: &str = "CREATE INDEX ix_processes_runnable ON processes (run_at, id) \
     WHERE status IN ('created', 'resumed', 'running', 'waiting')";

#[derive(DeriveIden)]
enum Processes {
    Table,
    Id,
    WorkflowName,
    WorkflowVersion,
    WorkflowTarget,
    IsTask,
    Status,
    LastStep,
    NextStep,
    State,
    FailedReason,
    Traceback,
    CreatedBy,
    StartedAt,
    LastModifiedAt,
    RunAt,
    Attempt,
    LeaseOwner,
    LeaseExpiresAt,
    LeaseToken,
}

#[derive(DeriveIden)]
enum ProcessSteps {
    Table,
    Id,
    ProcessId,
    StepKey,
    Name,
    Status,
    State,
    Error,
    CreatedBy,
    StartedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum InputStates {
    Table,
    Id,
    ProcessId,
    InputType,
    InputState,
    InputTime,
}

#[derive(DeriveIden)]
enum ProcessesSubscriptions {
    Table,
    Id,
    ProcessId,
    SubscriptionId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
}

fn cascade_from_process(
    name: &str,
    table: impl IntoIden,
    column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Processes::Table, Processes::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .on_update(ForeignKeyAction::NoAction)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Processes::Table)
                    .col(pk_uuid(Processes::Id))
                    .col(string_len(Processes::WorkflowName, 255))
                    .col(big_integer(Processes::WorkflowVersion))
                    .col(string_len(Processes::WorkflowTarget, 32))
                    .col(boolean(Processes::IsTask))
                    .col(string_len(Processes::Status, 32))
                    .col(string_len_null(Processes::LastStep, 255))
                    .col(string_len_null(Processes::NextStep, 255))
                    .col(json_binary(Processes::State))
                    .col(text_null(Processes::FailedReason))
                    .col(text_null(Processes::Traceback))
                    .col(string_len(Processes::CreatedBy, 255))
                    .col(timestamp_with_time_zone(Processes::StartedAt))
                    .col(timestamp_with_time_zone(Processes::LastModifiedAt))
                    .col(timestamp_with_time_zone(Processes::RunAt))
                    .col(big_integer(Processes::Attempt))
                    .col(string_len_null(Processes::LeaseOwner, 255))
                    .col(timestamp_with_time_zone_null(Processes::LeaseExpiresAt))
                    .col(big_integer(Processes::LeaseToken))
                    .take(),
            )
            .await?;
        // Workers look for due processes among the runnable ones only: a partial index, so a
        // claim stays cheap however many finished processes the table holds. sea-query cannot
        // express partial indexes; the statement is the same on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(RUNNABLE_INDEX)
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_processes_status_started_at")
                    .table(Processes::Table)
                    .col(Processes::Status)
                    .col(Processes::StartedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_processes_workflow_name")
                    .table(Processes::Table)
                    .col(Processes::WorkflowName)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProcessSteps::Table)
                    .col(pk_uuid(ProcessSteps::Id))
                    .col(uuid(ProcessSteps::ProcessId))
                    .col(string_len(ProcessSteps::StepKey, 255))
                    .col(string_len(ProcessSteps::Name, 255))
                    .col(string_len(ProcessSteps::Status, 32))
                    .col(json_binary(ProcessSteps::State))
                    .col(json_binary_null(ProcessSteps::Error))
                    .col(string_len(ProcessSteps::CreatedBy, 255))
                    .col(timestamp_with_time_zone(ProcessSteps::StartedAt))
                    .col(timestamp_with_time_zone(ProcessSteps::CompletedAt))
                    .foreign_key(&mut cascade_from_process(
                        "fk_process_steps_process_id",
                        ProcessSteps::Table,
                        ProcessSteps::ProcessId,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_process_steps_process_id")
                    .table(ProcessSteps::Table)
                    .col(ProcessSteps::ProcessId)
                    .col(ProcessSteps::CompletedAt)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InputStates::Table)
                    .col(pk_uuid(InputStates::Id))
                    .col(uuid(InputStates::ProcessId))
                    .col(string_len(InputStates::InputType, 32))
                    .col(json_binary(InputStates::InputState))
                    .col(timestamp_with_time_zone(InputStates::InputTime))
                    .foreign_key(&mut cascade_from_process(
                        "fk_input_states_process_id",
                        InputStates::Table,
                        InputStates::ProcessId,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_input_states_process_id")
                    .table(InputStates::Table)
                    .col(InputStates::ProcessId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProcessesSubscriptions::Table)
                    .col(pk_uuid(ProcessesSubscriptions::Id))
                    .col(uuid(ProcessesSubscriptions::ProcessId))
                    .col(uuid(ProcessesSubscriptions::SubscriptionId))
                    .col(timestamp_with_time_zone(ProcessesSubscriptions::CreatedAt))
                    .foreign_key(&mut cascade_from_process(
                        "fk_processes_subscriptions_process_id",
                        ProcessesSubscriptions::Table,
                        ProcessesSubscriptions::ProcessId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_processes_subscriptions_subscription_id")
                            .from(
                                ProcessesSubscriptions::Table,
                                ProcessesSubscriptions::SubscriptionId,
                            )
                            .to(Subscriptions::Table, Subscriptions::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_processes_subscriptions_pair")
                    .table(ProcessesSubscriptions::Table)
                    .col(ProcessesSubscriptions::ProcessId)
                    .col(ProcessesSubscriptions::SubscriptionId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_processes_subscriptions_subscription_id")
                    .table(ProcessesSubscriptions::Table)
                    .col(ProcessesSubscriptions::SubscriptionId)
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ProcessesSubscriptions::Table.into_iden(),
            InputStates::Table.into_iden(),
            ProcessSteps::Table.into_iden(),
            Processes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
