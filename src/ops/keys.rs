//! Signing keys: list, rotate.

use super::{Operator, OpsResult};
use crate::crypto::SealingKey;
use crate::oidc::keys;
use crate::store::StoredKey;

impl Operator {
    /// All keys, oldest first.
    pub async fn list_keys(&self) -> OpsResult<Vec<StoredKey>> {
        Ok(self.repos.keys.list().await?)
    }

    /// A new key per algorithm, published now and signing after `prepublish` seconds, when the
    /// current ones retire (published until the ID tokens they signed expire). Returns the new
    /// keys. Running servers publish them within a minute.
    pub async fn rotate_keys(
        &self,
        sealing: &SealingKey,
        prepublish: i64,
    ) -> OpsResult<Vec<StoredKey>> {
        let kids = keys::rotate(self.repos.keys.as_ref(), sealing, self.now(), prepublish).await?;
        self.record("keys.rotate", None, None).await;
        let all = self.repos.keys.list().await?;
        Ok(all.into_iter().filter(|k| kids.contains(&k.kid)).collect())
    }

    /// Rotates (as `rotate_keys`) when the newest keys are `every` seconds old; the new keys,
    /// or `None` when not due.
    pub async fn rotate_keys_if_due(
        &self,
        sealing: &SealingKey,
        prepublish: i64,
        every: i64,
    ) -> OpsResult<Option<Vec<StoredKey>>> {
        let keys = self.repos.keys.list().await?;
        match keys::rotation_due(&keys, every) {
            Some(due) if due <= self.now() => {
                Ok(Some(self.rotate_keys(sealing, prepublish).await?))
            }
            _ => Ok(None),
        }
    }
}
