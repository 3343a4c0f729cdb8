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
}
