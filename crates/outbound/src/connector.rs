//! What cadre asks of a target, whatever its kind: find, create, replace, delete and list users
//! and groups. [`crate::scim`] speaks it to a SCIM 2.0 service provider, [`crate::ldap`] to an
//! LDAP directory; [`connect`] picks one for a configured target.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use cadre_domain::outbound::{Connection, OutboundTarget};
use serde::Serialize;
use thiserror::Error;

/// How long one request to a target may take, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A user as a target gets it: cadre's user fields under the target's attribute names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserEntry {
    /// The value of the attribute that takes `user_id`: what the target finds the user by.
    pub external_id: String,
    /// Target attribute → value, per the target's mapping; a field without a value is absent.
    /// The attribute that takes `user_id` is among them.
    pub attributes: BTreeMap<String, String>,
    /// Whether the user may use the application (SCIM `active`). An LDAP directory has no such
    /// flag: there an inactive user is in no group.
    pub active: bool,
}

/// A group as a target gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    /// cadre's external id of the group (its `user_group_id`): what the target finds it by.
    pub external_id: String,
    /// Its name (SCIM `displayName`, LDAP `cn`).
    pub name: String,
    /// Its members, by their remote ids on this target (a SCIM id, an LDAP DN), sorted.
    pub members: Vec<String>,
}

/// An object as it is on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote<T> {
    /// The target's id of it (a SCIM `id`, an LDAP DN).
    pub id: String,
    /// What it holds, read back as cadre would have written it.
    pub entry: T,
}

/// Why a target did not do what cadre asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The target could not be reached or did not answer in time, or answered that it is
    /// unavailable (a 5xx, LDAP `busy`/`unavailable`): worth trying again later.
    #[error("the target cannot be reached: {0}")]
    Unavailable(String),
    /// The target refused the request (bad credentials, a value it does not take, a conflict):
    /// trying again will not help until something changes.
    #[error("the target refused: {0}")]
    Refused(String),
    /// The target answered something cadre cannot read.
    #[error("the target's answer is not what cadre expects: {0}")]
    Protocol(String),
}

/// Whatever kind of target it is.
#[async_trait]
pub trait Connector: Send + Sync {
    /// `user` as this target keeps it and [`Connector::list_users`] reads it back: with the
    /// values the target is given for attributes it requires and cadre has no value for. What
    /// cadre compares the target's objects with, and fingerprints.
    fn written(&self, user: &UserEntry) -> UserEntry {
        user.clone()
    }
    /// The remote id of the user whose external id is `external_id`, if the target has one.
    async fn find_user(&self, external_id: &str) -> Result<Option<String>, ConnectorError>;
    /// Creates `user`; its remote id.
    async fn create_user(&self, user: &UserEntry) -> Result<String, ConnectorError>;
    /// Replaces the mapped attributes of the user `id` with `user`'s (an attribute `user`
    /// lacks is removed); its remote id, which may have changed.
    async fn replace_user(&self, id: &str, user: &UserEntry) -> Result<String, ConnectorError>;
    /// Deletes the user `id`; one already gone is no error.
    async fn delete_user(&self, id: &str) -> Result<(), ConnectorError>;
    /// Creates each of `users` (none of which the target has), in as few requests as the
    /// target allows (a SCIM target's `/Bulk`); each one's remote id or why it failed, in order.
    /// A failure of the whole request (the target unreachable) is the outer error.
    async fn create_users(
        &self,
        users: &[UserEntry],
    ) -> Result<Vec<Result<String, ConnectorError>>, ConnectorError> {
        create_each(self, users).await
    }
    /// Every user on the target that has an external id, as far as cadre's mapping reads.
    async fn list_users(&self) -> Result<Vec<Remote<UserEntry>>, ConnectorError>;

    /// The remote id of the group `group` (found by its external id), if the target has it.
    async fn find_group(&self, group: &GroupEntry) -> Result<Option<String>, ConnectorError>;
    /// Creates `group`; its remote id.
    async fn create_group(&self, group: &GroupEntry) -> Result<String, ConnectorError>;
    /// Replaces the name and members of the group `id` with `group`'s; its remote id, which
    /// may have changed (an LDAP group renamed).
    async fn replace_group(&self, id: &str, group: &GroupEntry) -> Result<String, ConnectorError>;
    /// Deletes the group `id`; one already gone is no error.
    async fn delete_group(&self, id: &str) -> Result<(), ConnectorError>;
    /// Every group on the target that has an external id.
    async fn list_groups(&self) -> Result<Vec<Remote<GroupEntry>>, ConnectorError>;
}

/// Creates each of `users` with its own request, as [`Connector::create_users`] does by
/// default; a target that cannot be reached ends it.
pub async fn create_each<C: Connector + ?Sized>(
    connector: &C,
    users: &[UserEntry],
) -> Result<Vec<Result<String, ConnectorError>>, ConnectorError> {
    let mut created = Vec::with_capacity(users.len());
    for user in users {
        match connector.create_user(user).await {
            Err(error @ ConnectorError::Unavailable(_)) => return Err(error),
            outcome => created.push(outcome),
        }
    }
    Ok(created)
}

/// A connector for `target`, authenticating with `secret` (its opened credential).
pub fn connect(
    target: &OutboundTarget,
    secret: &str,
) -> Result<Box<dyn Connector>, ConnectorError> {
    let id_attribute = target
        .mapping
        .iter()
        .find(|(_, field)| field.as_str() == "user_id")
        .map(|(attribute, _)| attribute.clone())
        .ok_or_else(|| ConnectorError::Refused("no attribute takes user_id".to_owned()))?;
    Ok(match &target.connection {
        Connection::Scim {
            base_url,
            username,
            bulk,
        } => Box::new(crate::scim::ScimConnector::new(
            crate::scim::ScimSettings {
                base_url: base_url.clone(),
                username: username.clone(),
                secret: secret.to_owned(),
                bulk: *bulk,
                id_attribute,
                attributes: target.mapping.keys().cloned().collect(),
            },
        )?),
        Connection::Ldap {
            url,
            start_tls,
            bind_dn,
            people_dn,
            groups_dn,
            user_class,
            group_class,
        } => Box::new(crate::ldap::LdapConnector::new(crate::ldap::LdapSettings {
            url: url.clone(),
            start_tls: *start_tls,
            bind_dn: bind_dn.clone(),
            password: secret.to_owned(),
            people_dn: people_dn.clone(),
            groups_dn: groups_dn.clone(),
            user_class: user_class.clone(),
            group_class: group_class.clone(),
            id_attribute,
            attributes: target.mapping.keys().cloned().collect(),
        })),
    })
}
