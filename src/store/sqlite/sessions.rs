//! Browser sessions as the session layer stores them: opaque data, an expiry, and the signed-in
//! user (so that the account page can list and end a user's sessions).

use super::{OrBackend, SqliteStore, touched};
use crate::clock::UnixTime;
use crate::store::{SessionRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl SessionRepo for SqliteStore {
    async fn create(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let (id, user_id, data) = (id.to_owned(), user_id.map(str::to_owned), data.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO sessions (id, user_id, data, expires_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&id)
                .bind(&user_id)
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

    async fn save(
        &self,
        id: &str,
        user_id: Option<&str>,
        data: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let (id, user_id, data) = (id.to_owned(), user_id.map(str::to_owned), data.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, data, expires_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, \
                     data = excluded.data, expires_at = excluded.expires_at",
                )
                .bind(&id)
                .bind(&user_id)
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

    async fn list_for_user(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        sqlx::query_as(
            "SELECT id, data FROM sessions WHERE user_id = ? AND expires_at > ? \
             ORDER BY rowid DESC LIMIT 100",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .or_backend()
    }

    async fn delete_for_user(&self, user_id: &str, id: &str) -> StoreResult<()> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
                    .bind(&id)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || "session".into())
            })
        })
        .await
    }

    async fn delete_all_for_user(&self, user_id: &str) -> StoreResult<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn count_signed_in(&self, now: UnixTime) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE user_id IS NOT NULL AND expires_at > ?",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await
        .or_backend()?;
        u64::try_from(n).or_backend()
    }
}
