//! Clients (relying parties) and the consents users gave them.

use super::rows::{ClientRow, json_text};
use super::{OrBackend, SqliteStore, guarded, touched, write_err};
use crate::clock::UnixTime;
use crate::domain::{Client, NewClient};
use crate::store::{ClientRepo, ConsentRepo, StoreError, StoreResult, Unique};
use async_trait::async_trait;

#[async_trait]
impl ClientRepo for SqliteStore {
    async fn create(&self, client: &NewClient, now: UnixTime) -> StoreResult<Client> {
        let row = Client {
            id: client.id.clone(),
            name: client.name.clone(),
            secret_hash: client.secret_hash.clone(),
            redirect_uris: client.redirect_uris.clone(),
            post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
            grant_types: client.grant_types.clone(),
            scopes: client.scopes.clone(),
            first_party: client.first_party,
            id_token_alg: client.id_token_alg,
            refresh_token_cap: client.refresh_token_cap,
            refresh_always: client.refresh_always,
            require_passkey: client.require_passkey,
            allow_magic_link: client.allow_magic_link,
            allowed_groups: Vec::new(),
            logo_uri: client.logo_uri.clone(),
            lifetimes: client.lifetimes,
            previous_secret: None,
            created_at: now,
        };
        let settings = Settings::of(&row)?;
        let r = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let q = sqlx::query(
                    "INSERT INTO clients (name, redirect_uris, post_logout_redirect_uris, \
                     grant_types, scopes, first_party, id_token_alg, refresh_always, \
                     require_passkey, allow_magic_link, logo_uri, access_token_ttl, \
                     id_token_ttl, refresh_token_ttl, secret_hash, refresh_token_cap, \
                     created_at, id) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                );
                settings
                    .bind(q)
                    .bind(&r.secret_hash)
                    .bind(i64::from(r.refresh_token_cap))
                    .bind(r.created_at)
                    .bind(&r.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        write_err(e, |_| Unique::ClientId.conflict(&r.id), || "client".into())
                    })?;
                Ok(())
            })
        })
        .await?;
        Ok(row)
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Client>> {
        let row: Option<ClientRow> = sqlx::query_as("SELECT * FROM clients WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(Client::try_from).transpose()
    }

    async fn list(&self) -> StoreResult<Vec<Client>> {
        let rows: Vec<ClientRow> =
            sqlx::query_as("SELECT * FROM clients ORDER BY created_at, name")
                .fetch_all(&self.reader)
                .await
                .or_backend()?;
        rows.into_iter().map(Client::try_from).collect()
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                // Grants, tokens and consents go with it through ON DELETE CASCADE.
                let done = sqlx::query("DELETE FROM clients WHERE id = ?")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || format!("client {id:?}"))
            })
        })
        .await
    }

    async fn set_allowed_groups(&self, id: &str, group_ids: &[String]) -> StoreResult<()> {
        let (id, groups) = (id.to_owned(), json_text(group_ids)?);
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE clients SET allowed_groups = ? WHERE id = ?")
                    .bind(&groups)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || format!("client {id:?}"))
            })
        })
        .await
    }

    async fn update(&self, client: &Client) -> StoreResult<()> {
        let settings = Settings::of(client)?;
        let id = client.id.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let q = sqlx::query(
                    "UPDATE clients SET name = ?, redirect_uris = ?, \
                     post_logout_redirect_uris = ?, grant_types = ?, scopes = ?, \
                     first_party = ?, id_token_alg = ?, refresh_always = ?, \
                     require_passkey = ?, allow_magic_link = ?, logo_uri = ?, \
                     access_token_ttl = ?, id_token_ttl = ?, refresh_token_ttl = ? \
                     WHERE id = ?",
                );
                let done = settings
                    .bind(q)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || format!("client {id:?}"))
            })
        })
        .await
    }

    async fn set_secret(
        &self,
        id: &str,
        expected: Option<&str>,
        secret_hash: Option<&str>,
        previous: Option<(String, UnixTime)>,
    ) -> StoreResult<bool> {
        let (id, expected, hash) = (
            id.to_owned(),
            expected.map(str::to_owned),
            secret_hash.map(str::to_owned),
        );
        let (previous, until) = previous.unzip();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE clients SET secret_hash = ?, previous_secret_hash = ?, \
                     previous_secret_until = ? WHERE id = ? AND secret_hash IS ?",
                )
                .bind(&hash)
                .bind(&previous)
                .bind(until)
                .bind(&id)
                .bind(&expected)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                guarded(conn, done, "clients", "client", &id).await
            })
        })
        .await
    }
}

/// The settings columns `create` and `update` both write, in one order (secrets apart).
struct Settings {
    client: Client,
    lists: [String; 4],
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl Settings {
    fn of(client: &Client) -> StoreResult<Self> {
        Ok(Self {
            lists: [
                json_text(&client.redirect_uris)?,
                json_text(&client.post_logout_redirect_uris)?,
                json_text(&client.grant_types)?,
                json_text(&client.scopes)?,
            ],
            client: client.clone(),
        })
    }

    fn bind<'q>(&'q self, q: Query<'q>) -> Query<'q> {
        let c = &self.client;
        let [redirect_uris, post_logout, grant_types, scopes] = &self.lists;
        q.bind(&c.name)
            .bind(redirect_uris)
            .bind(post_logout)
            .bind(grant_types)
            .bind(scopes)
            .bind(c.first_party)
            .bind(c.id_token_alg.as_str())
            .bind(c.refresh_always)
            .bind(c.require_passkey)
            .bind(c.allow_magic_link)
            .bind(&c.logo_uri)
            .bind(c.lifetimes.access_token)
            .bind(c.lifetimes.id_token)
            .bind(c.lifetimes.refresh_token)
    }
}

#[async_trait]
impl ConsentRepo for SqliteStore {
    async fn get(&self, user_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = ? AND client_id = ?")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()
    }

    async fn put(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (user_id, client_id, scope) =
            (user_id.to_owned(), client_id.to_owned(), scope.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scope, updated_at) \
                     VALUES (?, ?, ?, ?) ON CONFLICT (user_id, client_id) \
                     DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
                )
                .bind(&user_id)
                .bind(&client_id)
                .bind(&scope)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_err(
                        e,
                        |_| StoreError::Conflict("consent".into()),
                        || format!("user {user_id:?} or client {client_id:?}"),
                    )
                })?;
                Ok(())
            })
        })
        .await
    }
}
