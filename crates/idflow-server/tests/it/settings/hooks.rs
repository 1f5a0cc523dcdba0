//! Settings hooks (settings-flow §16): `revoke_active_sessions` after password changes and
//! `web_hook` after profile changes (delivered, failing after the save, interrupting).

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

/// `selfservice.flows.settings.after.method_mut(idflow_core::model::MethodId::Profile).hooks` from YAML, as an operator writes it.
fn profile_hooks(yaml: &str) -> impl FnOnce(&mut idflow_core::config::Config) {
    let hooks: Vec<idflow_core::config::Hook> = serde_yaml_ng::from_str(yaml).unwrap();
    move |c| c.selfservice.flows.settings.after.method_mut(idflow_core::model::MethodId::Profile).hooks = Some(hooks)
}

async fn revoke_active_sessions_after_password(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let other = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
        let whoami_other = || async {
            api_client()
                .get(app.url("/sessions/whoami"))
                .header("X-Session-Token", &other)
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(whoami_other().await, 200);
        let flow = u.create(&app).await;
        // A profile change revokes nothing.
        let r = u
            .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "P"}}}))
            .await;
        assert!(r.status() == 200 || r.status() == 303);
        assert_eq!(whoami_other().await, 200);
        let r = u.submit(&app, &flow, json!({"method": "password", "password": "Granite-Sparrow-Tulip-18"})).await;
        assert!(r.status() == 200 || r.status() == 303, "{kind:?}");
        assert_eq!(whoami_other().await, 401, "{kind:?}: the other session is revoked");
        assert_eq!(u.whoami(&app).await.status(), 200, "{kind:?}: the current session survives");
    }
}
both_dbs!(revoke_active_sessions_after_password);

async fn revoke_active_sessions_can_be_turned_off(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.after.method_mut(idflow_core::model::MethodId::Password).hooks = Some(vec![])
    })
    .await;
    let u = user(&app, Kind::Api).await;
    let other = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "password", "password": "Granite-Sparrow-Tulip-18"})).await;
    assert_eq!(r.status(), 200);
    let st =
        api_client().get(app.url("/sessions/whoami")).header("X-Session-Token", &other).send().await.unwrap().status();
    assert_eq!(st, 200, "without the hook other sessions stay");
}
both_dbs!(revoke_active_sessions_can_be_turned_off);

async fn web_hook_receives_identity(db: Db) {
    let (url, got) = receiver(200).await;
    let app =
        spawn_app_with(db, profile_hooks(&format!("- hook: web_hook\n  config: {{url: \"{url}\", timeout: 1s}}\n")))
            .await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let r = u
            .submit(
                &app,
                &flow,
                json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Hooked"}}}),
            )
            .await;
        assert!(r.status() == 200 || r.status() == 303, "{kind:?}");
        if kind == Kind::Api {
            let v: Value = r.json().await.unwrap();
            assert!(v.get("continue_with").is_none(), "a delivered hook adds nothing: {v}");
        }
        let calls = got.lock().unwrap().clone();
        let call = calls.last().expect("the hook was called");
        assert_eq!(call["identity"]["id"], u.identity_id.as_str());
        assert_eq!(call["identity"]["traits"]["name"]["first"], "Hooked", "the updated identity");
        assert_eq!(call["identity"]["traits"]["email"], u.email.as_str());
        assert_eq!(call["flow_id"], flow["id"]);
        assert_eq!(call["method"], "profile");
        assert!(call["identity"].get("credentials").is_none(), "no credentials in hook payloads");
        // Password changes do not run profile hooks.
        let n = calls.len();
        let r = u.submit(&app, &flow, json!({"method": "password", "password": "Granite-Sparrow-Tulip-18"})).await;
        assert!(r.status() == 200 || r.status() == 303);
        assert_eq!(got.lock().unwrap().len(), n);
    }
}
both_dbs!(web_hook_receives_identity);

async fn failing_web_hook_after_save(db: Db) {
    let url = unreachable_url();
    let app =
        spawn_app_with(db, profile_hooks(&format!("- hook: web_hook\n  config: {{url: \"{url}\", timeout: 1s}}\n")))
            .await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let r = u
            .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Saved"}}}))
            .await;
        match kind {
            Kind::Browser => assert_eq!(r.status(), 303),
            _ => {
                assert_eq!(r.status(), 200, "{kind:?}");
                let v: Value = r.json().await.unwrap();
                let cw = v["continue_with"].as_array().expect("continue_with");
                let failed = cw.iter().find(|c| c["action"] == "web_hook_failed").expect("web_hook_failed item");
                assert!(failed["reason"].as_str().unwrap().contains("could not be reached"), "{failed}");
                if kind == Kind::Ajax {
                    assert_eq!(cw.last().unwrap()["action"], "redirect_browser_to", "redirect stays last");
                }
            }
        }
        assert_eq!(
            admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"],
            "Saved",
            "{kind:?}: the change is saved"
        );
    }
}
both_dbs!(failing_web_hook_after_save);

async fn interrupting_web_hook_blocks_the_change(db: Db) {
    let (url, got) = receiver(500).await;
    let app = spawn_app_with(
        db,
        profile_hooks(&format!("- hook: web_hook\n  config: {{url: \"{url}\", timeout: 1s, can_interrupt: true}}\n")),
    )
    .await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let r = u
            .submit(
                &app,
                &flow,
                json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Blocked"}}}),
            )
            .await;
        let f = match kind {
            Kind::Browser => {
                assert_eq!(r.status(), 303);
                assert_eq!(location(&r), ui_url(&app, flow["id"].as_str().unwrap()));
                u.fetch(&app, flow["id"].as_str().unwrap()).await
            }
            _ => {
                assert_eq!(r.status(), 400, "{kind:?}");
                r.json().await.unwrap()
            }
        };
        assert_eq!(form_ids(&f), vec![4000001], "{f}");
        assert_eq!(f["state"], "show_form");
        assert!(!got.lock().unwrap().is_empty(), "the hook saw the attempt");
        assert_ne!(
            admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"],
            "Blocked",
            "{kind:?}: nothing saved"
        );
        // Other methods are not affected by the profile hook.
        let r = u.submit(&app, &flow, json!({"method": "password", "password": "Granite-Sparrow-Tulip-18"})).await;
        assert!(r.status() == 200 || r.status() == 303);
    }
}
both_dbs!(interrupting_web_hook_blocks_the_change);
