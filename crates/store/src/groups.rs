//! Workflow groups, their members and their file rows.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use cadre_domain::{
    DomainError, FileName, FileStatus, GroupFile, GroupId, GroupName, Result, WorkflowGroup,
    WorkflowGroupRepository,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    TransactionSession,
};
use uuid::Uuid;

use crate::entities::{workflow_group_files, workflow_group_members, workflow_groups};
use crate::{Conn, Repo, storage_error};

fn not_found(id: &GroupId) -> DomainError {
    DomainError::NotFound {
        kind: "workflow group",
        id: id.to_string(),
    }
}

fn to_group(row: workflow_groups::Model, members: BTreeSet<Uuid>) -> Result<WorkflowGroup> {
    Ok(WorkflowGroup {
        id: GroupId::parse(&row.id)?,
        workflow: row.workflow_name,
        name: GroupName::parse(&row.name)?,
        owner: row.owner_id,
        members,
        parameters: row.parameters,
        workflow_spec: row.workflow_spec,
        engine_config: row.engine_config,
        created_at: row.created_at.to_utc(),
    })
}

fn to_file(row: workflow_group_files::Model) -> Result<GroupFile> {
    Ok(GroupFile {
        id: row.id,
        group_id: GroupId::parse(&row.group_id)?,
        name: FileName::parse(&row.name)?,
        key: row.key,
        mime_type: row.mime_type,
        size: u64::try_from(row.size).unwrap_or_default(),
        status: row.status.parse()?,
        created_at: row.created_at.to_utc(),
    })
}

/// The members of the groups `ids`, by group.
async fn members_of(
    conn: &impl ConnectionTrait,
    ids: Vec<String>,
) -> Result<BTreeMap<String, BTreeSet<Uuid>>> {
    let mut members: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(members);
    }
    for row in workflow_group_members::Entity::find()
        .filter(workflow_group_members::Column::GroupId.is_in(ids))
        .all(conn)
        .await
        .map_err(storage_error)?
    {
        members.entry(row.group_id).or_default().insert(row.user_id);
    }
    Ok(members)
}

/// Inserts `group` (when `new`) or updates its name, then writes its member set exactly.
async fn write_group(conn: &impl ConnectionTrait, group: &WorkflowGroup, new: bool) -> Result<()> {
    let id = group.id.to_string();
    if new {
        workflow_groups::Entity::insert(workflow_groups::ActiveModel {
            id: Set(id.clone()),
            workflow_name: Set(group.workflow.clone()),
            name: Set(group.name.to_string()),
            name_key: Set(group.name.key()),
            owner_id: Set(group.owner),
            parameters: Set(group.parameters.clone()),
            workflow_spec: Set(group.workflow_spec.clone()),
            engine_config: Set(group.engine_config.clone()),
            created_at: Set(group.created_at.fixed_offset()),
        })
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    } else {
        let updated = workflow_groups::Entity::update_many()
            .col_expr(
                workflow_groups::Column::Name,
                Expr::value(group.name.to_string()),
            )
            .col_expr(
                workflow_groups::Column::NameKey,
                Expr::value(group.name.key()),
            )
            .filter(workflow_groups::Column::Id.eq(id.clone()))
            .exec(conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(not_found(&group.id));
        }
        workflow_group_members::Entity::delete_many()
            .filter(workflow_group_members::Column::GroupId.eq(id.clone()))
            .exec(conn)
            .await
            .map_err(storage_error)?;
    }
    if !group.members.is_empty() {
        workflow_group_members::Entity::insert_many(group.members.iter().map(|user| {
            workflow_group_members::ActiveModel {
                group_id: Set(id.clone()),
                user_id: Set(*user),
            }
        }))
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    }
    Ok(())
}

impl<C: Conn> Repo<C> {
    /// Runs [`write_group`] in this transaction, or in one of its own.
    async fn save_group(&self, group: &WorkflowGroup, new: bool) -> Result<()> {
        if C::IN_TRANSACTION {
            return write_group(&self.conn, group, new).await;
        }
        let txn = self.conn.begin().await.map_err(storage_error)?;
        write_group(&txn, group, new).await?;
        txn.commit().await.map_err(storage_error)
    }
}

#[async_trait]
impl<C: Conn> WorkflowGroupRepository for Repo<C> {
    async fn create_group(&self, group: &WorkflowGroup) -> Result<()> {
        self.save_group(group, true).await
    }

    async fn group(&self, id: &GroupId) -> Result<WorkflowGroup> {
        let row = workflow_groups::Entity::find_by_id(id.to_string())
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| not_found(id))?;
        let mut members = members_of(&self.conn, vec![row.id.clone()]).await?;
        let members = members.remove(&row.id).unwrap_or_default();
        to_group(row, members)
    }

    async fn list_groups(
        &self,
        workflow: Option<&str>,
        member: Option<Uuid>,
    ) -> Result<Vec<WorkflowGroup>> {
        let mut select = workflow_groups::Entity::find()
            .order_by_asc(workflow_groups::Column::CreatedAt)
            .order_by_asc(workflow_groups::Column::Id);
        if let Some(workflow) = workflow {
            select = select.filter(workflow_groups::Column::WorkflowName.eq(workflow));
        }
        if let Some(member) = member {
            select = select.filter(
                workflow_groups::Column::Id.in_subquery(
                    Query::select()
                        .column(workflow_group_members::Column::GroupId)
                        .from(workflow_group_members::Entity)
                        .and_where(workflow_group_members::Column::UserId.eq(member))
                        .take(),
                ),
            );
        }
        let rows = select.all(&self.conn).await.map_err(storage_error)?;
        let mut members =
            members_of(&self.conn, rows.iter().map(|row| row.id.clone()).collect()).await?;
        rows.into_iter()
            .map(|row| {
                let group_members = members.remove(&row.id).unwrap_or_default();
                to_group(row, group_members)
            })
            .collect()
    }

    async fn update_group(&self, group: &WorkflowGroup) -> Result<()> {
        self.save_group(group, false).await
    }

    async fn delete_group(&self, id: &GroupId) -> Result<()> {
        let deleted = workflow_groups::Entity::delete_by_id(id.to_string())
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if deleted.rows_affected == 0 {
            return Err(not_found(id));
        }
        Ok(())
    }

    async fn insert_file(&self, file: &GroupFile) -> Result<()> {
        workflow_group_files::Entity::insert(workflow_group_files::ActiveModel {
            id: Set(file.id),
            group_id: Set(file.group_id.to_string()),
            name: Set(file.name.to_string()),
            key: Set(file.key.clone()),
            mime_type: Set(file.mime_type.clone()),
            size: Set(i64::try_from(file.size).unwrap_or(i64::MAX)),
            status: Set(file.status.as_str().to_owned()),
            created_at: Set(file.created_at.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn update_file(&self, file: &GroupFile) -> Result<()> {
        let updated = workflow_group_files::Entity::update_many()
            .col_expr(
                workflow_group_files::Column::Status,
                Expr::value(file.status.as_str()),
            )
            .col_expr(
                workflow_group_files::Column::Size,
                Expr::value(i64::try_from(file.size).unwrap_or(i64::MAX)),
            )
            .col_expr(
                workflow_group_files::Column::MimeType,
                Expr::value(file.mime_type.clone()),
            )
            .filter(workflow_group_files::Column::Id.eq(file.id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(DomainError::not_found("file", file.id));
        }
        Ok(())
    }

    async fn group_file(&self, group: &GroupId, id: Uuid) -> Result<GroupFile> {
        workflow_group_files::Entity::find_by_id(id)
            .filter(workflow_group_files::Column::GroupId.eq(group.to_string()))
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("file", id))
            .and_then(to_file)
    }

    async fn group_files(
        &self,
        group: &GroupId,
        status: Option<FileStatus>,
    ) -> Result<Vec<GroupFile>> {
        let mut select = workflow_group_files::Entity::find()
            .filter(workflow_group_files::Column::GroupId.eq(group.to_string()))
            .order_by_asc(workflow_group_files::Column::CreatedAt)
            .order_by_asc(workflow_group_files::Column::Id);
        if let Some(status) = status {
            select = select.filter(workflow_group_files::Column::Status.eq(status.as_str()));
        }
        select
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_file)
            .collect()
    }

    async fn files_in_status(
        &self,
        status: FileStatus,
        before: DateTime<Utc>,
    ) -> Result<Vec<GroupFile>> {
        workflow_group_files::Entity::find()
            .filter(workflow_group_files::Column::Status.eq(status.as_str()))
            .filter(workflow_group_files::Column::CreatedAt.lt(before.fixed_offset()))
            .order_by_asc(workflow_group_files::Column::CreatedAt)
            .order_by_asc(workflow_group_files::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_file)
            .collect()
    }

    async fn delete_file(&self, id: Uuid) -> Result<()> {
        workflow_group_files::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}
