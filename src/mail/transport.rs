//! How a message leaves: the `Mailer` trait and its three transports (log, file, SMTP).

use super::Outgoing;
use crate::config::{Email, MailTransport, SmtpSettings, SmtpTls};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// Delivers one message; an `Err` is worth retrying later.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn deliver(&self, message: &Outgoing) -> Result<(), String>;
    /// `log`, `file` or `smtp`.
    fn name(&self) -> &'static str;
}

/// The transport `email.transport` names.
pub fn from_config(email: &Email) -> anyhow::Result<Box<dyn Mailer>> {
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("email.from: {e}"))?;
    Ok(match &email.transport {
        MailTransport::Log => Box::new(LogMailer),
        MailTransport::File(dir) => Box::new(FileMailer {
            dir: dir.clone(),
            from,
        }),
        MailTransport::Smtp(s) => Box::new(SmtpMailer {
            transport: smtp_transport(s, email.timeout)?,
            from,
        }),
    })
}

/// The message in Internet Message Format: text and HTML alternatives.
fn build(from: &Mailbox, m: &Outgoing) -> Result<Message, String> {
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| format!("recipient {:?}: {e}", m.to))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&m.subject)
        .multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            m.html.clone(),
        ))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// Development only: the message, links included, goes to the server log.
struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn deliver(&self, m: &Outgoing) -> Result<(), String> {
        tracing::info!(
            transport = "log (development only: set email.transport to send mail)",
            to = %m.to,
            subject = %m.subject,
            "mail:\n{}",
            m.text
        );
        Ok(())
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

/// One .eml file per message.
struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for FileMailer {
    async fn deliver(&self, m: &Outgoing) -> Result<(), String> {
        let message = build(&self.from, m)?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{}.eml", m.id));
        // Written aside, then renamed: a reader never sees half a message.
        let part = self.dir.join(format!(".{}.part", m.id));
        tokio::fs::write(&part, message.formatted())
            .await
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| format!("cannot rename to {}: {e}", path.display()))
    }

    fn name(&self) -> &'static str {
        "file"
    }
}

struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn deliver(&self, m: &Outgoing) -> Result<(), String> {
        let message = build(&self.from, m)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

fn smtp_transport(
    s: &SmtpSettings,
    timeout: std::time::Duration,
) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut params = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca_pem {
            params = params.add_root_certificate(Certificate::from_pem(pem)?);
        }
        Ok(params.build()?)
    };
    let (builder, default_port) = match s.tls {
        SmtpTls::StartTls => (
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                .tls(Tls::Required(tls()?)),
            587,
        ),
        SmtpTls::Wrapper => (
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                .tls(Tls::Wrapper(tls()?)),
            465,
        ),
        SmtpTls::None => (
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            25,
        ),
    };
    let mut builder = builder
        .port(s.port.unwrap_or(default_port))
        .timeout(Some(timeout));
    if let Some(user) = &s.user {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            s.password.clone().unwrap_or_default(),
        ));
    }
    Ok(builder.build())
}
