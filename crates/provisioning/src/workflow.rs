//! The task workflows a load runs as: `init >> validate >> plan >> apply batch 1..n >>
//! report >> done`. Each batch commits with its step, so a load interrupted by a crash resumes
//! at its next unapplied batch.

use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::{
    ChunkPart, DomainError, LoadChunk, Name, ProductType, Repositories, State, SubscriptionQuery,
    Target,
};
use cadre_engine::standard::DEFAULT_CUSTOMER;
use cadre_engine::{
    Patch, StepContext, StepError, StepFn, Workflow, done, init, repeat_while, retry_step, step,
};
use cadre_forms::{Field, Form, FormPage};
use cadre_products::push::{PUSH_RETRY, changes_of, push_failure};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::apply::{Placement, apply_batch};
use crate::plan::{Change, Plan, plan_groups, plan_users};
use crate::report::{Counts, Outcome, RowReport};
use crate::settings::LoadSettings;
use crate::{Kind, LoadHeader};

/// The workflows of both kinds of load.
pub fn workflows() -> Vec<Workflow> {
    [Kind::Users, Kind::UserGroups]
        .into_iter()
        .map(workflow)
        .collect()
}

fn workflow(kind: Kind) -> Workflow {
    let form = Form::new().page(FormPage::new(kind.title()).field(Field::uuid("load_id")));
    Workflow {
        name: kind.workflow().to_owned(),
        description: kind.title().to_owned(),
        target: Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(form),
        steps: init()
            >> step("validate", "Validate input", Validate(kind))
            >> step("plan", "Plan changes", PlanChanges(kind))
            >> repeat_while(
                "apply_batch",
                "Apply batches",
                |state| !dry_run(state) && count(state, "applied") < count(state, "batches"),
                |state| {
                    format!(
                        "Apply batch {} of {}",
                        count(state, "applied") + 1,
                        count(state, "batches")
                    )
                },
                ApplyBatch,
            )
            >> step("report", "Report", Report)
            >> retry_step("push", "Push to targets", PUSH_RETRY, PushLoad)
            >> done(),
    }
}

fn count(state: &State, key: &str) -> u64 {
    state.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn dry_run(state: &State) -> bool {
    state
        .get("settings")
        .and_then(|settings| settings.get("dry_run"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn stored_json<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, StepError> {
    serde_json::from_value(value).map_err(|error| {
        StepError::inconsistent_data(format!("the stored {what} is invalid: {error}"))
    })
}

fn to_json(value: &impl Serialize) -> Result<Value, StepError> {
    serde_json::to_value(value).map_err(|error| StepError::new(error.to_string()))
}

/// The load's header and rows as stored before its process started.
pub(crate) async fn stored_input(
    repo: &dyn Repositories,
    load_id: Uuid,
) -> Result<(LoadHeader, Vec<Value>), StepError> {
    let mut chunks = repo
        .load_chunks(load_id, ChunkPart::Input)
        .await?
        .into_iter();
    let header = chunks.next().ok_or_else(|| {
        StepError::inconsistent_data(format!("no input is stored for load {load_id}"))
    })?;
    let header: LoadHeader = stored_json(header.content, "load header")?;
    let mut rows = Vec::with_capacity(usize::try_from(header.rows).unwrap_or_default());
    for chunk in chunks {
        let Value::Array(values) = chunk.content else {
            return Err(StepError::inconsistent_data(
                "a stored input chunk is not a list",
            ));
        };
        rows.extend(values);
    }
    Ok((header, rows))
}

fn parse_rows<T: DeserializeOwned>(rows: Vec<Value>) -> Result<Vec<T>, StepError> {
    rows.into_iter()
        .map(|row| stored_json(row, "input row"))
        .collect()
}

/// Checks that the stored input is this workflow's and whole: its kind, and as many rows as
/// its header says. The rows themselves were validated before they were stored; the plan step
/// parses them.
struct Validate(Kind);

#[async_trait]
impl StepFn for Validate {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let load_id: Uuid = ctx.get("load_id")?;
        let (header, rows) = stored_input(ctx.store, load_id).await?;
        if header.kind != self.0 {
            return Err(StepError::inconsistent_data(format!(
                "load {load_id} holds {}, not {}",
                header.kind.noun(),
                self.0.noun()
            )));
        }
        if u64::try_from(rows.len()).ok() != Some(header.rows) {
            return Err(StepError::inconsistent_data(format!(
                "load {load_id} should hold {} rows, and holds {}",
                header.rows,
                rows.len()
            )));
        }
        let mut patch = Patch::new();
        patch.insert("settings".to_owned(), to_json(&header.settings)?);
        patch.insert("rows".to_owned(), json!(header.rows));
        Ok(patch)
    }
}

struct PlanChanges(Kind);

#[async_trait]
impl StepFn for PlanChanges {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let load_id: Uuid = ctx.get("load_id")?;
        let settings: LoadSettings = ctx.get("settings")?;
        let repo = ctx.store;
        let (_, rows) = stored_input(repo, load_id).await?;
        let plan: Plan = match self.0 {
            Kind::Users => plan_users(repo, &parse_rows(rows)?, &settings).await?,
            Kind::UserGroups => plan_groups(repo, &parse_rows(rows)?, &settings).await?,
        };
        let mut planned: Vec<RowReport> = plan.settled.clone();
        let mut chunks = vec![LoadChunk {
            seq: 0,
            content: json!([]),
            report: Some(to_json(&plan.settled)?),
        }];
        for (seq, batch) in (1..).zip(&plan.batches) {
            planned.extend(batch.iter().map(Change::planned));
            chunks.push(LoadChunk {
                seq,
                content: to_json(batch)?,
                report: None,
            });
        }
        repo.add_load_chunks(load_id, ChunkPart::Batch, &chunks, ctx.now)
            .await?;
        let mut patch = Patch::new();
        patch.insert("batches".to_owned(), json!(plan.batches.len()));
        patch.insert("applied".to_owned(), json!(0));
        patch.insert("managed".to_owned(), json!(plan.managed));
        patch.insert("planned".to_owned(), to_json(&Counts::of(&planned))?);
        Ok(patch)
    }
}

struct ApplyBatch;

#[async_trait]
impl StepFn for ApplyBatch {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let load_id: Uuid = ctx.get("load_id")?;
        let settings: LoadSettings = ctx.get("settings")?;
        let repo = ctx.store;
        let chunk = repo
            .next_unreported_chunk(load_id, ChunkPart::Batch)
            .await?
            .ok_or_else(|| StepError::inconsistent_data("no batch is left to apply"))?;
        let changes: Vec<Change> = stored_json(chunk.content, "batch")?;
        let user_product = repo.product_by_name(&settings.user_product).await?;
        let group_product = repo
            .list_products()
            .await?
            .into_iter()
            .find(|product| product.product_type == ProductType::user_group())
            .ok_or_else(|| DomainError::invalid("product", "no UserGroup product exists"))?;
        let customer = repo
            .customer_by_name(&Name::parse(DEFAULT_CUSTOMER)?)
            .await?;
        let placement = Placement {
            user_product: &user_product,
            group_product: &group_product,
            customer_id: customer.id,
            managed: !settings.create_only,
        };
        let reports = apply_batch(repo, &changes, &placement, ctx.now).await?;
        repo.report_chunk(load_id, ChunkPart::Batch, chunk.seq, &to_json(&reports)?)
            .await?;
        let mut patch = Patch::new();
        patch.insert("applied".to_owned(), json!(chunk.seq));
        Ok(patch)
    }
}

/// Pushes what the load changed to the outbound targets, as the User and UserGroup workflows
/// push theirs (nothing in a dry run).
struct PushLoad;

#[async_trait]
impl StepFn for PushLoad {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        if dry_run(ctx.state) {
            return Ok(Patch::new());
        }
        let load_id: Uuid = ctx.get("load_id")?;
        let mut changed = Vec::new();
        for chunk in ctx.store.load_chunks(load_id, ChunkPart::Batch).await? {
            let Some(report) = chunk.report else { continue };
            let changes: Vec<Change> = stored_json(chunk.content, "batch")?;
            let reports: Vec<RowReport> = stored_json(report, "batch report")?;
            // A batch reports each of its changes, in order.
            changed.extend(changes.iter().zip(&reports).filter_map(|(change, report)| {
                matches!(
                    report.outcome,
                    Outcome::Created | Outcome::Updated | Outcome::Removed
                )
                .then_some(change.subscription_id)
            }));
        }
        // Every group too: a user the load moved out of one is in no record of it any more, and
        // a group the targets have already (the same fingerprint) costs no request.
        let groups = SubscriptionQuery {
            product_type: Some(ProductType::user_group()),
            ..SubscriptionQuery::default()
        };
        let groups = ctx.store.list_subscriptions(&groups).await?.items;
        changed.extend(groups.into_iter().map(|group| group.subscription.id));
        let changes = changes_of(ctx.store, &changed).await?;
        ctx.outbound
            .push(ctx.store, &changes)
            .await
            .map_err(push_failure)?;
        let mut patch = Patch::new();
        patch.insert("pushed".to_owned(), json!(changes.len()));
        Ok(patch)
    }
}

struct Report;

#[async_trait]
impl StepFn for Report {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let load_id: Uuid = ctx.get("load_id")?;
        let rows = report_rows(ctx.store, load_id, dry_run(ctx.state)).await?;
        let mut patch = Patch::new();
        patch.insert("report".to_owned(), to_json(&Counts::of(&rows))?);
        Ok(patch)
    }
}

/// The report rows of a load: what was settled at planning, then each applied batch's report,
/// or in a dry run each planned change.
pub(crate) async fn report_rows(
    repo: &dyn Repositories,
    load_id: Uuid,
    dry_run: bool,
) -> Result<Vec<RowReport>, StepError> {
    let mut rows = Vec::new();
    for chunk in repo.load_chunks(load_id, ChunkPart::Batch).await? {
        match chunk.report {
            Some(report) => rows.extend(stored_json::<Vec<RowReport>>(report, "batch report")?),
            None if dry_run => rows.extend(
                stored_json::<Vec<Change>>(chunk.content, "batch")?
                    .iter()
                    .map(Change::planned),
            ),
            None => {}
        }
    }
    Ok(rows)
}
