//! Sign-in by emailed link, bound to the browser that asked. The request sets a cookie holding a
//! random binding value; the link (128+ random bits, stored as a hash, single use) signs that
//! browser in after a confirming button (mail scanners that prefetch consume nothing). Opened in
//! any other browser it never signs that one in silently: it shows a one-time code to type into
//! the browser that asked, or signs in there only after the person confirms the requesting
//! address and time. Codes are single use, expire with the link, and 5 wrong ones kill it.

use super::{Authenticated, Authenticator, CredentialError, CredentialResult};
use crate::crypto::{constant_time_eq, random_token, token_hash};
use crate::domain::{AuthMethod, MagicLink, RequestMeta, User};
use crate::mail::messages;

/// Wrong codes a link survives.
pub const MAX_CODE_TRIES: u32 = 5;

/// What asking for a link came to. The page says the same either way.
#[derive(Debug)]
pub struct Requested {
    /// The browser's binding value, for its cookie (the one it had, or a new one).
    pub binding: String,
}

/// What opening a link shows.
#[derive(Debug)]
pub enum Opened {
    /// Expired, used, or no such link.
    Gone,
    /// The browser that asked: a button signs it in.
    SameBrowser { username: String },
    /// Another browser: the code to type where the link was asked for, and what to check
    /// before signing in here instead.
    Elsewhere {
        username: String,
        code: String,
        requested_ip: String,
        requested_at: i64,
    },
}

fn binding_hash(binding: &str) -> String {
    token_hash(binding)
}

/// Sends a sign-in link to `email` if it belongs to an active account; limited per address and
/// per IP (a limited request is audited and sends nothing). Same answer, and the same work before
/// it (one read, one audit write), whatever the case.
pub async fn request(
    auth: &std::sync::Arc<Authenticator>,
    email: &str,
    binding: Option<&str>,
    request_id: Option<&str>,
    app: Option<String>,
    meta: &RequestMeta,
) -> CredentialResult<Requested> {
    let binding = match binding.filter(|b| b.len() >= 32 && b.len() <= 64) {
        Some(b) => b.to_owned(),
        None => random_token()?,
    };
    let address = email.trim().to_lowercase();
    let ip = crate::throttle::ip_key(meta.ip.as_deref());
    let limited = match (
        auth.throttles.magic_ip.attempt(&ip),
        auth.throttles.magic_address.attempt(&address),
    ) {
        (Err(_), _) => Some("too many links asked for from this address"),
        (_, Err(_)) => Some("too many links sent to this email address"),
        _ => None,
    };
    if let Some(why) = limited {
        auth.record("magic_link.request", None, "limited", why, meta)
            .await;
        return Ok(Requested { binding });
    }
    let user = match auth.users.by_email(&address).await? {
        Some(u) if !u.disabled && !address.is_empty() => u,
        _ => {
            auth.record(
                "magic_link.request",
                None,
                "failure",
                "no active account",
                meta,
            )
            .await;
            return Ok(Requested { binding });
        }
    };
    // The answer must not take longer for a real account: the request is audited here, as for
    // an unknown address, and the link made and queued after the answer.
    auth.record(
        "magic_link.request",
        Some(user.id.clone()),
        "success",
        "sent",
        meta,
    )
    .await;
    let (auth, link_binding, request_id, meta) = (
        auth.clone(),
        binding.clone(),
        request_id.map(str::to_owned),
        meta.clone(),
    );
    tokio::spawn(async move {
        let sent = send_link(
            &auth,
            &user,
            &address,
            &link_binding,
            request_id,
            app,
            &meta,
        )
        .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "cannot send a sign-in link");
        }
    });
    Ok(Requested { binding })
}

/// Makes the link and queues its message.
async fn send_link(
    auth: &Authenticator,
    user: &User,
    address: &str,
    binding: &str,
    request_id: Option<String>,
    app: Option<String>,
    meta: &RequestMeta,
) -> CredentialResult<()> {
    let token = random_token()?;
    let now = auth.now();
    let link = MagicLink {
        id: crate::crypto::random_id()?,
        token_hash: token_hash(&token),
        user_id: user.id.clone(),
        binding_hash: binding_hash(binding),
        request_id,
        code_hash: None,
        code_tries: 0,
        requested_ip: meta.ip.clone(),
        requested_at: now,
        expires_at: now + auth.magic_link_ttl,
        used_at: None,
    };
    auth.magic_links.create(&link).await?;
    let message = messages::MagicLink {
        issuer: auth.issuer.clone(),
        username: user.username.clone(),
        link: format!("{}/signin/email/{token}", auth.issuer),
        minutes: (auth.magic_link_ttl as u64).div_ceil(60),
        app,
        ip: meta
            .ip
            .clone()
            .unwrap_or_else(|| "an unknown address".into()),
        when: crate::clock::for_people(now),
    }
    .render()?;
    auth.mail
        .queue(address, message, "magic_link", Some(&user.id))
        .await?;
    Ok(())
}

/// A live link by its token, with its user (active).
async fn live(auth: &Authenticator, token: &str) -> CredentialResult<Option<(MagicLink, User)>> {
    let Some(link) = auth.magic_links.by_token_hash(&token_hash(token)).await? else {
        return Ok(None);
    };
    if !link.is_live(auth.now()) {
        return Ok(None);
    }
    match auth.users.by_id(&link.user_id).await? {
        Some(u) if !u.disabled => Ok(Some((link, u))),
        _ => Ok(None),
    }
}

fn same_browser(link: &MagicLink, binding: Option<&str>) -> bool {
    binding
        .is_some_and(|b| constant_time_eq(binding_hash(b).as_bytes(), link.binding_hash.as_bytes()))
}

fn code_mac(auth: &Authenticator, link_id: &str, code: &str) -> CredentialResult<String> {
    Ok(auth
        .csrf_key
        .tag(format!("magic link code|{link_id}|{code}").as_bytes())?)
}

/// What the link's page shows. Changes nothing but, elsewhere, the link's code (a fresh one
/// each time the page is shown).
pub async fn open(
    auth: &Authenticator,
    token: &str,
    binding: Option<&str>,
) -> CredentialResult<Opened> {
    let Some((link, user)) = live(auth, token).await? else {
        return Ok(Opened::Gone);
    };
    if same_browser(&link, binding) {
        return Ok(Opened::SameBrowser {
            username: user.username,
        });
    }
    let n = u32::from_be_bytes(
        crate::crypto::random_bytes(4)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("random bytes"))?,
    );
    let code = format!("{:06}", n % 1_000_000);
    auth.magic_links
        .set_code(&link.id, &code_mac(auth, &link.id, &code)?)
        .await?;
    Ok(Opened::Elsewhere {
        username: user.username,
        code,
        requested_ip: link
            .requested_ip
            .unwrap_or_else(|| "an unknown address".into()),
        requested_at: link.requested_at,
    })
}

/// Signs in with the link itself: in the browser that asked, or elsewhere when the person
/// confirmed the requesting address and time (`confirmed_here`). Single use: of two clicks at
/// once, one signs in. Returns who, and the waiting request of the browser that asked.
pub async fn sign_in(
    auth: &Authenticator,
    token: &str,
    binding: Option<&str>,
    confirmed_here: bool,
    meta: &RequestMeta,
) -> CredentialResult<(Authenticated, Option<String>)> {
    let Some((link, user)) = live(auth, token).await? else {
        auth.refused(
            AuthMethod::Email,
            None,
            "link expired, used or unknown",
            meta,
        )
        .await;
        return Err(CredentialError::Refused);
    };
    let here = same_browser(&link, binding);
    if !here && !confirmed_here {
        auth.refused(
            AuthMethod::Email,
            Some(&user),
            "another browser, not confirmed",
            meta,
        )
        .await;
        return Err(CredentialError::Refused);
    }
    if !auth.magic_links.consume(&link.id, auth.now()).await? {
        auth.refused(AuthMethod::Email, Some(&user), "link already used", meta)
            .await;
        return Err(CredentialError::Refused);
    }
    let user = verified(auth, user).await?;
    let request = if here { link.request_id } else { None };
    Ok((
        Authenticated {
            user,
            amr: vec![AuthMethod::Email],
            auth_time: auth.now(),
        },
        request,
    ))
}

/// Signs in the browser that asked with the code the link showed elsewhere.
pub async fn sign_in_with_code(
    auth: &Authenticator,
    binding: Option<&str>,
    code: &str,
    meta: &RequestMeta,
) -> CredentialResult<Authenticated> {
    auth.guard_ip(AuthMethod::Otp, &super::Attempt::new("", meta), meta)
        .await?;
    let Some(binding) = binding else {
        auth.refused(
            AuthMethod::Otp,
            None,
            "no link asked for in this browser",
            meta,
        )
        .await;
        return Err(CredentialError::Refused);
    };
    let code: String = code.chars().filter(char::is_ascii_digit).collect();
    let waiting = auth
        .magic_links
        .with_code(&binding_hash(binding), auth.now())
        .await?;
    let Some(link) = waiting.into_iter().next() else {
        auth.refused(
            AuthMethod::Otp,
            None,
            "no link with a code for this browser",
            meta,
        )
        .await;
        return Err(CredentialError::Refused);
    };
    let expected = link.code_hash.clone().unwrap_or_default();
    let matches = code.len() == 6
        && constant_time_eq(
            code_mac(auth, &link.id, &code)?.as_bytes(),
            expected.as_bytes(),
        );
    let user = auth.users.by_id(&link.user_id).await?;
    if !matches {
        let tries = auth
            .magic_links
            .wrong_code(&link.id, MAX_CODE_TRIES, auth.now())
            .await?;
        let why = format!("wrong code ({tries} of {MAX_CODE_TRIES})");
        auth.refused(AuthMethod::Otp, user.as_ref(), &why, meta)
            .await;
        return Err(CredentialError::Refused);
    }
    let user = match user {
        Some(u) if !u.disabled => u,
        _ => {
            auth.refused(AuthMethod::Otp, None, "account disabled", meta)
                .await;
            return Err(CredentialError::Refused);
        }
    };
    if !auth.magic_links.consume(&link.id, auth.now()).await? {
        auth.refused(AuthMethod::Otp, Some(&user), "link already used", meta)
            .await;
        return Err(CredentialError::Refused);
    }
    let user = verified(auth, user).await?;
    Ok(Authenticated {
        user,
        amr: vec![AuthMethod::Otp],
        auth_time: auth.now(),
    })
}

/// The link reached the address: it is verified from now on.
async fn verified(auth: &Authenticator, user: User) -> CredentialResult<User> {
    if user.email_verified {
        return Ok(user);
    }
    let mut u = user;
    u.email_verified = true;
    Ok(auth.users.update(&u, auth.now()).await?)
}
