//! Changing a password with the current one, and resetting it through a mailed link.

use std::net::IpAddr;

use cadre_domain::audit::ANONYMOUS;
use cadre_domain::{AuditAction, DomainError, PasswordReset};
use cadre_registration::Verified;
use cadre_registration::delivery::mail_message;
use cadre_registration::mail::TemplateName;
use cadre_registration::tokens::{new_secret, parse, secret_matches};
use serde_json::json;
use uuid::Uuid;

use crate::{AccountError, Accounts, SessionUser};

impl Accounts {
    /// Replaces the password of the signed-in `caller`, who proves the current one, and ends
    /// the user's other sessions. A wrong current password counts as a failed sign-in. Audited
    /// as `password_changed` (a refusal as its failure) with the client's address `addr`.
    pub async fn change_password(
        &self,
        caller: &SessionUser,
        current: &str,
        new: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let user_id = caller.user.user_id;
        let event = || {
            self.event(AuditAction::PasswordChanged, &caller.user.user_name, addr)
                .by_user(Some(user_id))
                .on(user_id)
        };
        if let Err(error) = self.check_new_password(new, &caller.user) {
            self.audit(None, event().failed(error.to_string())).await?;
            return Err(error);
        }
        self.reauthenticate(caller, current, AuditAction::PasswordChanged, addr)
            .await?;
        let now = self.now();
        let hash = self.passwords.hash(new).await?;
        let txn = self.store.begin().await?;
        txn.store_credentials(user_id, &hash, now).await?;
        let ended = txn
            .delete_sessions_of(user_id, Some(caller.session.id))
            .await?;
        self.audit(
            Some(txn.as_ref()),
            event().detail(format!("other sessions ended: {ended}")),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(%user_id, other_sessions_ended = ended, "password changed");
        Ok(())
    }

    /// Checks that the signed-in `caller` knows the current password, as a change of what signs
    /// them in needs (ASVS 5.0 V7.5.1). Throttled like a sign-in: a wrong password counts as a
    /// failed one, and a locked account is refused alike. A refusal is audited as a failed
    /// `action` with the client's address `addr`.
    pub async fn reauthenticate(
        &self,
        caller: &SessionUser,
        current: &str,
        action: AuditAction,
        addr: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let user_id = caller.user.user_id;
        let allowed = self
            .store
            .reserve_login_attempt(user_id, self.now(), self.settings.max_failures.min(100))
            .await?;
        let verified = match (allowed, self.store.credentials(user_id).await?) {
            (Some(_), Some(hash)) => self.passwords.verify(current, &hash).await?,
            _ => {
                self.passwords.verify_decoy(current).await?;
                Verified::Mismatch
            }
        };
        if verified == Verified::Mismatch {
            let event = self
                .event(action, &caller.user.user_name, addr)
                .by_user(Some(user_id))
                .on(user_id)
                .failed("the current password is wrong");
            self.audit(None, event).await?;
            return Err(AccountError::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        self.store.clear_login_failures(user_id).await?;
        Ok(())
    }

    /// Mails a reset link to the active user with the address `email`, replacing any earlier
    /// link; does nothing (and says nothing) for an address no active user has. Audited as
    /// `password_reset_requested` from `addr`: on the user, or (a failure) on the address.
    pub async fn request_reset(
        &self,
        email: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let event = || self.event(AuditAction::PasswordResetRequested, ANONYMOUS, addr);
        if !email.contains('@') {
            let error = AccountError::invalid("email", "is not an email address");
            self.audit(None, event().on(email.trim()).failed(error.to_string()))
                .await?;
            return Err(error);
        }
        let Some(user) = self.active_user_by_login(email.trim()).await? else {
            self.audit(
                None,
                event()
                    .on(email.trim())
                    .failed("no active user has this address"),
            )
            .await?;
            return Ok(());
        };
        let now = self.now();
        let (secret, secret_hash) = new_secret()?;
        let reset = PasswordReset {
            id: Uuid::now_v7(),
            secret_hash,
            user_id: user.user_id,
            created_at: now,
            expires_at: now + Self::ttl(self.settings.reset_ttl),
        };
        let url = format!(
            "{}/password-reset/{}.{secret}",
            self.registration.base_url.trim_end_matches('/'),
            reset.id.simple()
        );
        let mail = self.templates.render(
            TemplateName::PasswordReset,
            vec![user.email.clone()],
            &json!({
                "user_name": user.user_name,
                "reset_url": url,
                "valid_minutes": self.settings.reset_ttl.as_secs().div_ceil(60),
                "site_name": self.registration.site_name,
            }),
        )?;
        let txn = self.store.begin().await?;
        txn.create_password_reset(&reset).await?;
        txn.enqueue(&mail_message(&mail, now)).await?;
        self.audit(
            Some(txn.as_ref()),
            event().on(user.user_id).detail("a link was mailed"),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(user_id = %user.user_id, "password reset link mailed");
        Ok(())
    }

    /// Sets a new password through the reset link `link` (`<id>.<secret>`): the link is used up,
    /// sign-in failures are forgotten and every session of the user ends. Audited as
    /// `password_reset` from `addr`, refusals too (on the link's id, never its secret).
    pub async fn reset_password(
        &self,
        link: &str,
        new: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let event = || self.event(AuditAction::PasswordReset, ANONYMOUS, addr);
        match self.try_reset_password(link, new, addr).await {
            Ok(()) => Ok(()),
            Err(refusal) => {
                let (event, error) = match refusal {
                    Refusal::Link(error) => (event().failed(error.to_string()), error),
                    Refusal::Reset(reset, error) => (
                        event()
                            .by_user(Some(reset.user_id))
                            .on(reset.user_id)
                            .failed(error.to_string()),
                        error,
                    ),
                    Refusal::Other(error) => return Err(error),
                };
                self.audit(None, event).await?;
                Err(error)
            }
        }
    }

    async fn try_reset_password(
        &self,
        link: &str,
        new: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let (id, secret) = parse(link).ok_or(Refusal::Link(AccountError::MalformedLink))?;
        let reset = match self.store.password_reset(id).await {
            Ok(reset) => reset,
            Err(DomainError::NotFound { .. }) => {
                return Err(Refusal::Link(AccountError::UnknownLink));
            }
            Err(error) => return Err(Refusal::Other(error.into())),
        };
        if !secret_matches(&reset.secret_hash, secret) {
            return Err(Refusal::Link(AccountError::UnknownLink));
        }
        let now = self.now();
        if now >= reset.expires_at {
            self.store.use_password_reset(id).await.ok();
            return Err(Refusal::Reset(reset, AccountError::ExpiredLink));
        }
        let Some(user) = self
            .active_user(reset.user_id)
            .await
            .map_err(Refusal::Other)?
        else {
            return Err(Refusal::Reset(reset, AccountError::UnknownLink));
        };
        if let Err(error) = self.check_new_password(new, &user) {
            return Err(Refusal::Reset(reset, error));
        }
        let hash = self.passwords.hash(new).await.map_err(Refusal::other)?;
        let actor = user.user_name;
        let txn = self.store.begin().await.map_err(Refusal::other)?;
        match txn.use_password_reset(id).await {
            Ok(()) => {}
            Err(DomainError::NotFound { .. }) => {
                return Err(Refusal::Reset(reset, AccountError::UnknownLink));
            }
            Err(error) => return Err(Refusal::other(error)),
        }
        let user_id = reset.user_id;
        let stored: Result<u64, DomainError> = async {
            txn.store_credentials(user_id, &hash, now).await?;
            txn.clear_login_failures(user_id).await?;
            let ended = txn.delete_sessions_of(user_id, None).await?;
            let event = self
                .event(AuditAction::PasswordReset, &actor, addr)
                .by_user(Some(user_id))
                .on(user_id)
                .detail(format!("sessions ended: {ended}"));
            txn.record_audit(&event).await?;
            Ok(ended)
        }
        .await;
        let ended = stored.map_err(Refusal::other)?;
        txn.commit().await.map_err(Refusal::other)?;
        tracing::info!(%user_id, sessions_ended = ended, "password reset");
        Ok(())
    }
}

/// Why a reset was refused, and what the audit log can say about it.
enum Refusal {
    /// The link itself: malformed, unknown.
    Link(AccountError),
    /// A known link that could not be used (expired, used meanwhile, a bad new password).
    Reset(PasswordReset, AccountError),
    /// Something failed that is no refusal (storage, hashing): not audited.
    Other(AccountError),
}

impl Refusal {
    fn other(error: impl Into<AccountError>) -> Self {
        Refusal::Other(error.into())
    }
}
