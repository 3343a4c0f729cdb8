//! Grants and the access and refresh tokens issued under them.

use super::rows::{GrantRow, RefreshRow, TokenRow};
use super::writer::{self, Row};
use super::{OrBackend, SqliteStore};
use crate::clock::UnixTime;
use crate::domain::{Grant, StoredToken};
use crate::store::{Issued, RefreshRotation, StoreResult, TokenRepo};
use async_trait::async_trait;
use sqlx::SqliteConnection;

/// Keeps the newest `cap` grants with a live refresh token for (client, user); revokes the rest.
async fn revoke_excess_grants(
    conn: &mut SqliteConnection,
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
async fn revoke_grant_in(conn: &mut SqliteConnection, id: &str, now: UnixTime) -> StoreResult<()> {
    // An earlier revocation time is kept: it records when the grant first stopped being valid.
    sqlx::query("UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .or_backend()?;
    sqlx::query("UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .or_backend()?;
    Ok(())
}

/// Whether a refresh token issued by rotating `parent` has itself been exchanged.
async fn child_used(conn: &mut SqliteConnection, parent: &str) -> StoreResult<bool> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM tokens WHERE parent = ? AND consumed_at IS NOT NULL LIMIT 1",
    )
    .bind(parent)
    .fetch_optional(&mut *conn)
    .await
    .or_backend()?;
    Ok(used.is_some())
}

/// Writes the rows of one token response on the writer's connection, then `tail`, in one round
/// trip.
async fn insert_issued(
    conn: &mut SqliteConnection,
    issued: &Issued,
    tail: &str,
) -> StoreResult<()> {
    let mut rows = Vec::with_capacity(issued.tokens.len() + 2);
    rows.extend(issued.grant.clone().map(Row::Grant));
    rows.extend(issued.tokens.iter().cloned().map(Row::Token));
    rows.extend(issued.audit.clone().map(Row::Audit));
    writer::insert_rows_then(conn, &rows.iter().collect::<Vec<_>>(), tail).await
}

/// The rotation decision and its writes (see `TokenRepo::rotate_refresh`), all inside a
/// savepoint: either the token is consumed and the pair written, or nothing is.
async fn rotate_in(
    conn: &mut SqliteConnection,
    token_hash: &str,
    client_id: &str,
    now: UnixTime,
    grace: i64,
    issued: &Issued,
) -> StoreResult<RefreshRotation> {
    let r = rotate_steps(conn, token_hash, client_id, now, grace, issued).await;
    if r.is_err() {
        writer::undo_savepoint(conn).await;
    }
    r
}

/// `rotate_in`'s steps; every Ok path has closed the savepoint. The savepoint opens and closes
/// in the statements around it, so a rotation costs two round trips to SQLite's thread.
async fn rotate_steps(
    conn: &mut SqliteConnection,
    token_hash: &str,
    client_id: &str,
    now: UnixTime,
    grace: i64,
    issued: &Issued,
) -> StoreResult<RefreshRotation> {
    // The conditional UPDATE decides, so two concurrent rotations cannot both consume. The
    // client is part of the condition, so another client's presentation consumes nothing. A
    // token whose sibling (same parent, handed out within the grace) was used already is not
    // consumed: the family forked into two live branches, which an honest client never
    // continues (it keeps one answer), so one branch is stolen.
    let consumed: Vec<(i64,)> = sqlx::query_as(
        "SAVEPOINT job; \
         UPDATE tokens SET consumed_at = ? WHERE token_hash = ? AND client_id = ? \
         AND kind = 'refresh' AND consumed_at IS NULL AND revoked_at IS NULL AND expires_at > ? \
         AND NOT (parent IS NOT NULL AND EXISTS (SELECT 1 FROM tokens s \
             WHERE s.parent = tokens.parent AND s.token_hash <> tokens.token_hash \
             AND s.consumed_at IS NOT NULL)) \
         RETURNING 1",
    )
    .bind(now)
    .bind(token_hash)
    .bind(client_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
    .or_backend()?;
    if !consumed.is_empty() {
        insert_issued(conn, issued, "RELEASE job;").await?;
        return Ok(RefreshRotation::Rotated { grace: false });
    }
    // Not consumed now: find out why.
    let earlier: Option<TokenRow> = sqlx::query_as(
        "SELECT * FROM tokens WHERE token_hash = ? AND client_id = ? AND kind = 'refresh'",
    )
    .bind(token_hash)
    .bind(client_id)
    .fetch_optional(&mut *conn)
    .await
    .or_backend()?;
    let outcome = match earlier.map(StoredToken::try_from).transpose()? {
        None => RefreshRotation::Unknown,
        Some(t) if t.revoked_at.is_some() => RefreshRotation::Replayed(Box::new(t)),
        // Live but not consumable: expired, or a forked family (see above).
        Some(t) if t.consumed_at.is_none() => {
            if t.expires_at <= now {
                RefreshRotation::Unknown
            } else {
                RefreshRotation::Replayed(Box::new(t))
            }
        }
        Some(t) => {
            let consumed_at = t.consumed_at.unwrap_or(now);
            if grace > 0 && now - consumed_at <= grace && !child_used(conn, token_hash).await? {
                insert_issued(conn, issued, "RELEASE job;").await?;
                return Ok(RefreshRotation::Rotated { grace: true });
            }
            RefreshRotation::Replayed(Box::new(t))
        }
    };
    writer::release_savepoint(conn).await?;
    Ok(outcome)
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

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<(StoredToken, Grant)>> {
        let row: Option<RefreshRow> = sqlx::query_as(
            "SELECT t.*, g.id AS g_id, g.user_id AS g_user_id, g.client_id AS g_client_id, \
             g.scope AS g_scope, g.auth_time AS g_auth_time, g.amr AS g_amr, g.sid AS g_sid, \
             g.created_at AS g_created_at, g.expires_at AS g_expires_at, \
             g.revoked_at AS g_revoked_at, g.claims AS g_claims \
             FROM tokens t JOIN grants g ON g.id = t.grant_id \
             WHERE t.token_hash = ? AND t.kind = 'refresh'",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?;
        row.map(RefreshRow::split).transpose()
    }

    async fn grant(&self, id: &str) -> StoreResult<Option<Grant>> {
        let row: Option<GrantRow> = sqlx::query_as("SELECT * FROM grants WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(Grant::try_from).transpose()
    }

    async fn revoke_grant(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                writer::begin_savepoint(conn).await?;
                let r = revoke_grant_in(conn, &id, now).await;
                writer::end_savepoint(conn, r).await
            })
        })
        .await
    }

    async fn revoke_user_grants(&self, user_id: &str, now: UnixTime) -> StoreResult<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                writer::begin_savepoint(conn).await?;
                let r: StoreResult<u64> = async {
                    sqlx::query(
                        "UPDATE tokens SET revoked_at = ?1 WHERE revoked_at IS NULL AND grant_id IN \
                         (SELECT id FROM grants WHERE user_id = ?2 AND revoked_at IS NULL)",
                    )
                    .bind(now)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                    let done = sqlx::query(
                        "UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                    Ok(done.rows_affected())
                }
                .await;
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
        let row: Option<TokenRow> = sqlx::query_as("SELECT * FROM tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(StoredToken::try_from).transpose()
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        client_id: &str,
        now: UnixTime,
        grace: i64,
        issued: Issued,
    ) -> StoreResult<RefreshRotation> {
        let (token_hash, client_id) = (token_hash.to_owned(), client_id.to_owned());
        self.write(move |conn| {
            Box::pin(
                async move { rotate_in(conn, &token_hash, &client_id, now, grace, &issued).await },
            )
        })
        .await
    }

    async fn revoke_token(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        // Revoking an unknown or already revoked token succeeds (RFC 7009 §2.2).
        self.write(move |conn| {
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
        self.write(move |conn| {
            Box::pin(async move {
                writer::begin_savepoint(conn).await?;
                let r = revoke_excess_grants(conn, &client_id, &user_id, cap, now).await;
                writer::end_savepoint(conn, r).await
            })
        })
        .await
    }
}
