//! The registration procedure (Magpie's six steps, hardened) and discoverable groups.

use std::sync::Arc;

use cadre_domain::models::DomainModel;
use cadre_domain::{
    DomainError, Email, ExternalId, Lifecycle, OutboxMessage, PendingUser, ProductType,
    RegistrationToken, Store, SubscriptionQuery, TokenOperation, UserName,
};
use cadre_engine::{Engine, EngineError};
use cadre_products::models::{User, UserGroup};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;
use uuid::Uuid;

use crate::delivery::mail_message;
use crate::mail::{MailError, TemplateName, Templates};
use crate::password;
use crate::settings::RegistrationSettings;
use crate::tokens::{self, TokenSubject};
use crate::workflows::{COMPLETE_REGISTRATION, CompletionInput, JOIN_USER_GROUP, LEAVE_USER_GROUP};

/// Why a registration request was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// A field is invalid (400, naming the field).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// The user name or the email is taken by a user or a pending user; deliberately vague
    /// (409).
    #[error("this user name or email address cannot be registered")]
    Conflict,
    /// The token is not of a token's shape (422).
    #[error("the link is malformed")]
    MalformedToken,
    /// No such token, or it was used already (404).
    #[error("the link is unknown or was already used")]
    UnknownToken,
    /// The token expired (410).
    #[error("the link has expired")]
    ExpiredToken,
    /// The operation needs an admin, and no one signed in (401).
    #[error("this needs an admin's API token")]
    Unauthenticated,
    /// The operation needs an admin, and the caller is not one (403).
    #[error("only an admin may do this")]
    Forbidden,
    /// No such pending user or discoverable group (404; the same for a hidden group).
    #[error("not found")]
    NotFound,
    /// The caller already belongs to the group (409).
    #[error("you already belong to this group")]
    AlreadyMember,
    /// The caller's token acts for no active user (403).
    #[error("this needs a token that acts for an active user")]
    NoUser,
    /// A mail could not be rendered.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// A workflow could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl RegistrationError {
    fn invalid(error: DomainError, field: &str) -> Self {
        match error {
            DomainError::InvalidArgument { reason, .. } => Self::Invalid {
                field: field.to_owned(),
                reason,
            },
            other => Self::Domain(other),
        }
    }
}

/// A registration as its submitter and admins see it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingView {
    /// The chosen user name.
    pub user_name: String,
    /// The address.
    pub email: String,
    /// `pending`, or `confirmed` once the address was proven (and an admin decides).
    pub status: &'static str,
    /// When they signed up.
    pub registered_at: DateTime<Utc>,
    /// Outstanding links by operation, with when each expires.
    pub links: Vec<(TokenOperation, DateTime<Utc>)>,
}

/// What a token's landing page shows before its button is pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// What pressing the button does.
    pub operation: TokenOperation,
    /// Whose registration or membership it is.
    pub user_name: String,
    /// The group, for group terms.
    pub group_name: Option<String>,
    /// The group's terms, for group terms.
    pub terms: Option<String>,
}

/// What a used token did, for the result page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    /// The operation.
    pub operation: TokenOperation,
    /// A sentence for the person.
    pub message: String,
}

/// A discoverable group as anyone signed in sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicGroup {
    /// The group's id.
    pub user_group_id: String,
    /// Its name.
    pub name: String,
    /// The terms a joiner accepts, if any (readable before asking to join).
    pub terms: Option<String>,
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The membership is being added by this process.
    Member(Uuid),
    /// The group has terms: a link to accept them was mailed; the membership waits for it.
    TermsSent,
}

/// Who uses a token: an admin or not, or nobody signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visitor {
    /// No API token came with the request.
    Anonymous,
    /// A valid token; `admin` when it has the admin role.
    SignedIn {
        /// Whether the token is an admin's.
        admin: bool,
    },
}

/// Self-registration and discoverable groups over an engine whose registry holds
/// [`crate::workflows`].
#[derive(Clone)]
pub struct Registration {
    engine: Engine,
    templates: Arc<Templates>,
    settings: Arc<RegistrationSettings>,
}

impl Registration {
    /// Registration over `engine`, mailing with `templates` as `settings` say.
    pub fn new(
        engine: Engine,
        templates: Arc<Templates>,
        settings: Arc<RegistrationSettings>,
    ) -> Self {
        Self {
            engine,
            templates,
            settings,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RegistrationSettings {
        &self.settings
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    fn now(&self) -> DateTime<Utc> {
        self.engine.clock().now()
    }

    fn ttl(duration: std::time::Duration) -> TimeDelta {
        TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
    }

    fn link(&self, plain: &str) -> String {
        format!(
            "{}/tokens/{plain}",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    fn context(&self, pending: &PendingUser) -> serde_json::Value {
        json!({
            "user_name": pending.user_name.as_str(),
            "email": pending.email.as_str(),
            "site_name": self.settings.site_name,
            "approval_required": self.settings.approval_required,
        })
    }

    /// What the group mails of `user` and `group` are rendered with.
    fn membership_context(&self, user: &User, group: &UserGroup) -> serde_json::Value {
        json!({
            "user_name": user.user.username.as_str(),
            "email": user.user.email.as_str(),
            "site_name": self.settings.site_name,
            "group_name": group.user_group.name.as_str(),
        })
    }

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
            });
        }
        let pending = self.pending_of(&token).await?;
        Ok(TokenView {
            operation: token.operation,
            user_name: pending.user_name.to_string(),
            group_name: None,
            terms: None,
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
        let now = self.now();
        let message = match token.operation {
            TokenOperation::ConfirmEmail => {
                let pending = self.pending_of(&token).await?;
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
                self.complete(&token, &pending, now).await?;
                "The registration is approved; the account is being created."
            }
            TokenOperation::DeclineRegistration => {
                let pending = self.pending_of(&token).await?;
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
                let process = self
                    .start_membership(JOIN_USER_GROUP, &user, &group)
                    .await?;
                let mail = self.templates.render(
                    TemplateName::GroupTermsAccepted,
                    vec![user.user.email.as_str().to_owned()],
                    &self.membership_context(&user, &group),
                )?;
                let txn = self.store().begin().await?;
                if let Err(error) = used(txn.use_registration_token(token.id).await) {
                    drop(txn);
                    self.engine.abort(process, "registration").await?;
                    return Err(error);
                }
                txn.delete_terms_tokens(user.subscription.id, group.subscription.id)
                    .await?;
                txn.enqueue(&mail_message(&mail, now)).await?;
                txn.commit().await?;
                "You accepted the terms; your membership is being added."
            }
        };
        Ok(Redeemed {
            operation: token.operation,
            message: message.to_owned(),
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
        let approve = tokens::issue(TokenOperation::ApproveRegistration, subject, now, ttl)?;
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

    /// Step 5: starts the workflow that creates the user (the create User steps, then the
    /// password hash moves and the approved mail, notification and webhooks go out), then uses
    /// the token; if the token was used meanwhile, the new process is aborted.
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
        let process = self
            .engine
            .start(COMPLETE_REGISTRATION, &[page], "registration")
            .await?;
        let txn = self.store().begin().await?;
        if let Err(error) = used(txn.use_registration_token(token.id).await) {
            drop(txn);
            self.engine.abort(process.id, "registration").await?;
            return Err(error);
        }
        if pending.email_confirmed_at.is_none() {
            txn.confirm_pending_email(pending.id, now).await?;
        }
        txn.commit().await?;
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

    async fn start_membership(
        &self,
        workflow: &str,
        user: &User,
        group: &UserGroup,
    ) -> Result<Uuid, RegistrationError> {
        let page = json!({
            "subscription_id": user.subscription.id,
            "user_group": group.subscription.id,
        });
        Ok(self
            .engine
            .start(workflow, &[page], "registration")
            .await?
            .id)
    }

    /// The active discoverable groups, by id.
    pub async fn discoverable_groups(&self) -> Result<Vec<PublicGroup>, RegistrationError> {
        let page = self
            .store()
            .list_subscriptions(&SubscriptionQuery {
                product_type: Some(ProductType::user_group()),
                lifecycle: Some(Lifecycle::Active),
                ..SubscriptionQuery::default()
            })
            .await?;
        let ids: Vec<Uuid> = page.items.iter().map(|item| item.subscription.id).collect();
        let mut groups: Vec<PublicGroup> = self
            .store()
            .load_subscriptions(&ids)
            .await?
            .into_iter()
            .filter_map(|record| UserGroup::from_record(record).ok())
            .filter(|group| group.user_group.discoverable)
            .map(|group| public(&group))
            .collect();
        groups.sort_by(|a, b| a.user_group_id.cmp(&b.user_group_id));
        Ok(groups)
    }

    /// One active discoverable group; a hidden or missing one is the same not found.
    async fn discoverable(&self, id: &str) -> Result<UserGroup, RegistrationError> {
        let id = ExternalId::parse(id).map_err(|_| RegistrationError::NotFound)?;
        let found = self
            .store()
            .find_by_unique_values("user_group_id", &[id.as_str().to_owned()])
            .await?;
        let Some((_, subscription)) = found.into_iter().next() else {
            return Err(RegistrationError::NotFound);
        };
        let record = self.store().load_subscription(subscription).await?;
        match UserGroup::from_record(record) {
            Ok(group)
                if group.user_group.discoverable
                    && group.subscription.lifecycle == Lifecycle::Active =>
            {
                Ok(group)
            }
            _ => Err(RegistrationError::NotFound),
        }
    }

    /// The public view of a discoverable group.
    pub async fn discoverable_group(&self, id: &str) -> Result<PublicGroup, RegistrationError> {
        Ok(public(&self.discoverable(id).await?))
    }

    async fn acting_user(&self, user: Option<Uuid>) -> Result<User, RegistrationError> {
        let user = user.ok_or(RegistrationError::NoUser)?;
        let record = self.store().load_subscription(user).await?;
        match User::from_record(record) {
            Ok(user) if user.subscription.lifecycle == Lifecycle::Active => Ok(user),
            _ => Err(RegistrationError::NoUser),
        }
    }

    /// Joins the caller's user to a discoverable group: at once (a process adds the
    /// membership), or, when the group has terms, by mailing a link to accept them.
    pub async fn join(&self, user: Option<Uuid>, group: &str) -> Result<Joined, RegistrationError> {
        let group = self.discoverable(group).await?;
        let user = self.acting_user(user).await?;
        let reference = group.user_group.reference(group.subscription.id);
        if user.user.groups.contains(&reference) {
            return Err(RegistrationError::AlreadyMember);
        }
        let Some(terms) = group.user_group.terms.clone() else {
            return Ok(Joined::Member(
                self.start_membership(JOIN_USER_GROUP, &user, &group)
                    .await?,
            ));
        };
        let now = self.now();
        let issued = tokens::issue(
            TokenOperation::AcceptGroupTerms,
            TokenSubject {
                user_id: Some(user.subscription.id),
                group_id: Some(group.subscription.id),
                ..TokenSubject::default()
            },
            now,
            Self::ttl(self.settings.terms_ttl),
        )?;
        let mut context = self.membership_context(&user, &group);
        context["terms"] = json!(terms);
        context["accept_url"] = json!(self.link(&issued.plain));
        let mail = self.templates.render(
            TemplateName::GroupTerms,
            vec![user.user.email.as_str().to_owned()],
            &context,
        )?;
        let txn = self.store().begin().await?;
        txn.create_registration_token(&issued.token).await?;
        txn.enqueue(&mail_message(&mail, now)).await?;
        txn.commit().await?;
        Ok(Joined::TermsSent)
    }

    /// Takes the caller's user out of a discoverable group (a process removes the membership).
    pub async fn leave(&self, user: Option<Uuid>, group: &str) -> Result<Uuid, RegistrationError> {
        let group = self.discoverable(group).await?;
        let user = self.acting_user(user).await?;
        self.start_membership(LEAVE_USER_GROUP, &user, &group).await
    }
}

fn public(group: &UserGroup) -> PublicGroup {
    PublicGroup {
        user_group_id: group.user_group.user_group_id.as_str().to_owned(),
        name: group.user_group.name.to_string(),
        terms: group.user_group.terms.clone(),
    }
}

/// A token that is gone when it is used was used by someone else meanwhile.
fn used(result: Result<(), DomainError>) -> Result<(), RegistrationError> {
    match result {
        Err(DomainError::NotFound { .. }) => Err(RegistrationError::UnknownToken),
        other => Ok(other?),
    }
}
