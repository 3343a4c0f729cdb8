//! The contract for clients (every setting written by `update` reads back whole; secrets change
//! only from the one that was read) and for the
//! guarded account writes (the admin flag, deletion).

use super::{NOW, db, user_and_client};
use crate::domain::{ClientLifetimes, GrantType, SigningAlg};

#[tokio::test]
async fn an_update_writes_every_setting_and_secrets_change_only_from_what_was_read() {
    let db = db().await;
    let (_, id) = user_and_client(&db.repos).await;
    let clients = &db.repos.clients;
    let mut client = clients.get(&id).await.unwrap().unwrap();
    client.name = "Renamed".into();
    client.redirect_uris = vec!["https://rp.example/a".into(), "https://rp.example/b".into()];
    client.post_logout_redirect_uris = vec!["https://rp.example/bye".into()];
    client.grant_types = vec![GrantType::AuthorizationCode];
    client.scopes = vec!["openid".into(), "email".into()];
    client.first_party = true;
    client.id_token_alg = SigningAlg::EdDSA;
    client.refresh_always = true;
    client.require_passkey = true;
    client.allow_magic_link = false;
    client.logo_uri = Some("https://rp.example/logo.png".into());
    client.lifetimes = ClientLifetimes {
        access_token: Some(600),
        id_token: Some(300),
        refresh_token: Some(86_400),
    };
    clients.update(&client).await.unwrap();
    let read = clients.get(&id).await.unwrap().unwrap();
    assert!(read == client, "{read:?}");
    // `update` leaves the secrets alone.
    let mut other = client.clone();
    other.secret_hash = Some("not written".into());
    clients.update(&other).await.unwrap();
    assert_eq!(clients.get(&id).await.unwrap().unwrap().secret_hash, None);
    // A secret changes only from the one that was read: a second change from the same read
    // loses, and writes nothing.
    let previous = Some(("old-hash".to_owned(), NOW + 60));
    assert!(
        clients
            .set_secret(&id, None, Some("first"), previous.clone())
            .await
            .unwrap()
    );
    assert!(
        !clients
            .set_secret(&id, None, Some("second"), None)
            .await
            .unwrap()
    );
    let read = clients.get(&id).await.unwrap().unwrap();
    assert_eq!(read.secret_hash.as_deref(), Some("first"));
    assert_eq!(read.previous_secret, previous);
    assert!(
        clients
            .set_secret(&id, Some("first"), None, None)
            .await
            .unwrap()
    );
    let read = clients.get(&id).await.unwrap().unwrap();
    assert!(read.secret_hash.is_none() && read.previous_secret.is_none());
    // Unknown ids are NotFound.
    let mut ghost = client.clone();
    ghost.id = "ghost".into();
    assert!(matches!(
        clients.update(&ghost).await,
        Err(crate::store::StoreError::NotFound(_))
    ));
    assert!(matches!(
        clients.set_secret("ghost", None, None, None).await,
        Err(crate::store::StoreError::NotFound(_))
    ));
}

/// The admin flag, disabling and deletion never leave no active administrator, decided in the
/// write itself.
#[tokio::test]
async fn the_last_active_administrator_is_neither_demoted_nor_deleted() {
    let db = db().await;
    let users = &db.repos.users;
    let admin = |name: &str| crate::domain::NewUser {
        is_admin: true,
        ..super::new_user(name)
    };
    let ada = users.create(&admin("ada"), NOW).await.unwrap();
    let bob = users.create(&super::new_user("bob"), NOW).await.unwrap();
    assert!(!users.set_admin(&ada.id, false, NOW).await.unwrap());
    assert!(!users.delete(&ada.id).await.unwrap());
    assert!(!users.disable_keeping_an_admin(&ada.id, NOW).await.unwrap());
    let ada_now = users.by_id(&ada.id).await.unwrap().unwrap();
    assert!(ada_now.is_admin && !ada_now.disabled);
    assert!(users.disable_keeping_an_admin(&bob.id, NOW).await.unwrap());
    users.set_disabled(&bob.id, false, NOW).await.unwrap();
    // A disabled administrator does not count.
    assert!(users.set_admin(&bob.id, true, NOW).await.unwrap());
    users.set_disabled(&bob.id, true, NOW).await.unwrap();
    assert!(!users.set_admin(&ada.id, false, NOW).await.unwrap());
    users.set_disabled(&bob.id, false, NOW).await.unwrap();
    assert!(users.set_admin(&ada.id, false, NOW).await.unwrap());
    assert!(!users.by_id(&ada.id).await.unwrap().unwrap().is_admin);
    // Deleting a non-administrator always works; unknown ids are NotFound.
    assert!(users.delete(&ada.id).await.unwrap());
    assert!(users.by_id(&ada.id).await.unwrap().is_none());
    assert!(matches!(
        users.delete("ghost").await,
        Err(crate::store::StoreError::NotFound(_))
    ));
    assert!(matches!(
        users.set_admin("ghost", true, NOW).await,
        Err(crate::store::StoreError::NotFound(_))
    ));
}
