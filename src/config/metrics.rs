//! `[metrics]`: Prometheus metrics at /metrics, off unless an address or a token is set, so they
//! are never public by accident.

use super::{ConfigError, err};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[metrics]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve /metrics on this address of its own (for example 127.0.0.1:9464), and only there.
    pub listen: Option<String>,
    /// Or serve /metrics on the main address to requests bearing this token
    /// (`Authorization: Bearer <token>`); at least 24 characters.
    pub token: Option<String>,
}

/// Where /metrics is served, if anywhere.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Metrics {
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.token.is_some()
    }
}

impl MetricsSettings {
    pub(super) fn validate(self, main: SocketAddr) -> Result<Metrics, ConfigError> {
        let listen = self
            .listen
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim().parse::<SocketAddr>().map_err(|_| {
                    err(
                        "metrics.listen",
                        format!("{l:?} is not an address and port like 127.0.0.1:9464"),
                    )
                })
            })
            .transpose()?;
        if listen.is_some_and(|l| l == main && l.port() != 0) {
            return Err(err(
                "metrics.listen",
                "must differ from listen (to serve metrics on the main address, set metrics.token)",
            ));
        }
        let token = self.token.filter(|t| !t.is_empty());
        if let Some(t) = &token
            && (t.len() < 24 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(err(
                "metrics.token",
                "must be at least 24 characters, without spaces",
            ));
        }
        Ok(Metrics { listen, token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn off_unless_an_address_or_a_token_is_set() {
        let m = MetricsSettings::default().validate(main()).unwrap();
        assert!(!m.enabled());
        let m = MetricsSettings {
            listen: Some("127.0.0.1:9464".into()),
            token: None,
        }
        .validate(main())
        .unwrap();
        assert!(m.enabled());
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = |s: MetricsSettings| s.validate(main()).unwrap_err().to_string();
        assert!(
            e(MetricsSettings {
                listen: Some("localhost".into()),
                token: None
            })
            .contains("metrics.listen:")
        );
        assert!(
            e(MetricsSettings {
                listen: Some("127.0.0.1:8080".into()),
                token: None
            })
            .contains("differ")
        );
        assert!(
            e(MetricsSettings {
                listen: None,
                token: Some("short".into())
            })
            .contains("metrics.token:")
        );
    }
}
