//! Invitations.

use super::rows::{InvitationRow, json_text};
use super::{OrBackend, SqliteStore, guarded, passkeys, touched, users, write_err, writer};
use crate::clock::UnixTime;
use crate::domain::{Invitation, User};
use crate::store::{InvitationRepo, Redemption, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::SqliteConnection;

/// Consumes one use of the pending invitation, then writes the account; the caller's savepoint
/// undoes everything if any step fails.
async fn redeem_in(
    conn: &mut SqliteConnection,
    token_hash: &str,
    r: &Redemption,
    user: &User,
    now: UnixTime,
) -> StoreResult<bool> {
    let used = sqlx::query(
        "UPDATE invitations SET used = used + 1 WHERE token_hash = ? AND revoked_at IS NULL \
         AND used < uses AND expires_at > ?",
    )
    .bind(token_hash)
    .bind(now)
    .execute(&mut *conn)
    .await
    .or_backend()?;
    if used.rows_affected() == 0 {
        return Ok(false);
    }
    users::insert_user(conn, user, Some(&r.user_handle)).await?;
    for name in &r.groups {
        let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
        sqlx::query(
            "INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await
        .or_backend()?;
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id) SELECT id, ? FROM groups WHERE name = ? \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(&user.id)
        .bind(name)
        .execute(&mut *conn)
        .await
        .or_backend()?;
    }
    passkeys::insert_passkey(conn, &r.passkey, &user.id).await?;
    Ok(true)
}

#[async_trait]
impl InvitationRepo for SqliteStore {
    async fn create(&self, invitation: &Invitation, token_hash: &str) -> StoreResult<()> {
        let (i, hash) = (invitation.clone(), token_hash.to_owned());
        let groups = json_text(&i.groups)?;
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO invitations (id, token_hash, username, email, name, groups, \
                     is_admin, uses, used, created_by, created_at, expires_at, revoked_at, emailed) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                .bind(i.emailed)
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

    async fn reissue(
        &self,
        id: &str,
        token_hash: &str,
        emailed: bool,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let (id, hash) = (id.to_owned(), token_hash.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE invitations SET token_hash = ?, emailed = ? WHERE id = ? \
                     AND revoked_at IS NULL AND used < uses AND expires_at > ?",
                )
                .bind(&hash)
                .bind(emailed)
                .bind(&id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                guarded(conn, done, "invitations", "invitation", &id).await
            })
        })
        .await
    }

    async fn redeem(
        &self,
        token_hash: &str,
        r: &Redemption,
        now: UnixTime,
    ) -> StoreResult<Option<User>> {
        let user = User {
            id: crate::crypto::random_id().map_err(StoreError::Backend)?,
            username: r.user.username.clone(),
            email: r.user.email.clone(),
            email_verified: r.email_verified && r.user.email.is_some(),
            name: r.user.name.clone(),
            profile: Default::default(),
            is_admin: r.user.is_admin,
            disabled: false,
            security_notices: true,
            created_at: now,
            updated_at: now,
        };
        let (hash, r, u) = (token_hash.to_owned(), r.clone(), user.clone());
        let created = self
            .write(move |conn| {
                Box::pin(async move {
                    writer::begin_savepoint(conn).await?;
                    let done = redeem_in(conn, &hash, &r, &u, now).await;
                    let done = match done {
                        // Nothing was written, but close the savepoint all the same.
                        Ok(false) => Err(StoreError::NotFound("pending invitation".into())),
                        other => other,
                    };
                    writer::end_savepoint(conn, done).await
                })
            })
            .await;
        match created {
            Ok(_) => Ok(Some(user)),
            Err(StoreError::NotFound(what)) if what == "pending invitation" => Ok(None),
            Err(e) => Err(e),
        }
    }
}
