//! Configuration through the real binary: each layer (keyway.toml, KEYWAY_* environment, flags)
//! reaches the program, the later layer wins, and a bad setting stops it with one line naming it.

use crate::cli::{Keyway, one_line_error};

#[test]
fn http_issuer_on_a_public_host_is_refused() {
    let k = Keyway::new();
    let out = k
        .cmd()
        .env("KEYWAY_ISSUER", "http://example.com")
        .arg("migrate")
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.starts_with("error: configuration error: issuer:"), "{e}");
    assert!(e.contains("loopback"), "{e}");
    assert!(
        !k.path().join("k.db").exists(),
        "nothing may happen with a bad configuration"
    );
}

#[test]
fn issuer_with_a_query_is_refused() {
    let k = Keyway::new();
    let out = k
        .cmd()
        .env("KEYWAY_ISSUER", "https://x.example/?q=1")
        .args(["user", "list"])
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("issuer") && e.contains("query"), "{e}");
}

#[test]
fn unknown_keys_in_the_config_file_are_named() {
    let k = Keyway::new();
    std::fs::write(
        k.path().join("keyway.toml"),
        "issuer = \"http://127.0.0.1:8080\"\nbogus_key = 1\n",
    )
    .unwrap();
    let e = one_line_error(&k.run(&["migrate"]));
    assert!(e.contains("bogus_key") && e.contains("unknown"), "{e}");

    // Nested tables name the full path; --config picks another file.
    std::fs::write(
        k.path().join("other.toml"),
        "[lifetimes]\naccess_tokn = 60\n",
    )
    .unwrap();
    let e = one_line_error(&k.run(&["--config", "other.toml", "migrate"]));
    assert!(e.contains("lifetimes.access_tokn"), "{e}");
    // ... and so does KEYWAY_CONFIG.
    let out = k
        .cmd()
        .env("KEYWAY_CONFIG", "other.toml")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(one_line_error(&out).contains("lifetimes.access_tokn"));
}

#[test]
fn later_layers_win() {
    let k = Keyway::new();
    // The file alone is refused, so success below proves the environment overrode it...
    std::fs::write(
        k.path().join("keyway.toml"),
        "issuer = \"http://example.com\"\n",
    )
    .unwrap();
    let e = one_line_error(&k.run(&["migrate"]));
    assert!(e.contains("issuer"), "{e}");
    let out = k
        .cmd()
        .env("KEYWAY_ISSUER", "https://id.example.com")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and that a flag overrides the environment.
    let out = k
        .cmd()
        .env("KEYWAY_ISSUER", "http://example.com")
        .args(["--issuer", "https://id.example.com", "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_database_that_cannot_be_opened_names_database_url() {
    let k = Keyway::new();
    // The database's parent "directory" is a regular file.
    std::fs::write(k.path().join("afile"), "not a directory").unwrap();
    let out = k
        .bare_cmd()
        .arg("--database-url")
        .arg(format!("sqlite://{}/afile/k.db", k.path().display()))
        .arg("--data-dir")
        .arg(k.path())
        .args(["user", "list"])
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("database_url"), "{e}");

    let out = k
        .bare_cmd()
        .args(["--database-url", "postgres://localhost/keyway", "migrate"])
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("database_url"), "{e}");
}
