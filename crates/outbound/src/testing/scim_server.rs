//! `scim2-server` (PyPI), an in-memory SCIM 2.0 service provider.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::NamedTempFile;

/// How long the server may take to answer after it is started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait between two probes of a starting server.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// The path prefix scim2-server serves SCIM under (it also serves it without one).
const PATH_PREFIX: &str = "/v2";

/// A running scim2-server on 127.0.0.1 that takes a random bearer token; killed when dropped.
///
/// Its resources live in its memory only: [`ScimServer::restart`] gives an empty server.
#[derive(Debug)]
pub struct ScimServer {
    program: OsString,
    port: u16,
    token: String,
    log: NamedTempFile,
    child: Option<Child>,
}

impl ScimServer {
    /// A started server, ready for requests; `None` (after saying so) when scim2-server is
    /// not installed. The program is `$SCIM2_SERVER`, else `scim2-server` on the `PATH`.
    ///
    /// # Panics
    ///
    /// When scim2-server is installed but does not start, or under `REQUIRE_OUTBOUND_TESTS=1`
    /// when it is not installed.
    pub fn start() -> Option<Self> {
        let configured = std::env::var_os("SCIM2_SERVER").filter(|path| !path.is_empty());
        let program = configured
            .clone()
            .unwrap_or_else(|| OsString::from("scim2-server"));
        let mut token = [0u8; 16];
        getrandom::fill(&mut token)
            .unwrap_or_else(|error| panic!("no randomness for a token: {error}"));
        let log = NamedTempFile::new()
            .unwrap_or_else(|error| panic!("no log file for scim2-server: {error}"));
        let mut server = Self {
            program,
            port: super::free_port(),
            token: hex::encode(token),
            log,
            child: None,
        };
        match server.launch() {
            Ok(()) => Some(server),
            Err(error) => {
                let missing = match configured {
                    None if error.kind() == ErrorKind::NotFound => {
                        "scim2-server is not installed".to_owned()
                    }
                    _ => format!("{} cannot be run: {error}", server.program.display()),
                };
                super::skipped(
                    "outbound SCIM test",
                    &missing,
                    "Install it with `pip install scim2-server==0.8.3` (or set SCIM2_SERVER to \
                     its path) to run it.",
                )
            }
        }
    }

    /// The SCIM base URL, e.g. `http://127.0.0.1:40123/v2`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH_PREFIX}", self.port)
    }

    /// The bearer token the server takes.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Kills the server: its port then refuses connections, until [`ScimServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // It may have died already; either way it is reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if it runs and starts it again on the same port with the same token,
    /// ready for requests. It starts empty: whatever it held is lost.
    ///
    /// # Panics
    ///
    /// When it does not start again.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(error) = self.launch() {
            panic!("{} cannot be run: {error}", self.program.display());
        }
    }

    /// Starts the server on its port and waits until it answers; the error when the program
    /// cannot be run.
    ///
    /// # Panics
    ///
    /// When it runs but does not answer within [`STARTUP_TIMEOUT`].
    fn launch(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let mut child = Command::new(&self.program)
                .arg("--hostname")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(self.port.to_string())
                .arg("--bearer-token")
                .arg(&self.token)
                .stdin(Stdio::null())
                .stdout(self.log_output())
                .stderr(self.log_output())
                .spawn()?;
            while Instant::now() < deadline {
                if self.answers() {
                    self.child = Some(child);
                    return Ok(());
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                sleep(PROBE_INTERVAL);
            }
            let _ = child.kill();
            let _ = child.wait();
            // An early exit is usually the port still being released: try again until the
            // deadline.
            if Instant::now() >= deadline {
                panic!(
                    "scim2-server did not answer on port {} within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log_text()
                );
            }
            sleep(PROBE_INTERVAL);
        }
    }

    /// Somewhere for the server's output: its log file, appended to.
    fn log_output(&self) -> Stdio {
        match OpenOptions::new().append(true).open(self.log.path()) {
            Ok(file) => Stdio::from(file),
            Err(_) => Stdio::null(),
        }
    }

    /// What the server logged so far.
    fn log_text(&self) -> String {
        let mut text = String::new();
        match File::open(self.log.path()).and_then(|mut file| file.read_to_string(&mut text)) {
            Ok(_) => text,
            Err(error) => format!("(unreadable: {error})"),
        }
    }

    /// Whether the server answers `GET /ServiceProviderConfig` with a 200.
    fn answers(&self) -> bool {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
            return false;
        };
        let request = format!(
            "GET {PATH_PREFIX}/ServiceProviderConfig HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\
             Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.port, self.token
        );
        let mut answer = Vec::new();
        let exchanged = stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .and_then(|()| stream.write_all(request.as_bytes()))
            .and_then(|()| stream.read_to_end(&mut answer));
        exchanged.is_ok()
            && String::from_utf8_lossy(&answer)
                .split_whitespace()
                .nth(1)
                .is_some_and(|status| status == "200")
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        self.stop();
    }
}
