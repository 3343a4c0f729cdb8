//! The `keyway` command line: `serve` (the default), `migrate`, and operator commands for users,
//! clients and signing keys. Every failure ends as one `error: ...` line on stderr and exit code 1
//! (2 for a command line clap cannot parse); `--json` makes each command print one JSON document.

mod commands;
mod output;

use crate::config::{Config, Overrides};
use crate::domain::{GrantType, SigningAlg};
use clap::{Args, Parser, Subcommand, ValueEnum};
use commands::execute;
use output::Out;
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
struct AuditArgs {
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
    #[arg(long, value_parser = parse_duration)]
    since: Option<i64>,
    /// At most this many events (--csv: every match, up to 100000)
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// CSV, as the admin UI exports it
    #[arg(long)]
    csv: bool,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
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
struct UserFields {
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
        /// Accept only a passkey sign-in (acr "phr"): users signed in otherwise are asked for one
        #[arg(long)]
        require_passkey: bool,
        /// Refuse sign-ins by emailed link (for example for an admin application)
        #[arg(long)]
        no_magic_link: bool,
        #[command(flatten)]
        extra: ClientExtras,
    },
    /// Change a client's settings: each option given replaces that setting (lists whole)
    Update {
        /// The client_id
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
        redirect_uris: Option<Vec<String>>,
        /// Post-logout redirect URIs; "--post-logout-uri" alone clears them
        #[arg(long = "post-logout-uri", value_name = "URI", num_args = 0..)]
        post_logout_uris: Option<Vec<String>>,
        /// Make the client public (true: drops its secret) or confidential (false: prints a new secret)
        #[arg(long, value_name = "BOOL")]
        public: Option<bool>,
        #[arg(long = "grant", value_name = "GRANT", num_args = 1..)]
        grants: Option<Vec<GrantArg>>,
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1..)]
        scopes: Option<Vec<String>>,
        #[arg(long, value_name = "BOOL")]
        first_party: Option<bool>,
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<AlgArg>,
        #[arg(long, value_name = "BOOL")]
        always_refresh: Option<bool>,
        #[arg(long, value_name = "BOOL")]
        require_passkey: Option<bool>,
        #[arg(long, value_name = "BOOL")]
        magic_link: Option<bool>,
        #[command(flatten)]
        extra: ClientExtras,
    },
    /// Give a confidential client a new secret (printed once); the old one keeps working for the overlap
    RotateSecret {
        /// The client_id
        id: String,
        /// How long the old secret keeps working: 0, 30m, 24h, 7d (at most 30d)
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        overlap: i64,
    },
    /// Let only members of these groups sign in to a client; no --group: everyone
    Groups {
        /// The client_id
        id: String,
        /// Group names
        #[arg(long = "group", value_name = "GROUP", num_args = 0..)]
        groups: Vec<String>,
    },
    /// List clients
    List,
    /// Delete a client and everything issued to it
    Delete {
        /// The client_id
        id: String,
    },
}

/// Client settings `create` and `update` share; on `update`, a lifetime of 0 means the server's.
#[derive(Debug, Args)]
struct ClientExtras {
    /// URL of the application's logo (https), shown on the sign-in page; "" clears it
    #[arg(long, value_name = "URL")]
    logo_uri: Option<String>,
    /// Access token lifetime for this client: 15m, 1h or seconds [default: the server's]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    access_token_ttl: Option<i64>,
    /// ID token lifetime for this client (at most the server's)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    id_token_ttl: Option<i64>,
    /// How long a refresh chain may live for this client: 30d or seconds
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    refresh_token_ttl: Option<i64>,
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
        #[arg(long, default_value = "72h", value_parser = parse_duration)]
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
}

fn parse_duration(text: &str) -> Result<i64, String> {
    crate::clock::parse_duration(text)
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
