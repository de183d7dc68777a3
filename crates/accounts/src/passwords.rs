//! Changing a password with the current one, and resetting it through a mailed link.

use cadre_domain::{DomainError, PasswordReset};
use cadre_registration::Verified;
use cadre_registration::delivery::mail_message;
use cadre_registration::mail::TemplateName;
use cadre_registration::tokens::{new_secret, parse, secret_matches};
use serde_json::json;
use uuid::Uuid;

use crate::{AccountError, Accounts, SessionUser};

impl Accounts {
    /// Replaces the password of the signed-in `caller`, who proves the current one, and ends
    /// the user's other sessions. A wrong current password counts as a failed sign-in.
    pub async fn change_password(
        &self,
        caller: &SessionUser,
        current: &str,
        new: &str,
    ) -> Result<(), AccountError> {
        self.check_new_password(new)?;
        let user_id = caller.user.user_id;
        let now = self.now();
        let allowed = self
            .store
            .reserve_login_attempt(user_id, now, self.settings.max_failures.min(100))
            .await?;
        let verified = match (allowed, self.store.credentials(user_id).await?) {
            (Some(_), Some(hash)) => self.passwords.verify(current, &hash).await?,
            _ => {
                self.passwords.verify_decoy(current).await?;
                Verified::Mismatch
            }
        };
        if verified == Verified::Mismatch {
            return Err(AccountError::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        let hash = self.passwords.hash(new).await?;
        let txn = self.store.begin().await?;
        txn.store_credentials(user_id, &hash, now).await?;
        txn.clear_login_failures(user_id).await?;
        let ended = txn
            .delete_sessions_of(user_id, Some(caller.session.id))
            .await?;
        txn.commit().await?;
        tracing::info!(%user_id, other_sessions_ended = ended, "password changed");
        Ok(())
    }

    /// Mails a reset link to the active user with the address `email`, replacing any earlier
    /// link; does nothing (and says nothing) for an address no active user has.
    pub async fn request_reset(&self, email: &str) -> Result<(), AccountError> {
        if !email.contains('@') {
            return Err(AccountError::invalid("email", "is not an email address"));
        }
        let Some(user) = self.active_user_by_login(email.trim()).await? else {
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
        txn.commit().await?;
        tracing::info!(user_id = %user.user_id, "password reset link mailed");
        Ok(())
    }

    /// Sets a new password through the reset link `link` (`<id>.<secret>`): the link is used up,
    /// sign-in failures are forgotten and every session of the user ends.
    pub async fn reset_password(&self, link: &str, new: &str) -> Result<(), AccountError> {
        let (id, secret) = parse(link).ok_or(AccountError::MalformedLink)?;
        let reset = match self.store.password_reset(id).await {
            Ok(reset) => reset,
            Err(DomainError::NotFound { .. }) => return Err(AccountError::UnknownLink),
            Err(error) => return Err(error.into()),
        };
        if !secret_matches(&reset.secret_hash, secret) {
            return Err(AccountError::UnknownLink);
        }
        let now = self.now();
        if now >= reset.expires_at {
            self.store.use_password_reset(id).await.ok();
            return Err(AccountError::ExpiredLink);
        }
        self.check_new_password(new)?;
        let hash = self.passwords.hash(new).await?;
        let txn = self.store.begin().await?;
        match txn.use_password_reset(id).await {
            Ok(()) => {}
            Err(DomainError::NotFound { .. }) => return Err(AccountError::UnknownLink),
            Err(error) => return Err(error.into()),
        }
        txn.store_credentials(reset.user_id, &hash, now).await?;
        txn.clear_login_failures(reset.user_id).await?;
        let ended = txn.delete_sessions_of(reset.user_id, None).await?;
        txn.commit().await?;
        tracing::info!(user_id = %reset.user_id, sessions_ended = ended, "password reset");
        Ok(())
    }
}
