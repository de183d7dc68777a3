//! What the benchmarks share: a `cadre serve` child process, and load generation.

// Each benchmark uses the part of `load` it needs.
#[allow(dead_code)]
pub mod load;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `cadre serve` child process on a free loopback port, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `binary serve` on `database_url` with the extra environment `env`.
    pub fn start(binary: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args([
                "serve",
                "--port",
                &port.to_string(),
                "--database-url",
                database_url,
            ])
            .envs(env.iter().copied())
            .env("CADRE_LOG", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .spawn()
            .expect("start cadre serve");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The server's peak resident set size so far (`VmHWM` in `/proc`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server runs");
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .expect("/proc reports VmHWM");
        kib * 1024
    }

    /// Whether the server is still running (it did not exit or panic).
    #[allow(dead_code, reason = "each benchmark uses what it needs")]
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `/api/ready` answers 200.
    pub async fn wait_until_ready(&self, client: &reqwest::Client) {
        for _ in 0..200 {
            if let Ok(response) = client.get(format!("{}/api/ready", self.base)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cadre serve did not become ready");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
