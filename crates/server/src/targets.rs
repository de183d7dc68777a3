//! Outbound targets as admins configure them (`docs/outbound.md`): checked, their credential
//! sealed with the configured key before it is stored, audited; what `/api/targets` and
//! `cadre target` do.

use std::collections::BTreeMap;

use cadre_domain::outbound::{check_mapping, default_mapping};
use cadre_domain::{
    AuditAction, AuditEvent, Connection, Deprovision, DomainError, Name, OutboundTarget,
    Repositories, TargetMode,
};
use cadre_outbound::SealingKey;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The longest credential, in bytes.
pub const MAX_SECRET_LEN: usize = 4096;

/// What an admin sets on a target.
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// Its name, unique among targets.
    pub name: String,
    /// How cadre reaches it.
    pub connection: Connection,
    /// Target attribute ← user field; `None` keeps what it has (a new target: the kind's
    /// defaults).
    pub mapping: Option<BTreeMap<String, String>>,
    /// `None` keeps what it has (a new target: enabled).
    pub mode: Option<TargetMode>,
    /// `None` keeps what it has (a new target: delete).
    pub deprovision: Option<Deprovision>,
    /// The bearer token or password; `None` keeps the one it has (a new target needs one).
    pub secret: Option<String>,
}

/// Why a target cannot be configured without a key.
fn no_key() -> DomainError {
    DomainError::Conflict(
        "targets need `outbound_key` in the configuration (64 hexadecimal digits, as `openssl \
         rand -hex 32` prints): their credentials are kept sealed with it"
            .to_owned(),
    )
}

/// `secret` sealed for target `id`, once checked.
fn seal(key: Option<&SealingKey>, id: Uuid, secret: &str) -> Result<Vec<u8>, DomainError> {
    let key = key.ok_or_else(no_key)?;
    if secret.is_empty() || secret.len() > MAX_SECRET_LEN {
        return Err(DomainError::invalid(
            "secret",
            format!("a credential has 1 to {MAX_SECRET_LEN} bytes"),
        ));
    }
    key.seal(id, secret.as_bytes())
        .map_err(|error| DomainError::Internal(error.to_string()))
}

/// `settings` applied to `target`, checked.
fn apply(
    key: Option<&SealingKey>,
    mut target: OutboundTarget,
    settings: TargetSettings,
) -> Result<OutboundTarget, DomainError> {
    settings.connection.check()?;
    target.name = Name::parse(&settings.name)?;
    if let Some(mapping) = settings.mapping {
        target.mapping = mapping;
    } else if target.connection.kind() != settings.connection.kind() {
        target.mapping = default_mapping(settings.connection.kind());
    }
    check_mapping(&target.mapping)?;
    target.connection = settings.connection;
    target.mode = settings.mode.unwrap_or(target.mode);
    target.deprovision = settings.deprovision.unwrap_or(target.deprovision);
    if let Some(secret) = settings.secret {
        target.sealed_secret = seal(key, target.id, &secret)?;
    }
    Ok(target)
}

/// Stores a new target configured by `actor`; audited as `target_configured` (never the
/// secret).
pub async fn configure_target(
    repositories: &dyn Repositories,
    key: Option<&SealingKey>,
    settings: TargetSettings,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<OutboundTarget, DomainError> {
    let id = Uuid::now_v7();
    let secret = settings
        .secret
        .as_deref()
        .ok_or_else(|| DomainError::invalid("secret", "a new target needs its credential"))?;
    let blank = OutboundTarget {
        id,
        name: Name::parse(&settings.name)?,
        mapping: default_mapping(settings.connection.kind()),
        connection: settings.connection.clone(),
        mode: TargetMode::Enabled,
        deprovision: Deprovision::Delete,
        sealed_secret: seal(key, id, secret)?,
        created_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let target = apply(key, blank, settings)?;
    repositories.create_target(&target).await?;
    audit(
        repositories,
        AuditAction::TargetConfigured,
        &target,
        actor,
        now,
    )
    .await?;
    Ok(target)
}

/// Replaces target `id`'s settings with `settings` (what they leave out stays); audited as
/// `target_changed`.
pub async fn change_target(
    repositories: &dyn Repositories,
    key: Option<&SealingKey>,
    id: Uuid,
    settings: TargetSettings,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<OutboundTarget, DomainError> {
    let mut target = apply(key, repositories.target(id).await?, settings)?;
    target.updated_at = now;
    repositories.save_target(&target).await?;
    audit(
        repositories,
        AuditAction::TargetChanged,
        &target,
        actor,
        now,
    )
    .await?;
    Ok(target)
}

/// Removes target `id`; audited as `target_removed`.
pub async fn remove_target(
    repositories: &dyn Repositories,
    id: Uuid,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let target = repositories.target(id).await?;
    repositories.delete_target(id).await?;
    audit(
        repositories,
        AuditAction::TargetRemoved,
        &target,
        actor,
        now,
    )
    .await
}

async fn audit(
    repositories: &dyn Repositories,
    action: AuditAction,
    target: &OutboundTarget,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    repositories
        .record_audit(
            &AuditEvent::new(Uuid::now_v7(), now, action, actor)
                .on(target.id)
                .detail(format!(
                    "{:?}, {} at {}, {}",
                    target.name.as_str(),
                    target.connection.kind(),
                    address(&target.connection),
                    target.mode.as_str()
                )),
        )
        .await
}

/// Where a connection goes.
fn address(connection: &Connection) -> &str {
    match connection {
        Connection::Scim { base_url, .. } => base_url,
        Connection::Ldap { url, .. } => url,
    }
}
