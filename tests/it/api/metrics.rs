//! `/metrics`: who may read it, and that what it counts follows what the server did.

use reqwest::StatusCode;
use serde_json::json;

use super::Server;

impl Server {
    /// `/metrics` read with `token`: the status and the text.
    async fn metrics(&self, token: Option<&str>) -> (StatusCode, String) {
        let mut request = self.client.get(format!("{}/metrics", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        if status == StatusCode::OK {
            assert_eq!(
                response.headers()["content-type"],
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            );
        }
        (status, response.text().await.unwrap())
    }
}

/// The value of the sample whose name and labels are `series`, if there is one.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn metrics_answer_admins_only() {
    let server = Server::start(0).await;
    let (status, _) = server.metrics(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.metrics(Some(&server.user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, text) = server.metrics(Some(&server.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_steps_processes_and_sign_in_failures() {
    let server = Server::start(1).await;
    let group = server.create_group("metrics", "Metrics").await;
    let (status, _) = server.get(&format!("/api/subscriptions/{group}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.get("/no/such/path").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = server
        .client
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"username": "nobody", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let (_, text) = server.metrics(Some(&server.admin)).await;
    // Routes by their template, never the path: the id is not a label value.
    assert_eq!(
        sample(
            &text,
            r#"cadre_http_requests_total{method="GET",route="/api/subscriptions/{subscription_id}",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains(&group), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"cadre_http_requests_total{method="GET",route="none",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"cadre_http_request_duration_seconds_count{method="GET",route="/api/subscriptions/{subscription_id}"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cadre_sign_in_failures_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"cadre_processes{status="completed"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"cadre_processes{status="failed"}"#),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "cadre_runnable_processes"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"cadre_outbox_backlog{status="waiting"}"#),
        Some(0.0),
        "{text}"
    );
    let step = r#"cadre_step_duration_seconds_count{workflow="create_user_group",step="create_subscription",status="success"}"#;
    assert_eq!(sample(&text, step), Some(1.0), "{text}");
}

#[tokio::test]
async fn waiting_processes_show_in_the_runnable_queue() {
    // No workers: the processes stay runnable.
    let server = Server::start(0).await;
    for name in ["one", "two"] {
        server
            .start_process(
                "create_user_group",
                json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                       {"user_group_id": name, "user_group_name": name}]),
            )
            .await;
    }
    let (_, text) = server.metrics(Some(&server.admin)).await;
    assert_eq!(
        sample(&text, "cadre_runnable_processes"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"cadre_processes{status="created"}"#),
        Some(2.0),
        "{text}"
    );
    let age = sample(&text, "cadre_oldest_runnable_process_age_seconds").unwrap();
    assert!((0.0..60.0).contains(&age), "{age}");
}
