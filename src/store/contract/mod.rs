//! The repository contract: what every backend must do, checked through the traits alone, so
//! the same tests run against SQLite today and PostgreSQL later. `KEYWAY_TEST_BACKEND` picks
//! the backend (default `sqlite`, on a fresh file in a temporary directory).

use crate::clock::UnixTime;
use crate::domain::{
    AuditEvent, Grant, GrantType, NewClient, NewUser, SigningAlg, StoredToken, TokenKind, User,
};
use crate::store::{Repos, StoreError};
use tokens::new_grant_with_access;

mod accounts;
mod clients;
mod tokens;

const NOW: UnixTime = 1_700_000_000;

/// A backend's repositories, without the cache layer, and what must outlive them.
struct Db {
    repos: Repos,
    _dir: tempfile::TempDir,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let backend = std::env::var("KEYWAY_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into());
    let url = match backend.as_str() {
        // A missing subdirectory proves `open` creates the parent.
        "sqlite" => format!("sqlite://{}/sub/keyway.db", dir.path().display()),
        other => panic!("KEYWAY_TEST_BACKEND={other}: no such backend"),
    };
    let repos = crate::store::open_backend(&url, Default::default())
        .await
        .unwrap();
    Db { repos, _dir: dir }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        name: None,
        is_admin: false,
    }
}

async fn user_and_client(repos: &Repos) -> (User, String) {
    let user = repos.users.create(&new_user("alice"), NOW).await.unwrap();
    let client = NewClient {
        id: "rp".into(),
        name: "Relying party".into(),
        secret_hash: None,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into()],
        first_party: false,
        id_token_alg: SigningAlg::ES256,
        refresh_token_cap: 2,
        refresh_always: false,
        require_passkey: false,
        allow_magic_link: true,
        logo_uri: None,
        lifetimes: Default::default(),
    };
    let created = repos.clients.create(&client, NOW).await.unwrap();
    (user, created.id)
}

fn grant(id: &str, user_id: &str, client_id: &str, created_at: UnixTime) -> Grant {
    Grant {
        id: id.into(),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: "openid".into(),
        auth_time: created_at,
        amr: "pwd".into(),
        sid: "sid".into(),
        created_at,
        expires_at: created_at + 86_400,
        revoked_at: None,
        claims: None,
    }
}

fn token(hash: &str, kind: TokenKind, g: &Grant) -> StoredToken {
    StoredToken {
        token_hash: hash.into(),
        kind,
        grant_id: Some(g.id.clone()),
        client_id: g.client_id.clone(),
        user_id: Some(g.user_id.clone()),
        scope: g.scope.clone(),
        created_at: g.created_at,
        expires_at: g.created_at + 3600,
        consumed_at: None,
        revoked_at: None,
        claims: g.claims.clone(),
        parent: None,
    }
}

#[tokio::test]
async fn username_unique_ignoring_case() {
    let db = db().await;
    let alice = db
        .repos
        .users
        .create(&new_user("alice"), NOW)
        .await
        .unwrap();

    let mut other = new_user("ALICE");
    other.email = Some("other@example.com".into());
    let err = db.repos.users.create(&other, NOW).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.starts_with("username")),
        "{err:?}"
    );

    let mut same_email = new_user("bob");
    same_email.email = Some("Alice@Example.com".into());
    let err = db.repos.users.create(&same_email, NOW).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.starts_with("email")),
        "{err:?}"
    );

    let found = db.repos.users.by_username("Alice").await.unwrap();
    assert_eq!(found, Some(alice));
}

/// What redeeming a code writes: the new grant and one access token under it.
#[tokio::test]
async fn session_expires() {
    let db = db().await;
    assert!(
        db.repos
            .sessions
            .create("s1", None, b"data", NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !db.repos
            .sessions
            .create("s1", None, b"other", NOW + 10)
            .await
            .unwrap()
    );

    let live = db.repos.sessions.load("s1", NOW + 9).await.unwrap();
    assert_eq!(live, Some((b"data".to_vec(), NOW + 10)));
    assert_eq!(db.repos.sessions.load("s1", NOW + 10).await.unwrap(), None);

    // And the purge removes it for good.
    assert_eq!(
        db.repos.maintenance.purge_expired(NOW + 10).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn concurrent_writers_do_not_get_busy() {
    let db = db().await;
    let store = db.repos.clone();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .audit
                    .record(&AuditEvent {
                        at: NOW + i,
                        event: "signin".into(),
                        user_id: None,
                        client_id: None,
                        ip: None,
                        user_agent: None,
                        outcome: "success".into(),
                        detail: Some(i.to_string()),
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let recent = store.audit.recent(100).await.unwrap();
    assert_eq!(recent.len(), 50);
    assert_eq!(recent[0].at, NOW + 49, "newest first");
}

fn cc_token(hash: &str, client_id: &str) -> StoredToken {
    StoredToken {
        token_hash: hash.into(),
        kind: TokenKind::Access,
        grant_id: None,
        client_id: client_id.into(),
        user_id: None,
        scope: "api".into(),
        created_at: NOW,
        expires_at: NOW + 60,
        consumed_at: None,
        revoked_at: None,
        claims: None,
        parent: None,
    }
}

#[tokio::test]
async fn a_failing_insert_in_a_group_commit_fails_alone() {
    let db = db().await;
    let (_, client_id) = user_and_client(&db.repos).await;
    let store = db.repos.clone();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        // Every seventh names a client that does not exist: a foreign-key violation.
        let client = if i % 7 == 3 {
            "no-such-client".to_string()
        } else {
            client_id.clone()
        };
        tasks.push(tokio::spawn(async move {
            let r = store
                .tokens
                .insert_tokens(&[cc_token(&format!("h{i}"), &client)])
                .await;
            (i, r)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let stored = store.tokens.token(&format!("h{i}")).await.unwrap();
        if i % 7 == 3 {
            assert!(matches!(r, Err(StoreError::NotFound(_))), "{i}: {r:?}");
            assert!(stored.is_none());
        } else {
            r.unwrap();
            assert!(stored.is_some(), "{i} committed");
        }
    }
}

#[tokio::test]
async fn any_text_survives_the_batched_insert_path() {
    let db = db().await;
    // SQL-looking text, quotes, backslashes, non-ASCII and a NUL: values are bound, not quoted.
    let odd = "x'); DROP TABLE users; -- \"quoted\" '' \\ ünïcødé ✓ end'";
    let with_nul = "x'); DROP TABLE users; -- \u{0}end";
    for (i, text) in [odd, with_nul].into_iter().enumerate() {
        db.repos
            .audit
            .record(&AuditEvent {
                at: NOW + i as i64,
                event: "signin".into(),
                user_id: None,
                client_id: None,
                ip: Some("::1".into()),
                user_agent: Some(text.into()),
                outcome: "failure".into(),
                detail: None,
            })
            .await
            .unwrap();
        let recent = db.repos.audit.recent(1).await.unwrap();
        assert_eq!(recent[0].user_agent.as_deref(), Some(text));
    }
    assert!(db.repos.users.list().await.is_ok(), "users table intact");
}

#[tokio::test]
async fn a_second_grant_with_the_same_id_is_a_conflict() {
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    let g = grant("g1", &user.id, &client, NOW);
    db.repos.tokens.create_grant(&g).await.unwrap();
    let again = db.repos.tokens.create_grant(&g).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
}

#[tokio::test]
async fn profiles_and_requested_claims_are_stored_whole() {
    use crate::domain::{Address, Profile, RequestedClaims};
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    let mut changed = user.clone();
    changed.name = Some("Alice Liddell".into());
    changed.profile = Profile {
        given_name: Some("Alice".into()),
        birthdate: Some("0000-05-04".into()),
        phone_number: Some("+441234567890".into()),
        phone_number_verified: true,
        address: Some(Address {
            locality: Some("Oxford".into()),
            country: Some("GB".into()),
            ..Address::default()
        }),
        ..Profile::default()
    };
    let stored = db.repos.users.update(&changed, NOW + 5).await.unwrap();
    assert_eq!(stored.updated_at, NOW + 5);
    let read = db.repos.users.by_id(&user.id).await.unwrap().unwrap();
    assert_eq!(read, stored);
    assert_eq!(read.profile, changed.profile);

    // A taken email is a conflict naming it.
    let other = db.repos.users.create(&new_user("bob"), NOW).await.unwrap();
    let mut clash = other.clone();
    clash.email = user.email.clone();
    let e = db.repos.users.update(&clash, NOW).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::Conflict(m) if m.starts_with("email")),
        "{e:?}"
    );

    let mut g = grant("g1", &user.id, &client, NOW);
    g.claims = Some(RequestedClaims {
        userinfo: vec!["given_name".into()],
        id_token: vec!["email".into()],
    });
    db.repos
        .tokens
        .save_issued(new_grant_with_access(&g, "a1"))
        .await
        .unwrap();
    let read = db.repos.tokens.grant("g1").await.unwrap().unwrap();
    assert_eq!(read.claims, g.claims);
    let t = db.repos.tokens.token("a1").await.unwrap().unwrap();
    assert_eq!(t.claims, g.claims);
}

#[tokio::test]
async fn invitations_are_found_by_their_token_hash_and_revoked_once() {
    use crate::domain::{Invitation, InvitationStatus};
    let db = db().await;
    let invitation = Invitation {
        id: "i1".into(),
        username: Some("dana".into()),
        email: Some("dana@example.com".into()),
        name: None,
        groups: vec!["staff".into(), "wiki".into()],
        is_admin: true,
        uses: 1,
        used: 0,
        created_by: "cli".into(),
        created_at: NOW,
        expires_at: NOW + 3600,
        revoked_at: None,
        emailed: false,
    };
    let inv = &db.repos.invitations;
    inv.create(&invitation, "hash-1").await.unwrap();
    assert_eq!(
        inv.by_token_hash("hash-1").await.unwrap(),
        Some(invitation.clone())
    );
    assert_eq!(inv.by_token_hash("hash-2").await.unwrap(), None);
    let again = inv.create(&invitation, "hash-3").await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert_eq!(invitation.status(NOW), InvitationStatus::Pending);
    assert_eq!(invitation.status(NOW + 3600), InvitationStatus::Expired);

    inv.revoke("i1", NOW + 5).await.unwrap();
    inv.revoke("i1", NOW + 9).await.unwrap();
    let revoked = inv.get("i1").await.unwrap().unwrap();
    assert_eq!(
        revoked.revoked_at,
        Some(NOW + 5),
        "the first revocation time is kept"
    );
    assert_eq!(revoked.status(NOW + 6), InvitationStatus::Revoked);
    assert!(matches!(
        inv.revoke("nope", NOW).await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert_eq!(inv.list().await.unwrap().len(), 1);
}
