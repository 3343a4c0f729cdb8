//! The contract for clients (every setting written by `update` reads back whole) and for the
//! guarded account writes (the admin flag, deletion).

use super::{NOW, db, user_and_client};
use crate::domain::{ClientLifetimes, GrantType, SigningAlg};

#[tokio::test]
async fn an_update_writes_every_setting_and_the_rotated_secret() {
    let db = db().await;
    let (_, id) = user_and_client(&db.repos).await;
    let mut client = db.repos.clients.get(&id).await.unwrap().unwrap();
    client.name = "Renamed".into();
    client.secret_hash = Some("new-hash".into());
    client.previous_secret = Some(("old-hash".into(), NOW + 60));
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
    db.repos.clients.update(&client).await.unwrap();
    let read = db.repos.clients.get(&id).await.unwrap().unwrap();
    assert!(read == client, "{read:?}");
    // Unknown ids are NotFound; the secret can be cleared again.
    let mut ghost = client.clone();
    ghost.id = "ghost".into();
    assert!(matches!(
        db.repos.clients.update(&ghost).await,
        Err(crate::store::StoreError::NotFound(_))
    ));
    client.secret_hash = None;
    client.previous_secret = None;
    client.lifetimes = ClientLifetimes::default();
    db.repos.clients.update(&client).await.unwrap();
    let read = db.repos.clients.get(&id).await.unwrap().unwrap();
    assert!(read.secret_hash.is_none() && read.previous_secret.is_none());
    assert_eq!(read.lifetimes, ClientLifetimes::default());
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
