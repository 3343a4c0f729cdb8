//! Browser sessions as the session layer stores them: opaque data and an expiry.

use super::{OrBackend, SqliteStore};
use crate::clock::UnixTime;
use crate::store::{SessionRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl SessionRepo for SqliteStore {
    async fn create(&self, id: &str, data: &[u8], expires_at: UnixTime) -> StoreResult<bool> {
        let (id, data) = (id.to_owned(), data.to_vec());
        self.write(move |conn| {
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
        self.write(move |conn| {
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
        self.write(move |conn| {
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
