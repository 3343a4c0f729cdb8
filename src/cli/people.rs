//! The commands about people: users (their flag, groups, passkeys, sessions and sign-in links),
//! groups, and the audit log, each through an operator action as the admin UI's.

use super::commands::with_operator;
use super::output::{Out, users_table};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::NewUser;
use crate::ops::CreateUser;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::Write;

#[derive(Debug, Subcommand)]
pub(super) enum UserCommand {
    /// Create a user
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator
        #[arg(long)]
        admin: bool,
        /// Read a password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List,
    /// Set or clear a user's email, name and profile claims (an empty value clears a field)
    Update {
        /// The username
        username: String,
        #[command(flatten)]
        fields: Box<UserFields>,
    },
    /// Disable a user so they can no longer sign in
    Disable {
        /// The username
        username: String,
    },
    /// Let a disabled user sign in again
    Enable {
        /// The username
        username: String,
    },
    /// Delete a user with their passkeys, sessions, tokens and memberships
    Delete {
        /// The username
        username: String,
        /// Confirm: the deletion cannot be undone
        #[arg(long)]
        yes: bool,
    },
    /// Make a user an administrator (or, with --revoke, no longer one)
    Admin {
        /// The username
        username: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Put a user in exactly these groups; no --group: in none
    Groups {
        /// The username
        username: String,
        /// Group names
        #[arg(long = "group", value_name = "GROUP", num_args = 0..)]
        groups: Vec<String>,
    },
    /// List a user's passkeys, or remove one (never their last way to sign in)
    Passkeys {
        /// The username
        username: String,
        /// The id of the passkey to remove
        #[arg(long, value_name = "ID")]
        remove: Option<String>,
    },
    /// End every browser session of a user
    Signout {
        /// The username
        username: String,
    },
    /// A single-use link (72 hours) with which the user registers a new passkey and signs in
    Link {
        /// The username
        username: String,
        /// Email it to the user's address instead of printing it
        #[arg(long)]
        send: bool,
    },
}

#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    /// Only this user's events (username)
    #[arg(long)]
    user: Option<String>,
    /// Only this client's events (client_id)
    #[arg(long)]
    client: Option<String>,
    /// An event, or a family such as `passkey`
    #[arg(long)]
    event: Option<String>,
    /// success, failure or limited
    #[arg(long)]
    outcome: Option<String>,
    /// Only the last 30m, 24h, 7d...
    #[arg(long, value_parser = crate::clock::parse_duration)]
    since: Option<i64>,
    /// At most this many events (--csv: every match, up to 100000)
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// CSV, as the admin UI exports it
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum GroupCommand {
    /// List groups with their member counts
    List,
    /// Create a group
    Create { name: String },
    /// Rename a group
    Rename { name: String, new_name: String },
    /// Delete a group (its members stay)
    Delete { name: String },
    /// Add a user to a group
    Add { group: String, username: String },
    /// Remove a user from a group
    Remove { group: String, username: String },
}

/// The user fields `user update` can set; each maps to an OIDC Core §5.1 claim.
#[derive(Debug, Args)]
pub(super) struct UserFields {
    #[arg(long)]
    email: Option<String>,
    /// Display name (the `name` claim)
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    given_name: Option<String>,
    #[arg(long)]
    family_name: Option<String>,
    #[arg(long)]
    middle_name: Option<String>,
    #[arg(long)]
    nickname: Option<String>,
    /// URL of the user's profile page
    #[arg(long, value_name = "URL")]
    profile: Option<String>,
    /// URL of the user's picture
    #[arg(long, value_name = "URL")]
    picture: Option<String>,
    #[arg(long, value_name = "URL")]
    website: Option<String>,
    #[arg(long)]
    gender: Option<String>,
    /// YYYY-MM-DD, 0000-MM-DD or YYYY
    #[arg(long)]
    birthdate: Option<String>,
    /// Time zone, e.g. Europe/Paris
    #[arg(long)]
    zoneinfo: Option<String>,
    /// Language tag, e.g. en-US
    #[arg(long)]
    locale: Option<String>,
    /// E.164 recommended, e.g. +14255551212
    #[arg(long)]
    phone_number: Option<String>,
    /// true or false
    #[arg(long, value_name = "BOOL")]
    phone_number_verified: Option<String>,
    /// The whole postal address as one text
    #[arg(long)]
    address_formatted: Option<String>,
    #[arg(long)]
    street_address: Option<String>,
    /// City
    #[arg(long)]
    locality: Option<String>,
    /// State, province or region
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    postal_code: Option<String>,
    #[arg(long)]
    country: Option<String>,
}

impl UserFields {
    /// The fields given on the command line, in a fixed order.
    fn changes(self) -> crate::ops::UserChanges {
        use crate::ops::Field as F;
        let all = [
            (F::Email, self.email),
            (F::Name, self.name),
            (F::GivenName, self.given_name),
            (F::FamilyName, self.family_name),
            (F::MiddleName, self.middle_name),
            (F::Nickname, self.nickname),
            (F::Profile, self.profile),
            (F::Picture, self.picture),
            (F::Website, self.website),
            (F::Gender, self.gender),
            (F::Birthdate, self.birthdate),
            (F::Zoneinfo, self.zoneinfo),
            (F::Locale, self.locale),
            (F::PhoneNumber, self.phone_number),
            (F::PhoneNumberVerified, self.phone_number_verified),
            (F::AddressFormatted, self.address_formatted),
            (F::StreetAddress, self.street_address),
            (F::Locality, self.locality),
            (F::Region, self.region),
            (F::PostalCode, self.postal_code),
            (F::Country, self.country),
        ];
        crate::ops::UserChanges(
            all.into_iter()
                .filter_map(|(f, v)| v.map(|v| (f, Some(v))))
                .collect(),
        )
    }
}

pub(super) async fn user(cmd: UserCommand, config: &Config, out: Out) -> anyhow::Result<()> {
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

pub(super) async fn audit(args: AuditArgs, config: &Config, out: Out) -> anyhow::Result<()> {
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

pub(super) async fn group(cmd: GroupCommand, config: &Config, out: Out) -> anyhow::Result<()> {
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
