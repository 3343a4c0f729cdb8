//! The `client` commands: register, change every setting, rotate a secret with an overlap,
//! restrict to groups, list, delete.

use super::commands::with_operator;
use super::output::{Out, client_json, clients_table, kind_name};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::domain::{Client, GrantType, SigningAlg};
use crate::oidc::clients::ClientSpec;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum GrantArg {
    #[value(name = "authorization_code")]
    AuthorizationCode,
    #[value(name = "refresh_token")]
    RefreshToken,
    #[value(name = "client_credentials")]
    ClientCredentials,
}

impl From<GrantArg> for GrantType {
    fn from(g: GrantArg) -> Self {
        match g {
            GrantArg::AuthorizationCode => GrantType::AuthorizationCode,
            GrantArg::RefreshToken => GrantType::RefreshToken,
            GrantArg::ClientCredentials => GrantType::ClientCredentials,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum AlgArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "ES256")]
    Es256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl From<AlgArg> for SigningAlg {
    fn from(a: AlgArg) -> Self {
        match a {
            AlgArg::Rs256 => SigningAlg::RS256,
            AlgArg::Es256 => SigningAlg::ES256,
            AlgArg::EdDsa => SigningAlg::EdDSA,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum ClientCommand {
    /// Register a client; a confidential client's secret is printed once
    Create {
        #[arg(long)]
        name: String,
        /// Allowed redirect URIs (exact match)
        #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
        redirect_uris: Vec<String>,
        /// Allowed post-logout redirect URIs
        #[arg(long = "post-logout-uri", value_name = "URI", num_args = 1..)]
        post_logout_uris: Vec<String>,
        /// A public client (native or browser app): no secret, PKCE only
        #[arg(long)]
        public: bool,
        /// Grant types [default: authorization_code refresh_token]
        #[arg(long = "grant", value_name = "GRANT", num_args = 1..)]
        grants: Vec<GrantArg>,
        /// Scopes the client may ask for [default: openid profile email groups offline_access]
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1..)]
        scopes: Vec<String>,
        /// Skip the consent page for this client
        #[arg(long)]
        first_party: bool,
        /// ID token signing algorithm
        #[arg(long, value_name = "ALG", default_value = "RS256")]
        id_token_alg: AlgArg,
        /// Issue refresh tokens even without the offline_access scope
        #[arg(long)]
        always_refresh: bool,
        /// Accept only a passkey sign-in (acr "phr"): users signed in otherwise are asked for one
        #[arg(long)]
        require_passkey: bool,
        /// Refuse sign-ins by emailed link (for example for an admin application)
        #[arg(long)]
        no_magic_link: bool,
        #[command(flatten)]
        extra: ClientExtras,
    },
    /// Change a client's settings: each option given replaces that setting (lists whole)
    Update {
        /// The client_id
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri", value_name = "URI", num_args = 1..)]
        redirect_uris: Option<Vec<String>>,
        /// Post-logout redirect URIs; "--post-logout-uri" alone clears them
        #[arg(long = "post-logout-uri", value_name = "URI", num_args = 0..)]
        post_logout_uris: Option<Vec<String>>,
        /// Make the client public (true: drops its secret) or confidential (false: prints a new secret)
        #[arg(long, value_name = "BOOL")]
        public: Option<bool>,
        #[arg(long = "grant", value_name = "GRANT", num_args = 1..)]
        grants: Option<Vec<GrantArg>>,
        #[arg(long = "scope", value_name = "SCOPE", num_args = 1..)]
        scopes: Option<Vec<String>>,
        #[arg(long, value_name = "BOOL")]
        first_party: Option<bool>,
        #[arg(long, value_name = "ALG")]
        id_token_alg: Option<AlgArg>,
        #[arg(long, value_name = "BOOL")]
        always_refresh: Option<bool>,
        #[arg(long, value_name = "BOOL")]
        require_passkey: Option<bool>,
        #[arg(long, value_name = "BOOL")]
        magic_link: Option<bool>,
        #[command(flatten)]
        extra: ClientExtras,
    },
    /// Give a confidential client a new secret (printed once); the old one keeps working for the overlap
    RotateSecret {
        /// The client_id
        id: String,
        /// How long the old secret keeps working: 0, 30m, 24h, 7d (at most 30d)
        #[arg(long, default_value = "24h", value_parser = crate::clock::parse_duration)]
        overlap: i64,
    },
    /// Let only members of these groups sign in to a client; no --group: everyone
    Groups {
        /// The client_id
        id: String,
        /// Group names
        #[arg(long = "group", value_name = "GROUP", num_args = 0..)]
        groups: Vec<String>,
    },
    /// List clients
    List,
    /// Delete a client and everything issued to it
    Delete {
        /// The client_id
        id: String,
    },
}

/// Client settings `create` and `update` share; on `update`, a lifetime of 0 means the server's.
#[derive(Debug, Args)]
pub(super) struct ClientExtras {
    /// URL of the application's logo (https), shown on the sign-in page; "" clears it
    #[arg(long, value_name = "URL")]
    logo_uri: Option<String>,
    /// Access token lifetime for this client: 15m, 1h or seconds [default: the server's]
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    access_token_ttl: Option<i64>,
    /// ID token lifetime for this client (at most the server's)
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    id_token_ttl: Option<i64>,
    /// How long a refresh chain may live for this client: 30d or seconds
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::parse_duration)]
    refresh_token_ttl: Option<i64>,
}

pub(super) async fn client(cmd: ClientCommand, config: &Config, out: Out) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_uris,
            public,
            grants,
            scopes,
            first_party,
            id_token_alg,
            always_refresh,
            require_passkey,
            no_magic_link,
            extra,
        } => {
            let mut spec = ClientSpec {
                name,
                redirect_uris,
                post_logout_redirect_uris: post_logout_uris,
                public,
                grant_types: grants.into_iter().map(GrantType::from).collect(),
                scopes: split_scopes(&scopes),
                first_party,
                id_token_alg: id_token_alg.into(),
                refresh_always: always_refresh,
                require_passkey,
                allow_magic_link: !no_magic_link,
                ..ClientSpec::default()
            };
            extra.apply(&mut spec)?;
            let (client, secret) =
                with_operator(config, async |ops| Ok(ops.create_client(spec).await?)).await?;
            print_client(out, "created", &client, secret.as_deref())
        }
        ClientCommand::Update {
            id,
            name,
            redirect_uris,
            post_logout_uris,
            public,
            grants,
            scopes,
            first_party,
            id_token_alg,
            always_refresh,
            require_passkey,
            magic_link,
            extra,
        } => {
            let (client, secret) = with_operator(config, async |ops| {
                let current = ops.client(&id).await?;
                let mut spec = ClientSpec::of(&current);
                spec.name = name.unwrap_or(spec.name);
                spec.redirect_uris = redirect_uris.unwrap_or(spec.redirect_uris);
                spec.post_logout_redirect_uris =
                    post_logout_uris.unwrap_or(spec.post_logout_redirect_uris);
                spec.public = public.unwrap_or(spec.public);
                if let Some(grants) = grants {
                    spec.grant_types = grants.into_iter().map(GrantType::from).collect();
                }
                if let Some(scopes) = scopes {
                    spec.scopes = split_scopes(&scopes);
                }
                spec.first_party = first_party.unwrap_or(spec.first_party);
                spec.id_token_alg = id_token_alg.map_or(spec.id_token_alg, Into::into);
                spec.refresh_always = always_refresh.unwrap_or(spec.refresh_always);
                spec.require_passkey = require_passkey.unwrap_or(spec.require_passkey);
                spec.allow_magic_link = magic_link.unwrap_or(spec.allow_magic_link);
                extra.apply(&mut spec)?;
                Ok(ops.update_client(&id, spec).await?)
            })
            .await?;
            print_client(out, "updated", &client, secret.as_deref())
        }
        ClientCommand::RotateSecret { id, overlap } => {
            let (client, secret) = with_operator(config, async |ops| {
                Ok(ops.rotate_client_secret(&id, overlap).await?)
            })
            .await?;
            print_client(out, "rotated the secret of", &client, Some(&secret))
        }
        ClientCommand::Groups { id, groups } => {
            with_operator(config, async |ops| {
                let ids = ops.group_ids(&groups).await?;
                Ok(ops.set_client_groups(&id, ids).await?)
            })
            .await?;
            out.emit(&json!({ "client_id": id, "groups": groups }), || {
                if groups.is_empty() {
                    format!("client {id}: everyone may sign in")
                } else {
                    format!(
                        "client {id}: only members of {} may sign in",
                        groups.join(", ")
                    )
                }
            })
        }
        ClientCommand::List => {
            let clients = with_operator(config, async |ops| Ok(ops.list_clients().await?)).await?;
            let doc = Value::Array(clients.iter().map(client_json).collect());
            out.emit(&doc, || clients_table(&clients))
        }
        ClientCommand::Delete { id } => {
            with_operator(config, async |ops| Ok(ops.delete_client(&id).await?)).await?;
            out.emit(&json!({ "deleted": id }), || format!("client {id} deleted"))
        }
    }
}

/// `--scope "openid email"` is what people type: accept it as two scopes.
fn split_scopes(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect()
}

fn print_client(out: Out, done: &str, client: &Client, secret: Option<&str>) -> anyhow::Result<()> {
    let mut doc = client_json(client);
    if let (Some(secret), Some(obj)) = (secret, doc.as_object_mut()) {
        obj.insert("client_secret".into(), Value::String(secret.to_owned()));
    }
    out.emit(&doc, || {
        let mut s = format!(
            "{done} {} client {:?}\nclient_id:     {}\n",
            kind_name(client),
            client.name,
            client.id
        );
        if let Some(secret) = secret {
            s.push_str(&format!("client_secret: {secret}\n"));
            s.push_str(
                "The client secret is shown only once: store it now (Keyway keeps only a hash).\n",
            );
        }
        if let Some(until) = client.previous_secret_until(crate::clock::Clock::now(&SystemClock)) {
            s.push_str(&format!(
                "The previous secret keeps working until {}.\n",
                super::output::human_time(until)
            ));
        }
        s
    })
}

impl ClientExtras {
    fn apply(self, spec: &mut ClientSpec) -> anyhow::Result<()> {
        if let Some(logo) = self.logo_uri {
            spec.logo_uri = Some(logo).filter(|l| !l.is_empty());
        }
        let lifetime = |v: Option<i64>, current: Option<u32>| -> anyhow::Result<Option<u32>> {
            match v {
                None => Ok(current),
                Some(0) => Ok(None),
                Some(s) => Ok(Some(u32::try_from(s).context("lifetime too long")?)),
            }
        };
        let l = &mut spec.lifetimes;
        l.access_token = lifetime(self.access_token_ttl, l.access_token)?;
        l.id_token = lifetime(self.id_token_ttl, l.id_token)?;
        l.refresh_token = lifetime(self.refresh_token_ttl, l.refresh_token)?;
        Ok(())
    }
}
