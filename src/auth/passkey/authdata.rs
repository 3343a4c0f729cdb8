//! The parts of a registration's authenticator data that webauthn-rs verifies but does not hand
//! back: the AAGUID (the authenticator's model) and the backup flags (WebAuthn §6.1).

/// What Keyway keeps from a new credential's authenticator data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    /// Hex, or `None` when the authenticator sent zeros (attestation "none" often does).
    pub aaguid: Option<String>,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// The signature counter at registration.
    pub sign_count: u32,
}

const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;

/// Reads the attestation object (CBOR: `fmt`, `attStmt`, `authData`). Called only after the
/// library verified it, so a malformed object cannot get here; it still yields defaults rather
/// than failing.
pub fn read(attestation_object: &[u8]) -> Registered {
    use serde_cbor_2::Value;
    let Ok(Value::Map(map)) = serde_cbor_2::from_slice::<Value>(attestation_object) else {
        return Registered::default();
    };
    let Some(Value::Bytes(auth_data)) = map.get(&Value::Text("authData".into())) else {
        return Registered::default();
    };
    from_auth_data(auth_data)
}

/// rpIdHash (32) | flags (1) | signCount (4) | attested credential data: AAGUID (16) | ...
fn from_auth_data(d: &[u8]) -> Registered {
    let Some(&flags) = d.get(32) else {
        return Registered::default();
    };
    let aaguid = d
        .get(37..53)
        .filter(|a| flags & FLAG_AT != 0 && a.iter().any(|b| *b != 0))
        .map(crate::crypto::hex);
    let sign_count = d
        .get(33..37)
        .and_then(|c| <[u8; 4]>::try_from(c).ok())
        .map_or(0, u32::from_be_bytes);
    Registered {
        aaguid,
        backup_eligible: flags & FLAG_BE != 0,
        backup_state: flags & FLAG_BS != 0,
        sign_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_aaguid_come_from_their_offsets() {
        let mut d = vec![0u8; 32];
        d.push(FLAG_AT | FLAG_BE | 0x05);
        d.extend([0, 0, 0, 7]);
        d.extend((1..=16).collect::<Vec<u8>>());
        let r = from_auth_data(&d);
        assert_eq!(
            r.aaguid.as_deref(),
            Some("0102030405060708090a0b0c0d0e0f10")
        );
        assert!(r.backup_eligible && !r.backup_state);
        assert_eq!(r.sign_count, 7);
        // A zero AAGUID names no model; a short buffer yields defaults.
        d[37..53].fill(0);
        assert_eq!(from_auth_data(&d).aaguid, None);
        assert_eq!(from_auth_data(&d[..10]), Registered::default());
    }
}
