//! TestApp: a real Keyway on a random loopback port with its own SQLite file, driven over HTTP.

use keyway::app::Application;
use keyway::clock::ManualClock;
use keyway::config::{Config, RawConfig};
use keyway::domain::{GrantType, NewUser, SigningAlg, User};
use keyway::oidc::clients::{ClientSpec, register};
use keyway::state::AppState;
use std::sync::Arc;

pub struct TestApp {
    pub issuer: String,
    pub clock: ManualClock,
    pub state: AppState,
    /// Cookie jar on, redirects off: tests assert on every hop.
    pub http: reqwest::Client,
    /// `http://addr` of the metrics listener, when `metrics.listen` is set.
    pub metrics: Option<String>,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// The backend the whole suite runs on: `KEYWAY_TEST_BACKEND` (`sqlite`, the default, on a file
/// in the test's own directory; PostgreSQL joins when its backend does).
fn database_url(dir: &std::path::Path) -> String {
    match std::env::var("KEYWAY_TEST_BACKEND").as_deref() {
        Err(_) | Ok("sqlite") => format!("sqlite://{}/keyway.db", dir.display()),
        Ok(other) => panic!("KEYWAY_TEST_BACKEND={other}: no such backend"),
    }
}

/// `TEST_LOG=1 cargo test` shows the servers' logs (RUST_LOG filters them; default debug).
fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut RawConfig)) -> TestApp {
        init_test_log();
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut raw = RawConfig {
            issuer: format!("http://localhost:{port}"),
            listen: Some(format!("127.0.0.1:{port}")),
            database_url: database_url(dir.path()),
            data_dir: dir.path().display().to_string(),
            ..RawConfig::default()
        };
        tweak(&mut raw);
        let config = Config::validate(raw).unwrap();
        let clock = ManualClock::default();
        let app = Application::build_with(config, Arc::new(clock.clone()), Some(listener))
            .await
            .unwrap();
        let state = app.state().clone();
        let issuer = state.config.issuer.clone();
        let metrics = app.metrics_addr().map(|a| format!("http://{a}"));
        tokio::spawn(app.run_until(std::future::pending()));
        TestApp {
            issuer,
            clock,
            state,
            http: http_client(),
            metrics,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    pub async fn user(&self, username: &str) -> User {
        let now = self.clock_now();
        let user = self
            .state
            .repos
            .users
            .create(
                &NewUser {
                    username: username.into(),
                    email: Some(format!("{username}@example.com")),
                    name: Some(format!("User {username}")),
                    is_admin: false,
                },
                now,
            )
            .await
            .unwrap();
        let phc = self.state.auth.hasher.hash(PASSWORD).await.unwrap();
        self.state
            .repos
            .passwords
            .set(&user.id, &phc, now)
            .await
            .unwrap();
        user
    }

    pub fn clock_now(&self) -> i64 {
        use keyway::clock::Clock;
        self.clock.now()
    }

    pub async fn client_with(&self, f: impl FnOnce(&mut ClientSpec)) -> TestClient {
        let mut spec = ClientSpec {
            name: "Test App".into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec!["http://127.0.0.1:9/bye".into()],
            public: false,
            grant_types: vec![
                GrantType::AuthorizationCode,
                GrantType::RefreshToken,
                GrantType::ClientCredentials,
            ],
            scopes: vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "groups".into(),
                "offline_access".into(),
                "api".into(),
            ],
            first_party: true,
            id_token_alg: SigningAlg::RS256,
            refresh_always: false,
            require_passkey: false,
            allow_magic_link: true,
            ..ClientSpec::default()
        };
        f(&mut spec);
        let (client, secret) = register(self.state.repos.clients.as_ref(), spec, self.clock_now())
            .await
            .unwrap();
        TestClient {
            redirect_uri: client.redirect_uris.first().cloned().unwrap_or_default(),
            id: client.id,
            secret,
        }
    }

    pub async fn client(&self) -> TestClient {
        self.client_with(|_| {}).await
    }
}

/// The value of a hidden input in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in page: {html}"))
        + needle.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header; status {}", res.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// Query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl TestApp {
    /// Follows an authorization URL through the sign-in form (and consent, when `consent` is set)
    /// and returns the final redirect to the client.
    /// Fills in the sign-in page at `signin` (a path with its `req`) and returns where the
    /// browser is sent next.
    pub async fn sign_in_at(&self, http: &reqwest::Client, signin: &str, username: &str) -> String {
        let page = http
            .get(self.url(signin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let posted = http
            .post(self.url("/signin"))
            .form(&[
                ("csrf", hidden(&page, "csrf")),
                ("req", hidden(&page, "req")),
                ("username", username.to_string()),
                ("password", PASSWORD.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 303, "sign-in should redirect");
        location(&posted)
    }

    pub async fn authorize_as(
        &self,
        http: &reqwest::Client,
        auth_url: &str,
        username: &str,
        consent: bool,
    ) -> String {
        let mut res = http.get(auth_url).send().await.unwrap();
        if res.status() == 302 && location(&res).starts_with("/signin") {
            let resume = self.sign_in_at(http, &location(&res), username).await;
            res = http.get(self.url(&resume)).send().await.unwrap();
        }
        if consent && res.status() == 200 {
            let page = res.text().await.unwrap();
            res = http
                .post(self.url("/authorize/consent"))
                .form(&[
                    ("csrf", hidden(&page, "csrf")),
                    ("req", hidden(&page, "req")),
                    ("decision", "allow".to_string()),
                ])
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            res.status(),
            302,
            "the authorization should end in a redirect to the client"
        );
        location(&res)
    }

    /// The redirect for a fresh code flow with PKCE: returns (code, verifier).
    pub async fn code_for(
        &self,
        http: &reqwest::Client,
        client: &TestClient,
        username: &str,
        extra: &str,
    ) -> (String, String) {
        let verifier = "v".repeat(43) + "0123456789";
        let challenge = keyway::oidc::pkce::s256(&verifier);
        let url = self.url(&format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20profile%20email%20offline_access&state=st&nonce=n1&code_challenge={challenge}&code_challenge_method=S256{extra}",
            client.id,
            urlencode(&client.redirect_uri),
        ));
        let back = self.authorize_as(http, &url, username, true).await;
        let q = query(&back);
        (
            q.get("code")
                .unwrap_or_else(|| panic!("no code in {back}"))
                .clone(),
            verifier,
        )
    }

    /// Redeems a code from `code_for` at the token endpoint (client_secret_basic).
    pub async fn exchange(
        &self,
        client: &TestClient,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.token(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// The body of GET `path` in `browser`.
    pub async fn page(&self, browser: &reqwest::Client, path: &str) -> String {
        browser
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POST /token with the refresh_token grant (client_secret_basic).
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> reqwest::Response {
        self.token(
            client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// POST /token with client_secret_basic.
    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(self.url("/token")).form(form);
        if let Some(secret) = &client.secret {
            req = req.basic_auth(&client.id, Some(secret));
        }
        req.send().await.unwrap()
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The text of `<code id="ID">` on a page (a link, id or secret shown once).
pub fn code_text(page: &str, id: &str) -> String {
    let open = format!("<code id=\"{id}\">");
    let start = page
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in {page}"))
        + open.len();
    page[start..][..page[start..].find("</code>").unwrap()].to_owned()
}

/// The `kid` in a JWT's header.
pub fn kid(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The kids in the JWKS.
pub async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = http_client()
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}
