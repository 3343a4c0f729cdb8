//! Operator actions (shared by the CLI and the admin UI): every action is audited with its
//! actor, and the last active administrator is kept.

use crate::helpers::TestApp;
use keyway::domain::{NewUser, SigningAlg};
use keyway::oidc::clients::ClientSpec;
use keyway::ops::{Actor, CreateUser, Operator, OpsError};
use std::sync::Arc;

fn operator(app: &TestApp, actor: Actor) -> Operator {
    Operator::new(
        app.state.repos.clone(),
        Arc::new(app.clock.clone()),
        app.state.auth.hasher.clone(),
        actor,
    )
}

fn new_user(name: &str, admin: bool) -> CreateUser {
    CreateUser {
        user: NewUser {
            username: name.into(),
            email: None,
            name: None,
            is_admin: admin,
        },
        password: None,
    }
}

#[tokio::test]
async fn every_action_is_audited_with_its_actor() {
    let app = TestApp::spawn().await;
    let admin = operator(
        &app,
        Actor::Admin {
            user_id: "u-admin".into(),
        },
    );
    let bob = admin.create_user(new_user("bob", false)).await.unwrap();
    admin.disable_user("bob").await.unwrap();
    let (client, _) = admin
        .create_client(ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            public: false,
            grant_types: vec![],
            scopes: vec![],
            first_party: false,
            id_token_alg: SigningAlg::ES256,
            refresh_always: false,
            require_passkey: false,
            allow_magic_link: true,
            ..ClientSpec::default()
        })
        .await
        .unwrap();
    admin.delete_client(&client.id).await.unwrap();
    let audit = app.state.repos.audit.recent(20).await.unwrap();
    for (event, user, client_id) in [
        ("user.create", Some(bob.id.as_str()), None),
        ("user.disable", Some(bob.id.as_str()), None),
        ("client.create", None, Some(client.id.as_str())),
        ("client.delete", None, Some(client.id.as_str())),
    ] {
        let e = audit
            .iter()
            .find(|e| e.event == event)
            .unwrap_or_else(|| panic!("no {event} in {audit:?}"));
        assert_eq!(e.user_id.as_deref(), user, "{event}");
        assert_eq!(e.client_id.as_deref(), client_id, "{event}");
        assert_eq!(e.detail.as_deref(), Some("by admin u-admin"), "{event}");
    }
}

#[tokio::test]
async fn the_last_active_administrator_cannot_be_disabled() {
    let app = TestApp::spawn().await;
    let cli = operator(&app, Actor::Cli);
    cli.create_user(new_user("root", true)).await.unwrap();
    let refused = cli.disable_user("root").await.unwrap_err();
    assert!(matches!(refused, OpsError::Refused(_)), "{refused:?}");
    // With a second administrator, the first may go.
    cli.create_user(new_user("root2", true)).await.unwrap();
    assert!(cli.disable_user("root").await.unwrap().disabled);
    assert!(matches!(
        cli.disable_user("root2").await.unwrap_err(),
        OpsError::Refused(_)
    ));
}

#[tokio::test]
async fn a_taken_username_or_email_is_a_conflict_not_a_failure() {
    let app = TestApp::spawn().await;
    let cli = operator(&app, Actor::Cli);
    let mut first = new_user("dana", false);
    first.user.email = Some("dana@example.com".into());
    cli.create_user(first.clone()).await.unwrap();
    let again = cli.create_user(new_user("DANA", false)).await.unwrap_err();
    assert!(
        matches!(&again, OpsError::Conflict(what) if what.contains("DANA")),
        "{again:?}"
    );
    let mut same_email = new_user("dana2", false);
    same_email.user.email = Some("dana@example.com".into());
    let e = cli.create_user(same_email).await.unwrap_err();
    assert!(
        matches!(&e, OpsError::Conflict(what) if what.contains("dana@example.com")),
        "{e:?}"
    );
}
