//! Mail: plain-text messages, the ways to send them (SMTP, or files for development), and the
//! templates they are rendered from.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

/// A plain-text mail, as the outbox stores it (the payload of an `OutboxKind::Mail` message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipients' addresses (`ada@example.org` or `Ada <ada@example.org>`).
    pub to: Vec<String>,
    /// The subject line.
    pub subject: String,
    /// The body, plain text.
    pub text: String,
}

/// What went wrong building, rendering or sending a mail.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MailError {
    /// The mail configuration is unusable (a bad sender, host or template directory).
    #[error("mail configuration: {0}")]
    Config(String),
    /// A recipient address is malformed, or there is none.
    #[error("mail address: {0}")]
    Address(String),
    /// The mail server refused the mail or could not be reached.
    #[error("sending mail: {0}")]
    Send(String),
    /// A template failed to compile or render, or its output is not a mail.
    #[error("mail template: {0}")]
    Template(String),
    /// Reading a template or writing a mail file failed.
    #[error("mail i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends mails.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `mail` with the `Message-ID` `<{message_id}@cadre>`, so that a repeat of the same
    /// outbox message (after a crash between sending and recording) is recognisable.
    async fn send(&self, message_id: Uuid, mail: &Mail) -> Result<(), MailError>;
}

/// The `Message-ID` header value of the mail of outbox message `message_id`.
pub fn message_id_header(message_id: Uuid) -> String {
    format!("<{message_id}@cadre>")
}

/// Builds the RFC 5322 message of `mail` from `from`.
fn build_message(from: &Mailbox, message_id: Uuid, mail: &Mail) -> Result<Message, MailError> {
    if mail.to.is_empty() {
        return Err(MailError::Address("the mail has no recipient".to_owned()));
    }
    let mut builder = Message::builder()
        .from(from.clone())
        .message_id(Some(message_id_header(message_id)))
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|error| MailError::Address(format!("recipient {to:?}: {error}")))?;
        builder = builder.to(mailbox);
    }
    builder
        .body(mail.text.clone())
        .map_err(|error| MailError::Address(error.to_string()))
}

/// Parses the sender address of a configuration.
fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse()
        .map_err(|error| MailError::Config(format!("sender {from:?}: {error}")))
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Implicit TLS from the first byte (usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required: a server that does not offer
    /// it is an error, never a silent fallback to plaintext (usually port 587).
    StartTls,
    /// No encryption at all: only for a local relay or a test server, and only when configured
    /// explicitly.
    Plain,
}

/// Where and how to send mail over SMTP.
#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpConfig {
    /// The server's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// The login, if the server wants one (with `password`).
    pub username: Option<String>,
    /// The password of `username`; never shown by `Debug`.
    pub password: Option<String>,
    /// The sender, e.g. `cadre <noreply@example.org>`.
    pub from: String,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .finish()
    }
}

/// Sends mail through an SMTP server (one connection per mail).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
    security: SmtpSecurity,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// How long one SMTP conversation may take.
    pub const TIMEOUT: Duration = Duration::from_secs(30);

    /// A mailer for `config`; an invalid sender or host, or a login without a password (or the
    /// other way round), is a configuration error. Connects only when sending.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        let from = parse_from(&config.from)?;
        let tls_error =
            |error: lettre::transport::smtp::Error| MailError::Config(format!("TLS: {error}"));
        let builder = match config.security {
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host).map_err(tls_error)?
            }
            SmtpSecurity::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(tls_error)?
            }
            SmtpSecurity::Plain => {
                tracing::warn!(
                    host = %config.host,
                    port = config.port,
                    "SMTP without encryption: mails and any login cross the network in plaintext"
                );
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
        };
        let builder = builder.port(config.port).timeout(Some(Self::TIMEOUT));
        let builder = match (&config.username, &config.password) {
            (Some(username), Some(password)) => {
                builder.credentials(Credentials::new(username.clone(), password.clone()))
            }
            (None, None) => builder,
            (Some(_), None) => {
                return Err(MailError::Config(
                    "an SMTP username needs a password".to_owned(),
                ));
            }
            (None, Some(_)) => {
                return Err(MailError::Config(
                    "an SMTP password needs a username".to_owned(),
                ));
            }
        };
        Ok(Self {
            transport: builder.build(),
            from,
            host: config.host.clone(),
            port: config.port,
            security: config.security,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message_id: Uuid, mail: &Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, message_id, mail)?;
        self.transport
            .send(message)
            .await
            .map(|_response| ())
            .map_err(|error| MailError::Send(error.to_string()))
    }
}

/// Writes each mail as an RFC 5322 message to `<dir>/<message_id>.eml`, for development.
#[derive(Debug, Clone)]
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailer {
    /// A mailer writing into `dir` (created when the first mail is written), from
    /// `cadre <cadre@localhost>` unless [`FileMailer::with_from`] says otherwise.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            // A fixed, valid address: nothing to check.
            from: Mailbox::new(
                Some("cadre".to_owned()),
                lettre::Address::new_dangerous("cadre", "localhost"),
            ),
        }
    }

    /// The same mailer with sender `from`; an invalid one is a configuration error.
    pub fn with_from(self, from: &str) -> Result<Self, MailError> {
        Ok(Self {
            from: parse_from(from)?,
            ..self
        })
    }

    /// The file the mail of outbox message `message_id` is written to.
    pub fn path_of(&self, message_id: Uuid) -> PathBuf {
        self.dir.join(format!("{message_id}.eml"))
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, message_id: Uuid, mail: &Mail) -> Result<(), MailError> {
        let message = build_message(&self.from, message_id, mail)?;
        tokio::fs::create_dir_all(&self.dir).await?;
        // Write beside, then rename: a reader never sees half a mail.
        let path = self.path_of(message_id);
        let partial = self.dir.join(format!(".{message_id}.eml.partial"));
        tokio::fs::write(&partial, message.formatted()).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }
}

/// The mails cadre sends, each rendered from a template of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateName {
    /// Asks a new registrant to prove the address (`confirm_url`, `approval_required`).
    ConfirmEmail,
    /// Asks an admin to approve or decline a registration (`approve_url`, `decline_url`).
    ApprovalRequest,
    /// Tells the registrant the account is ready (`approval_required`).
    Approved,
    /// Tells the registrant the registration was declined.
    Declined,
    /// Tells the notify address that `user_name` completed registration.
    Notify,
    /// Asks a user to accept a group's terms (`group_name`, `terms`, `accept_url`).
    GroupTerms,
    /// Confirms that a user accepted a group's terms (`group_name`).
    GroupTermsAccepted,
    /// Sends a user a password reset link (`user_name`, `reset_url`, `valid_minutes`).
    PasswordReset,
    /// Tells the owner of an address that a user or registration holds that someone tried to
    /// register with it (`email`; no link, no user name).
    AddressInUse,
    /// Tells a registrant whose address is free that the user name cannot be registered
    /// (`user_name`; no link).
    NameUnavailable,
    /// Asks a user to prove the new address they asked for (`user_name`, `email`,
    /// `confirm_url`), sent to that address.
    ConfirmEmailChange,
    /// Tells a user's current address that a change to `email` was asked for (`user_name`,
    /// `old_email`; no link).
    EmailChangeRequested,
}

impl TemplateName {
    /// Every template.
    pub const ALL: [TemplateName; 12] = [
        TemplateName::ConfirmEmail,
        TemplateName::ApprovalRequest,
        TemplateName::Approved,
        TemplateName::Declined,
        TemplateName::Notify,
        TemplateName::GroupTerms,
        TemplateName::GroupTermsAccepted,
        TemplateName::PasswordReset,
        TemplateName::AddressInUse,
        TemplateName::NameUnavailable,
        TemplateName::ConfirmEmailChange,
        TemplateName::EmailChangeRequested,
    ];

    /// The template's file name, bundled and in an override directory.
    pub fn file_name(self) -> &'static str {
        match self {
            TemplateName::ConfirmEmail => "confirm_email.txt",
            TemplateName::ApprovalRequest => "approval_request.txt",
            TemplateName::Approved => "approved.txt",
            TemplateName::Declined => "declined.txt",
            TemplateName::Notify => "notify.txt",
            TemplateName::GroupTerms => "group_terms.txt",
            TemplateName::GroupTermsAccepted => "group_terms_accepted.txt",
            TemplateName::PasswordReset => "password_reset.txt",
            TemplateName::AddressInUse => "address_in_use.txt",
            TemplateName::NameUnavailable => "name_unavailable.txt",
            TemplateName::ConfirmEmailChange => "confirm_email_change.txt",
            TemplateName::EmailChangeRequested => "email_change_requested.txt",
        }
    }

    /// The bundled wording.
    pub fn default_source(self) -> &'static str {
        match self {
            TemplateName::ConfirmEmail => include_str!("../templates/confirm_email.txt"),
            TemplateName::ApprovalRequest => include_str!("../templates/approval_request.txt"),
            TemplateName::Approved => include_str!("../templates/approved.txt"),
            TemplateName::Declined => include_str!("../templates/declined.txt"),
            TemplateName::Notify => include_str!("../templates/notify.txt"),
            TemplateName::GroupTerms => include_str!("../templates/group_terms.txt"),
            TemplateName::GroupTermsAccepted => {
                include_str!("../templates/group_terms_accepted.txt")
            }
            TemplateName::PasswordReset => include_str!("../templates/password_reset.txt"),
            TemplateName::AddressInUse => include_str!("../templates/address_in_use.txt"),
            TemplateName::NameUnavailable => include_str!("../templates/name_unavailable.txt"),
            TemplateName::ConfirmEmailChange => {
                include_str!("../templates/confirm_email_change.txt")
            }
            TemplateName::EmailChangeRequested => {
                include_str!("../templates/email_change_requested.txt")
            }
        }
    }
}

/// The mail templates (minijinja, strict: a variable the context lacks is an error). A
/// template's output starts with a `Subject: …` line and a blank line; the rest is the body.
pub struct Templates {
    env: Environment<'static>,
    overridden: HashMap<TemplateName, PathBuf>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The bundled templates, each replaced by a file of the same name in `override_dir` when
    /// there is one. A missing override directory is a configuration error, a template that
    /// does not compile a template error.
    pub fn new(override_dir: Option<&Path>) -> Result<Self, MailError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        let mut overridden = HashMap::new();
        if let Some(dir) = override_dir
            && !dir.is_dir()
        {
            return Err(MailError::Config(format!(
                "template directory {} does not exist",
                dir.display()
            )));
        }
        for name in TemplateName::ALL {
            let file = override_dir.map(|dir| dir.join(name.file_name()));
            let source = match file {
                Some(file) if file.is_file() => {
                    let source = std::fs::read_to_string(&file)?;
                    overridden.insert(name, file);
                    source
                }
                _ => name.default_source().to_owned(),
            };
            env.add_template_owned(name.file_name(), source)
                .map_err(|error| template_error(name, &error))?;
        }
        Ok(Self { env, overridden })
    }

    /// The templates replaced from the override directory, with their files.
    pub fn overridden(&self) -> &HashMap<TemplateName, PathBuf> {
        &self.overridden
    }

    /// Renders template `name` with `context` (an object) into a mail to `to`.
    pub fn render(
        &self,
        name: TemplateName,
        to: Vec<String>,
        context: &serde_json::Value,
    ) -> Result<Mail, MailError> {
        let rendered = self
            .env
            .get_template(name.file_name())
            .and_then(|template| template.render(context))
            .map_err(|error| template_error(name, &error))?;
        let (subject, text) = split_subject(&rendered)
            .map_err(|reason| MailError::Template(format!("{}: {reason}", name.file_name())))?;
        Ok(Mail { to, subject, text })
    }
}

/// A template error with the template's name and minijinja's detail.
fn template_error(name: TemplateName, error: &minijinja::Error) -> MailError {
    let mut message = format!("{}: {error}", name.file_name());
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    MailError::Template(message)
}

/// Splits rendered text into its `Subject:` line and the body after the blank line.
fn split_subject(rendered: &str) -> Result<(String, String), String> {
    let rendered = rendered.trim_start_matches(['\r', '\n']);
    let (first, rest) = rendered.split_once('\n').unwrap_or((rendered, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| "the first line must be \"Subject: …\"".to_owned())?
        .trim();
    if subject.is_empty() {
        return Err("the subject is empty".to_owned());
    }
    let (blank, body) = rest.split_once('\n').unwrap_or((rest, ""));
    if !blank.trim().is_empty() {
        return Err("a blank line must follow the subject".to_owned());
    }
    let body = body.trim_end();
    if body.is_empty() {
        return Err("the body is empty".to_owned());
    }
    Ok((subject.to_owned(), format!("{body}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_line_and_blank_line_are_required() {
        assert_eq!(
            split_subject("Subject: Hi\n\nBody\n\n").unwrap(),
            ("Hi".to_owned(), "Body\n".to_owned())
        );
        assert!(split_subject("Hi\n\nBody").is_err());
        assert!(split_subject("Subject: Hi\nBody").is_err());
        assert!(split_subject("Subject:  \n\nBody").is_err());
        assert!(split_subject("Subject: Hi\n\n").is_err());
    }

    #[test]
    fn the_password_is_not_debug_printed() {
        let config = SmtpConfig {
            host: "mail.example.org".to_owned(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: Some("cadre".to_owned()),
            password: Some("hunter2".to_owned()),
            from: "cadre@example.org".to_owned(),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }
}
