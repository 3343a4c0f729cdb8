//! Signing keys: generation, sealing at rest, rotation, the JWKS document and JWS signing/verification.
//! One current key per algorithm (RS256, ES256, EdDSA). A rotated-in key is published at once but
//! signs only from its `activates_at`, after a pre-publication period longer than the JWKS cache
//! lifetime, so that relying parties holding a cached JWKS can verify its first tokens; the key it
//! replaces signs until then and stays published until every ID token it signed has expired. The
//! signing key is chosen at signing time, so a server switches without a reload.

use crate::clock::UnixTime;
use crate::crypto::{self, SealingKey};
use crate::domain::SigningAlg;
use crate::store::{KeyRepo, KeyState, StoredKey};
use josekit::jwk::KeyPair;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, RS256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

struct ActiveKey {
    kid: String,
    signer: Signer,
    /// Signs from this time...
    activates_at: UnixTime,
    /// ...until this one.
    retired_at: Option<UnixTime>,
}

impl ActiveKey {
    fn signs_at(&self, now: UnixTime) -> bool {
        self.activates_at <= now && self.retired_at.is_none_or(|r| r > now)
    }
}

enum Signer {
    /// RS256 and EdDSA, through josekit.
    Jose(Box<dyn JwsSigner>),
    /// ES256: the EC key, for signing without OpenSSL 3's per-call EVP set-up, and the protected
    /// header, encoded once.
    Es256 {
        key: openssl::ec::EcKey<openssl::pkey::Private>,
        header_b64: String,
    },
}

impl Signer {
    fn from_der(alg: SigningAlg, kid: &str, der: &[u8]) -> anyhow::Result<Self> {
        Ok(match alg {
            SigningAlg::RS256 => Signer::Jose(Box::new(RS256.signer_from_der(der)?)),
            SigningAlg::EdDSA => Signer::Jose(Box::new(EdDSA.signer_from_der(der)?)),
            SigningAlg::ES256 => {
                let header = serde_json::json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
                Signer::Es256 {
                    key: openssl::pkey::PKey::private_key_from_der(der)?.ec_key()?,
                    header_b64: crypto::b64url(&serde_json::to_vec(&header)?),
                }
            }
        })
    }
}

/// A snapshot of the key material: the signers per algorithm (current and next) and the
/// published JWKS.
pub struct KeySet {
    /// Oldest first.
    active: HashMap<SigningAlg, Vec<ActiveKey>>,
    verifiers: HashMap<String, Box<dyn JwsVerifier>>,
    /// The JWKS document, rendered once per key change.
    jwks: bytes::Bytes,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("published", &self.verifiers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Shared, reloadable key material.
#[derive(Clone)]
pub struct Keys {
    current: Arc<RwLock<Arc<KeySet>>>,
    repo: Arc<dyn KeyRepo>,
    sealing: SealingKey,
    id_token_ttl: i64,
}

impl Keys {
    /// Makes sure one key per algorithm exists (generating on first start) and loads them.
    pub async fn init(
        repo: Arc<dyn KeyRepo>,
        sealing: SealingKey,
        id_token_ttl: i64,
        now: UnixTime,
    ) -> anyhow::Result<Self> {
        ensure_keys(repo.as_ref(), &sealing, now).await?;
        let set = load(repo.as_ref(), &sealing, now, id_token_ttl).await?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(set))),
            repo,
            sealing,
            id_token_ttl,
        })
    }

    /// The key that seals private keys at rest (for rotations by this server).
    pub fn sealing(&self) -> &SealingKey {
        &self.sealing
    }

    pub fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads keys from the database, so a `keys rotate` from the CLI reaches a running server.
    pub async fn reload(&self, now: UnixTime) -> anyhow::Result<()> {
        let set = Arc::new(load(self.repo.as_ref(), &self.sealing, now, self.id_token_ttl).await?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }
}

impl KeySet {
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.jwks.clone()
    }

    /// The key of `alg` that signs at `now`: the newest one whose time has come.
    fn signing_key(&self, alg: SigningAlg, now: UnixTime) -> Option<&ActiveKey> {
        self.active
            .get(&alg)?
            .iter()
            .rev()
            .find(|k| k.signs_at(now))
    }

    /// Signs `claims` as a compact JWS with the key of `alg` that signs at `now`.
    pub fn sign(
        &self,
        alg: SigningAlg,
        claims: &serde_json::Value,
        now: UnixTime,
    ) -> anyhow::Result<String> {
        let key = self
            .signing_key(alg, now)
            .ok_or_else(|| anyhow::anyhow!("no current {} key", alg.as_str()))?;
        let signer = match &key.signer {
            Signer::Es256 { key, header_b64 } => return sign_es256(key, header_b64, claims),
            Signer::Jose(signer) => signer,
        };
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        header.set_key_id(key.kid.clone());
        let payload = serde_json::to_vec(claims)?;
        Ok(josekit::jws::serialize_compact(
            &payload,
            &header,
            signer.as_ref(),
        )?)
    }

    /// Verifies a JWS signed by any published key, returning its claims. Expiry is not checked.
    pub fn verify(&self, token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
        let (payload, _) = josekit::jws::deserialize_compact_with_selector(token, |header| {
            Ok(header
                .key_id()
                .and_then(|kid| self.verifiers.get(kid))
                .map(|v| v.as_ref()))
        })
        .ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

/// ES256 compact JWS (RFC 7515 §7.1, RFC 7518 §3.4): `header.payload.R||S`, each part base64url.
/// Through josekit every signature set up a fresh OpenSSL 3 EVP context (a provider fetch under a
/// lock), which cost three times the elliptic-curve arithmetic itself. `verify` and the tests
/// check these tokens with josekit.
fn sign_es256(
    ec: &openssl::ec::EcKey<openssl::pkey::Private>,
    header_b64: &str,
    claims: &serde_json::Value,
) -> anyhow::Result<String> {
    let payload = serde_json::to_vec(claims)?;
    let mut jws = String::with_capacity(header_b64.len() + payload.len() * 4 / 3 + 90);
    jws.push_str(header_b64);
    jws.push('.');
    jws.push_str(&crypto::b64url(&payload));
    let sig = openssl::ecdsa::EcdsaSig::sign(&crypto::sha256(jws.as_bytes()), ec)?;
    let mut rs = sig.r().to_vec_padded(32)?;
    rs.extend(sig.s().to_vec_padded(32)?);
    jws.push('.');
    jws.push_str(&crypto::b64url(&rs));
    Ok(jws)
}

/// A new key: (kid, PKCS#8 DER private key, public JWK as JSON).
pub fn generate(alg: SigningAlg) -> anyhow::Result<(String, Vec<u8>, String)> {
    let kid = crypto::hex(&crypto::random_bytes(8)?);
    let (der, mut jwk) = match alg {
        SigningAlg::RS256 => {
            let kp = RS256.generate_key_pair(2048)?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::ES256 => {
            let kp = ES256.generate_key_pair()?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
        SigningAlg::EdDSA => {
            let kp = EdDSA.generate_key_pair(EdCurve::Ed25519)?;
            (kp.to_der_private_key(), kp.to_jwk_public_key())
        }
    };
    jwk.set_key_id(kid.clone());
    jwk.set_algorithm(alg.as_str());
    jwk.set_key_use("sig");
    let jwk_json = serde_json::to_string(jwk.as_ref())?;
    Ok((kid, der, jwk_json))
}

async fn insert_new(
    repo: &dyn KeyRepo,
    sealing: &SealingKey,
    alg: SigningAlg,
    now: UnixTime,
    activates_at: UnixTime,
) -> anyhow::Result<String> {
    let (kid, der, public_jwk) = tokio::task::spawn_blocking(move || generate(alg)).await??;
    let sealed = sealing.seal(&der, kid.as_bytes())?;
    repo.insert(&StoredKey {
        kid: kid.clone(),
        alg: alg.as_str().to_owned(),
        sealed_private_key: sealed,
        public_jwk,
        created_at: now,
        activates_at,
        retired_at: None,
    })
    .await?;
    Ok(kid)
}

/// Generates a key, signing at once, for every algorithm that has none signing or about to.
pub async fn ensure_keys(
    repo: &dyn KeyRepo,
    sealing: &SealingKey,
    now: UnixTime,
) -> anyhow::Result<()> {
    let keys = repo.list().await?;
    for alg in SigningAlg::ALL {
        if !keys
            .iter()
            .any(|k| k.alg == alg.as_str() && k.retired_at.is_none_or(|r| r > now))
        {
            insert_new(repo, sealing, alg, now, now).await?;
        }
    }
    Ok(())
}

/// Adds a new key per algorithm, published now and signing from `now + prepublish`; the keys it
/// replaces sign until then and stay in the JWKS until tokens signed with them have expired.
/// Returns the new kids.
pub async fn rotate(
    repo: &dyn KeyRepo,
    sealing: &SealingKey,
    now: UnixTime,
    prepublish: i64,
) -> anyhow::Result<Vec<String>> {
    let activates_at = now + prepublish.max(0);
    let mut kids = Vec::new();
    for alg in SigningAlg::ALL {
        let kid = insert_new(repo, sealing, alg, now, activates_at).await?;
        repo.retire_others(alg.as_str(), &kid, activates_at).await?;
        kids.push(kid);
    }
    Ok(kids)
}

/// When the keys are due for an automatic rotation every `every` seconds: when the newest key
/// has that age. `None` without keys.
pub fn rotation_due(keys: &[StoredKey], every: i64) -> Option<UnixTime> {
    keys.iter().map(|k| k.created_at).max().map(|t| t + every)
}

/// Whether a retired key must still be published at `now`.
pub fn still_published(key: &StoredKey, now: UnixTime, id_token_ttl: i64) -> bool {
    key.retired_at.is_none_or(|r| r + id_token_ttl > now)
}

async fn load(
    repo: &dyn KeyRepo,
    sealing: &SealingKey,
    now: UnixTime,
    id_token_ttl: i64,
) -> anyhow::Result<KeySet> {
    let keys = repo.list().await?;
    let mut active: HashMap<SigningAlg, Vec<ActiveKey>> = HashMap::new();
    let mut verifiers: HashMap<String, Box<dyn JwsVerifier>> = HashMap::new();
    let mut published = Vec::new();
    // Oldest first, so the newest current key of each algorithm wins.
    for key in keys {
        let Some(alg) = SigningAlg::parse(&key.alg) else {
            continue;
        };
        if !still_published(&key, now, id_token_ttl) {
            continue;
        }
        let jwk = josekit::jwk::Jwk::from_bytes(key.public_jwk.as_bytes())?;
        let verifier: Box<dyn JwsVerifier> = match alg {
            SigningAlg::RS256 => Box::new(RS256.verifier_from_jwk(&jwk)?),
            SigningAlg::ES256 => Box::new(ES256.verifier_from_jwk(&jwk)?),
            SigningAlg::EdDSA => Box::new(EdDSA.verifier_from_jwk(&jwk)?),
        };
        verifiers.insert(key.kid.clone(), verifier);
        let order = match key.state(now) {
            KeyState::Current => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        };
        published.push((
            order,
            serde_json::from_str::<serde_json::Value>(&key.public_jwk)?,
        ));
        // Current and next keys: the one that signs is chosen at signing time.
        if key.retired_at.is_none_or(|r| r > now) {
            let der = sealing.open(&key.sealed_private_key, key.kid.as_bytes())?;
            let signer = Signer::from_der(alg, &key.kid, &der)?;
            active.entry(alg).or_default().push(ActiveKey {
                kid: key.kid,
                signer,
                activates_at: key.activates_at,
                retired_at: key.retired_at,
            });
        }
    }
    // Current keys first, newest first, then next, then retired: a client that takes the first
    // key of an algorithm (ignoring kid) takes the one that signs.
    published.reverse();
    published.sort_by_key(|(order, _)| *order);
    let published: Vec<serde_json::Value> = published.into_iter().map(|(_, jwk)| jwk).collect();
    let jwks = serde_json::to_string(&serde_json::json!({ "keys": published }))?;
    Ok(KeySet {
        active,
        verifiers,
        jwks: jwks.into_bytes().into(),
    })
}

/// The key file `sealing_key` writes into data_dir when no secret_key is configured.
pub const KEY_FILE: &str = "secret.key";

/// The instance's sealing key: `secret_key` from the configuration, else a key file in data_dir
/// created (mode 0600) on first start.
pub fn sealing_key(
    secret_key: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<SealingKey> {
    if let Some(text) = secret_key {
        return SealingKey::parse(text).ok_or_else(|| {
            anyhow::anyhow!("secret_key: must be 32 bytes as 64 hex digits or base64")
        });
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => SealingKey::parse(&text)
            .ok_or_else(|| anyhow::anyhow!("{}: not a valid secret key file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let bytes: [u8; 32] = crypto::random_bytes(32)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("random source failed"))?;
            let key = SealingKey::from_bytes(bytes);
            write_private_file(&path, key.encode().as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

fn write_private_file(path: &std::path::Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_es256_tokens_verify_with_josekit() {
        let (kid, der, jwk) = generate(SigningAlg::ES256).unwrap();
        let Signer::Es256 { key, header_b64 } =
            Signer::from_der(SigningAlg::ES256, &kid, &der).unwrap()
        else {
            panic!("ES256 keys sign directly");
        };
        let claims = serde_json::json!({"sub": "alice", "nonce": "n-0"});
        let jws = sign_es256(&key, &header_b64, &claims).unwrap();
        let jwk = josekit::jwk::Jwk::from_bytes(jwk.as_bytes()).unwrap();
        let verifier = ES256.verifier_from_jwk(&jwk).unwrap();
        let (payload, header) = josekit::jws::deserialize_compact(&jws, &verifier).unwrap();
        assert_eq!(header.key_id(), Some(kid.as_str()));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&payload).unwrap(),
            claims
        );
        // A changed payload no longer verifies.
        let mut parts: Vec<&str> = jws.split('.').collect();
        let other = crypto::b64url(br#"{"sub":"mallory","nonce":"n-0"}"#);
        parts[1] = &other;
        assert!(josekit::jws::deserialize_compact(parts.join("."), &verifier).is_err());
    }
}
