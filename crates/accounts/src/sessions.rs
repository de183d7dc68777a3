//! Sessions: recognising a session cookie, keeping its lifetimes, its CSRF token, and ending
//! sessions.

use std::net::IpAddr;

use cadre_domain::{AuditAction, AuditEvent, DomainError, Origin, Session};
use cadre_registration::tokens::{parse, secret_matches};
use chrono::TimeDelta;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{AccountError, AccountUser, Accounts};

/// A session's last use is recorded at most this often (a session's idle end is this precise).
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);

/// A request's valid session and its active user.
#[derive(Debug, Clone)]
pub struct SessionUser {
    /// The session.
    pub session: Session,
    /// Its user, active.
    pub user: AccountUser,
    /// The CSRF token unsafe requests of this session must send.
    pub csrf_token: String,
}

impl SessionUser {
    /// Whether `sent` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        self.csrf_token.as_bytes().ct_eq(sent.as_bytes()).into()
    }
}

/// The CSRF token of the session whose secret is `secret`: a hash of it under a label of its
/// own, so the page that holds it learns nothing of the cookie.
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cadre csrf token\0");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

impl Accounts {
    /// The session a cookie value names, if it is live and its user active. A live session
    /// records its use (to the minute).
    pub async fn session(&self, cookie: &str) -> Result<Option<SessionUser>, AccountError> {
        let Some((id, secret)) = parse(cookie) else {
            return Ok(None);
        };
        let session = match self.store.session(id).await {
            Ok(session) => session,
            Err(DomainError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if !secret_matches(&session.secret_hash, secret) {
            return Ok(None);
        }
        let now = self.now();
        let idle_end = session.last_seen_at + Self::ttl(self.settings.session_idle);
        if now >= session.expires_at || now >= idle_end {
            self.store.delete_session(id).await?;
            return Ok(None);
        }
        let Some(user) = self.active_user(session.user_id).await? else {
            return Ok(None);
        };
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_session(id, now).await?;
        }
        Ok(Some(SessionUser {
            csrf_token: csrf_token(secret),
            session,
            user,
        }))
    }

    /// Ends `caller`'s session, or with `everywhere` every session of its user, for the client
    /// at `addr`; audited as `sign_out`.
    pub async fn sign_out(
        &self,
        caller: &SessionUser,
        everywhere: bool,
        addr: Option<IpAddr>,
    ) -> Result<u64, AccountError> {
        let session: &Session = &caller.session;
        let ended = if everywhere {
            self.store.delete_sessions_of(session.user_id, None).await?
        } else {
            self.store.delete_session(session.id).await?;
            1
        };
        let event = self
            .event(AuditAction::SignOut, &caller.user.user_name, addr)
            .by_user(Some(session.user_id))
            .on(session.user_id);
        let event = if everywhere {
            event.detail(format!("every session ({ended})"))
        } else {
            event
        };
        self.audit(None, event).await?;
        tracing::info!(user_id = %session.user_id, session = %session.id, everywhere, "signed out");
        Ok(ended)
    }

    /// The sessions of the user `user_id`, oldest first.
    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>, AccountError> {
        Ok(self.store.sessions_of(user_id).await?)
    }

    /// Ends the session `id` of `caller`'s own user once the caller proves the current
    /// password; another user's session, or none, is [`AccountError::UnknownSession`]. Audited
    /// as `sessions_ended` from `addr`.
    pub async fn end_own_session(
        &self,
        caller: &SessionUser,
        id: Uuid,
        current_password: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), AccountError> {
        let user_id = caller.user.user_id;
        self.reauthenticate(caller, current_password, AuditAction::SessionsEnded, addr)
            .await?;
        match self.store.session(id).await {
            Ok(session) if session.user_id == user_id => {}
            Ok(_) | Err(DomainError::NotFound { .. }) => return Err(AccountError::UnknownSession),
            Err(error) => return Err(error.into()),
        }
        let txn = self.store.begin().await?;
        txn.delete_session(id).await?;
        self.audit(
            Some(txn.as_ref()),
            self.event(AuditAction::SessionsEnded, &caller.user.user_name, addr)
                .by_user(Some(user_id))
                .on(user_id)
                .detail(format!("session {id}")),
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Ends every session of `user`, or of every user when `None`, for the admin `admin` from
    /// `origin`; audited as `sessions_ended`. Returns how many ended.
    pub async fn end_sessions(
        &self,
        user: Option<Uuid>,
        admin: &str,
        origin: &Origin,
    ) -> Result<u64, AccountError> {
        let txn = self.store.begin().await?;
        let ended = match user {
            Some(user_id) => txn.delete_sessions_of(user_id, None).await?,
            None => txn.delete_all_sessions().await?,
        };
        let event = AuditEvent::new(
            Uuid::now_v7(),
            self.now(),
            AuditAction::SessionsEnded,
            admin,
        )
        .origin(origin)
        .detail(format!("sessions ended: {ended}"));
        let event = match user {
            Some(user_id) => event.on(user_id),
            None => event.on("every user"),
        };
        self.audit(Some(txn.as_ref()), event).await?;
        txn.commit().await?;
        tracing::info!(?user, ended, "sessions ended by an admin");
        Ok(ended)
    }

    /// Removes the sessions past their lifetimes; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64, AccountError> {
        let now = self.now();
        Ok(self
            .store
            .delete_expired_sessions(now, now - Self::ttl(self.settings.session_idle))
            .await?)
    }
}
