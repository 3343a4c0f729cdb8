//! Passwords: argon2id (by default OWASP's minimum m=19456 KiB, t=2, p=1; configurable, and a
//! hash made with other parameters is made again at the next successful sign-in) on the blocking
//! pool, behind a semaphore so a burst of sign-ins cannot starve the runtime or exhaust memory.
//! The policy: 8 to 256 characters, no composition rules, not one of the 10,000 most common
//! passwords, never truncated.

use super::{Authenticated, Authenticator, CredentialError, CredentialResult};
use crate::domain::{AuthMethod, RequestMeta};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, Semaphore};

pub const MIN_LENGTH: usize = 8;
/// In characters.
pub const MAX_LENGTH: usize = 256;
/// Longest input verified at all (bytes): 256 characters of up to 4 bytes.
const MAX_BYTES: usize = 4 * MAX_LENGTH;

const OUTPUT_LEN: usize = 32;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    pub fn from_config(a: &crate::config::AuthSettings) -> Self {
        Self {
            memory_kib: a.password_memory_kib,
            iterations: a.password_iterations,
            parallelism: a.password_parallelism,
        }
    }
}

/// The most common passwords (lower case), loaded on first use.
fn common() -> &'static std::collections::HashSet<&'static str> {
    static LIST: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect()
    })
}

/// Argon2 working memory (19 MiB each), kept for reuse: allocating and freeing that much per
/// sign-in makes glibc's heap grow by hundreds of megabytes under load.
type Memory = Vec<Block>;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    concurrency: usize,
    /// Hashes waiting for a permit.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// At most one buffer per permit.
    memory: Arc<Mutex<Vec<Memory>>>,
    /// Verified against when the user is unknown, so both paths cost the same.
    dummy: Arc<OnceCell<String>>,
    params: HashParams,
}

/// One hash waiting for a permit, for as long as this lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

fn params(p: HashParams) -> anyhow::Result<Params> {
    Params::new(p.memory_kib, p.iterations, p.parallelism, Some(OUTPUT_LEN))
        .map_err(|e| anyhow::anyhow!("argon2 params: {e}"))
}

/// A readable reason the password cannot be used, or Ok.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!("password must be at least {MIN_LENGTH} characters"));
    }
    if n > MAX_LENGTH {
        return Err(format!("password must be at most {MAX_LENGTH} characters"));
    }
    if common().contains(password.to_lowercase().as_str()) {
        return Err("password is one of the most common passwords; choose another".into());
    }
    Ok(())
}

fn fit(memory: &mut Memory, blocks: usize) {
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
}

/// An argon2id PHC string: `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
fn hash_blocking(password: &[u8], p: HashParams, memory: &mut Memory) -> anyhow::Result<String> {
    let salt = crate::crypto::random_bytes(16)?;
    let params = params(p)?;
    fit(memory, params.block_count());
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, &salt, &mut out, &mut memory[..])
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        STANDARD_NO_PAD.encode(&salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn verify_blocking(phc: &str, password: &[u8], memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    fit(memory, params.block_count());
    let mut out = vec![0u8; expected.len()];
    let ok = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_ok();
    ok && crate::crypto::constant_time_eq(&out, expected.as_bytes())
}

impl Passwords {
    pub fn new(concurrency: usize) -> Self {
        Self::with_params(concurrency, HashParams::default())
    }

    pub fn with_params(concurrency: usize, params: HashParams) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            concurrency: concurrency.max(1),
            waiting: Arc::default(),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy: Arc::new(OnceCell::new()),
            params,
        }
    }

    /// Whether `phc` was made with other parameters than today's (or cannot be read).
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(p) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || p.m_cost() != self.params.memory_kib
            || p.t_cost() != self.params.iterations
            || p.p_cost() != self.params.parallelism
    }

    /// Hashes waiting for a worker, and hashes being computed.
    pub fn queue(&self) -> (usize, usize) {
        let waiting = self.waiting.load(std::sync::atomic::Ordering::Relaxed);
        let running = self.concurrency - self.permits.available_permits();
        (waiting, running)
    }

    /// Runs `work` on the blocking pool with a permit and a reusable memory buffer.
    async fn with_memory<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> R + Send + 'static,
    ) -> anyhow::Result<R> {
        let permit = {
            // Counted while waiting, even if the request goes away meanwhile.
            let _waiting = Waiting::enter(&self.waiting);
            self.permits.acquire().await
        };
        let _permit = permit?;
        let pool = self.memory.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut memory = pool
                .lock()
                .ok()
                .and_then(|mut v| v.pop())
                .unwrap_or_default();
            let r = work(&mut memory);
            if let Ok(mut v) = pool.lock() {
                v.push(memory);
            }
            r
        })
        .await?;
        Ok(result)
    }

    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let password = password.as_bytes().to_vec();
        let params = self.params;
        self.with_memory(move |m| hash_blocking(&password, params, m))
            .await?
    }

    /// Checks `password` against `phc`; with no hash (unknown user, no password set) it checks a
    /// dummy hash and answers false, so timing does not tell the cases apart.
    pub async fn verify(&self, phc: Option<String>, password: &str) -> anyhow::Result<bool> {
        if password.len() > MAX_BYTES {
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
        let ok = self
            .with_memory(move |m| verify_blocking(&phc, &password, m))
            .await?;
        Ok(real && ok)
    }
}

impl Authenticator {
    /// Checks a username and password. Unknown user, wrong password and disabled account all
    /// cost one argon2 verification and all end in `Refused`; the audit record tells them apart.
    pub async fn password(
        &self,
        username: &str,
        password: &str,
        meta: &RequestMeta,
    ) -> CredentialResult<Authenticated> {
        self.guard(AuthMethod::Pwd, &super::Attempt::new(username, meta), meta)
            .await?;
        if !self.passwords_on {
            self.refused(AuthMethod::Pwd, None, "passwords are off", meta)
                .await;
            return Err(CredentialError::Refused);
        }
        let username = username.trim();
        let user = if username.is_empty() || username.len() > 256 {
            None
        } else {
            self.users.by_username(username).await?
        };
        let phc = match &user {
            Some(u) => self.passwords.get(&u.id).await?,
            None => None,
        };
        let stale = phc.as_deref().is_some_and(|p| self.hasher.needs_rehash(p));
        let password_ok = self.hasher.verify(phc, password).await?;
        match user {
            Some(user) if password_ok && !user.disabled => {
                if stale {
                    // Raised parameters reach each password at its next sign-in.
                    let phc = self.hasher.hash(password).await?;
                    self.passwords.set(&user.id, &phc, self.now()).await?;
                    self.record(
                        "password.rehash",
                        Some(user.id.clone()),
                        "success",
                        "new parameters",
                        meta,
                    )
                    .await;
                }
                Ok(Authenticated {
                    user,
                    amr: vec![AuthMethod::Pwd],
                    auth_time: self.now(),
                })
            }
            user => {
                let why = match (&user, password_ok) {
                    (None, _) => "unknown user",
                    (Some(_), true) => "account disabled",
                    _ => "wrong password",
                };
                self.refused(AuthMethod::Pwd, user.as_ref(), why, meta)
                    .await;
                Err(CredentialError::Refused)
            }
        }
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

    #[test]
    fn the_policy_wants_8_to_256_characters_and_nothing_common() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(257)).unwrap_err().contains("256"));
        assert!(
            check_policy(&"é".repeat(256)).is_ok(),
            "characters, not bytes"
        );
        for common in ["password1", "Password1", "iloveyou", "12345678", "baseball"] {
            assert!(
                check_policy(common).unwrap_err().contains("common"),
                "{common}"
            );
        }
        assert!(check_policy("correct horse battery").is_ok());
        assert!(super::common().len() >= 10_000);
    }

    #[tokio::test]
    async fn a_hash_with_other_parameters_needs_a_rehash() {
        let old = Passwords::new(1).hash("correct horse").await.unwrap();
        let raised = Passwords::with_params(
            1,
            HashParams {
                memory_kib: 32_768,
                ..HashParams::default()
            },
        );
        assert!(raised.needs_rehash(&old));
        let new = raised.hash("correct horse").await.unwrap();
        assert!(new.starts_with("$argon2id$v=19$m=32768,t=2,p=1$"), "{new}");
        assert!(!raised.needs_rehash(&new));
        assert!(raised.verify(Some(old), "correct horse").await.unwrap());
    }

    #[test]
    fn phc_strings_from_the_argon2_crate_verify_and_ours_parse() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let mut memory = Vec::new();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            params(HashParams::default()).unwrap(),
        )
        .hash_password(b"pw-pw-pw-pw", &salt)
        .unwrap()
        .to_string();
        assert!(verify_blocking(&theirs, b"pw-pw-pw-pw", &mut memory));
        assert!(!verify_blocking(&theirs, b"pw-pw-pw-px", &mut memory));
        let ours = hash_blocking(b"pw-pw-pw-pw", HashParams::default(), &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"pw-pw-pw-pw", &parsed)
                .is_ok()
        );
    }
}
