//! The mail outbox.

use super::rows::OutboxRow;
use super::{OrBackend, SqliteStore, touched};
use crate::clock::UnixTime;
use crate::domain::OutboxMessage;
use crate::store::{OutboxRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl OutboxRepo for SqliteStore {
    async fn enqueue(&self, message: &OutboxMessage) -> StoreResult<()> {
        let m = message.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO outbox (id, recipient, subject, body, kind, user_id, created_at, \
                     attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&m.id)
                .bind(&m.recipient)
                .bind(&m.subject)
                .bind(&m.sealed_body)
                .bind(&m.kind)
                .bind(&m.user_id)
                .bind(m.created_at)
                .bind(i64::from(m.attempts))
                .bind(m.next_attempt_at)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn due(&self, now: UnixTime, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT * FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
             AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .or_backend()?;
        rows.into_iter().map(OutboxMessage::try_from).collect()
    }

    async fn sent(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE outbox SET sent_at = ?, body = NULL, attempts = attempts + 1, \
                     last_error = NULL WHERE id = ?",
                )
                .bind(now)
                .bind(&id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                touched(done, || format!("message {id:?}"))
            })
        })
        .await
    }

    async fn failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: UnixTime,
        give_up: bool,
        now: UnixTime,
    ) -> StoreResult<()> {
        let (id, error) = (id.to_owned(), error.chars().take(500).collect::<String>());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, \
                     next_attempt_at = ?, failed_at = CASE WHEN ? THEN ? END, \
                     body = CASE WHEN ? THEN NULL ELSE body END WHERE id = ?",
                )
                .bind(&error)
                .bind(next_attempt_at)
                .bind(give_up)
                .bind(now)
                .bind(give_up)
                .bind(&id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                touched(done, || format!("message {id:?}"))
            })
        })
        .await
    }

    async fn depth(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(&self.reader)
        .await
        .or_backend()?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
