//! Groups: create, rename, delete, members. `admin` is reserved: administrators are its members
//! by their admin flag.

use super::{Operator, OpsError, OpsResult};
use crate::domain::ADMIN_GROUP;
use crate::store::GroupInfo;

fn check_name(name: &str) -> OpsResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(OpsError::Invalid(
            "a group name is 1 to 64 characters, without control characters".into(),
        ));
    }
    if name.eq_ignore_ascii_case(ADMIN_GROUP) {
        return Err(OpsError::Invalid(format!(
            "{ADMIN_GROUP:?} is reserved: administrators are its members by their admin flag"
        )));
    }
    Ok(name.to_owned())
}

impl Operator {
    pub async fn list_groups(&self) -> OpsResult<Vec<GroupInfo>> {
        Ok(self.repos.groups.list().await?)
    }

    /// The id of the group named `name` (names are unique, compared without case).
    pub async fn group_id(&self, name: &str) -> OpsResult<String> {
        self.list_groups()
            .await?
            .into_iter()
            .find(|g| g.name.eq_ignore_ascii_case(name.trim()))
            .map(|g| g.id)
            .ok_or_else(|| OpsError::NotFound(format!("group {name:?}")))
    }

    /// The ids of the groups with these names.
    pub async fn group_ids(&self, names: &[String]) -> OpsResult<Vec<String>> {
        let groups = self.list_groups().await?;
        names
            .iter()
            .map(|name| {
                groups
                    .iter()
                    .find(|g| g.name.eq_ignore_ascii_case(name.trim()))
                    .map(|g| g.id.clone())
                    .ok_or_else(|| OpsError::NotFound(format!("group {name:?}")))
            })
            .collect()
    }

    /// `NotFound` for the first of these group ids that names no group.
    pub(super) async fn known_groups(&self, group_ids: &[String]) -> OpsResult<()> {
        let known: Vec<String> = self
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        match group_ids.iter().find(|g| !known.contains(g)) {
            Some(g) => Err(OpsError::NotFound(format!("group {g:?}"))),
            None => Ok(()),
        }
    }

    pub async fn create_group(&self, name: &str) -> OpsResult<String> {
        let name = check_name(name)?;
        let id = self.repos.groups.create(&name, self.now()).await?;
        self.record("group.create", None, None).await;
        Ok(id)
    }

    pub async fn rename_group(&self, id: &str, name: &str) -> OpsResult<()> {
        let name = check_name(name)?;
        self.repos.groups.rename(id, &name).await?;
        self.record("group.rename", None, None).await;
        Ok(())
    }

    pub async fn delete_group(&self, id: &str) -> OpsResult<()> {
        self.repos.groups.delete(id).await?;
        self.record("group.delete", None, None).await;
        Ok(())
    }

    pub async fn add_member(&self, group_id: &str, username: &str) -> OpsResult<()> {
        let user = self.user_by_name(username.trim()).await?;
        self.repos.groups.add_member(group_id, &user.id).await?;
        self.record("group.member_add", Some(&user.id), None).await;
        Ok(())
    }

    pub async fn remove_member(&self, group_id: &str, user_id: &str) -> OpsResult<()> {
        self.repos.groups.remove_member(group_id, user_id).await?;
        self.record("group.member_remove", Some(user_id), None)
            .await;
        Ok(())
    }
}
