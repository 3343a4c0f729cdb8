//! The `[email]` and `[auth]` settings: how mail leaves Keyway, and the sign-in methods beyond
//! passkeys (magic links, optional passwords, recovery).

use super::{ConfigError, err};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[email]` as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// `log` (development: messages go to the server log), `file` (one .eml file per message in
    /// `file_dir`) or `smtp`.
    pub transport: String,
    /// The From address, e.g. `Keyway <keyway@example.com>`; default `Keyway <keyway@HOST>`
    /// with the issuer's host.
    pub from: Option<String>,
    /// For `file`: where the .eml files go; default `DATA_DIR/mail`.
    pub file_dir: Option<String>,
    /// For `smtp`: `smtp://[user[:password]@]host[:port]` (STARTTLS required),
    /// `smtps://...` (TLS from the start), or `smtp://...?tls=none` (plain, loopback only).
    pub smtp_url: Option<String>,
    /// A file holding the SMTP password (instead of putting it in the URL).
    pub smtp_password_file: Option<String>,
    /// A PEM file of CA certificates to trust for the SMTP server, besides the system's.
    pub smtp_ca_file: Option<String>,
    /// Seconds one delivery attempt may take.
    pub timeout: u64,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            transport: "log".into(),
            from: None,
            file_dir: None,
            smtp_url: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            timeout: 10,
        }
    }
}

/// `[auth]` as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Seconds an emailed sign-in link works.
    pub magic_link_ttl: u64,
    /// Sign-in links one address may be sent per 15 minutes.
    pub magic_links_per_address: u32,
    /// Sign-in links one client IP may ask for per hour.
    pub magic_links_per_ip: u32,
    /// Seconds a recovery link (for someone who lost every passkey) waits before it opens; the
    /// account's owner is told at once and can cancel meanwhile. 0 opens it at once.
    pub recovery_delay: u64,
    /// `optional`: people may set a password on their account page and sign in with it;
    /// `off`: no password field anywhere, and password sign-ins are refused.
    pub passwords: String,
    /// argon2id parameters for new password hashes; a password hashed with others is hashed
    /// again at its next successful sign-in.
    pub password_memory_kib: u32,
    pub password_iterations: u32,
    pub password_parallelism: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            magic_link_ttl: 900,
            magic_links_per_address: 5,
            magic_links_per_ip: 30,
            recovery_delay: 86400,
            passwords: "optional".into(),
            password_memory_kib: 19_456,
            password_iterations: 2,
            password_parallelism: 1,
        }
    }
}

/// `[admin]` as written: the management UI at /admin, a relying party of this very server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Where the admin UI reaches this server's token endpoint and JWKS when the public issuer
    /// URL is not reachable from the server itself (behind a reverse proxy). Default: the
    /// listen address, over http.
    pub internal_url: Option<String>,
}

impl AdminSettings {
    pub fn validate(&self, listen: std::net::SocketAddr) -> Result<url::Url, ConfigError> {
        let text = match &self.internal_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => {
                let ip = match listen.ip() {
                    std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_owned(),
                    std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_owned(),
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    ip => ip.to_string(),
                };
                format!("http://{ip}:{}", listen.port())
            }
        };
        let url = url::Url::parse(&text)
            .map_err(|e| err("admin.internal_url", format!("{text:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
            return Err(err(
                "admin.internal_url",
                "must be an http(s) URL without a query",
            ));
        }
        Ok(url)
    }
}

/// `[audit]` as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Days audit events are kept; older ones are purged in the background.
    pub retention_days: u32,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: 180,
        }
    }
}

impl AuditSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3650).contains(&self.retention_days) {
            return Err(err(
                "audit.retention_days",
                "must be between 1 and 3650 days",
            ));
        }
        Ok(())
    }
}

/// How mail leaves, validated.
#[derive(Clone)]
pub enum MailTransport {
    Log,
    File(PathBuf),
    Smtp(Box<SmtpSettings>),
}

#[derive(Clone)]
pub struct SmtpSettings {
    /// The URL without its password.
    pub host: String,
    pub port: Option<u16>,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (smtps).
    Wrapper,
    /// None at all: only to a loopback host.
    None,
}

/// `[email]` validated.
#[derive(Clone)]
pub struct Email {
    pub transport: MailTransport,
    /// `Name <address>`.
    pub from: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.transport {
            MailTransport::Log => "log",
            MailTransport::File(_) => "file",
            MailTransport::Smtp(_) => "smtp",
        };
        f.debug_struct("Email")
            .field("transport", &kind)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn read_file(setting: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| err(setting, format!("cannot read {path:?}: {e}")))
}

impl EmailSettings {
    pub fn validate(&self, issuer_host: &str, data_dir: &str) -> Result<Email, ConfigError> {
        let from = match &self.from {
            Some(f) => f.clone(),
            None => format!("Keyway <keyway@{issuer_host}>"),
        };
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(err(
                "email.from",
                format!("{from:?} is not an address like Keyway <keyway@example.com>"),
            ));
        }
        if self.timeout == 0 || self.timeout > 300 {
            return Err(err("email.timeout", "must be between 1 and 300 seconds"));
        }
        let transport = match self.transport.as_str() {
            "log" => MailTransport::Log,
            "file" => MailTransport::File(PathBuf::from(
                self.file_dir
                    .clone()
                    .unwrap_or_else(|| format!("{data_dir}/mail")),
            )),
            "smtp" => MailTransport::Smtp(Box::new(self.smtp()?)),
            other => {
                return Err(err(
                    "email.transport",
                    format!("{other:?} is not one of log, file, smtp"),
                ));
            }
        };
        Ok(Email {
            transport,
            from,
            timeout: Duration::from_secs(self.timeout),
        })
    }

    fn smtp(&self) -> Result<SmtpSettings, ConfigError> {
        let Some(text) = &self.smtp_url else {
            return Err(err(
                "email.smtp_url",
                "is required when email.transport = \"smtp\"",
            ));
        };
        let url = url::Url::parse(text)
            .map_err(|e| err("email.smtp_url", format!("is not a URL ({e})")))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| err("email.smtp_url", "has no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let plain = url.query_pairs().any(|(k, v)| k == "tls" && v == "none");
        let tls = match (url.scheme(), plain) {
            ("smtps", false) => SmtpTls::Wrapper,
            ("smtp", false) => SmtpTls::StartTls,
            ("smtp", true) if super::is_loopback_host(&host) => SmtpTls::None,
            ("smtp", true) => {
                return Err(err(
                    "email.smtp_url",
                    "tls=none is only allowed to a loopback host",
                ));
            }
            _ => return Err(err("email.smtp_url", "must start with smtp:// or smtps://")),
        };
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let user = (!url.username().is_empty()).then(|| decode(url.username()));
        let mut password = url.password().map(decode);
        if let Some(path) = &self.smtp_password_file {
            let bytes = read_file("email.smtp_password_file", path)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| err("email.smtp_password_file", "is not UTF-8 text"))?;
            password = Some(text.trim_end_matches(['\r', '\n']).to_owned());
        }
        if password.is_some() && user.is_none() {
            return Err(err("email.smtp_url", "has a password but no user name"));
        }
        let ca_pem = match &self.smtp_ca_file {
            Some(path) => {
                let pem = read_file("email.smtp_ca_file", path)?;
                if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err() {
                    return Err(err(
                        "email.smtp_ca_file",
                        format!("{path:?} holds no PEM certificate"),
                    ));
                }
                Some(pem)
            }
            None => None,
        };
        Ok(SmtpSettings {
            host,
            port: url.port(),
            tls,
            user,
            password,
            ca_pem,
        })
    }
}

impl AuthSettings {
    pub fn passwords_on(&self) -> bool {
        self.passwords == "optional"
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(60..=86400).contains(&self.magic_link_ttl) {
            return Err(err(
                "auth.magic_link_ttl",
                "must be between 60 seconds and a day",
            ));
        }
        if !matches!(self.passwords.as_str(), "optional" | "off") {
            return Err(err("auth.passwords", "must be optional or off"));
        }
        if !(8192..=1_048_576).contains(&self.password_memory_kib) {
            return Err(err(
                "auth.password_memory_kib",
                "must be between 8192 and 1048576 (8 MiB to 1 GiB)",
            ));
        }
        if !(1..=10).contains(&self.password_iterations) {
            return Err(err("auth.password_iterations", "must be between 1 and 10"));
        }
        if !(1..=16).contains(&self.password_parallelism) {
            return Err(err("auth.password_parallelism", "must be between 1 and 16"));
        }
        if self.recovery_delay > 30 * 86400 {
            return Err(err(
                "auth.recovery_delay",
                "must be at most 30 days (0: no wait)",
            ));
        }
        for (name, v) in [
            ("auth.magic_links_per_address", self.magic_links_per_address),
            ("auth.magic_links_per_ip", self.magic_links_per_ip),
        ] {
            if v == 0 || v > 100_000 {
                return Err(err(name, "must be between 1 and 100000"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{EmailSettings, SmtpTls};

    fn smtp(url: &str) -> EmailSettings {
        EmailSettings {
            transport: "smtp".into(),
            smtp_url: Some(url.into()),
            ..EmailSettings::default()
        }
    }

    #[test]
    fn bad_mail_settings_name_themselves_in_one_line() {
        let cases = [
            (
                EmailSettings {
                    transport: "pigeon".into(),
                    ..EmailSettings::default()
                },
                "email.transport",
            ),
            (
                EmailSettings {
                    transport: "smtp".into(),
                    ..EmailSettings::default()
                },
                "email.smtp_url",
            ),
            (smtp("http://mail.example.com"), "email.smtp_url"),
            (smtp("smtp://mail.example.com?tls=none"), "loopback"),
            (smtp("smtp://:secret@mail.example.com"), "no user name"),
            (
                EmailSettings {
                    from: Some("not an address".into()),
                    ..EmailSettings::default()
                },
                "email.from",
            ),
            (
                EmailSettings {
                    smtp_password_file: Some("/nonexistent/pw".into()),
                    ..smtp("smtp://u@mail.example.com")
                },
                "email.smtp_password_file",
            ),
            (
                EmailSettings {
                    timeout: 0,
                    ..EmailSettings::default()
                },
                "email.timeout",
            ),
        ];
        for (settings, words) in cases {
            let e = settings
                .validate("localhost", "./data")
                .err()
                .unwrap_or_else(|| panic!("{words}: accepted"))
                .to_string();
            assert!(e.contains(words) && !e.contains('\n'), "{words}: {e}");
        }
    }

    #[test]
    fn smtp_urls_choose_tls_and_credentials() {
        let s = smtp("smtps://ann%40x:p%3Ass@mail.example.com:2465");
        let email = s.validate("localhost", "./data").unwrap();
        let super::MailTransport::Smtp(s) = email.transport else {
            panic!("not smtp")
        };
        assert_eq!(s.tls, SmtpTls::Wrapper);
        assert_eq!(s.user.as_deref(), Some("ann@x"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert_eq!(s.port, Some(2465));
        let email = smtp("smtp://127.0.0.1:2525?tls=none")
            .validate("localhost", "./data")
            .unwrap();
        let super::MailTransport::Smtp(s) = email.transport else {
            panic!("not smtp")
        };
        assert_eq!(s.tls, SmtpTls::None);
        // The default From comes from the issuer's host.
        let email = EmailSettings::default()
            .validate("id.example.com", "./data")
            .unwrap();
        assert_eq!(email.from, "Keyway <keyway@id.example.com>");
    }

    #[test]
    fn the_log_transport_is_called_out_on_a_public_issuer() {
        use crate::config::{Config, RawConfig};
        let config = |issuer: &str, transport: &str| {
            Config::validate(RawConfig {
                issuer: issuer.into(),
                email: EmailSettings {
                    transport: transport.into(),
                    ..EmailSettings::default()
                },
                ..RawConfig::default()
            })
            .unwrap()
        };
        let warning = config("https://id.example.com", "log")
            .email_warning()
            .unwrap();
        assert!(warning.contains("email.transport") && !warning.contains('\n'));
        assert!(
            config("http://localhost:8080", "log")
                .email_warning()
                .is_none()
        );
        assert!(
            config("https://id.example.com", "file")
                .email_warning()
                .is_none()
        );
    }
}
