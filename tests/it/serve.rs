//! `keyway serve` as an operator runs it: the administrator setup line while no administrator
//! exists, /healthz, and a graceful stop on SIGTERM. The real binary, in its own directory.

use crate::cli::Keyway;
use keyway::clock::Stopwatch;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `keyway serve` whose stdout lines arrive on a channel; killed if the test fails.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Server {
    fn start(k: &Keyway) -> Self {
        let port = free_port();
        let log = std::fs::File::create(k.path().join(format!("serve-{port}.log"))).unwrap();
        let mut child = k
            .cmd()
            .arg("--issuer")
            .arg(format!("http://localhost:{port}"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines, port }
    }

    /// The next stdout line, waiting at most `limit`.
    fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// Polls GET /healthz until it answers 200 (bounded).
    fn wait_healthy(&mut self) {
        let waited = Stopwatch::start();
        while waited.elapsed() < Duration::from_secs(20) {
            if let Some(status) = self.try_exit() {
                panic!("keyway serve exited early: {status}");
            }
            if healthz(self.port) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("keyway serve did not answer /healthz");
    }

    fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns its status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let waited = Stopwatch::start();
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "keyway serve did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Status code of GET /healthz, or None while nothing answers.
fn healthz(port: u16) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// The setup line: a one-use admin invitation, a new one at every start while no administrator
/// exists (the earlier ones revoked), none once one exists. The printed link works end to end:
/// a browser (with a software authenticator) opens it, registers a passkey and is signed in as
/// the administrator.
#[test]
fn serve_prints_setup_url_until_an_admin_exists_and_stops_on_sigterm() {
    let k = Keyway::new();

    let mut server = Server::start(&k);
    let line = server
        .next_line(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no setup line; log: {}", serve_log(&k)));
    let prefix = format!(
        "Administrator setup: http://localhost:{}/invite/",
        server.port
    );
    let token = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert!(token.len() >= 43 && !token.contains('/'), "{line}");
    server.wait_healthy();
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM should end keyway cleanly, got {status}"
    );
    drop(server);
    // The link is a one-use admin invitation; the next start revokes it and prints a new one.
    let first = k.json(&["invite", "list"]);
    assert_eq!(first.as_array().unwrap().len(), 1);
    assert_eq!(first[0]["is_admin"], true);
    assert_eq!(first[0]["uses"], 1);
    assert_eq!(first[0]["created_by"], "setup");
    assert_eq!(first[0]["status"], "pending");
    let mut server = Server::start(&k);
    let second = server
        .next_line(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no setup line; log: {}", serve_log(&k)));
    assert!(
        second.starts_with("Administrator setup:") && second != line,
        "{second}"
    );
    server.wait_healthy();
    let link = second
        .trim_start_matches("Administrator setup: ")
        .to_owned();
    let base = format!("http://localhost:{}", server.port);
    let landed = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let browser = crate::helpers::http_client();
        let token = link.rsplit('/').next().unwrap();
        let mut device = crate::webauthn::Device::new(&base);
        let res = crate::webauthn::redeem(&base, &browser, &mut device, token, "root", "").await;
        let landed = crate::webauthn::redirected(&res);
        let account = browser.get(format!("{base}{landed}")).send().await.unwrap();
        account.text().await.unwrap()
    });
    assert!(
        landed.contains("Your account") && landed.contains("root"),
        "{landed}"
    );
    assert!(server.terminate().success());
    drop(server);
    let statuses: Vec<String> = k
        .json(&["invite", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["used up", "revoked"], "newest first");
    let users = k.json(&["user", "list"]);
    assert_eq!(users[0]["username"], "root");
    assert_eq!(users[0]["is_admin"], true);

    let mut server = Server::start(&k);
    server.wait_healthy();
    let status = server.terminate();
    assert!(status.success(), "{status}");
    // The process has exited, so the reader sees EOF after every line it printed.
    let printed: Vec<String> =
        std::iter::from_fn(|| server.next_line(Duration::from_secs(5))).collect();
    assert!(
        printed.iter().all(|l| !l.contains("Administrator setup")),
        "setup line printed although an administrator exists: {printed:?}"
    );
}

fn serve_log(k: &Keyway) -> String {
    let mut s = String::new();
    for entry in std::fs::read_dir(k.path()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("serve-") {
            s.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    s
}
