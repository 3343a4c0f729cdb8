//! Mail: the outbox and its transports. Messages go through a real SMTP server on loopback (plain
//! and with STARTTLS), or into .eml files; a page never waits for the mail server, and a message
//! queued while the server is down is delivered after a restart once it is up.

use crate::helpers::TestApp;
use crate::smtp::SmtpServer;
use keyway::app::Application;
use keyway::clock::ManualClock;
use keyway::config::{Config, RawConfig};
use keyway::mail::messages::Rendered;
use std::sync::Arc;

/// A server whose mail goes to .eml files in `dir`.
pub struct MailApp {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
}

pub async fn mail_app_with(tweak: impl FnOnce(&mut RawConfig)) -> MailApp {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().display().to_string();
    let app = TestApp::spawn_with(|c| {
        c.email.transport = "file".into();
        c.email.file_dir = Some(path);
        tweak(c);
    })
    .await;
    MailApp { app, dir }
}

fn message(subject: &str) -> Rendered {
    Rendered {
        subject: subject.into(),
        text: "Hello from the test, with a link: http://localhost/x?a=1&b=2".into(),
        html: "<p>Hello from the test</p>".into(),
    }
}

/// The text/plain part of a message, its transfer encoding undone.
pub fn text_part(eml: &str) -> String {
    let eml = eml.replace("\r\n", "\n");
    let start = eml
        .find("Content-Type: text/plain")
        .unwrap_or_else(|| panic!("no text part in {eml}"));
    let part = &eml[start..];
    let (headers, rest) = part.split_once("\n\n").unwrap();
    let body = rest.split("\n--").next().unwrap();
    let encoding = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let mut out = Vec::new();
            let bytes = joined.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'='
                    && i + 2 < bytes.len()
                    && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
                {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            String::from_utf8(out).unwrap()
        }
        "base64" => {
            use base64::Engine as _;
            let clean: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(clean)
                    .unwrap(),
            )
            .unwrap()
        }
        _ => body.to_owned(),
    }
}

/// The .eml files the file transport wrote, oldest first.
pub async fn mailbox(dir: &std::path::Path) -> Vec<String> {
    for _ in 0..200 {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut files: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect();
            if !files.is_empty() {
                files.sort();
                return files
                    .iter()
                    .map(|p| std::fs::read_to_string(p).unwrap())
                    .collect();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no mail in {}", dir.display());
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_message() {
    let MailApp { app, dir: mail_dir } =
        mail_app_with(|c| c.email.from = Some("Team Keyway <keyway@example.com>".into())).await;
    app.state
        .mail
        .queue("alice@example.com", message("Hello"), "test", None)
        .await
        .unwrap();
    let mails = mailbox(mail_dir.path()).await;
    assert_eq!(mails.len(), 1);
    let eml = &mails[0];
    assert!(eml.contains("To: alice@example.com"), "{eml}");
    assert!(
        eml.contains(r#"From: "Team Keyway" <keyway@example.com>"#),
        "{eml}"
    );
    assert!(eml.contains("Subject: Hello"), "{eml}");
    assert!(
        text_part(eml).contains("http://localhost/x?a=1&b=2"),
        "{eml}"
    );
    assert!(eml.contains("Content-Type: text/html"));
}

#[tokio::test]
async fn smtp_with_starttls_delivers_and_the_body_is_gone_from_the_database_once_sent() {
    let server = SmtpServer::start(true);
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), server.ca_pem.as_ref().unwrap()).unwrap();
    let port = server.port;
    let ca_path = ca.path().display().to_string();
    let app = TestApp::spawn_with(|c| {
        c.email.transport = "smtp".into();
        c.email.smtp_url = Some(format!("smtp://localhost:{port}"));
        c.email.smtp_ca_file = Some(ca_path);
    })
    .await;
    app.state
        .mail
        .queue("bob@example.com", message("Over TLS"), "test", None)
        .await
        .unwrap();
    let got = server.wait_for(1).await;
    assert!(got[0].tls, "STARTTLS was required and used");
    assert_eq!(got[0].to, ["bob@example.com"]);
    assert!(got[0].data.contains("Subject: Over TLS"));
    assert!(text_part(&got[0].data).contains("a=1&b=2"));
    // Sent: nothing waits, and the sealed body is dropped.
    for _ in 0..100 {
        if app.state.mail.depth().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.mail.depth().await.unwrap(), 0);
    let db = sqlx::sqlite::SqlitePool::connect(&app.state.config.database_url)
        .await
        .unwrap();
    let (body, sent): (Option<Vec<u8>>, Option<i64>) =
        sqlx::query_as("SELECT body, sent_at FROM outbox")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(body.is_none() && sent.is_some());
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_when_starttls_is_required() {
    let server = SmtpServer::start(false);
    let port = server.port;
    let app = TestApp::spawn_with(|c| {
        c.email.transport = "smtp".into();
        c.email.smtp_url = Some(format!("smtp://localhost:{port}"));
    })
    .await;
    app.state
        .mail
        .queue("bob@example.com", message("Plain?"), "test", None)
        .await
        .unwrap();
    // The failure is audited and the message waits for a retry; nothing went out in the clear.
    for _ in 0..200 {
        let audit = app.state.repos.audit.recent(10).await.unwrap();
        if let Some(e) = audit.iter().find(|e| e.event == "mail") {
            assert_eq!(e.outcome, "failure");
            assert!(e.detail.as_deref().unwrap().contains("attempt 1"), "{e:?}");
            assert!(server.messages().is_empty());
            assert_eq!(app.state.mail.depth().await.unwrap(), 1);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no audited failure");
}

/// A server on `dir` with the given mail port, serving until the returned sender fires.
async fn server_on(
    dir: &std::path::Path,
    smtp_port: u16,
    clock: &ManualClock,
) -> (
    keyway::state::AppState,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let raw = RawConfig {
        issuer: "http://localhost:1".into(),
        listen: Some("127.0.0.1:0".into()),
        database_url: format!("sqlite://{}/keyway.db", dir.display()),
        data_dir: dir.display().to_string(),
        email: keyway::config::EmailSettings {
            transport: "smtp".into(),
            smtp_url: Some(format!("smtp://localhost:{smtp_port}?tls=none")),
            ..Default::default()
        },
        ..RawConfig::default()
    };
    let app = Application::build_with(
        Config::validate(raw).unwrap(),
        Arc::new(clock.clone()),
        None,
    )
    .await
    .unwrap();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (state, stop, task)
}

#[tokio::test]
async fn a_message_queued_while_smtp_is_down_is_delivered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::default();
    let (state, stop, task) = server_on(dir.path(), port, &clock).await;
    state
        .mail
        .queue("carol@example.com", message("Patience"), "test", None)
        .await
        .unwrap();
    // The first attempt fails (nothing listens); the message stays queued.
    for _ in 0..200 {
        let audit = state.repos.audit.recent(10).await.unwrap();
        if audit.iter().any(|e| e.event == "mail") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(state.mail.depth().await.unwrap(), 1);
    let _ = stop.send(());
    task.await.unwrap();
    // The mail server comes up; Keyway starts again on the same database and, once the backoff
    // has passed, delivers.
    let server = SmtpServer::start_on(port, false);
    clock.advance(keyway::mail::backoff(1) + 1);
    let (state, _stop, _task) = server_on(dir.path(), port, &clock).await;
    let got = server.wait_for(1).await;
    assert_eq!(got[0].to, ["carol@example.com"]);
    assert!(got[0].data.contains("Subject: Patience"));
    drop(state);
}

#[tokio::test]
async fn the_backoff_doubles_up_to_four_hours() {
    use keyway::mail::backoff;
    assert_eq!(backoff(1), 30);
    assert_eq!(backoff(2), 60);
    assert_eq!(backoff(5), 480);
    assert_eq!(backoff(20), 4 * 3600);
}
