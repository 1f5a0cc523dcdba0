//! Settings flow, every method × every client kind (settings-flow §4, §8, §9, §12): status
//! codes, redirects, `continue_with`, success message 1050001, and the stored effect.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

/// Assert the common success response of one client kind (§4.4.2, §9.2) and return the flow.
async fn expect_success(app: &TestApp, u: &User, flow: &Value, resp: reqwest::Response) -> Value {
    let id = flow["id"].as_str().unwrap();
    let status = resp.status().as_u16();
    let cookies: Vec<String> =
        resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session_cookie = cookies.iter().any(|c| c.starts_with("ory_kratos_session="));
    let out = match u.kind {
        Kind::Browser => {
            assert_eq!(status, 303, "browser success is a 303");
            assert_eq!(location(&resp), ui_url(app, id), "browser goes back to the settings UI");
            assert!(session_cookie, "session cookie re-issued: {cookies:?}");
            u.fetch(app, id).await
        }
        Kind::Ajax => {
            assert_eq!(status, 200);
            assert!(session_cookie, "session cookie re-issued: {cookies:?}");
            let v: Value = resp.json().await.unwrap();
            let cw = v["continue_with"].as_array().expect("continue_with for AJAX");
            assert_eq!(
                cw.last().unwrap(),
                &json!({"action": "redirect_browser_to", "redirect_browser_to": ui_url(app, id)})
            );
            v
        }
        Kind::Api => {
            assert_eq!(status, 200);
            assert!(cookies.is_empty(), "no cookies for API clients: {cookies:?}");
            let v: Value = resp.json().await.unwrap();
            assert!(v.get("continue_with").is_none(), "API success without hooks has no continue_with: {v}");
            v
        }
    };
    assert_eq!(out["id"], id);
    assert_eq!(out["state"], "success");
    assert_eq!(
        out["ui"]["messages"],
        json!([{"id": 1050001, "text": "Your changes have been saved!", "type": "success"}])
    );
    assert!(!message_ids(&out).iter().any(|i| (4000000..5000000).contains(i)), "no errors: {out}");
    out
}

/// 400 flow JSON (AJAX/API) or 303 to the UI with the errors in the flow (browser).
async fn expect_invalid(app: &TestApp, u: &User, flow: &Value, resp: reqwest::Response) -> Value {
    let id = flow["id"].as_str().unwrap();
    match u.kind {
        Kind::Browser => {
            assert_eq!(resp.status(), 303);
            assert_eq!(location(&resp), ui_url(app, id));
            u.fetch(app, id).await
        }
        _ => {
            assert_eq!(resp.status(), 400);
            resp.json().await.unwrap()
        }
    }
}

/// "Return to UI" (lookup regenerate/reveal): 200 flow or 303 to the UI.
async fn expect_show_form(app: &TestApp, u: &User, flow: &Value, resp: reqwest::Response) -> Value {
    let id = flow["id"].as_str().unwrap();
    match u.kind {
        Kind::Browser => {
            assert_eq!(resp.status(), 303);
            assert_eq!(location(&resp), ui_url(app, id));
            u.fetch(app, id).await
        }
        _ => {
            assert_eq!(resp.status(), 200);
            let v: Value = resp.json().await.unwrap();
            assert!(v.get("continue_with").is_none());
            v
        }
    }
}

fn kind_type(k: Kind) -> &'static str {
    if k == Kind::Api { "api" } else { "browser" }
}

async fn profile_all_kinds(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        assert_eq!(flow["type"], kind_type(kind));
        assert_eq!(flow["state"], "show_form");
        assert_eq!(node(&flow, "traits.email").unwrap()["attributes"]["value"], u.email.as_str());
        let resp = u
            .submit(
                &app,
                &flow,
                json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Ana", "last": "Lee"}}}),
            )
            .await;
        let done = expect_success(&app, &u, &flow, resp).await;
        assert_eq!(done["identity"]["traits"]["name"]["first"], "Ana", "{kind:?}");
        assert_eq!(node(&done, "traits.name.first").unwrap()["attributes"]["value"], "Ana");
        let stored = admin_identity(&app, &u.identity_id).await;
        assert_eq!(stored["traits"]["name"], json!({"first": "Ana", "last": "Lee"}));
        // The same flow can be submitted again and stays `success` (§5.4).
        let resp = u
            .submit(&app, &done, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Bo"}}}))
            .await;
        let again = expect_success(&app, &u, &flow, resp).await;
        assert_eq!(again["identity"]["traits"]["name"], json!({"first": "Bo"}), "traits are replaced, not merged");
        // The TOTP enrolment offered on the flow survives profile saves: same secret, and the
        // same QR image while the account name in it is unchanged.
        let qr_src = |f: &Value| node(f, "totp_qr").unwrap()["attributes"]["src"].as_str().unwrap().to_string();
        assert_eq!(totp_secret(&done), totp_secret(&flow), "{kind:?}");
        assert_eq!(totp_secret(&again), totp_secret(&flow), "{kind:?}");
        assert_eq!(qr_src(&again), qr_src(&flow), "{kind:?}: the QR code shown is reused");
        let new_email = format!("renamed-{}", u.email);
        let resp = u.submit(&app, &again, json!({"method": "profile", "traits": {"email": new_email}})).await;
        let renamed = expect_success(&app, &u, &flow, resp).await;
        assert_eq!(totp_secret(&renamed), totp_secret(&flow));
        assert_ne!(qr_src(&renamed), qr_src(&flow), "{kind:?}: a new account name gets a new QR code");
        let url = node(&renamed, "totp_secret_key").unwrap()["attributes"]["text"]["context"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(url.contains(&new_email.replace('@', "%40")), "{url}");
    }
}
both_dbs!(profile_all_kinds);

async fn password_all_kinds(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let pw = group_node(&flow, "password", "password").expect("password node");
        assert_eq!(pw["attributes"]["type"], "password");
        assert_eq!(pw["attributes"]["autocomplete"], "new-password");
        assert!(pw["attributes"].get("value").is_none());
        let new_pw = "Zebra-Quartz-Lantern-77";
        let resp = u.submit(&app, &flow, json!({"method": "password", "password": new_pw})).await;
        let done = expect_success(&app, &u, &flow, resp).await;
        assert!(
            group_node(&done, "password", "password").unwrap()["attributes"].get("value").is_none(),
            "password never echoed"
        );
        assert!(!done.to_string().contains(new_pw));
        assert!(u.password_works(&app, new_pw).await, "{kind:?}: new password works");
        assert!(!u.password_works(&app, PASSWORD).await, "{kind:?}: old password is gone");
        // The current session survives the change.
        assert_eq!(u.whoami(&app).await.status(), 200);
    }
}
both_dbs!(password_all_kinds);

async fn totp_enrol_and_unlink_all_kinds(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let qr = node(&flow, "totp_qr").expect("totp_qr");
        assert_eq!(qr["type"], "img");
        assert_eq!(qr["group"], "totp");
        assert!(qr["attributes"]["src"].as_str().unwrap().starts_with("data:image/png;base64,"));
        assert_eq!(qr["meta"]["label"]["id"], 1050005);
        let sk = node(&flow, "totp_secret_key").unwrap();
        assert_eq!(sk["type"], "text");
        assert_eq!(sk["attributes"]["text"]["id"], 1050006);
        assert_eq!(sk["meta"]["label"]["id"], 1050017);
        let code_node = node(&flow, "totp_code").unwrap();
        assert_eq!(code_node["attributes"]["required"], true);
        assert_eq!(code_node["meta"]["label"]["id"], 1070006);
        assert!(group_node(&flow, "totp", "method").is_some());
        let secret = totp_secret(&flow);
        assert_eq!(secret.len(), 32);

        // Wrong code: 4000008 on totp_code, the same secret stays.
        let resp = u.submit(&app, &flow, json!({"method": "totp", "totp_code": "000000"})).await;
        let bad = expect_invalid(&app, &u, &flow, resp).await;
        assert_eq!(node_ids(&bad, "totp_code"), vec![4000008]);
        assert_eq!(totp_secret(&bad), secret, "the secret being enrolled is kept");
        // Missing code: 4000002.
        let resp = u.submit(&app, &flow, json!({"method": "totp", "totp_code": ""})).await;
        let bad = expect_invalid(&app, &u, &flow, resp).await;
        assert_eq!(node_ids(&bad, "totp_code"), vec![4000002]);

        let code = totp_code(&secret, &app.clock);
        let resp = u.submit(&app, &flow, json!({"method": "totp", "totp_code": code})).await;
        let done = expect_success(&app, &u, &flow, resp).await;
        assert!(node(&done, "totp_qr").is_none());
        let unlink = node(&done, "totp_unlink").expect("totp_unlink offered after enrolment");
        assert_eq!(unlink["attributes"]["type"], "submit");
        assert_eq!(unlink["attributes"]["value"], "true");
        assert_eq!(unlink["meta"]["label"]["id"], 1050004);
        let who: Value = u.whoami(&app).await.json().await.unwrap();
        assert_eq!(who["authenticator_assurance_level"], "aal2", "{kind:?}: enrolment upgrades the session");
        assert!(admin_identity(&app, &u.identity_id).await["credentials"]["totp"].is_object());

        // Unlink (on a new flow), `method` may be omitted.
        let flow2 = u.create(&app).await;
        let resp = u.submit(&app, &flow2, json!({"totp_unlink": true})).await;
        let done = expect_success(&app, &u, &flow2, resp).await;
        assert!(node(&done, "totp_unlink").is_none());
        assert!(node(&done, "totp_qr").is_some(), "enrolment offered again");
        // Enrol again and unlink on this same flow: the enrolment offered afterwards has a new
        // secret, never the one just removed (other sections' saves keep a pending secret).
        let enrolled = totp_secret(&done);
        app.clock.advance(60);
        let resp =
            u.submit(&app, &done, json!({"method": "totp", "totp_code": totp_code(&enrolled, &app.clock)})).await;
        let done = expect_success(&app, &u, &flow2, resp).await;
        let resp = u.submit(&app, &done, json!({"method": "totp", "totp_unlink": true})).await;
        let done = expect_success(&app, &u, &flow2, resp).await;
        assert_ne!(totp_secret(&done), enrolled, "{kind:?}: the removed secret is not offered again");
        assert!(admin_identity(&app, &u.identity_id).await["credentials"].get("totp").is_none(), "{kind:?}");
    }
}
both_dbs!(totp_enrol_and_unlink_all_kinds);

async fn lookup_secret_all_actions_all_kinds(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let regen = node(&flow, "lookup_secret_regenerate").expect("regenerate offered");
        assert_eq!(regen["group"], "lookup_secret");
        assert_eq!(regen["attributes"]["type"], "submit");
        assert_eq!(regen["meta"]["label"]["id"], 1050008);
        assert!(node(&flow, "lookup_secret_reveal").is_none());

        // Reveal without codes: 4000001 at form level.
        let resp = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_reveal": true})).await;
        let bad = expect_invalid(&app, &u, &flow, resp).await;
        assert_eq!(form_ids(&bad), vec![4000001]);

        // Confirm before regenerate: 4000001.
        let resp = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
        let bad = expect_invalid(&app, &u, &flow, resp).await;
        assert_eq!(form_ids(&bad), vec![4000001]);
        assert_eq!(bad["state"], "show_form");

        // Regenerate: not an update, the codes are shown with a confirm button.
        let resp = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
        let shown = expect_show_form(&app, &u, &flow, resp).await;
        assert_eq!(shown["state"], "show_form");
        assert!(form_ids(&shown).is_empty(), "earlier errors are cleared: {shown}");
        let codes = lookup_codes(&shown);
        assert_eq!(codes.len(), 12);
        assert!(
            codes.iter().all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())),
            "{codes:?}"
        );
        let codes_node = node(&shown, "lookup_secret_codes").unwrap();
        assert_eq!(codes_node["type"], "text");
        assert_eq!(codes_node["attributes"]["text"]["id"], 1050015);
        assert_eq!(codes_node["meta"]["label"]["id"], 1050010);
        assert_eq!(node(&shown, "lookup_secret_confirm").unwrap()["meta"]["label"]["id"], 1050011);
        assert!(
            admin_identity(&app, &u.identity_id).await["credentials"].get("lookup_secret").is_none(),
            "not stored before confirm"
        );

        // Confirm: stored, success.
        let resp = u.submit(&app, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
        let done = expect_success(&app, &u, &flow, resp).await;
        assert!(node(&done, "lookup_secret_codes").is_none(), "codes are not shown again");
        assert_eq!(node(&done, "lookup_secret_reveal").unwrap()["meta"]["label"]["id"], 1050007);
        assert_eq!(node(&done, "lookup_secret_disable").unwrap()["meta"]["label"]["id"], 1050016);
        assert!(admin_identity(&app, &u.identity_id).await["credentials"]["lookup_secret"].is_object(), "{kind:?}");

        // Reveal: back to the form (state stays success from the confirm).
        let resp = u.submit(&app, &done, json!({"method": "lookup_secret", "lookup_secret_reveal": true})).await;
        let revealed = expect_show_form(&app, &u, &flow, resp).await;
        assert!(node(&revealed, "lookup_secret_disable").is_some());
        assert!(node(&revealed, "lookup_secret_regenerate").is_some());
        assert!(message_ids(&revealed).iter().all(|i| *i < 4000000), "no errors: {revealed}");

        // Disable: credential removed, success.
        let resp = u.submit(&app, &revealed, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
        let done = expect_success(&app, &u, &flow, resp).await;
        assert!(node(&done, "lookup_secret_regenerate").is_some());
        assert!(admin_identity(&app, &u.identity_id).await["credentials"].get("lookup_secret").is_none(), "{kind:?}");
    }
}
both_dbs!(lookup_secret_all_actions_all_kinds);

/// §5 and §6: every SettingsFlow field and the node model (groups, attributes, labels).
async fn flow_object_fields_and_nodes(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let id = flow["id"].as_str().unwrap();
        let keys: Vec<&str> = flow.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["id", "type", "expires_at", "issued_at", "request_url", "ui", "identity", "state", "organization_id"],
            "{kind:?}: field order of §5.1"
        );
        assert!(flow["organization_id"].is_null());
        assert_eq!(flow["request_url"], app.url(u.init_path()));
        let issued = time::OffsetDateTime::parse(
            flow["issued_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let expires = time::OffsetDateTime::parse(
            flow["expires_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!((expires - issued).whole_seconds(), 3600, "lifespan 1h");
        assert_eq!(flow["ui"]["action"], app.url(&format!("/self-service/settings?flow={id}")));
        assert_eq!(flow["ui"]["method"], "POST");
        assert!(flow["ui"].get("messages").is_none(), "ui.messages omitted when empty");
        let identity = &flow["identity"];
        assert_eq!(identity["id"], u.identity_id.as_str());
        assert!(identity.get("credentials").is_none());
        assert!(identity.get("metadata_admin").is_none());
        for k in [
            "schema_id",
            "schema_url",
            "state",
            "traits",
            "metadata_public",
            "created_at",
            "updated_at",
            "organization_id",
        ] {
            assert!(identity.get(k).is_some(), "identity.{k}");
        }
        let nodes = flow["ui"]["nodes"].as_array().unwrap();
        for n in nodes {
            for k in ["type", "group", "attributes", "messages", "meta"] {
                assert!(n.get(k).is_some(), "node field {k}: {n}");
            }
            assert_eq!(n["attributes"]["node_type"], n["type"]);
            assert!(n["messages"].is_array());
            if n["type"] == "input" {
                assert!(n["attributes"]["disabled"].is_boolean(), "{n}");
            }
        }
        // First node: csrf_token (group default, hidden, required); "" for API flows.
        let c = &nodes[0];
        assert_eq!((c["group"].as_str(), c["attributes"]["name"].as_str()), (Some("default"), Some("csrf_token")));
        assert_eq!(c["attributes"]["type"], "hidden");
        assert_eq!(c["attributes"]["required"], true);
        if kind == Kind::Api {
            assert_eq!(c["attributes"]["value"], "");
        } else {
            assert_eq!(c["attributes"]["value"].as_str().unwrap().len(), 88, "masked token");
        }
        let email = node(&flow, "traits.email").unwrap();
        assert_eq!(email["group"], "profile");
        assert_eq!(email["attributes"]["type"], "email");
        assert_eq!(email["attributes"]["autocomplete"], "email");
        assert_eq!(email["attributes"]["required"], true);
        assert_eq!(
            email["meta"]["label"],
            json!({"id": 1070002, "text": "E-Mail", "type": "info", "context": {"title": "E-Mail", "name": "traits.email"}})
        );
        let first = node(&flow, "traits.name.first").unwrap();
        assert_eq!(first["attributes"]["type"], "text");
        assert!(first["attributes"].get("required").is_none(), "required only when true");
        for g in ["profile", "password", "totp"] {
            let m = group_node(&flow, g, "method").unwrap_or_else(|| panic!("method node of {g}"));
            assert_eq!(m["attributes"]["type"], "submit");
            assert_eq!(m["meta"]["label"], json!({"id": 1070003, "text": "Save", "type": "info"}));
        }
        assert_eq!(group_node(&flow, "password", "password").unwrap()["meta"]["label"]["id"], 1070001);
        // Group order of §6.6; `method` last inside its group.
        let rank = |g: &str| {
            ["default", "profile", "password", "oidc", "lookup_secret", "webauthn", "passkey", "totp"]
                .iter()
                .position(|x| *x == g)
                .unwrap()
        };
        let groups: Vec<usize> = nodes.iter().map(|n| rank(n["group"].as_str().unwrap())).collect();
        assert!(groups.windows(2).all(|w| w[0] <= w[1]), "nodes sorted by group: {groups:?}");
        for w in nodes.windows(2) {
            if w[0]["group"] == w[1]["group"] {
                assert_ne!(w[0]["attributes"]["name"], "method", "method is last in its group");
            }
        }
        // Fetch returns the same object (without continue_with).
        let fetched = u.fetch(&app, id).await;
        assert_eq!(fetched["id"], flow["id"]);
        assert!(fetched.get("continue_with").is_none());
    }
}
both_dbs!(flow_object_fields_and_nodes);

/// §4.4 success headers: JSON content type; and §4.3: fetch without a session.
async fn no_session_and_headers(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let id = flow["id"].as_str().unwrap();
    let c = api_client();
    // Create without a session: 401 session_inactive (API); AJAX 401; browser 303 to login.
    let r = c.get(app.url("/self-service/settings/api")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_id(&v), "session_inactive");
    assert_eq!(
        v["error"]["reason"],
        "This endpoint can only be accessed with a valid session. Please log in and try again."
    );
    let r = c.get(app.url("/self-service/settings/browser")).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_id(&r.json::<Value>().await.unwrap()), "session_inactive");
    let r = c.get(app.url("/self-service/settings/browser?return_to=http%3A%2F%2F127.0.0.1%2Fx")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        format!("{}/self-service/login/browser?return_to={}", app.public, form_encode("http://127.0.0.1/x"))
    );
    // Fetch/submit without a session: JSON → 401 without id; otherwise 302 to the login UI.
    let r = c
        .get(app.url(&format!("/self-service/settings/flows?id={id}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["ory-error-id"], "");
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].get("id").is_none());
    assert_eq!(v["error"]["reason"], "A valid Ory Session Cookie or Ory Session Token is missing.");
    let r = c.get(app.url(&format!("/self-service/settings/flows?id={id}"))).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{}/ui/login", app.public));
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={id}")))
        .json(&json!({"method": "profile"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "Content-Type: application/json counts as a JSON request");
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={id}")))
        .form(&[("method", "profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    // Unknown / malformed ids.
    let r = u.get(&app.url(&format!("/self-service/settings/flows?id={}", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["message"], "Unable to locate the resource");
    let r = u.get(&app.url("/self-service/settings/flows?id=nope")).send().await.unwrap();
    assert_eq!(r.status(), 404, "a malformed id is not found (§4.3 step 1)");
    let r = u.submit_raw(&app, &uuid::Uuid::new_v4().to_string(), json!({"method": "profile"})).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["reason"],
        "The settings request could not be found. Please restart the flow."
    );
    let r = u
        .req(reqwest::Method::POST, &app.url("/self-service/settings?flow=nope"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["reason"],
        "The flow query parameter is missing or malformed."
    );
    // Content types: JSON bodies for flows, JSON error bodies with Ory-Error-Id.
    let r = u.get(&app.url(&format!("/self-service/settings/flows?id={id}"))).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
}
both_dbs!(no_session_and_headers);
