//! Credential checks. Each method reports its `amr` value so later methods (passkeys, magic links)
//! slot in beside the password without touching the protocol layer.

pub mod password;
pub mod session;
