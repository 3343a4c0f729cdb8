//! Prometheus metrics, off unless `[metrics]` is configured: the process-wide recorder and the
//! names every layer counts under. Without a recorder the counting calls do nothing.

use crate::domain::AuthMethod;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Mutex;

pub const REQUESTS: &str = "keyway_http_requests_total";
pub const REQUEST_SECONDS: &str = "keyway_http_request_duration_seconds";
pub const SIGNINS: &str = "keyway_signins_total";
pub const TOKENS: &str = "keyway_tokens_issued_total";
pub const SESSIONS: &str = "keyway_sessions_signed_in";
pub const OUTBOX: &str = "keyway_outbox_messages";
pub const HASH_WAITING: &str = "keyway_password_hashes_waiting";
pub const HASH_RUNNING: &str = "keyway_password_hashes_running";
pub const DB_CONNECTIONS: &str = "keyway_db_read_connections";
pub const DB_IDLE: &str = "keyway_db_read_connections_idle";
pub const DB_WRITE_QUEUE: &str = "keyway_db_write_queue";

/// Request latency buckets, in seconds: most answers take well under a millisecond, a password
/// sign-in tens of milliseconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The one recorder of this process (several servers in one process, as in tests, share it).
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the recorder once; later calls get the same handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let mut slot = RECORDER
        .lock()
        .map_err(|_| anyhow::anyhow!("the metrics recorder lock is poisoned"))?;
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &BUCKETS)?
        .install_recorder()?;
    describe();
    *slot = Some(handle.clone());
    Ok(handle)
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer, by route and method"
    );
    describe_counter!(SIGNINS, "Sign-in attempts by method and outcome");
    describe_counter!(TOKENS, "Token responses issued, by grant type");
    describe_gauge!(SESSIONS, "Browser sessions signed in and unexpired");
    describe_gauge!(OUTBOX, "Email messages waiting in the outbox");
    describe_gauge!(HASH_WAITING, "Password hashes waiting for a worker");
    describe_gauge!(HASH_RUNNING, "Password hashes being computed");
    describe_gauge!(DB_CONNECTIONS, "Open connections of the read pool");
    describe_gauge!(DB_IDLE, "Idle connections of the read pool");
    describe_gauge!(
        DB_WRITE_QUEUE,
        "Writes queued for the database's one writer"
    );
}

/// A sign-in attempt by `method` (counted as passkey, password, email_link or email_code) and
/// its outcome (success, failure, limited).
pub fn signin(method: Option<AuthMethod>, outcome: &str) {
    let method = match method {
        Some(AuthMethod::Hwk | AuthMethod::Swk) => "passkey",
        Some(AuthMethod::Pwd) => "password",
        Some(AuthMethod::Email) => "email_link",
        Some(AuthMethod::Otp) => "email_code",
        Some(AuthMethod::User) | None => "other",
    };
    let outcome = match outcome {
        "success" => "success",
        "limited" => "limited",
        _ => "failure",
    };
    metrics::counter!(SIGNINS, "method" => method, "outcome" => outcome).increment(1);
}

/// A token response for `grant` (a grant_type value).
pub fn token_issued(grant: &'static str) {
    metrics::counter!(TOKENS, "grant" => grant).increment(1);
}
