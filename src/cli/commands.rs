//! What each command does: `serve` and `migrate` here, everything else through the operator
//! actions in `crate::ops` (the same ones the admin UI calls), printed through `output`.

use super::output::{
    Out, client_json, clients_table, invitation_json, invitations_table, key_json, keys_table,
    kind_name, users_table,
};
use super::{
    AuditArgs, ClientCommand, Command, GroupCommand, InviteCommand, KeysCommand, UserCommand,
};
use crate::app::{self, Application};
use crate::auth::password::Passwords;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::{Client, GrantType, NewUser};
use crate::oidc::clients::ClientSpec;
use crate::oidc::keys;
use crate::ops::{Actor, CreateInvitation, CreateUser, Operator};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::Arc;

pub(super) async fn execute(
    command: Option<Command>,
    config: Config,
    out: Out,
) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config, out).await,
        Command::User(cmd) => user(cmd, &config, out).await,
        Command::Client(cmd) => client(cmd, &config, out).await,
        Command::Group(cmd) => group(cmd, &config, out).await,
        Command::Audit(args) => audit(args, &config, out).await,
        Command::Keys(cmd) => keys_command(cmd, &config, out).await,
        Command::Invite(cmd) => invite(cmd, &config, out).await,
    }
}

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

async fn serve(config: Config) -> anyhow::Result<()> {
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
async fn with_operator<T>(
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

async fn migrate(config: &Config, out: Out) -> anyhow::Result<()> {
    with_operator(config, async |_| Ok(())).await?;
    out.emit(&json!({ "migrated": true }), || "database migrated".into())
}

async fn user(cmd: UserCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            email,
            name,
            admin,
            password_stdin,
        } => {
            let req = CreateUser {
                user: NewUser {
                    username,
                    email,
                    name,
                    is_admin: admin,
                },
                password: if password_stdin {
                    Some(read_password_line()?)
                } else {
                    None
                },
            };
            let with_password = req.password.is_some();
            let user = with_operator(config, async |ops| Ok(ops.create_user(req).await?)).await?;
            out.emit(&serde_json::to_value(&user)?, || {
                let mut s = format!("created user {} (id {})", user.username, user.id);
                if user.is_admin {
                    s.push_str(", administrator");
                }
                if with_password {
                    s.push_str(", password set");
                }
                s
            })
        }
        UserCommand::List => {
            let users = with_operator(config, async |ops| Ok(ops.list_users().await?)).await?;
            out.emit(&serde_json::to_value(&users)?, || users_table(&users))
        }
        UserCommand::Update { username, fields } => {
            let changes = fields.changes();
            if changes.0.is_empty() {
                bail!("user update: give at least one field to change (see --help)");
            }
            let user = with_operator(config, async |ops| {
                Ok(ops.update_user(&username, changes).await?)
            })
            .await?;
            out.emit(&serde_json::to_value(&user)?, || {
                format!("user {} updated", user.username)
            })
        }
        UserCommand::Disable { username } => {
            let user =
                with_operator(config, async |ops| Ok(ops.disable_user(&username).await?)).await?;
            out.emit(&serde_json::to_value(&user)?, || {
                format!("user {} disabled", user.username)
            })
        }
        UserCommand::Enable { username } => {
            let user =
                with_operator(config, async |ops| Ok(ops.enable_user(&username).await?)).await?;
            out.emit(&serde_json::to_value(&user)?, || {
                format!("user {} enabled", user.username)
            })
        }
        UserCommand::Delete { username, yes } => {
            if !yes {
                bail!("user delete cannot be undone: add --yes to delete {username:?}");
            }
            with_operator(config, async |ops| Ok(ops.delete_user(&username).await?)).await?;
            out.emit(&json!({ "deleted": username }), || {
                format!("user {username} deleted")
            })
        }
        UserCommand::Admin { username, revoke } => {
            let user = with_operator(config, async |ops| {
                Ok(ops.set_admin(&username, !revoke).await?)
            })
            .await?;
            out.emit(&serde_json::to_value(&user)?, || {
                if user.is_admin {
                    format!("user {} is an administrator", user.username)
                } else {
                    format!("user {} is no longer an administrator", user.username)
                }
            })
        }
        UserCommand::Groups { username, groups } => {
            with_operator(config, async |ops| {
                let ids = ops.group_ids(&groups).await?;
                Ok(ops.set_user_groups(&username, &ids).await?)
            })
            .await?;
            out.emit(&json!({ "username": username, "groups": groups }), || {
                format!("user {username} is in: {}", groups.join(", "))
            })
        }
        UserCommand::Passkeys { username, remove } => {
            let passkeys = with_operator(config, async |ops| {
                if let Some(id) = &remove {
                    ops.remove_user_passkey(&username, id).await?;
                }
                Ok(ops.user_passkeys(&username).await?)
            })
            .await?;
            let doc = Value::Array(
                passkeys
                    .iter()
                    .map(|p| {
                        json!({
                            "id": p.id,
                            "name": p.name,
                            "created_at": p.created_at,
                            "last_used_at": p.last_used_at,
                            "synced": p.backup_eligible,
                        })
                    })
                    .collect(),
            );
            out.emit(&doc, || {
                let mut lines: Vec<String> = passkeys
                    .iter()
                    .map(|p| format!("{}  {}", p.id, p.name))
                    .collect();
                if lines.is_empty() {
                    lines.push(format!("{username} has no passkey"));
                }
                if let Some(id) = &remove {
                    lines.insert(0, format!("passkey {id} removed"));
                }
                lines.join("\n")
            })
        }
        UserCommand::Signout { username } => {
            let ended =
                with_operator(config, async |ops| Ok(ops.sign_out_user(&username).await?)).await?;
            out.emit(
                &json!({ "username": username, "sessions_ended": ended }),
                || format!("{ended} session(s) of {username} ended"),
            )
        }
        UserCommand::Link { username, send } => {
            let secret = with_operator(config, async |ops| {
                Ok(ops.recovery_link(&username, send).await?)
            })
            .await?;
            if send {
                out.emit(&json!({ "username": username, "sent": true }), || {
                    format!("a sign-in link for {username} is queued for their email address")
                })
            } else {
                let url = crate::ops::recovery_url(&config.issuer, &secret);
                out.emit(&json!({ "username": username, "url": url }), || {
                    format!(
                        "{url}\nA single-use link for {username} to register a new passkey, valid 72 hours: shown only now."
                    )
                })
            }
        }
    }
}

async fn audit(args: AuditArgs, config: &Config, out: Out) -> anyhow::Result<()> {
    let (events, csv) = with_operator(config, async |ops| {
        let filter = crate::store::AuditFilter {
            user_id: match &args.user {
                Some(name) => Some(ops.user_by_name(name).await?.id),
                None => None,
            },
            client_id: args.client.clone(),
            event: args.event.clone(),
            outcome: args.outcome.clone(),
            from: args.since.map(|s| SystemClock.now() - s),
            until: None,
        };
        if args.csv {
            Ok((Vec::new(), Some(ops.audit_csv(&filter).await?)))
        } else {
            Ok((ops.audit_events(&filter, args.limit).await?, None))
        }
    })
    .await?;
    if let Some(csv) = csv {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(csv.as_bytes())?;
        return Ok(stdout.flush()?);
    }
    out.emit(&serde_json::to_value(&events)?, || {
        if events.is_empty() {
            return "no events".to_owned();
        }
        events
            .iter()
            .map(|e| {
                format!(
                    "{}  {} {}{}",
                    super::output::human_time(e.at),
                    e.event,
                    e.outcome,
                    e.detail
                        .as_deref()
                        .map(|d| format!("  ({d})"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

async fn group(cmd: GroupCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    let (doc, text) = with_operator(config, async |ops| {
        Ok(match cmd {
            GroupCommand::List => {
                let groups = ops.list_groups().await?;
                let doc = Value::Array(
                    groups
                        .iter()
                        .map(|g| json!({ "id": g.id, "name": g.name, "members": g.members }))
                        .collect(),
                );
                let text = if groups.is_empty() {
                    "no groups".to_owned()
                } else {
                    groups
                        .iter()
                        .map(|g| format!("{}\t{} member(s)", g.name, g.members))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                (doc, text)
            }
            GroupCommand::Create { name } => {
                let id = ops.create_group(&name).await?;
                (
                    json!({ "id": id, "name": name }),
                    format!("group {name} created"),
                )
            }
            GroupCommand::Rename { name, new_name } => {
                let id = ops.group_id(&name).await?;
                ops.rename_group(&id, &new_name).await?;
                (
                    json!({ "id": id, "name": new_name }),
                    format!("group {name} renamed to {new_name}"),
                )
            }
            GroupCommand::Delete { name } => {
                let id = ops.group_id(&name).await?;
                ops.delete_group(&id).await?;
                (json!({ "deleted": name }), format!("group {name} deleted"))
            }
            GroupCommand::Add { group, username } => {
                let id = ops.group_id(&group).await?;
                ops.add_member(&id, &username).await?;
                (
                    json!({ "group": group, "added": username }),
                    format!("{username} added to {group}"),
                )
            }
            GroupCommand::Remove { group, username } => {
                let id = ops.group_id(&group).await?;
                let user = ops.user_by_name(&username).await?;
                ops.remove_member(&id, &user.id).await?;
                (
                    json!({ "group": group, "removed": username }),
                    format!("{username} removed from {group}"),
                )
            }
        })
    })
    .await?;
    out.emit(&doc, || text)
}

/// One line from stdin, without its line ending. Not echoed anywhere.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    if n == 0 {
        bail!("--password-stdin: no password on stdin");
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn client(cmd: ClientCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_uris,
            public,
            grants,
            scopes,
            first_party,
            id_token_alg,
            always_refresh,
            require_passkey,
            no_magic_link,
            extra,
        } => {
            let mut spec = ClientSpec {
                name,
                redirect_uris,
                post_logout_redirect_uris: post_logout_uris,
                public,
                grant_types: grants.into_iter().map(GrantType::from).collect(),
                scopes: split_scopes(&scopes),
                first_party,
                id_token_alg: id_token_alg.into(),
                refresh_always: always_refresh,
                require_passkey,
                allow_magic_link: !no_magic_link,
                ..ClientSpec::default()
            };
            extra.apply(&mut spec)?;
            let (client, secret) =
                with_operator(config, async |ops| Ok(ops.create_client(spec).await?)).await?;
            print_client(out, "created", &client, secret.as_deref())
        }
        ClientCommand::Update {
            id,
            name,
            redirect_uris,
            post_logout_uris,
            public,
            grants,
            scopes,
            first_party,
            id_token_alg,
            always_refresh,
            require_passkey,
            magic_link,
            extra,
        } => {
            let (client, secret) = with_operator(config, async |ops| {
                let current = ops.client(&id).await?;
                let mut spec = ClientSpec::of(&current);
                spec.name = name.unwrap_or(spec.name);
                spec.redirect_uris = redirect_uris.unwrap_or(spec.redirect_uris);
                spec.post_logout_redirect_uris =
                    post_logout_uris.unwrap_or(spec.post_logout_redirect_uris);
                spec.public = public.unwrap_or(spec.public);
                if let Some(grants) = grants {
                    spec.grant_types = grants.into_iter().map(GrantType::from).collect();
                }
                if let Some(scopes) = scopes {
                    spec.scopes = split_scopes(&scopes);
                }
                spec.first_party = first_party.unwrap_or(spec.first_party);
                spec.id_token_alg = id_token_alg.map_or(spec.id_token_alg, Into::into);
                spec.refresh_always = always_refresh.unwrap_or(spec.refresh_always);
                spec.require_passkey = require_passkey.unwrap_or(spec.require_passkey);
                spec.allow_magic_link = magic_link.unwrap_or(spec.allow_magic_link);
                extra.apply(&mut spec)?;
                Ok(ops.update_client(&id, spec).await?)
            })
            .await?;
            print_client(out, "updated", &client, secret.as_deref())
        }
        ClientCommand::RotateSecret { id, overlap } => {
            let (client, secret) = with_operator(config, async |ops| {
                Ok(ops.rotate_client_secret(&id, overlap).await?)
            })
            .await?;
            print_client(out, "rotated the secret of", &client, Some(&secret))
        }
        ClientCommand::Groups { id, groups } => {
            with_operator(config, async |ops| {
                let ids = ops.group_ids(&groups).await?;
                Ok(ops.set_client_groups(&id, ids).await?)
            })
            .await?;
            out.emit(&json!({ "client_id": id, "groups": groups }), || {
                if groups.is_empty() {
                    format!("client {id}: everyone may sign in")
                } else {
                    format!(
                        "client {id}: only members of {} may sign in",
                        groups.join(", ")
                    )
                }
            })
        }
        ClientCommand::List => {
            let clients = with_operator(config, async |ops| Ok(ops.list_clients().await?)).await?;
            let doc = Value::Array(clients.iter().map(client_json).collect());
            out.emit(&doc, || clients_table(&clients))
        }
        ClientCommand::Delete { id } => {
            with_operator(config, async |ops| Ok(ops.delete_client(&id).await?)).await?;
            out.emit(&json!({ "deleted": id }), || format!("client {id} deleted"))
        }
    }
}

/// `--scope "openid email"` is what people type: accept it as two scopes.
fn split_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect()
}

fn print_client(out: Out, done: &str, client: &Client, secret: Option<&str>) -> anyhow::Result<()> {
    let mut doc = client_json(client);
    if let (Some(secret), Some(obj)) = (secret, doc.as_object_mut()) {
        obj.insert("client_secret".into(), Value::String(secret.to_owned()));
    }
    out.emit(&doc, || {
        let mut s = format!(
            "{done} {} client {:?}\nclient_id:     {}\n",
            kind_name(client),
            client.name,
            client.id
        );
        if let Some(secret) = secret {
            s.push_str(&format!("client_secret: {secret}\n"));
            s.push_str(
                "The client secret is shown only once: store it now (Keyway keeps only a hash).\n",
            );
        }
        if let Some((_, until)) = &client.previous_secret {
            s.push_str(&format!(
                "The previous secret keeps working until {}.\n",
                super::output::human_time(*until)
            ));
        }
        s
    })
}

impl super::ClientExtras {
    fn apply(self, spec: &mut ClientSpec) -> anyhow::Result<()> {
        if let Some(logo) = self.logo_uri {
            spec.logo_uri = Some(logo).filter(|l| !l.is_empty());
        }
        let lifetime = |v: Option<i64>, current: Option<u32>| -> anyhow::Result<Option<u32>> {
            match v {
                None => Ok(current),
                Some(0) => Ok(None),
                Some(s) => Ok(Some(u32::try_from(s).context("lifetime too long")?)),
            }
        };
        let l = &mut spec.lifetimes;
        l.access_token = lifetime(self.access_token_ttl, l.access_token)?;
        l.id_token = lifetime(self.id_token_ttl, l.id_token)?;
        l.refresh_token = lifetime(self.refresh_token_ttl, l.refresh_token)?;
        Ok(())
    }
}

async fn keys_command(cmd: KeysCommand, config: &Config, out: Out) -> anyhow::Result<()> {
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

async fn invite(cmd: InviteCommand, config: &Config, out: Out) -> anyhow::Result<()> {
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
            // Built from the configured issuer, never from anything a request said.
            let url = crate::ops::invitation_url(&config.issuer, &token);
            let mut doc = invitation_json(&invitation, SystemClock.now());
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
