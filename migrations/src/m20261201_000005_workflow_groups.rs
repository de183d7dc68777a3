//! Workflow groups: teams of users attached to a workflow, their members and uploaded files;
//! and the User subscription an API token acts for.
//!
//! A group's name is unique per workflow by its normalised key, in the schema (also on rename).
//! Members are a set (primary key `(group_id, user_id)`). File rows carry the status of their
//! content on the file volume, so that an interrupted upload or delete can be finished later.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WorkflowGroups {
    Table,
    Id,
    WorkflowName,
    Name,
    NameKey,
    OwnerId,
    Parameters,
    WorkflowSpec,
    EngineConfig,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WorkflowGroupMembers {
    Table,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum WorkflowGroupFiles {
    Table,
    Id,
    GroupId,
    Name,
    Key,
    MimeType,
    Size,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    UserId,
}

fn foreign_key(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::NoAction)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WorkflowGroups::Table)
                    .col(string_len(WorkflowGroups::Id, 32).primary_key())
                    .col(string_len(WorkflowGroups::WorkflowName, 255))
                    .col(text(WorkflowGroups::Name))
                    .col(text(WorkflowGroups::NameKey))
                    .col(uuid(WorkflowGroups::OwnerId))
                    .col(json_binary(WorkflowGroups::Parameters))
                    .col(json_binary(WorkflowGroups::WorkflowSpec))
                    .col(json_binary_null(WorkflowGroups::EngineConfig))
                    .col(timestamp_with_time_zone(WorkflowGroups::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_workflow_groups_owner_id",
                        (WorkflowGroups::Table, WorkflowGroups::OwnerId),
                        (Subscriptions::Table, Subscriptions::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_workflow_groups_workflow_name_key")
                    .table(WorkflowGroups::Table)
                    .col(WorkflowGroups::WorkflowName)
                    .col(WorkflowGroups::NameKey)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WorkflowGroupMembers::Table)
                    .col(string_len(WorkflowGroupMembers::GroupId, 32))
                    .col(uuid(WorkflowGroupMembers::UserId))
                    .primary_key(
                        Index::create()
                            .col(WorkflowGroupMembers::GroupId)
                            .col(WorkflowGroupMembers::UserId),
                    )
                    .foreign_key(&mut foreign_key(
                        "fk_workflow_group_members_group_id",
                        (WorkflowGroupMembers::Table, WorkflowGroupMembers::GroupId),
                        (WorkflowGroups::Table, WorkflowGroups::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_workflow_group_members_user_id",
                        (WorkflowGroupMembers::Table, WorkflowGroupMembers::UserId),
                        (Subscriptions::Table, Subscriptions::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_workflow_group_members_user_id")
                    .table(WorkflowGroupMembers::Table)
                    .col(WorkflowGroupMembers::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WorkflowGroupFiles::Table)
                    .col(pk_uuid(WorkflowGroupFiles::Id))
                    .col(string_len(WorkflowGroupFiles::GroupId, 32))
                    .col(text(WorkflowGroupFiles::Name))
                    .col(string_len_uniq(WorkflowGroupFiles::Key, 64))
                    .col(string_len_null(WorkflowGroupFiles::MimeType, 255))
                    .col(big_integer(WorkflowGroupFiles::Size))
                    .col(string_len(WorkflowGroupFiles::Status, 16))
                    .col(timestamp_with_time_zone(WorkflowGroupFiles::CreatedAt))
                    .foreign_key(&mut foreign_key(
                        "fk_workflow_group_files_group_id",
                        (WorkflowGroupFiles::Table, WorkflowGroupFiles::GroupId),
                        (WorkflowGroups::Table, WorkflowGroups::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_workflow_group_files_group_id")
                    .table(WorkflowGroupFiles::Table)
                    .col(WorkflowGroupFiles::GroupId)
                    .col(WorkflowGroupFiles::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_workflow_group_files_status")
                    .table(WorkflowGroupFiles::Table)
                    .col(WorkflowGroupFiles::Status)
                    .col(WorkflowGroupFiles::CreatedAt)
                    .take(),
            )
            .await?;

        // The User subscription a token acts for, if any (checked by the code that issues it).
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .add_column(uuid_null(ApiTokens::UserId))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiTokens::Table)
                    .drop_column(ApiTokens::UserId)
                    .take(),
            )
            .await?;
        for table in [
            WorkflowGroupFiles::Table.into_iden(),
            WorkflowGroupMembers::Table.into_iden(),
            WorkflowGroups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
