//! Which user claims a relying party receives, and where: scopes release claims to UserInfo
//! (OIDC Core §5.4; an access token is always issued, so none of them go into the ID token), and
//! the `claims` request parameter (§5.5) asks for individual claims in UserInfo or in the ID
//! token, essential or not. Only claims the user has are returned, and only those a scope the
//! client may use would release.

use crate::domain::{RequestedClaims, User};
use serde_json::{Map, Value, json};

/// The claims each scope releases (OIDC Core §5.4), with Keyway's `groups`.
pub const SCOPE_CLAIMS: [(&str, &[&str]); 5] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
    ("groups", &["groups"]),
];

/// The claims of the ID token that are about the authentication, not the user.
pub const PROTOCOL_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "amr",
    "acr",
    "sid",
];

/// Every claim Keyway can return, for discovery.
pub fn supported() -> Vec<&'static str> {
    let mut all: Vec<&str> = PROTOCOL_CLAIMS.to_vec();
    for (_, claims) in SCOPE_CLAIMS {
        all.extend_from_slice(claims);
    }
    all
}

/// The scope that releases `claim`, if any.
pub fn scope_of(claim: &str) -> Option<&'static str> {
    SCOPE_CLAIMS
        .iter()
        .find(|(_, claims)| claims.contains(&claim))
        .map(|(scope, _)| *scope)
}

/// Parses the `claims` request parameter: a JSON object whose `userinfo` and `id_token`
/// members map claim names to `null` or an object (`essential`, `value`, `values`). Keeps the
/// user claims the client may have (its allowed scopes release them); unknown and protocol
/// claims are ignored (the ID token carries the protocol claims anyway). `Err` says what is
/// malformed, for `invalid_request`.
pub fn parse_request(raw: &str, allowed_scopes: &[String]) -> Result<RequestedClaims, String> {
    let v: Value =
        serde_json::from_str(raw).map_err(|_| "the claims parameter is not valid JSON")?;
    let Value::Object(members) = v else {
        return Err("the claims parameter must be a JSON object".into());
    };
    let mut requested = RequestedClaims::default();
    for (target, list) in [
        ("userinfo", &mut requested.userinfo),
        ("id_token", &mut requested.id_token),
    ] {
        let Some(m) = members.get(target) else {
            continue;
        };
        let Value::Object(claims) = m else {
            return Err(format!("claims.{target} must be a JSON object"));
        };
        for (name, spec) in claims {
            if !(spec.is_null() || spec.is_object()) {
                return Err(format!(
                    "claims.{target}.{name} must be null or a JSON object"
                ));
            }
            let allowed = scope_of(name).is_some_and(|s| allowed_scopes.iter().any(|a| a == s));
            if allowed && !list.contains(name) {
                list.push(name.clone());
            }
        }
        list.sort();
    }
    Ok(requested)
}

/// Whether any of these claims needs the user's groups looked up.
pub fn wants_groups<'a>(mut names: impl Iterator<Item = &'a str>) -> bool {
    names.any(|n| n == "groups")
}

/// The named claims the user has, by value.
pub fn values<'a>(
    user: &User,
    groups: &[String],
    names: impl Iterator<Item = &'a str>,
) -> Map<String, Value> {
    let p = &user.profile;
    let mut m = Map::new();
    for name in names {
        let v = match name {
            "name" => user.name.as_ref().map(|v| json!(v)),
            "preferred_username" => Some(json!(user.username)),
            "updated_at" => Some(json!(user.updated_at)),
            "email" => user.email.as_ref().map(|v| json!(v)),
            "email_verified" => user.email.as_ref().map(|_| json!(user.email_verified)),
            "given_name" => p.given_name.as_ref().map(|v| json!(v)),
            "family_name" => p.family_name.as_ref().map(|v| json!(v)),
            "middle_name" => p.middle_name.as_ref().map(|v| json!(v)),
            "nickname" => p.nickname.as_ref().map(|v| json!(v)),
            "profile" => p.profile.as_ref().map(|v| json!(v)),
            "picture" => p.picture.as_ref().map(|v| json!(v)),
            "website" => p.website.as_ref().map(|v| json!(v)),
            "gender" => p.gender.as_ref().map(|v| json!(v)),
            "birthdate" => p.birthdate.as_ref().map(|v| json!(v)),
            "zoneinfo" => p.zoneinfo.as_ref().map(|v| json!(v)),
            "locale" => p.locale.as_ref().map(|v| json!(v)),
            "phone_number" => p.phone_number.as_ref().map(|v| json!(v)),
            "phone_number_verified" => p
                .phone_number
                .as_ref()
                .map(|_| json!(p.phone_number_verified)),
            "address" => p
                .address
                .as_ref()
                .filter(|a| !a.is_empty())
                .and_then(|a| serde_json::to_value(a).ok()),
            "groups" => {
                // Administrators are members of the built-in group `admin` (a reserved name).
                let mut all = groups.to_vec();
                if user.is_admin && !all.iter().any(|g| g == crate::domain::ADMIN_GROUP) {
                    all.push(crate::domain::ADMIN_GROUP.into());
                    all.sort();
                }
                Some(json!(all))
            }
            _ => None,
        };
        if let Some(v) = v {
            m.insert(name.to_owned(), v);
        }
    }
    m
}

/// The claim names UserInfo releases for these scopes and this claims request.
pub fn userinfo_names<'a>(
    scopes: &'a [String],
    requested: Option<&'a RequestedClaims>,
) -> impl Iterator<Item = &'a str> {
    let by_scope = SCOPE_CLAIMS
        .iter()
        .filter(|(s, _)| scopes.iter().any(|x| x == s))
        .flat_map(|(_, claims)| claims.iter().copied());
    let asked = requested
        .into_iter()
        .flat_map(|r| r.userinfo.iter().map(String::as_str));
    by_scope.chain(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_claims_parameter_keeps_what_the_client_may_have() {
        let r = parse_request(
            r#"{"userinfo":{"given_name":{"essential":true},"phone_number":null,"nonsense":null},
                "id_token":{"email":null,"auth_time":{"essential":true}}}"#,
            &scopes(&["openid", "profile", "email"]),
        )
        .unwrap();
        assert_eq!(
            r.userinfo,
            ["given_name"],
            "phone is not allowed, nonsense unknown"
        );
        assert_eq!(r.id_token, ["email"]);
    }

    #[test]
    fn malformed_claims_parameters_say_what_is_wrong() {
        for (raw, why) in [
            ("{", "JSON"),
            ("[]", "object"),
            (r#"{"userinfo":[]}"#, "userinfo"),
            (r#"{"id_token":{"email":true}}"#, "email"),
        ] {
            let e = parse_request(raw, &scopes(&["email"])).unwrap_err();
            assert!(e.contains(why), "{raw}: {e}");
        }
    }
}
