//! cadre's web UI: pages for people and admins, rendered on the server.
//!
//! Plain links and forms work without JavaScript; htmx (vendored in `assets/`, served from
//! `/assets/`) adds partial updates where a page has them. Every page is sent with a strict
//! Content-Security-Policy (scripts and styles from this site only, no inline script), no
//! caching and no referrer; every form carries a CSRF token: the session's for a signed-in
//! person, a form cookie's before sign-in (double submit). Sessions are those of the API
//! (`cadre_accounts`), so signing in here signs in there.
//!
//! [`pages`] is what `cadre serve` adds to the server (`cadre_server::Cadre::pages`):
//! - `/`: the profile when signed in, else the sign-in page;
//! - `/sign-in`, `/sign-out`, `/password-reset` and `/password-reset/{token}` (the page of the
//!   mailed reset link);
//! - `/sign-up` (while registration is on; the mailed links' pages are the server's
//!   `/tokens/{token}`), `/groups` (the discoverable groups: join, accepting their terms by a
//!   mailed link; leave);
//! - `/me` (profile and groups), `/me/password`, `/me/tokens` (make, shown once; revoke);
//! - `/workflow-groups` (the workflow groups a person belongs to, an admin's all: new ones,
//!   name and members, files uploaded, downloaded, deleted);
//! - `/admin` (admins: subscriptions by product and lifecycle, processes not done, registrations
//!   awaiting a decision, the outbox's backlog), `/admin/subscriptions` (search, filter, page; a
//!   subscription's domain model, processes and the workflows that can run on it),
//!   `/admin/processes` (a process's steps, live while it runs; retry, skip, abort, and resume
//!   with the form a suspended one waits for), `/admin/registrations` (approve, decline),
//!   `/admin/loads` (bulk loads: upload, the dry run's plan, apply, progress, the report as
//!   CSV), `/admin/targets` (outbound targets: new, settings and credential, the last push
//!   errors, a reconcile started, removal), `/admin/tokens` (every API token; revoke), a user's roles on their subscription's
//!   page, `/admin/audit`, `/admin/workflows` (any workflow started through its form, page by page
//!   with back and next, drawn by one generic renderer from the pydantic-forms schema).

mod account;
mod admin;
mod forms;
mod loads;
mod page;
mod people;
mod registrations;
mod start;
mod targets;
mod users;
mod workflow_groups;

use axum::Router;
use axum::routing::{get, post};
use cadre_server::AppState;

/// Every page of the UI and its assets.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(account::home))
        .route(
            "/sign-in",
            get(account::sign_in_page).post(account::sign_in),
        )
        .route("/sign-out", post(account::sign_out))
        .route("/sign-up", get(people::sign_up_page).post(people::sign_up))
        .route("/groups", get(people::groups))
        .route("/groups/{id}/{change}", post(people::membership))
        .route(
            "/password-reset",
            get(account::reset_request_page).post(account::request_reset),
        )
        .route(
            "/password-reset/{token}",
            get(account::reset_page).post(account::reset),
        )
        .route("/me", get(account::profile))
        .route(
            "/me/password",
            get(account::password_page).post(account::change_password),
        )
        .route(
            "/me/tokens",
            get(account::tokens_page).post(account::create_token),
        )
        .route("/me/tokens/{id}/revoke", post(account::revoke_token))
        .route("/admin", get(admin::dashboard))
        .route("/admin/subscriptions", get(admin::subscriptions))
        .route("/admin/subscriptions/{id}", get(admin::subscription))
        .route("/admin/processes", get(admin::processes))
        .route("/admin/processes/{id}", get(admin::process))
        .route(
            "/admin/processes/{id}/resume",
            get(start::resume_first).post(start::resume_next),
        )
        .route("/admin/processes/{id}/{action}", post(admin::act))
        .route("/admin/registrations", get(registrations::registrations))
        .route(
            "/admin/registrations/{name}/{decision}",
            post(registrations::decide),
        )
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users/{id}/roles", post(users::set_roles))
        .route("/admin/tokens", get(users::tokens))
        .route("/admin/tokens/{id}/revoke", post(users::revoke))
        .route("/admin/loads", get(loads::loads).post(loads::upload))
        .route("/admin/loads/{id}", get(loads::load))
        .route("/admin/loads/{id}/again", post(loads::again))
        .route("/admin/loads/{id}/report.csv", get(loads::report_csv))
        .route(
            "/admin/targets",
            get(targets::targets).post(targets::create),
        )
        .route(
            "/admin/targets/{id}",
            get(targets::target).post(targets::change),
        )
        .route("/admin/targets/{id}/remove", post(targets::remove))
        .route("/admin/targets/{id}/reconcile", post(targets::reconcile))
        .route("/admin/workflows", get(start::workflows))
        .route(
            "/admin/workflows/{name}",
            get(start::first).post(start::next),
        )
        .route(
            "/workflow-groups",
            get(workflow_groups::groups).post(workflow_groups::create),
        )
        .route(
            "/workflow-groups/{id}",
            get(workflow_groups::group).post(workflow_groups::change),
        )
        .route(
            "/workflow-groups/{id}/delete",
            post(workflow_groups::delete),
        )
        .route("/workflow-groups/{id}/files", post(workflow_groups::upload))
        .route(
            "/workflow-groups/{id}/files/{file_id}",
            get(workflow_groups::download),
        )
        .route(
            "/workflow-groups/{id}/files/{file_id}/delete",
            post(workflow_groups::delete_file),
        )
        .route("/assets/{name}", get(page::asset))
}
