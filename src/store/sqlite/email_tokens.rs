//! Links sent by email for one account.

use super::rows::EmailTokenRow;
use super::{OrBackend, SqliteStore};
use crate::clock::UnixTime;
use crate::domain::EmailToken;
use crate::store::{EmailTokenRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl EmailTokenRepo for SqliteStore {
    async fn create(&self, token: &EmailToken) -> StoreResult<()> {
        let t = token.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO email_tokens (id, token_hash, purpose, user_id, email, created_at, \
                     not_before, expires_at, used_at, cancelled_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&t.id)
                .bind(&t.token_hash)
                .bind(t.purpose.as_str())
                .bind(&t.user_id)
                .bind(&t.email)
                .bind(t.created_at)
                .bind(t.not_before)
                .bind(t.expires_at)
                .bind(t.used_at)
                .bind(t.cancelled_at)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<EmailToken>> {
        let row: Option<EmailTokenRow> =
            sqlx::query_as("SELECT * FROM email_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        row.map(EmailToken::try_from).transpose()
    }

    async fn consume(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE email_tokens SET used_at = ?1 WHERE id = ?2 AND used_at IS NULL \
                     AND cancelled_at IS NULL AND not_before <= ?1 AND expires_at > ?1",
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

    async fn cancel(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE email_tokens SET cancelled_at = ?1 WHERE id = ?2 AND used_at IS NULL \
                     AND cancelled_at IS NULL AND expires_at > ?1",
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
}
