//! The default name of a new passkey: the authenticator's model when its AAGUID is one of the
//! well-known ones (the community list at passkeydeveloper/passkey-authenticator-aaguids), else
//! the browser and platform it was made on.

/// Well-known AAGUIDs (lower-case hex, no dashes) and their names.
const KNOWN: &[(&str, &str)] = &[
    ("fbfc3007154e4ecc8c0b6e020557d7bd", "iCloud Keychain"),
    ("dd4ec289e01d41c9bb8970fa845d4bf2", "iCloud Keychain"),
    (
        "ea9b8d664d011d213ce4b6b48cb575d4",
        "Google Password Manager",
    ),
    ("adce000235bcc60a648b0b25f1f05503", "Chrome on Mac"),
    ("08987058cadc4b81b6e130de50dcbe96", "Windows Hello"),
    ("9ddd1817af5a4672a2b93e3dd95000a9", "Windows Hello"),
    ("6028b017b1d44c02b4b3afcdafc96bb2", "Windows Hello"),
    ("d548826e79b4db40a3d811116f7e8349", "Bitwarden"),
    ("bada5566a7aa401fbd9645619a55120d", "1Password"),
    ("53414d53554e47000000000000000000", "Samsung Pass"),
    ("cb69481e8ff7403993ec0a2729a154a8", "YubiKey 5"),
    ("ee882879721c491397753dfcce97072a", "YubiKey 5"),
    ("fa2b99dc9e3942578f924a30d23c4118", "YubiKey 5 NFC"),
    ("2fc0579f811347eab116bb5a8db9202a", "YubiKey 5 NFC"),
    ("c5ef55ffad9a4b9fb580adebafe026d0", "YubiKey 5Ci"),
    ("149a20218ef6413396b881f8d5b7f1f5", "Security Key by Yubico"),
    ("b92c3f9ac0144056887f140a2501163b", "Security Key by Yubico"),
];

/// A default name: the model, or "Browser on Platform" from the User-Agent, or "Passkey".
pub fn default_name(aaguid: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(name) = aaguid.and_then(|a| KNOWN.iter().find(|(k, _)| *k == a)) {
        return name.1.to_owned();
    }
    user_agent
        .and_then(describe_user_agent)
        .unwrap_or_else(|| "Passkey".to_owned())
}

/// "Chrome on Linux" from a User-Agent, when both parts are recognisable.
pub fn describe_user_agent(ua: &str) -> Option<String> {
    // Order matters: Edge and Opera say "Chrome" too, and Chrome says "Safari".
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    let platform = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "Mac"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| name);
    match (browser, platform) {
        (Some(b), Some(p)) => Some(format!("{b} on {p}")),
        (Some(b), None) => Some(b.to_owned()),
        (None, Some(p)) => Some(p.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_model_wins_then_the_browser_then_a_plain_word() {
        assert_eq!(
            default_name(
                Some("fbfc3007154e4ecc8c0b6e020557d7bd"),
                Some("Chrome/1 Linux")
            ),
            "iCloud Keychain"
        );
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                            Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(
            default_name(Some("00ff"), Some(chrome_linux)),
            "Chrome on Linux"
        );
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) \
                             AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(default_name(None, Some(safari_iphone)), "Safari on iPhone");
        assert_eq!(default_name(None, Some("curl/8")), "Passkey");
        assert_eq!(default_name(None, None), "Passkey");
    }
}
