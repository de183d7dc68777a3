//! Workflow groups in memory: names unique per workflow by their key, members and owners
//! existing subscriptions, file rows going with their group, as the real store's schema keeps
//! them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::groups::{FileStatus, GroupFile, GroupId, WorkflowGroup, WorkflowGroupRepository};

use super::{Access, DUPLICATE, MISSING_REFERENCE, Tables};

/// The groups by id, and the file rows by id.
#[derive(Debug, Clone, Default)]
pub(super) struct Groups {
    groups: BTreeMap<GroupId, WorkflowGroup>,
    files: BTreeMap<Uuid, GroupFile>,
}

fn not_found(id: &GroupId) -> DomainError {
    DomainError::NotFound {
        kind: "workflow group",
        id: id.to_string(),
    }
}

/// Refuses a name whose key another group of the workflow has.
fn check(tables: &Tables, group: &WorkflowGroup) -> Result<()> {
    let key = group.name.key();
    let taken = tables.groups.groups.values().any(|other| {
        other.id != group.id && other.workflow == group.workflow && other.name.key() == key
    });
    if taken {
        return Err(DomainError::Conflict(
            "a group with this name already exists in this workflow".to_owned(),
        ));
    }
    Ok(())
}

/// Refuses members that are no subscriptions.
fn check_members(tables: &Tables, group: &WorkflowGroup) -> Result<()> {
    if group
        .members
        .iter()
        .any(|member| !tables.subscriptions.contains(*member))
    {
        return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
    }
    Ok(())
}

fn create(tables: &mut Tables, group: &WorkflowGroup) -> Result<()> {
    if tables.groups.groups.contains_key(&group.id) {
        return Err(DomainError::Conflict(
            "a workflow group with this identifier already exists".to_owned(),
        ));
    }
    check(tables, group)?;
    if !tables.subscriptions.contains(group.owner) {
        return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
    }
    check_members(tables, group)?;
    Arc::make_mut(&mut tables.groups)
        .groups
        .insert(group.id.clone(), group.clone());
    Ok(())
}

/// Saves the name and the member set of `group`, as the real store does (nothing else).
fn update(tables: &mut Tables, group: &WorkflowGroup) -> Result<()> {
    if !tables.groups.groups.contains_key(&group.id) {
        return Err(not_found(&group.id));
    }
    check(tables, group)?;
    check_members(tables, group)?;
    let stored = Arc::make_mut(&mut tables.groups)
        .groups
        .get_mut(&group.id)
        .ok_or_else(|| not_found(&group.id))?;
    stored.name = group.name.clone();
    stored.members = group.members.clone();
    Ok(())
}

/// `files` in upload order (then by id).
fn in_upload_order(mut files: Vec<GroupFile>) -> Vec<GroupFile> {
    files.sort_by_key(|file| (file.created_at, file.id));
    files
}

#[async_trait]
impl<T: Access> WorkflowGroupRepository for T {
    async fn create_group(&self, group: &WorkflowGroup) -> Result<()> {
        let group = group.clone();
        self.write(move |tables, _| create(tables, &group))
    }

    async fn group(&self, id: &GroupId) -> Result<WorkflowGroup> {
        self.read(|tables, _| tables.groups.groups.get(id).cloned())
            .ok_or_else(|| not_found(id))
    }

    async fn list_groups(
        &self,
        workflow: Option<&str>,
        member: Option<Uuid>,
    ) -> Result<Vec<WorkflowGroup>> {
        let mut groups: Vec<WorkflowGroup> = self.read(|tables, _| {
            tables
                .groups
                .groups
                .values()
                .filter(|group| workflow.is_none_or(|workflow| group.workflow == workflow))
                .filter(|group| member.is_none_or(|member| group.members.contains(&member)))
                .cloned()
                .collect()
        });
        groups.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(groups)
    }

    async fn update_group(&self, group: &WorkflowGroup) -> Result<()> {
        let group = group.clone();
        self.write(move |tables, _| update(tables, &group))
    }

    async fn delete_group(&self, id: &GroupId) -> Result<()> {
        let id = id.clone();
        self.write(move |tables, _| {
            let groups = Arc::make_mut(&mut tables.groups);
            groups.groups.remove(&id).ok_or_else(|| not_found(&id))?;
            groups.files.retain(|_, file| file.group_id != id);
            Ok(())
        })
    }

    async fn insert_file(&self, file: &GroupFile) -> Result<()> {
        let file = file.clone();
        self.write(move |tables, _| {
            let groups = Arc::make_mut(&mut tables.groups);
            if groups.files.contains_key(&file.id)
                || groups.files.values().any(|other| other.key == file.key)
            {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            if !groups.groups.contains_key(&file.group_id) {
                return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
            }
            groups.files.insert(file.id, file.clone());
            Ok(())
        })
    }

    async fn update_file(&self, file: &GroupFile) -> Result<()> {
        let file = file.clone();
        self.write(move |tables, _| {
            let stored = Arc::make_mut(&mut tables.groups)
                .files
                .get_mut(&file.id)
                .ok_or_else(|| DomainError::not_found("file", file.id))?;
            stored.status = file.status;
            stored.size = file.size;
            stored.mime_type = file.mime_type.clone();
            Ok(())
        })
    }

    async fn group_file(&self, group: &GroupId, id: Uuid) -> Result<GroupFile> {
        self.read(|tables, _| {
            tables
                .groups
                .files
                .get(&id)
                .filter(|file| &file.group_id == group)
                .cloned()
        })
        .ok_or_else(|| DomainError::not_found("file", id))
    }

    async fn group_files(
        &self,
        group: &GroupId,
        status: Option<FileStatus>,
    ) -> Result<Vec<GroupFile>> {
        Ok(in_upload_order(self.read(|tables, _| {
            tables
                .groups
                .files
                .values()
                .filter(|file| &file.group_id == group)
                .filter(|file| status.is_none_or(|status| file.status == status))
                .cloned()
                .collect()
        })))
    }

    async fn files_in_status(
        &self,
        status: FileStatus,
        before: DateTime<Utc>,
    ) -> Result<Vec<GroupFile>> {
        Ok(in_upload_order(self.read(|tables, _| {
            tables
                .groups
                .files
                .values()
                .filter(|file| file.status == status && file.created_at < before)
                .cloned()
                .collect()
        })))
    }

    async fn delete_file(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            if tables.groups.files.contains_key(&id) {
                Arc::make_mut(&mut tables.groups).files.remove(&id);
            }
            Ok(())
        })
    }
}
