//! Signing keys, their private halves sealed.

use super::rows::KeyRow;
use super::{OrBackend, SqliteStore, write_err};
use crate::clock::UnixTime;
use crate::store::{KeyRepo, StoreResult, StoredKey, Unique};
use async_trait::async_trait;

#[async_trait]
impl KeyRepo for SqliteStore {
    async fn list(&self) -> StoreResult<Vec<StoredKey>> {
        let rows: Vec<KeyRow> =
            sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, rowid")
                .fetch_all(&self.reader)
                .await
                .or_backend()?;
        Ok(rows.into_iter().map(StoredKey::from).collect())
    }

    async fn insert(&self, key: &StoredKey) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, \
                     created_at, activates_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.sealed_private_key)
                .bind(&key.public_jwk)
                .bind(key.created_at)
                .bind(key.activates_at)
                .bind(key.retired_at)
                .execute(&mut *conn)
                .await
                .map_err(|e| write_err(e, |_| Unique::Kid.conflict(&key.kid), || "key".into()))?;
                Ok(())
            })
        })
        .await
    }

    async fn retire_others(&self, alg: &str, keep_kid: &str, at: UnixTime) -> StoreResult<()> {
        let (alg, keep_kid) = (alg.to_owned(), keep_kid.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE signing_keys SET retired_at = ? \
                     WHERE alg = ? AND kid <> ? AND (retired_at IS NULL OR retired_at > ?)",
                )
                .bind(at)
                .bind(&alg)
                .bind(&keep_kid)
                .bind(at)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn delete_retired_before(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?",
                )
                .bind(before)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}
