//! Test support (feature `testing`): a real SMTP server to send to, and a real mail parser to
//! read what arrived.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mail::{SmtpConfig, SmtpSecurity};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server: `python3 -m aiosmtpd` with the Maildir handler, on a free local port,
/// killed when dropped. Plain SMTP only (no STARTTLS offered).
pub struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts the server and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mbox");
        let port = free_port();
        let mut child = Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Mailbox",
                "-l",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 -m aiosmtpd (pip install aiosmtpd)");
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("aiosmtpd exited early: {status}");
            }
            if StdStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {address}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// An SMTP configuration for this server with `security`.
    pub fn config(&self, security: SmtpSecurity) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            security,
            username: None,
            password: None,
            from: "cadre <noreply@cadre.test>".to_owned(),
        }
    }

    /// The raw messages received so far (the Maildir's `new` folder).
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut messages: Vec<String> = entries
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect();
        messages.sort();
        messages
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mail parsed by Python's `email` package (a real RFC 5322 parser).
#[derive(Debug)]
pub struct Parsed {
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: String,
}

impl Parsed {
    /// Parses the message in `file`.
    pub fn file(file: &Path) -> Self {
        const SCRIPT: &str = r#"
import email, email.policy, json, sys
with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
if m.defects:
    sys.exit("defects: %r" % m.defects)
print(json.dumps({
    "headers": [[k, str(v)] for k, v in m.items()],
    "body": m.get_content(),
}))
"#;
        let output = Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "python could not parse {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let parsed: Value = serde_json::from_slice(&output.stdout).unwrap();
        Self {
            headers: serde_json::from_value(parsed["headers"].clone()).unwrap(),
            body: parsed["body"].as_str().unwrap().to_owned(),
        }
    }

    /// Parses `raw`.
    pub fn text(raw: &str) -> Self {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), raw).unwrap();
        Self::file(file.path())
    }

    /// The value of header `name` (the first of that name).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}
