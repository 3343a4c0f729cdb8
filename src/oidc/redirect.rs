//! Redirect URI matching: exact string comparison against the registered list, except that a
//! loopback redirect URI may differ in port only (RFC 8252 §7.3).

use url::Url;

pub fn matches_registered(requested: &str, registered: &[String]) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if req.scheme() != "http" || !is_loopback_ip_literal(&req) {
        return false;
    }
    registered.iter().any(|r| {
        Url::parse(r).is_ok_and(|reg| {
            reg.scheme() == "http"
                && is_loopback_ip_literal(&reg)
                && reg.host_str() == req.host_str()
                && reg.path() == req.path()
                && reg.query() == req.query()
                && reg.fragment().is_none()
                && req.fragment().is_none()
                && reg.username() == req.username()
                && reg.password() == req.password()
                // The raw strings must agree outside the port, so encoding tricks cannot slip by.
                && strip_port(r) == strip_port(requested)
        })
    })
}

/// RFC 8252 §8.3: loopback redirects use IP literals (localhost is not matched port-free).
fn is_loopback_ip_literal(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn strip_port(s: &str) -> String {
    // http://HOST[:PORT]/rest  →  http://HOST/rest
    let Some(rest) = s.strip_prefix("http://") else {
        return s.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("http://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::matches_registered;

    fn reg(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_only() {
        let r = reg(&["https://app.example.com/cb"]);
        assert!(matches_registered("https://app.example.com/cb", &r));
        for bad in [
            "https://app.example.com/cb/",
            "https://APP.example.com/cb",
            "https://app.example.com/CB",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/c%62",
            "https://app.example.com:443/cb",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com/cb#f",
            "http://app.example.com/cb",
        ] {
            assert!(!matches_registered(bad, &r), "{bad}");
        }
    }

    #[test]
    fn loopback_port_may_vary() {
        let r = reg(&["http://127.0.0.1/cb", "http://[::1]:1234/cb"]);
        assert!(matches_registered("http://127.0.0.1:51234/cb", &r));
        assert!(matches_registered("http://[::1]:9/cb", &r));
        assert!(!matches_registered("http://127.0.0.1:51234/cb2", &r));
        assert!(!matches_registered("http://127.0.0.2:51234/cb", &r));
        assert!(!matches_registered("http://127.0.0.1:5/%63b", &r));
    }
}
