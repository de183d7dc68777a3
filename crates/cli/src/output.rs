//! What commands print: tables for people, JSON for scripts.

use cadre_domain::ApiToken;
use cadre_domain::Connection;
use cadre_domain::outbound::ReconcileReport;
use cadre_server::api::audit::AuditPageSchema;
use cadre_server::api::groups::{FileSchema, GroupSchema};
use cadre_server::api::processes::{ProcessDetail, ProcessPage};
use cadre_server::api::provisioning::LoadReportSchema;
use cadre_server::api::subscriptions::{SubscriptionDetail, SubscriptionPage};
use cadre_server::api::targets::TargetSchema;
use cadre_server::api::workflows::WorkflowSchema;
use cadre_server::auth::IssuedToken;
use chrono::{DateTime, Utc};
use comfy_table::Table;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

/// The output format.
pub struct Output {
    /// JSON instead of tables.
    pub json: bool,
}

/// A token as listed: never its hash.
#[derive(Serialize)]
struct TokenView<'a> {
    id: Uuid,
    name: &'a str,
    role: &'a str,
    user_id: Option<Uuid>,
    created_by: &'a str,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a ApiToken> for TokenView<'a> {
    fn from(token: &'a ApiToken) -> Self {
        Self {
            id: token.id,
            name: &token.name,
            role: token.role.as_str(),
            user_id: token.user_id,
            created_by: &token.created_by,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
            expires_at: token.expires_at,
        }
    }
}

fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
    let mut table = Table::new();
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("error: cannot render JSON: {error}"),
    }
}

fn time(epoch: f64) -> String {
    DateTime::from_timestamp_millis((epoch * 1000.0) as i64)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl Output {
    /// A one-line outcome.
    pub fn message(&self, text: &str) {
        if self.json {
            print_json(&json!({ "message": text }));
        } else {
            println!("{text}");
        }
    }

    /// A load's report: its counts, then every row that is not unchanged.
    pub fn load(&self, report: &LoadReportSchema) {
        if self.json {
            print_json(report);
            return;
        }
        let counts = &report.counts;
        let plan = if report.dry_run {
            " (dry run: planned, nothing written)"
        } else {
            ""
        };
        println!(
            "load {} {}{plan}: {} created, {} updated, {} unchanged, {} removed, {} skipped, {} failed",
            report.process_id,
            report.status,
            counts.created,
            counts.updated,
            counts.unchanged,
            counts.removed,
            counts.skipped,
            counts.failed
        );
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .filter(|row| row.outcome != "unchanged")
            .map(|row| {
                vec![
                    row.row.map(|row| row.to_string()).unwrap_or_default(),
                    row.id.clone(),
                    row.outcome.clone(),
                    row.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            println!("{}", table(&["row", "id", "outcome", "reason"], rows));
        }
    }

    /// A new process's id.
    pub fn created(&self, id: Uuid) {
        if self.json {
            print_json(&json!({ "id": id }));
        } else {
            println!("process {id} created");
        }
    }

    /// A token just created, with its one-time secret.
    pub fn token_created(&self, issued: &IssuedToken) {
        if self.json {
            let mut view = serde_json::to_value(TokenView::from(&issued.token)).unwrap_or_default();
            view["token"] = json!(issued.plain);
            print_json(&view);
        } else {
            println!("{}", issued.plain);
            eprintln!(
                "token {} ({}, {}) created; it is shown only this once",
                issued.token.id, issued.token.name, issued.token.role
            );
        }
    }

    /// Tokens.
    pub fn tokens(&self, tokens: &[ApiToken]) {
        if self.json {
            print_json(&tokens.iter().map(TokenView::from).collect::<Vec<_>>());
            return;
        }
        let rows = tokens.iter().map(|token| {
            vec![
                token.id.to_string(),
                token.name.clone(),
                token.role.to_string(),
                token
                    .user_id
                    .map(|user| user.to_string())
                    .unwrap_or_default(),
                token.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                token.expires_at.map_or_else(
                    || "never".to_owned(),
                    |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ),
                token
                    .revoked_at
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
            ]
        });
        println!(
            "{}",
            table(
                &[
                    "id", "name", "role", "user", "created", "expires", "revoked"
                ],
                rows
            )
        );
    }

    /// Targets, never a credential.
    pub fn targets(&self, targets: &[TargetSchema]) {
        if self.json {
            print_json(&targets);
            return;
        }
        let rows = targets.iter().map(|target| {
            let (kind, address) = match &target.connection {
                Connection::Scim { base_url, .. } => ("scim", base_url),
                Connection::Ldap { url, .. } => ("ldap", url),
            };
            vec![
                target.id.to_string(),
                target.name.clone(),
                kind.to_owned(),
                address.clone(),
                target.mode.as_str().to_owned(),
                target.deprovision.as_str().to_owned(),
            ]
        });
        println!(
            "{}",
            table(
                &["id", "name", "kind", "address", "mode", "deprovision"],
                rows
            )
        );
    }

    /// A reconcile's report: its counts, then every object changed (or, in a dry run, to
    /// change).
    pub fn reconcile(&self, report: &ReconcileReport) {
        if self.json {
            print_json(report);
            return;
        }
        let plan = if report.dry_run {
            " (dry run: planned, nothing changed)"
        } else {
            ""
        };
        println!(
            "reconcile{plan}: {} created, {} updated, {} removed, {} unchanged, {} failed, {} not cadre's (left alone)",
            report.created,
            report.updated,
            report.removed,
            report.unchanged,
            report.failed,
            report.foreign
        );
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|row| {
                vec![
                    row.kind.clone(),
                    row.external_id.clone(),
                    format!("{:?}", row.action).to_lowercase(),
                    row.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            println!("{}", table(&["kind", "id", "action", "error"], rows));
        }
    }

    /// Workflows.
    pub fn workflows(&self, workflows: &[WorkflowSchema]) {
        if self.json {
            print_json(&workflows);
            return;
        }
        let rows = workflows.iter().map(|workflow| {
            vec![
                workflow.name.clone(),
                workflow.target.clone(),
                workflow.product_types.join(", "),
                workflow.description.clone(),
            ]
        });
        println!(
            "{}",
            table(&["name", "target", "products", "description"], rows)
        );
    }

    /// A page of the audit log.
    pub fn audit(&self, page: &AuditPageSchema) {
        if self.json {
            print_json(page);
            return;
        }
        let rows = page.items.iter().map(|event| {
            vec![
                time(event.at),
                event.action.clone(),
                event.outcome.clone(),
                event.actor.clone(),
                event.client_addr.clone().unwrap_or_default(),
                event.target.clone().unwrap_or_default(),
                event.detail.clone().unwrap_or_default(),
            ]
        });
        println!(
            "{}",
            table(
                &[
                    "at", "action", "outcome", "actor", "address", "target", "detail"
                ],
                rows
            )
        );
        if let Some(next) = page.next {
            println!("more: --after {next}");
        }
    }

    /// A page of processes.
    pub fn processes(&self, page: &ProcessPage) {
        if self.json {
            print_json(page);
            return;
        }
        let rows = page.items.iter().map(|process| {
            vec![
                process.process_id.to_string(),
                process.workflow_name.clone(),
                process.last_status.clone(),
                process.last_step.clone().unwrap_or_default(),
                process.created_by.clone(),
                time(process.started_at),
            ]
        });
        println!(
            "{}",
            table(
                &["id", "workflow", "status", "last step", "by", "started"],
                rows
            )
        );
        println!("{} of {} shown", page.items.len(), page.total);
    }

    /// One process with its steps.
    pub fn process(&self, detail: &ProcessDetail) {
        if self.json {
            print_json(detail);
            return;
        }
        let process = &detail.process;
        println!("process   {}", process.process_id);
        println!(
            "workflow  {} ({})",
            process.workflow_name, process.workflow_target
        );
        println!("status    {}", process.last_status);
        println!("by        {}", process.created_by);
        if let Some(reason) = &process.failed_reason {
            println!("failed    {reason}");
        }
        for subscription in &detail.subscriptions {
            println!("touches   {subscription}");
        }
        let rows = detail.steps.iter().map(|step| {
            vec![
                step.name.clone(),
                step.status.clone(),
                step.completed.map(time).unwrap_or_default(),
            ]
        });
        println!("{}", table(&["step", "status", "completed"], rows));
        if let Some(form) = &detail.form {
            println!(
                "waiting for input:\n{}",
                serde_json::to_string_pretty(form).unwrap_or_default()
            );
        }
    }

    /// A page of subscriptions.
    pub fn subscriptions(&self, page: &SubscriptionPage) {
        if self.json {
            print_json(page);
            return;
        }
        let rows = page.items.iter().map(|subscription| {
            vec![
                subscription.subscription_id.to_string(),
                subscription.description.clone(),
                subscription.product_name.clone(),
                subscription.status.clone(),
                if subscription.insync { "yes" } else { "no" }.to_owned(),
            ]
        });
        println!(
            "{}",
            table(&["id", "description", "product", "status", "in sync"], rows)
        );
        println!("{} of {} shown", page.items.len(), page.total);
    }

    /// One subscription with its domain model.
    pub fn subscription(&self, detail: &SubscriptionDetail) {
        if self.json {
            print_json(detail);
            return;
        }
        let subscription = &detail.subscription;
        println!("subscription  {}", subscription.subscription_id);
        println!("description   {}", subscription.description);
        println!(
            "product       {} ({})",
            subscription.product_name, subscription.product_type
        );
        println!(
            "status        {} (in sync: {})",
            subscription.status, subscription.insync
        );
        println!(
            "domain model\n{}",
            serde_json::to_string_pretty(&detail.domain_model).unwrap_or_default()
        );
    }

    /// Workflow groups.
    pub fn groups(&self, groups: &[GroupSchema]) {
        if self.json {
            print_json(&json!({ "items": groups }));
            return;
        }
        let rows = groups.iter().map(|group| {
            vec![
                group.id.clone(),
                group.workflow.clone(),
                group.name.clone(),
                group.owner.to_string(),
                group.members.len().to_string(),
            ]
        });
        println!(
            "{}",
            table(&["id", "workflow", "name", "owner", "members"], rows)
        );
    }

    /// One workflow group.
    pub fn group(&self, group: &GroupSchema) {
        if self.json {
            print_json(group);
            return;
        }
        println!("group     {}", group.id);
        println!("name      {}", group.name);
        println!("workflow  {}", group.workflow);
        println!("owner     {}", group.owner);
        for member in &group.members {
            println!("member    {member}");
        }
        println!("created   {}", time(group.created_at));
    }

    /// Files of a workflow group.
    pub fn files(&self, files: &[FileSchema]) {
        if self.json {
            print_json(&json!({ "items": files }));
            return;
        }
        let rows = files.iter().map(|file| {
            vec![
                file.id.to_string(),
                file.name.clone(),
                file.mime_type.clone().unwrap_or_default(),
                file.size.to_string(),
                time(file.created_at),
            ]
        });
        println!(
            "{}",
            table(&["id", "name", "media type", "bytes", "uploaded"], rows)
        );
    }
}
