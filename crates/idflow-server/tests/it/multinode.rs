//! Several nodes on one PostgreSQL (T40, T24/T37 across nodes): flows, CSRF secrets, sessions,
//! rate-limit counters and generated secrets all live in the database, so a flow created on one
//! node is fetched and submitted on another, and concurrent submits through different nodes
//! still resolve to exactly one winner. PostgreSQL only (skipped when
//! `IDFLOW_TEST_PG_ADMIN_URL` is unset).

use crate::support::*;
use serde_json::{Value, json};

/// Skip (with a note) unless PostgreSQL is available.
fn pg_or_skip() -> bool {
    if pg_admin_url().is_none() {
        eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: multi-node test skipped (scripts/test.sh sets it)");
        return false;
    }
    true
}

/// Two nodes behind one public URL (as behind a load balancer): node B answers on its own port
/// but uses node A's base URLs, so cookie names and flow URLs are the same on both.
async fn two_nodes(tweak: impl Fn(&mut idflow_core::config::Config) + Clone) -> (TestApp, TestApp) {
    let (dsn, _) = fresh_dsn(Db::Postgres).await;
    let t = tweak.clone();
    let a = spawn_on(Db::Postgres, dsn.clone(), None, move |c| t(c)).await;
    let (pub_url, adm_url) = (format!("{}/", a.public), format!("{}/", a.admin));
    let b = spawn_on(Db::Postgres, dsn, None, move |c| {
        c.serve.public.base_url = Some(pub_url);
        c.serve.admin.base_url = Some(adm_url);
        tweak(c);
    })
    .await;
    (a, b)
}

/// Settings-flow calls of one API user, on any node.
struct Api {
    token: String,
    identity_id: String,
    email: String,
}

impl Api {
    async fn new(node: &TestApp) -> Api {
        let (email, token, identity_id) = node.user().await;
        Api { token, identity_id, email }
    }
    async fn create(&self, node: &TestApp) -> Value {
        let r = api_client()
            .get(node.url("/self-service/settings/api"))
            .header("X-Session-Token", &self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
    async fn fetch(&self, node: &TestApp, id: &str) -> Value {
        let r = api_client()
            .get(node.url(&format!("/self-service/settings/flows?id={id}")))
            .header("X-Session-Token", &self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
    fn submit_req(&self, node: &TestApp, id: &str, body: Value) -> reqwest::RequestBuilder {
        api_client()
            .post(node.url(&format!("/self-service/settings?flow={id}")))
            .header("X-Session-Token", &self.token)
            .json(&body)
    }
    async fn submit(&self, node: &TestApp, id: &str, body: Value) -> reqwest::Response {
        self.submit_req(node, id, body).send().await.unwrap()
    }
    async fn identity(&self, node: &TestApp, include: &str) -> Value {
        let url = node.admin_url(&format!("/admin/identities/{}?include_credential={include}", self.identity_id));
        api_client().get(url).send().await.unwrap().json().await.unwrap()
    }
}

fn text_context<'a>(flow: &'a Value, node_id: &str) -> &'a Value {
    &node(flow, node_id).unwrap_or_else(|| panic!("node {node_id} in {flow}"))["attributes"]["text"]["context"]
}

/// Nodes started at the same moment on an empty database: migrations run once (sqlx's
/// advisory lock) and all nodes end up with the same generated secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_on_an_empty_database() {
    if !pg_or_skip() {
        return;
    }
    for _round in 0..2 {
        let (dsn, _) = fresh_dsn(Db::Postgres).await;
        let (a, b, c) = tokio::join!(
            spawn_on(Db::Postgres, dsn.clone(), None, |_| {}),
            spawn_on(Db::Postgres, dsn.clone(), None, |_| {}),
            spawn_on(Db::Postgres, dsn.clone(), None, |_| {}),
        );
        assert_eq!(a.engine.cookie_keys, b.engine.cookie_keys, "one cookie secret for all nodes");
        assert_eq!(a.engine.cookie_keys, c.engine.cookie_keys);
        assert_eq!(a.engine.cipher_key, b.engine.cipher_key, "one cipher secret for all nodes");
        assert_eq!(a.engine.cipher_key, c.engine.cipher_key);
        assert!(!a.engine.cookie_keys[0].is_empty());
        for n in [&a, &b, &c] {
            let r = api_client().get(n.url("/health/ready")).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        // A session minted on one node is valid on the others.
        let (_, token, _) = a.user().await;
        for n in [&b, &c] {
            let r = api_client().get(n.url("/sessions/whoami")).header("X-Session-Token", &token).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    }
}

/// Every settings method: the flow is created on one node and fetched/submitted on the other;
/// server-side method state (TOTP secret, lookup codes in `flow.internal`) travels in the DB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settings_methods_across_nodes() {
    if !pg_or_skip() {
        return;
    }
    let (a, b) = two_nodes(|_| {}).await;
    let u = Api::new(&a).await;

    // profile: A → B
    let flow = u.create(&a).await;
    let id = flow["id"].as_str().unwrap().to_string();
    assert_eq!(u.fetch(&b, &id).await["id"], flow["id"]);
    let r = u
        .submit(
            &b,
            &id,
            json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Node", "last": "Bee"}}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(u.identity(&a, "password").await["traits"]["name"]["first"], "Node");

    // password: B → A
    let flow = u.create(&b).await;
    let new_pw = "Across-Nodes-Password-42";
    let r = u.submit(&a, flow["id"].as_str().unwrap(), json!({"method": "password", "password": new_pw})).await;
    assert_eq!(r.status(), 200);
    assert!(b.login(&u.email, new_pw).await["session_token"].is_string(), "new password works on the other node");
    assert!(a.login(&u.email, PASSWORD).await["session_token"].is_null(), "old password is gone");

    // totp: secret generated on A, code checked on B
    let flow = u.create(&a).await;
    let id = flow["id"].as_str().unwrap().to_string();
    let secret = text_context(&flow, "totp_secret_key")["secret"].as_str().unwrap().to_string();
    let on_b = u.fetch(&b, &id).await;
    assert_eq!(text_context(&on_b, "totp_secret_key")["secret"], secret.as_str(), "same secret on both nodes");
    let r = u.submit(&b, &id, json!({"method": "totp", "totp_code": totp_code(&secret, &b.clock)})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ident = u.identity(&a, "totp").await;
    assert!(ident["credentials"]["totp"].is_object(), "TOTP enrolled: {ident}");

    // lookup_secret: regenerate on B, confirm on A (the codes live in flow.internal)
    let flow = u.create(&a).await;
    let id = flow["id"].as_str().unwrap().to_string();
    let r = u.submit(&b, &id, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.unwrap();
    let codes: Vec<String> = text_context(&shown, "lookup_secret_codes")["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 12);
    let r = u.submit(&a, &id, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let ident = u.identity(&b, "lookup_secret").await;
    let stored =
        ident["credentials"]["lookup_secret"]["config"]["recovery_codes"].as_array().cloned().unwrap_or_default();
    assert_eq!(stored.len(), 12, "{ident}");
    assert!(!ident.to_string().contains(&codes[0]), "codes are stored hashed");
}

/// Browser flows across nodes: the CSRF cookie set by A verifies on B (the secret is bound to
/// the flow in the DB) and the session cookie signed by A is accepted by B (shared secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_flows_across_nodes() {
    if !pg_or_skip() {
        return;
    }
    let (a, b) = two_nodes(|_| {}).await;
    let email = unique_email();
    a.register(&email, PASSWORD).await;
    let c = browser_client();
    let flow = ajax_get(&c, &a.url("/self-service/login/browser")).await;
    let r = c
        .post(b.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .header("Accept", "application/json")
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "login flow from A completed on B");
    let who = c.get(a.url("/sessions/whoami")).send().await.unwrap();
    assert_eq!(who.status(), 200, "session cookie issued by B accepted by A");

    let flow = ajax_get(&c, &b.url("/self-service/settings/browser")).await;
    let id = flow["id"].as_str().unwrap();
    let fetched = c.get(a.url(&format!("/self-service/settings/flows?id={id}"))).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    let r = c
        .post(a.url(&format!("/self-service/settings?flow={id}")))
        .header("Accept", "application/json")
        .json(&json!({"method": "profile", "csrf_token": csrf(&flow), "traits": {"email": email, "name": {"first": "Cross"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A wrong token is still refused on the other node.
    let r = c
        .post(b.url(&format!("/self-service/settings?flow={id}")))
        .header("Accept", "application/json")
        .json(&json!({"method": "profile", "csrf_token": "", "traits": {"email": email}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Logout on B ends the session on A.
    let logout = ajax_get(&c, &b.url("/self-service/logout/browser")).await;
    let r = c.get(logout["logout_url"].as_str().unwrap().replace(&a.public, &b.public)).send().await.unwrap();
    assert!(r.status().is_redirection() || r.status() == 204, "{}", r.status());
    assert_eq!(c.get(a.url("/sessions/whoami")).send().await.unwrap().status(), 401);
}

/// Concurrent password changes through both nodes: one flow, and one flow per request. No lost
/// or half-written credential: afterwards exactly one of the submitted passwords signs in, it is
/// one whose submit succeeded, and every other answer is a clean 409/400, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_password_changes_across_nodes() {
    if !pg_or_skip() {
        return;
    }
    let (a, b) = two_nodes(|_| {}).await;
    for shared_flow in [true, false] {
        let u = Api::new(&a).await;
        let shared = u.create(&a).await["id"].as_str().unwrap().to_string();
        let mut flows = vec![];
        for i in 0..8 {
            let node = if i % 2 == 0 { &a } else { &b };
            flows.push(if shared_flow {
                shared.clone()
            } else {
                u.create(node).await["id"].as_str().unwrap().to_string()
            });
        }
        let passwords: Vec<String> =
            (0..8).map(|i| format!("Concurrent-Pass-{i}-{}", uuid::Uuid::new_v4().simple())).collect();
        let mut tasks = vec![];
        for (i, pw) in passwords.iter().enumerate() {
            let node = if i % 2 == 0 { &a } else { &b };
            tasks.push(tokio::spawn(
                u.submit_req(node, &flows[i], json!({"method": "password", "password": pw})).send(),
            ));
        }
        let mut ok = vec![];
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.unwrap().unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match status {
                200 => ok.push(i),
                409 | 400 => assert!(body["error"].is_object() || body["ui"].is_object(), "clean error: {body}"),
                s => panic!("unexpected status {s}: {body}"),
            }
        }
        assert!(!ok.is_empty(), "at least one change wins");
        let mut working = vec![];
        for (i, pw) in passwords.iter().enumerate() {
            if a.login(&u.email, pw).await["session_token"].is_string() {
                working.push(i);
            }
        }
        assert_eq!(working.len(), 1, "exactly one password works (shared flow: {shared_flow}): {working:?}");
        assert!(ok.contains(&working[0]), "the working password was reported as saved");
        assert!(a.login(&u.email, PASSWORD).await["session_token"].is_null());
        let ident = u.identity(&b, "password").await;
        let hash =
            ident["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap_or_default().to_string();
        assert!(hash.starts_with("$argon2id$"), "a complete hash is stored: {ident}");
    }
}

/// Rate-limit counters are shared: a per-IP login limit of 3 holds across both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_hold_across_nodes() {
    if !pg_or_skip() {
        return;
    }
    let (a, b) = two_nodes(|c| c.limits.per_ip.login = 3).await;
    start_of_window(&[&a.clock, &b.clock]);
    let email = unique_email();
    let mut statuses = vec![];
    for i in 0..4 {
        let node = if i % 2 == 0 { &a } else { &b };
        let c = api_client();
        let flow: Value = c.get(node.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
        let r = c
            .post(node.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "identifier": email, "password": "wrong-password-1"}))
            .send()
            .await
            .unwrap();
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").is_some()));
    }
    assert_eq!(statuses, vec![(400, false), (400, false), (400, false), (429, true)]);
}

/// Passkeys across nodes: the registration ceremony started on A is finished on B, and a
/// passwordless login started on B is finished on A (challenges live in `flow.internal`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passkeys_across_nodes() {
    if !pg_or_skip() {
        return;
    }
    use idflow_core::config::RelyingParty;
    let (dsn, _) = fresh_dsn(Db::Postgres).await;
    let mut origin = String::new();
    let a = spawn_on(Db::Postgres, dsn.clone(), None, |c| {
        origin = format!("http://localhost:{}", c.serve.public.port.unwrap());
        c.serve.public.base_url = Some(format!("{origin}/"));
        let rp = RelyingParty { id: Some("localhost".into()), origins: vec![origin.clone()], ..Default::default() };
        c.selfservice.methods.passkey.config.rp = rp.clone();
        c.selfservice.methods.webauthn.config.rp = rp;
    })
    .await;
    let cfg = a.engine.cfg.clone();
    let b = spawn_on(Db::Postgres, dsn, None, move |c| {
        c.serve.public.base_url = cfg.serve.public.base_url.clone();
        c.selfservice.methods.passkey.config.rp = cfg.selfservice.methods.passkey.config.rp.clone();
        c.selfservice.methods.webauthn.config.rp = cfg.selfservice.methods.webauthn.config.rp.clone();
    })
    .await;
    let (email, _, identity_id) = a.user().await;
    let ajax = |c: &reqwest::Client, url: String| c.get(url).header("Accept", "application/json").send();
    let post = |c: &reqwest::Client, url: String, body: Value| {
        c.post(url).header("Accept", "application/json").json(&body).send()
    };

    let browser = browser_client();
    let login: Value = ajax(&browser, a.url("/self-service/login/browser")).await.unwrap().json().await.unwrap();
    let r = post(
        &browser,
        a.url(&format!("/self-service/login?flow={}", login["id"].as_str().unwrap())),
        json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf(&login)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let mut device = crate::support::softkey::SoftAuthenticator::new(&origin);
    let flow: Value = ajax(&browser, a.url("/self-service/settings/browser")).await.unwrap().json().await.unwrap();
    let id = flow["id"].as_str().unwrap();
    let on_b: Value =
        ajax(&browser, b.url(&format!("/self-service/settings/flows?id={id}"))).await.unwrap().json().await.unwrap();
    let create = value_json(&on_b, "passkey_create_data");
    assert_eq!(create, value_json(&flow, "passkey_create_data"), "same ceremony options on both nodes");
    let response = device.create(&create["credentialOptions"]).unwrap();
    let r = post(
        &browser,
        b.url(&format!("/self-service/settings?flow={id}")),
        json!({"method": "passkey", "passkey_settings_register": response, "csrf_token": csrf(&flow)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let other = browser_client();
    let flow: Value = ajax(&other, b.url("/self-service/login/browser")).await.unwrap().json().await.unwrap();
    let assertion = device.get(&value_json(&flow, "passkey_challenge")).unwrap();
    let r = post(
        &other,
        a.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())),
        json!({"method": "passkey", "passkey_login": assertion, "csrf_token": csrf(&flow)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["session"]["identity"]["id"], identity_id.as_str());
}
