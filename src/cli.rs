//! The `keyway` command line: `serve` (the default), `migrate`, and operator commands for users,
//! clients and signing keys. Every failure ends as one `error: ...` line on stderr and exit code 1
//! (2 for a command line clap cannot parse); `--json` makes each command print one JSON document.

use crate::app::{self, Application};
use crate::auth::password::{self, Passwords};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::{Config, Overrides};
use crate::domain::{Client, ClientKind, GrantType, NewUser, SigningAlg, User};
use crate::oidc::clients::{self, ClientSpec};
use crate::oidc::keys;
use crate::store::{Repos, StoredKey};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    /// Manage signing keys
    #[command(subcommand, arg_required_else_help = false)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
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
    /// Disable a user so they can no longer sign in
    Disable {
        /// The username
        username: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GrantArg {
    #[value(name = "authorization_code")]
    AuthorizationCode,
    #[value(name = "refresh_token")]
    RefreshToken,
    #[value(name = "client_credentials")]
    ClientCredentials,
}

impl From<GrantArg> for GrantType {
    fn from(g: GrantArg) -> Self {
        match g {
            GrantArg::AuthorizationCode => GrantType::AuthorizationCode,
            GrantArg::RefreshToken => GrantType::RefreshToken,
            GrantArg::ClientCredentials => GrantType::ClientCredentials,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<AlgArg> for SigningAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Rs256 => SigningAlg::RS256,
            AlgArg::Es256 => SigningAlg::ES256,
            AlgArg::EdDsa => SigningAlg::EdDSA,
        }
    }
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once
    Create {
        #[arg(long)]
        name: String,
        /// Allowed redirect URIs (exact match)
        #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
        redirect_uris: Vec<String>,
        /// Allowed post-logout redirect URIs
        #[arg(long = "post-logout-uri", value_name = "URI", num_args = 1..)]
        post_logout_uris: Vec<String>,
        /// A public client (native or browser app): no secret, PKCE only
        #[arg(long)]
        public: bool,
        /// Grant types [default: authorization_code refresh_token]
        #[arg(long = "grant", value_name = "GRANT", num_args = 1..)]
        grants: Vec<GrantArg>,
        /// Scopes the client may ask for [default: openid profile email groups offline_access]
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1..)]
        scopes: Vec<String>,
        /// Skip the consent page for this client
        #[arg(long)]
        first_party: bool,
        /// ID token signing algorithm
        #[arg(long, value_name = "ALG", default_value = "RS256")]
        id_token_alg: AlgArg,
        /// Issue refresh tokens even without the offline_access scope
        #[arg(long)]
        always_refresh: bool,
    },
    /// List clients
    List,
    /// Delete a client and everything issued to it
    Delete {
        /// The client_id
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List signing keys
    List,
    /// Add a new key per algorithm and retire the current ones
    Rotate,
}

/// Entry point for `main`: parses the command line, runs the command, maps failure to an exit code.
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
    let config = match Config::load(g.config, &env, &overrides) {
        Ok(c) => c,
        Err(e) => return failure(&e.to_string()),
    };
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

async fn execute(command: Option<Command>, config: Config, out: Out) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config, out).await,
        Command::User(cmd) => user(cmd, &config, out).await,
        Command::Client(cmd) => client(cmd, &config, out).await,
        Command::Keys(cmd) => keys_command(cmd, config, out).await,
    }
}

/// Where results go: human text or one JSON document, on stdout.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    /// Prints `json` in JSON mode, otherwise the human text.
    fn emit(self, json: &Value, human: impl FnOnce() -> String) -> anyhow::Result<()> {
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

fn now() -> UnixTime {
    SystemClock.now()
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

async fn open_store(config: &Config) -> anyhow::Result<Repos> {
    crate::store::open(&config.database_url, Arc::new(SystemClock))
        .await
        .with_context(|| format!("database_url: cannot open {}", config.database_url))
}

/// Runs `f` against the store and closes the pool afterwards, whatever `f` returned.
async fn with_store<T>(
    config: &Config,
    f: impl AsyncFnOnce(&Repos) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let repos = open_store(config).await?;
    let result = f(&repos).await;
    repos.maintenance.close().await;
    result
}

async fn migrate(config: &Config, out: Out) -> anyhow::Result<()> {
    with_store(config, async |_| Ok(())).await?;
    out.emit(&json!({ "migrated": true }), || "database migrated".into())
}

// ---- users ----

async fn user(cmd: UserCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            email,
            name,
            admin,
            password_stdin,
        } => {
            let new = NewUser {
                username,
                email,
                name,
                is_admin: admin,
            };
            new.validate().map_err(anyhow::Error::msg)?;
            // Everything that can be refused is checked before the user exists.
            let phc = if password_stdin {
                let pw = read_password_line()?;
                password::check_policy(&pw).map_err(anyhow::Error::msg)?;
                Some(Passwords::new(1).hash(&pw).await?)
            } else {
                None
            };
            let user = with_store(config, async |repos| {
                if repos.users.by_username(&new.username).await?.is_some() {
                    bail!("user {:?} already exists", new.username);
                }
                let now = now();
                let user = repos.users.create(&new, now).await?;
                if let Some(phc) = &phc {
                    repos
                        .passwords
                        .set(&user.id, phc, now)
                        .await
                        .with_context(|| {
                            format!(
                                "user {:?} was created but its password was not saved",
                                user.username
                            )
                        })?;
                }
                Ok(user)
            })
            .await?;
            out.emit(&serde_json::to_value(&user)?, || {
                let mut s = format!("created user {} (id {})", user.username, user.id);
                if user.is_admin {
                    s.push_str(", administrator");
                }
                if phc.is_some() {
                    s.push_str(", password set");
                }
                s
            })
        }
        UserCommand::List => {
            let users = with_store(config, async |repos| Ok(repos.users.list().await?)).await?;
            out.emit(&serde_json::to_value(&users)?, || users_table(&users))
        }
        UserCommand::Disable { username } => {
            let user = with_store(config, async |repos| {
                let user = repos
                    .users
                    .by_username(&username)
                    .await?
                    .ok_or_else(|| anyhow!("user {username:?} not found"))?;
                repos.users.set_disabled(&user.id, true, now()).await?;
                Ok(repos.users.by_id(&user.id).await?.unwrap_or(User {
                    disabled: true,
                    ..user
                }))
            })
            .await?;
            out.emit(&serde_json::to_value(&user)?, || {
                format!("user {} disabled", user.username)
            })
        }
    }
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

fn users_table(users: &[User]) -> String {
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

// ---- clients ----

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
        } => {
            let spec = ClientSpec {
                name,
                redirect_uris,
                post_logout_redirect_uris: post_logout_uris,
                public,
                grant_types: grants.into_iter().map(GrantType::from).collect(),
                // `--scope "openid email"` is what people type: accept it as two scopes.
                scopes: scopes
                    .iter()
                    .flat_map(|s| s.split_whitespace())
                    .map(str::to_owned)
                    .collect(),
                first_party,
                id_token_alg: id_token_alg.into(),
                refresh_always: always_refresh,
            };
            let (client, secret) = with_store(config, async |repos| {
                Ok(clients::register(repos.clients.as_ref(), spec, now()).await?)
            })
            .await?;
            let mut doc = client_json(&client);
            if let (Some(secret), Some(obj)) = (&secret, doc.as_object_mut()) {
                obj.insert("client_secret".into(), Value::String(secret.clone()));
            }
            out.emit(&doc, || {
                let mut s = format!(
                    "created {} client {:?}\nclient_id:     {}\n",
                    kind_name(&client),
                    client.name,
                    client.id
                );
                if let Some(secret) = &secret {
                    s.push_str(&format!("client_secret: {secret}\n"));
                    s.push_str("The client secret is shown only once: store it now (Keyway keeps only a hash).\n");
                }
                s
            })
        }
        ClientCommand::List => {
            let clients = with_store(config, async |repos| Ok(repos.clients.list().await?)).await?;
            let doc = Value::Array(clients.iter().map(client_json).collect());
            out.emit(&doc, || clients_table(&clients))
        }
        ClientCommand::Delete { id } => {
            with_store(config, async |repos| {
                if repos.clients.get(&id).await?.is_none() {
                    bail!("client {id:?} not found");
                }
                Ok(repos.clients.delete(&id).await?)
            })
            .await?;
            out.emit(&json!({ "deleted": id }), || format!("client {id} deleted"))
        }
    }
}

fn kind_name(c: &Client) -> &'static str {
    match c.kind() {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

fn client_json(c: &Client) -> Value {
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
        "created_at": c.created_at,
    })
}

fn clients_table(clients: &[Client]) -> String {
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

// ---- keys ----

async fn keys_command(cmd: KeysCommand, config: Config, out: Out) -> anyhow::Result<()> {
    let sealing_config = (config.secret_key.clone(), config.data_dir.clone());
    // build_state creates the first keys if there are none and proves the sealing key opens them.
    let state = app::build_state(config, Arc::new(SystemClock)).await?;
    let repo = state.repos.keys.clone();
    let result = async {
        match cmd {
            KeysCommand::List => {
                let keys = repo.list().await?;
                let doc = Value::Array(keys.iter().map(key_json).collect());
                out.emit(&doc, || keys_table(&keys))
            }
            KeysCommand::Rotate => {
                let sealing = keys::sealing_key(sealing_config.0.as_deref(), &sealing_config.1)?;
                let kids = keys::rotate(repo.as_ref(), &sealing, state.now()).await?;
                let all = repo.list().await?;
                let new: Vec<&StoredKey> = all.iter().filter(|k| kids.contains(&k.kid)).collect();
                let doc = json!({
                    "rotated": new.iter().map(|k| json!({ "kid": k.kid, "alg": k.alg })).collect::<Vec<_>>(),
                });
                out.emit(&doc, || {
                    let mut s = String::from("new signing keys (the previous ones are retired):\n");
                    for k in &new {
                        s.push_str(&format!("  {:<6} {}\n", k.alg, k.kid));
                    }
                    s.push_str("Running servers switch to them within a minute.");
                    s
                })
            }
        }
    }
    .await;
    state.repos.maintenance.close().await;
    result
}

fn key_status(k: &StoredKey) -> &'static str {
    if k.retired_at.is_none() {
        "active"
    } else {
        "retired"
    }
}

fn key_json(k: &StoredKey) -> Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "created_at": k.created_at,
        "retired_at": k.retired_at,
        "status": key_status(k),
    })
}

fn keys_table(keys: &[StoredKey]) -> String {
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.alg.clone(),
                human_time(k.created_at),
                k.retired_at.map(human_time).unwrap_or_default(),
                key_status(k).to_owned(),
            ]
        })
        .collect();
    table(&["KID", "ALG", "CREATED", "RETIRED", "STATUS"], rows)
}

// ---- formatting ----

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn human_time(t: UnixTime) -> String {
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
