//! Layered configuration: built-in defaults → keyway.toml → KEYWAY_* environment → command-line flags.
//! `Config::load` validates everything and reports the first problem in one line naming the setting.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

mod email;
mod metrics;

pub use email::{
    AdminSettings, AuditSettings, AuthSettings, Email, EmailSettings, MailTransport, SmtpSettings,
    SmtpTls,
};
pub use metrics::{Metrics, MetricsSettings};

/// Token, code and session lifetimes, in seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    pub authorization_code: u64,
    pub access_token: u64,
    pub id_token: u64,
    /// A refresh token unused this long expires.
    pub refresh_token_idle: u64,
    /// No refresh chain outlives this, however often it is used.
    pub refresh_token_absolute: u64,
    /// A browser session unused this long ends.
    pub session_idle: u64,
    /// No browser session outlives this.
    pub session_absolute: u64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            authorization_code: 60,
            access_token: 3600,
            id_token: 3600,
            refresh_token_idle: 14 * 86400,
            refresh_token_absolute: 90 * 86400,
            session_idle: 86400,
            session_absolute: 14 * 86400,
        }
    }
}

/// Refresh token rotation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RefreshSettings {
    /// Seconds after a rotation during which the rotated token, presented again before its
    /// successor has been used, gets a new token pair instead of revoking the grant (two tabs,
    /// a retry after a timeout).
    pub reuse_grace: u64,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        Self { reuse_grace: 10 }
    }
}

/// Limits on credential guessing (see `crate::throttle`): how many per window, after which
/// the key waits until the limiter takes another (window / limit seconds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Seconds over which the limits below are counted.
    pub window: u64,
    /// Sign-in attempts per account from one IP (any method); five times this per account
    /// from anywhere.
    pub account_attempts: u32,
    /// Sign-in attempts per client IP (an IPv6 /64 counts as one).
    pub ip_attempts: u32,
    /// Failed client authentications per client and IP, at the token, revocation and
    /// introspection endpoints.
    pub client_failures: u32,
    /// Failed client authentications per client IP.
    pub client_ip_failures: u32,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            window: 300,
            account_attempts: 10,
            ip_attempts: 50,
            client_failures: 10,
            client_ip_failures: 50,
        }
    }
}

/// Signing key rotation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Seconds a rotated-in key is published before it signs; longer than the JWKS cache
    /// lifetime (300 s), so relying parties know a key before they meet it.
    pub prepublish: u64,
    /// Rotate automatically when the newest keys are this many seconds old; 0: never (rotate
    /// with `keyway keys rotate` or the admin UI).
    pub rotate_every: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            prepublish: 86400,
            rotate_every: 0,
        }
    }
}

/// How long relying parties may cache the JWKS (its Cache-Control max-age).
pub const JWKS_MAX_AGE: u64 = 300;
/// How often a running server re-reads its keys (and does its other maintenance).
pub const KEY_RELOAD: u64 = 60;

/// Database behaviour under trouble.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// How long a request waits for a database held by someone else before it answers 503.
    pub busy_timeout_ms: u64,
}

impl DatabaseSettings {
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            busy_timeout: std::time::Duration::from_millis(self.busy_timeout_ms),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            busy_timeout_ms: 1000,
        }
    }
}

/// The raw configuration as read from all layers.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub issuer: String,
    pub listen: Option<String>,
    pub database_url: String,
    pub data_dir: String,
    pub insecure_http: bool,
    /// 32 bytes (hex or base64) sealing private signing keys; a key file in data_dir otherwise.
    pub secret_key: Option<String>,
    /// Password hashes computed at once (each argon2id takes ~19 MiB and one core for ~25 ms);
    /// 0 means half the CPU cores, at least one.
    pub password_hash_concurrency: usize,
    /// `text` or `json`.
    pub log_format: String,
    /// Threads serving requests (the group-commit writer runs among them); 0 means one per CPU
    /// core.
    pub workers: usize,
    pub lifetimes: Lifetimes,
    pub refresh: RefreshSettings,
    pub database: DatabaseSettings,
    pub throttle: ThrottleSettings,
    pub keys: KeySettings,
    /// Reverse proxies (IP addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client; empty: the socket's peer is the client.
    pub trusted_proxies: Vec<String>,
    pub email: EmailSettings,
    pub auth: AuthSettings,
    pub admin: AdminSettings,
    pub audit: AuditSettings,
    pub metrics: MetricsSettings,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            listen: None,
            database_url: "sqlite://data/keyway.db".into(),
            data_dir: "./data".into(),
            insecure_http: false,
            secret_key: None,
            password_hash_concurrency: 0,
            log_format: "text".into(),
            workers: 0,
            lifetimes: Lifetimes::default(),
            refresh: RefreshSettings::default(),
            database: DatabaseSettings::default(),
            throttle: ThrottleSettings::default(),
            keys: KeySettings::default(),
            trusted_proxies: Vec::new(),
            email: EmailSettings::default(),
            auth: AuthSettings::default(),
            admin: AdminSettings::default(),
            audit: AuditSettings::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

/// Validated configuration.
#[derive(Clone)]
pub struct Config {
    /// No trailing slash, no query, no fragment.
    pub issuer: String,
    pub issuer_url: Url,
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub insecure_http: bool,
    pub secret_key: Option<String>,
    pub password_hash_concurrency: usize,
    pub log_format: String,
    pub workers: usize,
    pub lifetimes: Lifetimes,
    pub refresh: RefreshSettings,
    pub database: DatabaseSettings,
    pub throttle: ThrottleSettings,
    pub keys: KeySettings,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub email: Email,
    pub auth: AuthSettings,
    /// Where the admin UI reaches this server (`admin.internal_url`), no trailing slash.
    pub admin_internal_url: Url,
    pub audit: AuditSettings,
    pub metrics: Metrics,
    /// `--init`: start afresh on an empty database even though data_dir holds a key file from
    /// an earlier start. Only from the command line.
    pub init: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("listen", &self.listen)
            .field("database_url", &self.database_url)
            .field("data_dir", &self.data_dir)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Settings given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

pub(crate) fn err(setting: &str, problem: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{setting}: {problem}"))
}

impl Config {
    /// Reads every layer. `file` is the config file path (`--config` / `KEYWAY_CONFIG`); a missing
    /// file is fine, only the defaults apply then.
    pub fn load(
        file: Option<PathBuf>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let path = file.unwrap_or_else(|| PathBuf::from("keyway.toml"));
        let env_figment = env_provider(env);
        let raw: RawConfig = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::file(&path))
            .merge(env_figment)
            .merge(Named("command-line flags", overrides))
            .extract()
            .map_err(|e| ConfigError(one_line_figment_error(&e)))?;
        Self::validate(raw)
    }

    /// Configuration from defaults plus the given raw values (tests build it this way).
    pub fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        let issuer_url = Url::parse(&raw.issuer)
            .map_err(|e| err("issuer", format!("{:?} is not a URL ({e})", raw.issuer)))?;
        if !matches!(issuer_url.scheme(), "http" | "https") {
            return Err(err("issuer", "must be an http or https URL"));
        }
        if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
            return Err(err("issuer", "must not have a query or fragment"));
        }
        if !issuer_url.username().is_empty() || issuer_url.password().is_some() {
            return Err(err("issuer", "must not contain credentials"));
        }
        let host = issuer_url.host_str().unwrap_or_default();
        let loopback = is_loopback_host(host);
        if issuer_url.scheme() == "http" && !loopback && !raw.insecure_http {
            return Err(err(
                "issuer",
                format!(
                    "http is only allowed on a loopback host ({host} is not); use https or set insecure_http = true"
                ),
            ));
        }
        let issuer = raw.issuer.trim_end_matches('/').to_owned();
        let listen_text = raw.listen.clone().unwrap_or_else(|| {
            format!(
                "127.0.0.1:{}",
                issuer_url
                    .port_or_known_default()
                    .filter(|_| issuer_url.port().is_some())
                    .unwrap_or(8080)
            )
        });
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        if !raw.database_url.starts_with("sqlite:") {
            return Err(err(
                "database_url",
                format!(
                    "{:?} is not supported (use sqlite://path)",
                    raw.database_url
                ),
            ));
        }
        if raw.password_hash_concurrency > 256 {
            return Err(err("password_hash_concurrency", "must be at most 256"));
        }
        if raw.workers > 1024 {
            return Err(err("workers", "must be at most 1024"));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = match raw.workers {
            0 => cores,
            n => n,
        };
        let password_hash_concurrency = match raw.password_hash_concurrency {
            // Half the cores: the other half keeps serving requests during a burst of sign-ins.
            0 => (cores / 2).max(1),
            n => n,
        };
        if !matches!(raw.log_format.as_str(), "text" | "json") {
            return Err(err("log_format", "must be text or json"));
        }
        let l = &raw.lifetimes;
        for (name, v) in [
            ("lifetimes.authorization_code", l.authorization_code),
            ("lifetimes.access_token", l.access_token),
            ("lifetimes.id_token", l.id_token),
            ("lifetimes.refresh_token_idle", l.refresh_token_idle),
            ("lifetimes.refresh_token_absolute", l.refresh_token_absolute),
            ("lifetimes.session_idle", l.session_idle),
            ("lifetimes.session_absolute", l.session_absolute),
        ] {
            if v == 0 || v > 10 * 365 * 86400 {
                return Err(err(name, "must be between 1 second and 10 years"));
            }
        }
        if raw.refresh.reuse_grace > 300 {
            return Err(err(
                "refresh.reuse_grace",
                "must be at most 300 seconds (0 turns it off)",
            ));
        }
        if !(50..=60_000).contains(&raw.database.busy_timeout_ms) {
            return Err(err(
                "database.busy_timeout_ms",
                "must be between 50 and 60000 milliseconds",
            ));
        }
        let t = &raw.throttle;
        if t.window == 0 || t.window > 86400 {
            return Err(err("throttle.window", "must be between 1 second and a day"));
        }
        for (name, v) in [
            ("throttle.account_attempts", t.account_attempts),
            ("throttle.ip_attempts", t.ip_attempts),
            ("throttle.client_failures", t.client_failures),
            ("throttle.client_ip_failures", t.client_ip_failures),
        ] {
            if v == 0 || v > 100_000 {
                return Err(err(name, "must be between 1 and 100000"));
            }
        }
        // A server publishes a new key within KEY_RELOAD of its creation; a relying party may
        // then keep its older JWKS for JWKS_MAX_AGE more.
        let floor = JWKS_MAX_AGE + KEY_RELOAD;
        if raw.keys.prepublish <= floor || raw.keys.prepublish > 90 * 86400 {
            return Err(err(
                "keys.prepublish",
                format!(
                    "must be more than {floor} s (the JWKS cache lifetime plus the key reload interval) and at most 90 days"
                ),
            ));
        }
        let every = raw.keys.rotate_every;
        if every != 0
            && (every <= raw.keys.prepublish || !(86400..=5 * 365 * 86400).contains(&every))
        {
            return Err(err(
                "keys.rotate_every",
                "must be 0 (off), or longer than keys.prepublish, at least a day and at most 5 years",
            ));
        }
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        err(
                            "trusted_proxies",
                            format!("{p:?} is not an IP address or CIDR range"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(k) = &raw.secret_key
            && crate::crypto::SealingKey::parse(k).is_none()
        {
            return Err(err(
                "secret_key",
                "must be 32 bytes as 64 hex digits or base64",
            ));
        }
        let email = raw.email.validate(host, &raw.data_dir)?;
        raw.auth.validate()?;
        let admin_internal_url = raw.admin.validate(listen)?;
        raw.audit.validate()?;
        let metrics = raw.metrics.validate(listen)?;
        Ok(Config {
            issuer,
            issuer_url,
            listen,
            database_url: raw.database_url,
            data_dir: PathBuf::from(raw.data_dir),
            insecure_http: raw.insecure_http,
            secret_key: raw.secret_key,
            password_hash_concurrency,
            log_format: raw.log_format,
            workers,
            lifetimes: raw.lifetimes,
            refresh: raw.refresh,
            database: raw.database,
            throttle: raw.throttle,
            keys: raw.keys,
            trusted_proxies,
            email,
            auth: raw.auth,
            admin_internal_url,
            audit: raw.audit,
            metrics,
            init: false,
        })
    }

    /// The line logged at start when mail would not reach anyone: the development transport on
    /// an issuer that is not loopback.
    pub fn email_warning(&self) -> Option<&'static str> {
        let host = self.issuer_url.host_str().unwrap_or_default();
        (matches!(self.email.transport, MailTransport::Log) && !is_loopback_host(host)).then_some(
            "email.transport is \"log\": messages (sign-in links included) go to this log, not to anyone's inbox; set email.transport to smtp",
        )
    }

    pub fn is_https(&self) -> bool {
        self.issuer_url.scheme() == "https"
    }
}

pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// KEYWAY_* variables, nested keys joined by `__`. KEYWAY_CONFIG names the file and is not a key.
fn env_provider(env: &[(String, String)]) -> Named<toml_like::Map> {
    let mut map = toml_like::Map::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix("KEYWAY_") else {
            continue;
        };
        if rest == "CONFIG" || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        toml_like::insert(&mut map, &path, v);
    }
    Named("KEYWAY_* environment variables", map)
}

/// A layer named so that errors say where a value came from, not which line of ours merged it.
struct Named<T: Serialize>(&'static str, T);

impl<T: Serialize> figment::Provider for Named<T> {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.0)
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::defaults(&self.1).data()
    }
}

/// Environment values are strings; figment's own `Env` would guess types the same way. We build
/// the nested map ourselves so the caller can pass the environment explicitly (tests do).
mod toml_like {
    pub type Map = serde_json::Map<String, serde_json::Value>;

    pub fn insert(map: &mut Map, path: &[String], value: &str) {
        match path {
            [] => {}
            [last] => {
                map.insert(last.clone(), guess(value));
            }
            [first, rest @ ..] => {
                let entry = map
                    .entry(first.clone())
                    .or_insert_with(|| serde_json::Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = serde_json::Value::Object(Map::new());
                }
                if let serde_json::Value::Object(inner) = entry {
                    insert(inner, rest, value);
                }
            }
        }
    }

    fn guess(value: &str) -> serde_json::Value {
        if let Ok(b) = value.parse::<bool>() {
            return serde_json::Value::Bool(b);
        }
        if let Ok(n) = value.parse::<u64>() {
            return serde_json::Value::from(n);
        }
        serde_json::Value::String(value.to_owned())
    }
}

fn one_line_figment_error(e: &figment::Error) -> String {
    let mut key = e.path.join(".");
    let msg = match &e.kind {
        figment::error::Kind::UnknownField(field, _) => {
            // Some providers put the field in the path already, some do not.
            if e.path.last() != Some(field) {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(field);
            }
            "unknown setting".to_owned()
        }
        other => other.to_string(),
    };
    let origin = e
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(src) => format!(" (from {src})"),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    let line = if key.is_empty() {
        format!("{msg}{origin}")
    } else {
        format!("{key}: {msg}{origin}")
    };
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests;
