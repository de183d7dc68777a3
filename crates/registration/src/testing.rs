//! Test support (feature `testing`): a real SMTP server to send to, in this process, and a real
//! mail parser to read what arrived.
//!
//! [`SmtpServer`] listens on 127.0.0.1 and speaks SMTP over TCP to any client, lettre included.
//! The protocol is the `mailin` crate's (command parsing, the session's state machine with its
//! `503` for commands out of order, `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` with
//! dot-unstuffing, `RSET`, `NOOP`, `VRFY`, `QUIT`); this module does the socket I/O, one thread
//! per connection, and records each accepted mail with its envelope. It offers no STARTTLS and
//! no login. [`Parsed`] reads a message with the `mail-parser` crate, an RFC 5322 and MIME
//! parser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mail_parser::{Address, Header, HeaderName, HeaderValue, MessageParser, PartType};
use mailin::{Action, Handler, Response, SessionBuilder, response};

use crate::mail::{SmtpConfig, SmtpSecurity};

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mail the server accepted: its envelope and the message as it came after `DATA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`), in the order given.
    pub rcpt_to: Vec<String>,
    /// The message, dot-unstuffed, with its CRLF line ends.
    pub raw: String,
}

/// What the server and its connections share.
#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    stopping: AtomicBool,
}

/// A real SMTP server on a free port of 127.0.0.1, in this process; stopped (every connection
/// closed, every thread joined) when dropped. Plain SMTP only (no STARTTLS offered).
pub struct SmtpServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// How long a connection may stay silent before the server drops it.
    const IDLE: Duration = Duration::from_secs(30);
    /// The longest line the server reads (RFC 5321 allows 1000 octets; some slack).
    const MAX_LINE: u64 = 64 * 1024;

    /// Starts the server on a free loopback port; it accepts connections as soon as this
    /// returns.
    pub fn start() -> Self {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts the server on `address` (a mail server coming back where it was).
    pub fn start_at(address: SocketAddr) -> Self {
        let listener = TcpListener::bind(address).unwrap();
        let address = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let acceptor = std::thread::Builder::new()
            .name(format!("smtp-{}", address.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept(&listener, &shared)
            })
            .unwrap();
        Self {
            address,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// An SMTP configuration for this server with `security`.
    pub fn config(&self, security: SmtpSecurity) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: self.address.port(),
            security,
            username: None,
            password: None,
            from: "cadre <noreply@cadre.test>".to_owned(),
        }
    }

    /// The mails received so far, in the order their `DATA` ended.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees `stopping`.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Accepts connections until the server stops; then closes the open ones and waits for them.
fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut sessions: Vec<(TcpStream, JoinHandle<()>)> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let shared = Arc::clone(shared);
        let session = std::thread::spawn(move || {
            // A client that hangs up mid-session is its own business.
            let _ = serve(stream, &shared);
        });
        sessions.retain(|(_, session)| !session.is_finished());
        sessions.push((handle, session));
    }
    for (stream, session) in sessions {
        let _ = stream.shutdown(Shutdown::Both);
        let _ = session.join();
    }
}

/// One SMTP session: the greeting, then a reply to each line until `QUIT` or the client leaves.
fn serve(stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    stream.set_read_timeout(Some(SmtpServer::IDLE))?;
    let peer = stream.peer_addr()?.ip();
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let recorder = Recorder {
        shared: Arc::clone(shared),
        mail: None,
    };
    let mut session = SessionBuilder::new("cadre.test").build(peer, recorder);
    reply(&mut writer, &session.greeting())?;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(SmtpServer::MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Reply => reply(&mut writer, &response)?,
            // QUIT, or an error after which the session cannot go on; STARTTLS is never
            // offered, so there is no upgrade to make.
            Action::Close | Action::UpgradeTls => return reply(&mut writer, &response),
        }
    }
}

/// Writes `response` to the client.
fn reply(writer: &mut TcpStream, response: &Response) -> io::Result<()> {
    response.write_to(writer)?;
    writer.flush()
}

/// The session's handler: accepts every sender and recipient and records each mail whose
/// `DATA` completes.
struct Recorder {
    shared: Arc<Shared>,
    /// The mail of the `DATA` under way.
    mail: Option<(String, Vec<String>, Vec<u8>)>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.mail = Some((from.to_owned(), to.to_vec(), Vec::new()));
        response::OK
    }

    fn data(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some((_, _, raw)) = &mut self.mail {
            raw.extend_from_slice(line);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let Some((mail_from, rcpt_to, raw)) = self.mail.take() else {
            return response::INTERNAL_ERROR;
        };
        // cadre's mails are UTF-8 (7bit or 8BITMIME); anything else is refused.
        let Ok(raw) = String::from_utf8(raw) else {
            return response::TRANSACTION_FAILED;
        };
        self.shared.received.lock().unwrap().push(Received {
            mail_from,
            rcpt_to,
            raw,
        });
        response::OK
    }
}

/// A mail read by `mail-parser`: its headers, decoded and unfolded as an RFC 5322 parser
/// understands them, and its decoded text body.
#[derive(Debug)]
pub struct Parsed {
    /// The headers, in order: address lists as `Name <address>, address`, message ids in angle
    /// brackets, dates in RFC 5322 form, encoded words decoded.
    pub headers: Vec<(String, String)>,
    /// The decoded body (transfer encoding and charset undone), line breaks as `\n`.
    pub body: String,
}

impl Parsed {
    /// Parses the message in `file`.
    pub fn file(file: &Path) -> Self {
        let raw = std::fs::read_to_string(file)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        Self::text(&raw)
    }

    /// Parses `raw`, which must be one well-formed, single-part text message: every line ends
    /// in CRLF and is at most 998 characters long (RFC 5322, section 2.1.1).
    pub fn text(raw: &str) -> Self {
        let lines = raw.strip_suffix("\r\n").unwrap_or(raw);
        for (number, line) in lines.split("\r\n").enumerate() {
            assert!(
                !line.contains(['\r', '\n']),
                "line {number} has a bare line break: {raw:?}"
            );
            assert!(line.len() <= 998, "line {number} is too long: {raw:?}");
        }
        let message = MessageParser::default()
            .parse(raw)
            .unwrap_or_else(|| panic!("not a mail: {raw:?}"));
        assert!(
            matches!(message.root_part().body, PartType::Text(_)),
            "not a single-part text mail: {raw:?}"
        );
        let headers = message
            .headers()
            .iter()
            .map(|header| (header.name.as_str().to_owned(), render(header, raw)))
            .collect();
        let body = message
            .body_text(0)
            .unwrap_or_else(|| panic!("no text body: {raw:?}"))
            .replace("\r\n", "\n");
        Self { headers, body }
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

/// The parsed value of `header` of message `raw` as text.
fn render(header: &Header<'_>, raw: &str) -> String {
    let is_id = matches!(
        header.name,
        HeaderName::MessageId
            | HeaderName::InReplyTo
            | HeaderName::References
            | HeaderName::ResentMessageId
            | HeaderName::ContentId
    );
    let id = |id: &str| {
        if is_id {
            format!("<{id}>")
        } else {
            id.to_owned()
        }
    };
    match &header.value {
        HeaderValue::Text(text) => id(text),
        HeaderValue::TextList(list) => {
            let items: Vec<String> = list.iter().map(|item| id(item)).collect();
            items.join(if is_id { " " } else { ", " })
        }
        HeaderValue::Address(Address::List(addresses)) => mailboxes(addresses),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .map(|group| {
                format!(
                    "{}: {};",
                    group.name.as_deref().unwrap_or_default(),
                    mailboxes(&group.addresses)
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        HeaderValue::DateTime(date) => date.to_rfc822(),
        HeaderValue::ContentType(content_type) => {
            let mut text = content_type.c_type.to_string();
            if let Some(subtype) = &content_type.c_subtype {
                text = format!("{text}/{subtype}");
            }
            for attribute in content_type.attributes.iter().flatten() {
                text = format!("{text}; {}={}", attribute.name, attribute.value);
            }
            text
        }
        // A trace header: its text, unfolded.
        HeaderValue::Received(_) => raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        HeaderValue::Empty => String::new(),
    }
}

/// `Name <address>` or `address`, comma-separated.
fn mailboxes(addresses: &[mail_parser::Addr<'_>]) -> String {
    addresses
        .iter()
        .map(|addr| {
            let address = addr.address.as_deref().unwrap_or_default();
            match &addr.name {
                Some(name) => format!("{name} <{address}>"),
                None => address.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
