//! Signing up (Magpie's steps 1 and 2): submissions, confirmation links, and the pending
//! registrations admins see and purge.

use super::*;

impl Registration {
    /// Step 1 and 2: validates the submission, keeps a pending user with only a hash of the
    /// password, and mails a confirmation link (through the outbox, in the same transaction).
    /// A name or email that a user or pending user holds is one vague conflict.
    pub async fn submit(
        &self,
        user_name: &str,
        email: &str,
        password: &str,
    ) -> Result<PendingView, RegistrationError> {
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
        let min = self.settings.password_min_length;
        if password.chars().count() < min {
            return Err(RegistrationError::Invalid {
                field: "password".to_owned(),
                reason: format!("must be at least {min} characters"),
            });
        }
        // Hash before looking for conflicts, so that a taken name answers no faster.
        let password_hash = password::hash(password).await?;
        if self.taken(&user_name, &email).await? {
            return Err(RegistrationError::Conflict);
        }
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
        let txn = self.store().begin().await?;
        match txn.create_pending_user(&pending).await {
            Err(DomainError::Conflict(_)) => return Err(RegistrationError::Conflict),
            other => other?,
        }
        let messages = self.confirmation(&pending, now)?;
        txn.create_registration_token(&messages.0).await?;
        txn.enqueue(&messages.1).await?;
        txn.commit().await?;
        Ok(self.view(&pending, vec![messages.0]))
    }

    /// Whether a user or a pending user holds the name (as a user name) or the email.
    async fn taken(&self, name: &UserName, email: &Email) -> Result<bool, DomainError> {
        let store = self.store();
        if store.pending_user_holds(name, email).await? {
            return Ok(true);
        }
        let by_name = store
            .find_by_unique_values("username", &[name.as_str().to_owned()])
            .await?;
        let by_id = store
            .find_by_unique_values("user_id", &[name.as_str().to_owned()])
            .await?;
        let by_email = store
            .find_by_unique_values("email", &[email.as_str().to_owned()])
            .await?;
        Ok(!(by_name.is_empty() && by_id.is_empty() && by_email.is_empty()))
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

    /// Mails a new confirmation link to a pending user with `email` who has not confirmed yet.
    /// Answers the same whether or not there is one, so it reveals nothing.
    pub async fn resend_confirmation(&self, email: &str) -> Result<(), RegistrationError> {
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        let pending = self
            .store()
            .list_pending_users()
            .await?
            .into_iter()
            .find(|pending| pending.email == email && pending.email_confirmed_at.is_none());
        let Some(pending) = pending else {
            return Ok(());
        };
        let now = self.now();
        let (token, message) = self.confirmation(&pending, now)?;
        let txn = self.store().begin().await?;
        txn.create_registration_token(&token).await?;
        txn.enqueue(&message).await?;
        txn.commit().await?;
        Ok(())
    }

    fn view(&self, pending: &PendingUser, tokens: Vec<RegistrationToken>) -> PendingView {
        PendingView {
            user_name: pending.user_name.to_string(),
            email: pending.email.as_str().to_owned(),
            status: if pending.email_confirmed_at.is_some() {
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

    async fn pending_by_name(&self, name: &str) -> Result<PendingUser, RegistrationError> {
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

    /// Deletes a pending registration and its links, without mail (admins).
    pub async fn delete_pending(&self, name: &str) -> Result<(), RegistrationError> {
        let pending = self.pending_by_name(name).await?;
        self.store().delete_pending_user(pending.id).await?;
        Ok(())
    }

    /// Deletes expired links and the registrations left without one.
    pub async fn purge(&self) -> Result<u64, RegistrationError> {
        Ok(self.store().purge_expired(self.now()).await?)
    }
}
