//! The contract for accounts: passkeys, user handles, invitation redemption, a user's sessions.

use super::{NOW, db, new_user};
use crate::domain::{Invitation, PasskeyUse, StoredPasskey};
use crate::store::{PasskeyRemoval, Redemption, Repos, StoreError};

fn passkey(id: &str, user_id: &str, credential: &[u8]) -> StoredPasskey {
    StoredPasskey {
        id: id.into(),
        user_id: user_id.into(),
        credential_id: credential.to_vec(),
        name: format!("key {id}"),
        aaguid: None,
        passkey_json: "{}".into(),
        sign_count: 0,
        backup_eligible: true,
        backup_state: false,
        created_at: NOW,
        last_used_at: None,
    }
}

#[tokio::test]
async fn a_credential_belongs_to_one_account() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    let bob = db.repos.users.create(&new_user("bob"), NOW).await.unwrap();
    db.repos
        .passkeys
        .add(&passkey("p1", &alice.id, b"cred"))
        .await
        .unwrap();
    let taken = db
        .repos
        .passkeys
        .add(&passkey("p2", &bob.id, b"cred"))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert!(
        db.repos
            .passkeys
            .list_for_user(&bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    let found = db
        .repos
        .passkeys
        .by_credential_id(b"cred")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user_id, alice.id);
}

#[tokio::test]
async fn a_use_is_recorded_only_against_the_counter_it_verified() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    db.repos
        .passkeys
        .add(&passkey("p1", &alice.id, b"cred"))
        .await
        .unwrap();
    let u = |previous, count| PasskeyUse {
        id: "p1".into(),
        previous_count: previous,
        sign_count: count,
        backup_state: true,
        passkey_json: format!("{{\"n\":{count}}}"),
        at: NOW + 5,
    };
    assert!(db.repos.passkeys.record_use(&u(0, 3)).await.unwrap());
    // A second sign-in verified against the old counter loses.
    assert!(!db.repos.passkeys.record_use(&u(0, 3)).await.unwrap());
    let p = db
        .repos
        .passkeys
        .by_credential_id(b"cred")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.sign_count, p.backup_state, p.last_used_at),
        (3, true, Some(NOW + 5))
    );
    assert_eq!(p.passkey_json, "{\"n\":3}");
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_removed() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    let bob = db.repos.users.create(&new_user("bob"), NOW).await.unwrap();
    db.repos
        .passkeys
        .add(&passkey("p1", &alice.id, b"c1"))
        .await
        .unwrap();
    db.repos
        .passkeys
        .add(&passkey("p2", &alice.id, b"c2"))
        .await
        .unwrap();
    // Someone else's passkey is not found, whoever asks.
    let foreign = db.repos.passkeys.remove(&bob.id, "p1").await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound(_))),
        "{foreign:?}"
    );
    assert_eq!(
        db.repos.passkeys.remove(&alice.id, "p1").await.unwrap(),
        PasskeyRemoval::Removed
    );
    assert_eq!(
        db.repos.passkeys.remove(&alice.id, "p2").await.unwrap(),
        PasskeyRemoval::Last
    );
    // With a password, the last passkey may go.
    db.repos
        .passwords
        .set(&alice.id, "$argon2id$x", NOW)
        .await
        .unwrap();
    assert_eq!(
        db.repos.passkeys.remove(&alice.id, "p2").await.unwrap(),
        PasskeyRemoval::Removed
    );
    db.repos
        .passkeys
        .add(&passkey("p3", &alice.id, b"c3"))
        .await
        .unwrap();
    db.repos
        .passkeys
        .rename(&alice.id, "p3", "Laptop")
        .await
        .unwrap();
    assert!(matches!(
        db.repos.passkeys.rename(&bob.id, "p3", "Mine").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        db.repos.passkeys.list_for_user(&alice.id).await.unwrap()[0].name,
        "Laptop"
    );
}

#[tokio::test]
async fn a_user_handle_is_given_once_and_finds_its_user() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    assert_eq!(
        db.repos.passkeys.user_handle(&alice.id).await.unwrap(),
        None
    );
    let h = db
        .repos
        .passkeys
        .ensure_user_handle(&alice.id, &[1; 16])
        .await
        .unwrap();
    assert_eq!(h, vec![1; 16]);
    // A second candidate does not replace it.
    let again = db
        .repos
        .passkeys
        .ensure_user_handle(&alice.id, &[2; 16])
        .await
        .unwrap();
    assert_eq!(again, vec![1; 16]);
    assert_eq!(
        db.repos.passkeys.user_for_handle(&[1; 16]).await.unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        db.repos.passkeys.user_for_handle(&[2; 16]).await.unwrap(),
        None
    );
}

async fn invitation(repos: &Repos, uses: u32) -> &'static str {
    let i = Invitation {
        id: "inv".into(),
        username: None,
        email: None,
        name: None,
        groups: vec!["staff".into()],
        is_admin: true,
        uses,
        used: 0,
        created_by: "cli".into(),
        created_at: NOW,
        expires_at: NOW + 100,
        revoked_at: None,
        emailed: false,
    };
    repos.invitations.create(&i, "hash").await.unwrap();
    "hash"
}

fn redemption(username: &str, credential: &[u8]) -> Redemption {
    let mut user = new_user(username);
    user.is_admin = true;
    Redemption {
        user,
        email_verified: true,
        groups: vec!["staff".into()],
        user_handle: credential.repeat(16 / credential.len().max(1)),
        passkey: passkey(&format!("pk-{username}"), "", credential),
    }
}

#[tokio::test]
async fn redeeming_creates_the_whole_account_and_uses_one_use() {
    let db = db().await;
    let hash = invitation(&db.repos, 1).await;
    let user = db
        .repos
        .invitations
        .redeem(hash, &redemption("carol", b"c"), NOW + 1)
        .await;
    let user = user.unwrap().unwrap();
    assert!(user.is_admin && user.email_verified);
    assert_eq!(
        db.repos.groups.names_for_user(&user.id).await.unwrap(),
        vec!["staff"]
    );
    assert_eq!(
        db.repos
            .passkeys
            .list_for_user(&user.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        db.repos.passkeys.user_handle(&user.id).await.unwrap(),
        Some(vec![b'c'; 16])
    );
    // Used up: the next redemption writes nothing.
    let again = db
        .repos
        .invitations
        .redeem(hash, &redemption("dave", b"d"), NOW + 1)
        .await;
    assert!(again.unwrap().is_none());
    assert!(db.repos.users.by_username("dave").await.unwrap().is_none());
    assert_eq!(
        db.repos.invitations.get("inv").await.unwrap().unwrap().used,
        1
    );
}

#[tokio::test]
async fn a_failed_redemption_leaves_nothing_and_keeps_its_use() {
    let db = db().await;
    let hash = invitation(&db.repos, 2).await;
    db.repos
        .invitations
        .redeem(hash, &redemption("carol", b"c"), NOW + 1)
        .await
        .unwrap();
    // The same credential again: refused, and the use it took is given back.
    let taken = db
        .repos
        .invitations
        .redeem(hash, &redemption("erin", b"c"), NOW + 1)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert!(db.repos.users.by_username("erin").await.unwrap().is_none());
    assert_eq!(
        db.repos.invitations.get("inv").await.unwrap().unwrap().used,
        1
    );
    // Expired: nothing.
    let late = db
        .repos
        .invitations
        .redeem(hash, &redemption("fay", b"f"), NOW + 100)
        .await;
    assert!(late.unwrap().is_none());
}

#[tokio::test]
async fn a_users_sessions_are_listed_and_ended_by_that_user_only() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    let bob = db.repos.users.create(&new_user("bob"), NOW).await.unwrap();
    let s = &db.repos.sessions;
    s.create("a1", Some(&alice.id), b"1", NOW + 10)
        .await
        .unwrap();
    s.create("a2", None, b"2", NOW + 10).await.unwrap();
    s.save("a2", Some(&alice.id), b"2", NOW + 10).await.unwrap();
    s.create("b1", Some(&bob.id), b"3", NOW + 10).await.unwrap();
    let mut mine: Vec<String> = s
        .list_for_user(&alice.id, NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    mine.sort();
    assert_eq!(mine, ["a1", "a2"]);
    assert!(matches!(
        s.delete_for_user(&alice.id, "b1").await,
        Err(StoreError::NotFound(_))
    ));
    s.delete_for_user(&alice.id, "a1").await.unwrap();
    assert_eq!(s.load("a1", NOW).await.unwrap(), None);
    assert_eq!(s.delete_all_for_user(&alice.id).await.unwrap(), 1);
    assert!(s.load("b1", NOW).await.unwrap().is_some());
}

#[tokio::test]
async fn groups_are_listed_renamed_emptied_and_deleted() {
    let db = db().await;
    let g = &db.repos.groups;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();
    let staff = g.create("staff", NOW).await.unwrap();
    let ops = g.create("ops", NOW).await.unwrap();
    g.add_member(&staff, &alice.id).await.unwrap();
    let all = g.list().await.unwrap();
    let names: Vec<(&str, u64)> = all.iter().map(|i| (i.name.as_str(), i.members)).collect();
    assert_eq!(names, [("ops", 0), ("staff", 1)]);
    assert!(matches!(
        g.rename(&ops, "STAFF").await,
        Err(StoreError::Conflict(_))
    ));
    g.rename(&ops, "crew").await.unwrap();
    assert_eq!(g.get(&ops).await.unwrap().unwrap().name, "crew");
    assert_eq!(
        g.member_ids(&staff).await.unwrap(),
        std::slice::from_ref(&alice.id)
    );
    g.remove_member(&staff, &alice.id).await.unwrap();
    assert!(matches!(
        g.remove_member(&staff, &alice.id).await,
        Err(StoreError::NotFound(_))
    ));
    g.add_member(&staff, &alice.id).await.unwrap();
    g.delete(&staff).await.unwrap();
    assert!(
        db.repos
            .groups
            .names_for_user(&alice.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        g.delete(&staff).await,
        Err(StoreError::NotFound(_))
    ));
}
