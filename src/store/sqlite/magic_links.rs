//! Emailed sign-in links.

use super::rows::MagicLinkRow;
use super::{OrBackend, SqliteStore, touched};
use crate::clock::UnixTime;
use crate::domain::MagicLink;
use crate::store::{MagicLinkRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl MagicLinkRepo for SqliteStore {
    async fn create(&self, link: &MagicLink) -> StoreResult<()> {
        let l = link.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO magic_links (id, token_hash, user_id, binding_hash, request_id, \
                     code_hash, code_tries, requested_ip, requested_at, expires_at, used_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&l.id)
                .bind(&l.token_hash)
                .bind(&l.user_id)
                .bind(&l.binding_hash)
                .bind(&l.request_id)
                .bind(&l.code_hash)
                .bind(i64::from(l.code_tries))
                .bind(&l.requested_ip)
                .bind(l.requested_at)
                .bind(l.expires_at)
                .bind(l.used_at)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<MagicLink>> {
        let row: Option<MagicLinkRow> =
            sqlx::query_as("SELECT * FROM magic_links WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        row.map(MagicLink::try_from).transpose()
    }

    async fn set_code(&self, id: &str, code_hash: &str) -> StoreResult<()> {
        let (id, code_hash) = (id.to_owned(), code_hash.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE magic_links SET code_hash = ? WHERE id = ?")
                    .bind(&code_hash)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || "sign-in link".into())
            })
        })
        .await
    }

    async fn consume(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE magic_links SET used_at = ?1 \
                     WHERE id = ?2 AND used_at IS NULL AND expires_at > ?1",
                )
                .bind(now)
                .bind(&id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn with_code(&self, binding_hash: &str, now: UnixTime) -> StoreResult<Vec<MagicLink>> {
        let rows: Vec<MagicLinkRow> = sqlx::query_as(
            "SELECT * FROM magic_links WHERE binding_hash = ? AND used_at IS NULL \
             AND expires_at > ? AND code_hash IS NOT NULL ORDER BY requested_at DESC, rowid DESC",
        )
        .bind(binding_hash)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .or_backend()?;
        rows.into_iter().map(MagicLink::try_from).collect()
    }

    async fn wrong_code(&self, id: &str, max_tries: u32, now: UnixTime) -> StoreResult<u32> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let tries: Option<i64> = sqlx::query_scalar(
                    "UPDATE magic_links SET code_tries = code_tries + 1, \
                     used_at = CASE WHEN code_tries + 1 >= ?1 THEN coalesce(used_at, ?2) \
                     ELSE used_at END WHERE id = ?3 RETURNING code_tries",
                )
                .bind(i64::from(max_tries))
                .bind(now)
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await
                .or_backend()?;
                Ok(tries.map_or(0, |t| u32::try_from(t).unwrap_or(u32::MAX)))
            })
        })
        .await
    }
}
