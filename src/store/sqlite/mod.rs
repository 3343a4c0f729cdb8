//! The SQLite backend: every repository trait of `crate::store` over one database file.
//!
//! Two pools share the file. All writes go through a pool of exactly one connection, so our own
//! writers queue in the pool instead of racing for SQLite's single write lock (no `SQLITE_BUSY`
//! between them); reads use a separate pool of several connections, which WAL mode lets run
//! alongside the writer. `busy_timeout` covers other processes (the CLI) touching the same file.

use super::{
    AuditRepo, ClientRepo, ConsentRepo, GroupRepo, Issued, KeyRepo, MaintenanceRepo, PasswordRepo,
    RefreshRotation, SessionRepo, SetupRepo, StoreError, StoreResult, StoredKey, TokenRepo,
    UserRepo,
};
use crate::clock::UnixTime;
use crate::domain::{
    AuditEvent, Client, Grant, GrantType, NewClient, NewUser, SigningAlg, StoredToken, TokenKind,
    User,
};
use anyhow::Context as _;
use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::str::FromStr as _;
use std::time::Duration;

pub mod changes;
#[cfg(test)]
mod tests;

/// Readers beyond this rarely help on the small machines Keyway targets; each holds its own
/// page cache.
const READER_CONNECTIONS: u32 = 2;

/// Both pools over one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: every INSERT, UPDATE and DELETE.
    writer: SqlitePool,
    /// Group commit over `writer` for the hot writes (see `writer.rs`).
    batch: writer::Writer,
    /// SELECTs only (the connections are `query_only`).
    reader: SqlitePool,
    /// The database file.
    path: std::path::PathBuf,
}

impl SqliteStore {
    /// The feed through which processes sharing this database see each other's changes.
    pub fn change_feed(&self) -> changes::FileFeed {
        changes::FileFeed::open(&self.path)
    }

    /// Opens (creating if needed) and migrates the database at `database_url` (`sqlite:path`).
    pub async fn open(database_url: &str) -> anyhow::Result<Self> {
        let base = SqliteConnectOptions::from_str(database_url)
            .with_context(|| format!("invalid SQLite database URL {database_url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(SqliteSynchronous::Normal)
            // Statement journals and sort spills stay in memory instead of temp files.
            .pragma("temp_store", "MEMORY")
            // Checkpoints run in the background (see `checkpoints`), not inside a commit.
            .pragma("wal_autocheckpoint", "0")
            // A checkpointed WAL is cut back to this size instead of staying at its peak.
            .pragma("journal_size_limit", "67108864");

        // The writer task, the rare-write pool and the readers each hold their own
        // connections; separate in-memory databases would not be one database.
        if database_url.contains(":memory:") || database_url.contains("mode=memory") {
            anyhow::bail!("in-memory SQLite databases are not supported; use a file path");
        }

        let path = base.get_filename().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.with_context(|| {
                format!("cannot create the database directory {}", parent.display())
            })?;
        }

        // The writer opens (and creates) the file and switches it to WAL before any reader
        // connects, so readers never see a half-initialised database.
        // No ping before each acquire: a local file does not drop connections, and the ping is
        // a round trip to the connection's worker thread on every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone())
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        migrate(&writer).await?;
        let batch = writer::Writer::spawn(base.clone())
            .await
            .with_context(|| format!("cannot open the database {} for writing", path.display()))?;
        tokio::spawn(checkpoints(writer.clone()));

        // `query_only` turns a write accidentally sent to a reader into an error instead of a
        // second writer competing for the lock.
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.create_if_missing(false).pragma("query_only", "ON"))
            .await
            .with_context(|| format!("cannot open the database {} for reading", path.display()))?;

        Ok(Self {
            path,
            batch,
            writer,
            reader,
        })
    }
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the WAL in the background. SQLite's automatic checkpoint would run inside some
/// unlucky commit and make that request wait for the copy and its fsync; a PASSIVE checkpoint
/// from here never blocks the writer. Ends when the pool closes.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if pool.is_closed() {
                break;
            }
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

async fn migrate(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("cannot migrate the database")
}

// ---------------------------------------------------------------------------------------------
// Error mapping

/// Turns any error into `StoreError::Backend`, for the `?` operator.
trait OrBackend<T> {
    fn or_backend(self) -> StoreResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrBackend<T> for Result<T, E> {
    fn or_backend(self) -> StoreResult<T> {
        self.map_err(|e| StoreError::Backend(e.into()))
    }
}

/// Maps a failed write: a unique violation becomes `Conflict` (told the database's message, e.g.
/// `UNIQUE constraint failed: users.email`, so it can name the column), a foreign-key violation
/// `NotFound`, anything else `Backend`.
fn write_err(
    e: sqlx::Error,
    conflict: impl FnOnce(&str) -> String,
    missing: impl FnOnce() -> String,
) -> StoreError {
    let mapped = match &e {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => Some(StoreError::Conflict(conflict(db.message()))),
            ErrorKind::ForeignKeyViolation => Some(StoreError::NotFound(missing())),
            _ => None,
        },
        _ => None,
    };
    mapped.unwrap_or_else(|| StoreError::Backend(e.into()))
}

fn to_u32(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v)
        .with_context(|| format!("{what} out of range: {v}"))
        .or_backend()
}

// ---------------------------------------------------------------------------------------------
// Row mapping. Column lists are macros so that queries stay `&'static str` via `concat!`.

macro_rules! user_cols {
    () => {
        "id, username, email, email_verified, name, is_admin, disabled, created_at, updated_at"
    };
}

fn user_from_row(r: &SqliteRow) -> StoreResult<User> {
    Ok(User {
        id: r.try_get("id").or_backend()?,
        username: r.try_get("username").or_backend()?,
        email: r.try_get("email").or_backend()?,
        email_verified: r.try_get("email_verified").or_backend()?,
        name: r.try_get("name").or_backend()?,
        is_admin: r.try_get("is_admin").or_backend()?,
        disabled: r.try_get("disabled").or_backend()?,
        created_at: r.try_get("created_at").or_backend()?,
        updated_at: r.try_get("updated_at").or_backend()?,
    })
}

macro_rules! client_cols {
    () => {
        "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, \
         first_party, id_token_alg, refresh_token_cap, refresh_always, created_at"
    };
}

fn json_col<T: serde::de::DeserializeOwned>(r: &SqliteRow, col: &str) -> StoreResult<T> {
    let text: String = r.try_get(col).or_backend()?;
    serde_json::from_str(&text)
        .with_context(|| format!("column {col} holds invalid JSON"))
        .or_backend()
}

fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).or_backend()
}

fn client_from_row(r: &SqliteRow) -> StoreResult<Client> {
    let alg: String = r.try_get("id_token_alg").or_backend()?;
    let cap: i64 = r.try_get("refresh_token_cap").or_backend()?;
    Ok(Client {
        id: r.try_get("id").or_backend()?,
        name: r.try_get("name").or_backend()?,
        secret_hash: r.try_get("secret_hash").or_backend()?,
        redirect_uris: json_col(r, "redirect_uris")?,
        post_logout_redirect_uris: json_col(r, "post_logout_redirect_uris")?,
        grant_types: json_col::<Vec<GrantType>>(r, "grant_types")?,
        scopes: json_col(r, "scopes")?,
        first_party: r.try_get("first_party").or_backend()?,
        id_token_alg: SigningAlg::parse(&alg)
            .with_context(|| format!("unknown id_token_alg {alg:?}"))
            .or_backend()?,
        refresh_token_cap: to_u32(cap, "refresh_token_cap")?,
        refresh_always: r.try_get("refresh_always").or_backend()?,
        created_at: r.try_get("created_at").or_backend()?,
    })
}

macro_rules! grant_cols {
    () => {
        "id, user_id, client_id, scope, auth_time, amr, sid, created_at, expires_at, revoked_at"
    };
}

fn grant_from_row(r: &SqliteRow) -> StoreResult<Grant> {
    Ok(Grant {
        id: r.try_get("id").or_backend()?,
        user_id: r.try_get("user_id").or_backend()?,
        client_id: r.try_get("client_id").or_backend()?,
        scope: r.try_get("scope").or_backend()?,
        auth_time: r.try_get("auth_time").or_backend()?,
        amr: r.try_get("amr").or_backend()?,
        sid: r.try_get("sid").or_backend()?,
        created_at: r.try_get("created_at").or_backend()?,
        expires_at: r.try_get("expires_at").or_backend()?,
        revoked_at: r.try_get("revoked_at").or_backend()?,
    })
}

macro_rules! token_cols {
    () => {
        "token_hash, kind, grant_id, client_id, user_id, scope, created_at, expires_at, \
         consumed_at, revoked_at"
    };
}

// After the column macros, which it uses.
mod writer;
use writer::Row;

fn token_from_row(r: &SqliteRow) -> StoreResult<StoredToken> {
    let kind: String = r.try_get("kind").or_backend()?;
    Ok(StoredToken {
        token_hash: r.try_get("token_hash").or_backend()?,
        kind: TokenKind::parse(&kind)
            .with_context(|| format!("unknown token kind {kind:?}"))
            .or_backend()?,
        grant_id: r.try_get("grant_id").or_backend()?,
        client_id: r.try_get("client_id").or_backend()?,
        user_id: r.try_get("user_id").or_backend()?,
        scope: r.try_get("scope").or_backend()?,
        created_at: r.try_get("created_at").or_backend()?,
        expires_at: r.try_get("expires_at").or_backend()?,
        consumed_at: r.try_get("consumed_at").or_backend()?,
        revoked_at: r.try_get("revoked_at").or_backend()?,
    })
}

fn key_from_row(r: &SqliteRow) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        kid: r.try_get("kid").or_backend()?,
        alg: r.try_get("alg").or_backend()?,
        sealed_private_key: r.try_get("sealed_private_key").or_backend()?,
        public_jwk: r.try_get("public_jwk").or_backend()?,
        created_at: r.try_get("created_at").or_backend()?,
        retired_at: r.try_get("retired_at").or_backend()?,
    })
}

fn audit_from_row(r: &SqliteRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        at: r.try_get("at").or_backend()?,
        event: r.try_get("event").or_backend()?,
        user_id: r.try_get("user_id").or_backend()?,
        client_id: r.try_get("client_id").or_backend()?,
        ip: r.try_get("ip").or_backend()?,
        user_agent: r.try_get("user_agent").or_backend()?,
        outcome: r.try_get("outcome").or_backend()?,
        detail: r.try_get("detail").or_backend()?,
    })
}

// ---------------------------------------------------------------------------------------------
// Repositories

#[async_trait]
impl UserRepo for SqliteStore {
    async fn create(&self, user: &NewUser, now: UnixTime) -> StoreResult<User> {
        let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
        let row = User {
            id,
            username: user.username.clone(),
            email: user.email.clone(),
            email_verified: false,
            name: user.name.clone(),
            is_admin: user.is_admin,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&row.id)
        .bind(&row.username)
        .bind(&row.email)
        .bind(row.email_verified)
        .bind(&row.name)
        .bind(row.is_admin)
        .bind(row.disabled)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            write_err(
                e,
                |msg| {
                    if msg.contains("users.email") {
                        format!("email {:?}", row.email.as_deref().unwrap_or_default())
                    } else if msg.contains("users.username") {
                        format!("username {:?}", row.username)
                    } else {
                        format!("user {:?}", row.id)
                    }
                },
                || "user".into(),
            )
        })?;
        Ok(row)
    }

    async fn by_id(&self, id: &str) -> StoreResult<Option<User>> {
        sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn by_username(&self, username: &str) -> StoreResult<Option<User>> {
        // The column's NOCASE collation makes this comparison case-insensitive.
        sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list(&self) -> StoreResult<Vec<User>> {
        sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users ORDER BY username"
        ))
        .fetch_all(&self.reader)
        .await
        .or_backend()?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: UnixTime) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
            .bind(disabled)
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await
            .or_backend()?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id:?}")));
        }
        Ok(())
    }

    async fn count_active_admins(&self) -> StoreResult<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0")
                .fetch_one(&self.reader)
                .await
                .or_backend()?;
        u64::try_from(n).or_backend()
    }
}

#[async_trait]
impl PasswordRepo for SqliteStore {
    async fn get(&self, user_id: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT phc FROM passwords WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()
    }

    async fn set(&self, user_id: &str, phc: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passwords (user_id, phc, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(phc)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            write_err(
                e,
                |_| format!("password of user {user_id:?}"),
                || format!("user {user_id:?}"),
            )
        })?;
        Ok(())
    }
}

#[async_trait]
impl GroupRepo for SqliteStore {
    async fn create(&self, name: &str, now: UnixTime) -> StoreResult<String> {
        let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
        sqlx::query("INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(name)
            .bind(now)
            .execute(&self.writer)
            .await
            .map_err(|e| write_err(e, |_| format!("group {name:?}"), || "group".into()))?;
        Ok(id)
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> StoreResult<()> {
        // Checked inside the transaction to say which of the two is missing; adding an existing
        // member again is a no-op rather than an error.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .or_backend()?;
        let group: Option<i64> = sqlx::query_scalar("SELECT 1 FROM groups WHERE id = ?")
            .bind(group_id)
            .fetch_optional(&mut *tx)
            .await
            .or_backend()?;
        if group.is_none() {
            return Err(StoreError::NotFound(format!("group {group_id:?}")));
        }
        let user: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await
            .or_backend()?;
        if user.is_none() {
            return Err(StoreError::NotFound(format!("user {user_id:?}")));
        }
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .or_backend()?;
        tx.commit().await.or_backend()
    }

    async fn names_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = ? ORDER BY g.name",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .or_backend()
    }
}

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
            created_at: now,
        };
        sqlx::query(concat!(
            "INSERT INTO clients (",
            client_cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.secret_hash)
        .bind(json_text(&row.redirect_uris)?)
        .bind(json_text(&row.post_logout_redirect_uris)?)
        .bind(json_text(&row.grant_types)?)
        .bind(json_text(&row.scopes)?)
        .bind(row.first_party)
        .bind(row.id_token_alg.as_str())
        .bind(i64::from(row.refresh_token_cap))
        .bind(row.refresh_always)
        .bind(row.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| write_err(e, |_| format!("client {:?}", row.id), || "client".into()))?;
        Ok(row)
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Client>> {
        sqlx::query(concat!(
            "SELECT ",
            client_cols!(),
            " FROM clients WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?
        .as_ref()
        .map(client_from_row)
        .transpose()
    }

    async fn list(&self) -> StoreResult<Vec<Client>> {
        sqlx::query(concat!(
            "SELECT ",
            client_cols!(),
            " FROM clients ORDER BY created_at, name"
        ))
        .fetch_all(&self.reader)
        .await
        .or_backend()?
        .iter()
        .map(client_from_row)
        .collect()
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        // Codes, grants, tokens and consents go with it through ON DELETE CASCADE.
        let done = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .or_backend()?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("client {id:?}")));
        }
        Ok(())
    }
}

/// Keeps the newest `cap` grants with a live refresh token for (client, user); revokes the rest.
async fn revoke_excess_grants(
    conn: &mut sqlx::SqliteConnection,
    client_id: &str,
    user_id: &str,
    cap: u32,
    now: UnixTime,
) -> StoreResult<()> {
    // Newest first, skipping the `cap` to keep: the rest is revoked. The ids are read first
    // because revoking changes which grants match.
    let excess: Vec<String> = sqlx::query_scalar(
        "SELECT g.id FROM grants g \
         WHERE g.client_id = ? AND g.user_id = ? AND g.revoked_at IS NULL \
           AND EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = g.id AND t.kind = 'refresh' \
                       AND t.consumed_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > ?) \
         ORDER BY g.created_at DESC, g.rowid DESC \
         LIMIT -1 OFFSET ?",
    )
    .bind(client_id)
    .bind(user_id)
    .bind(now)
    .bind(i64::from(cap))
    .fetch_all(&mut *conn)
    .await
    .or_backend()?;
    for id in &excess {
        revoke_grant_in(&mut *conn, id, now).await?;
    }
    Ok(())
}

/// Revokes a grant and its tokens inside the caller's transaction.
async fn revoke_grant_in(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    now: UnixTime,
) -> StoreResult<()> {
    // An earlier revocation time is kept: it records when the grant first stopped being valid.
    sqlx::query("UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .or_backend()?;
    sqlx::query("UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await
        .or_backend()?;
    Ok(())
}

#[async_trait]
impl TokenRepo for SqliteStore {
    async fn create_grant(&self, grant: &Grant) -> StoreResult<()> {
        self.batch.insert(vec![Row::Grant(grant.clone())]).await
    }

    async fn save_issued(&self, issued: Issued) -> StoreResult<()> {
        let mut rows = Vec::with_capacity(issued.tokens.len() + 2);
        rows.extend(issued.grant.map(Row::Grant));
        rows.extend(issued.tokens.into_iter().map(Row::Token));
        rows.extend(issued.audit.map(Row::Audit));
        self.batch.insert(rows).await
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        sqlx::query(concat!(
            "SELECT ",
            grant_cols!(),
            " FROM grants WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        // Revocation is rare; forgetting every cached token is simpler than tracking grants.
        let id = id.to_owned();
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    writer::begin_savepoint(conn).await?;
                    let r = revoke_grant_in(conn, &id, now).await;
                    writer::end_savepoint(conn, r).await
                })
            })
            .await
    }

    async fn insert_tokens(&self, tokens: &[StoredToken]) -> StoreResult<()> {
        self.batch
            .insert(tokens.iter().cloned().map(Row::Token).collect())
            .await
    }

    async fn token(&self, token_hash: &str) -> StoreResult<Option<StoredToken>> {
        sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            " FROM tokens WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        now: UnixTime,
    ) -> StoreResult<RefreshRotation> {
        let (token_hash, client_id) = (token_hash.to_owned(), client_id.to_owned());
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    // Same shape as code redemption: the conditional UPDATE decides. The client
                    // is part of the condition, so another client's presentation consumes nothing.
                    let rows = sqlx::query(concat!(
                        "UPDATE tokens SET consumed_at = ? WHERE token_hash = ? AND client_id = ? \
                         AND kind = 'refresh' AND consumed_at IS NULL AND revoked_at IS NULL \
                         RETURNING ",
                        token_cols!()
                    ))
                    .bind(now)
                    .bind(&token_hash)
                    .bind(&client_id)
                    .fetch_all(&mut *conn)
                    .await
                    .or_backend()?;
                    if let Some(row) = rows.first() {
                        let token = token_from_row(row)?;
                        let grant = match &token.grant_id {
                            Some(id) => sqlx::query(concat!(
                                "SELECT ",
                                grant_cols!(),
                                " FROM grants WHERE id = ?"
                            ))
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await
                            .or_backend()?
                            .as_ref()
                            .map(grant_from_row)
                            .transpose()?,
                            None => None,
                        };
                        return Ok(RefreshRotation::Rotated(token, grant));
                    }
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        token_cols!(),
                        " FROM tokens WHERE token_hash = ? AND client_id = ? AND kind = 'refresh'"
                    ))
                    .bind(&token_hash)
                    .bind(&client_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .or_backend()?;
                    match row {
                        Some(row) => Ok(RefreshRotation::Replayed(token_from_row(&row)?)),
                        None => Ok(RefreshRotation::Unknown),
                    }
                })
            })
            .await
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        // Revoking an unknown or already revoked token succeeds (RFC 7009 §2.2).
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(&token_hash)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                    Ok(())
                })
            })
            .await
    }

    async fn cap_refresh_grants(
        &self,
        client_id: &str,
        user_id: &str,
        cap: u32,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (client_id, user_id) = (client_id.to_owned(), user_id.to_owned());
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    writer::begin_savepoint(conn).await?;
                    let r = revoke_excess_grants(conn, &client_id, &user_id, cap, now).await;
                    writer::end_savepoint(conn, r).await
                })
            })
            .await
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
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id) \
             DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(|e| {
            write_err(
                e,
                |_| "consent".into(),
                || format!("user {user_id:?} or client {client_id:?}"),
            )
        })?;
        Ok(())
    }
}

#[async_trait]
impl KeyRepo for SqliteStore {
    async fn list(&self) -> StoreResult<Vec<StoredKey>> {
        sqlx::query(
            "SELECT kid, alg, sealed_private_key, public_jwk, created_at, retired_at \
             FROM signing_keys ORDER BY created_at, rowid",
        )
        .fetch_all(&self.reader)
        .await
        .or_backend()?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn insert(&self, key: &StoredKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys \
             (kid, alg, sealed_private_key, public_jwk, created_at, retired_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.sealed_private_key)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.retired_at)
        .execute(&self.writer)
        .await
        .map_err(|e| write_err(e, |_| format!("signing key {:?}", key.kid), || "key".into()))?;
        Ok(())
    }

    async fn retire_others(&self, alg: &str, keep_kid: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ? \
             WHERE alg = ? AND kid <> ? AND retired_at IS NULL",
        )
        .bind(now)
        .bind(alg)
        .bind(keep_kid)
        .execute(&self.writer)
        .await
        .or_backend()?;
        Ok(())
    }

    async fn delete_retired_before(&self, before: UnixTime) -> StoreResult<u64> {
        let done =
            sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?")
                .bind(before)
                .execute(&self.writer)
                .await
                .or_backend()?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SessionRepo for SqliteStore {
    async fn create(&self, id: &str, data: &[u8], expires_at: UnixTime) -> StoreResult<bool> {
        let (id, data) = (id.to_owned(), data.to_vec());
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&id)
                    .bind(&data)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn save(&self, id: &str, data: &[u8], expires_at: UnixTime) -> StoreResult<()> {
        let (id, data) = (id.to_owned(), data.to_vec());
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?) \
                         ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                         expires_at = excluded.expires_at",
                    )
                    .bind(&id)
                    .bind(&data)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                    Ok(())
                })
            })
            .await
    }

    async fn load(&self, id: &str, now: UnixTime) -> StoreResult<Option<(Vec<u8>, UnixTime)>> {
        // Expired rows linger until the purge; they must already be invisible.
        let row: Option<(Vec<u8>, i64)> =
            sqlx::query_as("SELECT data, expires_at FROM sessions WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        Ok(row.filter(|(_, expires_at)| *expires_at > now))
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        // Deleting a session that is already gone is what the caller wanted anyway.
        self.batch
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM sessions WHERE id = ?")
                        .bind(&id)
                        .execute(&mut *conn)
                        .await
                        .or_backend()?;
                    Ok(())
                })
            })
            .await
    }
}

#[async_trait]
impl AuditRepo for SqliteStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.batch.insert(vec![Row::Audit(event.clone())]).await
    }

    async fn recent(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query(
            "SELECT at, event, user_id, client_id, ip, user_agent, outcome, detail \
             FROM audit_events ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .or_backend()?
        .iter()
        .map(audit_from_row)
        .collect()
    }
}

#[async_trait]
impl SetupRepo for SqliteStore {
    async fn replace_admin_setup_token(
        &self,
        token_hash: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .or_backend()?;
        sqlx::query("DELETE FROM admin_setup_tokens")
            .execute(&mut *tx)
            .await
            .or_backend()?;
        sqlx::query("INSERT INTO admin_setup_tokens (token_hash, expires_at) VALUES (?, ?)")
            .bind(token_hash)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .or_backend()?;
        tx.commit().await.or_backend()
    }
}

#[async_trait]
impl MaintenanceRepo for SqliteStore {
    async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64> {
        // Tokens of expired grants are deleted explicitly (not left to the cascade) so that they
        // are counted: SQLite does not count rows removed by foreign-key actions.
        let statements = [
            "DELETE FROM tokens WHERE expires_at <= ?1 \
             OR grant_id IN (SELECT id FROM grants WHERE expires_at <= ?1)",
            "DELETE FROM grants WHERE expires_at <= ?1",
            "DELETE FROM sessions WHERE expires_at <= ?1",
            "DELETE FROM admin_setup_tokens WHERE expires_at <= ?1",
        ];
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .or_backend()?;
        let mut removed = 0;
        for sql in statements {
            removed += sqlx::query(sql)
                .bind(now)
                .execute(&mut *tx)
                .await
                .or_backend()?
                .rows_affected();
        }
        tx.commit().await.or_backend()?;
        Ok(removed)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .or_backend()?;
        Ok(())
    }

    async fn close(&self) {
        self.batch.close().await;
        // Fold the WAL into the database file so a copy of the file alone is complete.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed");
        }
        self.writer.close().await;
        self.reader.close().await;
    }
}
