//! What the admin UI does, the CLI does too (the same operator actions): groups, a user's groups,
//! admin flag, sign-in link and deletion; a client's settings, secret rotation and groups.

use crate::cli::{Keyway, one_line_error};

#[test]
fn groups_and_people_from_the_command_line() {
    let k = Keyway::new();
    k.json(&["user", "create", "--username", "root", "--admin"]);
    k.json(&[
        "user",
        "create",
        "--username",
        "bob",
        "--email",
        "bob@example.com",
    ]);
    k.json(&["group", "create", "staff"]);
    k.json(&["group", "create", "ops"]);
    k.json(&["group", "rename", "ops", "operations"]);
    k.json(&["group", "add", "operations", "bob"]);
    k.json(&["user", "groups", "bob", "--group", "staff", "operations"]);
    let groups = k.json(&["group", "list"]);
    let counts: Vec<(String, u64)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["members"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [("operations".to_owned(), 1), ("staff".to_owned(), 1)]
    );
    k.json(&["group", "remove", "staff", "bob"]);
    k.json(&["group", "delete", "operations"]);
    assert!(one_line_error(&k.run(&["group", "delete", "nope"])).contains("not found"));
    // The admin flag, and the last-administrator rule.
    let bob = k.json(&["user", "admin", "bob"]);
    assert_eq!(bob["is_admin"], true);
    k.json(&["user", "admin", "root", "--revoke"]);
    let e = one_line_error(&k.run(&["user", "admin", "bob", "--revoke"]));
    assert!(e.contains("last active administrator"), "{e}");
    let e = one_line_error(&k.run(&["user", "delete", "bob", "--yes"]));
    assert!(e.contains("last active administrator"), "{e}");
    // A sign-in link, printed once.
    let link = k.json(&["user", "link", "root"]);
    assert!(
        link["url"].as_str().unwrap().contains("/recover/"),
        "{link}"
    );
    // Deletion wants --yes.
    let e = one_line_error(&k.run(&["user", "delete", "root"]));
    assert!(e.contains("--yes"), "{e}");
    k.json(&["user", "delete", "root", "--yes"]);
    let e = one_line_error(&k.run(&["user", "disable", "bob"]));
    assert!(e.contains("last active administrator"), "{e}");
    k.json(&["user", "create", "--username", "carol"]);
    k.json(&["user", "disable", "carol"]);
    let carol = k.json(&["user", "enable", "carol"]);
    assert_eq!(carol["disabled"], false);
}

#[test]
fn client_settings_secret_rotation_and_groups_from_the_command_line() {
    let k = Keyway::new();
    let created = k.json(&[
        "client",
        "create",
        "--name",
        "Wiki",
        "--redirect-uri",
        "https://wiki.example.com/cb",
        "--logo-uri",
        "https://wiki.example.com/logo.png",
        "--access-token-ttl",
        "15m",
    ]);
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert_eq!(created["access_token_ttl"], 900);
    assert_eq!(created["logo_uri"], "https://wiki.example.com/logo.png");
    let updated = k.json(&[
        "client",
        "update",
        &id,
        "--name",
        "Team wiki",
        "--first-party",
        "true",
        "--id-token-alg",
        "ES256",
        "--access-token-ttl",
        "0",
    ]);
    assert_eq!(updated["name"], "Team wiki");
    assert_eq!(updated["first_party"], true);
    assert_eq!(updated["id_token_alg"], "ES256");
    assert_eq!(updated["access_token_ttl"], serde_json::Value::Null);
    assert_eq!(updated["redirect_uris"][0], "https://wiki.example.com/cb");
    let rotated = k.json(&["client", "rotate-secret", &id, "--overlap", "1h"]);
    assert_ne!(rotated["client_secret"], created["client_secret"]);
    assert!(rotated["previous_secret_until"].as_i64().is_some());
    let e = one_line_error(&k.run(&["client", "rotate-secret", &id, "--overlap", "31d"]));
    assert!(e.contains("overlap"), "{e}");
    k.json(&["group", "create", "staff"]);
    k.json(&["client", "groups", &id, "--group", "staff"]);
    let list = k.json(&["client", "list"]);
    assert_eq!(list[0]["allowed_groups"].as_array().unwrap().len(), 1);
    let e = one_line_error(&k.run(&["client", "groups", &id, "--group", "nobody"]));
    assert!(e.contains("nobody"), "{e}");
    let e = one_line_error(&k.run(&[
        "client",
        "update",
        &id,
        "--logo-uri",
        "http://x.example/l.png",
    ]));
    assert!(e.contains("logo"), "{e}");
}

#[test]
fn the_audit_log_from_the_command_line() {
    let k = Keyway::new();
    k.json(&["user", "create", "--username", "root", "--admin"]);
    k.json(&["group", "create", "staff"]);
    let events = k.json(&["audit", "--event", "group"]);
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["group.create"]);
    assert_eq!(events[0]["detail"], "by cli");
    let users = k.json(&["audit", "--user", "root", "--since", "1h"]);
    assert_eq!(users[0]["event"], "user.create");
    let out = k.run(&["audit", "--csv"]);
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("time,event,outcome,user,client,ip,user_agent,detail\r\n"));
    assert!(csv.contains(",group.create,success,"), "{csv}");
    let e = one_line_error(&k.run(&["audit", "--user", "nobody"]));
    assert!(e.contains("nobody"), "{e}");
}

#[test]
fn passkeys_and_sessions_of_a_user_from_the_command_line() {
    let k = Keyway::new();
    k.json(&["user", "create", "--username", "root", "--admin"]);
    let list = k.json(&["user", "passkeys", "root"]);
    assert_eq!(list.as_array().unwrap().len(), 0);
    let e = one_line_error(&k.run(&["user", "passkeys", "root", "--remove", "nope"]));
    assert!(e.contains("not found"), "{e}");
    let ended = k.json(&["user", "signout", "root"]);
    assert_eq!(ended["sessions_ended"], 0);
    let events = k.json(&["audit", "--event", "user.signout"]);
    assert_eq!(events.as_array().unwrap().len(), 1);
}

#[test]
fn a_pending_invitation_gets_a_new_link_and_the_old_one_stops() {
    let k = Keyway::new();
    let created = k.json(&["invite", "create", "--username", "dana"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let again = k.json(&["invite", "link", &id]);
    assert_ne!(again["url"], created["url"]);
    assert_eq!(again["status"], "pending");
    let e = one_line_error(&k.run(&["invite", "link", &id, "--send"]));
    assert!(e.contains("no email address"), "{e}");
    k.json(&["invite", "revoke", &id]);
    let e = one_line_error(&k.run(&["invite", "link", &id]));
    assert!(e.contains("no longer pending"), "{e}");
}
