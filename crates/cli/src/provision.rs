//! `cadre provision`: a bulk load run in the command itself, with a progress bar on a
//! terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use cadre_engine::Engine;
use cadre_provisioning::input::{read_user_groups, read_users};
use cadre_provisioning::{Format, LoadSettings, Mode as LoadMode, Provisioner, Rows};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::output::Output;

/// What a load provisions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ProvisionKind {
    /// Users: `user_id, firstname, lastname, email, auth_id, user_groups[, is_active]`.
    Users,
    /// User groups: `user_group_id, user_group_name, parent_user_groups[, is_active]`.
    Groups,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["full", "incremental"])))]
pub(crate) struct ProvisionArgs {
    /// Users or groups.
    kind: ProvisionKind,
    /// The file: `.csv` (list columns `|`-separated), `.json` (an array) or `.jsonl`.
    file: PathBuf,
    /// The file is the whole truth: create, update, and remove what it does not list.
    #[arg(long)]
    full: bool,
    /// The file lists changes: upsert rows with `is_active` true, remove those with false.
    #[arg(long)]
    incremental: bool,
    /// Only plan: print what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply a full load even when it removes more than 20% of what loads manage.
    #[arg(long)]
    force: bool,
}

/// Reads, validates and runs a load, with a progress bar on a terminal and plain lines
/// otherwise, then prints its report. A failed load is an error.
pub(crate) async fn provision(
    provisioner: &Provisioner,
    engine: &Engine,
    output: &Output,
    args: ProvisionArgs,
) -> Result<()> {
    let format = Format::from_path(&args.file).ok_or_else(|| {
        anyhow!(
            "{}: name the file .csv, .json or .jsonl so that its format is known",
            args.file.display()
        )
    })?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let reader = std::io::BufReader::new(file);
    let mode = if args.full {
        LoadMode::Full
    } else {
        LoadMode::Incremental
    };
    let rows = match args.kind {
        ProvisionKind::Users => read_users(reader, format, mode).map(Rows::Users),
        ProvisionKind::Groups => read_user_groups(reader, format, mode).map(Rows::UserGroups),
    }
    .map_err(|errors| anyhow!("{}: nothing was loaded:\n{errors}", args.file.display()))?;
    let mut settings = LoadSettings::new(mode);
    settings.dry_run = args.dry_run;
    settings.force = args.force;
    settings.protected = provisioner.protected_users(None).await?;
    let process = provisioner.start(&rows, settings, "cli").await?;

    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_until_idle().await })
    };
    let progress = Progress::new(output.json);
    while !runner.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        progress.show(&engine.store().process(process.id).await?);
    }
    runner.await.context("the load's worker panicked")??;
    let report = provisioner.report(process.id).await?;
    progress.finish(&engine.store().process(process.id).await?);
    let failed = report.failed_reason.clone();
    output.load(&report.into());
    match failed {
        Some(reason) => Err(anyhow!("the load failed: {reason}")),
        None => Ok(()),
    }
}

/// A load's progress: a bar on a terminal, a line per applied batch otherwise.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    shown: std::cell::Cell<u64>,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} batches ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("planning");
            bar
        });
        Self {
            bar,
            shown: std::cell::Cell::new(0),
        }
    }

    fn show(&self, process: &cadre_domain::Process) {
        let count = |key: &str| process.state.get(key).and_then(Value::as_u64).unwrap_or(0);
        let (applied, batches) = (count("applied"), count("batches"));
        match &self.bar {
            Some(bar) => {
                bar.set_length(batches);
                bar.set_position(applied);
                if process.state.contains_key("batches") {
                    bar.set_message("applying");
                }
            }
            None if applied > self.shown.get() => {
                eprintln!("applied batch {applied} of {batches}");
            }
            None => {}
        }
        self.shown.set(applied);
    }

    fn finish(&self, process: &cadre_domain::Process) {
        self.show(process);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
