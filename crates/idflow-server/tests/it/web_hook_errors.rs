//! A failing `web_hook` never shows its URL (which may carry a token in its query) to the end
//! user: neither in `continue_with` (hook after the save) nor in the form error (interrupting
//! hook).

use crate::both_dbs;
use crate::support::*;
use serde_json::json;

/// An unreachable loopback hook URL with a secret in its query.
fn secret_hook_url() -> (String, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    (format!("http://127.0.0.1:{port}/hook?token=hook-secret-q"), format!(":{port}"))
}

async fn web_hook_failure_hides_the_url(db: Db) {
    let (url, port) = secret_hook_url();
    for interrupt in [false, true] {
        let yaml = format!("- hook: web_hook\n  config: {{url: \"{url}\", timeout: 2s, can_interrupt: {interrupt}}}\n");
        let hooks: Vec<idflow_core::config::Hook> = serde_yaml_ng::from_str(&yaml).unwrap();
        let app = spawn_app_with(db, move |c| {
            c.selfservice.flows.settings.after.method_mut(idflow_core::model::MethodId::Profile).hooks = Some(hooks)
        })
        .await;
        for kind in [Kind::Ajax, Kind::Api] {
            let u = user(&app, kind).await;
            let flow = u.create(&app).await;
            let r = u
                .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "H"}}}))
                .await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(
                body.contains("web hook"),
                "{kind:?} interrupt={interrupt}: the failure is reported: {status} {body}"
            );
            assert!(!body.contains("hook-secret-q"), "{kind:?} interrupt={interrupt}: no query in {body}");
            assert!(!body.contains(&port), "{kind:?} interrupt={interrupt}: no URL in {body}");
            assert!(!body.contains("/hook"), "{kind:?} interrupt={interrupt}: no URL in {body}");
        }
    }
}
both_dbs!(web_hook_failure_hides_the_url);
