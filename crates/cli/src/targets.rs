//! `cadre target`: the applications cadre provisions into (`docs/outbound.md`).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};
use cadre_domain::outbound::{ReconcileOptions, ReconcileReport};
use cadre_domain::{Clock, Connection, Deprovision, SystemClock, TargetMode};
use cadre_engine::Engine;
use cadre_outbound::SealingKey;
use cadre_products::push::RECONCILE_TARGET;
use cadre_server::api::targets::TargetSchema;
use cadre_server::targets::{
    Actor, TargetSettings, change_target, configure_target, remove_target,
};
use clap::{Args, Subcommand};
use serde_json::json;
use uuid::Uuid;

use crate::operator;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum TargetCommand {
    /// List targets (never their credentials).
    List,
    /// Configure a SCIM 2.0 application.
    AddScim {
        #[command(flatten)]
        common: Common,
        /// Its base URL, `https://host/…/scim/v2`.
        #[arg(long)]
        url: String,
        /// Basic authentication as this user (the secret its password); without it the secret
        /// is a bearer token.
        #[arg(long)]
        username: Option<String>,
        /// The application takes `/Bulk` requests.
        #[arg(long)]
        bulk: bool,
    },
    /// Configure an LDAP directory.
    AddLdap {
        #[command(flatten)]
        common: Common,
        /// `ldaps://host:port`, or `ldap://host:port` with `--start-tls`.
        #[arg(long)]
        url: String,
        /// Upgrade an `ldap://` connection with StartTLS before binding.
        #[arg(long)]
        start_tls: bool,
        /// The DN cadre binds as (the secret is its password).
        #[arg(long)]
        bind_dn: String,
        /// Where people go.
        #[arg(long)]
        people_dn: String,
        /// Where groups go.
        #[arg(long)]
        groups_dn: String,
        /// The object class of people.
        #[arg(long, default_value = "inetOrgPerson")]
        user_class: String,
        /// The object class of groups.
        #[arg(long, default_value = "groupOfNames")]
        group_class: String,
    },
    /// Stop pushing to a target.
    Pause {
        /// Target id.
        id: Uuid,
    },
    /// Push to a paused target again.
    Enable {
        /// Target id.
        id: Uuid,
    },
    /// Remove a target.
    Remove {
        /// Target id.
        id: Uuid,
    },
    /// Compare a target with cadre and bring it up to date: create what it lacks, replace
    /// what differs, remove what cadre made there and no longer has (never anything else).
    Reconcile {
        /// Target id.
        id: Uuid,
        /// Only plan: change nothing, and print what would change.
        #[arg(long)]
        dry_run: bool,
        /// The removal guard: a run that would remove more objects removes none and fails.
        #[arg(long, default_value_t = ReconcileOptions::default().max_removals)]
        max_removals: usize,
    },
}

/// What every new target needs.
#[derive(Debug, Args)]
pub(crate) struct Common {
    /// A name for people, unique among targets.
    #[arg(long)]
    name: String,
    /// A file holding the bearer token or password (so that it is in no command line); the
    /// line breaks at its end are not part of it.
    #[arg(long)]
    secret_file: PathBuf,
    /// Keep the remote user, disabled, when cadre ends one (default: delete it).
    #[arg(long)]
    disable_on_deprovision: bool,
    /// Configure it paused.
    #[arg(long)]
    paused: bool,
}

impl Common {
    fn settings(self, connection: Connection) -> Result<TargetSettings> {
        let secret = std::fs::read_to_string(&self.secret_file)
            .with_context(|| format!("reading {}", self.secret_file.display()))?;
        Ok(TargetSettings {
            name: self.name,
            connection,
            mapping: None,
            mode: Some(if self.paused {
                TargetMode::Paused
            } else {
                TargetMode::Enabled
            }),
            deprovision: Some(if self.disable_on_deprovision {
                Deprovision::Disable
            } else {
                Deprovision::Delete
            }),
            secret: Some(secret.trim_end_matches(['\r', '\n']).to_owned()),
        })
    }
}

pub(crate) async fn target(
    engine: &Engine,
    key: Option<&SealingKey>,
    output: &Output,
    command: TargetCommand,
) -> Result<()> {
    let store = engine.store().as_ref();
    let now = SystemClock.now();
    let who = operator();
    let actor = Actor {
        name: &who,
        origin: Default::default(),
    };
    let configured = match command {
        TargetCommand::List => {
            let targets = store.list_targets().await?;
            output.targets(
                &targets
                    .into_iter()
                    .map(TargetSchema::from)
                    .collect::<Vec<_>>(),
            );
            return Ok(());
        }
        TargetCommand::AddScim {
            common,
            url,
            username,
            bulk,
        } => {
            let connection = Connection::Scim {
                base_url: url,
                username,
                bulk,
            };
            configure_target(store, key, common.settings(connection)?, actor, now).await?
        }
        TargetCommand::AddLdap {
            common,
            url,
            start_tls,
            bind_dn,
            people_dn,
            groups_dn,
            user_class,
            group_class,
        } => {
            let connection = Connection::Ldap {
                url,
                start_tls,
                bind_dn,
                people_dn,
                groups_dn,
                user_class,
                group_class,
            };
            configure_target(store, key, common.settings(connection)?, actor, now).await?
        }
        TargetCommand::Pause { id } | TargetCommand::Enable { id } => {
            let mode = if matches!(command, TargetCommand::Pause { .. }) {
                TargetMode::Paused
            } else {
                TargetMode::Enabled
            };
            let target = store.target(id).await?;
            let settings = TargetSettings {
                name: target.name.to_string(),
                connection: target.connection,
                mapping: None,
                mode: Some(mode),
                deprovision: None,
                secret: None,
            };
            change_target(store, key, id, settings, actor, now).await?
        }
        TargetCommand::Reconcile {
            id,
            dry_run,
            max_removals,
        } => {
            store.target(id).await?;
            let input = json!({"target_id": id, "dry_run": dry_run, "max_removals": max_removals});
            let process = engine.start(RECONCILE_TARGET, &[input], &who).await?;
            engine.run_until_idle().await?;
            let process = store.process(process.id).await?;
            if let Some(reason) = process.failed_reason {
                return Err(anyhow!("the reconcile failed: {reason}"));
            }
            let report: ReconcileReport =
                serde_json::from_value(process.state.get("report").cloned().unwrap_or_default())
                    .context("the reconcile's report")?;
            output.reconcile(&report);
            return Ok(());
        }
        TargetCommand::Remove { id } => {
            remove_target(store, id, actor, now).await?;
            output.message(&format!("target {id} removed"));
            return Ok(());
        }
    };
    output.targets(&[TargetSchema::from(configured)]);
    Ok(())
}
