//! Keyway: a self-hosted OpenID Connect provider, as a library; `main.rs` only calls `cli::run`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod mail;
pub mod oidc;
pub mod ops;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod web;
