//! Passkeys and WebAuthn user handles.

use super::rows::PasskeyRow;
use super::{OrBackend, SqliteStore, touched, write_err};
use crate::domain::{PasskeyUse, StoredPasskey};
use crate::store::{PasskeyRemoval, PasskeyRepo, StoreError, StoreResult, Unique};
use async_trait::async_trait;
use sqlx::SqliteConnection;

/// Inserts a passkey for `user_id` on the writer's connection.
pub(super) async fn insert_passkey(
    conn: &mut SqliteConnection,
    p: &StoredPasskey,
    user_id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO passkeys (id, user_id, credential_id, name, aaguid, passkey, sign_count, \
         backup_eligible, backup_state, created_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&p.id)
    .bind(user_id)
    .bind(&p.credential_id)
    .bind(&p.name)
    .bind(&p.aaguid)
    .bind(&p.passkey_json)
    .bind(i64::from(p.sign_count))
    .bind(p.backup_eligible)
    .bind(p.backup_state)
    .bind(p.created_at)
    .bind(p.last_used_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        write_err(
            e,
            |_| Unique::CredentialId.conflict(&p.name),
            || format!("user {user_id:?}"),
        )
    })?;
    Ok(())
}

#[async_trait]
impl PasskeyRepo for SqliteStore {
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
        let rows: Vec<PasskeyRow> =
            sqlx::query_as("SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, rowid")
                .bind(user_id)
                .fetch_all(&self.reader)
                .await
                .or_backend()?;
        rows.into_iter().map(StoredPasskey::try_from).collect()
    }

    async fn by_credential_id(&self, credential_id: &[u8]) -> StoreResult<Option<StoredPasskey>> {
        let row: Option<PasskeyRow> =
            sqlx::query_as("SELECT * FROM passkeys WHERE credential_id = ?")
                .bind(credential_id)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        row.map(StoredPasskey::try_from).transpose()
    }

    async fn add(&self, passkey: &StoredPasskey) -> StoreResult<()> {
        let p = passkey.clone();
        self.write(move |conn| Box::pin(async move { insert_passkey(conn, &p, &p.user_id).await }))
            .await
    }

    async fn record_use(&self, u: &PasskeyUse) -> StoreResult<bool> {
        let u = u.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE passkeys SET passkey = ?, sign_count = ?, backup_state = ?, \
                     last_used_at = ? WHERE id = ? AND sign_count = ?",
                )
                .bind(&u.passkey_json)
                .bind(i64::from(u.sign_count))
                .bind(u.backup_state)
                .bind(u.at)
                .bind(&u.id)
                .bind(i64::from(u.previous_count))
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    async fn rename(&self, user_id: &str, id: &str, name: &str) -> StoreResult<()> {
        let (user_id, id, name) = (user_id.to_owned(), id.to_owned(), name.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?")
                    .bind(&name)
                    .bind(&id)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || "passkey".into())
            })
        })
        .await
    }

    async fn remove(&self, user_id: &str, id: &str) -> StoreResult<PasskeyRemoval> {
        let (user_id, id) = (user_id.to_owned(), id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                // One statement decides and deletes, so two removals racing cannot together
                // take away the last two ways in.
                let done = sqlx::query(
                    "DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2 AND ( \
                     (SELECT count(*) FROM passkeys WHERE user_id = ?2) > 1 \
                     OR EXISTS (SELECT 1 FROM passwords WHERE user_id = ?2))",
                )
                .bind(&id)
                .bind(&user_id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                if done.rows_affected() == 1 {
                    return Ok(PasskeyRemoval::Removed);
                }
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM passkeys WHERE id = ? AND user_id = ?")
                        .bind(&id)
                        .bind(&user_id)
                        .fetch_optional(&mut *conn)
                        .await
                        .or_backend()?;
                match exists {
                    Some(_) => Ok(PasskeyRemoval::Last),
                    None => Err(StoreError::NotFound("passkey".into())),
                }
            })
        })
        .await
    }

    async fn user_handle(&self, user_id: &str) -> StoreResult<Option<Vec<u8>>> {
        let handle: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT webauthn_id FROM users WHERE id = ?")
                .bind(user_id)
                .fetch_optional(&self.reader)
                .await
                .or_backend()?;
        Ok(handle.flatten())
    }

    async fn ensure_user_handle(&self, user_id: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        let (user_id, candidate) = (user_id.to_owned(), candidate.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE users SET webauthn_id = ? WHERE id = ? AND webauthn_id IS NULL",
                )
                .bind(&candidate)
                .bind(&user_id)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_err(
                        e,
                        |_| Unique::UserHandle.conflict(&user_id),
                        || format!("user {user_id:?}"),
                    )
                })?;
                let handle: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT webauthn_id FROM users WHERE id = ?")
                        .bind(&user_id)
                        .fetch_optional(&mut *conn)
                        .await
                        .or_backend()?;
                handle
                    .flatten()
                    .ok_or_else(|| StoreError::NotFound(format!("user {user_id:?}")))
            })
        })
        .await
    }

    async fn user_for_handle(&self, handle: &[u8]) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT id FROM users WHERE webauthn_id = ?")
            .bind(handle)
            .fetch_optional(&self.reader)
            .await
            .or_backend()
    }
}
