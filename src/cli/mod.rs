//! The `keyway` command line: `serve` (the default), `migrate`, and operator commands for users,
//! clients and signing keys. Every failure ends as one `error: ...` line on stderr and exit code 1
//! (2 for a command line clap cannot parse); `--json` makes each command print one JSON document.

mod clients;
mod commands;
mod output;
mod people;

use crate::config::{Config, Overrides};
use clap::{Args, Parser, Subcommand};
use clients::ClientCommand;
use output::Out;
use people::{AuditArgs, GroupCommand, UserCommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "keyway",
    version,
    about = "A self-hosted OpenID Connect provider"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Configuration file [default: keyway.toml]
    #[arg(long, global = true, env = "KEYWAY_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Public issuer URL, e.g. https://id.example.com
    #[arg(long, global = true, value_name = "URL")]
    issuer: Option<String>,
    /// Address to listen on, e.g. 127.0.0.1:8080
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    /// Database, e.g. sqlite://data/keyway.db
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Directory for the secret key file and other state
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<String>,
    /// Print one JSON document on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Start afresh on an empty or missing database although data_dir holds the key file of an
    /// earlier start
    #[arg(long, global = true)]
    init: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default)
    Serve,
    /// Create or upgrade the database schema
    Migrate,
    /// Manage users
    #[command(subcommand, arg_required_else_help = false)]
    User(UserCommand),
    /// Manage relying parties (OAuth clients)
    #[command(subcommand, arg_required_else_help = false)]
    Client(ClientCommand),
    /// Manage groups
    #[command(subcommand, arg_required_else_help = false)]
    Group(GroupCommand),
    /// Read the audit log, newest first
    Audit(AuditArgs),
    /// Manage signing keys
    #[command(subcommand, arg_required_else_help = false)]
    Keys(KeysCommand),
    /// Invite people: links that let them create their account
    #[command(subcommand, arg_required_else_help = false)]
    Invite(InviteCommand),
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Create an invitation and print its link (shown once: only its hash is kept)
    Create {
        /// Proposed username
        #[arg(long)]
        username: Option<String>,
        /// The account's email, fixed
        #[arg(long)]
        email: Option<String>,
        /// Display name
        #[arg(long)]
        name: Option<String>,
        /// Groups the new account joins
        #[arg(long = "group", value_name = "GROUP", num_args = 1..)]
        groups: Vec<String>,
        /// Make the new account an administrator
        #[arg(long)]
        admin: bool,
        /// How long the link works: 30m, 72h, 7d or seconds
        #[arg(long, default_value = "72h", value_parser = crate::clock::parse_duration)]
        expires: i64,
        /// Accounts the link may create
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Email the link to --email (a running server sends it from its outbox)
        #[arg(long)]
        send: bool,
    },
    /// List invitations with their status
    List,
    /// Revoke an invitation
    Revoke {
        /// The invitation id
        id: String,
    },
    /// A new link for a pending invitation (the old one stops working), printed once
    Link {
        /// The invitation id
        id: String,
        /// Also email it to the invitation's address
        #[arg(long)]
        send: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List signing keys
    List,
    /// Add a new key per algorithm: published now, signing after keys.prepublish (a day by
    /// default), when the current ones retire
    Rotate {
        /// Sign with the new keys at once (relying parties with a cached JWKS may fail to
        /// verify the first tokens for up to 5 minutes)
        #[arg(long)]
        now: bool,
    },
}

/// Entry point for `main`: parses the command line, runs the command, maps failure to an exit code.
async fn execute(command: Option<Command>, config: Config, out: Out) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve(config).await,
        Command::Migrate => commands::migrate(&config, out).await,
        Command::User(cmd) => people::user(cmd, &config, out).await,
        Command::Client(cmd) => clients::client(cmd, &config, out).await,
        Command::Group(cmd) => people::group(cmd, &config, out).await,
        Command::Audit(args) => people::audit(args, &config, out).await,
        Command::Keys(cmd) => commands::keys_command(cmd, &config, out).await,
        Command::Invite(cmd) => commands::invite(cmd, &config, out).await,
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_failure(&e),
    };
    let g = cli.global;
    let overrides = Overrides {
        issuer: g.issuer,
        listen: g.listen,
        database_url: g.database_url,
        data_dir: g.data_dir,
    };
    // vars_os: a variable that is not UTF-8 must not abort the program; it cannot be ours anyway.
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut config = match Config::load(g.config, &env, &overrides) {
        Ok(c) => c,
        Err(e) => return failure(&e.to_string()),
    };
    config.init = g.init;
    let out = Out { json: g.json };
    // The blocking pool only runs CPU-bound work (signing, password hashing): more threads than
    // cores would not go faster, and each thread's allocator arena keeps memory of its own.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .max_blocking_threads((2 * cores).max(4))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failure(&format!("cannot start the async runtime: {e}")),
    };
    match runtime.block_on(execute(cli.command, config, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&format!("{e:#}")),
    }
}

fn failure(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {}", one_line(message));
    ExitCode::FAILURE
}

/// Collapses any line breaks and runs of whitespace so an error is a single line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clap_failure(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = writeln!(
                std::io::stderr(),
                "error: a subcommand is required (see --help)"
            );
            ExitCode::from(2)
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                clap_one_line(&e.to_string())
            );
            ExitCode::from(2)
        }
    }
}

/// clap's multi-line message as one line: the first line without its `error: ` prefix, then the
/// lines that carry information (tips, possible values), without the usage block and the
/// "For more information" hint.
fn clap_one_line(message: &str) -> String {
    let mut lines = message.lines();
    let first = lines.next().unwrap_or_default().trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim();
    let mut parts = vec![first.to_owned()];
    let mut in_usage = false;
    for line in lines {
        let t = line.trim();
        if t.is_empty() {
            in_usage = false;
            continue;
        }
        if t.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if in_usage || t.starts_with("For more information") {
            continue;
        }
        parts.push(t.to_owned());
    }
    one_line(&parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn clap_errors_become_one_line() {
        let e = Cli::try_parse_from([
            "keyway", "client", "create", "--name", "x", "--grant", "implicit",
        ])
        .unwrap_err();
        let line = clap_one_line(&e.to_string());
        assert!(
            !line.contains('\n') && !line.starts_with("error:"),
            "{line}"
        );
        assert!(
            line.contains("implicit") && line.contains("authorization_code"),
            "{line}"
        );
        assert!(
            !line.contains("Usage") && !line.contains("For more information"),
            "{line}"
        );
    }

    #[test]
    fn nested_command_without_subcommand_is_an_error_not_help() {
        let e = Cli::try_parse_from(["keyway", "user"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingSubcommand);
        let line = clap_one_line(&e.to_string());
        assert!(line.contains("create") && line.contains("list"), "{line}");
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["keyway", "user", "list", "--json", "--data-dir", "/tmp/x"])
            .unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.data_dir.as_deref(), Some("/tmp/x"));
    }
}
