//! The ID token (OIDC Core §2): the protocol claims, and the user claims the client asked for
//! in it with the claims parameter (scope claims go to UserInfo, §5.4); `at_hash` (§3.1.3.6).

use crate::crypto::b64url;
use crate::domain::SigningAlg;
use serde_json::{Map, Value, json};

/// `at_hash`: the left half of the hash that matches the signing algorithm, base64url.
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => {
            crate::crypto::sha256(access_token.as_bytes()).to_vec()
        }
        // Ed25519 signs with SHA-512, so its hash claims use SHA-512 too.
        SigningAlg::EdDSA => crate::crypto::sha512(access_token.as_bytes()).to_vec(),
    };
    b64url(&digest[..digest.len() / 2])
}

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    /// The user's id.
    pub sub: &'a str,
    pub client_id: &'a str,
    pub alg: SigningAlg,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub sid: &'a str,
    pub access_token: Option<&'a str>,
    /// User claims requested for the ID token (see `claims::values`).
    pub user_claims: Map<String, Value>,
    pub now: i64,
    pub ttl: i64,
}

pub fn claims(i: IdTokenInput<'_>) -> Value {
    let mut m = i.user_claims;
    m.insert("sub".into(), json!(i.sub));
    m.insert("iss".into(), json!(i.issuer));
    m.insert("aud".into(), json!(i.client_id));
    m.insert("azp".into(), json!(i.client_id));
    m.insert("iat".into(), json!(i.now));
    m.insert("exp".into(), json!(i.now + i.ttl));
    m.insert("auth_time".into(), json!(i.auth_time));
    let amr: Vec<&str> = i.amr.split_ascii_whitespace().collect();
    m.insert("amr".into(), json!(amr));
    m.insert("acr".into(), json!(crate::domain::acr_for(i.amr)));
    m.insert("sid".into(), json!(i.sid));
    if let Some(n) = i.nonce {
        m.insert("nonce".into(), json!(n));
    }
    if let Some(at) = i.access_token {
        m.insert("at_hash".into(), json!(at_hash(i.alg, at)));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_example_from_oidc_core() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" → at_hash "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            super::at_hash(
                crate::domain::SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
