//! Applications (OIDC clients): the list; create and edit every setting; an application's page
//! with its discovery URL, client id and a configuration snippet; secret rotation with an
//! overlap; which groups may use it; delete (revoking its tokens).

use super::{Admin, fresh_sign_in, operator, refusal};
use crate::auth::session;
use crate::clock::{format_duration, parse_duration};
use crate::domain::{Client, ClientKind, ClientLifetimes, GrantType, SigningAlg};
use crate::oidc::clients::ClientSpec;
use crate::ops::OpsError;
use crate::state::AppState;
use crate::web::error::{AppError, AppResult};
use crate::web::extract::{CsrfForm, Empty};
use crate::web::{pages, see_other};
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/apps", get(list).post(create))
        .route("/admin/apps/new", get(new_form))
        .route("/admin/apps/{id}", get(show).post(update))
        .route("/admin/apps/{id}/edit", get(edit_form))
        .route("/admin/apps/{id}/secret", post(rotate_secret))
        .route("/admin/apps/{id}/groups", post(set_groups))
        .route("/admin/apps/{id}/delete", post(delete))
}

struct Row {
    id: String,
    name: String,
    public: bool,
    restricted: bool,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
struct ListPage<'a> {
    csrf: &'a str,
    name: &'a str,
    rows: Vec<Row>,
}

async fn list(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    let rows = state
        .repos
        .clients
        .list()
        .await?
        .into_iter()
        .map(|c| Row {
            public: c.kind() == ClientKind::Public,
            restricted: !c.allowed_groups.is_empty(),
            id: c.id,
            name: c.name,
        })
        .collect();
    let csrf = session::csrf_token(&session, &state.auth).await?;
    Ok(pages::render(
        StatusCode::OK,
        &ListPage {
            csrf: &csrf,
            name: &admin.user.username,
            rows,
        },
    ))
}

/// A box to tick (or a choice to select) on the form.
struct Choice {
    value: &'static str,
    checked: bool,
}

/// The form's fields as text, as the admin typed them (or as the client has them).
struct Fields {
    name: String,
    logo_uri: String,
    redirect_uris: String,
    post_logout_uris: String,
    public: bool,
    grants: Vec<Choice>,
    scopes: String,
    first_party: bool,
    allow_magic_link: bool,
    require_passkey: bool,
    refresh_always: bool,
    algs: Vec<Choice>,
    access_ttl: String,
    id_ttl: String,
    refresh_ttl: String,
}

const GRANTS: [GrantType; 3] = [
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
    GrantType::ClientCredentials,
];

fn ttl_text(t: Option<u32>) -> String {
    t.map(|t| format_duration(i64::from(t))).unwrap_or_default()
}

impl Fields {
    fn of(spec: &ClientSpec) -> Self {
        let grants: &[GrantType] = if spec.grant_types.is_empty() {
            &[GrantType::AuthorizationCode, GrantType::RefreshToken]
        } else {
            &spec.grant_types
        };
        let scopes = if spec.scopes.is_empty() {
            crate::domain::OIDC_SCOPES.join(" ")
        } else {
            spec.scopes.join(" ")
        };
        Self {
            name: spec.name.clone(),
            logo_uri: spec.logo_uri.clone().unwrap_or_default(),
            redirect_uris: spec.redirect_uris.join("\n"),
            post_logout_uris: spec.post_logout_redirect_uris.join("\n"),
            public: spec.public,
            grants: GRANTS
                .iter()
                .map(|g| Choice {
                    value: g.as_str(),
                    checked: grants.contains(g),
                })
                .collect(),
            scopes,
            first_party: spec.first_party,
            allow_magic_link: spec.allow_magic_link,
            require_passkey: spec.require_passkey,
            refresh_always: spec.refresh_always,
            algs: SigningAlg::ALL
                .iter()
                .map(|a| Choice {
                    value: a.as_str(),
                    checked: *a == spec.id_token_alg,
                })
                .collect(),
            access_ttl: ttl_text(spec.lifetimes.access_token),
            id_ttl: ttl_text(spec.lifetimes.id_token),
            refresh_ttl: ttl_text(spec.lifetimes.refresh_token),
        }
    }
}

/// The posted form: repeated `grant` boxes, so read as pairs.
struct Posted(Vec<(String, String)>);

impl Posted {
    fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
    fn ticked(&self, name: &str) -> bool {
        !self.text(name).is_empty()
    }
    fn lines(&self, name: &str) -> Vec<String> {
        self.text(name)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
    fn ttl(&self, name: &str, what: &str) -> Result<Option<u32>, OpsError> {
        let text = self.text(name).trim();
        if text.is_empty() {
            return Ok(None);
        }
        let secs = parse_duration(text).map_err(|e| OpsError::Invalid(format!("{what}: {e}")))?;
        u32::try_from(secs)
            .map(Some)
            .map_err(|_| OpsError::Invalid(format!("{what}: {text:?} is too long")))
    }

    /// The spec the form asks for; the form's own mistakes (an unknown algorithm, a bad
    /// duration) as words, the rest is `ClientSpec`'s to check.
    fn spec(&self) -> Result<ClientSpec, OpsError> {
        let invalid = |why: &str| OpsError::Invalid(why.to_owned());
        let id_token_alg = SigningAlg::parse(self.text("id_token_alg"))
            .ok_or_else(|| invalid("Choose an ID token signing algorithm"))?;
        let grant_types = self
            .0
            .iter()
            .filter(|(k, _)| k == "grant")
            .filter_map(|(_, v)| GrantType::parse(v))
            .collect::<Vec<_>>();
        if grant_types.is_empty() {
            return Err(invalid("Tick at least one grant type"));
        }
        Ok(ClientSpec {
            name: self.text("name").to_owned(),
            redirect_uris: self.lines("redirect_uris"),
            post_logout_redirect_uris: self.lines("post_logout_uris"),
            public: self.text("kind") == "public",
            grant_types,
            scopes: self.lines("scopes"),
            first_party: self.ticked("first_party"),
            id_token_alg,
            refresh_always: self.ticked("refresh_always"),
            require_passkey: self.ticked("require_passkey"),
            allow_magic_link: self.ticked("allow_magic_link"),
            logo_uri: Some(self.text("logo_uri").trim().to_owned()).filter(|l| !l.is_empty()),
            lifetimes: ClientLifetimes {
                access_token: self.ttl("access_token_ttl", "Access token lifetime")?,
                id_token: self.ttl("id_token_ttl", "ID token lifetime")?,
                refresh_token: self.ttl("refresh_token_ttl", "Refresh token lifetime")?,
            },
        })
    }
}

#[derive(Template)]
#[template(path = "admin/app_form.html")]
struct FormPage<'a> {
    csrf: &'a str,
    name: &'a str,
    /// Where the form posts: the list (create) or the application (update).
    action: String,
    heading: String,
    f: Fields,
    error: Option<String>,
    /// The server's lifetimes, shown as what an empty field means.
    defaults: [String; 3],
}

async fn render_form(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: Option<&Client>,
    f: Fields,
    error: Option<String>,
) -> AppResult<Response> {
    let l = &state.config.lifetimes;
    let (action, heading) = match client {
        Some(c) => (format!("/admin/apps/{}", c.id), format!("Edit {}", c.name)),
        None => ("/admin/apps".to_owned(), "New application".to_owned()),
    };
    let csrf = session::csrf_token(session, &state.auth).await?;
    let status = pages::status_for(error.as_deref());
    Ok(pages::render(
        status,
        &FormPage {
            csrf: &csrf,
            name: &admin.user.username,
            action,
            heading,
            f,
            error,
            defaults: [
                format_duration(l.access_token as i64),
                format_duration(l.id_token as i64),
                format_duration(l.refresh_token_absolute as i64),
            ],
        },
    ))
}

async fn new_form(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
) -> AppResult<Response> {
    let fields = Fields::of(&ClientSpec::default());
    render_form(&state, &session, &admin, None, fields, None).await
}

async fn create(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let posted = Posted(form);
    let outcome = async { operator(&state, &admin).create_client(posted.spec()?).await }.await;
    match outcome {
        Ok((client, secret)) => {
            render_app(
                &state,
                &session,
                &admin,
                client,
                secret,
                StatusCode::CREATED,
            )
            .await
        }
        Err(why) => {
            let fields = posted_fields(&posted);
            render_form(&state, &session, &admin, None, fields, Some(refusal(why)?)).await
        }
    }
}

/// The form again as posted, after a refusal.
fn posted_fields(posted: &Posted) -> Fields {
    let mut f = Fields::of(&ClientSpec::default());
    f.name = posted.text("name").to_owned();
    f.logo_uri = posted.text("logo_uri").to_owned();
    f.redirect_uris = posted.text("redirect_uris").to_owned();
    f.post_logout_uris = posted.text("post_logout_uris").to_owned();
    f.public = posted.text("kind") == "public";
    for g in &mut f.grants {
        g.checked = posted.0.iter().any(|(k, v)| k == "grant" && v == g.value);
    }
    f.scopes = posted.text("scopes").to_owned();
    f.first_party = posted.ticked("first_party");
    f.allow_magic_link = posted.ticked("allow_magic_link");
    f.require_passkey = posted.ticked("require_passkey");
    f.refresh_always = posted.ticked("refresh_always");
    for a in &mut f.algs {
        a.checked = posted.text("id_token_alg") == a.value;
    }
    f.access_ttl = posted.text("access_token_ttl").to_owned();
    f.id_ttl = posted.text("id_token_ttl").to_owned();
    f.refresh_ttl = posted.text("refresh_token_ttl").to_owned();
    f
}

async fn client_or_404(state: &AppState, id: &str) -> AppResult<Client> {
    state
        .repos
        .clients
        .get(id)
        .await?
        .ok_or_else(AppError::not_found)
}

async fn edit_form(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let client = client_or_404(&state, &id).await?;
    let fields = Fields::of(&ClientSpec::of(&client));
    render_form(&state, &session, &admin, Some(&client), fields, None).await
}

async fn update(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let client = client_or_404(&state, &id).await?;
    let posted = Posted(form);
    let outcome = async {
        operator(&state, &admin)
            .update_client(&id, posted.spec()?)
            .await
    }
    .await;
    match outcome {
        Ok((client, Some(secret))) => {
            render_app(
                &state,
                &session,
                &admin,
                client,
                Some(secret),
                StatusCode::OK,
            )
            .await
        }
        Ok((_, None)) => Ok(see_other(&format!("/admin/apps/{id}"))),
        Err(why) => {
            let fields = posted_fields(&posted);
            render_form(
                &state,
                &session,
                &admin,
                Some(&client),
                fields,
                Some(refusal(why)?),
            )
            .await
        }
    }
}

struct GroupChoice {
    id: String,
    name: String,
    allowed: bool,
}

#[derive(Template)]
#[template(path = "admin/app.html")]
struct AppPage<'a> {
    csrf: &'a str,
    name: &'a str,
    client: Client,
    discovery: String,
    snippet: String,
    groups: Vec<GroupChoice>,
    /// A secret just made: shown this once.
    secret: Option<String>,
    /// Until when the previous secret works, if a rotation's overlap is running.
    previous_until: Option<String>,
    lifetimes: String,
    admin_ui: bool,
}

async fn render_app(
    state: &AppState,
    session: &Session,
    admin: &Admin,
    client: Client,
    secret: Option<String>,
    status: StatusCode,
) -> AppResult<Response> {
    let issuer = &state.config.issuer;
    let discovery = format!("{issuer}{}", crate::web::urls::DISCOVERY);
    let secret_line = match (client.kind(), &secret) {
        (ClientKind::Confidential, Some(s)) => format!("client_secret = \"{s}\"\n"),
        (ClientKind::Confidential, None) => {
            "client_secret = \"(shown once, when it was made)\"\n".to_owned()
        }
        (ClientKind::Public, _) => "# public client: no secret; use PKCE (S256)\n".to_owned(),
    };
    let snippet = format!(
        "issuer = \"{issuer}\"\nclient_id = \"{}\"\n{secret_line}redirect_uri = \"{}\"\nscopes = \"{}\"\n",
        client.id,
        client.redirect_uris.first().cloned().unwrap_or_default(),
        client.scopes.join(" ")
    );
    let groups = state
        .repos
        .groups
        .list()
        .await?
        .into_iter()
        .map(|g| GroupChoice {
            allowed: client.allowed_groups.contains(&g.id),
            id: g.id,
            name: g.name,
        })
        .collect();
    let now = state.now();
    let previous_until = client.previous_secret_until(now).map(pages::when);
    let t = crate::oidc::grants::Ttls::of(&state.config.lifetimes, &client);
    let lifetimes = format!(
        "access token {}, ID token {}, refresh token {}",
        format_duration(t.access_token),
        format_duration(t.id_token),
        format_duration(t.refresh_token),
    );
    let csrf = session::csrf_token(session, &state.auth).await?;
    Ok(pages::render(
        status,
        &AppPage {
            csrf: &csrf,
            name: &admin.user.username,
            admin_ui: client.id == crate::domain::ADMIN_CLIENT_ID,
            client,
            discovery,
            snippet,
            groups,
            secret,
            previous_until,
            lifetimes,
        },
    ))
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
) -> AppResult<Response> {
    let client = client_or_404(&state, &id).await?;
    render_app(&state, &session, &admin, client, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    overlap: String,
}

/// A new secret, shown once on the application's page; the old one keeps working for the
/// chosen overlap.
async fn rotate_secret(
    State(state): State<AppState>,
    session: Session,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, .. }: CsrfForm<RotateForm>,
) -> AppResult<Response> {
    let overlap = parse_duration(&form.overlap)
        .map_err(|why| AppError::bad_request("Cannot rotate the secret", why))?;
    match operator(&state, &admin)
        .rotate_client_secret(&id, overlap)
        .await
    {
        Ok((client, secret)) => {
            render_app(
                &state,
                &session,
                &admin,
                client,
                Some(secret),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => Err(AppError::bad_request(
            "Cannot rotate the secret",
            refusal(e)?,
        )),
    }
}

/// The form posts `group` once per ticked box: read as pairs.
async fn set_groups(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { form, .. }: CsrfForm<Vec<(String, String)>>,
) -> AppResult<Response> {
    let groups = super::ticked_groups(form);
    match operator(&state, &admin)
        .set_client_groups(&id, groups)
        .await
    {
        Ok(()) => Ok(see_other(&format!("/admin/apps/{id}"))),
        Err(e) => Err(AppError::bad_request(
            "Cannot change who may use it",
            refusal(e)?,
        )),
    }
}

async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    CsrfForm { .. }: CsrfForm<Empty>,
) -> AppResult<Response> {
    if let Some(again) = fresh_sign_in(&state, &admin, &format!("/admin/apps/{id}")) {
        return Ok(again);
    }
    match operator(&state, &admin).delete_client(&id).await {
        Ok(()) => Ok(see_other("/admin/apps")),
        Err(e) => Err(AppError::bad_request(
            "Cannot delete the application",
            refusal(e)?,
        )),
    }
}
