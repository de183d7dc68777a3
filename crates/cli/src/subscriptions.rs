//! `cadre subscription`: subscriptions and their domain models.

use anyhow::Result;
use cadre_engine::Engine;
use cadre_server::api::subscriptions;
use clap::Subcommand;
use uuid::Uuid;

use crate::output::Output;

use crate::explain;
use crate::processes::Paging;

#[derive(Debug, Subcommand)]
pub(crate) enum SubscriptionCommand {
    /// List subscriptions.
    List {
        /// Only this product type, e.g. `User`.
        #[arg(long)]
        product_type: Option<String>,
        /// Only this lifecycle, e.g. `active`.
        #[arg(long)]
        status: Option<String>,
        /// Only descriptions containing this text.
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a subscription with its domain model.
    Show {
        /// Subscription id.
        id: Uuid,
    },
}

pub(crate) async fn subscription(
    engine: &Engine,
    output: &Output,
    command: SubscriptionCommand,
) -> Result<()> {
    match command {
        SubscriptionCommand::List {
            product_type,
            status,
            query,
            paging,
        } => {
            let filter = subscriptions::SubscriptionFilter {
                product_type,
                status,
                query,
                offset: Some(paging.offset),
                limit: Some(paging.limit),
                ..Default::default()
            };
            let page = subscriptions::list(engine, &filter, None)
                .await
                .map_err(explain)?;
            output.subscriptions(&page);
        }
        SubscriptionCommand::Show { id } => {
            let detail = subscriptions::detail(engine, id).await.map_err(explain)?;
            output.subscription(&detail);
        }
    }
    Ok(())
}
