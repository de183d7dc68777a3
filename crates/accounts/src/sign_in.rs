//! Signing in: finding the user by name or email, throttling, checking the password, and
//! opening a session.

use std::net::IpAddr;

use cadre_domain::models::DomainModel;
use cadre_domain::{
    AuditAction, DomainError, Email, Lifecycle, Name, ProductType, Session, StoreTransaction,
};
use cadre_products::models::User;
use cadre_registration::Verified;
use cadre_registration::tokens::new_secret;
use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::sessions::csrf_token;
use crate::{AccountError, AccountUser, Accounts, MAX_PASSWORD_CHARS};

/// A sign-in that succeeded: the new session, the cookie value that names it (its only plain
/// copy) and its CSRF token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The stored session.
    pub session: Session,
    /// `<id>.<secret>`, the value of the session cookie.
    pub cookie: String,
    /// What unsafe requests of this session send in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Who signed in.
    pub user: AccountUser,
}

impl Accounts {
    /// Signs in `login` (a user name or an email address) with `password` from the client at
    /// `addr` and opens a session. Every refusal is [`AccountError::InvalidCredentials`], in
    /// about the same time. Every attempt is audited (`sign_in` or `sign_in_failed`, with why);
    /// a refused one names the login it tried, never the password.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<SignedIn, AccountError> {
        let refused = |actor: &str, user: Option<&AccountUser>, reason: &str| {
            let event = self
                .event(AuditAction::SignInFailed, actor, addr)
                .by_user(user.map(|user| user.user_id));
            match user {
                Some(user) => event.on(user.user_id),
                None => event,
            }
            .failed(reason)
        };
        if password.chars().count() > MAX_PASSWORD_CHARS {
            self.audit(
                None,
                refused(login.trim(), None, "the password is too long"),
            )
            .await?;
            return Err(AccountError::InvalidCredentials);
        }
        let Some(user) = self.active_user_by_login(login).await? else {
            self.passwords.verify_decoy(password).await?;
            self.audit(
                None,
                refused(
                    login.trim(),
                    None,
                    "no active user has this name or address",
                ),
            )
            .await?;
            return Err(AccountError::InvalidCredentials);
        };
        let now = self.now();
        let Some(failures) = self
            .store
            .reserve_login_attempt(user.user_id, now, self.settings.max_failures.min(100))
            .await?
        else {
            tracing::info!(user_id = %user.user_id, "sign-in refused: locked");
            self.passwords.verify_decoy(password).await?;
            self.audit(
                None,
                refused(&user.user_name, Some(&user), "sign-in is locked"),
            )
            .await?;
            return Err(AccountError::InvalidCredentials);
        };
        let verified = match self.store.credentials(user.user_id).await? {
            Some(hash) => self.passwords.verify(password, &hash).await?,
            None => {
                self.passwords.verify_decoy(password).await?;
                Verified::Mismatch
            }
        };
        let Verified::Match { rehash } = verified else {
            if let Some(delay) = self.lock_delay(failures) {
                self.store.lock_login(user.user_id, now + delay).await?;
            }
            tracing::info!(user_id = %user.user_id, failures, "sign-in failed");
            self.audit(
                None,
                refused(
                    &user.user_name,
                    Some(&user),
                    &format!("wrong password ({failures} in a row)"),
                ),
            )
            .await?;
            return Err(AccountError::InvalidCredentials);
        };
        // A hash made with other parameters is replaced; made before the transaction, which
        // then clears the failures, stores the session and records the sign-in at once.
        let new_hash = if rehash {
            Some(self.passwords.hash(password).await?)
        } else {
            None
        };
        let txn = self.store.begin().await?;
        txn.clear_login_failures(user.user_id).await?;
        if let Some(hash) = &new_hash {
            txn.store_credentials(user.user_id, hash, now).await?;
        }
        let signed_in = self.open_session(txn.as_ref(), user, now).await?;
        let user = &signed_in.user;
        self.audit(
            Some(txn.as_ref()),
            self.event(AuditAction::SignIn, &user.user_name, addr)
                .by_user(Some(user.user_id))
                .on(user.user_id),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(user_id = %signed_in.user.user_id, session = %signed_in.session.id, "signed in");
        Ok(signed_in)
    }

    /// How long the `failures`-th failure in a row locks sign-in: nothing for the free ones,
    /// then one second, doubling up to `max_lock`.
    fn lock_delay(&self, failures: u32) -> Option<TimeDelta> {
        let over = failures.checked_sub(self.settings.free_failures)?;
        if over == 0 {
            return None;
        }
        let seconds = 1u64.checked_shl(over - 1).unwrap_or(u64::MAX);
        let delay = std::time::Duration::from_secs(seconds).min(self.settings.max_lock);
        Some(Self::ttl(delay))
    }

    async fn open_session(
        &self,
        txn: &dyn StoreTransaction,
        user: AccountUser,
        now: DateTime<Utc>,
    ) -> Result<SignedIn, AccountError> {
        let (secret, secret_hash) = new_secret()?;
        let session = Session {
            id: Uuid::now_v7(),
            secret_hash,
            user_id: user.user_id,
            created_at: now,
            last_seen_at: now,
            expires_at: now + Self::ttl(self.settings.session_lifetime),
        };
        txn.create_session(&session).await?;
        Ok(SignedIn {
            cookie: format!("{}.{secret}", session.id.simple()),
            csrf_token: csrf_token(&secret),
            session,
            user,
        })
    }

    /// The active user whose user name or (with an `@`) email address is `login`.
    pub(crate) async fn active_user_by_login(
        &self,
        login: &str,
    ) -> Result<Option<AccountUser>, AccountError> {
        let (resource_type, value) = if login.contains('@') {
            match Email::parse(login) {
                Ok(email) => ("email", email.as_str().to_owned()),
                Err(_) => return Ok(None),
            }
        } else {
            match Name::parse(login) {
                Ok(name) => ("username", name.as_str().to_owned()),
                Err(_) => return Ok(None),
            }
        };
        let found = self
            .store
            .find_by_unique_values(resource_type, &[value])
            .await?;
        match found.first() {
            Some((_, user_id)) => self.active_user(*user_id).await,
            None => Ok(None),
        }
    }

    /// The User subscription `user_id` as an account, if it is active.
    pub async fn active_user(&self, user_id: Uuid) -> Result<Option<AccountUser>, AccountError> {
        let record = match self.store.load_subscription(user_id).await {
            Ok(record) => record,
            Err(DomainError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if record.product.product_type.as_str() != ProductType::USER
            || record.subscription.lifecycle != Lifecycle::Active
        {
            return Ok(None);
        }
        let user = User::from_record(record)?;
        let mut roles = vec![cadre_domain::Role::User];
        roles.extend(self.store.roles(user_id).await?);
        Ok(Some(AccountUser {
            user_id,
            user_name: user.user.username.as_str().to_owned(),
            email: user.user.email.as_str().to_owned(),
            roles,
        }))
    }
}
