//! Passkeys (WebAuthn, with webauthn-rs): the relying party Keyway is, derived from the
//! configured issuer; the registration and sign-in ceremonies (`ceremony`); what Keyway reads
//! from an authenticator's data (`authdata`) and the names it gives new passkeys (`names`).

mod authdata;
pub mod ceremony;
pub mod names;

pub use ceremony::{
    NewPasskey, RegistrationFor, SigninMode, finish_registration, finish_signin,
    start_registration, start_signin,
};

use std::sync::Arc;
use url::{Host, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The relying party for `issuer`: its host is the relying-party id and its origin the only
/// origin allowed. Browsers refuse an IP address as relying-party id, so an issuer on an IP
/// address has no passkeys: the error says so in one line, to be logged at start.
pub fn relying_party(issuer: &Url) -> Result<Arc<Webauthn>, String> {
    let host = match issuer.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(ip)) => return Err(ip_refused(&ip.to_string())),
        Some(Host::Ipv6(ip)) => return Err(ip_refused(&ip.to_string())),
        None => return Err("passkeys are off: the issuer has no host".into()),
    };
    let origin = Url::parse(&issuer.origin().ascii_serialization())
        .map_err(|e| format!("passkeys are off: the issuer's origin is not a URL ({e})"))?;
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name("Keyway").build())
        .map(Arc::new)
        .map_err(|e| format!("passkeys are off: {host} cannot be a WebAuthn relying party ({e})"))
}

fn ip_refused(ip: &str) -> String {
    format!(
        "passkeys are off: the issuer's host {ip} is an IP address, which browsers refuse as a \
         passkey relying party; use a name (localhost for local work, as the default issuer does)"
    )
}

#[cfg(test)]
mod tests {
    use super::relying_party;
    use url::Url;

    #[test]
    fn the_relying_party_comes_from_the_issuer_and_never_an_ip_address() {
        for ok in [
            "http://localhost:8080",
            "https://id.example.com",
            "https://id.example.com/tenant",
        ] {
            assert!(relying_party(&Url::parse(ok).unwrap()).is_ok(), "{ok}");
        }
        for ip in [
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "https://10.0.0.1",
        ] {
            let e = relying_party(&Url::parse(ip).unwrap()).unwrap_err();
            assert!(
                e.contains("IP address") && e.contains("localhost"),
                "{ip}: {e}"
            );
        }
    }
}
