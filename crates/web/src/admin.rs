//! The admin console's pages: the dashboard.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cadre_domain::{Lifecycle, ProductType, Role, SubscriptionQuery};
use cadre_server::{ApiError, AppState, ErrorCode};
use minijinja::context;

use crate::page::{me, refused, render, to_sign_in, visitor};

/// The dashboard: subscriptions by product type and lifecycle, and the registrations awaiting
/// an admin's decision. Admins only; anyone else signed in gets a 403 page.
pub(crate) async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match visitor(&state, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_sign_in(),
        Err(error) => return refused(None, error),
    };
    if session.user.role() != Role::Admin {
        return refused(
            Some(&session),
            ApiError::new(ErrorCode::Forbidden, "The console is for admins."),
        );
    }
    let store = state.engine.store();
    let mut rows = Vec::new();
    for product_type in [ProductType::user(), ProductType::user_group()] {
        let mut counts = Vec::new();
        for lifecycle in Lifecycle::ALL {
            let query = SubscriptionQuery {
                product_type: Some(product_type.clone()),
                lifecycle: Some(lifecycle),
                limit: Some(0),
                ..SubscriptionQuery::default()
            };
            match store.list_subscriptions(&query).await {
                Ok(page) => counts.push(page.total),
                Err(error) => return refused(Some(&session), error.into()),
            }
        }
        rows.push(context! { product_type => product_type.as_str(), counts });
    }
    let awaiting = match state.registration.list_pending().await {
        Ok(pending) => pending
            .iter()
            .filter(|registration| registration.status == "confirmed")
            .count(),
        Err(error) => return refused(Some(&session), error.into()),
    };
    let lifecycles: Vec<&str> = Lifecycle::ALL
        .iter()
        .map(|lifecycle| lifecycle.as_str())
        .collect();
    render(
        StatusCode::OK,
        "dashboard.html",
        context! { me => me(Some(&session)), lifecycles, rows, awaiting },
    )
}
