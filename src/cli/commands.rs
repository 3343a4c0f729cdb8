//! What each command does: `serve`, `migrate`, `keys` and `invite` here, people and clients in
//! their own files; everything but `serve` through the operator actions in `crate::ops` (the
//! same ones the admin UI calls), printed through `output`.

use super::output::{Out, invitation_json, invitations_table, key_json, keys_table};
use super::{InviteCommand, KeysCommand};
use crate::app::{self, Application};
use crate::auth::password::Passwords;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::oidc::keys;
use crate::ops::{Actor, CreateInvitation, Operator};
use anyhow::Context;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // try_init: a subscriber set already (embedding, tests) is not an error worth dying for.
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub(super) async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(&config.log_format);
    let app = Application::build(config).await?;
    if let Some(url) = app.admin_setup_url().await? {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "Administrator setup: {url}")?;
        stdout.flush()?;
    }
    app.run().await
}

/// Runs `f` with the operator actions over the configured store, acting as the CLI, and closes
/// the store afterwards whatever `f` returned.
pub(super) async fn with_operator<T>(
    config: &Config,
    f: impl AsyncFnOnce(&Operator) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    app::refuse_a_lost_database(config)?;
    let clock = Arc::new(SystemClock);
    let repos = crate::store::open(
        &config.database_url,
        clock.clone(),
        config.database.store_options(),
    )
    .await
    .with_context(|| format!("database_url: cannot open {}", config.database_url))?;
    let mail = app::mail_for(config, &repos, clock.clone())?;
    let hasher = Passwords::with_params(
        1,
        crate::auth::password::HashParams::from_config(&config.auth),
    );
    let operator = Operator::new(repos.clone(), clock, hasher, Actor::Cli)
        .with_mail(Arc::new(mail), &config.issuer);
    let result = f(&operator).await;
    repos.maintenance.close().await;
    result
}

pub(super) async fn migrate(config: &Config, out: Out) -> anyhow::Result<()> {
    with_operator(config, async |_| Ok(())).await?;
    out.emit(&json!({ "migrated": true }), || "database migrated".into())
}

pub(super) async fn keys_command(
    cmd: KeysCommand,
    config: &Config,
    out: Out,
) -> anyhow::Result<()> {
    // build_state creates the first keys if there are none and proves the sealing key opens
    // them, before anything is listed or rotated.
    let state = app::build_state(config.clone(), Arc::new(SystemClock)).await?;
    state.repos.maintenance.close().await;
    match cmd {
        KeysCommand::List => {
            let keys = with_operator(config, async |ops| Ok(ops.list_keys().await?)).await?;
            let now = SystemClock.now();
            let doc = Value::Array(keys.iter().map(|k| key_json(k, now)).collect());
            out.emit(&doc, || keys_table(&keys, now))
        }
        KeysCommand::Rotate { now } => {
            let sealing = keys::sealing_key(config.secret_key.as_deref(), &config.data_dir)?;
            let prepublish = if now {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: --now: the new keys sign at once; relying parties holding a cached JWKS may fail to verify their tokens for up to 5 minutes"
                );
                0
            } else {
                config.keys.prepublish as i64
            };
            let new = with_operator(config, async |ops| {
                Ok(ops.rotate_keys(&sealing, prepublish).await?)
            })
            .await?;
            let doc = json!({
                "rotated": new.iter().map(|k| json!({
                    "kid": k.kid, "alg": k.alg, "activates_at": k.activates_at,
                })).collect::<Vec<_>>(),
            });
            out.emit(&doc, || {
                let mut s = String::from("new signing keys, published now:\n");
                for k in &new {
                    s.push_str(&format!("  {:<6} {}\n", k.alg, k.kid));
                }
                match new.first() {
                    Some(k) if prepublish > 0 => s.push_str(&format!(
                        "They start signing at {} (the current keys retire then).",
                        super::output::human_time(k.activates_at)
                    )),
                    _ => s.push_str("They sign from now; the previous keys are retired."),
                }
                s
            })
        }
    }
}

pub(super) async fn invite(cmd: InviteCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    match cmd {
        InviteCommand::Create {
            username,
            email,
            name,
            groups,
            admin,
            expires,
            uses,
            send,
        } => {
            let req = CreateInvitation {
                username,
                email,
                name,
                groups,
                is_admin: admin,
                expires_in: expires,
                uses,
                send,
            };
            let (invitation, token) =
                with_operator(config, async |ops| Ok(ops.create_invitation(req).await?)).await?;
            print_invitation(out, config, &invitation, &token)
        }
        InviteCommand::Link { id, send } => {
            let (invitation, token) = with_operator(config, async |ops| {
                Ok(ops.reissue_invitation(&id, send).await?)
            })
            .await?;
            print_invitation(out, config, &invitation, &token)
        }
        InviteCommand::List => {
            let list = with_operator(config, async |ops| Ok(ops.list_invitations().await?)).await?;
            let now = SystemClock.now();
            let doc = Value::Array(list.iter().map(|i| invitation_json(i, now)).collect());
            out.emit(&doc, || invitations_table(&list, now))
        }
        InviteCommand::Revoke { id } => {
            let invitation =
                with_operator(config, async |ops| Ok(ops.revoke_invitation(&id).await?)).await?;
            out.emit(&invitation_json(&invitation, SystemClock.now()), || {
                format!("invitation {id} revoked")
            })
        }
    }
}

/// An invitation with its link, shown this once (unless it was emailed).
fn print_invitation(
    out: Out,
    config: &Config,
    invitation: &crate::domain::Invitation,
    token: &str,
) -> anyhow::Result<()> {
    let mut doc = invitation_json(invitation, SystemClock.now());
    if let (true, Some(address)) = (invitation.emailed, &invitation.email) {
        // Not printed: opening it from that inbox is what proves the address.
        return out.emit(&doc, || {
            format!(
                "invitation {} emailed to {address} (expires {})",
                invitation.id,
                super::output::human_time(invitation.expires_at)
            )
        });
    }
    // Built from the configured issuer, never from anything a request said.
    let url = crate::ops::invitation_url(&config.issuer, token);
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("url".into(), Value::String(url.clone()));
    }
    out.emit(&doc, || {
        format!(
            "invitation {} (expires {}, {} use{}):\n{url}\nThe link is shown only once.",
            invitation.id,
            super::output::human_time(invitation.expires_at),
            invitation.uses,
            if invitation.uses == 1 { "" } else { "s" }
        )
    })
}
