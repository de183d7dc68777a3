//! Signing up (Magpie's steps 1 and 2): submissions, confirmation links, and the pending
//! registrations admins see and purge.

use super::*;

impl Registration {
    /// Step 1 and 2: validates the submission, keeps a pending user with only a hash of the
    /// password, and mails a confirmation link (through the outbox, in the same transaction).
    ///
    /// Never tells whether a name or an email is taken: a valid submission answers `Ok` either
    /// way, after the same work (hashing the password, the lookups, one transaction that records
    /// a mail). When the email belongs to a user or a registration, its owner gets a mail that
    /// someone tried to register with it (no link, no name); when only the name is taken, the
    /// applicant gets a mail at the (free) address saying that the name cannot be registered.
    pub async fn submit(
        &self,
        user_name: &str,
        email: &str,
        password: &str,
    ) -> Result<(), RegistrationError> {
        let user_name = UserName::parse(user_name)
            .map_err(|error| RegistrationError::invalid(error, "user_name"))?;
        if self
            .settings
            .reserved_names
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(user_name.as_str()))
        {
            return Err(RegistrationError::Invalid {
                field: "user_name".to_owned(),
                reason: "is reserved".to_owned(),
            });
        }
        let email =
            Email::parse(email).map_err(|error| RegistrationError::invalid(error, "email"))?;
        let context = [
            user_name.as_str(),
            email.as_str(),
            self.settings.site_name.as_str(),
        ];
        if let Some(reason) =
            password_problem(password, self.settings.password_min_length, &context)
        {
            return Err(RegistrationError::Invalid {
                field: "password".to_owned(),
                reason,
            });
        }
        // Hashed whether or not anything is taken, so that both answer after the same work.
        let password_hash = self.passwords.hash(password).await?;
        let now = self.now();
        let pending = PendingUser {
            id: Uuid::now_v7(),
            user_name,
            email,
            password_hash,
            registered_at: now,
            email_confirmed_at: None,
            completion_process_id: None,
        };
        let taken = self.taken(&pending.user_name, &pending.email).await?;
        if taken != Taken::Nothing {
            return self.refuse_quietly(&pending, taken, now).await;
        }
        match self.keep(&pending, now).await {
            // A concurrent submission took the name or the address meanwhile.
            Err(RegistrationError::Domain(DomainError::Conflict(_))) => {
                let taken = self.taken(&pending.user_name, &pending.email).await?;
                self.refuse_quietly(&pending, taken, now).await
            }
            other => other,
        }
    }

    /// Keeps `pending` with its confirmation link and mail, in one transaction.
    async fn keep(
        &self,
        pending: &PendingUser,
        now: DateTime<Utc>,
    ) -> Result<(), RegistrationError> {
        let (token, message) = self.confirmation(pending, now)?;
        let txn = self.store().begin().await?;
        txn.create_pending_user(pending).await?;
        txn.create_registration_token(&token).await?;
        txn.enqueue(&message).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Answers a submission whose email or name is taken like a kept one, and mails whom it
    /// concerns: the owner of a taken address, or the applicant whose name is taken (at most
    /// `notices_per_hour` such mails per address).
    async fn refuse_quietly(
        &self,
        pending: &PendingUser,
        taken: Taken,
        now: DateTime<Utc>,
    ) -> Result<(), RegistrationError> {
        let template = match taken {
            Taken::Nothing => return Ok(()),
            Taken::Email => TemplateName::AddressInUse,
            Taken::Name => TemplateName::NameUnavailable,
        };
        let mail = self.templates.render(
            template,
            vec![pending.email.as_str().to_owned()],
            &self.context(pending),
        )?;
        // At most `notices_per_hour` to an address, so that submissions cannot flood it.
        let txn = self.store().begin().await?;
        let window_start = now - TimeDelta::hours(1);
        let limit = self.settings.notices_per_hour;
        if txn
            .count_notice(&pending.email, now, window_start, limit)
            .await?
        {
            txn.enqueue(&mail_message(&mail, now)).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// What a user or a pending user holds of the name (as a user name or user id, compared
    /// by its identity key) and the email.
    async fn taken(&self, name: &UserName, email: &Email) -> Result<Taken, DomainError> {
        let store = self.store();
        let by_email = store
            .find_by_unique_values("email", &[email.as_str().to_owned()])
            .await?;
        let pending_email = match store.pending_user_by_email(email).await {
            Ok(_) => true,
            Err(DomainError::NotFound { .. }) => false,
            Err(error) => return Err(error),
        };
        if !by_email.is_empty() || pending_email {
            return Ok(Taken::Email);
        }
        let by_name = store
            .find_by_unique_values("username", &[name.as_str().to_owned()])
            .await?;
        let by_id = store
            .find_by_unique_values("user_id", &[name.as_str().to_owned()])
            .await?;
        if !(by_name.is_empty() && by_id.is_empty())
            || store.pending_user_holds(name, email).await?
        {
            return Ok(Taken::Name);
        }
        Ok(Taken::Nothing)
    }

    /// A confirmation token for `pending` and the mail with its link.
    fn confirmation(
        &self,
        pending: &PendingUser,
        now: DateTime<Utc>,
    ) -> Result<(RegistrationToken, OutboxMessage), RegistrationError> {
        let issued = tokens::issue(
            TokenOperation::ConfirmEmail,
            TokenSubject {
                pending_user_id: Some(pending.id),
                ..TokenSubject::default()
            },
            now,
            Self::ttl(self.settings.confirm_ttl),
        )?;
        let mut context = self.context(pending);
        context["confirm_url"] = json!(self.link(&issued.plain));
        let mail = self.templates.render(
            TemplateName::ConfirmEmail,
            vec![pending.email.as_str().to_owned()],
            &context,
        )?;
        Ok((issued.token, mail_message(&mail, now)))
    }

    /// Mails a new confirmation link to a pending user with `email` who has not confirmed yet,
    /// and invalidates the earlier ones (only the newest link works). At most
    /// `resends_per_hour` per registration, counted in the database; beyond that nothing is
    /// sent. Answers the same whether or not there is one, or it was over its limit, so it
    /// reveals nothing.
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), RegistrationError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let pending = match self.store().pending_user_by_email(&email).await {
            Ok(pending) if pending.email_confirmed_at.is_none() => pending,
            Ok(_) | Err(DomainError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        let now = self.now();
        let (token, message) = self.confirmation(&pending, now)?;
        let txn = self.store().begin().await?;
        let window_start = now - TimeDelta::hours(1);
        let limit = self.settings.resends_per_hour;
        if !txn
            .count_resend(pending.id, now, window_start, limit)
            .await?
        {
            return Ok(());
        }
        txn.delete_pending_tokens(pending.id, TokenOperation::ConfirmEmail)
            .await?;
        txn.create_registration_token(&token).await?;
        txn.enqueue(&message).await?;
        txn.commit().await?;
        Ok(())
    }

    fn view(&self, pending: &PendingUser, tokens: Vec<RegistrationToken>) -> PendingView {
        PendingView {
            user_name: pending.user_name.to_string(),
            email: pending.email.as_str().to_owned(),
            status: if pending.completion_process_id.is_some() {
                "completing"
            } else if pending.email_confirmed_at.is_some() {
                "confirmed"
            } else {
                "pending"
            },
            registered_at: pending.registered_at,
            links: tokens
                .into_iter()
                .map(|token| (token.operation, token.expires_at))
                .collect(),
        }
    }

    /// Every pending registration, by name (admins).
    pub async fn list_pending(&self) -> Result<Vec<PendingView>, RegistrationError> {
        let mut views = Vec::new();
        for pending in self.store().list_pending_users().await? {
            let tokens = self.store().tokens_of_pending_user(pending.id).await?;
            views.push(self.view(&pending, tokens));
        }
        Ok(views)
    }

    pub(super) async fn pending_by_name(
        &self,
        name: &str,
    ) -> Result<PendingUser, RegistrationError> {
        let name = UserName::parse(name).map_err(|_| RegistrationError::NotFound)?;
        match self.store().pending_user_by_name(&name).await {
            Err(DomainError::NotFound { .. }) => Err(RegistrationError::NotFound),
            other => Ok(other?),
        }
    }

    /// One pending registration (admins).
    pub async fn pending(&self, name: &str) -> Result<PendingView, RegistrationError> {
        let pending = self.pending_by_name(name).await?;
        let tokens = self.store().tokens_of_pending_user(pending.id).await?;
        Ok(self.view(&pending, tokens))
    }

    /// Deletes a pending registration and its links, without mail (admins). A registration
    /// whose completion started is its process's to remove while the process may still run;
    /// once the process was aborted, an admin may delete it.
    pub async fn delete_pending(&self, name: &str) -> Result<(), RegistrationError> {
        let pending = self.pending_by_name(name).await?;
        match self
            .store()
            .delete_pending_user_unless_completing(pending.id)
            .await
        {
            Err(DomainError::Conflict(_)) => Err(RegistrationError::Completing),
            Err(DomainError::NotFound { .. }) => Err(RegistrationError::NotFound),
            other => Ok(other?),
        }
    }

    /// Deletes expired links and the registrations left without one, except those whose
    /// completion started (their process removes them).
    pub async fn purge(&self) -> Result<u64, RegistrationError> {
        Ok(self.store().purge_expired(self.now()).await?)
    }
}
