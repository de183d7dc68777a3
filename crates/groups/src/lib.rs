//! Workflow groups: teams of users attached to a workflow, with their own uploaded files.
//!
//! [`WorkflowGroups`] offers flowserv's `WorkflowGroupManager` operations (create, get, list,
//! update, delete; upload, list, read and delete files), with the authorisation its service
//! layer adds and the hardening cadre wants:
//!
//! - names are unique per workflow in the schema, after normalisation, also on rename;
//! - the owner is always a member and cannot be removed; members are existing active users;
//! - only members (and admins) act on a group; only the owner (or an admin) deletes it;
//! - file names are validated and never become storage paths: content lives under an opaque key
//!   on a [`FileVolume`], with a size limit;
//! - a file row records whether its content is complete, and content is written before a row
//!   says so and removed before its row goes, so a failure at any point leaves nothing visible
//!   without content and no content without a row; [`WorkflowGroups::recover`] finishes what an
//!   interrupted upload or delete left behind.
//!
//! Here: the types and the group operations; `files` holds the file operations and
//! `upload_watch` the size limit and content sniff of an upload stream.

mod files;
mod mime;
mod upload_watch;
mod volume;

use std::collections::BTreeSet;
use std::sync::Arc;

use cadre_domain::{DomainError, FileVolume, GroupId, GroupName, Store, WorkflowGroup};
use cadre_engine::{Engine, EngineError, FormError};
use cadre_products::models::is_active_user;
use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;
use thiserror::Error;
use uuid::Uuid;

pub use volume::LocalVolume;

/// The default largest upload: 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Why a workflow group operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Not found, conflict, invalid argument or forbidden, as the domain says.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The uploaded content is larger than the limit.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The uploaded content could not be read to its end (the client went away, a malformed
    /// body).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The file volume failed; the message is for operators' logs.
    #[error("the file volume failed: {0}")]
    Volume(String),
    /// The file volume has no room left for the upload (or the quota is spent).
    #[error("the file volume is full")]
    VolumeFull,
}

impl From<EngineError> for GroupError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Domain(error) | EngineError::Form(FormError::Domain(error)) => {
                Self::Domain(error)
            }
            EngineError::UnknownWorkflow(name) => Self::Domain(DomainError::NotFound {
                kind: "workflow",
                id: name,
            }),
            other => Self::Domain(DomainError::invalid("workflow", other.to_string())),
        }
    }
}

/// A result whose error is a [`GroupError`].
pub type Result<T, E = GroupError> = std::result::Result<T, E>;

/// Who is acting: the User subscription a caller acts for, and whether the caller is an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The User subscription the caller acts for, if any.
    pub user: Option<Uuid>,
    /// Whether the caller has the admin role (acts on every group).
    pub admin: bool,
}

impl Actor {
    /// An admin acting for no user (an operator at the CLI).
    pub fn operator() -> Self {
        Self {
            user: None,
            admin: true,
        }
    }

    /// A non-admin acting for the User subscription `user`.
    pub fn user(user: Uuid) -> Self {
        Self {
            user: Some(user),
            admin: false,
        }
    }

    fn is_member(&self, group: &WorkflowGroup) -> bool {
        self.user.is_some_and(|user| group.members.contains(&user))
    }

    /// Refuses anyone but members and admins.
    fn require_member(&self, group: &WorkflowGroup) -> Result<()> {
        if self.admin || self.is_member(group) {
            Ok(())
        } else {
            Err(forbidden("only members of the group may do this"))
        }
    }
}

fn forbidden(message: &str) -> GroupError {
    DomainError::Forbidden(message.to_owned()).into()
}

/// A group to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewGroup {
    /// The workflow the group belongs to.
    pub workflow: String,
    /// The group's name.
    pub name: String,
    /// The identifier to use instead of a generated one.
    pub identifier: Option<String>,
    /// The owner: the caller's user unless an admin names another.
    pub owner: Option<Uuid>,
    /// Members besides the owner; duplicates collapse.
    pub members: Vec<Uuid>,
    /// Group-specific parameters (a form schema, a JSON object); by default the first page of
    /// the workflow's initial form.
    pub parameters: Option<Value>,
    /// Engine settings for the group's runs (a JSON object).
    pub engine_config: Option<Value>,
}

/// Changes to a group; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChanges {
    /// A new name.
    pub name: Option<String>,
    /// The exact new member set; it must include the owner.
    pub members: Option<Vec<Uuid>>,
}

/// What [`WorkflowGroups::recover`] finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Interrupted uploads whose partial content and row were removed.
    pub abandoned_uploads: usize,
    /// Interrupted deletions that were completed.
    pub completed_deletions: usize,
}

/// Workflow groups and their files over an engine (for its store, workflows and clock) and a
/// file volume.
#[derive(Clone)]
pub struct WorkflowGroups {
    engine: Engine,
    volume: Arc<dyn FileVolume>,
    max_file_size: u64,
}

impl WorkflowGroups {
    /// Groups over `engine`'s store and workflows, with file content on `volume` and uploads up
    /// to `max_file_size` bytes.
    pub fn new(engine: Engine, volume: Arc<dyn FileVolume>, max_file_size: u64) -> Self {
        Self {
            engine,
            volume,
            max_file_size,
        }
    }

    fn store(&self) -> &dyn Store {
        self.engine.store().as_ref()
    }

    /// The current time at the precision both databases store (microseconds), so that what a
    /// call returns equals what a later read gives.
    fn now(&self) -> DateTime<Utc> {
        self.engine.clock().now().trunc_subsecs(6)
    }

    /// Refuses any id that is not an active User subscription, naming it.
    async fn require_active_users(&self, users: &BTreeSet<Uuid>) -> Result<()> {
        for user in users {
            if !is_active_user(self.store(), *user).await? {
                return Err(DomainError::invalid(
                    "members",
                    format!("unknown user {user}: no active User subscription has this id"),
                )
                .into());
            }
        }
        Ok(())
    }

    /// Creates a group. Checks, in order: the identifier, the name, the workflow, the owner
    /// (the caller's user; an admin may name another), then that every member is an active
    /// user. A name the workflow already has (after normalisation) or a taken identifier is a
    /// conflict.
    pub async fn create(&self, actor: &Actor, new: NewGroup) -> Result<WorkflowGroup> {
        let id = match new.identifier.as_deref() {
            Some(identifier) => GroupId::parse(identifier)?,
            None => GroupId::from_uuid(Uuid::new_v4()),
        };
        let name = GroupName::parse(&new.name)?;
        let workflow = self
            .engine
            .registry()
            .get(&new.workflow)
            .ok_or_else(|| EngineError::UnknownWorkflow(new.workflow.clone()))?;
        let owner = match (new.owner, actor.user) {
            (Some(owner), _) if actor.admin => owner,
            (Some(owner), Some(user)) if owner == user => owner,
            (Some(_), _) => {
                return Err(forbidden(
                    "only an admin may create a group for another user",
                ));
            }
            (None, Some(user)) => user,
            (None, None) => {
                return Err(DomainError::invalid(
                    "owner",
                    "the caller acts for no user: name the owner (admins only)",
                )
                .into());
            }
        };
        let mut members: BTreeSet<Uuid> = new.members.into_iter().collect();
        members.insert(owner);
        self.require_active_users(&members).await?;
        let parameters = match new.parameters {
            Some(parameters) => json_object("parameters", parameters)?,
            None => self.engine.first_page(workflow).await?,
        };
        let engine_config = new
            .engine_config
            .map(|config| json_object("engine_config", config))
            .transpose()?;
        let group = WorkflowGroup {
            id,
            workflow: workflow.name.clone(),
            name,
            owner,
            members,
            parameters,
            workflow_spec: workflow.spec(),
            engine_config,
            created_at: self.now(),
        };
        self.store().create_group(&group).await?;
        tracing::info!(group = %group.id, workflow = %group.workflow, "workflow group created");
        Ok(group)
    }

    /// One group, to its members and admins.
    pub async fn get(&self, actor: &Actor, id: &str) -> Result<WorkflowGroup> {
        let group = self.load(id).await?;
        actor.require_member(&group)?;
        Ok(group)
    }

    async fn load(&self, id: &str) -> Result<WorkflowGroup> {
        // A malformed id cannot name a group: it is as unknown as any other.
        let unknown = || DomainError::NotFound {
            kind: "workflow group",
            id: id.to_owned(),
        };
        let id = GroupId::parse(id).map_err(|_| unknown())?;
        Ok(self.store().group(&id).await?)
    }

    /// Groups in creation order, of `workflow` and with `member` if given. An unknown workflow,
    /// or a member that is not an active user, is an error. A non-admin sees only the groups
    /// they belong to, and may not ask for another user's.
    pub async fn list(
        &self,
        actor: &Actor,
        workflow: Option<&str>,
        member: Option<Uuid>,
    ) -> Result<Vec<WorkflowGroup>> {
        if let Some(workflow) = workflow
            && self.engine.registry().get(workflow).is_none()
        {
            return Err(EngineError::UnknownWorkflow(workflow.to_owned()).into());
        }
        let member = if actor.admin {
            member
        } else {
            match (member, actor.user) {
                (Some(member), Some(user)) if member != user => {
                    return Err(forbidden("only admins may list another user's groups"));
                }
                (_, Some(user)) => Some(user),
                (_, None) => {
                    return Err(forbidden(
                        "the caller acts for no user, so belongs to no group",
                    ));
                }
            }
        };
        if let Some(member) = member
            && !is_active_user(self.store(), member).await?
        {
            return Err(DomainError::invalid(
                "member",
                format!("unknown user {member}: no active User subscription has this id"),
            )
            .into());
        }
        Ok(self.store().list_groups(workflow, member).await?)
    }

    /// Renames a group and/or replaces its member set exactly (duplicates collapse; the owner
    /// must stay; every member must be an active user). No changes return the group as it is.
    pub async fn update(
        &self,
        actor: &Actor,
        id: &str,
        changes: GroupChanges,
    ) -> Result<WorkflowGroup> {
        let mut group = self.get(actor, id).await?;
        if changes == GroupChanges::default() {
            return Ok(group);
        }
        if let Some(name) = changes.name {
            group.name = GroupName::parse(&name)?;
        }
        if let Some(members) = changes.members {
            let members: BTreeSet<Uuid> = members.into_iter().collect();
            if !members.contains(&group.owner) {
                return Err(DomainError::invalid(
                    "members",
                    "the owner cannot be removed from the group",
                )
                .into());
            }
            self.require_active_users(&members).await?;
            group.members = members;
        }
        self.store().update_group(&group).await?;
        Ok(group)
    }

    /// Deletes a group with its members and files; only its owner or an admin may.
    ///
    /// Its files are marked for deletion first (no longer listed), their content removed, then
    /// the group's rows. If the volume fails, the group stays and the call can be repeated.
    pub async fn delete(&self, actor: &Actor, id: &str) -> Result<()> {
        let group = self.get(actor, id).await?;
        if !actor.admin && actor.user != Some(group.owner) {
            return Err(forbidden("only the owner or an admin may delete a group"));
        }
        let mut files = self.store().group_files(&group.id, None).await?;
        for file in &mut files {
            self.mark_deleting(file).await?;
        }
        for file in files {
            self.remove_file(file).await?;
        }
        self.store().delete_group(&group.id).await?;
        tracing::info!(group = %group.id, "workflow group deleted");
        Ok(())
    }
}

/// Refuses anything but a JSON object for `field`, and NUL characters anywhere in it (which
/// PostgreSQL's `jsonb` cannot store).
fn json_object(field: &str, value: Value) -> Result<Value> {
    fn has_nul(value: &Value) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(fields) => fields
                .iter()
                .any(|(key, value)| key.contains('\0') || has_nul(value)),
            _ => false,
        }
    }
    if !value.is_object() {
        return Err(DomainError::invalid(field, "must be a JSON object").into());
    }
    if has_nul(&value) {
        return Err(DomainError::invalid(field, "must not contain NUL characters").into());
    }
    Ok(value)
}
