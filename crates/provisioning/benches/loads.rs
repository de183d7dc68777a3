//! Provisioning loads: a full load of N users in G groups into an empty database against a raw
//! bulk insert of the same rows (one transaction, multi-row inserts), the same full load again
//! (nothing changes), and an incremental load of K rows against a database holding M users.
//!
//! `cargo xtask bench provisioning` runs it; by hand:
//! `BENCH_USERS=100000 BENCH_GROUPS=1000 BENCH_BASE_USERS=1000000 BENCH_INCREMENTAL=1000 cargo bench -p cadre-provisioning --bench loads`.
//! Without `BENCH_DATABASE_URL` each database is a fresh SQLite file in the temp dir; with
//! `BENCH_DATABASE_URL=postgres://…` each is a new database on that server. Each is removed
//! afterwards unless `BENCH_KEEP_DB=1`.
//!
//! Every phase runs in its own child process (this binary, with `BENCH_PHASE` set), so that its
//! peak memory is its own: the figure is the growth of the peak resident set (`VmHWM`, reset
//! through `/proc/self/clear_refs` when the phase starts) over the resident set at its start.
//! (A counting global allocator would need `unsafe`, which the workspace lints forbid.)
//! Every load's report is checked, so a broken load cannot produce a fast figure.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use cadre_domain::{
    CatalogueRepository, Email, ExternalId, Name, ProcessRepository, ProcessStatus, Store,
    SubscriptionRepository, SystemClock,
};
use cadre_engine::{Engine, EngineConfig};
use cadre_migrations::demo::{
    CATALOGUE, DEFAULT_CUSTOMER_ID, USER_BLOCK_ID, USER_GROUP_BLOCK_ID, USER_GROUP_PRODUCT_ID,
    USER_INTERNAL_PRODUCT_ID,
};
use cadre_products::models::{Affiliation, user_description, user_group_description};
use cadre_provisioning::{LoadReport, LoadSettings, Mode, Provisioner, Rows, UserRow, workflows};
use cadre_store::SeaStore;
use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::Value;
use uuid::Uuid;

/// Rows per multi-row insert statement of the raw bulk insert.
const INSERT_ROWS: usize = 500;
/// Seeded users per transaction (the seed of M users commits in parts, so that the SQLite WAL
/// stays small).
const SEED_TRANSACTION: usize = 100_000;

/// The targets.
const LOAD_VS_RAW: f64 = 3.0;
const RELOAD_SHARE: f64 = 0.2;
const INCREMENTAL_S: f64 = 1.0;
const INCREMENTAL_MIB: f64 = 300.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The sizes of a run, from `BENCH_*`.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    users: usize,
    groups: usize,
    base_users: usize,
    incremental: usize,
}

impl Sizes {
    fn from_env() -> Self {
        let sizes = Self {
            users: env_or("BENCH_USERS", 100_000),
            groups: env_or("BENCH_GROUPS", 1_000).max(1),
            base_users: env_or("BENCH_BASE_USERS", 1_000_000),
            incremental: env_or("BENCH_INCREMENTAL", 1_000),
        };
        let (updates, _, removals) = sizes.incremental_plan();
        assert!(
            updates + removals <= sizes.base_users,
            "the incremental load changes {} existing users; BENCH_BASE_USERS is {}",
            updates + removals,
            sizes.base_users
        );
        sizes
    }

    /// Updates, creations and removals of the incremental load: 50%, 40%, 10%.
    fn incremental_plan(&self) -> (usize, usize, usize) {
        let updates = self.incremental / 2;
        let creates = self.incremental * 2 / 5;
        (updates, creates, self.incremental - updates - creates)
    }
}

// ---------------------------------------------------------------------------------------------
// The data: user n is `user{n}` in group `group{n % G}`.

fn user_id(n: usize) -> String {
    format!("user{n}")
}

fn group_id(n: usize) -> String {
    format!("group{n}")
}

fn firstname(n: usize) -> String {
    format!("First{}", n % 997)
}

fn lastname(n: usize, changed: bool) -> String {
    if changed {
        format!("Changed{n}")
    } else {
        format!("Last{n}")
    }
}

fn email(n: usize) -> String {
    format!("user{n}@example.org")
}

fn auth_id(n: usize) -> String {
    format!("sso|{n}")
}

fn user_row(row: u64, n: usize, groups: usize, changed: bool, active: bool) -> UserRow {
    UserRow {
        row,
        user_id: ExternalId::parse(&user_id(n)).unwrap(),
        firstname: Some(Name::parse(&firstname(n)).unwrap()),
        lastname: Some(Name::parse(&lastname(n, changed)).unwrap()),
        email: Some(Email::parse(&email(n)).unwrap()),
        auth_id: Some(auth_id(n)),
        user_groups: vec![ExternalId::parse(&group_id(n % groups)).unwrap()],
        active,
        username: None,
        employment: None,
        disabled: false,
    }
}

/// The rows of the full load: every user, numbered as CSV lines.
fn full_rows(sizes: &Sizes) -> Vec<UserRow> {
    (0..sizes.users)
        .map(|n| user_row(n as u64 + 2, n, sizes.groups, false, true))
        .collect()
}

/// The rows of the incremental load: updates (new last name) and removals of existing users
/// spread over the M seeded ones, and new users after them.
fn incremental_rows(sizes: &Sizes) -> Vec<UserRow> {
    let (updates, creates, removals) = sizes.incremental_plan();
    let stride = (sizes.base_users / (updates + removals).max(1)).max(1);
    let mut rows = Vec::with_capacity(sizes.incremental);
    for k in 0..updates + removals {
        let n = k * stride;
        let update = k < updates;
        rows.push(user_row(0, n, sizes.groups, update, update));
    }
    for k in 0..creates {
        rows.push(user_row(0, sizes.base_users + k, sizes.groups, false, true));
    }
    for (row, user) in (2..).zip(rows.iter_mut()) {
        user.row = row;
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// Databases.

async fn migrated(url: &str) -> DatabaseConnection {
    let conn = cadre_store::connect(url).await.unwrap();
    cadre_store::migrate(&conn).await.unwrap();
    conn
}

async fn count(conn: &DatabaseConnection, table: &str) -> i64 {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            backend,
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

const TABLES: [&str; 4] = [
    "subscriptions",
    "subscription_instances",
    "subscription_instance_values",
    "subscription_instance_relations",
];

// ---------------------------------------------------------------------------------------------
// The raw bulk insert: the rows a load writes, straight into the tables.

fn resource_type(block: Uuid, name: &str) -> Uuid {
    CATALOGUE
        .blocks
        .iter()
        .find(|candidate| candidate.id == block)
        .and_then(|block| block.resource_types.iter().find(|rt| rt.name == name))
        .map(|rt| rt.id)
        .unwrap_or_else(|| panic!("no resource type {name}"))
}

/// Resource type ids, and whether each is unique, of the user and group values.
struct ResourceTypes {
    user: Vec<(Uuid, bool)>,
    group: Vec<(Uuid, bool)>,
}

impl ResourceTypes {
    fn new() -> Self {
        let of = |block: Uuid, names: &[&str]| {
            let definition = CATALOGUE.blocks.iter().find(|b| b.id == block).unwrap();
            names
                .iter()
                .map(|name| {
                    let unique = definition
                        .resource_types
                        .iter()
                        .find(|rt| rt.name == *name)
                        .unwrap()
                        .unique;
                    (resource_type(block, name), unique)
                })
                .collect()
        };
        Self {
            user: of(
                USER_BLOCK_ID,
                &[
                    "user_id",
                    "username",
                    "firstname",
                    "lastname",
                    "email",
                    "auth_id",
                ],
            ),
            group: of(
                USER_GROUP_BLOCK_ID,
                &["user_group_id", "user_group_name", "discoverable"],
            ),
        }
    }
}

/// Rows for one table, inserted with multi-row statements of [`INSERT_ROWS`] rows.
struct Inserter {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Expr>>,
}

impl Inserter {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            table,
            columns,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, values: Vec<Expr>) {
        self.rows.push(values);
    }

    async fn flush(&mut self, conn: &impl ConnectionTrait) {
        let mut rows = std::mem::take(&mut self.rows).into_iter().peekable();
        while rows.peek().is_some() {
            let mut statement = Query::insert()
                .into_table(Alias::new(self.table))
                .columns(self.columns.iter().map(|column| Alias::new(*column)))
                .to_owned();
            for values in rows.by_ref().take(INSERT_ROWS) {
                statement.values_panic(values);
            }
            conn.execute(&statement).await.unwrap();
        }
    }
}

/// The four tables a load writes, in foreign-key order.
struct Tables {
    subscriptions: Inserter,
    instances: Inserter,
    values: Inserter,
    relations: Inserter,
}

impl Tables {
    fn new() -> Self {
        Self {
            subscriptions: Inserter::new(
                "subscriptions",
                &[
                    "id",
                    "product_id",
                    "customer_id",
                    "description",
                    "status",
                    "insync",
                    "start_date",
                    "end_date",
                    "note",
                    "version",
                ],
            ),
            instances: Inserter::new(
                "subscription_instances",
                &["id", "subscription_id", "product_block_id", "label"],
            ),
            values: Inserter::new(
                "subscription_instance_values",
                &[
                    "id",
                    "subscription_instance_id",
                    "resource_type_id",
                    "position",
                    "value",
                    "unique_value",
                ],
            ),
            relations: Inserter::new(
                "subscription_instance_relations",
                &[
                    "in_use_by_id",
                    "depends_on_id",
                    "domain_model_attr",
                    "position",
                ],
            ),
        }
    }

    /// Flushes every table, parents first.
    async fn flush(&mut self, conn: &impl ConnectionTrait) {
        self.subscriptions.flush(conn).await;
        self.instances.flush(conn).await;
        self.values.flush(conn).await;
        self.relations.flush(conn).await;
    }

    /// One active, in-sync subscription with its block instance and values; returns the
    /// instance id.
    #[allow(clippy::too_many_arguments)]
    fn subscription(
        &mut self,
        product: Uuid,
        block: Uuid,
        description: String,
        now: DateTime<FixedOffset>,
        types: &[(Uuid, bool)],
        values: &[String],
    ) -> Uuid {
        let id = Uuid::now_v7();
        let instance = Uuid::now_v7();
        self.subscriptions.push(vec![
            id.into(),
            product.into(),
            DEFAULT_CUSTOMER_ID.into(),
            description.into(),
            "active".into(),
            true.into(),
            Some(now).into(),
            Option::<DateTime<FixedOffset>>::None.into(),
            Option::<String>::None.into(),
            1_i64.into(),
        ]);
        self.instances.push(vec![
            instance.into(),
            id.into(),
            block.into(),
            Option::<String>::None.into(),
        ]);
        for ((resource_type, unique), value) in types.iter().zip(values) {
            self.values.push(vec![
                Uuid::now_v7().into(),
                instance.into(),
                (*resource_type).into(),
                0_i64.into(),
                value.clone().into(),
                unique.then(|| value.clone()).into(),
            ]);
        }
        instance
    }
}

/// Inserts groups `0..groups` unless `group_instances` already holds their instance ids
/// (filling it), then users `users`, all in one transaction: [`INSERT_ROWS`] users at a time,
/// each table's rows in multi-row statements, parents first.
async fn raw_insert(
    conn: &DatabaseConnection,
    groups: usize,
    group_instances: &mut Vec<Uuid>,
    users: std::ops::Range<usize>,
) {
    let types = ResourceTypes::new();
    let now = Utc::now().fixed_offset();
    let txn = conn.begin().await.unwrap();
    let mut tables = Tables::new();
    if group_instances.is_empty() {
        for n in 0..groups {
            let id = group_id(n);
            let name = Name::parse(&id).unwrap();
            let instance = tables.subscription(
                USER_GROUP_PRODUCT_ID,
                USER_GROUP_BLOCK_ID,
                user_group_description(&name),
                now,
                &types.group,
                &[id.clone(), id, "false".to_owned()],
            );
            group_instances.push(instance);
        }
        tables.flush(&txn).await;
    }
    for n in users {
        let group = n % groups;
        let username = Name::parse(&user_id(n)).unwrap();
        let group_name = Name::parse(&group_id(group)).unwrap();
        let instance = tables.subscription(
            USER_INTERNAL_PRODUCT_ID,
            USER_BLOCK_ID,
            user_description(&username, &[&group_name], Affiliation::Internal),
            now,
            &types.user,
            &[
                user_id(n),
                user_id(n),
                firstname(n),
                lastname(n, false),
                email(n),
                auth_id(n),
            ],
        );
        tables.relations.push(vec![
            instance.into(),
            group_instances[group].into(),
            "groups".into(),
            0_i64.into(),
        ]);
        if tables.relations.rows.len() == INSERT_ROWS {
            tables.flush(&txn).await;
        }
    }
    tables.flush(&txn).await;
    txn.commit().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Memory: the peak resident set of this process during a phase.

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// The resident set when a phase started, with the peak reset to it.
struct Peak {
    start_kib: Option<u64>,
}

impl Peak {
    fn start() -> Self {
        // `5` resets VmHWM to the current resident set (Linux 4.0+).
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        if !reset {
            eprintln!("warning: cannot reset the peak resident set; peaks include earlier work");
        }
        Self {
            start_kib: status_kib("VmRSS:"),
        }
    }

    /// Growth of the peak over the start, in MiB (negative when unknown).
    fn growth_mib(&self) -> f64 {
        match (self.start_kib, status_kib("VmHWM:")) {
            (Some(start), Some(peak)) => peak.saturating_sub(start) as f64 / 1024.0,
            _ => -1.0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Phases, each run in a child process: `BENCH_PHASE=<phase> BENCH_PHASE_URL=<database>`.

/// A phase's figures, printed as one `RESULT key=value …` line.
type Figures = BTreeMap<String, f64>;

fn engine(store: &SeaStore) -> Engine {
    let mut registry = cadre_products::registry().unwrap();
    for workflow in workflows() {
        registry.register(workflow).unwrap();
    }
    Engine::new(
        Arc::new(store.clone()),
        registry,
        Arc::new(SystemClock),
        EngineConfig {
            worker_id: "bench".to_owned(),
            // A long step must not lose its claim.
            lease: TimeDelta::hours(1),
            ..EngineConfig::default()
        },
    )
}

/// Runs a load of `rows` and returns its report with its timings: the wall time of `start` and
/// running to idle, and the step log's time per step kind.
async fn load(
    phase: &str,
    store: &SeaStore,
    rows: Vec<UserRow>,
    mode: Mode,
) -> (LoadReport, Figures) {
    let engine = engine(store);
    let provisioner = Provisioner::new(engine.clone());
    let rows = Rows::Users(rows);
    // Untimed: open a connection and read the catalogue, as a running server already has.
    store.ping().await.unwrap();
    store.list_products().await.unwrap();
    eprintln!("[{phase}] loading");
    let peak = Peak::start();
    let started = Instant::now();
    let process = provisioner
        .start(&rows, LoadSettings::new(mode), "bench")
        .await
        .unwrap();
    let start_s = started.elapsed().as_secs_f64();
    engine.run_until_idle().await.unwrap();
    let wall_s = started.elapsed().as_secs_f64();
    let peak_mib = peak.growth_mib();
    let reported = Instant::now();
    let report = provisioner.report(process.id).await.unwrap();
    let report_call_s = reported.elapsed().as_secs_f64();
    assert_eq!(
        report.status,
        ProcessStatus::Completed,
        "{:?}",
        report.failed_reason
    );

    let mut figures = Figures::new();
    let log_steps = std::env::var("BENCH_STEPS").is_ok_and(|steps| steps == "1");
    for step in store.process_steps(process.id).await.unwrap() {
        let seconds = (step.completed_at - step.started_at).as_seconds_f64();
        if log_steps {
            eprintln!(
                "[{phase}] step {} ({:?}): {} .. {} = {seconds:.3} s",
                step.name, step.status, step.started_at, step.completed_at
            );
        }
        let key = match step.step_key.as_str() {
            "validate" | "plan" | "report" => step.step_key.clone(),
            key if key.starts_with("apply_batch") => {
                let max = figures.entry("apply_max_s".to_owned()).or_default();
                *max = max.max(seconds);
                "apply".to_owned()
            }
            // Done is logged with the times of the step before it.
            "done" => continue,
            _ => "other".to_owned(),
        };
        *figures.entry(format!("{key}_s")).or_default() += seconds;
    }
    let steps: f64 = ["validate_s", "plan_s", "apply_s", "report_s", "other_s"]
        .iter()
        .filter_map(|key| figures.get(*key))
        .sum();
    figures.insert("batches".to_owned(), report.batches as f64);
    figures.insert("wall_s".to_owned(), wall_s);
    figures.insert("start_s".to_owned(), start_s);
    figures.insert("between_steps_s".to_owned(), wall_s - start_s - steps);
    figures.insert("report_call_s".to_owned(), report_call_s);
    figures.insert("peak_mib".to_owned(), peak_mib);
    let counts = &report.counts;
    for (key, value) in [
        ("created", counts.created),
        ("updated", counts.updated),
        ("unchanged", counts.unchanged),
        ("removed", counts.removed),
        ("skipped", counts.skipped),
        ("failed", counts.failed),
    ] {
        figures.insert(key.to_owned(), value as f64);
    }
    eprintln!("[{phase}] {wall_s:.2} s, {:?}", report.counts);
    store.connection().clone().close().await.unwrap();
    (report, figures)
}

fn first_problem(report: &LoadReport) -> Option<String> {
    report
        .rows
        .iter()
        .find(|row| row.reason.is_some())
        .map(|row| format!("{row:?}"))
}

async fn phase(name: &str, url: &str, sizes: Sizes) -> Figures {
    match name {
        "raw" => {
            let conn = migrated(url).await;
            eprintln!(
                "[raw] inserting {} users in {} groups",
                sizes.users, sizes.groups
            );
            let peak = Peak::start();
            let started = Instant::now();
            raw_insert(&conn, sizes.groups, &mut Vec::new(), 0..sizes.users).await;
            let wall_s = started.elapsed().as_secs_f64();
            eprintln!("[raw] {wall_s:.2} s");
            conn.close().await.unwrap();
            Figures::from([
                ("wall_s".to_owned(), wall_s),
                ("peak_mib".to_owned(), peak.growth_mib()),
            ])
        }
        "seed" => {
            let conn = migrated(url).await;
            let peak = Peak::start();
            let started = Instant::now();
            let mut groups = Vec::new();
            let mut from = 0;
            while from < sizes.base_users || groups.is_empty() {
                let to = (from + SEED_TRANSACTION).min(sizes.base_users);
                raw_insert(&conn, sizes.groups, &mut groups, from..to).await;
                eprintln!(
                    "[seed] {to} of {} users ({:.0} s)",
                    sizes.base_users,
                    started.elapsed().as_secs_f64()
                );
                from = to;
            }
            let wall_s = started.elapsed().as_secs_f64();
            // Closing checkpoints the SQLite WAL, so that the next phase does not inherit it.
            conn.close().await.unwrap();
            Figures::from([
                ("wall_s".to_owned(), wall_s),
                ("peak_mib".to_owned(), peak.growth_mib()),
            ])
        }
        "load" | "reload" => {
            let store = SeaStore::new(if name == "load" {
                migrated(url).await
            } else {
                cadre_store::connect(url).await.unwrap()
            });
            let (report, figures) = load(name, &store, full_rows(&sizes), Mode::Full).await;
            let counts = &report.counts;
            let (created, unchanged) = if name == "load" {
                (sizes.users + sizes.groups, 0)
            } else {
                (0, sizes.users)
            };
            assert_eq!(
                (counts.created, counts.unchanged, counts.writes()),
                (created as u64, unchanged as u64, created as u64),
                "{name}: {counts:?}, first problem: {:?}",
                first_problem(&report)
            );
            figures
        }
        "incremental" => {
            let store = SeaStore::new(cadre_store::connect(url).await.unwrap());
            let rows = incremental_rows(&sizes);
            let (report, figures) = load(name, &store, rows, Mode::Incremental).await;
            let counts = &report.counts;
            let (updated, created, removed) = sizes.incremental_plan();
            assert_eq!(
                (
                    counts.updated,
                    counts.created,
                    counts.removed,
                    counts.unchanged + counts.skipped + counts.failed
                ),
                (updated as u64, created as u64, removed as u64, 0),
                "incremental: {counts:?}, first problem: {:?}",
                first_problem(&report)
            );
            figures
        }
        other => panic!("unknown phase {other}"),
    }
}

/// Runs `phase` on `url` in a child process and returns its figures.
fn child(phase: &str, url: &str) -> Figures {
    let output = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_PHASE", phase)
        .env("BENCH_PHASE_URL", url)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "phase {phase} failed");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("phase {phase} printed no result: {stdout}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.parse().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks between databases, and the table.

/// A record with its ids and instants blanked, to compare what two databases hold.
fn blanked(value: Value) -> Value {
    match value {
        Value::String(text) if Uuid::parse_str(&text).is_ok() => Value::String("<id>".into()),
        Value::String(text) if DateTime::parse_from_rfc3339(&text).is_ok() => {
            Value::String("<instant>".into())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(blanked).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, blanked(v))).collect())
        }
        other => other,
    }
}

async fn sample(conn: &DatabaseConnection, resource_type: &str, value: &str) -> Value {
    let store = SeaStore::new(conn.clone());
    let found = store
        .find_by_unique_values(resource_type, &[value.to_owned()])
        .await
        .unwrap();
    let [(_, id)] = found.as_slice() else {
        panic!("{resource_type} {value} is not stored once: {found:?}");
    };
    let record = store.load_subscription(*id).await.unwrap();
    blanked(serde_json::to_value(record).unwrap())
}

/// Checks that the raw insert wrote the same rows as the load: the same counts per table, and
/// the same user and group records but for ids and instants.
async fn check_same_rows(raw_url: &str, load_url: &str, sizes: &Sizes) {
    let raw = cadre_store::connect(raw_url).await.unwrap();
    let loaded = cadre_store::connect(load_url).await.unwrap();
    for table in TABLES {
        let (a, b) = (count(&raw, table).await, count(&loaded, table).await);
        assert_eq!(a, b, "{table}: the raw insert wrote {a} rows, the load {b}");
    }
    let last = sizes.users.saturating_sub(1);
    for (resource_type, value) in [
        ("user_id", user_id(0)),
        ("user_id", user_id(last)),
        ("user_group_id", group_id(0)),
    ] {
        let (a, b) = (
            sample(&raw, resource_type, &value).await,
            sample(&loaded, resource_type, &value).await,
        );
        assert_eq!(a, b, "{value} differs between the raw insert and the load");
    }
    raw.close().await.unwrap();
    loaded.close().await.unwrap();
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn get(figures: &Figures, key: &str) -> f64 {
    figures.get(key).copied().unwrap_or(0.0)
}

fn mib(value: f64) -> String {
    if value < 0.0 {
        "n/a".to_owned()
    } else {
        format!("{value:.0}")
    }
}

fn print_breakdown(name: &str, figures: &Figures) {
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
        get(figures, "wall_s"),
        get(figures, "start_s"),
        get(figures, "validate_s"),
        get(figures, "plan_s"),
        get(figures, "batches"),
        get(figures, "apply_s"),
        get(figures, "apply_max_s"),
        get(figures, "report_s") + get(figures, "other_s"),
        get(figures, "between_steps_s"),
    );
}

async fn orchestrate(sizes: Sizes) {
    let server = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"));
    let backend = if server.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    eprintln!("provisioning bench on {backend}: {sizes:?}");

    // Each database is removed when its guard goes, unless BENCH_KEEP_DB=1 keeps it.
    let keep = std::env::var("BENCH_KEEP_DB").is_ok_and(|keep| keep == "1");
    let mut kept = Vec::new();
    let mut done = |database: cadre_store::testing::ScratchDatabase| {
        if keep {
            kept.push(database.keep());
        }
    };
    let raw_db = cadre_store::testing::fresh_database_on(server.as_deref(), "cadre_bench").await;
    let raw = child("raw", raw_db.url());
    let load_db = cadre_store::testing::fresh_database_on(server.as_deref(), "cadre_bench").await;
    let first = child("load", load_db.url());
    let again = child("reload", load_db.url());
    check_same_rows(raw_db.url(), load_db.url(), &sizes).await;
    done(raw_db);
    done(load_db);
    let seed_db = cadre_store::testing::fresh_database_on(server.as_deref(), "cadre_bench").await;
    let seed = child("seed", seed_db.url());
    let incremental = child("incremental", seed_db.url());
    done(seed_db);
    if keep {
        eprintln!("kept {}", kept.join(", "));
    }

    let (n, g, m, k) = (
        sizes.users,
        sizes.groups,
        sizes.base_users,
        sizes.incremental,
    );
    let (updates, creates, removals) = sizes.incremental_plan();
    let raw_s = get(&raw, "wall_s");
    let first_s = get(&first, "wall_s");
    let again_s = get(&again, "wall_s");
    let incremental_s = get(&incremental, "wall_s");
    let incremental_mib = get(&incremental, "peak_mib");
    let seed_s = get(&seed, "wall_s");

    println!(
        "\ncadre provisioning loads: db={backend} N={n} users in G={g} groups; \
         incremental K={k} ({updates} updates, {creates} new, {removals} removals) on M={m} users\n"
    );
    println!("| measure | value | target | ratio | |");
    println!("|---|---|---|---|---|");
    println!(
        "| 1. full load, empty db (s) | {first_s:.2} | ≤ {LOAD_VS_RAW}× raw insert ({raw_s:.2} s) | {:.2}× raw | {} |",
        first_s / raw_s,
        verdict(first_s <= LOAD_VS_RAW * raw_s)
    );
    println!(
        "| 2. same full load again (s) | {again_s:.2} | ≤ {RELOAD_SHARE}× first load ({:.2} s) | {:.3}× first | {} |",
        RELOAD_SHARE * first_s,
        again_s / first_s,
        verdict(again_s <= RELOAD_SHARE * first_s)
    );
    println!(
        "| 3. incremental load on M users (s) | {incremental_s:.3} | < {INCREMENTAL_S} s | {:.2}× target | {} |",
        incremental_s / INCREMENTAL_S,
        verdict(incremental_s < INCREMENTAL_S)
    );
    println!(
        "| 4. incremental load peak RSS growth (MiB) | {} | < {INCREMENTAL_MIB} MiB | {:.2}× target | {} |",
        mib(incremental_mib),
        incremental_mib / INCREMENTAL_MIB,
        verdict((0.0..INCREMENTAL_MIB).contains(&incremental_mib))
    );

    println!("\n| phase | wall (s) | rows/s | peak RSS growth (MiB) |");
    println!("|---|---|---|---|");
    for (name, figures, rows) in [
        ("raw bulk insert of N users + G groups", &raw, n + g),
        ("full load (empty db)", &first, n + g),
        ("same full load again", &again, n),
        ("seed: raw insert of M users + G groups", &seed, m + g),
        ("incremental load", &incremental, k),
    ] {
        let wall = get(figures, "wall_s");
        println!(
            "| {name} | {wall:.3} | {:.0} | {} |",
            rows as f64 / wall,
            mib(get(figures, "peak_mib"))
        );
    }

    println!(
        "\nwhere the load time goes, from the step logs (s; between steps = claims and commits):\n"
    );
    println!(
        "| load | wall | start (store input) | validate | plan | batches | apply (sum) | apply (max) | report | between steps |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    print_breakdown("full load", &first);
    print_breakdown("full load again", &again);
    print_breakdown("incremental", &incremental);
    println!(
        "\nchecked: reports (created {} / unchanged {} / updated {updates} created {creates} removed {removals}), \
         the raw insert wrote the same rows as the load; seeding {m} users took {seed_s:.1} s",
        n + g,
        n
    );
}

fn main() {
    let sizes = Sizes::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("BENCH_PHASE") {
        Ok(name) => {
            let url = std::env::var("BENCH_PHASE_URL").unwrap();
            let figures = runtime.block_on(phase(&name, &url, sizes));
            let pairs: Vec<String> = figures
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            println!("RESULT {}", pairs.join(" "));
        }
        Err(_) => runtime.block_on(orchestrate(sizes)),
    }
}
