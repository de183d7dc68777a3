//! Outbound targets as admins configure them (`docs/outbound.md`): checked, their credential
//! sealed with the configured key before it is stored, each change and its audit event in one
//! transaction; what `/api/targets` and `cadre target` do.

use std::collections::BTreeMap;
use std::fmt;

use cadre_domain::outbound::{check_mapping, default_mapping};
use cadre_domain::{
    AuditAction, AuditEvent, Connection, Deprovision, DomainError, Name, Origin, OutboundTarget,
    Store, TargetMode,
};
use cadre_outbound::SealingKey;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The longest credential, in bytes.
pub const MAX_SECRET_LEN: usize = 4096;

/// What an admin sets on a target.
#[derive(Clone)]
pub struct TargetSettings {
    /// Its name, unique among targets.
    pub name: String,
    /// How cadre reaches it.
    pub connection: Connection,
    /// Target attribute ← user field; `None` keeps what it has (a new target, or one whose
    /// kind changes: the kind's defaults).
    pub mapping: Option<BTreeMap<String, String>>,
    /// `None` keeps what it has (a new target: enabled).
    pub mode: Option<TargetMode>,
    /// `None` keeps what it has (a new target: delete).
    pub deprovision: Option<Deprovision>,
    /// The bearer token or password; `None` keeps the one it has, which only a target whose
    /// kind, address and identity stay may do.
    pub secret: Option<String>,
}

impl fmt::Debug for TargetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSettings")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("mapping", &self.mapping)
            .field("mode", &self.mode)
            .field("deprovision", &self.deprovision)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Who changes a target, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Their name.
    pub name: &'a str,
    /// Where the request came from.
    pub origin: Origin,
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

/// `settings` applied to `target`, checked; the credential sealed when one is given, and
/// required when the target's kind, address or identity changes (so that a stored credential
/// never follows a target somewhere else).
fn apply(
    key: Option<&SealingKey>,
    mut target: OutboundTarget,
    settings: TargetSettings,
    now: DateTime<Utc>,
) -> Result<OutboundTarget, DomainError> {
    settings.connection.check()?;
    let moved = target.connection.credential_scope() != settings.connection.credential_scope();
    target.name = Name::parse(&settings.name)?;
    match settings.mapping {
        Some(mapping) => target.mapping = mapping,
        None if target.connection.kind() != settings.connection.kind() => {
            target.mapping = default_mapping(settings.connection.kind());
        }
        None => {}
    }
    check_mapping(&target.mapping)?;
    target.connection = settings.connection;
    target.mode = settings.mode.unwrap_or(target.mode);
    target.deprovision = settings.deprovision.unwrap_or(target.deprovision);
    match settings.secret {
        Some(secret) => target.sealed_secret = seal(key, target.id, &secret)?,
        None if moved || target.sealed_secret.is_empty() => {
            return Err(DomainError::invalid(
                "secret",
                "a new target, or one whose kind, address or identity changes, needs its \
                 credential",
            ));
        }
        None => {}
    }
    target.updated_at = now;
    Ok(target)
}

/// Stores a new target; audited as `target_configured` (never the secret).
pub async fn configure_target(
    store: &dyn Store,
    key: Option<&SealingKey>,
    settings: TargetSettings,
    actor: Actor<'_>,
    now: DateTime<Utc>,
) -> Result<OutboundTarget, DomainError> {
    let blank = OutboundTarget {
        id: Uuid::now_v7(),
        name: Name::parse(&settings.name)?,
        mapping: default_mapping(settings.connection.kind()),
        connection: settings.connection.clone(),
        mode: TargetMode::Enabled,
        deprovision: Deprovision::Delete,
        sealed_secret: Vec::new(),
        created_by: actor.name.to_owned(),
        created_at: now,
        updated_at: now,
    };
    let target = apply(key, blank, settings, now)?;
    let txn = store.begin().await?;
    txn.create_target(&target).await?;
    txn.record_audit(&event(AuditAction::TargetConfigured, &target, actor, now))
        .await?;
    txn.commit().await?;
    Ok(target)
}

/// Replaces target `id`'s settings with `settings` (what they leave out stays); audited as
/// `target_changed`.
pub async fn change_target(
    store: &dyn Store,
    key: Option<&SealingKey>,
    id: Uuid,
    settings: TargetSettings,
    actor: Actor<'_>,
    now: DateTime<Utc>,
) -> Result<OutboundTarget, DomainError> {
    let txn = store.begin().await?;
    let target = apply(key, txn.target(id).await?, settings, now)?;
    txn.save_target(&target).await?;
    txn.record_audit(&event(AuditAction::TargetChanged, &target, actor, now))
        .await?;
    txn.commit().await?;
    Ok(target)
}

/// Removes target `id`; audited as `target_removed`.
pub async fn remove_target(
    store: &dyn Store,
    id: Uuid,
    actor: Actor<'_>,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let txn = store.begin().await?;
    let target = txn.target(id).await?;
    txn.delete_target(id).await?;
    txn.record_audit(&event(AuditAction::TargetRemoved, &target, actor, now))
        .await?;
    txn.commit().await
}

/// The audit event of `action` on `target`: its name, kind, address and mode, never its
/// credential.
fn event(
    action: AuditAction,
    target: &OutboundTarget,
    actor: Actor<'_>,
    now: DateTime<Utc>,
) -> AuditEvent {
    let (kind, address, _) = target.connection.credential_scope();
    AuditEvent::new(Uuid::now_v7(), now, action, actor.name)
        .origin(&actor.origin)
        .on(target.id)
        .detail(format!(
            "{:?}, {kind} at {address}, {}",
            target.name.as_str(),
            target.mode.as_str()
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_their_secret() {
        let settings = TargetSettings {
            name: "App".to_owned(),
            connection: Connection::Scim {
                base_url: "https://app.example.org".to_owned(),
                username: None,
                bulk: false,
            },
            mapping: None,
            mode: None,
            deprovision: None,
            secret: Some("bearer-token".to_owned()),
        };
        let shown = format!("{settings:?}");
        assert!(!shown.contains("bearer-token"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
