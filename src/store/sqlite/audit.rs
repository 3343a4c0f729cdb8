//! The audit log, and maintenance (purge, health, close).

use super::rows::AuditRow;
use super::writer::{self, Row};
use super::{OrBackend, SqliteStore};
use crate::clock::UnixTime;
use crate::domain::AuditEvent;
use crate::store::{AuditFilter, AuditRepo, MaintenanceRepo, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl AuditRepo for SqliteStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        self.batch.insert(vec![Row::Audit(event.clone())]).await
    }

    async fn recent(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> =
            sqlx::query_as("SELECT * FROM audit_events ORDER BY id DESC LIMIT ?")
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
                .or_backend()?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn recent_for_user(
        &self,
        user_id: &str,
        events: &[&str],
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        // The event names travel as one JSON array, so the statement text never changes.
        let events = serde_json::to_string(events).or_backend()?;
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT * FROM audit_events WHERE user_id = ? \
             AND event IN (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT ?",
        )
        .bind(user_id)
        .bind(events)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .or_backend()?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn search(
        &self,
        f: &AuditFilter,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, AuditEvent)>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT * FROM audit_events WHERE (?1 IS NULL OR user_id = ?1) \
             AND (?2 IS NULL OR client_id = ?2) \
             AND (?3 IS NULL OR event = ?3 OR event LIKE ?3 || '.%') \
             AND (?4 IS NULL OR outcome = ?4) AND (?5 IS NULL OR at >= ?5) \
             AND (?6 IS NULL OR at < ?6) AND (?7 IS NULL OR id < ?7) \
             ORDER BY id DESC LIMIT ?8",
        )
        .bind(&f.user_id)
        .bind(&f.client_id)
        .bind(&f.event)
        .bind(&f.outcome)
        .bind(f.from)
        .bind(f.until)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .or_backend()?;
        Ok(rows
            .into_iter()
            .map(|r| (r.id, AuditEvent::from(r)))
            .collect())
    }

    async fn purge_before(&self, before: UnixTime) -> StoreResult<u64> {
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM audit_events WHERE at < ?")
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

#[async_trait]
impl MaintenanceRepo for SqliteStore {
    fn stats(&self) -> crate::store::StoreStats {
        crate::store::StoreStats {
            read_connections: self.reader.size(),
            read_idle: self.reader.num_idle(),
            write_queue: self.batch.queued(),
        }
    }

    async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64> {
        // Tokens of expired grants are deleted explicitly (not left to the cascade) so that they
        // are counted: SQLite does not count rows removed by foreign-key actions.
        const STATEMENTS: [&str; 3] = [
            "DELETE FROM tokens WHERE expires_at <= ?1 \
             OR grant_id IN (SELECT id FROM grants WHERE expires_at <= ?1)",
            "DELETE FROM grants WHERE expires_at <= ?1",
            "DELETE FROM sessions WHERE expires_at <= ?1",
        ];
        self.write(move |conn| {
            Box::pin(async move {
                writer::begin_savepoint(conn).await?;
                let r: StoreResult<u64> = async {
                    let mut removed = 0;
                    for sql in STATEMENTS {
                        removed += sqlx::query(sql)
                            .bind(now)
                            .execute(&mut *conn)
                            .await
                            .or_backend()?
                            .rows_affected();
                    }
                    Ok(removed)
                }
                .await;
                writer::end_savepoint(conn, r).await
            })
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        // Through the writer, like every write: it answers only when a write can commit.
        self.write(|conn| {
            Box::pin(async move {
                sqlx::query("UPDATE health SET checks = checks + 1 WHERE id = 1")
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn close(&self) {
        self.batch.close().await;
        // Fold the WAL into the database file so a copy of the file alone is complete.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.admin)
            .await
        {
            tracing::warn!(error = %e, "final WAL checkpoint failed");
        }
        self.admin.close().await;
        self.reader.close().await;
    }
}
