//! Keyway's benchmark load generator: runs one scenario against one OpenID Connect issuer for a
//! fixed time at a fixed concurrency, on keep-alive HTTP/1.1 connections, and prints one JSON line.
//! Every scenario drives Keyway and the peer (node-oidc-provider) with the same requests; endpoint
//! URLs come from each issuer's discovery document. `scripts/bench` runs it and builds the report.

use base64::Engine as _;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use url::Url;

mod passkey;

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for Keyway's benchmark (scripts/bench)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args, Clone)]
struct Common {
    /// Measured duration in seconds
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Unmeasured warm-up before the measurement, in seconds
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Concurrent workers (each keeps its own keep-alive connection busy)
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Runtime worker threads: keep it low so the load generator leaves the cores to the servers
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Per-request timeout in seconds
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// A label copied into the JSON output
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Args, Clone)]
struct ClientArgs {
    /// Issuer URL; endpoints are read from its discovery document
    #[arg(long)]
    issuer: String,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    redirect_uri: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Keyway's sign-in form (field `username`)
    Keyway,
    /// node-oidc-provider's development interaction form (field `login`)
    Peer,
}

#[derive(Subcommand)]
enum Scenario {
    /// GET one URL (discovery, JWKS); expects 200 and a non-empty body
    Get {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        common: Common,
    },
    /// POST the token endpoint: grant_type=client_credentials, client_secret_basic
    ClientCredentials {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, default_value = "api")]
        scope: String,
        #[command(flatten)]
        common: Common,
    },
    /// Signed-in SSO round trip: authorize (session cookie) -> code -> token -> userinfo
    Sso {
        #[command(flatten)]
        client: ClientArgs,
        /// The signed-in session's cookies ("Cookie: a=b; c=d" or "a=b; c=d")
        #[arg(long)]
        cookie: String,
        #[arg(long, default_value = "openid email")]
        scope: String,
        #[command(flatten)]
        common: Common,
    },
    /// Each worker signs in once as its own user and gets a refresh token (scope openid
    /// offline_access); then loops refresh_token grant (newest token) -> introspect the access token
    Refresh {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum)]
        kind: Kind,
        /// Worker i signs in as PREFIX followed by i (0-based)
        #[arg(long)]
        username_prefix: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "openid offline_access")]
        scope: String,
        #[command(flatten)]
        common: Common,
    },
    /// Full password sign-ins, each with a fresh cookie jar: authorize -> sign-in form -> POST
    /// credentials -> redirects until the redirect_uri carries a code
    Signin {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "openid")]
        scope: String,
        #[command(flatten)]
        common: Common,
    },
    /// Passkey sign-ins (Keyway only), each with a fresh cookie jar: worker i first registers a
    /// software passkey for user PREFIX followed by i (signing in with the password once), then
    /// loops authorize -> sign-in page -> passkey options -> assertion -> code
    PasskeySignin {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        username_prefix: String,
        #[arg(long)]
        password: String,
        #[command(flatten)]
        common: Common,
    },
    /// Sign in once and print the session's Cookie header (for `sso`)
    Cookie {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
    },
    /// Start a command RUNS times and measure the time until URL answers 200 (polled every
    /// INTERVAL ms on a fresh connection), then stop it with SIGTERM
    Startup {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 2)]
        interval_ms: u64,
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Startup {
        url,
        runs,
        interval_ms,
        command,
    } = &cli.scenario
    {
        return match startup(url, *runs, *interval_ms, command) {
            Ok(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let threads = match &cli.scenario {
        Scenario::Get { common, .. }
        | Scenario::ClientCredentials { common, .. }
        | Scenario::Sso { common, .. }
        | Scenario::Refresh { common, .. }
        | Scenario::Signin { common, .. } => common.threads.max(1),
        _ => 1,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.scenario)) {
        Ok(Value::String(line)) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(conn)
}

struct Resp {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}): {}", self.snippet()))
    }
    fn snippet(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        let mut out: String = s.chars().take(300).collect();
        if s.chars().count() > 300 {
            out.push('…');
        }
        out
    }
    fn fail(&self, step: &str) -> String {
        format!("{step}: HTTP {}: {}", self.status, self.snippet())
    }
}

/// One worker's view of the shared connection pool, counting the requests it sends.
struct Conn {
    client: HttpClient,
    timeout: Duration,
    requests: u64,
}

impl Conn {
    async fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<String>,
    ) -> Result<Resp, String> {
        // `localhost` straight to IPv4 loopback (where the servers listen), as the browser's
        // Host: no resolver call and no refused attempt at ::1 first.
        let (target, host) = match url.strip_prefix("http://localhost:") {
            Some(rest) => (
                format!("http://127.0.0.1:{rest}"),
                Some(format!(
                    "localhost:{}",
                    rest.split('/').next().unwrap_or(rest)
                )),
            ),
            None => (url.to_owned(), None),
        };
        let mut b = Request::builder().method(method).uri(&target);
        if let Some(h) = &host {
            b = b.header("host", h.as_str());
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match form {
            Some(f) => {
                b = b.header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let req = b
            .body(body)
            .map_err(|e| format!("bad request for {url}: {e}"))?;
        self.requests += 1;
        let fut = async {
            let res = self.client.request(req).await.map_err(|e| {
                let mut msg = format!("transport error: {e}");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                msg
            })?;
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let set_cookies = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_owned)
                .collect();
            let body = res
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading body: {e}"))?
                .to_bytes();
            Ok(Resp {
                status,
                location,
                set_cookies,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("timeout after {:?}: {url}", self.timeout)),
        }
    }

    async fn get(&mut self, url: &str, headers: &[(&str, &str)]) -> Result<Resp, String> {
        self.send(Method::GET, url, headers, None).await
    }

    async fn post(
        &mut self,
        url: &str,
        headers: &[(&str, &str)],
        form: String,
    ) -> Result<Resp, String> {
        self.send(Method::POST, url, headers, Some(form)).await
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", form(pairs))
}

/// client_secret_basic (RFC 6749 2.3.1: both parts form-urlencoded before base64).
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn resolve(base: &str, loc: &str) -> Result<Url, String> {
    Url::parse(base)
        .and_then(|b| b.join(loc))
        .map_err(|e| format!("bad URL {loc} (base {base}): {e}"))
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[derive(Clone)]
struct Endpoints {
    authorize: String,
    token: String,
    userinfo: String,
    introspect: String,
}

async fn discover(client: &HttpClient, issuer: &str) -> Result<Endpoints, String> {
    let mut c = Conn {
        client: client.clone(),
        timeout: Duration::from_secs(10),
        requests: 0,
    };
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let r = c.get(&url, &[]).await?;
    if r.status != 200 {
        return Err(r.fail("discovery"));
    }
    let m = r.json()?;
    let field = |k: &str| -> Result<String, String> {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("discovery of {issuer} has no {k}"))
    };
    Ok(Endpoints {
        authorize: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
        userinfo: field("userinfo_endpoint")?,
        introspect: field("introspection_endpoint").unwrap_or_default(),
    })
}

// ---------------------------------------------------------------------------------------------
// Flows

struct Oidc {
    ep: Endpoints,
    client_id: String,
    basic: String,
    redirect_uri: String,
}

impl Oidc {
    fn new(ep: Endpoints, c: &ClientArgs) -> Self {
        Oidc {
            ep,
            client_id: c.client_id.clone(),
            basic: basic_auth(&c.client_id, &c.client_secret),
            redirect_uri: c.redirect_uri.clone(),
        }
    }

    fn authorize_url(&self, scope: &str, nonce: &str) -> String {
        with_query(
            &self.ep.authorize,
            &[
                ("client_id", &self.client_id),
                ("response_type", "code"),
                ("scope", scope),
                ("redirect_uri", &self.redirect_uri),
                ("state", "st"),
                ("nonce", nonce),
            ],
        )
    }

    /// The code from a redirect to the client, if `loc` is one.
    fn code_from(&self, base: &str, loc: &str) -> Option<Result<String, String>> {
        let u = match resolve(base, loc) {
            Ok(u) => u,
            Err(e) => return Some(Err(e)),
        };
        if !u.as_str().starts_with(&self.redirect_uri) {
            return None;
        }
        Some(match query_param(&u, "code") {
            Some(c) => Ok(c),
            None => Err(format!("redirect to the client without a code: {u}")),
        })
    }

    async fn token(
        &self,
        c: &mut Conn,
        params: &[(&str, &str)],
        step: &str,
    ) -> Result<Value, String> {
        let auth = self.basic.clone();
        let r = c
            .post(&self.ep.token, &[("authorization", &auth)], form(params))
            .await?;
        if r.status != 200 {
            return Err(r.fail(step));
        }
        let v = r.json()?;
        if v.get("access_token").and_then(Value::as_str).is_none() {
            return Err(format!("{step}: no access_token: {}", r.snippet()));
        }
        Ok(v)
    }

    async fn exchange(&self, c: &mut Conn, code: &str) -> Result<Value, String> {
        self.token(
            c,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.redirect_uri),
            ],
            "token (authorization_code)",
        )
        .await
    }

    /// Authorize with a signed-in session's cookie; the answer must redirect with a code.
    async fn sso_code(
        &self,
        c: &mut Conn,
        cookie: &str,
        scope: &str,
        nonce: &str,
    ) -> Result<String, String> {
        let url = self.authorize_url(scope, nonce);
        let r = c.get(&url, &[("cookie", cookie)]).await?;
        let loc = match (&r.location, r.status) {
            (Some(l), 300..=399) => l.clone(),
            _ => return Err(r.fail("authorize")),
        };
        match self.code_from(&url, &loc) {
            Some(res) => res,
            None => Err(format!(
                "authorize: HTTP {} to {loc}, not to the client",
                r.status
            )),
        }
    }

    /// A full password sign-in with a fresh cookie jar, from authorize to the code.
    async fn signin_code(
        &self,
        c: &mut Conn,
        kind: Kind,
        username: &str,
        password: &str,
        scope: &str,
        nonce: &str,
    ) -> Result<(String, Jar), String> {
        let mut jar = Jar::default();
        let mut url = self.authorize_url(scope, nonce);
        let mut pending: Option<(String, String)> = None; // (action URL, form body)
        let mut posted = false;
        for _hop in 0..12 {
            let cookie = jar.header();
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if !cookie.is_empty() {
                headers.push(("cookie", &cookie));
            }
            let (req_url, r) = match pending.take() {
                Some((action, body)) => {
                    let r = c.post(&action, &headers, body).await?;
                    (action, r)
                }
                None => {
                    let r = c.get(&url, &headers).await?;
                    (url.clone(), r)
                }
            };
            jar.store(&r.set_cookies);
            match (r.status, &r.location) {
                (300..=399, Some(loc)) => {
                    if let Some(code) = self.code_from(&req_url, loc) {
                        return code.map(|c| (c, jar));
                    }
                    url = resolve(&req_url, loc)?.to_string();
                }
                (200, _) if !posted => {
                    let page = String::from_utf8_lossy(&r.body);
                    let (action, mut fields) = parse_login_form(&page).ok_or_else(|| {
                        format!("sign-in: no password form at {req_url}: {}", r.snippet())
                    })?;
                    let user_field = match kind {
                        Kind::Keyway => "username",
                        Kind::Peer => "login",
                    };
                    fields.push((user_field.to_owned(), username.to_owned()));
                    fields.push(("password".to_owned(), password.to_owned()));
                    let pairs: Vec<(&str, &str)> = fields
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let target = if action.is_empty() {
                        req_url.clone()
                    } else {
                        action
                    };
                    pending = Some((resolve(&req_url, &target)?.to_string(), form(&pairs)));
                    posted = true;
                }
                _ => {
                    return Err(r.fail(if posted {
                        "sign-in (after POST)"
                    } else {
                        "sign-in"
                    }));
                }
            }
        }
        Err("sign-in: too many redirects".to_owned())
    }
}

/// A minimal cookie jar: name -> value, paths ignored (as the peer's own signin.mjs does).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn store(&mut self, set_cookies: &[String]) {
        for sc in set_cookies {
            let mut parts = sc.split(';');
            let Some(pair) = parts.next() else { continue };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
            });
            self.0.retain(|(n, _)| n != name);
            if !value.is_empty() && !expired {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&format!("{name}=")) {
        let at = from + i;
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = &tag[at + name.len() + 1..];
        if before_ok {
            let v = if let Some(r) = rest.strip_prefix('"') {
                r.split('"').next()
            } else if let Some(r) = rest.strip_prefix('\'') {
                r.split('\'').next()
            } else {
                rest.split(|ch: char| ch.is_whitespace() || ch == '>')
                    .next()
            };
            return v.map(html_unescape);
        }
        from = at + name.len() + 1;
    }
    None
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first form with a password input: its action and its hidden fields.
fn parse_login_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let lower = page.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("<form") {
        let start = from + i;
        let end = lower[start..]
            .find("</form")
            .map_or(lower.len(), |e| start + e);
        let body = &page[start..end];
        let lbody = &lower[start..end];
        from = end.max(start + 5);
        if !lbody.contains("type=\"password\"") && !lbody.contains("type=password") {
            continue;
        }
        let tag_end = body.find('>').unwrap_or(body.len());
        let action = attr(&body[..tag_end], "action").unwrap_or_default();
        let mut fields = Vec::new();
        let mut p = 0;
        while let Some(j) = lbody[p..].find("<input") {
            let s = p + j;
            let e = body[s..].find('>').map_or(body.len(), |e| s + e);
            let tag = &body[s..e];
            if attr(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("hidden")) {
                if let Some(name) = attr(tag, "name") {
                    fields.push((name, attr(tag, "value").unwrap_or_default()));
                }
            }
            p = e;
        }
        return Some((action, fields));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The measured operations

enum Plan {
    Get {
        url: String,
    },
    ClientCredentials {
        oidc: Oidc,
        scope: String,
    },
    Sso {
        oidc: Oidc,
        cookie: String,
        scope: String,
    },
    Refresh {
        oidc: Oidc,
        kind: Kind,
        prefix: String,
        password: String,
        scope: String,
    },
    Signin {
        oidc: Oidc,
        kind: Kind,
        username: String,
        password: String,
        scope: String,
    },
    PasskeySignin {
        oidc: Oidc,
        issuer: String,
        prefix: String,
        password: String,
    },
}

impl Plan {
    fn name(&self) -> &'static str {
        match self {
            Plan::Get { .. } => "get",
            Plan::ClientCredentials { .. } => "client-credentials",
            Plan::Sso { .. } => "sso",
            Plan::Refresh { .. } => "refresh",
            Plan::Signin { .. } => "signin",
            Plan::PasskeySignin { .. } => "passkey-signin",
        }
    }
    fn unit(&self) -> &'static str {
        match self {
            Plan::Get { .. } | Plan::ClientCredentials { .. } => "requests",
            Plan::Sso { .. } => "round_trips",
            Plan::Refresh { .. } => "iterations",
            Plan::Signin { .. } | Plan::PasskeySignin { .. } => "sign_ins",
        }
    }
}

#[derive(Default)]
struct WorkerState {
    /// refresh: the newest refresh token of this worker's grant
    refresh_token: Option<String>,
    /// passkey-signin: this worker's registered software passkey
    device: Option<passkey::Device>,
}

async fn refresh_setup(plan: &Plan, c: &mut Conn, worker: usize) -> Result<String, String> {
    let Plan::Refresh {
        oidc,
        kind,
        prefix,
        password,
        scope,
    } = plan
    else {
        return Err("not a refresh plan".to_owned());
    };
    let username = format!("{prefix}{worker}");
    let (code, _jar) = oidc
        .signin_code(
            c,
            *kind,
            &username,
            password,
            scope,
            &format!("setup{worker}"),
        )
        .await?;
    let tok = oidc.exchange(c, &code).await?;
    tok.get("refresh_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            format!("setup: no refresh_token in the code exchange (scope {scope:?}): {tok}")
        })
}

async fn run_op(
    plan: &Plan,
    c: &mut Conn,
    st: &mut WorkerState,
    worker: usize,
    seq: u64,
) -> Result<(), String> {
    match plan {
        Plan::Get { url } => {
            let r = c.get(url, &[]).await?;
            if r.status != 200 || r.body.is_empty() {
                return Err(r.fail("get"));
            }
            Ok(())
        }
        Plan::ClientCredentials { oidc, scope } => oidc
            .token(
                c,
                &[("grant_type", "client_credentials"), ("scope", scope)],
                "token (client_credentials)",
            )
            .await
            .map(|_| ()),
        Plan::Sso {
            oidc,
            cookie,
            scope,
        } => {
            let code = oidc
                .sso_code(c, cookie, scope, &format!("n{worker}-{seq}"))
                .await?;
            let tok = oidc.exchange(c, &code).await?;
            let at = tok
                .get("access_token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let bearer = format!("Bearer {at}");
            let r = c
                .get(&oidc.ep.userinfo, &[("authorization", &bearer)])
                .await?;
            if r.status != 200 {
                return Err(r.fail("userinfo"));
            }
            let v = r.json()?;
            if v.get("sub").and_then(Value::as_str).is_none() {
                return Err(format!("userinfo: no sub: {}", r.snippet()));
            }
            Ok(())
        }
        Plan::Refresh { oidc, .. } => {
            let rt = match st.refresh_token.take() {
                Some(rt) => rt,
                // The chain broke (an error earlier): start a new grant, inside this iteration.
                None => refresh_setup(plan, c, worker).await?,
            };
            let tok = oidc
                .token(
                    c,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                    "token (refresh_token)",
                )
                .await?;
            st.refresh_token = Some(
                tok.get("refresh_token")
                    .and_then(Value::as_str)
                    .map_or(rt, str::to_owned),
            );
            let at = tok
                .get("access_token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let auth = oidc.basic.clone();
            let r = c
                .post(
                    &oidc.ep.introspect,
                    &[("authorization", &auth)],
                    form(&[("token", at), ("token_type_hint", "access_token")]),
                )
                .await?;
            if r.status != 200 {
                return Err(r.fail("introspect"));
            }
            if r.json()?.get("active").and_then(Value::as_bool) != Some(true) {
                return Err(format!("introspect: not active: {}", r.snippet()));
            }
            Ok(())
        }
        Plan::Signin {
            oidc,
            kind,
            username,
            password,
            scope,
        } => oidc
            .signin_code(
                c,
                *kind,
                username,
                password,
                scope,
                &format!("n{worker}-{seq}"),
            )
            .await
            .map(|_| ()),
        Plan::PasskeySignin { oidc, issuer, .. } => {
            let device = match st.device.as_mut() {
                Some(d) => d,
                None => st.device.insert(passkey_setup(plan, c, worker).await?),
            };
            passkey::sign_in(oidc, c, device, issuer, &format!("n{worker}-{seq}"))
                .await
                .map(|_| ())
        }
    }
}

async fn passkey_setup(
    plan: &Plan,
    c: &mut Conn,
    worker: usize,
) -> Result<passkey::Device, String> {
    let Plan::PasskeySignin {
        oidc,
        issuer,
        prefix,
        password,
    } = plan
    else {
        return Err("not a passkey plan".to_owned());
    };
    passkey::register(oidc, c, issuer, &format!("{prefix}{worker}"), password).await
}

#[derive(Default)]
struct Errors {
    count: u64,
    samples: HashMap<String, u64>,
}

impl Errors {
    fn record(&mut self, e: String) {
        self.count += 1;
        if let Some(n) = self.samples.get_mut(&e) {
            *n += 1;
        } else if self.samples.len() < 12 {
            self.samples.insert(e, 1);
        }
    }
    fn merge(&mut self, o: Errors) {
        self.count += o.count;
        for (k, v) in o.samples {
            if let Some(n) = self.samples.get_mut(&k) {
                *n += v;
            } else if self.samples.len() < 12 {
                self.samples.insert(k, v);
            }
        }
    }
    fn json(&self) -> Value {
        let mut v: Vec<(&String, &u64)> = self.samples.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        Value::Array(
            v.into_iter()
                .map(|(m, n)| json!({"count": n, "message": m}))
                .collect(),
        )
    }
}

struct Window {
    measure_from: Instant,
    end: Instant,
}

#[derive(Default)]
struct WorkerResult {
    latencies_ms: Vec<f64>,
    requests: u64,
    errors: Errors,
    setup_errors: Errors,
    last_finish: Option<Instant>,
}

async fn worker(
    plan: Arc<Plan>,
    mut c: Conn,
    id: usize,
    ready: Arc<Barrier>,
    go: Arc<Barrier>,
    window: Arc<OnceLock<Window>>,
) -> WorkerResult {
    let mut out = WorkerResult::default();
    let mut st = WorkerState::default();
    if matches!(*plan, Plan::PasskeySignin { .. }) {
        for _ in 0..3 {
            match passkey_setup(&plan, &mut c, id).await {
                Ok(d) => {
                    st.device = Some(d);
                    break;
                }
                Err(e) => out.setup_errors.record(e),
            }
        }
    }
    if matches!(*plan, Plan::Refresh { .. }) {
        for _ in 0..3 {
            match refresh_setup(&plan, &mut c, id).await {
                Ok(rt) => {
                    st.refresh_token = Some(rt);
                    break;
                }
                Err(e) => out.setup_errors.record(e),
            }
        }
    }
    ready.wait().await;
    go.wait().await;
    let Some(w) = window.get() else {
        return out;
    };
    let mut seq: u64 = 0;
    loop {
        let start = Instant::now();
        if start >= w.end {
            break;
        }
        let measured = start >= w.measure_from;
        let before = c.requests;
        let r = run_op(&plan, &mut c, &mut st, id, seq).await;
        seq += 1;
        if measured {
            let done = Instant::now();
            out.requests += c.requests - before;
            out.last_finish = Some(out.last_finish.map_or(done, |l| l.max(done)));
            match r {
                Ok(()) => out
                    .latencies_ms
                    .push(done.duration_since(start).as_secs_f64() * 1e3),
                Err(e) => out.errors.record(e),
            }
        }
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let i = ((p * sorted.len() as f64).floor() as usize).min(sorted.len() - 1);
    json!((sorted[i] * 100.0).round() / 100.0)
}

async fn measure(
    plan: Plan,
    target: &str,
    common: &Common,
    client: HttpClient,
) -> Result<Value, String> {
    let conc = common.concurrency.max(1);
    let plan = Arc::new(plan);
    let ready = Arc::new(Barrier::new(conc + 1));
    let go = Arc::new(Barrier::new(conc + 1));
    let window: Arc<OnceLock<Window>> = Arc::new(OnceLock::new());
    let timeout = Duration::from_secs_f64(common.timeout.max(0.1));
    let mut handles = Vec::with_capacity(conc);
    for id in 0..conc {
        let c = Conn {
            client: client.clone(),
            timeout,
            requests: 0,
        };
        handles.push(tokio::spawn(worker(
            plan.clone(),
            c,
            id,
            ready.clone(),
            go.clone(),
            window.clone(),
        )));
    }
    ready.wait().await;
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs_f64(common.warmup.max(0.0));
    let end = measure_from + Duration::from_secs_f64(common.seconds.max(0.01));
    let _ = window.set(Window { measure_from, end });
    go.wait().await;
    let mut lat = Vec::new();
    let mut requests = 0;
    let mut errors = Errors::default();
    let mut setup_errors = Errors::default();
    let mut last = measure_from;
    for h in handles {
        match h.await {
            Ok(r) => {
                lat.extend(r.latencies_ms);
                requests += r.requests;
                errors.merge(r.errors);
                setup_errors.merge(r.setup_errors);
                if let Some(l) = r.last_finish {
                    last = last.max(l);
                }
            }
            Err(e) => errors.record(format!("worker failed: {e}")),
        }
    }
    let secs = last.duration_since(measure_from).as_secs_f64().max(1e-9);
    lat.sort_by(f64::total_cmp);
    let ops = lat.len() as u64;
    Ok(json!({
        "scenario": plan.name(),
        "label": common.label,
        "target": target,
        "unit": plan.unit(),
        "concurrency": conc,
        "ops": ops,
        "requests": requests,
        "errors": errors.count,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "per_second": ((ops as f64 / secs) * 10.0).round() / 10.0,
        "requests_per_second": ((requests as f64 / secs) * 10.0).round() / 10.0,
        "p50_ms": percentile(&lat, 0.5),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": lat.last().map_or(Value::Null, |m| json!((m * 100.0).round() / 100.0)),
        "error_samples": errors.json(),
        "setup_errors": setup_errors.count,
        "setup_error_samples": setup_errors.json(),
    }))
}

async fn run(s: Scenario) -> Result<Value, String> {
    let client = http_client();
    match s {
        Scenario::Get { url, common } => {
            let plan = Plan::Get { url: url.clone() };
            measure(plan, &url, &common, client).await
        }
        Scenario::ClientCredentials {
            client: ca,
            scope,
            common,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            let plan = Plan::ClientCredentials {
                oidc: Oidc::new(ep, &ca),
                scope,
            };
            measure(plan, &ca.issuer, &common, client).await
        }
        Scenario::Sso {
            client: ca,
            cookie,
            scope,
            common,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            let cookie = strip_cookie_prefix(&cookie);
            let plan = Plan::Sso {
                oidc: Oidc::new(ep, &ca),
                cookie,
                scope,
            };
            measure(plan, &ca.issuer, &common, client).await
        }
        Scenario::Refresh {
            client: ca,
            kind,
            username_prefix,
            password,
            scope,
            common,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            if ep.introspect.is_empty() {
                return Err(format!("{} has no introspection_endpoint", ca.issuer));
            }
            let plan = Plan::Refresh {
                oidc: Oidc::new(ep, &ca),
                kind,
                prefix: username_prefix,
                password,
                scope,
            };
            measure(plan, &ca.issuer, &common, client).await
        }
        Scenario::Signin {
            client: ca,
            kind,
            username,
            password,
            scope,
            common,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            let plan = Plan::Signin {
                oidc: Oidc::new(ep, &ca),
                kind,
                username,
                password,
                scope,
            };
            measure(plan, &ca.issuer, &common, client).await
        }
        Scenario::PasskeySignin {
            client: ca,
            username_prefix,
            password,
            common,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            let plan = Plan::PasskeySignin {
                oidc: Oidc::new(ep, &ca),
                issuer: ca.issuer.clone(),
                prefix: username_prefix,
                password,
            };
            measure(plan, &ca.issuer, &common, client).await
        }
        Scenario::Cookie {
            client: ca,
            kind,
            username,
            password,
        } => {
            let ep = discover(&client, &ca.issuer).await?;
            let oidc = Oidc::new(ep, &ca);
            let mut c = Conn {
                client,
                timeout: Duration::from_secs(30),
                requests: 0,
            };
            let (_code, jar) = oidc
                .signin_code(&mut c, kind, &username, &password, "openid", "cookie")
                .await?;
            Ok(Value::String(format!("Cookie: {}", jar.header())))
        }
        Scenario::Startup { .. } => Err("startup runs without the runtime".to_owned()),
    }
}

fn strip_cookie_prefix(c: &str) -> String {
    let t = c.trim();
    match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("cookie:") => t[7..].trim().to_owned(),
        _ => t.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up time

/// One GET on a fresh connection; true when it answers 200.
fn probe(addr: &str, host: &str, path: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"HTTP/1.1 200") || buf[..got].starts_with(b"HTTP/1.0 200")
}

fn stop(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn startup(url: &str, runs: usize, interval_ms: u64, command: &[String]) -> Result<Value, String> {
    let u = Url::parse(url).map_err(|e| format!("bad --url: {e}"))?;
    let host = u.host_str().ok_or("--url has no host")?.to_owned();
    let port = u.port_or_known_default().ok_or("--url has no port")?;
    // `localhost` straight to IPv4 loopback, where the servers listen.
    let addr = if host == "localhost" {
        format!("127.0.0.1:{port}")
    } else {
        format!("{host}:{port}")
    };
    let hostport = format!("{host}:{port}");
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    let (prog, args) = command.split_first().ok_or("no command")?;
    if probe(&addr, &hostport, &path) {
        return Err(format!("{url} already answers before the command starts"));
    }
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let mut child = std::process::Command::new(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {prog}: {e}"))?;
        let deadline = t0 + Duration::from_secs(60);
        let ms = loop {
            if probe(&addr, &hostport, &path) {
                break t0.elapsed().as_secs_f64() * 1e3;
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!("{prog} exited ({st}) before {url} answered 200"));
            }
            if Instant::now() > deadline {
                stop(&mut child);
                return Err(format!("{url} did not answer 200 within 60 s"));
            }
            std::thread::sleep(Duration::from_millis(interval_ms));
        };
        stop(&mut child);
        times.push((ms * 10.0).round() / 10.0);
        // Wait until the port is free again before the next start.
        let free_by = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(&addr).is_ok() && Instant::now() < free_by {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    Ok(json!({"scenario": "startup", "url": url, "runs_ms": times, "median_ms": median}))
}
