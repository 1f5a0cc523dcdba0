//! Security keys (`webauthn`) and passkeys (`passkey`) end to end, with the software
//! authenticator of `support::softkey`: settings registration/removal, aal2 step-up,
//! passwordless passkey login, and the failure paths (duplicates, wrong origin, counter
//! regression, unparsable responses) that must be form errors, never 500s.

use crate::both_dbs;
use crate::support::softkey::*;
use crate::support::*;
use idflow_core::config::RelyingParty;
use idflow_core::model::CredentialType;
use idflow_core::store::Commit;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// A server whose relying party is `localhost` (WebAuthn refuses IP addresses) with the origin
/// `http://localhost:<public port>`; returns the app and that origin.
async fn spawn(db: Db) -> (TestApp, String) {
    spawn_with(db, |_| {}).await
}

async fn spawn_with(db: Db, tweak: impl FnOnce(&mut idflow_core::config::Config)) -> (TestApp, String) {
    let mut origin = String::new();
    let app = spawn_app_with(db, |cfg| {
        origin = format!("http://localhost:{}", cfg.serve.public.port.unwrap());
        let rp = RelyingParty { id: Some("localhost".into()), origins: vec![origin.clone()], ..Default::default() };
        cfg.selfservice.methods.webauthn.config.rp = rp.clone();
        cfg.selfservice.methods.passkey.config.rp = rp;
        tweak(cfg);
    })
    .await;
    (app, origin)
}

/// A browser (cookie jar) talking JSON (AJAX).
struct Browser {
    c: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        Browser { c: browser_client() }
    }

    async fn get(&self, url: &str) -> (u16, Value) {
        let r = self.c.get(url).header(ACCEPT, "application/json").send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, url: &str, body: Value) -> (u16, Value) {
        let r = self.c.post(url).header(ACCEPT, "application/json").json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn login_flow(&self, app: &TestApp, query: &str) -> Value {
        let (s, f) = self.get(&app.url(&format!("/self-service/login/browser{query}"))).await;
        assert_eq!(s, 200, "{f}");
        f
    }

    async fn submit_login(&self, app: &TestApp, flow: &Value, mut body: Value) -> (u16, Value) {
        body["csrf_token"] = json!(csrf(flow));
        self.post(&app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())), body).await
    }

    async fn password_login(&self, app: &TestApp, email: &str) -> (u16, Value) {
        let f = self.login_flow(app, "").await;
        self.submit_login(app, &f, json!({"method": "password", "identifier": email, "password": PASSWORD})).await
    }

    async fn settings(&self, app: &TestApp) -> Value {
        let (s, f) = self.get(&app.url("/self-service/settings/browser")).await;
        assert_eq!(s, 200, "{f}");
        f
    }

    async fn fetch_settings(&self, app: &TestApp, id: &str) -> Value {
        let (s, f) = self.get(&app.url(&format!("/self-service/settings/flows?id={id}"))).await;
        assert_eq!(s, 200, "{f}");
        f
    }

    async fn submit_settings(&self, app: &TestApp, flow: &Value, mut body: Value) -> (u16, Value) {
        body["csrf_token"] = json!(csrf(flow));
        self.post(&app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())), body).await
    }

    async fn whoami(&self, app: &TestApp) -> (u16, Value) {
        self.get(&app.url("/sessions/whoami")).await
    }
}

/// A registered user signed in with a browser (password, aal1).
async fn signed_in(app: &TestApp) -> (Browser, String, String) {
    let (email, _, id) = app.user().await;
    let b = Browser::new();
    let (s, body) = b.password_login(app, &email).await;
    assert_eq!(s, 200, "{body}");
    (b, email, id)
}

fn nodes_named<'a>(flow: &'a Value, name: &str) -> Vec<&'a Value> {
    flow["ui"]["nodes"].as_array().unwrap().iter().filter(|n| n["attributes"]["name"] == name).collect()
}

fn methods(session: &Value) -> Vec<String> {
    session["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_string())
        .collect()
}

/// Register a security key through the settings flow; returns the flow after success.
async fn register_security_key(app: &TestApp, b: &Browser, key: &mut SoftAuthenticator, name: &str) -> Value {
    let flow = b.settings(app).await;
    let options = value_json(&flow, "webauthn_register_trigger");
    let response = key.create(&options).unwrap();
    let (s, done) = b
        .submit_settings(
            app,
            &flow,
            json!({"method": "webauthn", "webauthn_register": response, "webauthn_register_displayname": name}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["state"], "success");
    done
}

async fn security_key_lifecycle(db: Db) {
    let (app, origin) = spawn(db).await;
    let (b, email, identity_id) = signed_in(&app).await;
    let mut key = SoftAuthenticator::new(&origin);
    key.uv = false; // a plain security key: presence only

    // The settings form offers the registration (browser flow) and the helper script.
    let flow = b.settings(&app).await;
    let trigger = node(&flow, "webauthn_register_trigger").unwrap();
    assert_eq!(trigger["group"], "webauthn");
    assert_eq!(trigger["attributes"]["type"], "button");
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryWebAuthnRegistration");
    assert!(trigger["attributes"]["onclick"].as_str().unwrap().starts_with("window.oryWebAuthnRegistration({"));
    assert_eq!(trigger["meta"]["label"]["id"], 1050012);
    assert_eq!(node(&flow, "webauthn_register_displayname").unwrap()["meta"]["label"]["id"], 1050013);
    assert_eq!(node(&flow, "webauthn_register").unwrap()["attributes"]["type"], "hidden");
    let script = node(&flow, "webauthn_script").unwrap();
    assert_eq!(script["attributes"]["src"], format!("{}/.well-known/ory/webauthn.js", app.engine.base()));
    let options = value_json(&flow, "webauthn_register_trigger");
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(options["publicKey"]["user"]["name"], email);
    assert!(options["publicKey"]["excludeCredentials"].as_array().is_none_or(Vec::is_empty));

    // Missing display name → 4000002; unparsable response → 4000001 (both form errors).
    let (s, f) = b.submit_settings(&app, &flow, json!({"method": "webauthn", "webauthn_register": "{}"})).await;
    assert_eq!(s, 400, "{f}");
    assert_eq!(node(&f, "webauthn_register_displayname").unwrap()["messages"][0]["id"], 4000002);
    let (s, f) = b
        .submit_settings(
            &app,
            &f,
            json!({"method": "webauthn", "webauthn_register": "not json", "webauthn_register_displayname": "x"}),
        )
        .await;
    assert_eq!(s, 400, "{f}");
    let m = &node(&f, "webauthn_register").unwrap()["messages"][0];
    assert_eq!(m["id"], 4000001);
    assert!(m["text"].as_str().unwrap().starts_with("Unable to parse WebAuthn response"), "{m}");

    // A response made on another origin is refused as a form error, not a 500.
    let mut evil = SoftAuthenticator::new("http://localhost.evil.example");
    let opts = value_json(&f, "webauthn_register_trigger");
    let resp = evil.create(&opts).unwrap();
    let (s, f) = b
        .submit_settings(
            &app,
            &f,
            json!({"method": "webauthn", "webauthn_register": resp, "webauthn_register_displayname": "evil"}),
        )
        .await;
    assert_eq!(s, 400, "{f}");
    assert!(message_ids(&f).contains(&4000001), "{f}");
    assert!(message_texts(&f).iter().any(|t| t.contains("origin")), "{f}");

    // Register for real.
    let done = register_security_key(&app, &b, &mut key, "YubiKey 5").await;
    let removes = nodes_named(&done, "webauthn_remove");
    assert_eq!(removes.len(), 1, "{done}");
    let hex_id = hex::encode(&key.creds[0].id);
    assert_eq!(removes[0]["attributes"]["value"], hex_id);
    assert_eq!(removes[0]["meta"]["label"]["id"], 1050018);
    assert_eq!(removes[0]["meta"]["label"]["text"], "Remove security key \"YubiKey 5\"");
    assert_eq!(removes[0]["meta"]["label"]["context"]["display_name"], "YubiKey 5");
    assert_eq!(removes[0]["attributes"]["disabled"], false);
    // The session gained the method and is aal2 now (password + security key).
    let (s, who) = b.whoami(&app).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["authenticator_assurance_level"], "aal2");
    assert!(methods(&who).contains(&"webauthn".to_string()), "{who}");

    // New options exclude the registered key; registering it again is a form error.
    let flow = b.settings(&app).await;
    let options = value_json(&flow, "webauthn_register_trigger");
    let excluded: Vec<&str> = options["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(excluded, vec![b64u(&key.creds[0].id)]);
    assert!(key.create(&options).is_err(), "an honest authenticator refuses an excluded credential");
    let again = key.create_again(&options, 0);
    let (s, f) = b
        .submit_settings(
            &app,
            &flow,
            json!({"method": "webauthn", "webauthn_register": again, "webauthn_register_displayname": "twice"}),
        )
        .await;
    assert_eq!(s, 400, "{f}");
    let m = &node(&f, "webauthn_register").unwrap()["messages"][0];
    assert_eq!(m["id"], 4000001);
    assert!(m["text"].as_str().unwrap().contains("already registered"), "{m}");

    // A fresh password login is aal1 and must step up with the key.
    let b2 = Browser::new();
    let (s, e) = b2.password_login(&app, &email).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["id"], "browser_location_change_required");
    let flow = b2.login_flow(&app, "?aal=aal2").await;
    let trigger = node(&flow, "webauthn_login_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryWebAuthnLogin");
    assert_eq!(trigger["meta"]["label"]["id"], 1010008);
    assert!(node(&flow, "webauthn_login").is_some());
    assert!(node(&flow, "webauthn_script").is_some());
    let options = value_json(&flow, "webauthn_login_trigger");
    let allowed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, vec![b64u(&key.creds[0].id)]);

    // Cross-origin assertion: form error, and the form gets a fresh challenge.
    let bad = key.assert_with(&options, 0, 1, Some("http://evil.example"));
    let (s, f) = b2.submit_login(&app, &flow, json!({"method": "webauthn", "webauthn_login": bad})).await;
    assert_eq!(s, 400, "{f}");
    assert!(message_ids(&f).contains(&4000001), "{f}");
    let options2 = value_json(&f, "webauthn_login_trigger");
    assert_ne!(options2["publicKey"]["challenge"], options["publicKey"]["challenge"]);
    // Replaying a response to the old challenge fails too.
    let stale = key.assert_with(&options, 0, 2, None);
    let (s, f) = b2.submit_login(&app, &f, json!({"method": "webauthn", "webauthn_login": stale})).await;
    assert_eq!(s, 400, "{f}");

    let options = value_json(&f, "webauthn_login_trigger");
    let good = key.get(&options).unwrap();
    let (s, done) = b2.submit_login(&app, &f, json!({"method": "webauthn", "webauthn_login": good})).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
    assert!(methods(&done["session"]).contains(&"webauthn".to_string()));
    let (s, who) = b2.whoami(&app).await;
    assert_eq!(s, 200, "{who}");

    // The stored counter moved; an assertion with a lower-or-equal counter is refused.
    let stored = app.engine.store.get_identity(identity_id.parse().unwrap()).await.unwrap().unwrap();
    let keys = &stored.credentials[&CredentialType::Webauthn].config["credentials"];
    assert_eq!(keys[0]["authenticator"]["sign_count"], json!(key.creds[0].counter));
    let b3 = Browser::new();
    let (s, _) = b3.password_login(&app, &email).await;
    assert_eq!(s, 422);
    let flow = b3.login_flow(&app, "?aal=aal2").await;
    let options = value_json(&flow, "webauthn_login_trigger");
    let cloned = key.assert_with(&options, 0, key.creds[0].counter, None);
    let (s, f) = b3.submit_login(&app, &flow, json!({"method": "webauthn", "webauthn_login": cloned})).await;
    assert_eq!(s, 400, "{f}");
    assert!(message_texts(&f).iter().any(|t| t.contains("cloned")), "{f}");
    let stored = app.engine.store.get_identity(identity_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        stored.credentials[&CredentialType::Webauthn].config["credentials"][0]["authenticator"]["clone_warning"],
        true
    );

    // Remove the key: unknown ids are form errors, the real one goes.
    let flow = b.settings(&app).await;
    let (s, f) = b.submit_settings(&app, &flow, json!({"method": "webauthn", "webauthn_remove": "abcd"})).await;
    assert_eq!(s, 400, "{f}");
    assert!(message_texts(&f).iter().any(|t| t.contains("does not exist")), "{f}");
    let (s, done) = b.submit_settings(&app, &f, json!({"method": "webauthn", "webauthn_remove": hex_id})).await;
    assert_eq!(s, 200, "{done}");
    assert!(nodes_named(&done, "webauthn_remove").is_empty());
    // The form's next registration no longer excludes the removed key.
    let options = value_json(&done, "webauthn_register_trigger");
    assert!(options["publicKey"]["excludeCredentials"].as_array().is_none_or(Vec::is_empty), "{options}");
    let stored = app.engine.store.get_identity(identity_id.parse().unwrap()).await.unwrap().unwrap();
    assert!(!stored.credentials.contains_key(&CredentialType::Webauthn));
    // Adding and removing the key were each notified to the account's address (T21).
    let notices = notifications_to(&app, &email).await;
    let subjects: Vec<&str> = notices.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["A sign-in method was removed", "A sign-in method was added"], "{notices:?}");
    assert!(notices.iter().all(|m| m["body"].as_str().unwrap().contains("security key")), "{notices:?}");
    // Without a second factor a password login is enough again.
    let (s, body) = Browser::new().password_login(&app, &email).await;
    assert_eq!(s, 200, "{body}");
}
both_dbs!(security_key_lifecycle);

async fn passkey_register_and_passwordless_login(db: Db) {
    let (app, origin) = spawn(db).await;
    let (b, email, identity_id) = signed_in(&app).await;
    let mut device = SoftAuthenticator::new(&origin);

    let flow = b.settings(&app).await;
    let trigger = node(&flow, "passkey_register_trigger").unwrap();
    assert_eq!(trigger["group"], "passkey");
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeySettingsRegistration");
    assert_eq!(trigger["attributes"]["onclick"], "window.oryPasskeySettingsRegistration()");
    assert_eq!(trigger["meta"]["label"]["id"], 1050019);
    assert!(node(&flow, "passkey_settings_register").is_some());
    // Server-side state: the flow fetched again carries the same options, and they work.
    let refetched = b.fetch_settings(&app, flow["id"].as_str().unwrap()).await;
    let create = value_json(&refetched, "passkey_create_data");
    assert_eq!(create, value_json(&flow, "passkey_create_data"));
    assert_eq!(create["displayName"], email);
    assert_eq!(create["credentialOptions"]["publicKey"]["authenticatorSelection"]["userVerification"], "required");
    let response = device.create(&create["credentialOptions"]).unwrap();
    let (s, done) =
        b.submit_settings(&app, &refetched, json!({"method": "passkey", "passkey_settings_register": response})).await;
    assert_eq!(s, 200, "{done}");
    let removes = nodes_named(&done, "passkey_remove");
    assert_eq!(removes.len(), 1, "{done}");
    assert_eq!(removes[0]["meta"]["label"]["id"], 1050020);
    assert_eq!(removes[0]["attributes"]["value"], hex::encode(&device.creds[0].id));
    // Password + passkey: removing the passkey would not lock anyone out.
    assert_eq!(removes[0]["attributes"]["disabled"], false);
    let (_, who) = b.whoami(&app).await;
    assert!(methods(&who).contains(&"passkey".to_string()), "{who}");
    assert_eq!(who["authenticator_assurance_level"], "aal1");
    // The next registrations (passkeys and security keys alike) exclude it.
    let create = value_json(&done, "passkey_create_data");
    assert_eq!(create["credentialOptions"]["publicKey"]["excludeCredentials"][0]["id"], b64u(&device.creds[0].id));
    let options = value_json(&done, "webauthn_register_trigger");
    assert_eq!(options["publicKey"]["excludeCredentials"][0]["id"], b64u(&device.creds[0].id));

    // Passwordless login with the discoverable credential.
    let b2 = Browser::new();
    let flow = b2.login_flow(&app, "").await;
    let trigger = node(&flow, "passkey_login_trigger").unwrap();
    assert_eq!(trigger["attributes"]["onclickTrigger"], "oryPasskeyLogin");
    assert_eq!(trigger["meta"]["label"]["id"], 1010021);
    assert!(node(&flow, "webauthn_script").is_some());
    let challenge = value_json(&flow, "passkey_challenge");
    assert!(challenge["publicKey"]["allowCredentials"].as_array().is_none_or(Vec::is_empty));
    let assertion = device.get(&challenge).unwrap();
    let (s, done) = b2.submit_login(&app, &flow, json!({"method": "passkey", "passkey_login": assertion})).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], identity_id);
    assert_eq!(methods(&done["session"]), vec!["passkey"]);
    assert_eq!(done["session"]["authenticator_assurance_level"], "aal1");
    let (s, who) = b2.whoami(&app).await;
    assert_eq!(s, 200, "{who}");

    // Unparsable / unknown-user responses are form errors.
    let b3 = Browser::new();
    let flow = b3.login_flow(&app, "").await;
    let (s, f) = b3.submit_login(&app, &flow, json!({"method": "passkey", "passkey_login": "{\"id\": 1}"})).await;
    assert_eq!(s, 400, "{f}");
    assert!(message_ids(&f).contains(&4000001), "{f}");
    let mut stranger = SoftAuthenticator::new(&origin);
    let fake_opts = json!({"publicKey": {"rp": {"id": "localhost"}, "user": {"id": b64u(uuid::Uuid::new_v4().as_bytes())}, "challenge": "AAAA"}});
    stranger.create(&fake_opts).unwrap();
    let challenge = value_json(&f, "passkey_challenge");
    let (s, f) = b3
        .submit_login(&app, &f, json!({"method": "passkey", "passkey_login": stranger.get(&challenge).unwrap()}))
        .await;
    assert_eq!(s, 400, "{f}");
    assert!(message_texts(&f).iter().any(|t| t.contains("not registered")), "{f}");

    // Guard rail: without a password the only passkey can not be removed.
    let mut stored = app.engine.store.get_identity(identity_id.parse().unwrap()).await.unwrap().unwrap();
    stored.credentials.remove(&CredentialType::Password);
    app.engine.store.commit(Commit { update_identity: Some(&stored), ..Default::default() }).await.unwrap();
    let flow = b.settings(&app).await;
    let removes = nodes_named(&flow, "passkey_remove");
    assert_eq!(removes[0]["attributes"]["disabled"], true);
    let (s, f) = b
        .submit_settings(&app, &flow, json!({"method": "passkey", "passkey_remove": hex::encode(&device.creds[0].id)}))
        .await;
    assert_eq!(s, 400, "{f}");
    let m = &node(&f, "passkey_remove").unwrap()["messages"][0];
    assert_eq!(m["id"], 4000001);
    assert!(m["text"].as_str().unwrap().contains("lock you out"), "{m}");
    let stored = app.engine.store.get_identity(identity_id.parse().unwrap()).await.unwrap().unwrap();
    assert!(stored.credentials.contains_key(&CredentialType::Passkey));

    // The v1 dialect reports the same guard rail as AVNOLOGY_AUTH_014 (cookie auth + CSRF).
    let f: Value = b.c.get(app.url("/v1/flows/settings")).send().await.unwrap().json().await.unwrap();
    let token = node(&f, "csrf_token").unwrap()["attributes"]["value"].as_str().unwrap().to_string();
    let url = app.url(&format!("/v1/flows/settings/{}:submit", f["id"].as_str().unwrap()));
    let body =
        json!({"method": "passkey", "body": {"passkey_remove": hex::encode(&device.creds[0].id), "csrf_token": token}});
    let r = b.c.post(url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "AVNOLOGY_AUTH_014", "{e}");
    assert!(e["continue_flow"]["id"].is_string(), "{e}");
}
both_dbs!(passkey_register_and_passwordless_login);

/// The registration started on one server node is finished on another (same database).
async fn ceremony_state_is_shared_between_nodes(db: Db) {
    let (app, origin) = spawn(db).await;
    let (b, _, _) = signed_in(&app).await;
    let base = app.engine.cfg.serve.public.base_url.clone();
    let rp = app.engine.cfg.selfservice.methods.passkey.config.rp.clone();
    let other = spawn_on(db, app.dsn.clone(), None, |cfg| {
        cfg.serve.public.base_url = base;
        cfg.selfservice.methods.webauthn.config.rp = rp.clone();
        cfg.selfservice.methods.passkey.config.rp = rp;
    })
    .await;
    let mut key = SoftAuthenticator::new(&origin);
    let flow = b.settings(&app).await;
    let options = value_json(&flow, "webauthn_register_trigger");
    let response = key.create(&options).unwrap();
    let body = json!({"method": "webauthn", "webauthn_register": response, "webauthn_register_displayname": "k", "csrf_token": csrf(&flow)});
    let (s, done) =
        b.post(&other.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())), body).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(nodes_named(&done, "webauthn_remove").len(), 1);
}
both_dbs!(ceremony_state_is_shared_between_nodes);

async fn webauthn_nodes_by_flow_type_and_config(db: Db) {
    let (app, _) = spawn(db).await;
    let (_, token, _) = app.user().await;
    // API settings flow: passkeys yes (no onclick, no script), security keys no.
    let api = api_client();
    let flow = app.get_with_token("/self-service/settings/api", &token).await;
    assert!(node(&flow, "webauthn_register_trigger").is_none());
    assert!(node(&flow, "webauthn_script").is_none());
    let trigger = node(&flow, "passkey_register_trigger").expect("passkey trigger in API flows");
    assert!(trigger["attributes"].get("onclick").is_none());
    assert!(node(&flow, "passkey_create_data").is_some());
    // A webauthn body on an API flow finds no strategy.
    let resp = api
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "webauthn", "webauthn_remove": "00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let f: Value = resp.json().await.unwrap();
    assert!(message_ids(&f).contains(&4010004), "{f}");
    // API login flows do not offer passkeys.
    let flow: Value = api.get(app.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
    assert!(node(&flow, "passkey_login_trigger").is_none());

    // The helper script is served and matches the integrity of the script node.
    let resp = api.get(app.url("/.well-known/ory/webauthn.js")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().contains("javascript"));
    let js = resp.bytes().await.unwrap();
    let text = String::from_utf8(js.to_vec()).unwrap();
    for f in ["oryWebAuthnRegistration", "oryWebAuthnLogin", "oryPasskeySettingsRegistration", "oryPasskeyLogin"] {
        assert!(text.contains(&format!("window.{f} =")), "{f} missing");
    }
    use base64::Engine as _;
    use sha2::Digest as _;
    let integrity = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&js)));
    let b = Browser::new();
    let flow = b.login_flow(&app, "").await;
    assert_eq!(node(&flow, "webauthn_script").unwrap()["attributes"]["integrity"], integrity);

    // Without a usable relying party (IP base URL, nothing configured) nothing is offered.
    let plain = spawn_app(db).await;
    let b = Browser::new();
    let flow = b.login_flow(&plain, "").await;
    assert!(node(&flow, "passkey_login_trigger").is_none());
    assert!(node(&flow, "webauthn_script").is_none());
}
both_dbs!(webauthn_nodes_by_flow_type_and_config);

async fn webauthn_register_needs_privileged_session(db: Db) {
    let (app, origin) = spawn_with(db, |cfg| {
        cfg.selfservice.flows.settings.privileged_session_max_age = idflow_core::config::Dur::secs(600);
    })
    .await;
    let (b, _, _) = signed_in(&app).await;
    let flow = b.settings(&app).await;
    let mut key = SoftAuthenticator::new(&origin);
    let response = key.create(&value_json(&flow, "webauthn_register_trigger")).unwrap();
    app.clock.advance(1200);
    let (s, e) = b
        .submit_settings(
            &app,
            &flow,
            json!({"method": "webauthn", "webauthn_register": response, "webauthn_register_displayname": "k"}),
        )
        .await;
    assert_eq!(s, 403, "{e}");
    assert_eq!(e["error"]["id"], "session_refresh_required");
}
both_dbs!(webauthn_register_needs_privileged_session);

/// `webauthn.config.passwordless`: keys are first factors (aal1), sign-in is identifier first.
async fn passwordless_security_key_login(db: Db) {
    let (app, origin) = spawn_with(db, |cfg| cfg.selfservice.methods.webauthn.config.passwordless = true).await;
    let (b, email, identity_id) = signed_in(&app).await;
    let mut key = SoftAuthenticator::new(&origin);
    let done = register_security_key(&app, &b, &mut key, "Key").await;
    let removes = nodes_named(&done, "webauthn_remove");
    assert_eq!(removes.len(), 1);
    let (_, who) = b.whoami(&app).await;
    assert_eq!(who["authenticator_assurance_level"], "aal1", "a passwordless key is a first factor");

    let b2 = Browser::new();
    let flow = b2.login_flow(&app, "").await;
    assert!(nodes_named(&flow, "method").iter().any(|n| n["attributes"]["value"] == "webauthn"));
    let (s, f) = b2.submit_login(&app, &flow, json!({"method": "webauthn", "identifier": email})).await;
    assert_eq!(s, 400, "{f}");
    let options = value_json(&f, "webauthn_login_trigger");
    let (s, done) = b2
        .submit_login(
            &app,
            &f,
            json!({"method": "webauthn", "identifier": email, "webauthn_login": key.get(&options).unwrap()}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["session"]["identity"]["id"], identity_id);
    assert_eq!(methods(&done["session"]), vec!["webauthn"]);
}
both_dbs!(passwordless_security_key_login);
