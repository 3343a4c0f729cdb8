//! Passwords: argon2id (OWASP minimum m=19456 KiB, t=2, p=1) on the blocking pool, behind a
//! semaphore so a burst of sign-ins cannot starve the runtime or exhaust memory.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::{OnceCell, Semaphore};

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 1024;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Verified against when the user is unknown, so both paths cost the same.
    dummy: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

fn argon2() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A readable reason the password cannot be used, or Ok.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!("password must be at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("password must be at most {MAX_LENGTH} bytes"));
    }
    Ok(())
}

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let salt_bytes = crate::crypto::random_bytes(16)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = argon2()?
        .hash_password(password, &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(phc.to_string())
}

fn verify_blocking(phc: &str, password: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Verify with our parameters' implementation; the PHC string carries its own params.
    argon2().is_ok_and(|a| a.verify_password(password, &parsed).is_ok())
}

impl Passwords {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::new(OnceCell::new()),
        }
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let password = password.as_bytes().to_vec();
        tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `phc`; with no hash (unknown user, no password set) it checks a
    /// dummy hash and answers false, so timing does not tell the cases apart.
    pub async fn verify(&self, phc: Option<String>, password: &str) -> anyhow::Result<bool> {
        if password.len() > MAX_LENGTH {
            return Ok(false);
        }
        let dummy = self
            .dummy
            .get_or_try_init(|| async { self.hash("keyway-dummy-password").await })
            .await?
            .clone();
        let real = phc.is_some();
        let phc = phc.unwrap_or(dummy);
        let password = password.as_bytes().to_vec();
        let _permit = self.permits.acquire().await?;
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&phc, &password)).await?;
        Ok(real && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new(1);
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify(Some(h.clone()), "correct horse").await.unwrap());
        assert!(!p.verify(Some(h), "wrong horse").await.unwrap());
        assert!(!p.verify(None, "keyway-dummy-password").await.unwrap());
    }
}
