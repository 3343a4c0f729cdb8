//! The application state every handler receives, and the narrow sub-states (`FromRef`) the
//! protocol core and the credential checks take instead of the whole of it.

use crate::auth::Authenticator;
use crate::clock::{Clock, UnixTime};
use crate::config::Config;
use crate::oidc::Provider;
use crate::oidc::keys::Keys;
use crate::store::Repos;
use axum::extract::FromRef;
use std::sync::Arc;

/// Cheap to clone: one reference count per request, whatever it holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: Arc<Config>,
    pub repos: Repos,
    pub clock: Arc<dyn Clock>,
    /// The protocol core's inputs.
    pub oidc: Arc<Provider>,
    /// The credential checks' inputs.
    pub auth: Arc<Authenticator>,
    /// Seals the admin UI's cookies.
    pub admin_key: crate::crypto::SealingKey,
    /// The outbox and its transport.
    pub mail: Arc<crate::mail::Mail>,
    /// The discovery document, rendered once.
    pub discovery: bytes::Bytes,
    /// Shared with auth and oidc; pruned by the maintenance loop.
    pub throttles: crate::throttle::Throttles,
    /// The Prometheus recorder's handle, when `[metrics]` is configured.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    pub fn keys(&self) -> &Keys {
        &self.oidc.keys
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Provider> {
    fn from_ref(state: &AppState) -> Self {
        state.oidc.clone()
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}
