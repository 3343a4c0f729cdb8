//! Users, their passwords and their groups.

use super::rows::{UserRow, json_text};
use super::{OrBackend, SqliteStore, guarded, touched, write_err};
use crate::clock::UnixTime;
use crate::domain::{NewUser, User};
use crate::store::{GroupInfo, GroupRepo, PasswordRepo, StoreError, StoreResult, Unique, UserRepo};
use async_trait::async_trait;

/// Inserts a user row (with its WebAuthn handle, if it has one yet) on the writer's connection.
pub(super) async fn insert_user(
    conn: &mut sqlx::SqliteConnection,
    r: &User,
    webauthn_id: Option<&[u8]>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO users (id, username, email, email_verified, name, is_admin, disabled, \
         created_at, updated_at, webauthn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(&r.username)
    .bind(&r.email)
    .bind(r.email_verified)
    .bind(&r.name)
    .bind(r.is_admin)
    .bind(r.disabled)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(webauthn_id)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        write_err(
            e,
            |which| match which {
                Some(Unique::Email) => {
                    Unique::Email.conflict(r.email.as_deref().unwrap_or_default())
                }
                Some(Unique::UserId) => Unique::UserId.conflict(&r.id),
                Some(Unique::UserHandle) => Unique::UserHandle.conflict(&r.username),
                _ => Unique::Username.conflict(&r.username),
            },
            || "user".into(),
        )
    })?;
    Ok(())
}

#[async_trait]
impl UserRepo for SqliteStore {
    async fn create(&self, user: &NewUser, now: UnixTime) -> StoreResult<User> {
        let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
        let row = User {
            id,
            username: user.username.clone(),
            email: user.email.clone(),
            email_verified: false,
            name: user.name.clone(),
            profile: Default::default(),
            is_admin: user.is_admin,
            disabled: false,
            security_notices: true,
            created_at: now,
            updated_at: now,
        };
        let r = row.clone();
        self.write(move |conn| Box::pin(async move { insert_user(conn, &r, None).await }))
            .await?;
        Ok(row)
    }

    async fn by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(User::try_from).transpose()
    }

    async fn by_username(&self, username: &str) -> StoreResult<Option<User>> {
        // The column's NOCASE collation makes this comparison case-insensitive.
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(User::try_from).transpose()
    }

    async fn by_email(&self, email: &str) -> StoreResult<Option<User>> {
        // NOCASE, like usernames.
        let row: Option<UserRow> = sqlx::query_as("SELECT * FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.reader)
            .await
            .or_backend()?;
        row.map(User::try_from).transpose()
    }

    async fn list(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as("SELECT * FROM users ORDER BY username")
            .fetch_all(&self.reader)
            .await
            .or_backend()?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn set_disabled(&self, id: &str, disabled: bool, now: UnixTime) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done =
                    sqlx::query("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?")
                        .bind(disabled)
                        .bind(now)
                        .bind(&id)
                        .execute(&mut *conn)
                        .await
                        .or_backend()?;
                touched(done, || format!("user {id:?}"))
            })
        })
        .await
    }

    async fn update(&self, user: &User, now: UnixTime) -> StoreResult<User> {
        let mut row = user.clone();
        row.updated_at = now;
        let profile = json_text(&row.profile)?;
        let r = row.clone();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE users SET email = ?, email_verified = ?, name = ?, profile = ?, \
                     security_notices = ?, updated_at = ? WHERE id = ?",
                )
                .bind(&r.email)
                .bind(r.email_verified)
                .bind(&r.name)
                .bind(&profile)
                .bind(r.security_notices)
                .bind(r.updated_at)
                .bind(&r.id)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_err(
                        e,
                        |_| Unique::Email.conflict(r.email.as_deref().unwrap_or_default()),
                        || "user".into(),
                    )
                })?;
                touched(done, || format!("user {:?}", r.id))
            })
        })
        .await?;
        Ok(row)
    }

    async fn set_admin(&self, id: &str, is_admin: bool, now: UnixTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(&format!(
                    "UPDATE users SET is_admin = ?2, updated_at = ?3 WHERE id = ?1 \
                     AND (?2 OR {KEEPS_AN_ADMIN})"
                ))
                .bind(&id)
                .bind(is_admin)
                .bind(now)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                guarded(conn, done, "users", "user", &id).await
            })
        })
        .await
    }

    async fn disable_keeping_an_admin(&self, id: &str, now: UnixTime) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(&format!(
                    "UPDATE users SET disabled = 1, updated_at = ?2 WHERE id = ?1 \
                     AND {KEEPS_AN_ADMIN}"
                ))
                .bind(&id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                guarded(conn, done, "users", "user", &id).await
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                // Everything of theirs goes through ON DELETE CASCADE.
                let done = sqlx::query(&format!(
                    "DELETE FROM users WHERE id = ?1 AND {KEEPS_AN_ADMIN}"
                ))
                .bind(&id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                guarded(conn, done, "users", "user", &id).await
            })
        })
        .await
    }

    async fn count_active_admins(&self) -> StoreResult<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled = 0")
                .fetch_one(&self.reader)
                .await
                .or_backend()?;
        u64::try_from(n).or_backend()
    }
}

/// True when user ?1 is not an active administrator or another one remains.
const KEEPS_AN_ADMIN: &str = "(is_admin = 0 OR disabled = 1 OR (SELECT COUNT(*) FROM users \
     WHERE is_admin = 1 AND disabled = 0 AND id <> ?1) > 0)";

#[async_trait]
impl PasswordRepo for SqliteStore {
    async fn get(&self, user_id: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT phc FROM passwords WHERE user_id = ?")
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await
            .or_backend()
    }

    async fn set(&self, user_id: &str, phc: &str, now: UnixTime) -> StoreResult<()> {
        let (user_id, phc) = (user_id.to_owned(), phc.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO passwords (user_id, phc, updated_at) VALUES (?, ?, ?) \
                     ON CONFLICT (user_id) DO UPDATE SET phc = excluded.phc, \
                     updated_at = excluded.updated_at",
                )
                .bind(&user_id)
                .bind(&phc)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(|e| {
                    write_err(
                        e,
                        |_| Unique::UserId.conflict(&user_id),
                        || format!("user {user_id:?}"),
                    )
                })?;
                Ok(())
            })
        })
        .await
    }

    async fn remove_unless_last(&self, user_id: &str) -> StoreResult<bool> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM passwords WHERE user_id = ?1 \
                     AND EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?1)",
                )
                .bind(&user_id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }
}

#[async_trait]
impl GroupRepo for SqliteStore {
    async fn create(&self, name: &str, now: UnixTime) -> StoreResult<String> {
        let id = crate::crypto::random_id().map_err(StoreError::Backend)?;
        let (gid, name) = (id.clone(), name.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("INSERT INTO groups (id, name, created_at) VALUES (?, ?, ?)")
                    .bind(&gid)
                    .bind(&name)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        write_err(
                            e,
                            |which| match which {
                                Some(Unique::GroupId) => Unique::GroupId.conflict(&gid),
                                _ => Unique::GroupName.conflict(&name),
                            },
                            || "group".into(),
                        )
                    })?;
                Ok(())
            })
        })
        .await?;
        Ok(id)
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> StoreResult<()> {
        let (group_id, user_id) = (group_id.to_owned(), user_id.to_owned());
        // Checked inside the transaction to say which of the two is missing; adding an existing
        // member again is a no-op rather than an error.
        self.write(move |conn| {
            Box::pin(async move {
                let group: Option<i64> = sqlx::query_scalar("SELECT 1 FROM groups WHERE id = ?")
                    .bind(&group_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .or_backend()?;
                if group.is_none() {
                    return Err(StoreError::NotFound(format!("group {group_id:?}")));
                }
                let user: Option<i64> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = ?")
                    .bind(&user_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .or_backend()?;
                if user.is_none() {
                    return Err(StoreError::NotFound(format!("user {user_id:?}")));
                }
                sqlx::query(
                    "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) \
                     ON CONFLICT (group_id, user_id) DO NOTHING",
                )
                .bind(&group_id)
                .bind(&user_id)
                .execute(&mut *conn)
                .await
                .or_backend()?;
                Ok(())
            })
        })
        .await
    }

    async fn names_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = ? ORDER BY g.name",
        )
        .bind(user_id)
        .fetch_all(&self.reader)
        .await
        .or_backend()
    }

    async fn list(&self) -> StoreResult<Vec<GroupInfo>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT g.id, g.name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) \
             FROM groups g ORDER BY g.name",
        )
        .fetch_all(&self.reader)
        .await
        .or_backend()?;
        Ok(rows
            .into_iter()
            .map(|(id, name, n)| GroupInfo {
                id,
                name,
                members: u64::try_from(n).unwrap_or(0),
            })
            .collect())
    }

    async fn get(&self, id: &str) -> StoreResult<Option<GroupInfo>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT g.id, g.name, (SELECT count(*) FROM group_members m WHERE m.group_id = g.id) \
             FROM groups g WHERE g.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .or_backend()?;
        Ok(row.map(|(id, name, n)| GroupInfo {
            id,
            name,
            members: u64::try_from(n).unwrap_or(0),
        }))
    }

    async fn rename(&self, id: &str, name: &str) -> StoreResult<()> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("UPDATE groups SET name = ? WHERE id = ?")
                    .bind(&name)
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| {
                        write_err(e, |_| Unique::GroupName.conflict(&name), || "group".into())
                    })?;
                touched(done, || format!("group {id:?}"))
            })
        })
        .await
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM groups WHERE id = ?")
                    .bind(&id)
                    .execute(&mut *conn)
                    .await
                    .or_backend()?;
                touched(done, || format!("group {id:?}"))
            })
        })
        .await
    }

    async fn member_ids(&self, id: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT user_id FROM group_members WHERE group_id = ?")
            .bind(id)
            .fetch_all(&self.reader)
            .await
            .or_backend()
    }

    async fn remove_member(&self, group_id: &str, user_id: &str) -> StoreResult<()> {
        let (group_id, user_id) = (group_id.to_owned(), user_id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let done =
                    sqlx::query("DELETE FROM group_members WHERE group_id = ? AND user_id = ?")
                        .bind(&group_id)
                        .bind(&user_id)
                        .execute(&mut *conn)
                        .await
                        .or_backend()?;
                touched(done, || "membership".into())
            })
        })
        .await
    }

    async fn ids_for_user(&self, user_id: &str) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT group_id FROM group_members WHERE user_id = ?")
            .bind(user_id)
            .fetch_all(&self.reader)
            .await
            .or_backend()
    }
}
