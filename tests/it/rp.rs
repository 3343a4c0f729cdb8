//! A reusable relying party built on the `openidconnect` crate (discovery, authorization code
//! with PKCE and nonce, ID token verification against the JWKS, UserInfo), and the full happy
//! path with it: authorize → sign-in form → consent → code → token → ID token → UserInfo →
//! refresh → introspection → revocation → logout.

use crate::helpers::{TestApp, TestClient, hidden, http_client, location, query};
use keyway::domain::SigningAlg;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IntrospectionUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};

type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A relying party registered at a test server, configured by discovery.
pub struct Rp {
    pub client: RpClient,
    pub http: reqwest::Client,
    pub info: TestClient,
}

/// An authorization request on its way: the URL to open and what checks the answer.
pub struct Pending {
    pub url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: openidconnect::PkceCodeVerifier,
}

/// What one sign-in through the RP brought back.
pub struct SignedIn {
    pub tokens: CoreTokenResponse,
    pub nonce: Nonce,
}

impl Rp {
    pub async fn discover(app: &TestApp, info: TestClient) -> Rp {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(app.issuer.clone()).unwrap(),
            &http,
        )
        .await
        .unwrap();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(info.id.clone()),
            info.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(info.redirect_uri.clone()).unwrap())
        .set_introspection_url(IntrospectionUrl::new(app.url("/introspect")).unwrap());
        Rp { client, http, info }
    }

    /// The authorization URL for `scopes` (openid is implied) and extra parameters, with PKCE,
    /// state and nonce; `finish` completes it from the redirect back.
    pub fn start(&self, scopes: &[&str], extra: &[(&str, &str)]) -> Pending {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in scopes {
            req = req.add_scope(Scope::new((*s).into()));
        }
        for (k, v) in extra {
            req = req.add_extra_param(*k, *v);
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Pending {
            url: url.to_string(),
            state,
            nonce,
            verifier,
        }
    }

    /// Checks the redirect back (`back`) and exchanges its code.
    pub async fn finish(&self, app: &TestApp, pending: Pending, back: &str) -> SignedIn {
        assert!(back.starts_with(&self.info.redirect_uri), "{back}");
        let q = query(back);
        assert_eq!(q["state"], *pending.state.secret());
        assert_eq!(q["iss"], app.issuer, "RFC 9207 iss on success");
        let tokens = self
            .client
            .exchange_code(AuthorizationCode::new(q["code"].clone()))
            .unwrap()
            .set_pkce_verifier(pending.verifier)
            .request_async(&self.http)
            .await
            .unwrap();
        SignedIn {
            tokens,
            nonce: pending.nonce,
        }
    }

    /// Authorization code + PKCE + state + nonce for `scopes` (openid is implied) and any extra
    /// parameters, signing in as `username` in `browser` (consenting when asked), then the code
    /// exchange.
    pub async fn sign_in(
        &self,
        app: &TestApp,
        browser: &reqwest::Client,
        username: &str,
        scopes: &[&str],
        extra: &[(&str, &str)],
    ) -> SignedIn {
        let pending = self.start(scopes, extra);
        let back = app
            .authorize_as(browser, &pending.url, username, true)
            .await;
        self.finish(app, pending, &back).await
    }

    /// The ID token's claims, verified (signature against the JWKS, issuer, audience, nonce).
    pub fn id_claims(&self, signed_in: &SignedIn) -> CoreIdTokenClaims {
        let id_token = signed_in.tokens.id_token().expect("an ID token");
        id_token
            .claims(&self.client.id_token_verifier(), &signed_in.nonce)
            .unwrap()
            .clone()
    }

    pub async fn userinfo(&self, signed_in: &SignedIn) -> CoreUserInfoClaims {
        self.client
            .user_info(signed_in.tokens.access_token().clone(), None)
            .unwrap()
            .request_async(&self.http)
            .await
            .unwrap()
    }
}

async fn full_flow(alg: SigningAlg, expected: CoreJwsSigningAlgorithm) {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let info = app
        .client_with(|c| {
            c.first_party = false;
            c.id_token_alg = alg;
        })
        .await;
    let rp = Rp::discover(&app, info).await;
    let (client, http) = (&rp.client, &rp.http);
    // The browser: sign in, then consent (third-party client).
    let browser = http_client();
    let signed_in = rp
        .sign_in(
            &app,
            &browser,
            "alice",
            &["profile", "email", "offline_access"],
            &[],
        )
        .await;
    let (tokens, nonce) = (&signed_in.tokens, &signed_in.nonce);
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![expected.clone()]);
    let claims = id_token.claims(&id_verifier, nonce).unwrap();
    assert_eq!(claims.subject().as_str(), alice.id);
    // Scope claims go to UserInfo, not into the ID token (OIDC Core §5.4).
    assert!(claims.preferred_username().is_none() && claims.email().is_none());
    assert!(claims.auth_time().is_some());
    assert_eq!(*id_token.signing_alg().unwrap(), expected);
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), alice.id);
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(info.preferred_username().unwrap().as_str(), "alice");

    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token")
        .clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret(),
        "rotation"
    );
    refreshed
        .id_token()
        .unwrap()
        .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();

    let intro = client
        .introspect(refreshed.access_token())
        .request_async(http)
        .await
        .unwrap();
    assert!(intro.active());

    // The openidconnect crate refuses revocation over plain http (RFC 7009 §5 wants TLS), and the
    // test server is plain http on loopback: this one step is a raw RFC 7009 request.
    let res = http
        .post(app.url("/revoke"))
        .basic_auth(&rp.info.id, rp.info.secret.as_ref())
        .form(&[
            ("token", refreshed.access_token().secret().as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let intro = client
        .introspect(refreshed.access_token())
        .request_async(http)
        .await
        .unwrap();
    assert!(!intro.active(), "revoked token is inactive");

    // Logout with the ID token as hint, then prompt=none needs a login again.
    let res = browser
        .get(app.url(&format!(
            "/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            id_token,
            crate::helpers::urlencode("http://127.0.0.1:9/bye")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:9/bye?state=bye");
    let (auth_url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .set_pkce_challenge(PkceCodeChallenge::new_random_sha256().0)
        .url();
    let res = browser.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(query(&location(&res))["error"], "login_required");
    let _ = hidden;
}

#[tokio::test]
async fn rp_happy_path_rs256() {
    full_flow(
        SigningAlg::RS256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
}

#[tokio::test]
async fn rp_happy_path_eddsa() {
    full_flow(SigningAlg::EdDSA, CoreJwsSigningAlgorithm::EdDsa).await;
}

#[tokio::test]
async fn rp_happy_path_es256() {
    full_flow(SigningAlg::ES256, CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}
