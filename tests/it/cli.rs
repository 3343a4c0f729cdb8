//! The `keyway` binary as an operator uses it: users, clients, keys, migrate (`serve` is in
//! serve.rs). Each test runs the real binary in its own temporary directory with its own
//! database.

// Helpers outside #[test] functions are test code too: a failed step should stop the test loudly.
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

/// A scratch directory with its own database, in which `keyway` commands run.
pub struct Keyway {
    pub dir: TempDir,
}

impl Keyway {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary with the scratch directory as cwd and no KEYWAY_* variables from outside.
    pub fn bare_cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyway"));
        cmd.current_dir(self.path()).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KEYWAY_") {
                cmd.env_remove(key);
            }
        }
        cmd.env_remove("RUST_LOG");
        cmd
    }

    /// `bare_cmd` pointed at this directory's database and data dir.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare_cmd();
        cmd.arg("--database-url")
            .arg(format!("sqlite://{}/k.db", self.path().display()))
            .arg("--data-dir")
            .arg(self.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs with `--json`, requires success, and parses stdout as one JSON document.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd().arg("--json").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// Asserts the command failed with exit code 1 and exactly one `error: ` line on stderr; returns it.
pub fn one_line_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected failure; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    lines[0].to_owned()
}

fn usernames(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn users_create_list_reject_and_disable() {
    let k = Keyway::new();
    let alice = k.json(&[
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "alice@example.com",
        "--name",
        "Alice",
    ]);
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["is_admin"], false);
    assert_eq!(alice["disabled"], false);
    let list = k.json(&["user", "list"]);
    assert_eq!(usernames(&list), ["alice"]);
    assert_eq!(list[0]["id"], alice["id"]);

    // Usernames are unique regardless of case.
    let e = one_line_error(&k.run(&["user", "create", "--username", "ALICE"]));
    assert!(e.contains("ALICE") && e.contains("already exists"), "{e}");

    let e = one_line_error(&k.run(&["user", "create", "--username", "bad name!"]));
    assert!(e.contains("username"), "{e}");

    // A password below the policy is refused before the user is created.
    let mut child = k
        .cmd()
        .args(["user", "create", "--username", "bob", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let e = one_line_error(&child.wait_with_output().unwrap());
    assert!(e.contains("password") && e.contains("at least 8"), "{e}");
    assert_eq!(usernames(&k.json(&["user", "list"])), ["alice"]);

    // A good one (with a CRLF line ending) is accepted, with an administrator flag.
    let mut child = k
        .cmd()
        .args([
            "--json",
            "user",
            "create",
            "--username",
            "carol",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let carol: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(carol["is_admin"], true);

    let human = k.run(&["user", "disable", "alice"]);
    assert!(
        human.status.success(),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    assert!(String::from_utf8_lossy(&human.stdout).contains("alice"));
    let list = k.json(&["user", "list"]);
    let a = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap();
    assert_eq!(a["disabled"], true);
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap();
    assert_eq!(c["disabled"], false);

    let e = one_line_error(&k.run(&["user", "disable", "nobody"]));
    assert!(e.contains("nobody") && e.contains("not found"), "{e}");

    // A taken email is named, never a crash.
    let e = one_line_error(&k.run(&[
        "user",
        "create",
        "--username",
        "alice2",
        "--email",
        "alice@example.com",
    ]));
    assert!(
        e.contains("alice@example.com") && e.contains("already exists"),
        "{e}"
    );

    // carol is the only active administrator: she cannot be disabled.
    let e = one_line_error(&k.run(&["user", "disable", "carol"]));
    assert!(e.contains("last active administrator"), "{e}");
    let list = k.json(&["user", "list"]);
    let c = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "carol")
        .unwrap();
    assert_eq!(c["disabled"], false);
}

#[test]
fn user_update_sets_and_clears_standard_claims() {
    let k = Keyway::new();
    k.json(&[
        "user",
        "create",
        "--username",
        "alice",
        "--email",
        "a@example.com",
    ]);
    let alice = k.json(&[
        "user",
        "update",
        "alice",
        "--given-name",
        "Alice",
        "--family-name",
        "Liddell",
        "--birthdate",
        "1990-05-04",
        "--phone-number",
        "+441234567890",
        "--phone-number-verified",
        "true",
        "--locality",
        "Oxford",
        "--country",
        "GB",
        "--picture",
        "https://example.com/a.png",
    ]);
    let p = &alice["profile"];
    assert_eq!(p["given_name"], "Alice");
    assert_eq!(p["family_name"], "Liddell");
    assert_eq!(p["birthdate"], "1990-05-04");
    assert_eq!(p["phone_number_verified"], true);
    assert_eq!(p["address"]["locality"], "Oxford");
    assert_eq!(p["address"]["country"], "GB");

    // An empty value clears a field; a new email is no longer verified.
    let alice = k.json(&[
        "user",
        "update",
        "alice",
        "--family-name",
        "",
        "--email",
        "alice@example.com",
    ]);
    assert!(alice["profile"].get("family_name").is_none(), "{alice}");
    assert_eq!(alice["profile"]["given_name"], "Alice");
    assert_eq!(alice["email"], "alice@example.com");
    assert_eq!(alice["email_verified"], false);
    // Stored: the list shows the same.
    let list = k.json(&["user", "list"]);
    assert_eq!(list[0]["profile"]["given_name"], "Alice");

    for (args, words) in [
        (vec!["--birthdate", "1990-13-40"], "birthdate"),
        (vec!["--website", "ftp://example.com"], "website"),
        (
            vec!["--phone-number-verified", "maybe"],
            "phone_number_verified",
        ),
        (vec![], "at least one field"),
    ] {
        let mut all = vec!["user", "update", "alice"];
        all.extend(args);
        let e = one_line_error(&k.run(&all));
        assert!(e.contains(words), "{words}: {e}");
    }
    let e = one_line_error(&k.run(&["user", "update", "nobody", "--nickname", "x"]));
    assert!(e.contains("nobody") && e.contains("not found"), "{e}");
}

#[test]
fn invitations_create_list_revoke() {
    let k = Keyway::new();
    let created = k.json(&[
        "invite",
        "create",
        "--username",
        "dana",
        "--email",
        "dana@example.com",
        "--group",
        "staff",
        "--admin",
        "--expires",
        "2h",
        "--uses",
        "2",
    ]);
    let url = created["url"].as_str().unwrap();
    let token = url
        .strip_prefix("http://localhost:8080/invite/")
        .unwrap_or_else(|| panic!("built from the configured issuer: {url}"));
    assert!(token.len() >= 43, "{url}");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["uses_left"], 2);
    assert_eq!(created["is_admin"], true);
    assert_eq!(created["groups"], serde_json::json!(["staff"]));
    let ttl = created["expires_at"].as_i64().unwrap() - created["created_at"].as_i64().unwrap();
    assert_eq!(ttl, 7200);
    // Only the token's hash is kept: the database file does not hold it.
    let db = std::fs::read(k.path().join("k.db")).unwrap();
    let wal = std::fs::read(k.path().join("k.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    let id = created["id"].as_str().unwrap().to_owned();
    let list = k.json(&["invite", "list"]);
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0].get("url").is_none(), "the link is shown only once");
    // --send queues the message for a running server to deliver; it needs an address.
    let sent = k.json(&["invite", "create", "--email", "eve@example.com", "--send"]);
    assert_eq!(sent["status"], "pending");
    assert!(sent.get("url").is_none(), "an emailed link is not printed");
    let out = k.run(&["invite", "create", "--send"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--email") && err.trim().lines().count() == 1,
        "{err}"
    );
    let revoked = k.json(&["invite", "revoke", &id]);
    assert_eq!(revoked["status"], "revoked");
    let list = k.json(&["invite", "list"]);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["status"], "revoked");

    for (args, words) in [
        (vec!["invite", "create", "--uses", "0"], "uses"),
        (
            vec!["invite", "create", "--username", "bad name!"],
            "username",
        ),
        (vec!["invite", "create", "--expires", "100d"], "expires"),
        (vec!["invite", "revoke", "nope"], "not found"),
    ] {
        let e = one_line_error(&k.run(&args));
        assert!(e.contains(words), "{args:?}: {e}");
    }
    // A malformed duration is a command-line error: one line, exit 2.
    let out = k.run(&["invite", "create", "--expires", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn clients_create_list_delete() {
    let k = Keyway::new();
    let conf = k.json(&[
        "client",
        "create",
        "--name",
        "Wiki",
        "--redirect-uri",
        "https://wiki.example.com/cb",
    ]);
    let id = conf["client_id"].as_str().unwrap().to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(
        conf["client_secret"].as_str().unwrap().len() >= 43,
        "{conf}"
    );
    assert_eq!(conf["public"], false);
    assert_eq!(
        conf["redirect_uris"],
        serde_json::json!(["https://wiki.example.com/cb"])
    );
    assert_eq!(
        conf["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        conf["scopes"],
        serde_json::json!([
            "openid",
            "profile",
            "email",
            "address",
            "phone",
            "groups",
            "offline_access"
        ])
    );
    assert_eq!(conf["id_token_alg"], "RS256");

    let public = k.json(&[
        "client",
        "create",
        "--name",
        "Phone app",
        "--public",
        "--redirect-uri",
        "com.example.app:/cb",
        "http://127.0.0.1:7000/cb",
        "--scope",
        "openid",
        "--id-token-alg",
        "EdDSA",
        "--first-party",
    ]);
    assert!(public.get("client_secret").is_none(), "{public}");
    assert_eq!(public["public"], true);
    assert_eq!(
        public["redirect_uris"],
        serde_json::json!(["com.example.app:/cb", "http://127.0.0.1:7000/cb"])
    );
    assert_eq!(public["scopes"], serde_json::json!(["openid"]));
    assert_eq!(public["id_token_alg"], "EdDSA");
    assert_eq!(public["first_party"], true);

    // Human output: the secret once, with a warning that it will not be shown again.
    let out = k.run(&[
        "client",
        "create",
        "--name",
        "Machine",
        "--grant",
        "client_credentials",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("client_secret:") && text.contains("only once"),
        "{text}"
    );

    let list = k.json(&["client", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().all(|c| c.get("client_secret").is_none()),
        "{list:?}"
    );
    assert!(list.iter().any(|c| c["client_id"] == id.as_str()));

    let deleted = k.json(&["client", "delete", &id]);
    assert_eq!(deleted["deleted"], id.as_str());
    let list = k.json(&["client", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c["client_id"] != id.as_str())
    );

    let e = one_line_error(&k.run(&["client", "delete", &id]));
    assert!(e.contains(&id) && e.contains("not found"), "{e}");

    let e = one_line_error(&k.run(&[
        "client",
        "create",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://example.com/cb",
    ]));
    assert!(e.contains("http://example.com/cb"), "{e}");
    let e = one_line_error(&k.run(&[
        "client",
        "create",
        "--name",
        "Bad",
        "--public",
        "--grant",
        "client_credentials",
    ]));
    assert!(
        e.contains("public") && e.contains("client_credentials"),
        "{e}"
    );
    assert_eq!(k.json(&["client", "list"]).as_array().unwrap().len(), 2);
}

#[test]
fn unparsable_command_lines_exit_2_with_one_line() {
    let k = Keyway::new();
    let out = k.run(&["client", "create", "--name", "x", "--grant", "implicit"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("implicit"),
        "{stderr:?}"
    );
    assert!(!stderr.contains("error: error:"), "{stderr:?}");

    let out = k.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrate"));
}

#[test]
fn keys_list_and_rotate() {
    let k = Keyway::new();
    let keys = k.json(&["keys", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    assert!(
        keys.iter()
            .all(|k| k["status"] == "current" && k["retired_at"].is_null())
    );
    let old: Vec<String> = keys
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();

    // A rotation publishes new keys that sign only after the pre-publication period.
    let rotated = k.json(&["keys", "rotate"]);
    let new: Vec<String> = rotated["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new.len(), 3);
    assert!(new.iter().all(|kid| !old.contains(kid)));
    let keys = k.json(&["keys", "list"]);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 6);
    let activates = rotated["rotated"][0]["activates_at"].as_i64().unwrap();
    for key in keys {
        let kid = key["kid"].as_str().unwrap().to_owned();
        if old.contains(&kid) {
            assert_eq!(
                key["status"], "current",
                "signs until the new ones start: {key}"
            );
            assert_eq!(key["changes_at"], activates, "{key}");
        } else {
            assert!(new.contains(&kid), "{key}");
            assert_eq!(key["status"], "next", "{key}");
            assert_eq!(key["changes_at"], activates, "{key}");
        }
    }
    let created = keys[0]["created_at"].as_i64().unwrap();
    assert!(
        activates - created >= 86_400 - 5,
        "a day of pre-publication by default"
    );

    // --now signs with the new keys at once, and says what that risks.
    let out = k
        .cmd()
        .args(["--json", "keys", "rotate", "--now"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --now"));
    let keys = k.json(&["keys", "list"]);
    let current: Vec<&Value> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "current")
        .collect();
    assert_eq!(current.len(), 3, "one signing key per algorithm: {keys}");
}

#[test]
fn migrate_creates_the_database() {
    let k = Keyway::new();
    assert_eq!(
        k.json(&["migrate"]),
        serde_json::json!({ "migrated": true })
    );
    assert!(k.path().join("k.db").exists());
    let out = k.run(&["migrate"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "database migrated"
    );
}
