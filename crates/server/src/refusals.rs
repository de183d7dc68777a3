//! Refused requests as security events (ASVS 5.0 16.3.2, 16.3.3).
//!
//! A 403 (a caller without the role or the CSRF token a request needs) is recorded in the
//! audit log as `access_denied`: who asked (when the credential was valid), from which address,
//! the method and route (the route's template, so that no secret in a path is kept), and the
//! problem's code. A 401 and a 429 are logged (target `cadre::security`) but not recorded:
//! they need no valid credential, so recording them would let anyone fill the audit log.

use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use cadre_domain::audit::ANONYMOUS;
use cadre_domain::{AuditAction, AuditEvent};
use uuid::Uuid;

use crate::error::ErrorCode;
use crate::limit::client_addr;
use crate::state::AppState;

/// A caller as a refusal's event names it.
#[derive(Debug)]
struct Known {
    name: String,
    user_id: Option<Uuid>,
}

/// Who a request's credential names, once the [`crate::auth::Caller`] extractor found out:
/// what the refusal's event says of its actor.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallerSlot(Arc<Mutex<Option<Known>>>);

impl CallerSlot {
    /// Records the caller's name and user.
    pub(crate) fn fill(&self, name: &str, user_id: Option<Uuid>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(Known {
                name: name.to_owned(),
                user_id,
            });
        }
    }

    fn take(&self) -> Option<Known> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The middleware: runs the request with a [`CallerSlot`], then records or logs its refusal.
pub(crate) async fn record(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let slot = CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |path| path.as_str().to_owned());
    let addr = client_addr(request.extensions());
    let response = next.run(request).await;
    let status = response.status();
    match status {
        StatusCode::FORBIDDEN => {
            let known = slot.take().unwrap_or(Known {
                name: ANONYMOUS.to_owned(),
                user_id: None,
            });
            let code = response
                .extensions()
                .get::<ErrorCode>()
                .and_then(|code| serde_json::to_value(code).ok())
                .and_then(|code| code.as_str().map(str::to_owned))
                .unwrap_or_else(|| "forbidden".to_owned());
            let event = AuditEvent::new(
                Uuid::now_v7(),
                state.engine.clock().now(),
                AuditAction::AccessDenied,
                &known.name,
            )
            .by_user(known.user_id)
            .from_addr(addr)
            .on(format!("{method} {route}"))
            .failed(code);
            if let Err(error) = state.engine.store().record_audit(&event).await {
                tracing::warn!(%error, "cannot record a refused request");
            }
        }
        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {
            tracing::warn!(
                target: "cadre::security",
                status = status.as_u16(),
                %method,
                route,
                client = ?addr,
                "request refused"
            );
        }
        _ => {}
    }
    response
}
