//! Mail and webhook delivery against real servers: the in-process SMTP server of
//! `cadre_registration::testing` (itself tested here over raw TCP), a local HTTP receiver, and a
//! migrated scratch store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cadre_domain::{Clock, OutboxKind, OutboxMessage, Store};
use cadre_engine::RetryPolicy;
use cadre_engine::testing::ManualClock;
use cadre_registration::delivery::{
    Dispatcher, Webhook, WebhookAction, WebhookCall, mail_message, webhook_message,
};
use cadre_registration::mail::{
    FileMailer, Mail, MailError, Mailer, SmtpConfig, SmtpMailer, SmtpSecurity, TemplateName,
    Templates,
};
use cadre_registration::testing::{Parsed, SmtpServer, free_port};
use chrono::TimeDelta;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A mail for the tests.
fn sample_mail(to: &[&str]) -> Mail {
    Mail {
        to: to.iter().map(|to| (*to).to_owned()).collect(),
        subject: "Confirm your address".to_owned(),
        text: "Hello Ada,\n\nplease confirm: https://cadre.test/confirm?t=abc\n\nGrüße\n"
            .to_owned(),
    }
}

/// One request the HTTP receiver got.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A tiny HTTP/1.1 server answering requests with the given statuses in turn (the last one
/// from then on), one request per connection, recording what it got.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/users", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = statuses.to_vec();
        let log = Arc::clone(&received);
        let task = tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let request = read_request(&mut stream).await;
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(request);
                    log.len() - 1
                };
                let status = statuses[index.min(statuses.len() - 1)];
                let body = if status == 200 { "ok" } else { "try later" };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(response.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
            }
        });
        Self {
            url,
            received,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP request with a `content-length` body.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Received {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed inside the request head");
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..read]);
    }
    Received {
        request_line,
        headers,
        body: serde_json::from_slice(&body).unwrap(),
    }
}

/// A retry policy of 1 s, doubling, capped at 60 s.
fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial: Duration::from_secs(1),
        factor: 2.0,
        max_delay: Duration::from_secs(60),
    }
}

/// A migrated scratch store (removed when dropped), and the store as the dispatcher takes it.
async fn store() -> (cadre_store::testing::ScratchStore, Arc<dyn Store>) {
    let scratch = cadre_store::testing::scratch_store().await;
    let store: Arc<dyn Store> = Arc::new(scratch.clone());
    (scratch, store)
}

/// The stored message with `id`.
async fn message(store: &Arc<dyn Store>, id: Uuid) -> OutboxMessage {
    store
        .list_messages()
        .await
        .unwrap()
        .into_iter()
        .find(|message| message.id == id)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// SMTP

#[tokio::test]
async fn smtp_mail_arrives_with_recipients_subject_message_id_and_body() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(&server.config(SmtpSecurity::Plain)).unwrap();
    let id = Uuid::now_v7();
    let mail = sample_mail(&["ada@example.org", "Bob Example <bob@example.org>"]);
    mailer.send(id, &mail).await.unwrap();

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // The envelope, as the server saw it.
    assert_eq!(messages[0].mail_from, "noreply@cadre.test");
    assert_eq!(messages[0].rcpt_to, ["ada@example.org", "bob@example.org"]);
    let parsed = Parsed::text(&messages[0].raw);
    assert_eq!(
        parsed.header("To"),
        "ada@example.org, Bob Example <bob@example.org>"
    );
    assert_eq!(parsed.header("From"), "cadre <noreply@cadre.test>");
    assert_eq!(parsed.header("Subject"), "Confirm your address");
    assert_eq!(parsed.header("Message-ID"), format!("<{id}@cadre>"));
    // SMTP's end-of-data marker may leave one more line break.
    assert_eq!(parsed.body.trim_end(), mail.text.trim_end());
}

#[tokio::test]
async fn smtp_lines_that_start_with_a_dot_arrive_unchanged() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(&server.config(SmtpSecurity::Plain)).unwrap();
    let mail = Mail {
        text: "Hello,\n.\n..two dots\n.hidden\nend\n".to_owned(),
        ..sample_mail(&["ada@example.org"])
    };
    mailer.send(Uuid::now_v7(), &mail).await.unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        Parsed::text(&messages[0].raw).body.trim_end(),
        mail.text.trim_end()
    );
}

/// A hand-driven SMTP client: raw lines over TCP.
struct SmtpClient(std::io::BufReader<std::net::TcpStream>);

impl SmtpClient {
    fn connect(address: std::net::SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self(std::io::BufReader::new(stream))
    }

    /// Sends `line` and its CRLF.
    fn send(&mut self, line: &str) {
        let mut stream = self.0.get_ref();
        std::io::Write::write_all(&mut stream, format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// The code of the server's next reply (`250-…` lines continue a reply, `250 …` ends it).
    fn reply(&mut self) -> (String, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = std::io::BufRead::read_line(&mut self.0, &mut line).unwrap();
            assert!(read > 0, "connection closed after {lines:?}");
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return (lines[lines.len() - 1][..3].to_owned(), lines);
            }
        }
    }

    /// Sends `command` and returns the code of the reply.
    fn say(&mut self, command: &str) -> String {
        self.send(command);
        self.reply().0
    }
}

#[test]
fn the_test_smtp_server_speaks_smtp_over_tcp() {
    let server = SmtpServer::start();
    let mut client = SmtpClient::connect(server.address());
    assert_eq!(client.reply().0, "220", "greeting");
    // Out of order: no mail before a greeting.
    assert_eq!(client.say("MAIL FROM:<a@cadre.test>"), "503");
    client.send("EHLO client.test");
    let (code, ehlo) = client.reply();
    assert_eq!(code, "250");
    assert!(
        !ehlo.iter().any(|line| line.contains("STARTTLS")),
        "{ehlo:?}"
    );
    assert_eq!(client.say("NOOP"), "250");
    // A transaction given up with RSET records nothing.
    assert_eq!(client.say("MAIL FROM:<dropped@cadre.test>"), "250");
    assert_eq!(client.say("RCPT TO:<nobody@example.org>"), "250");
    assert_eq!(client.say("RSET"), "250");
    assert_eq!(client.say("DATA"), "503", "no recipient after RSET");
    // HELO works as well as EHLO.
    assert_eq!(client.say("HELO client.test"), "250");
    assert_eq!(client.say("MAIL FROM:<sender@cadre.test>"), "250");
    assert_eq!(client.say("RCPT TO:<ada@example.org>"), "250");
    assert_eq!(client.say("RCPT TO:<bob@example.org>"), "250");
    assert_eq!(client.say("DATA"), "354");
    for line in ["Subject: dots", "", "..one", "...two", "plain"] {
        client.send(line);
    }
    assert_eq!(client.say("."), "250");
    assert_eq!(client.say("QUIT"), "221");

    assert_eq!(
        server.messages(),
        [cadre_registration::testing::Received {
            mail_from: "sender@cadre.test".to_owned(),
            rcpt_to: vec!["ada@example.org".to_owned(), "bob@example.org".to_owned()],
            raw: "Subject: dots\r\n\r\n.one\r\n..two\r\nplain\r\n".to_owned(),
        }]
    );
}

#[test]
fn the_test_smtp_server_closes_its_connections_when_dropped() {
    use std::io::Read;
    let server = SmtpServer::start();
    let address = server.address();
    let mut open = std::net::TcpStream::connect(address).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 3];
    open.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
    drop(server);
    let mut rest = Vec::new();
    // The server ends the session: the client reads the end of the stream, not a time-out.
    open.read_to_end(&mut rest).unwrap();
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "still listening"
    );
}

#[tokio::test]
async fn starttls_is_required_and_never_falls_back_to_plaintext() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(&server.config(SmtpSecurity::StartTls)).unwrap();
    let error = mailer
        .send(Uuid::now_v7(), &sample_mail(&["ada@example.org"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MailError::Send(message) if message.contains("STARTTLS")),
        "{error:?}"
    );
    assert!(server.messages().is_empty(), "a mail went out in plaintext");
}

#[tokio::test]
async fn implicit_tls_against_a_plain_server_fails() {
    let server = SmtpServer::start();
    let mailer = SmtpMailer::new(&server.config(SmtpSecurity::Tls)).unwrap();
    let error = mailer
        .send(Uuid::now_v7(), &sample_mail(&["ada@example.org"]))
        .await
        .unwrap_err();
    assert!(matches!(error, MailError::Send(_)), "{error:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn bad_configuration_and_addresses_are_refused() {
    let mut config = SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port: 2525,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        from: "not an address".to_owned(),
    };
    assert!(matches!(
        SmtpMailer::new(&config),
        Err(MailError::Config(_))
    ));
    config.from = "cadre@cadre.test".to_owned();
    config.username = Some("cadre".to_owned());
    assert!(matches!(
        SmtpMailer::new(&config),
        Err(MailError::Config(_))
    ));

    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().join("mails"));
    for to in [&["ada at example.org"][..], &[]] {
        let error = mailer
            .send(Uuid::now_v7(), &sample_mail(to))
            .await
            .unwrap_err();
        assert!(matches!(error, MailError::Address(_)), "{to:?}: {error:?}");
    }
    assert!(matches!(
        FileMailer::new(dir.path()).with_from("nobody"),
        Err(MailError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// FileMailer

#[tokio::test]
async fn file_mailer_writes_a_parseable_eml_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().join("outbox/mails"))
        .with_from("Example Site <site@example.org>")
        .unwrap();
    let id = Uuid::now_v7();
    let mail = sample_mail(&["ada@example.org"]);
    mailer.send(id, &mail).await.unwrap();

    let file = dir.path().join(format!("outbox/mails/{id}.eml"));
    assert_eq!(mailer.path_of(id), file);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox/mails"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [format!("{id}.eml")], "no partial file is left");
    let parsed = Parsed::file(&file);
    assert_eq!(parsed.header("To"), "ada@example.org");
    assert_eq!(parsed.header("From"), "Example Site <site@example.org>");
    assert_eq!(parsed.header("Subject"), "Confirm your address");
    assert_eq!(parsed.header("Message-ID"), format!("<{id}@cadre>"));
    assert!(parsed.header("Date").contains(" +0000"), "{parsed:?}");
    assert!(
        parsed.header("Content-Type").starts_with("text/plain"),
        "{parsed:?}"
    );
    assert_eq!(parsed.body, mail.text);
}

// ---------------------------------------------------------------------------------------------
// Templates

/// The variables of every template, with those of `name`.
fn context(name: TemplateName) -> Value {
    let mut context = json!({
        "user_name": "ada",
        "email": "ada@example.org",
        "site_name": "Example Site",
    });
    let extra = match name {
        TemplateName::ConfirmEmail => json!({
            "confirm_url": "https://example.org/confirm/T1",
            "approval_required": true,
        }),
        TemplateName::ApprovalRequest => json!({
            "approve_url": "https://example.org/approve/T2",
            "decline_url": "https://example.org/decline/T3",
        }),
        TemplateName::Approved => json!({ "approval_required": false }),
        TemplateName::Declined
        | TemplateName::Notify
        | TemplateName::AddressInUse
        | TemplateName::NameUnavailable => json!({}),
        TemplateName::GroupTerms => json!({
            "group_name": "Astronomers",
            "terms": "Be kind to the telescope.",
            "accept_url": "https://example.org/accept/T4",
        }),
        TemplateName::GroupTermsAccepted => json!({ "group_name": "Astronomers" }),
        TemplateName::PasswordReset => json!({
            "reset_url": "https://example.org/password-reset/T5",
            "valid_minutes": 60,
        }),
        TemplateName::ConfirmEmailChange => json!({
            "confirm_url": "https://example.org/tokens/T6",
        }),
        TemplateName::EmailChangeRequested => json!({ "old_email": "ada@old.example.org" }),
    };
    context
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    context
}

#[test]
fn every_default_template_renders_with_its_variables() {
    let templates = Templates::new(None).unwrap();
    for name in TemplateName::ALL {
        let context = context(name);
        let mail = templates
            .render(name, vec!["ada@example.org".to_owned()], &context)
            .unwrap_or_else(|error| panic!("{name:?}: {error}"));
        assert_eq!(mail.to, ["ada@example.org"]);
        assert!(!mail.subject.is_empty(), "{name:?}");
        assert!(!mail.subject.contains('\n'), "{name:?}");
        assert!(!mail.text.starts_with('\n'), "{name:?}: {:?}", mail.text);
        assert!(!mail.text.contains("{{"), "{name:?}: {}", mail.text);
        assert!(!mail.text.contains("{%"), "{name:?}: {}", mail.text);
        assert!(!mail.text.contains("\n\n\n"), "{name:?}: {:?}", mail.text);
        assert!(
            mail.text.contains("Example Site"),
            "{name:?}: {}",
            mail.text
        );
        // Every variable given for this template shows up (except the booleans).
        for (key, value) in context.as_object().unwrap() {
            if let Some(value) = value.as_str()
                && key != "email"
            {
                assert!(
                    mail.text.contains(value) || mail.subject.contains(value),
                    "{name:?} leaves out {key}: {}",
                    mail.text
                );
            }
        }
    }
}

#[test]
fn the_subject_line_is_parsed_and_conditions_apply() {
    let templates = Templates::new(None).unwrap();
    let mut context = context(TemplateName::ConfirmEmail);
    let with = templates
        .render(TemplateName::ConfirmEmail, vec![], &context)
        .unwrap();
    assert_eq!(with.subject, "Confirm your email address for Example Site");
    assert!(with.text.starts_with("Hello ada,\n"), "{}", with.text);
    assert!(with.text.contains("administrator"), "{}", with.text);
    context["approval_required"] = json!(false);
    let without = templates
        .render(TemplateName::ConfirmEmail, vec![], &context)
        .unwrap();
    assert!(!without.text.contains("administrator"), "{}", without.text);
}

#[test]
fn a_missing_variable_is_an_error() {
    let templates = Templates::new(None).unwrap();
    for (name, missing) in [
        (TemplateName::ConfirmEmail, "confirm_url"),
        (TemplateName::ConfirmEmail, "approval_required"),
        (TemplateName::ApprovalRequest, "decline_url"),
        (TemplateName::GroupTerms, "terms"),
        (TemplateName::Declined, "site_name"),
    ] {
        let mut context = context(name);
        context.as_object_mut().unwrap().remove(missing);
        let error = templates.render(name, vec![], &context).unwrap_err();
        assert!(
            matches!(&error, MailError::Template(message) if message.contains(name.file_name())),
            "{name:?} without {missing}: {error:?}"
        );
    }
}

#[test]
fn an_override_directory_replaces_templates_by_file_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("approved.txt"),
        "Subject: You're in, {{ user_name }}!\n\nCustom welcome to {{ site_name }}.\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), "ignored").unwrap();
    let templates = Templates::new(Some(dir.path())).unwrap();
    assert_eq!(
        templates.overridden().keys().collect::<Vec<_>>(),
        [&TemplateName::Approved]
    );
    let approved = templates
        .render(
            TemplateName::Approved,
            vec![],
            &context(TemplateName::Approved),
        )
        .unwrap();
    assert_eq!(approved.subject, "You're in, ada!");
    assert_eq!(approved.text, "Custom welcome to Example Site.\n");
    // The others keep the bundled wording.
    let declined = templates
        .render(
            TemplateName::Declined,
            vec![],
            &context(TemplateName::Declined),
        )
        .unwrap();
    assert_eq!(declined.subject, "Your registration at Example Site");
}

#[test]
fn bad_overrides_are_refused() {
    let missing = Path::new("/nonexistent/cadre/templates");
    assert!(matches!(
        Templates::new(Some(missing)),
        Err(MailError::Config(_))
    ));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notify.txt"), "Hello {{ user_name\n").unwrap();
    assert!(matches!(
        Templates::new(Some(dir.path())),
        Err(MailError::Template(_))
    ));

    std::fs::write(
        dir.path().join("notify.txt"),
        "{{ user_name }} registered\n",
    )
    .unwrap();
    let templates = Templates::new(Some(dir.path())).unwrap();
    let error = templates
        .render(TemplateName::Notify, vec![], &context(TemplateName::Notify))
        .unwrap_err();
    assert!(
        matches!(&error, MailError::Template(message) if message.contains("Subject")),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Dispatcher

#[tokio::test]
async fn dispatcher_delivers_mail_and_retries_a_webhook_with_backoff() {
    let (_scratch, store) = store().await;
    let clock = ManualClock::new();
    let receiver = Receiver::start(&[500, 500, 200]).await;
    let mails = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(mails.path()));
    let dispatcher = Dispatcher::new(Arc::clone(&store), mailer.clone(), clock.clone(), policy(5));

    let start = clock.now();
    let mail = mail_message(&sample_mail(&["ada@example.org"]), start);
    assert_eq!(mail.kind, OutboxKind::Mail);
    assert_eq!(mail.next_attempt_at, Some(start));
    let hook = Webhook {
        name: "directory".to_owned(),
        action: WebhookAction::CreateUser,
        url: receiver.url.clone(),
    };
    let body = json!({ "action": "create_user", "user_name": "ada", "groups": ["a", "b"] });
    let call = hook.call(body.clone());
    let webhook = webhook_message(&call, start);
    assert_eq!(webhook.kind, OutboxKind::Webhook);
    assert_eq!(
        serde_json::from_value::<WebhookCall>(webhook.payload.clone()).unwrap(),
        call
    );
    store.enqueue(&mail).await.unwrap();
    store.enqueue(&webhook).await.unwrap();

    // First round: the mail goes, the webhook answers 500.
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 1);
    assert!(mailer.path_of(mail.id).is_file());
    let stored = message(&store, mail.id).await;
    assert_eq!(
        (stored.attempts, stored.delivered_at, stored.next_attempt_at),
        (1, Some(start), None)
    );
    let stored = message(&store, webhook.id).await;
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.delivered_at, None);
    assert_eq!(stored.next_attempt_at, Some(start + TimeDelta::seconds(1)));
    let error = stored.last_error.unwrap();
    assert!(
        error.contains("500") && error.contains("try later"),
        "{error}"
    );
    assert_eq!(receiver.received().len(), 1);

    // Nothing is due until the clock moves.
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert_eq!(receiver.received().len(), 1);

    // Second failure: the delay doubles.
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    let stored = message(&store, webhook.id).await;
    assert_eq!(stored.attempts, 2);
    assert_eq!(stored.next_attempt_at, Some(start + TimeDelta::seconds(3)));
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert_eq!(receiver.received().len(), 2);

    // Third attempt: delivered.
    clock.advance(TimeDelta::seconds(1));
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 1);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    let webhook_id = webhook.id.to_string();
    for request in &received {
        assert_eq!(request.request_line, "POST /hooks/users HTTP/1.1");
        assert_eq!(request.body, body);
        assert!(
            request
                .header("content-type")
                .is_some_and(|value| value.starts_with("application/json")),
            "{request:?}"
        );
        assert_eq!(request.header("idempotency-key"), Some(webhook_id.as_str()));
    }

    let messages = store.list_messages().await.unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|message| message.delivered_at.is_some()
        && message.next_attempt_at.is_none()
        && message.last_error.is_none()));
    let stored = message(&store, webhook.id).await;
    assert_eq!(stored.attempts, 3);
    assert_eq!(stored.delivered_at, Some(start + TimeDelta::seconds(3)));

    clock.advance(TimeDelta::seconds(3600));
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn a_webhook_that_keeps_failing_is_given_up_with_its_error() {
    let (_scratch, store) = store().await;
    let clock = ManualClock::new();
    let mails = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        Arc::new(FileMailer::new(mails.path())),
        clock.clone(),
        policy(3),
    );
    let closed = free_port();
    let call = WebhookCall {
        name: "gone".to_owned(),
        url: format!("http://127.0.0.1:{closed}/hook"),
        body: json!({ "user_name": "ada" }),
    };
    let message_ = webhook_message(&call, clock.now());
    store.enqueue(&message_).await.unwrap();

    for (attempt, wait) in [(1, 1), (2, 2)] {
        assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
        let stored = message(&store, message_.id).await;
        assert_eq!(stored.attempts, attempt);
        assert_eq!(
            stored.next_attempt_at,
            Some(clock.now() + TimeDelta::seconds(wait))
        );
        clock.advance(TimeDelta::seconds(wait));
    }
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    let stored = message(&store, message_.id).await;
    assert_eq!(stored.attempts, 3);
    assert_eq!(stored.next_attempt_at, None);
    assert_eq!(stored.delivered_at, None);
    let error = stored.last_error.unwrap();
    assert!(error.contains("gone"), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");

    clock.advance(TimeDelta::seconds(24 * 3600));
    assert!(
        store
            .due_messages(clock.now(), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert_eq!(message(&store, message_.id).await.attempts, 3);
}

#[tokio::test]
async fn a_payload_that_does_not_deserialize_is_given_up_at_once() {
    let (_scratch, store) = store().await;
    let clock = ManualClock::new();
    let mails = tempfile::tempdir().unwrap();
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        Arc::new(FileMailer::new(mails.path())),
        clock.clone(),
        policy(5),
    );
    let mut broken = mail_message(&sample_mail(&["ada@example.org"]), clock.now());
    broken.payload = json!({ "recipient": "ada@example.org" });
    store.enqueue(&broken).await.unwrap();
    let bad_url = webhook_message(
        &WebhookCall {
            name: "ftp".to_owned(),
            url: "ftp://example.org/hook".to_owned(),
            body: json!({}),
        },
        clock.now(),
    );
    store.enqueue(&bad_url).await.unwrap();

    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    for (id, expected) in [(broken.id, "not a mail"), (bad_url.id, "http")] {
        let stored = message(&store, id).await;
        assert_eq!((stored.attempts, stored.next_attempt_at), (1, None));
        let error = stored.last_error.unwrap();
        assert!(error.contains(expected), "{error}");
    }
    assert_eq!(
        std::fs::read_dir(mails.path()).map_or(0, Iterator::count),
        0
    );
}

#[tokio::test]
async fn run_delivers_until_shutdown() {
    let (_scratch, store) = store().await;
    let clock = Arc::new(cadre_domain::SystemClock);
    let mails = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(mails.path()));
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::clone(&store),
        mailer.clone(),
        clock.clone(),
        policy(5),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let dispatcher = Arc::clone(&dispatcher);
        async move {
            dispatcher
                .run(Duration::from_millis(20), async {
                    let _ = stopped.await;
                })
                .await;
        }
    });
    let mail = mail_message(&sample_mail(&["ada@example.org"]), clock.now());
    store.enqueue(&mail).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while message(&store, mail.id).await.delivered_at.is_none() {
        assert!(Instant::now() < deadline, "the mail was not delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mailer.path_of(mail.id).is_file());
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn of_two_dispatchers_only_the_one_that_claims_a_message_sends_it() {
    let (_scratch, store) = store().await;
    let clock = ManualClock::new();
    let mails = tempfile::tempdir().unwrap();
    let mailer = Arc::new(FileMailer::new(mails.path()));
    let dispatcher = |store: &Arc<dyn Store>| {
        Dispatcher::new(Arc::clone(store), mailer.clone(), clock.clone(), policy(3))
    };
    let (first, second) = (dispatcher(&store), dispatcher(&store));
    let message_ = mail_message(&sample_mail(&["ada@example.org"]), clock.now());
    store.enqueue(&message_).await.unwrap();

    // Both see it due; the second finds it claimed.
    let seen = store.due_messages(clock.now(), 10).await.unwrap();
    assert_eq!(seen.len(), 1);
    let (a, b) = tokio::join!(first.deliver_due(), second.deliver_due());
    assert_eq!(a.unwrap() + b.unwrap(), 1, "delivered exactly once");
    assert_eq!(std::fs::read_dir(mails.path()).unwrap().count(), 1);
    let stored = message(&store, message_.id).await;
    assert_eq!(stored.attempts, 1);

    // A claim by a dispatcher that died lapses, and another takes the message.
    let orphan = mail_message(&sample_mail(&["bob@example.org"]), clock.now());
    store.enqueue(&orphan).await.unwrap();
    let until = clock.now() + TimeDelta::seconds(300);
    assert!(
        store
            .claim_message(orphan.id, clock.now(), until)
            .await
            .unwrap()
    );
    assert_eq!(first.deliver_due().await.unwrap(), 0);
    clock.advance(TimeDelta::seconds(301));
    assert_eq!(first.deliver_due().await.unwrap(), 1);
}
