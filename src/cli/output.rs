//! How results are printed: aligned tables for people, one JSON document with `--json`.

use crate::clock::UnixTime;
use crate::domain::{Client, ClientKind, Invitation, User};
use crate::store::{KeyState, StoredKey};
use serde_json::{Value, json};
use std::io::Write;

#[derive(Debug, Clone, Copy)]
pub(super) struct Out {
    pub(super) json: bool,
}

impl Out {
    /// Prints `json` in JSON mode, otherwise the human text.
    pub(super) fn emit(self, json: &Value, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        let text = if self.json {
            serde_json::to_string_pretty(json)?
        } else {
            human()
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", text.trim_end_matches('\n'))?;
        stdout.flush()?;
        Ok(())
    }
}

pub(super) fn users_table(users: &[User]) -> String {
    if users.is_empty() {
        return "no users".into();
    }
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.id.clone(),
                u.username.clone(),
                u.email.clone().unwrap_or_default(),
                u.name.clone().unwrap_or_default(),
                yes_no(u.is_admin),
                yes_no(u.disabled),
                human_time(u.created_at),
            ]
        })
        .collect();
    table(
        &[
            "ID", "USERNAME", "EMAIL", "NAME", "ADMIN", "DISABLED", "CREATED",
        ],
        rows,
    )
}

pub(super) fn kind_name(c: &Client) -> &'static str {
    match c.kind() {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

pub(super) fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "public": c.kind() == ClientKind::Public,
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scopes": c.scopes,
        "first_party": c.first_party,
        "id_token_alg": c.id_token_alg.as_str(),
        "refresh_token_cap": c.refresh_token_cap,
        "refresh_always": c.refresh_always,
        "require_passkey": c.require_passkey,
        "allow_magic_link": c.allow_magic_link,
        "logo_uri": c.logo_uri,
        "access_token_ttl": c.lifetimes.access_token,
        "id_token_ttl": c.lifetimes.id_token,
        "refresh_token_ttl": c.lifetimes.refresh_token,
        "previous_secret_until": c.previous_secret.as_ref().map(|(_, until)| until),
        "allowed_groups": c.allowed_groups,
        "created_at": c.created_at,
    })
}

pub(super) fn clients_table(clients: &[Client]) -> String {
    if clients.is_empty() {
        return "no clients".into();
    }
    let rows = clients
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                kind_name(c).to_owned(),
                c.grant_types
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                c.redirect_uris.join(" "),
            ]
        })
        .collect();
    table(
        &["CLIENT_ID", "NAME", "TYPE", "GRANTS", "REDIRECT URIS"],
        rows,
    )
}

/// The key's state now (next, current, retired) and when it changes next.
fn key_state(k: &StoredKey, now: UnixTime) -> (&'static str, Option<UnixTime>) {
    let state = k.state(now);
    let changes = match state {
        KeyState::Next => Some(k.activates_at),
        KeyState::Current => k.retired_at,
        KeyState::Retired => None,
    };
    (state.as_str(), changes)
}

pub(super) fn key_json(k: &StoredKey, now: UnixTime) -> Value {
    let (status, changes_at) = key_state(k, now);
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "created_at": k.created_at,
        "activates_at": k.activates_at,
        "retired_at": k.retired_at,
        "status": status,
        "changes_at": changes_at,
    })
}

pub(super) fn keys_table(keys: &[StoredKey], now: UnixTime) -> String {
    let rows = keys
        .iter()
        .map(|k| {
            let (status, changes_at) = key_state(k, now);
            vec![
                k.kid.clone(),
                k.alg.clone(),
                human_time(k.created_at),
                status.to_owned(),
                changes_at.map(human_time).unwrap_or_default(),
            ]
        })
        .collect();
    table(&["KID", "ALG", "CREATED", "STATUS", "CHANGES AT"], rows)
}

pub(super) fn invitation_json(i: &Invitation, now: UnixTime) -> Value {
    let mut doc = serde_json::to_value(i).unwrap_or(Value::Null);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("status".into(), json!(i.status(now).as_str()));
        obj.insert("uses_left".into(), json!(i.uses_left()));
    }
    doc
}

pub(super) fn invitations_table(list: &[Invitation], now: UnixTime) -> String {
    if list.is_empty() {
        return "no invitations".into();
    }
    let rows = list
        .iter()
        .map(|i| {
            vec![
                i.id.clone(),
                i.status(now).as_str().to_owned(),
                i.uses_left().to_string(),
                i.username.clone().unwrap_or_default(),
                i.email.clone().unwrap_or_default(),
                yes_no(i.is_admin),
                i.created_by.clone(),
                human_time(i.expires_at),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "USES LEFT",
            "USERNAME",
            "EMAIL",
            "ADMIN",
            "BY",
            "EXPIRES",
        ],
        rows,
    )
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

pub(super) fn human_time(t: UnixTime) -> String {
    match time::OffsetDateTime::from_unix_timestamp(t) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => t.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let mut s = String::new();
    for row in std::iter::once(&header_row).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    s
}
