//! A user's change of email address: the new address proves itself through a mailed link, the
//! current one is told, and using the link starts `modify_user` with the new address.

use super::*;

/// The workflow that puts the proven address on the user.
const MODIFY_USER: &str = "modify_user";

impl Registration {
    /// Mails `new_email` a link that makes it the address of the active user `user_id`,
    /// replacing any earlier such link, and tells the current address that a change was asked
    /// for. Whoever calls this has proven who they are (a session and the current password).
    ///
    /// Never tells whether the address is taken: when another user or a registration holds it,
    /// its owner gets the address-in-use notice instead and nothing changes. At most
    /// `notices_per_hour` mails go to one address this way, so that the request cannot flood
    /// a stranger's mailbox; beyond that nothing is sent, and the answer is the same.
    pub async fn request_email_change(
        &self,
        user_id: Uuid,
        new_email: &str,
    ) -> Result<(), RegistrationError> {
        let email = Email::parse(new_email)
            .map_err(|error| RegistrationError::invalid(error, "new_email"))?;
        let user = self.acting_user(Some(user_id)).await?;
        if user.user.email == email {
            return Err(RegistrationError::Invalid {
                field: "new_email".to_owned(),
                reason: "is your address already".to_owned(),
            });
        }
        let now = self.now();
        let mut context = json!({
            "user_name": user.user.username.as_str(),
            "email": email.as_str(),
            "old_email": user.user.email.as_str(),
            "site_name": self.settings.site_name,
        });
        let mut mails = Vec::new();
        let issued = if self.address_taken(&email).await? {
            mails.push(self.templates.render(
                TemplateName::AddressInUse,
                vec![email.as_str().to_owned()],
                &context,
            )?);
            None
        } else {
            let issued = tokens::issue(
                TokenOperation::ConfirmEmailChange,
                TokenSubject {
                    user_id: Some(user.subscription.id),
                    email: Some(email.clone()),
                    ..TokenSubject::default()
                },
                now,
                Self::ttl(self.settings.confirm_ttl),
            )?;
            context["confirm_url"] = json!(self.link(&issued.plain));
            mails.push(self.templates.render(
                TemplateName::ConfirmEmailChange,
                vec![email.as_str().to_owned()],
                &context,
            )?);
            mails.push(self.templates.render(
                TemplateName::EmailChangeRequested,
                vec![user.user.email.as_str().to_owned()],
                &context,
            )?);
            Some(issued)
        };
        let txn = self.store().begin().await?;
        let window_start = now - TimeDelta::hours(1);
        if txn
            .count_notice(&email, now, window_start, self.settings.notices_per_hour)
            .await?
        {
            if let Some(issued) = &issued {
                txn.delete_user_tokens(user.subscription.id, TokenOperation::ConfirmEmailChange)
                    .await?;
                txn.create_registration_token(&issued.token).await?;
            }
            for mail in &mails {
                txn.enqueue(&mail_message(mail, now)).await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    /// Whether a live user or a registration holds `email`.
    async fn address_taken(&self, email: &Email) -> Result<bool, DomainError> {
        let store = self.store();
        if !store
            .find_by_unique_values("email", &[email.as_str().to_owned()])
            .await?
            .is_empty()
        {
            return Ok(true);
        }
        match store.pending_user_by_email(email).await {
            Ok(_) => Ok(true),
            Err(DomainError::NotFound { .. }) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Uses an email change link: the token's use and the `modify_user` process that puts the
    /// address on the user commit together, or neither does.
    pub(super) async fn confirm_email_change(
        &self,
        token: &RegistrationToken,
    ) -> Result<User, RegistrationError> {
        let user = self
            .acting_user(token.user_id)
            .await
            .map_err(|_| RegistrationError::UnknownToken)?;
        let email = token.email.as_ref().ok_or_else(|| {
            DomainError::Storage("an email change token without its address".to_owned())
        })?;
        let pages = [
            json!({ "subscription_id": user.subscription.id }),
            json!({ "email": email.as_str() }),
        ];
        let txn = self.store().begin().await?;
        used(txn.use_registration_token(token.id).await)?;
        self.engine
            .start_in(
                txn.as_ref(),
                MODIFY_USER,
                &pages,
                user.user.username.as_str(),
            )
            .await?;
        txn.commit().await?;
        self.engine.wake_workers();
        Ok(user)
    }
}
