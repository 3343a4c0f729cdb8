//! Clients (relying parties): register, list, delete.

use super::{Operator, OpsError, OpsResult};
use crate::domain::Client;
use crate::oidc::clients::{self, ClientSpec, RegisterError};

impl Operator {
    /// Registers a client; returns it with its secret (confidential clients), shown this once.
    pub async fn create_client(&self, spec: ClientSpec) -> OpsResult<(Client, Option<String>)> {
        let (client, secret) = clients::register(self.repos.clients.as_ref(), spec, self.now())
            .await
            .map_err(|e| match e {
                RegisterError::Invalid(msg) => OpsError::Invalid(msg),
                RegisterError::Store(e) => e.into(),
            })?;
        self.record("client.create", None, Some(&client.id)).await;
        Ok((client, secret))
    }

    pub async fn list_clients(&self) -> OpsResult<Vec<Client>> {
        Ok(self.repos.clients.list().await?)
    }

    /// Deletes a client with its grants, tokens and consents.
    pub async fn delete_client(&self, id: &str) -> OpsResult<()> {
        if self.repos.clients.get(id).await?.is_none() {
            return Err(OpsError::NotFound(format!("client {id:?}")));
        }
        self.repos.clients.delete(id).await?;
        self.record("client.delete", None, Some(id)).await;
        Ok(())
    }

    /// Lets only members of these groups (ids) sign in to the client; none: everyone.
    pub async fn set_client_groups(&self, id: &str, group_ids: Vec<String>) -> OpsResult<()> {
        let known: Vec<String> = self
            .repos
            .groups
            .list()
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        if let Some(g) = group_ids.iter().find(|g| !known.contains(g)) {
            return Err(OpsError::NotFound(format!("group {g:?}")));
        }
        self.repos
            .clients
            .set_allowed_groups(id, &group_ids)
            .await?;
        self.record("client.groups", None, Some(id)).await;
        Ok(())
    }
}
