//! Application::build turns a configuration into a bound server; `run` serves until SIGTERM/Ctrl-C.

use crate::auth::Authenticator;
use crate::auth::password::Passwords;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::mail::Mail;
use crate::oidc::Provider;
use crate::oidc::keys::{self, Keys};
use crate::state::{AppState, Shared};
use crate::store::Auditor;
use crate::throttle::Throttles;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    /// `metrics.listen`: /metrics on an address of its own.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    port: u16,
}

/// How often expired rows are purged and keys re-read (a CLI `keys rotate` reaches a running server).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(crate::config::KEY_RELOAD);

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Arc::new(SystemClock), None).await
    }

    /// `listener`: an already bound socket (tests bind port 0 first to learn the issuer's port).
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        listener: Option<std::net::TcpListener>,
    ) -> anyhow::Result<Self> {
        let state = build_state(config, clock).await?;
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)?
            }
            None => TcpListener::bind(state.config.listen)
                .await
                .with_context(|| format!("listen: cannot bind {}", state.config.listen))?,
        };
        let port = listener.local_addr()?.port();
        let metrics_listener = match state.config.metrics.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics.listen: cannot bind {addr}"))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            metrics_listener,
            state,
            port,
        })
    }

    /// Where /metrics is served on its own address, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// While no administrator exists, a fresh one-time setup URL (older ones stop working).
    pub async fn admin_setup_url(&self) -> anyhow::Result<Option<String>> {
        admin_setup_url(&self.state).await
    }

    /// Serves until SIGTERM or Ctrl-C, letting in-flight requests finish, then closes the database.
    pub async fn run(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let maintenance = tokio::spawn(maintenance_loop(state.clone()));
        let (stop_mail, mail_stopped) = tokio::sync::watch::channel(false);
        let mail = tokio::spawn(state.mail.clone().run(mail_stopped));
        let router = crate::web::router(state.clone());
        let metrics = self.metrics_listener.map(|listener| {
            let addr = listener.local_addr().ok();
            tracing::info!(?addr, "metrics listening");
            tokio::spawn(async move {
                let app = crate::web::metrics::router(state.clone());
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            })
        });
        let state = self.state.clone();
        tracing::info!(issuer = %state.config.issuer, port = self.port, "keyway listening");
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        maintenance.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        // The sender finishes the message it is on; what is left waits in the outbox.
        let _ = stop_mail.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), mail).await;
        state.repos.maintenance.close().await;
        tracing::info!("keyway stopped");
        Ok(())
    }
}

/// Refuses to go on with a missing or empty database while data_dir holds the key file of an
/// earlier start: the database was deleted, truncated or is not where database_url points, and
/// going on would create a fresh, empty provider whose clients all fail. `--init` goes on.
pub fn refuse_a_lost_database(config: &Config) -> anyhow::Result<()> {
    let key_file = config.data_dir.join(keys::KEY_FILE);
    if config.init || config.secret_key.is_some() || !key_file.exists() {
        return Ok(());
    }
    if crate::store::is_missing_or_empty(&config.database_url)? {
        anyhow::bail!(
            "database_url: {} is missing or empty, but {} is from an earlier start; point database_url at the existing database, or start with --init to begin with an empty one",
            config.database_url,
            key_file.display()
        );
    }
    Ok(())
}

/// Opens the database, loads or creates keys, and assembles the shared state.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    refuse_a_lost_database(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    let repos = crate::store::open(
        &config.database_url,
        clock.clone(),
        config.database.store_options(),
    )
    .await
    .with_context(|| format!("database_url: cannot open {}", config.database_url))?;
    ensure_admin_client(&repos, &config, clock.now()).await?;
    let sealing = keys::sealing_key(config.secret_key.as_deref(), &config.data_dir)?;
    let code_key = sealing.derive("keyway authorization codes v1")?;
    let admin_key = sealing.derive("keyway admin cookies v1")?;
    let csrf_key = sealing.derive_mac("keyway csrf tokens v1")?;
    let keys = Keys::init(
        repos.keys.clone(),
        sealing,
        config.lifetimes.id_token as i64,
        clock.now(),
    )
    .await
    .context("signing keys")?;
    let discovery = crate::oidc::metadata::discovery(&config.issuer, &crate::web::urls::ENDPOINTS)
        .to_string()
        .into();
    let audit = Auditor(repos.audit.clone());
    let mail = Arc::new(mail_for(&config, &repos, clock.clone())?);
    if let Some(line) = config.email_warning() {
        tracing::warn!("{line}");
    }
    let throttles = Throttles::new(&config.throttle, &config.auth, &clock);
    let oidc = Provider {
        issuer: config.issuer.clone(),
        lifetimes: config.lifetimes.clone(),
        refresh_reuse_grace: config.refresh.reuse_grace as i64,
        clock: clock.clone(),
        keys,
        code_key,
        clients: repos.clients.clone(),
        users: repos.users.clone(),
        groups: repos.groups.clone(),
        tokens: repos.tokens.clone(),
        consents: repos.consents.clone(),
        audit: audit.clone(),
        throttles: throttles.clone(),
    };
    let webauthn = match crate::auth::passkey::relying_party(&config.issuer_url) {
        Ok(rp) => Some(rp),
        Err(line) => {
            tracing::warn!("{line}");
            None
        }
    };
    let auth = Authenticator {
        users: repos.users.clone(),
        passwords: repos.passwords.clone(),
        passkeys: repos.passkeys.clone(),
        invitations: repos.invitations.clone(),
        sessions: repos.sessions.clone(),
        tokens: repos.tokens.clone(),
        hasher: Passwords::with_params(
            config.password_hash_concurrency,
            crate::auth::password::HashParams::from_config(&config.auth),
        ),
        audit,
        clock: clock.clone(),
        session_absolute: config.lifetimes.session_absolute as i64,
        csrf_key,
        throttles: throttles.clone(),
        webauthn,
        magic_links: repos.magic_links.clone(),
        email_tokens: repos.email_tokens.clone(),
        recovery_delay: config.auth.recovery_delay as i64,
        mail: mail.clone(),
        issuer: config.issuer.clone(),
        magic_link_ttl: config.auth.magic_link_ttl as i64,
        passwords_on: config.auth.passwords_on(),
    };
    let metrics = if config.metrics.enabled() {
        Some(crate::telemetry::install().context("metrics")?)
    } else {
        None
    };
    Ok(AppState::new(Shared {
        config: Arc::new(config),
        repos,
        clock,
        oidc: Arc::new(oidc),
        auth: Arc::new(auth),
        admin_key,
        mail,
        throttles,
        discovery,
        metrics,
    }))
}

/// The admin UI's client, created when missing: public (PKCE), first-party, ES256 ID tokens, no
/// sign-in links, its redirect URIs on the issuer.
async fn ensure_admin_client(
    repos: &crate::store::Repos,
    config: &Config,
    now: crate::clock::UnixTime,
) -> anyhow::Result<()> {
    use crate::domain::{GrantType, NewClient, SigningAlg};
    use crate::web::admin::rp;
    let callback = format!("{}{}", config.issuer, rp::CALLBACK);
    match repos.clients.get(rp::CLIENT_ID).await? {
        Some(c) if c.redirect_uris.contains(&callback) => return Ok(()),
        Some(_) => {
            tracing::warn!(
                "the {} client's redirect URI is not on this issuer ({callback}): the admin UI cannot sign in; delete the client to have it made again",
                rp::CLIENT_ID
            );
            return Ok(());
        }
        None => {}
    }
    let client = NewClient {
        id: rp::CLIENT_ID.into(),
        name: "Keyway admin".into(),
        secret_hash: None,
        redirect_uris: vec![callback],
        post_logout_redirect_uris: vec![format!("{}{}", config.issuer, rp::SIGNED_OUT)],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: vec!["openid".into(), "profile".into(), "groups".into()],
        first_party: true,
        id_token_alg: SigningAlg::ES256,
        refresh_token_cap: crate::oidc::clients::DEFAULT_REFRESH_TOKEN_CAP,
        refresh_always: false,
        require_passkey: false,
        allow_magic_link: false,
        logo_uri: None,
        lifetimes: Default::default(),
    };
    match repos.clients.create(&client, now).await {
        Ok(_) | Err(crate::store::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The outbox and transport of this configuration (a server sends; the CLI only queues). The
/// outbox seals bodies with a key derived from the instance's secret key.
pub fn mail_for(
    config: &Config,
    repos: &crate::store::Repos,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Mail> {
    let sealing = keys::sealing_key(config.secret_key.as_deref(), &config.data_dir)?;
    Ok(Mail::new(
        repos.outbox.clone(),
        sealing.derive("keyway outbox v1")?,
        crate::mail::transport::from_config(&config.email)?,
        clock,
        Auditor(repos.audit.clone()),
    ))
}

/// While no administrator exists, a fresh one-time link that makes one: an admin invitation
/// (one use, a day) made by `setup`; the links printed at earlier starts are revoked.
pub async fn admin_setup_url(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.repos.users.count_active_admins().await? > 0 {
        return Ok(None);
    }
    let now = state.now();
    let invitations = &state.repos.invitations;
    invitations.revoke_created_by(SETUP, now).await?;
    let token = crate::crypto::random_token()?;
    let invitation = crate::domain::Invitation {
        id: crate::crypto::random_id()?,
        username: None,
        email: None,
        name: None,
        groups: Vec::new(),
        is_admin: true,
        uses: 1,
        used: 0,
        created_by: SETUP.into(),
        created_at: now,
        expires_at: now + 24 * 3600,
        revoked_at: None,
        emailed: false,
    };
    invitations
        .create(&invitation, &crate::crypto::token_hash(&token))
        .await?;
    Ok(Some(format!(
        "{}{}/{}",
        state.config.issuer,
        crate::web::urls::INVITE,
        token
    )))
}

/// `created_by` of the administrator setup invitations.
const SETUP: &str = "setup";

async fn maintenance_loop(state: AppState) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = state.now();
        match state.repos.maintenance.purge_expired(now).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "purged expired rows"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
        let cutoff = now - state.config.lifetimes.id_token as i64;
        if let Err(e) = state.repos.keys.delete_retired_before(cutoff).await {
            tracing::warn!(error = %e, "cannot delete retired keys");
        }
        state.throttles.prune();
        let keep = i64::from(state.config.audit.retention_days) * 86400;
        match state.repos.audit.purge_before(now - keep).await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "purged old audit events"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "audit purge failed"),
        }
        if let Err(e) = rotate_if_due(&state).await {
            tracing::warn!(error = format!("{e:#}"), "automatic key rotation failed");
        }
        if let Err(e) = state.keys().reload(now).await {
            tracing::warn!(error = format!("{e:#}"), "cannot reload keys");
        }
    }
}

/// `keys.rotate_every`: the same rotation as `keyway keys rotate`, new keys published
/// `keys.prepublish` before they sign, audited as done automatically.
pub async fn rotate_if_due(state: &AppState) -> anyhow::Result<()> {
    let k = &state.config.keys;
    if k.rotate_every == 0 {
        return Ok(());
    }
    let ops = crate::ops::Operator::new(
        state.repos.clone(),
        state.clock.clone(),
        state.auth.hasher.clone(),
        crate::ops::Actor::Schedule,
    );
    if let Some(new) = ops
        .rotate_keys_if_due(
            state.keys().sealing(),
            k.prepublish as i64,
            k.rotate_every as i64,
        )
        .await?
    {
        let kids: Vec<&str> = new.iter().map(|k| k.kid.as_str()).collect();
        tracing::info!(?kids, "rotated the signing keys (keys.rotate_every)");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
