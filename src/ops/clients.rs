//! Clients (relying parties): register, edit, rotate secrets, restrict to groups, delete.

use super::{Operator, OpsError, OpsResult};
use crate::domain::{ADMIN_CLIENT_ID, Client};
use crate::oidc::clients::{self, ClientSpec, RegisterError};

impl Operator {
    /// Registers a client; returns it with its secret (confidential clients), shown this once.
    pub async fn create_client(&self, spec: ClientSpec) -> OpsResult<(Client, Option<String>)> {
        let (client, secret) = clients::register(self.repos.clients.as_ref(), spec, self.now())
            .await
            .map_err(register_error)?;
        self.record("client.create", None, Some(&client.id)).await;
        Ok((client, secret))
    }

    /// Changes every setting of a client; returns it with a new secret when it became
    /// confidential (shown this once).
    pub async fn update_client(
        &self,
        id: &str,
        spec: ClientSpec,
    ) -> OpsResult<(Client, Option<String>)> {
        self.not_the_admin_ui(id, "changed")?;
        let (client, secret) = clients::update(self.repos.clients.as_ref(), id, spec)
            .await
            .map_err(register_error)?;
        self.record("client.update", None, Some(id)).await;
        Ok((client, secret))
    }

    /// A new secret for a confidential client (shown this once); the old one keeps working for
    /// `overlap` seconds.
    pub async fn rotate_client_secret(
        &self,
        id: &str,
        overlap: i64,
    ) -> OpsResult<(Client, String)> {
        let (client, secret) =
            clients::rotate_secret(self.repos.clients.as_ref(), id, overlap, self.now())
                .await
                .map_err(register_error)?;
        self.record("client.secret_rotate", None, Some(id)).await;
        Ok((client, secret))
    }

    /// The admin UI's own client is made at start and must stay as it is.
    fn not_the_admin_ui(&self, id: &str, what: &str) -> OpsResult<()> {
        if id == ADMIN_CLIENT_ID {
            return Err(OpsError::Refused(format!(
                "the admin UI's own application cannot be {what}"
            )));
        }
        Ok(())
    }

    pub async fn client(&self, id: &str) -> OpsResult<Client> {
        self.repos
            .clients
            .get(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("client {id:?}")))
    }

    pub async fn list_clients(&self) -> OpsResult<Vec<Client>> {
        Ok(self.repos.clients.list().await?)
    }

    /// Deletes a client with its grants, tokens and consents.
    pub async fn delete_client(&self, id: &str) -> OpsResult<()> {
        self.not_the_admin_ui(id, "deleted")?;
        if self.repos.clients.get(id).await?.is_none() {
            return Err(OpsError::NotFound(format!("client {id:?}")));
        }
        self.repos.clients.delete(id).await?;
        self.record("client.delete", None, Some(id)).await;
        Ok(())
    }

    /// Lets only members of these groups (ids) sign in to the client; none: everyone.
    pub async fn set_client_groups(&self, id: &str, group_ids: Vec<String>) -> OpsResult<()> {
        self.not_the_admin_ui(id, "restricted to groups")?;
        self.known_groups(&group_ids).await?;
        self.repos
            .clients
            .set_allowed_groups(id, &group_ids)
            .await?;
        self.record("client.groups", None, Some(id)).await;
        Ok(())
    }
}

fn register_error(e: RegisterError) -> OpsError {
    match e {
        RegisterError::Invalid(msg) => OpsError::Invalid(msg),
        RegisterError::Store(e) => e.into(),
    }
}
