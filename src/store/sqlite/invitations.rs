//! Invitations.

use super::rows::{InvitationRow, json_text};
use super::{OrBackend, SqliteStore, touched, write_err};
use crate::clock::UnixTime;
use crate::domain::Invitation;
use crate::store::{InvitationRepo, StoreError, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl InvitationRepo for SqliteStore {
    async fn create(&self, invitation: &Invitation, token_hash: &str) -> StoreResult<()> {
        let (i, hash) = (invitation.clone(), token_hash.to_owned());
        let groups = json_text(&i.groups)?;
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO invitations (id, token_hash, username, email, name, groups, \
                     is_admin, uses, used, created_by, created_at, expires_at, revoked_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&i.id)
                .bind(&hash)
                .bind(&i.username)
                .bind(&i.email)
                .bind(&i.name)
                .bind(&groups)
                .bind(i.is_admin)
                .bind(i64::from(i.uses))
                .bind(i64::from(i.used))
                .bind(&i.created_by)
                .bind(i.created_at)
                .bind(i.expires_at)
                .bind(i.revoked_at)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_err(
                        e,
                        |_| StoreError::Conflict(format!("invitation {:?}", i.id)),
                        || "invitation".into(),
                    )
                })?;
                Ok(())
            })
        })
        .await
    }

    async fn get(&self, id: &str) -> StoreResult<Option<Invitation>> {
        let row: Option<InvitationRow> = sqlx::query_as("SELECT * FROM invitations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(Invitation::try_from).transpose()
    }

    async fn by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
        let row: Option<InvitationRow> =
            sqlx::query_as("SELECT * FROM invitations WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        row.map(Invitation::try_from).transpose()
    }

    async fn list(&self) -> StoreResult<Vec<Invitation>> {
        let rows: Vec<InvitationRow> =
            sqlx::query_as("SELECT * FROM invitations ORDER BY created_at DESC, rowid DESC")
                .fetch_all(&self.reader)
                .await
                .or_backend()?;
        rows.into_iter().map(Invitation::try_from).collect()
    }

    async fn revoke_created_by(&self, created_by: &str, now: UnixTime) -> StoreResult<u64> {
        let created_by = created_by.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE invitations SET revoked_at = ? \
                     WHERE created_by = ? AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(&created_by)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    async fn revoke(&self, id: &str, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE invitations SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
                )
                .bind(now)
                .bind(&id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                touched(done, || format!("invitation {id:?}"))
            })
        })
        .await
    }
}
