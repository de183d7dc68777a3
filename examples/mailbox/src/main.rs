//! `cadre-example-mailbox`: `cadre serve` with the Mailbox product added. Configured as
//! `cadre serve` is (`CADRE_*` environment variables, `cadre.toml`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match cadre_server::Config::load(None) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let shutdown = async {
        // An error means no Ctrl-C can arrive; keep serving.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match cadre_example_mailbox::cadre()
        .serve(&config, shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
