//! The SQLite backend: every repository trait of `crate::store` over one database file, one
//! file per aggregate (users, clients, tokens, keys, sessions, maintenance).
//!
//! One write path. Every write goes through the group-commit writer (`writer.rs`): one task owns
//! the only connection that writes, so writes never race each other for SQLite's single write
//! lock. Its queue is bounded: when it is full, writers wait. Two ways in:
//! - `Row` inserts (grants, tokens, audit events): the hot path, batched into one multi-row
//!   INSERT per table. A new table takes this way only if its inserts are on a hot path and
//!   never read back in the same step.
//! - `SqliteStore::write` jobs: every other write (and every new table by default), run in the
//!   next batch's transaction, inside a savepoint when a job has several statements, so that one
//!   failing job takes nothing else down.
//!
//! Reads use a separate pool of `query_only` connections, which WAL mode runs alongside the
//! writer. One more connection runs the migrations at start and the background WAL
//! checkpoints; it writes no rows. `busy_timeout` covers other processes (the CLI).
//!
//! Rows are read through `sqlx::FromRow` row types (`rows.rs`) that convert into domain types.

use crate::store::{StoreError, StoreResult, Unique};
use anyhow::Context as _;
use sqlx::SqliteConnection;
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr as _;
use std::time::Duration;

#[macro_use]
mod rows;
mod audit;
pub mod changes;
mod clients;
mod email_tokens;
mod invitations;
mod keys;
mod magic_links;
mod outbox;
mod passkeys;
mod sessions;
mod tokens;
mod users;
mod writer;

/// Readers beyond this rarely help on the small machines Keyway targets; each holds its own
/// page cache.
const READER_CONNECTIONS: u32 = 2;

/// Both pools and the writer over one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The one connection that writes rows (see the module doc).
    batch: writer::Writer,
    /// Migrations at start, WAL checkpoints, the final checkpoint at close.
    admin: SqlitePool,
    /// SELECTs only (the connections are `query_only`).
    reader: SqlitePool,
    /// The database file.
    path: std::path::PathBuf,
}

/// Whether the database file at `database_url` is missing or empty (a fresh start would create
/// it), without creating anything.
pub fn is_missing_or_empty(database_url: &str) -> anyhow::Result<bool> {
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("invalid SQLite database URL {database_url:?}"))?;
    Ok(std::fs::metadata(options.get_filename()).map_or(true, |m| m.len() == 0))
}

impl SqliteStore {
    /// The feed through which processes sharing this database see each other's changes.
    pub fn change_feed(&self) -> changes::FileFeed {
        changes::FileFeed::open(&self.path)
    }

    /// Opens (creating if needed) and migrates the database at `database_url` (`sqlite:path`).
    pub async fn open(database_url: &str, busy_timeout: Duration) -> anyhow::Result<Self> {
        let base = SqliteConnectOptions::from_str(database_url)
            .with_context(|| format!("invalid SQLite database URL {database_url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            // A lock held longer than this (another process, a backup) makes the request fail
            // as Unavailable (503) instead of hanging.
            .busy_timeout(busy_timeout)
            .synchronous(SqliteSynchronous::Normal)
            // Statement journals and sort spills stay in memory instead of temp files.
            .pragma("temp_store", "MEMORY")
            // Checkpoints run in the background (see `checkpoints`), not inside a commit.
            .pragma("wal_autocheckpoint", "0")
            // A checkpointed WAL is cut back to this size instead of staying at its peak.
            .pragma("journal_size_limit", "67108864");

        // The writer task, the admin connection and the readers each hold their own
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

        // The admin connection opens (and creates) the file and switches it to WAL before any reader
        // connects, so readers never see a half-initialised database.
        // No ping before each acquire: a local file does not drop connections, and the ping is
        // a round trip to the connection's worker thread on every query.
        let admin = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone())
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        migrate(&admin).await?;
        let batch = writer::Writer::spawn(base.clone())
            .await
            .with_context(|| format!("cannot open the database {} for writing", path.display()))?;
        tokio::spawn(checkpoints(admin.clone()));

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
            admin,
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
    sqlx::migrate!("./migrations/sqlite")
        .run(pool)
        .await
        .context("cannot migrate the database")
}

// ---------------------------------------------------------------------------------------------
// Writing and error mapping

impl SqliteStore {
    /// Runs `f` on the writer's connection in the next batch's transaction (see the module doc).
    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> writer::BoxFuture<'c, StoreResult<R>>
            + Send
            + 'static,
    {
        self.batch.run(f).await
    }
}

/// Turns any error into `StoreError::Unavailable` (the database is locked, full, read-only or
/// failing: see `unavailable`) or `StoreError::Backend`, for the `?` operator.
trait OrBackend<T> {
    fn or_backend(self) -> StoreResult<T>;
}

impl<T, E: Into<anyhow::Error>> OrBackend<T> for Result<T, E> {
    fn or_backend(self) -> StoreResult<T> {
        self.map_err(|e| failure(e.into()))
    }
}

fn failure(e: anyhow::Error) -> StoreError {
    match e.downcast_ref::<sqlx::Error>() {
        Some(s) if unavailable(s) => StoreError::Unavailable(e),
        _ => StoreError::Backend(e),
    }
}

/// Errors that say "not now" rather than "never": SQLITE_BUSY and LOCKED (another connection
/// holds the lock beyond the busy timeout), FULL, READONLY, IOERR, CANTOPEN, a pool timeout.
pub(crate) fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// `NotFound(what())` when a write touched no row (the row it names does not exist).
fn touched(
    done: sqlx::sqlite::SqliteQueryResult,
    what: impl FnOnce() -> String,
) -> StoreResult<()> {
    if done.rows_affected() == 0 {
        Err(StoreError::NotFound(what()))
    } else {
        Ok(())
    }
}

/// After a write guarded by a condition (`UPDATE ... WHERE id = ? AND <condition>`): done
/// (true), refused by the condition (false), or `NotFound` when `table` has no row `id`
/// (`noun` names it in the error).
async fn guarded(
    conn: &mut sqlx::SqliteConnection,
    done: sqlx::sqlite::SqliteQueryResult,
    table: &'static str,
    noun: &'static str,
    id: &str,
) -> StoreResult<bool> {
    if done.rows_affected() > 0 {
        return Ok(true);
    }
    let exists: Option<i64> = sqlx::query_scalar(&format!("SELECT 1 FROM {table} WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .or_backend()?;
    match exists {
        Some(_) => Ok(false),
        None => Err(StoreError::NotFound(format!("{noun} {id:?}"))),
    }
}

/// SQLite's unique constraints by the columns its error names (`UNIQUE constraint failed:
/// users.email`): SQLite reports no constraint name, only this list, in a documented format.
const UNIQUE_COLUMNS: &[(&str, Unique)] = &[
    ("users.id", Unique::UserId),
    ("users.username", Unique::Username),
    ("users.email", Unique::Email),
    ("groups.id", Unique::GroupId),
    ("groups.name", Unique::GroupName),
    ("clients.id", Unique::ClientId),
    ("grants.id", Unique::GrantId),
    ("tokens.token_hash", Unique::TokenHash),
    ("signing_keys.kid", Unique::Kid),
    ("sessions.id", Unique::SessionId),
    ("passkeys.credential_id", Unique::CredentialId),
    ("users.webauthn_id", Unique::UserHandle),
];

/// What a failed write ran into.
enum Violation {
    Unique(Option<Unique>),
    ForeignKey,
}

fn violation(e: &sqlx::Error) -> Option<Violation> {
    let sqlx::Error::Database(db) = e else {
        return None;
    };
    match db.kind() {
        ErrorKind::UniqueViolation => {
            let columns = db.message().rsplit(": ").next().unwrap_or_default();
            let which = UNIQUE_COLUMNS
                .iter()
                .find(|(c, _)| *c == columns)
                .map(|(_, u)| *u);
            Some(Violation::Unique(which))
        }
        ErrorKind::ForeignKeyViolation => Some(Violation::ForeignKey),
        _ => None,
    }
}

/// Maps a failed write: a unique violation becomes `Conflict` (`conflict` names the value the
/// constraint refused), a foreign-key violation `NotFound` (`missing` names what the row
/// points at), anything else `Backend`.
fn write_err(
    e: sqlx::Error,
    conflict: impl FnOnce(Option<Unique>) -> StoreError,
    missing: impl FnOnce() -> String,
) -> StoreError {
    match violation(&e) {
        Some(Violation::Unique(which)) => conflict(which),
        Some(Violation::ForeignKey) => StoreError::NotFound(missing()),
        None => failure(e.into()),
    }
}
