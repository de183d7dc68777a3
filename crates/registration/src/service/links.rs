//! The mailed links: what a token would do, and using it (confirm, approve, decline, accept
//! terms), up to the workflow that creates the user.

use super::*;

impl Registration {
    /// The stored token a plain token names, checked: shape (422), existence and secret (404),
    /// expiry (410, and the token is deleted).
    async fn check(&self, plain: &str) -> Result<RegistrationToken, RegistrationError> {
        let (id, secret) = tokens::parse(plain).ok_or(RegistrationError::MalformedToken)?;
        let token = match self.store().registration_token(id).await {
            Err(DomainError::NotFound { .. }) => return Err(RegistrationError::UnknownToken),
            other => other?,
        };
        if !tokens::matches(&token, secret) {
            return Err(RegistrationError::UnknownToken);
        }
        if token.expires_at <= self.now() {
            let _ = self.store().use_registration_token(id).await;
            return Err(RegistrationError::ExpiredToken);
        }
        Ok(token)
    }

    async fn pending_of(
        &self,
        token: &RegistrationToken,
    ) -> Result<PendingUser, RegistrationError> {
        let id = token.pending_user_id.ok_or_else(|| {
            DomainError::Storage("a registration token without its user".to_owned())
        })?;
        match self.store().pending_user(id).await {
            Err(DomainError::NotFound { .. }) => Err(RegistrationError::UnknownToken),
            other => Ok(other?),
        }
    }

    /// What a token would do, for its landing page (a GET changes nothing).
    pub async fn inspect(&self, plain: &str) -> Result<TokenView, RegistrationError> {
        let token = self.check(plain).await?;
        if token.operation == TokenOperation::AcceptGroupTerms {
            let (user, group) = self.terms_subjects(&token).await?;
            return Ok(TokenView {
                operation: token.operation,
                user_name: user.user.username.to_string(),
                group_name: Some(group.user_group.name.to_string()),
                terms: group.user_group.terms.clone(),
                email: None,
            });
        }
        if token.operation == TokenOperation::ConfirmEmailChange {
            let user = self
                .acting_user(token.user_id)
                .await
                .map_err(|_| RegistrationError::UnknownToken)?;
            return Ok(TokenView {
                operation: token.operation,
                user_name: user.user.username.to_string(),
                group_name: None,
                terms: None,
                email: token.email.as_ref().map(|email| email.as_str().to_owned()),
            });
        }
        let pending = self.pending_of(&token).await?;
        Ok(TokenView {
            operation: token.operation,
            user_name: pending.user_name.to_string(),
            group_name: None,
            terms: None,
            email: None,
        })
    }

    async fn terms_subjects(
        &self,
        token: &RegistrationToken,
    ) -> Result<(User, UserGroup), RegistrationError> {
        let missing = || DomainError::Storage("a terms token without its user or group".to_owned());
        let user = token.user_id.ok_or_else(missing)?;
        let group = token.group_id.ok_or_else(missing)?;
        let user = User::from_record(self.store().load_subscription(user).await?)?;
        let group = UserGroup::from_record(self.store().load_subscription(group).await?)?;
        Ok((user, group))
    }

    /// Uses a token (the landing page's button): confirms an address, approves or declines a
    /// registration (admins only), or accepts a group's terms. Each token works once.
    pub async fn redeem(
        &self,
        plain: &str,
        visitor: Visitor,
    ) -> Result<Redeemed, RegistrationError> {
        let token = self.check(plain).await?;
        if token.operation.needs_admin() {
            match visitor {
                Visitor::Anonymous => return Err(RegistrationError::Unauthenticated),
                Visitor::SignedIn { admin: false } => return Err(RegistrationError::Forbidden),
                Visitor::SignedIn { admin: true } => {}
            }
        }
        self.carry_out(token).await
    }

    /// Approves or declines the registration of `name` as its mailed link would (admins: the
    /// console's buttons). It uses the registration's live approve or decline link, so a
    /// decision is taken once, whichever way it comes; a registration without one (its
    /// address not confirmed yet, or decided already) is not found.
    pub async fn decide(&self, name: &str, approve: bool) -> Result<Redeemed, RegistrationError> {
        let pending = self.pending_by_name(name).await?;
        let operation = if approve {
            TokenOperation::ApproveRegistration
        } else {
            TokenOperation::DeclineRegistration
        };
        let now = self.now();
        let token = self
            .store()
            .tokens_of_pending_user(pending.id)
            .await?
            .into_iter()
            .find(|token| token.operation == operation && token.expires_at > now)
            .ok_or(RegistrationError::NotFound)?;
        self.carry_out(token).await
    }

    /// Does what a checked token is for, using it up.
    async fn carry_out(&self, token: RegistrationToken) -> Result<Redeemed, RegistrationError> {
        let now = self.now();
        let subject;
        let message = match token.operation {
            TokenOperation::ConfirmEmail => {
                let pending = self.pending_of(&token).await?;
                subject = pending.user_name.to_string();
                if self.settings.approval_required {
                    self.ask_approval(&token, &pending, now).await?;
                    "Your email address is confirmed. An administrator will review your registration; you will get an email when it is decided."
                } else {
                    self.complete(&token, &pending, now).await?;
                    "Your email address is confirmed and your account is being created; you will get an email when it is ready."
                }
            }
            TokenOperation::ApproveRegistration => {
                let pending = self.pending_of(&token).await?;
                subject = pending.user_name.to_string();
                self.complete(&token, &pending, now).await?;
                "The registration is approved; the account is being created."
            }
            TokenOperation::DeclineRegistration => {
                let pending = self.pending_of(&token).await?;
                subject = pending.user_name.to_string();
                let mail = self.templates.render(
                    TemplateName::Declined,
                    vec![pending.email.as_str().to_owned()],
                    &self.context(&pending),
                )?;
                let txn = self.store().begin().await?;
                used(txn.use_registration_token(token.id).await)?;
                txn.delete_pending_user(pending.id).await?;
                txn.enqueue(&mail_message(&mail, now)).await?;
                txn.commit().await?;
                "The registration is declined; the applicant is told by email."
            }
            TokenOperation::AcceptGroupTerms => {
                let (user, group) = self.terms_subjects(&token).await?;
                subject = user.user.username.to_string();
                let mail = self.templates.render(
                    TemplateName::GroupTermsAccepted,
                    vec![user.user.email.as_str().to_owned()],
                    &self.membership_context(&user, &group),
                )?;
                // The token's use and the process it starts commit together, or neither does.
                let txn = self.store().begin().await?;
                used(txn.use_registration_token(token.id).await)?;
                self.engine
                    .start_in(
                        txn.as_ref(),
                        JOIN_USER_GROUP,
                        &[membership_page(&user, &group)],
                        "registration",
                    )
                    .await?;
                txn.delete_terms_tokens(user.subscription.id, group.subscription.id)
                    .await?;
                txn.enqueue(&mail_message(&mail, now)).await?;
                txn.commit().await?;
                self.engine.wake_workers();
                "You accepted the terms; your membership is being added."
            }
            TokenOperation::ConfirmEmailChange => {
                let user = self.confirm_email_change(&token).await?;
                subject = user.user.username.to_string();
                "Your new email address is confirmed; it replaces the old one in a moment."
            }
        };
        Ok(Redeemed {
            operation: token.operation,
            message: message.to_owned(),
            user_name: subject,
        })
    }

    /// Step 3B: the address is proven; admins get approve and decline links.
    async fn ask_approval(
        &self,
        token: &RegistrationToken,
        pending: &PendingUser,
        now: DateTime<Utc>,
    ) -> Result<(), RegistrationError> {
        let subject = TokenSubject {
            pending_user_id: Some(pending.id),
            ..TokenSubject::default()
        };
        let ttl = Self::ttl(self.settings.decision_ttl);
        let approve = tokens::issue(
            TokenOperation::ApproveRegistration,
            subject.clone(),
            now,
            ttl,
        )?;
        let decline = tokens::issue(TokenOperation::DeclineRegistration, subject, now, ttl)?;
        let mut context = self.context(pending);
        context["approve_url"] = json!(self.link(&approve.plain));
        context["decline_url"] = json!(self.link(&decline.plain));
        let mail = self.templates.render(
            TemplateName::ApprovalRequest,
            self.settings.approval_recipients.clone(),
            &context,
        )?;
        let txn = self.store().begin().await?;
        used(txn.use_registration_token(token.id).await)?;
        txn.confirm_pending_email(pending.id, now).await?;
        txn.create_registration_token(&approve.token).await?;
        txn.create_registration_token(&decline.token).await?;
        txn.enqueue(&mail_message(&mail, now)).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Step 5: uses the token and starts the workflow that creates the user (the create User
    /// steps, then the password hash moves and the approved mail, notification and webhooks go
    /// out) in one transaction, which also marks the registration as completing and deletes its
    /// other links (a decline link among them). Of concurrent
    /// uses of one link, one commits; the others find the token gone and leave nothing behind
    /// (no process, so no subscription).
    async fn complete(
        &self,
        token: &RegistrationToken,
        pending: &PendingUser,
        now: DateTime<Utc>,
    ) -> Result<(), RegistrationError> {
        let product = self
            .store()
            .product_by_name(&self.settings.user_product)
            .await?;
        let input = CompletionInput {
            product: product.id,
            pending_user_id: pending.id,
            user_id: pending.user_name.to_string(),
            username: pending.user_name.to_string(),
            email: pending.email.as_str().to_owned(),
            announcements: self.announcements(pending, now)?,
        };
        let page = serde_json::to_value(&input).map_err(|error| {
            DomainError::Internal(format!("cannot encode the completion: {error}"))
        })?;
        let txn = self.store().begin().await?;
        used(txn.use_registration_token(token.id).await)?;
        // The registration's other links go too: a decline (or a second confirmation) must not
        // remove a registration whose completion started.
        for operation in [
            TokenOperation::ConfirmEmail,
            TokenOperation::ApproveRegistration,
            TokenOperation::DeclineRegistration,
        ] {
            txn.delete_pending_tokens(pending.id, operation).await?;
        }
        let process = self
            .engine
            .start_in(txn.as_ref(), COMPLETE_REGISTRATION, &[page], "registration")
            .await?;
        if pending.email_confirmed_at.is_none() {
            txn.confirm_pending_email(pending.id, now).await?;
        }
        txn.begin_completion(pending.id, process.id).await?;
        txn.commit().await?;
        self.engine.wake_workers();
        Ok(())
    }

    /// The mails that announce a completed registration: the approved mail and the
    /// notification (the `create_user` webhooks come from [`crate::UserWebhooks`]).
    fn announcements(
        &self,
        pending: &PendingUser,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, RegistrationError> {
        let context = self.context(pending);
        let email = pending.email.as_str().to_owned();
        let mut messages = vec![mail_message(
            &self
                .templates
                .render(TemplateName::Approved, vec![email.clone()], &context)?,
            now,
        )];
        if !self.settings.notify_recipients.is_empty() {
            let to = self.settings.notify_recipients.clone();
            messages.push(mail_message(
                &self.templates.render(TemplateName::Notify, to, &context)?,
                now,
            ));
        }
        Ok(messages)
    }

    pub(super) async fn start_membership(
        &self,
        workflow: &str,
        user: &User,
        group: &UserGroup,
    ) -> Result<Uuid, RegistrationError> {
        Ok(self
            .engine
            .start(workflow, &[membership_page(user, group)], "registration")
            .await?
            .id)
    }
}

/// The page of the membership workflows for `user` and `group`.
fn membership_page(user: &User, group: &UserGroup) -> serde_json::Value {
    json!({
        "subscription_id": user.subscription.id,
        "user_group": group.subscription.id,
    })
}
