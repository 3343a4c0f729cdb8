//! Keys on a schedule (`keys.rotate_every`: the same pre-published rotation, done by the server)
//! and what the dashboard counts and warns about.

use crate::admin::{admin_page, person};
use crate::cli::{Keyway, one_line_error};
use crate::helpers::TestApp;
use keyway::store::KeyState;

#[tokio::test]
async fn keys_rotate_on_their_schedule_with_prepublication() {
    let app = TestApp::spawn_with(|c| c.keys.rotate_every = 2 * 86400).await;
    keyway::app::rotate_if_due(&app.state).await.unwrap();
    assert_eq!(
        app.state.repos.keys.list().await.unwrap().len(),
        3,
        "not due yet"
    );
    app.clock.advance(2 * 86400);
    keyway::app::rotate_if_due(&app.state).await.unwrap();
    let keys = app.state.repos.keys.list().await.unwrap();
    let now = app.clock_now();
    assert_eq!(keys.len(), 6);
    assert_eq!(
        keys.iter()
            .filter(|k| k.state(now) == KeyState::Next)
            .count(),
        3,
        "the new keys wait keys.prepublish before they sign"
    );
    keyway::app::rotate_if_due(&app.state).await.unwrap();
    assert_eq!(app.state.repos.keys.list().await.unwrap().len(), 6, "once");
    let audit = app.state.repos.audit.recent(20).await.unwrap();
    let rotated = audit.iter().find(|e| e.event == "keys.rotate").unwrap();
    assert_eq!(rotated.detail.as_deref(), Some("automatically"));
    let admin = person(&app, "ada", true).await;
    let page = admin_page(&app, &admin, "/admin/keys").await;
    assert!(page.contains("Automatic rotation every 2 days"), "{page}");
}

#[tokio::test]
async fn the_dashboard_counts_sessions_and_warns_of_old_keys() {
    let app = TestApp::spawn().await;
    let admin = person(&app, "ada", true).await;
    let _bob = person(&app, "bob", true).await;
    let page = admin_page(&app, &admin, "/admin").await;
    assert!(
        page.contains("<strong>2</strong><span>Signed-in sessions</span>"),
        "{page}"
    );
    assert!(!page.contains("90 days old"), "{page}");
    // Three months on, without automatic rotation.
    app.clock.advance(91 * 86400);
    let admin = person(&app, "cy", true).await;
    let page = admin_page(&app, &admin, "/admin").await;
    assert!(page.contains("more than 90 days old"), "{page}");
    assert!(
        page.contains("<strong>1</strong><span>Signed-in sessions</span>"),
        "the old sessions have expired: {page}"
    );
}

#[test]
fn a_rotation_schedule_shorter_than_the_prepublication_is_refused() {
    let k = Keyway::new();
    let out = k
        .cmd()
        .env("KEYWAY_KEYS__ROTATE_EVERY", "3600")
        .args(["user", "list"])
        .output()
        .unwrap();
    let e = one_line_error(&out);
    assert!(e.contains("keys.rotate_every"), "{e}");
}
