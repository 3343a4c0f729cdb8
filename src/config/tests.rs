//! The configuration's own tests: defaults, layers, and keyway.example.toml kept true.

use super::*;

fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(
        Some(PathBuf::from("/nonexistent/keyway.toml")),
        &env,
        &Overrides::default(),
    )
}

#[test]
fn defaults() {
    let c = load(&[]).unwrap();
    assert_eq!(c.issuer, "http://localhost:8080");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.lifetimes.authorization_code, 60);
}

#[test]
fn env_nested_and_listen_from_issuer_port() {
    let c = load(&[
        ("KEYWAY_ISSUER", "http://127.0.0.1:9999"),
        ("KEYWAY_LIFETIMES__ACCESS_TOKEN", "60"),
    ])
    .unwrap();
    assert_eq!(c.listen.port(), 9999);
    assert_eq!(c.lifetimes.access_token, 60);
}

#[test]
fn bad_values_name_the_setting() {
    let e = load(&[("KEYWAY_ISSUER", "http://example.com")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("issuer") && e.contains("loopback"), "{e}");
    let e = load(&[("KEYWAY_ISSUER", "https://example.com/?a=b")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("query"), "{e}");
    let e = load(&[("KEYWAY_NOPE", "1")]).unwrap_err().to_string();
    assert!(
        e.starts_with("configuration error: nope: unknown setting"),
        "{e}"
    );
    assert!(
        load(&[
            ("KEYWAY_ISSUER", "http://example.com"),
            ("KEYWAY_INSECURE_HTTP", "true")
        ])
        .is_ok()
    );
}

mod example_file {
    /// keyway.example.toml must stay true: it parses and states exactly the defaults.
    #[test]
    fn example_file_states_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keyway.example.toml");
        let from_file =
            super::super::Config::load(Some(path), &[], &super::super::Overrides::default())
                .unwrap();
        let defaults = super::super::Config::validate(super::super::RawConfig::default()).unwrap();
        assert_eq!(from_file.issuer, defaults.issuer);
        assert_eq!(from_file.listen, defaults.listen);
        assert_eq!(from_file.database_url, defaults.database_url);
        assert_eq!(from_file.data_dir, defaults.data_dir);
        assert_eq!(
            from_file.password_hash_concurrency,
            defaults.password_hash_concurrency
        );
        assert_eq!(from_file.log_format, defaults.log_format);
        assert_eq!(from_file.workers, defaults.workers);
        assert_eq!(from_file.lifetimes, defaults.lifetimes);
        assert_eq!(from_file.refresh, defaults.refresh);
        assert_eq!(from_file.database, defaults.database);
        assert_eq!(from_file.throttle, defaults.throttle);
        assert_eq!(from_file.keys, defaults.keys);
        assert_eq!(from_file.trusted_proxies, defaults.trusted_proxies);
        assert_eq!(from_file.auth, defaults.auth);
        assert_eq!(
            format!("{:?}", from_file.email),
            format!("{:?}", defaults.email)
        );
        assert_eq!(from_file.email.timeout, defaults.email.timeout);
        assert_eq!(from_file.metrics, defaults.metrics);
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keyway.example.toml"),
        )
        .unwrap();
        for key in [
            "listen",
            "secret_key",
            "insecure_http",
            "from",
            "file_dir",
            "smtp_url",
            "smtp_password_file",
            "smtp_ca_file",
            "[metrics]",
            "rotate_every",
        ] {
            assert!(text.contains(key), "{key} is documented");
        }
    }
}
