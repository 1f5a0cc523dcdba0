//! Social sign-in against a real OpenID provider: the `oidc-provider` package (tests/oidc-provider)
//! started on a loopback port per test (`support/oidc_provider.rs`), driven through its login and
//! consent pages by the test's cookie-keeping HTTP client (redirects followed by hand).
//!
//! Needs `node` and `npm ci` in tests/oidc-provider (scripts/test.sh does it). Without them each
//! test prints why it is skipped and passes, so a plain `cargo test` works on a fresh checkout;
//! with `IDFLOW_TEST_REQUIRE_OIDC=1` (set by scripts/test.sh once the provider is installed) a
//! missing provider fails the tests instead.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::Config;
use idflow_core::store::Commit;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROVIDER: &str = "test";

struct Setup {
    app: TestApp,
    op: OpenIdProvider,
}

fn provider_config(issuer: &str) -> Value {
    json!({"enabled": true, "config": {"providers": [generic_provider(PROVIDER, "Test OP", issuer)]}})
}

/// The provider and the server configured for it; `None` when the provider cannot be started
/// (the test returns: skipped).
async fn setup_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Option<Setup> {
    let port = reserve_port();
    let redirect = |id: &str| format!("http://127.0.0.1:{port}/self-service/methods/oidc/callback/{id}");
    let op = start_provider(free_port(), &[redirect(PROVIDER), redirect("gh")]).await?;
    let issuer = op.issuer.clone();
    let app = spawn_app_with(db, |cfg| {
        cfg.serve.public.port = Some(port);
        cfg.serve.public.base_url = Some(format!("http://127.0.0.1:{port}/"));
        cfg.selfservice.methods.oidc = serde_json::from_value(provider_config(&issuer)).unwrap();
        tweak(cfg);
    })
    .await;
    Some(Setup { app, op })
}

async fn setup(db: Db) -> Option<Setup> {
    setup_with(db, |_| {}).await
}

/// The abort link of the provider's login page: the user cancels.
async fn abort_at_provider(c: &reqwest::Client, app: &TestApp, url: String) -> String {
    follow_provider(c, app, url, async |page: &str, html: String| {
        let href = attr_after(&html, "abort", "href")
            .or_else(|| {
                let i = html.find("/abort")?;
                let start = html[..i].rfind('"')? + 1;
                let end = i + html[i..].find('"')?;
                Some(unescape_html(&html[start..end]))
            })
            .expect("an abort link");
        absolute(page, &href)
    })
    .await
}

/// A node by name and value.
fn node_with<'a>(flow: &'a Value, name: &str, value: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["attributes"]["name"] == name && n["attributes"]["value"] == value)
}

async fn get_flow(c: &reqwest::Client, app: &TestApp, kind: &str, id: &str) -> Value {
    let r = c.get(app.url(&format!("/self-service/{kind}/flows?id={id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "fetch {kind} flow");
    r.json().await.unwrap()
}

/// Submit a form to a browser flow (no JSON): returns the response (a 303 normally).
async fn submit_form(
    c: &reqwest::Client,
    app: &TestApp,
    kind: &str,
    flow: &Value,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let id = flow["id"].as_str().unwrap();
    c.post(app.url(&format!("/self-service/{kind}?flow={id}"))).form(fields).send().await.unwrap()
}

/// Sign in (or up) with the provider in `c` through a login flow; returns the final response of
/// the callback.
async fn provider_login(c: &reqwest::Client, s: &Setup, login: &str) -> reqwest::Response {
    let app = &s.app;
    let flow = browser_flow(app, c, "login").await;
    let n = node_with(&flow, "provider", PROVIDER).expect("provider button on the login flow");
    assert_eq!(n["group"], "oidc");
    assert_eq!(n["meta"]["label"]["id"], 1010002);
    assert_eq!(n["meta"]["label"]["text"], "Sign in with Test OP");
    let tok = csrf(&flow);
    let r = submit_form(c, app, "login", &flow, &[("provider", PROVIDER), ("csrf_token", &tok)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_op = location(&r);
    assert!(to_op.starts_with(&format!("{}/auth?", s.op.issuer)), "{to_op}");
    let cb = through_provider(c, app, to_op, login).await;
    c.get(&cb).send().await.unwrap()
}

async fn whoami(c: &reqwest::Client, app: &TestApp) -> (StatusCode, Value) {
    let r = c.get(app.url("/sessions/whoami")).send().await.unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn admin_identity(app: &TestApp, id: &str) -> Value {
    api_client()
        .get(app.admin_url(&format!("/admin/identities/{id}?include_credential=oidc&include_credential=password")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Browser password login (for settings tests).
async fn browser_password_login(c: &reqwest::Client, app: &TestApp, email: &str) {
    let flow = browser_flow(app, c, "login").await;
    let tok = csrf(&flow);
    let r = submit_form(
        c,
        app,
        "login",
        &flow,
        &[("method", "password"), ("identifier", email), ("password", PASSWORD), ("csrf_token", &tok)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(whoami(c, app).await.0, 200);
}

async fn error_of(c: &reqwest::Client, app: &TestApp, resp: &reqwest::Response) -> Value {
    let loc = location(resp);
    let id = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .expect("error id");
    c.get(app.url(&format!("/self-service/errors?id={id}"))).send().await.unwrap().json().await.unwrap()
}

// ---- registration and login ----------------------------------------------------------------

async fn register_and_login_via_provider(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let c = browser_client();

    // Registration flow: the provider button, then an AJAX submit answers 422 with the URL.
    let flow = browser_flow(app, &c, "registration").await;
    let n = node_with(&flow, "provider", PROVIDER).expect("provider button on the registration flow");
    assert_eq!(n["meta"]["label"]["id"], 1040002);
    assert_eq!(n["meta"]["label"]["context"]["provider_id"], PROVIDER);
    let tok = csrf(&flow);
    let r = c
        .post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "provider": PROVIDER, "csrf_token": tok}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["id"], "browser_location_change_required");
    let to_op = body["redirect_browser_to"].as_str().unwrap().to_string();
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&to_op).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].starts_with(&flow["id"].as_str().unwrap().replace('-', "")));
    assert!(q["nonce"].len() >= 32);
    assert!(q["scope"].split(' ').any(|x| x == "openid"));
    assert_eq!(q["redirect_uri"], app.url(&format!("/self-service/methods/oidc/callback/{PROVIDER}")));

    // Through the provider's pages and back: registered and signed in.
    let cb = through_provider(&c, app, to_op, "alice").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "callback");
    let (st, session) = whoami(&c, app).await;
    assert_eq!(st, 200, "{session}");
    let identity = &session["identity"];
    assert_eq!(identity["traits"], json!({"email": "alice@example.org", "name": {"first": "Test", "last": "alice"}}));
    assert_eq!(identity["verifiable_addresses"][0]["verified"], true, "the provider vouched for the address");
    assert_eq!(identity["verifiable_addresses"][0]["status"], "completed");
    let m = &session["authentication_methods"][0];
    assert_eq!(m["method"], "oidc");
    assert_eq!(m["provider"], PROVIDER);
    let id = identity["id"].as_str().unwrap().to_string();
    let admin = admin_identity(app, &id).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"], json!([format!("{PROVIDER}:alice")]));
    assert_eq!(
        admin["credentials"]["oidc"]["config"],
        json!({"providers": [{"provider": PROVIDER, "subject": "alice"}]})
    );
    // The login identifier is reserved, but there is no password.
    assert_eq!(admin["credentials"]["password"]["identifiers"], json!(["alice@example.org"]));
    let pw = app.login("alice@example.org", PASSWORD).await;
    assert_eq!(pw["ui"]["messages"][0]["id"], 4000006, "no password login: {pw}");
    // A password can be added in settings; then both ways sign in.
    let flow = browser_flow(app, &c, "settings").await;
    let r = submit_form(
        &c,
        app,
        "settings",
        &flow,
        &[("method", "password"), ("password", PASSWORD), ("csrf_token", &csrf(&flow))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let pw = app.login("alice@example.org", PASSWORD).await;
    assert_eq!(pw["session"]["identity"]["id"], id.as_str(), "{pw}");

    // Replaying the callback: the state was used.
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let err = error_of(&c, app, &r).await;
    assert_eq!(err["error"]["code"], 400, "{err}");

    // A new browser signs in with the same provider account: the same identity.
    let c2 = browser_client();
    let r = provider_login(&c2, &s, "alice").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (st, session) = whoami(&c2, app).await;
    assert_eq!(st, 200);
    assert_eq!(session["identity"]["id"], id.as_str());

    // A first login with an unknown account registers it; an unverified address stays pending.
    let c3 = browser_client();
    let r = provider_login(&c3, &s, "unverified-bob").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (st, session) = whoami(&c3, app).await;
    assert_eq!(st, 200);
    assert_ne!(session["identity"]["id"], id.as_str());
    assert_eq!(session["identity"]["traits"]["email"], "unverified-bob@example.org");
    assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], false);
}
both_dbs!(register_and_login_via_provider);

/// An account without an email gets a registration form with the mapped traits; submitting the
/// missing email completes the registration with the verified claims kept on the flow.
async fn registration_completes_missing_traits(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let c = browser_client();
    let r = provider_login(&c, &s, "noemail-carol").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(&app.engine.ui_url("registration")), "{loc}");
    assert_eq!(whoami(&c, app).await.0, 401);
    let id =
        url::Url::parse(&loc).unwrap().query_pairs().find(|(k, _)| k == "flow").map(|(_, v)| v.into_owned()).unwrap();
    let flow = get_flow(&c, app, "registration", &id).await;
    assert_eq!(node(&flow, "traits.name.last").unwrap()["attributes"]["value"], "noemail-carol");
    assert!(message_ids(&flow).contains(&4000002), "{flow}");
    let tok = csrf(&flow);
    let r = submit_form(
        &c,
        app,
        "registration",
        &flow,
        &[
            ("provider", PROVIDER),
            ("csrf_token", &tok),
            ("traits.email", "carol@example.net"),
            ("traits.name.first", ""),
            ("traits.name.last", "noemail-carol"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (st, session) = whoami(&c, app).await;
    assert_eq!(st, 200, "{session}");
    assert_eq!(
        session["identity"]["traits"],
        json!({"email": "carol@example.net", "name": {"first": "Test", "last": "noemail-carol"}})
    );
    assert_eq!(session["identity"]["verifiable_addresses"][0]["verified"], false, "a typed address is not verified");
    let admin = admin_identity(app, session["identity"]["id"].as_str().unwrap()).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"], json!([format!("{PROVIDER}:noemail-carol")]));
}
both_dbs!(registration_completes_missing_traits);

/// A provider account whose email belongs to a password account is not registered twice.
async fn duplicate_email_is_refused(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    app.register("dave@example.org", PASSWORD).await;
    let c = browser_client();
    let r = provider_login(&c, &s, "dave").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(&app.engine.ui_url("login")), "{loc}");
    let id =
        url::Url::parse(&loc).unwrap().query_pairs().find(|(k, _)| k == "flow").map(|(_, v)| v.into_owned()).unwrap();
    let flow = get_flow(&c, app, "login", &id).await;
    assert!(message_ids(&flow).contains(&4000027), "{flow}");
    assert_eq!(whoami(&c, app).await.0, 401);
}
both_dbs!(duplicate_email_is_refused);

// ---- state, browser binding, nonce, provider errors ------------------------------------------

async fn state_and_browser_binding(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let c = browser_client();
    let flow = browser_flow(app, &c, "login").await;
    let r = submit_form(
        &c,
        app,
        "login",
        &flow,
        &[("method", "oidc"), ("provider", PROVIDER), ("csrf_token", &csrf(&flow))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cb = through_provider(&c, app, location(&r), "erin").await;
    let mut tampered = url::Url::parse(&cb).unwrap();
    let pairs: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
    tampered.query_pairs_mut().clear();
    for (k, v) in &pairs {
        // Change the last character (to something it is not already).
        let v = if k == "state" {
            let last = if v.ends_with('x') { 'y' } else { 'x' };
            format!("{}{last}", &v[..v.len() - 1])
        } else {
            v.clone()
        };
        tampered.query_pairs_mut().append_pair(k, &v);
    }
    // A state that does not match the flow: refused (error page, 400).
    let r = c.get(tampered.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with(&app.engine.ui_url("error")));
    let err = error_of(&c, app, &r).await;
    assert_eq!(err["error"]["code"], 400);
    assert!(err["error"]["reason"].as_str().unwrap().contains("state"), "{err}");
    // The right state in another browser: refused (the flow belongs to the first browser).
    let other = browser_client();
    let r = other.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let err = error_of(&other, app, &r).await;
    assert_eq!(err["error"]["id"], "security_csrf_violation", "{err}");
    assert_eq!(whoami(&other, app).await.0, 401);
    // Neither attempt used the state: the right browser completes the sign-in, here as a
    // `form_post` response (a POST is turned into a GET so that the browser's cookies come along).
    let parsed = url::Url::parse(&cb).unwrap();
    let fields: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let r =
        c.post(app.url(&format!("/self-service/methods/oidc/callback/{PROVIDER}"))).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let again = url::Url::parse(&location(&r)).unwrap();
    assert_eq!(again.path(), parsed.path());
    let mut got: Vec<(String, String)> = again.query_pairs().into_owned().collect();
    let mut want = fields.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let r = c.get(again.as_str()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), app.engine.default_return_url());
    assert_eq!(whoami(&c, app).await.0, 200);
    // Without a state at all.
    let r = c.get(app.url(&format!("/self-service/methods/oidc/callback/{PROVIDER}?code=abc"))).send().await.unwrap();
    let err = error_of(&c, app, &r).await;
    assert_eq!(err["error"]["code"], 400);
    // A provider that is not configured.
    let r = c.get(app.url("/self-service/methods/oidc/callback/nope?code=abc&state=x")).send().await.unwrap();
    let err = error_of(&c, app, &r).await;
    assert_eq!(err["error"]["code"], 404);
}
both_dbs!(state_and_browser_binding);

/// The ID token's nonce must be the one stored on the flow; a user who cancels at the provider
/// is back on the login form with a message.
async fn nonce_mismatch_and_cancel(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let c = browser_client();
    let flow = browser_flow(app, &c, "login").await;
    let fid = flow["id"].as_str().unwrap().to_string();
    let r = submit_form(&c, app, "login", &flow, &[("provider", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    let cb = through_provider(&c, app, location(&r), "frank").await;
    // Someone swaps the nonce the flow expects (as if the ID token was issued for another request).
    let mut stored = app.engine.store.get_flow(fid.parse().unwrap()).await.unwrap().unwrap();
    stored.internal["oidc"]["nonce"] = json!("another-nonce-0123456789");
    app.engine.store.commit(Commit { update_flow: Some(&stored), ..Default::default() }).await.unwrap();
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with(&app.engine.ui_url("login")), "{}", location(&r));
    let flow = get_flow(&c, app, "login", &fid).await;
    let texts = message_texts(&flow).join(" | ");
    assert!(texts.contains("nonce"), "{texts}");
    assert!(message_ids(&flow).contains(&4000001));
    assert_eq!(whoami(&c, app).await.0, 401);
    let id = app
        .engine
        .store
        .find_identity_by_identifier(idflow_core::model::CredentialType::Oidc, "test:frank")
        .await
        .unwrap();
    assert!(id.is_none(), "nothing was registered");

    // Cancel at the provider (a browser without a session there, so it asks).
    let c = browser_client();
    let flow = browser_flow(app, &c, "login").await;
    let fid = flow["id"].as_str().unwrap().to_string();
    let r = submit_form(&c, app, "login", &flow, &[("provider", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    let cb = abort_at_provider(&c, app, location(&r)).await;
    assert!(cb.contains("error=access_denied"), "{cb}");
    let r = c.get(&cb).send().await.unwrap();
    assert!(location(&r).starts_with(&app.engine.ui_url("login")));
    let flow = get_flow(&c, app, "login", &fid).await;
    assert!(message_texts(&flow).join(" | ").contains("access_denied"), "{flow}");
    assert_eq!(whoami(&c, app).await.0, 401);
}
both_dbs!(nonce_mismatch_and_cancel);

// ---- native apps: ID tokens ------------------------------------------------------------------

async fn sign(op: &OpenIdProvider, claims: Value, key: &str) -> String {
    let r: Value = api_client()
        .post(format!("{}/test/sign", op.issuer))
        .json(&json!({"claims": claims, "key": key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

async fn api_submit(app: &TestApp, kind: &str, body: Value) -> (StatusCode, Value) {
    let c = api_client();
    let flow: Value = c.get(app.url(&format!("/self-service/{kind}/api"))).send().await.unwrap().json().await.unwrap();
    let r = c
        .post(app.url(&format!("/self-service/{kind}?flow={}", flow["id"].as_str().unwrap())))
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap())
}

async fn native_id_tokens(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let now = app.clock.now().unix_timestamp();
    let claims = |sub: &str, nonce: &str, exp: i64| {
        json!({"iss": s.op.issuer, "sub": sub, "aud": CLIENT_ID, "iat": now, "exp": exp, "nonce": nonce,
               "email": format!("{sub}@example.org"), "email_verified": true, "given_name": "Nat"})
    };
    let submit = |token: String, nonce: &str| json!({"method": "oidc", "provider": PROVIDER, "id_token": token, "id_token_nonce": nonce});

    // A valid token registers and signs in (session token for the app).
    let token = sign(&s.op, claims("native-1", "nonce-aaaaaaaaaaaaaaaa", now + 300), "provider").await;
    let (st, body) = api_submit(app, "login", submit(token.clone(), "nonce-aaaaaaaaaaaaaaaa")).await;
    assert_eq!(st, 200, "{body}");
    assert!(body["session_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["session"]["identity"]["traits"]["email"], "native-1@example.org");
    assert_eq!(body["session"]["authentication_methods"][0]["provider"], PROVIDER);
    let id = body["session"]["identity"]["id"].clone();
    // The same token and nonce again (another flow): a replay.
    let (st, body) = api_submit(app, "login", submit(token, "nonce-aaaaaaaaaaaaaaaa")).await;
    assert_eq!(st, 400);
    assert!(message_texts(&body).join(" | ").contains("already used"), "{body}");
    // A new token for the same subject signs in to the same identity.
    let token = sign(&s.op, claims("native-1", "nonce-bbbbbbbbbbbbbbbb", now + 300), "provider").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-bbbbbbbbbbbbbbbb")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["session"]["identity"]["id"], id);
    // Registration flows accept ID tokens too (an existing account signs in).
    let token = sign(&s.op, claims("native-1", "nonce-rrrrrrrrrrrrrrrr", now + 300), "provider").await;
    let (st, body) = api_submit(app, "registration", submit(token, "nonce-rrrrrrrrrrrrrrrr")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["identity"]["id"], id);
    assert!(body["session_token"].as_str().is_some());

    let rejected = |body: &Value, needle: &str| {
        let t = message_texts(body).join(" | ");
        assert!(t.contains(needle), "expected {needle:?} in {t}");
    };
    // Nonce mismatch.
    let token = sign(&s.op, claims("native-2", "nonce-cccccccccccccccc", now + 300), "provider").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-dddddddddddddddd")).await;
    assert_eq!(st, 400);
    rejected(&body, "nonce");
    // Forged: signed with another key that claims the provider's key id.
    let token = sign(&s.op, claims("native-2", "nonce-eeeeeeeeeeeeeeee", now + 300), "other").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-eeeeeeeeeeeeeeee")).await;
    assert_eq!(st, 400);
    rejected(&body, "signature");
    // Expired.
    let token = sign(&s.op, claims("native-2", "nonce-ffffffffffffffff", now - 60), "provider").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-ffffffffffffffff")).await;
    assert_eq!(st, 400);
    rejected(&body, "expired");
    // Another audience.
    let mut c = claims("native-2", "nonce-gggggggggggggggg", now + 300);
    c["aud"] = json!("some-other-app");
    let token = sign(&s.op, c, "provider").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-gggggggggggggggg")).await;
    assert_eq!(st, 400);
    rejected(&body, "another client");
    // Another issuer.
    let mut c = claims("native-2", "nonce-hhhhhhhhhhhhhhhh", now + 300);
    c["iss"] = json!("https://evil.example");
    let token = sign(&s.op, c, "provider").await;
    let (st, body) = api_submit(app, "login", submit(token, "nonce-hhhhhhhhhhhhhhhh")).await;
    assert_eq!(st, 400);
    rejected(&body, "issuer");
    // No ID token on an API flow.
    let (st, body) = api_submit(app, "login", json!({"method": "oidc", "provider": PROVIDER})).await;
    assert_eq!(st, 400);
    assert!(message_ids(&body).contains(&4000002), "{body}");
    // Garbage.
    let (st, body) = api_submit(app, "login", submit("not-a-jwt".into(), "nonce-iiiiiiiiiiiiiiii")).await;
    assert_eq!(st, 400);
    rejected(&body, "JWT");
    // A settings API flow links with an ID token.
    let (_, token_pw, pw_id) = app.user().await;
    let c = api_client();
    let flow = app.get_with_token("/self-service/settings/api", &token_pw).await;
    assert!(node_with(&flow, "link", PROVIDER).is_some());
    let token = sign(&s.op, claims("native-3", "nonce-llllllllllllllll", now + 300), "provider").await;
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("x-session-token", &token_pw)
        .json(
            &json!({"method": "oidc", "link": PROVIDER, "id_token": token, "id_token_nonce": "nonce-llllllllllllllll"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["state"], "success", "{body}");
    assert!(node_with(&body, "unlink", PROVIDER).is_some());
    let admin = admin_identity(app, &pw_id).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"], json!([format!("{PROVIDER}:native-3")]));

    // None of the rejected tokens created an identity.
    let n = app
        .engine
        .store
        .find_identity_by_identifier(idflow_core::model::CredentialType::Oidc, "test:native-2")
        .await
        .unwrap();
    assert!(n.is_none());
}
both_dbs!(native_id_tokens);

/// Native apps' own client ids are accepted only when configured.
async fn additional_audiences(db: Db) {
    let Some(s) = setup_with(db, |cfg| {
        cfg.selfservice.methods.oidc.config.providers[0].additional_id_token_audiences = vec!["ios-app".into()];
    })
    .await
    else {
        return;
    };
    let app = &s.app;
    let now = app.clock.now().unix_timestamp();
    let c = json!({"iss": s.op.issuer, "sub": "mobile", "aud": "ios-app", "iat": now, "exp": now + 300,
                   "nonce": "nonce-mmmmmmmmmmmmmmmm", "email": "mobile@example.org"});
    let token = sign(&s.op, c, "provider").await;
    let (st, body) = api_submit(
        app,
        "login",
        json!({"method": "oidc", "provider": PROVIDER, "id_token": token, "id_token_nonce": "nonce-mmmmmmmmmmmmmmmm"}),
    )
    .await;
    assert_eq!(st, 200, "{body}");
}
both_dbs!(additional_audiences);

// ---- settings: link and unlink ---------------------------------------------------------------

async fn settings_flow(c: &reqwest::Client, app: &TestApp) -> Value {
    browser_flow(app, c, "settings").await
}

async fn link_and_unlink_in_settings(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let c = browser_client();
    browser_password_login(&c, app, &email).await;
    let flow = settings_flow(&c, app).await;
    let link = node_with(&flow, "link", PROVIDER).expect("link node");
    assert_eq!(link["group"], "oidc");
    assert_eq!(link["meta"]["label"]["id"], 1050002);
    assert_eq!(link["meta"]["label"]["text"], "Link Test OP");
    assert!(node_with(&flow, "unlink", PROVIDER).is_none());

    // CSRF is checked (beyond Kratos).
    let r = submit_form(&c, app, "settings", &flow, &[("link", PROVIDER), ("csrf_token", "bogus")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with(&app.engine.ui_url("error")), "{}", location(&r));
    // link and unlink together.
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "link": PROVIDER, "unlink": PROVIDER, "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(message_texts(&body).join(" | ").contains("not possible to link and unlink"), "{body}");
    assert_eq!(body["ui"]["messages"][0]["id"], 4000001);
    // Unknown provider.
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "link": "nope", "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(message_texts(&r.json::<Value>().await.unwrap()).join(" | ").contains("can not link unknown"));

    // Link: to the provider and back.
    let flow = settings_flow(&c, app).await;
    let fid = flow["id"].as_str().unwrap().to_string();
    let r = submit_form(&c, app, "settings", &flow, &[("link", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with(&s.op.issuer));
    let cb = through_provider(&c, app, location(&r), "grace").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), app.engine.ui_url_for_flow(idflow_core::model::FlowKind::Settings, fid.parse().unwrap()));
    let flow = get_flow(&c, app, "settings", &fid).await;
    assert_eq!(flow["state"], "success", "{flow}");
    assert_eq!(flow["ui"]["messages"][0]["id"], 1050001);
    let unlink = node_with(&flow, "unlink", PROVIDER).expect("unlink node (password + link)");
    assert_eq!(unlink["meta"]["label"]["id"], 1050003);
    let (_, session) = whoami(&c, app).await;
    let iid = session["identity"]["id"].as_str().unwrap().to_string();
    assert!(session["authentication_methods"].as_array().unwrap().iter().any(|m| m["method"] == "oidc"));
    let admin = admin_identity(app, &iid).await;
    assert_eq!(admin["credentials"]["oidc"]["identifiers"], json!([format!("{PROVIDER}:grace")]));
    // The link is notified to the account's address (security notification, T21) and logged.
    let notices = notifications_to(app, &email).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["subject"], "A social sign-in account was linked");
    let log = admin_activity(app, &iid).await;
    assert!(entries_of(&log, "settings_changed", "success").iter().any(|e| e["method"] == "oidc"), "{log:?}");

    // The linked account signs in to this identity.
    let c2 = browser_client();
    provider_login(&c2, &s, "grace").await;
    assert_eq!(whoami(&c2, app).await.1["identity"]["id"], iid.as_str());

    // Linking again: already linked.
    let flow = settings_flow(&c, app).await;
    assert!(node_with(&flow, "link", PROVIDER).is_none());
    let r = submit_form(&c, app, "settings", &flow, &[("link", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    assert!(location(&r).starts_with(&app.engine.ui_url("settings")));
    let f = get_flow(&c, app, "settings", flow["id"].as_str().unwrap()).await;
    assert!(message_texts(&f).join(" | ").contains("already existing"), "{f}");

    // Unlink.
    let flow = settings_flow(&c, app).await;
    let r = submit_form(&c, app, "settings", &flow, &[("unlink", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let f = get_flow(&c, app, "settings", flow["id"].as_str().unwrap()).await;
    assert_eq!(f["state"], "success", "{f}");
    assert!(node_with(&f, "link", PROVIDER).is_some());
    let admin = admin_identity(app, &iid).await;
    assert!(admin["credentials"].get("oidc").is_none(), "{admin}");
    let notices = notifications_to(app, &email).await;
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0]["subject"], "A social sign-in account was unlinked", "newest first");
    // Unlinking what is not linked.
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", f["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "unlink": PROVIDER, "csrf_token": csrf(&f)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(message_texts(&r.json::<Value>().await.unwrap()).join(" | ").contains("non-existing"));

    // Linking needs a privileged session.
    app.clock.advance(7200);
    let flow = settings_flow(&c, app).await;
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "link": PROVIDER, "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_refresh_required");
}
both_dbs!(link_and_unlink_in_settings);

/// The last way to sign in cannot be unlinked; an account linked to someone else cannot be linked.
async fn unlink_last_factor_and_link_conflict(db: Db) {
    // A short privileged window: the test moves the server clock past it, and the provider's ID
    // tokens (valid 1 h by the real clock) must still be valid by the server's.
    let Some(s) = setup_with(db, |cfg| {
        cfg.selfservice.flows.settings.privileged_session_max_age = idflow_core::config::Dur::secs(600);
    })
    .await
    else {
        return;
    };
    let app = &s.app;
    // An identity that has only the provider.
    let c = browser_client();
    provider_login(&c, &s, "heidi").await;
    assert_eq!(whoami(&c, app).await.0, 200);
    let flow = settings_flow(&c, app).await;
    assert!(node_with(&flow, "unlink", PROVIDER).is_none(), "no unlink for the last first factor");
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "unlink": PROVIDER, "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ui"]["messages"][0]["id"], 4000001);
    assert!(message_texts(&body).join(" | ").contains("last remaining first factor"), "{body}");

    // A password user tries to link heidi's provider account.
    let email = unique_email();
    app.register(&email, PASSWORD).await;
    let c2 = browser_client();
    browser_password_login(&c2, app, &email).await;
    let flow = settings_flow(&c2, app).await;
    let fid = flow["id"].as_str().unwrap().to_string();
    let r = submit_form(&c2, app, "settings", &flow, &[("link", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    let cb = through_provider(&c2, app, location(&r), "heidi").await;
    let r = c2.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let f = get_flow(&c2, app, "settings", &fid).await;
    assert!(message_ids(&f).contains(&4000027), "{f}");
    assert!(message_texts(&f).join(" | ").contains("already linked to another account"), "{f}");
    let me = whoami(&c2, app).await.1;
    let admin = admin_identity(app, me["identity"]["id"].as_str().unwrap()).await;
    assert!(admin["credentials"].get("oidc").is_none());

    // Re-authentication with the provider: an old session becomes privileged again.
    app.clock.advance(900);
    let flow = settings_flow(&c, app).await;
    let r = submit_form(&c, app, "settings", &flow, &[("link", PROVIDER), ("csrf_token", &csrf(&flow))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).contains("refresh=true"), "{}", location(&r));
    let before = whoami(&c, app).await.1;
    let refresh: Value = c
        .get(app.url("/self-service/login/browser?refresh=true"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(node_with(&refresh, "provider", PROVIDER).is_some(), "the linked provider is offered: {refresh}");
    let r = submit_form(&c, app, "login", &refresh, &[("provider", PROVIDER), ("csrf_token", &csrf(&refresh))]).await;
    let cb = through_provider(&c, app, location(&r), "heidi").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = whoami(&c, app).await.1;
    assert_eq!(after["id"], before["id"], "the same session");
    assert_ne!(after["authenticated_at"], before["authenticated_at"]);
    assert_eq!(after["authentication_methods"].as_array().unwrap().len(), 2);
}
both_dbs!(unlink_last_factor_and_link_conflict);

/// With the method off: no provider nodes, and a provider submit is 404.
async fn disabled_method(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let flow = browser_flow(&app, &c, "login").await;
    assert!(flow["ui"]["nodes"].as_array().unwrap().iter().all(|n| n["group"] != "oidc"));
    let r = c
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "oidc", "provider": "test", "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c.get(app.url("/self-service/methods/oidc/callback/test?code=a&state=b")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
both_dbs!(disabled_method);

/// Identities imported with an oidc credential sign in with the provider account.
async fn admin_import_then_sign_in(db: Db) {
    let Some(s) = setup(db).await else { return };
    let app = &s.app;
    let c = api_client();
    let r = c
        .post(app.admin_url("/admin/identities"))
        .json(&json!({"traits": {"email": "ivan@corp.example"},
                      "credentials": {"oidc": {"config": {"providers": [{"provider": PROVIDER, "subject": "ivan"}]}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["credentials"]["oidc"]["identifiers"], json!([format!("{PROVIDER}:ivan")]));
    let r = c
        .post(app.admin_url("/admin/identities"))
        .json(&json!({"traits": {"email": "x@corp.example"},
                      "credentials": {"oidc": {"config": {"providers": [{"provider": "unknown", "subject": "x"}]}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b = browser_client();
    let r = provider_login(&b, &s, "ivan").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (st, session) = whoami(&b, app).await;
    assert_eq!(st, 200);
    assert_eq!(session["identity"]["id"], created["id"]);
    assert_eq!(session["identity"]["traits"]["email"], "ivan@corp.example", "traits are not overwritten on login");
}
both_dbs!(admin_import_then_sign_in);

/// The `github` preset (OAuth2 + the user API) against the provider script's fake GitHub.
async fn github_preset(db: Db) {
    let port = reserve_port();
    let redirect = |id: &str| format!("http://127.0.0.1:{port}/self-service/methods/oidc/callback/{id}");
    let Some(op) = start_provider(free_port(), &[redirect("gh")]).await else { return };
    let issuer = op.issuer.clone();
    let app = spawn_app_with(db, |cfg| {
        cfg.serve.public.port = Some(port);
        cfg.serve.public.base_url = Some(format!("http://127.0.0.1:{port}/"));
        cfg.selfservice.methods.oidc = serde_json::from_value(json!({"enabled": true, "config": {"providers": [{
            "id": "gh", "provider": "github", "issuer_url": format!("{issuer}/github"),
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "mapper": {"traits": {"email": "{{ claims.email }}", "name": {"first": "{{ claims.name }}"}},
                       "metadata_public": {"github": "{{ claims.nickname }}"}},
        }]}}))
        .unwrap();
    })
    .await;
    let c = browser_client();
    let flow = browser_flow(&app, &c, "login").await;
    let n = node_with(&flow, "provider", "gh").unwrap();
    assert_eq!(n["meta"]["label"]["text"], "Sign in with GitHub");
    let r = c
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "oidc", "provider": "gh", "csrf_token": csrf(&flow), "upstream_parameters": {"login_hint": "mona", "evil": "x"}}))
        .send()
        .await
        .unwrap();
    // A JSON body is an AJAX request: 422 with the provider URL.
    assert_eq!(r.status(), 422);
    let to_gh = r.json::<Value>().await.unwrap()["redirect_browser_to"].as_str().unwrap().to_string();
    let q: std::collections::HashMap<String, String> =
        url::Url::parse(&to_gh).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "user:email");
    assert_eq!(q["login_hint"], "mona");
    assert!(!q.contains_key("evil"), "only allow-listed upstream parameters are forwarded");
    assert!(!q.contains_key("nonce"));
    let cb = through_provider(&c, &app, to_gh, "unused").await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), app.engine.default_return_url());
    let (st, session) = whoami(&c, &app).await;
    assert_eq!(st, 200, "{session}");
    let identity = &session["identity"];
    assert_eq!(identity["traits"], json!({"email": "mona@users.example", "name": {"first": "The mona"}}));
    assert_eq!(identity["metadata_public"], json!({"github": "mona"}));
    assert_eq!(identity["verifiable_addresses"][0]["verified"], true);
    let admin = admin_identity(&app, identity["id"].as_str().unwrap()).await;
    let ident = admin["credentials"]["oidc"]["identifiers"][0].as_str().unwrap().to_string();
    assert!(ident.starts_with("gh:") && ident[3..].parse::<u64>().is_ok(), "{ident}");
    // A wrong PKCE verifier is refused by the token endpoint: the flow shows the error.
    let c = browser_client();
    let flow = browser_flow(&app, &c, "login").await;
    let fid = flow["id"].as_str().unwrap().to_string();
    let r = submit_form(&c, &app, "login", &flow, &[("provider", "gh"), ("csrf_token", &csrf(&flow))]).await;
    let cb = through_provider(&c, &app, location(&r), "unused").await;
    let mut stored = app.engine.store.get_flow(fid.parse().unwrap()).await.unwrap().unwrap();
    stored.internal["oidc"]["pkce_verifier"] = json!("x".repeat(64));
    app.engine.store.commit(Commit { update_flow: Some(&stored), ..Default::default() }).await.unwrap();
    let r = c.get(&cb).send().await.unwrap();
    assert!(location(&r).starts_with(&app.engine.ui_url("login")));
    let f = get_flow(&c, &app, "login", &fid).await;
    assert!(message_texts(&f).join(" | ").contains("bad_verification_code"), "{f}");
    assert_eq!(whoami(&c, &app).await.0, 401);
    drop(op);
}
both_dbs!(github_preset);
