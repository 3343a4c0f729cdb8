//! Keyway's one integration-test binary: every feature's tests as modules.

mod helpers;
mod rp;

mod authorize;
mod discovery;
mod logout;
mod signin;
mod token;
