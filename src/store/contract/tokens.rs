//! The contract for tokens: issuing in one commit, conflicts that fail alone, refresh rotation
//! with its grace and replay rules, revocation, and the per-user cap.

use super::{NOW, db, grant, token, user_and_client};
use crate::domain::{Grant, StoredToken, TokenKind};
use crate::store::{Issued, RefreshRotation, Repos, StoreError};

pub(super) fn new_grant_with_access(g: &Grant, hash: &str) -> Issued {
    Issued {
        grant: Some(g.clone()),
        tokens: vec![token(hash, TokenKind::Access, g)],
        audit: None,
    }
}

/// Redeeming a code inserts the grant whose id the code carries; a second redemption must get
/// `Conflict` and write none of its rows (this is what makes codes single-use).
#[tokio::test]
async fn issuing_under_an_existing_grant_id_conflicts_and_writes_nothing() {
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    let g = grant("g1", &user.id, &client, NOW);
    db.repos
        .tokens
        .save_issued(new_grant_with_access(&g, "first"))
        .await
        .unwrap();
    let err = db
        .repos
        .tokens
        .save_issued(new_grant_with_access(&g, "second"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(db.repos.tokens.token("first").await.unwrap().is_some());
    assert!(db.repos.tokens.token("second").await.unwrap().is_none());

    // The same statement shape, prepared and cached, works right after the failure.
    let g2 = grant("g2", &user.id, &client, NOW);
    db.repos
        .tokens
        .save_issued(new_grant_with_access(&g2, "third"))
        .await
        .unwrap();
    assert!(db.repos.tokens.token("third").await.unwrap().is_some());
}

/// Requests committed together: one conflicting request fails alone, the others are written.
#[tokio::test]
async fn a_conflict_in_a_batch_fails_only_its_own_request() {
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    let taken = grant("taken", &user.id, &client, NOW);
    db.repos.tokens.create_grant(&taken).await.unwrap();
    let issued =
        |id: &str, hash: &str| new_grant_with_access(&grant(id, &user.id, &client, NOW), hash);
    let (a, b, c) = tokio::join!(
        db.repos.tokens.save_issued(issued("ga", "ta")),
        db.repos.tokens.save_issued(issued("taken", "tb")),
        db.repos.tokens.save_issued(issued("gc", "tc")),
    );
    a.unwrap();
    assert!(matches!(b, Err(StoreError::Conflict(_))), "{b:?}");
    c.unwrap();
    assert!(db.repos.tokens.token("ta").await.unwrap().is_some());
    assert!(db.repos.tokens.token("tb").await.unwrap().is_none());
    assert!(db.repos.tokens.token("tc").await.unwrap().is_some());
}

/// A user, a client, grant `g1` between them and these tokens under it.
async fn grant_with(repos: &Repos, tokens: &[(&str, TokenKind)]) -> (Grant, String) {
    let (user, client) = user_and_client(repos).await;
    let g = grant("g1", &user.id, &client, NOW);
    repos.tokens.create_grant(&g).await.unwrap();
    let rows: Vec<StoredToken> = tokens.iter().map(|(h, k)| token(h, *k, &g)).collect();
    repos.tokens.insert_tokens(&rows).await.unwrap();
    (g, client)
}

/// The pair a rotation of `parent` writes: a refresh token `hash` and an access token.
fn pair(g: &Grant, parent: &str, hash: &str) -> Issued {
    let mut refresh = token(hash, TokenKind::Refresh, g);
    refresh.parent = Some(parent.into());
    Issued {
        grant: None,
        tokens: vec![
            refresh,
            token(&format!("{hash}-access"), TokenKind::Access, g),
        ],
        audit: None,
    }
}

#[tokio::test]
async fn refresh_rotates_once_then_within_grace_until_a_successor_is_used() {
    let db = db().await;
    let (g, client) = grant_with(
        &db.repos,
        &[("r1", TokenKind::Refresh), ("a1", TokenKind::Access)],
    )
    .await;
    let tokens = &db.repos.tokens;
    let live = |hash: &'static str| async move { tokens.token(hash).await.unwrap().is_some() };

    // Another client's presentation neither rotates nor consumes the token.
    let foreign = tokens
        .rotate_refresh("r1", "other-client", NOW + 4, 10, pair(&g, "r1", "rx"))
        .await
        .unwrap();
    assert!(matches!(foreign, RefreshRotation::Unknown), "{foreign:?}");
    assert!(!live("rx").await);
    let first = tokens
        .rotate_refresh("r1", &client, NOW + 5, 10, pair(&g, "r1", "r2"))
        .await
        .unwrap();
    assert!(
        matches!(first, RefreshRotation::Rotated { grace: false }),
        "{first:?}"
    );
    let r1 = tokens.token("r1").await.unwrap().unwrap();
    assert_eq!(r1.consumed_at, Some(NOW + 5));
    assert_eq!(
        tokens.token("r2").await.unwrap().unwrap().parent.as_deref(),
        Some("r1")
    );
    assert!(live("r2-access").await);

    // Presented again within the grace, its successor unused: another pair.
    let again = tokens
        .rotate_refresh("r1", &client, NOW + 6, 10, pair(&g, "r1", "r3"))
        .await
        .unwrap();
    assert!(
        matches!(again, RefreshRotation::Rotated { grace: true }),
        "{again:?}"
    );
    assert!(live("r3").await);
    // Without a grace it is a replay.
    let no_grace = tokens
        .rotate_refresh("r1", &client, NOW + 6, 0, pair(&g, "r1", "r4"))
        .await
        .unwrap();
    assert!(
        matches!(no_grace, RefreshRotation::Replayed(_)),
        "{no_grace:?}"
    );
    assert!(!live("r4").await, "a replay writes nothing");

    // Once a successor has been used, the old token is a replay even within the grace.
    tokens
        .rotate_refresh("r2", &client, NOW + 7, 10, pair(&g, "r2", "r5"))
        .await
        .unwrap();
    let late = tokens
        .rotate_refresh("r1", &client, NOW + 8, 10, pair(&g, "r1", "r6"))
        .await
        .unwrap();
    assert!(
        matches!(&late, RefreshRotation::Replayed(t) if t.consumed_at == Some(NOW + 5)),
        "{late:?}"
    );
    // r3, handed out within the grace beside r2, is a second branch: r2 was used, so using
    // r3 too means the family forked (one branch is stolen).
    let forked = tokens
        .rotate_refresh("r3", &client, NOW + 9, 10, pair(&g, "r3", "r7"))
        .await
        .unwrap();
    assert!(matches!(forked, RefreshRotation::Replayed(_)), "{forked:?}");
    assert!(!live("r7").await, "a replay writes nothing");
    // Past the grace, a rotated token is a replay even if nothing was issued from it since.
    let old = tokens
        .rotate_refresh("r5", &client, NOW + 100, 10, pair(&g, "r5", "r8"))
        .await
        .unwrap();
    assert!(
        matches!(old, RefreshRotation::Rotated { grace: false }),
        "{old:?}"
    );
    let past = tokens
        .rotate_refresh("r5", &client, NOW + 200, 10, pair(&g, "r5", "r9"))
        .await
        .unwrap();
    assert!(matches!(past, RefreshRotation::Replayed(_)), "{past:?}");

    // An access token is never a refresh token, whatever its hash.
    let access = tokens
        .rotate_refresh("a1", &client, NOW + 6, 10, pair(&g, "a1", "r10"))
        .await
        .unwrap();
    assert!(matches!(access, RefreshRotation::Unknown), "{access:?}");
}

#[tokio::test]
async fn a_rotation_that_cannot_write_its_pair_uses_nothing_up() {
    let db = db().await;
    let (g, client) = grant_with(
        &db.repos,
        &[("r1", TokenKind::Refresh), ("taken", TokenKind::Access)],
    )
    .await;
    // The new pair cannot be written (its access token's hash is taken): nothing is consumed.
    let mut clash = pair(&g, "r1", "r2");
    clash.tokens[1].token_hash = "taken".into();
    let err = db
        .repos
        .tokens
        .rotate_refresh("r1", &client, NOW + 5, 0, clash)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let r1 = db.repos.tokens.token("r1").await.unwrap().unwrap();
    assert_eq!(r1.consumed_at, None, "the failed exchange used nothing up");
    assert!(db.repos.tokens.token("r2").await.unwrap().is_none());
    // The retry works, even without a grace.
    let retry = db
        .repos
        .tokens
        .rotate_refresh("r1", &client, NOW + 6, 0, pair(&g, "r1", "r2"))
        .await
        .unwrap();
    assert!(
        matches!(retry, RefreshRotation::Rotated { grace: false }),
        "{retry:?}"
    );
}

#[tokio::test]
async fn revoke_grant_revokes_its_tokens() {
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    let g = grant("g1", &user.id, &client, NOW);
    let other = grant("g2", &user.id, &client, NOW);
    db.repos.tokens.create_grant(&g).await.unwrap();
    db.repos.tokens.create_grant(&other).await.unwrap();
    db.repos
        .tokens
        .insert_tokens(&[
            token("r1", TokenKind::Refresh, &g),
            token("a1", TokenKind::Access, &g),
            token("r2", TokenKind::Refresh, &other),
        ])
        .await
        .unwrap();

    db.repos.tokens.revoke_grant("g1", NOW + 10).await.unwrap();

    let revoked = db.repos.tokens.grant("g1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 10));
    for hash in ["r1", "a1"] {
        let t = db.repos.tokens.token(hash).await.unwrap().unwrap();
        assert_eq!(t.revoked_at, Some(NOW + 10), "{hash}");
    }
    let untouched = db.repos.tokens.token("r2").await.unwrap().unwrap();
    assert_eq!(untouched.revoked_at, None);
    // A revoked refresh token presented again is a replay, not a rotation.
    let again = db
        .repos
        .tokens
        .rotate_refresh("r1", &g.client_id, NOW + 11, 10, pair(&g, "r1", "rn"))
        .await
        .unwrap();
    assert!(matches!(again, RefreshRotation::Replayed(_)), "{again:?}");
}

#[tokio::test]
async fn cap_refresh_grants_revokes_the_oldest() {
    let db = db().await;
    let (user, client) = user_and_client(&db.repos).await;
    for (i, id) in ["old", "mid", "new"].into_iter().enumerate() {
        let g = grant(id, &user.id, &client, NOW + i as i64);
        db.repos.tokens.create_grant(&g).await.unwrap();
        let hash = format!("r-{id}");
        db.repos
            .tokens
            .insert_tokens(&[token(&hash, TokenKind::Refresh, &g)])
            .await
            .unwrap();
    }

    db.repos
        .tokens
        .cap_refresh_grants(&client, &user.id, 2, NOW + 100)
        .await
        .unwrap();

    let revoked = |id: &'static str| {
        let store = &db.repos.tokens;
        async move { store.grant(id).await.unwrap().unwrap().revoked_at.is_some() }
    };
    assert!(revoked("old").await);
    assert!(!revoked("mid").await);
    assert!(!revoked("new").await);
    let t = db.repos.tokens.token("r-old").await.unwrap().unwrap();
    assert_eq!(t.revoked_at, Some(NOW + 100));
}
