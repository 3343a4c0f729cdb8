//! Keyway's one integration-test binary: every feature's tests as modules.

// Test helpers live outside #[test] functions, where clippy.toml's allow-*-in-tests does not reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod rp;
mod webauthn;

mod account;
mod admin;
mod admin_apps;
mod admin_flow;
mod admin_keys;
mod admin_people;
mod authorize;
mod claims;
mod cli;
mod cli_admin;
mod config;
mod cross_process;
mod csrf;
mod discovery;
mod email;
mod invitations;
mod logout;
mod magic;
mod mail;
mod metrics;
mod ops;
mod passkeys;
mod passwords;
mod serve;
mod sessions;
mod signin;
mod smtp;
mod storage;
mod throttle;
mod token;
mod trouble;
