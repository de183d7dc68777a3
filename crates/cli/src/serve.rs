//! `cadre serve`: the API and the engine workers until Ctrl-C or SIGTERM.

use anyhow::Result;
use cadre_server::{Config, Mode};
use clap::Args;

use crate::init_tracing;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (default 127.0.0.1).
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// Port to listen on (default 8080; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Engine workers to run in this process (default 2).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve the API only; workers run elsewhere on the same database.
    #[arg(long, conflicts_with = "workers_only")]
    no_workers: bool,
    /// Run engine workers only, without the API.
    #[arg(long)]
    workers_only: bool,
}

pub(crate) async fn serve(mut config: Config, args: ServeArgs) -> Result<()> {
    config.bind = args.bind.unwrap_or(config.bind);
    config.port = args.port.unwrap_or(config.port);
    config.workers = args.workers.unwrap_or(config.workers);
    if args.no_workers {
        config.mode = Mode::ApiOnly;
    }
    if args.workers_only {
        config.mode = Mode::WorkersOnly;
    }
    init_tracing(&config.log, config.log_format);
    cadre_server::Cadre::new()
        .pages(cadre_web::pages())
        .serve(&config, shutdown_signal())
        .await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
