//! Guard rails of the settings flow (issue #14 item 6): the warning when fewer than three unused
//! recovery codes are left (both dialects and the UI), and T27: a proptest state machine over
//! random add/remove sequences of every method (TOTP, recovery codes, security keys, passkeys,
//! setting a password, and linking and unlinking social sign-in providers) on accounts that
//! start with a password, with a passkey only, or with a social link only. After every step the
//! stored credentials must match the model and a new browser signs in with every first factor
//! the model says the account has, at the level it needs (never stranded: the last first factor
//! can not go, and the refusal is Kratos's error).
//!
//! Two tests: without social sign-in (`IDFLOW_T27_CASES` cases, default 6) and with it
//! (`IDFLOW_T27_SOCIAL_CASES`, default 4; needs the local OpenID provider of
//! `support/oidc_provider.rs`, skipped with a message when it cannot be started). Small
//! defaults keep CI fast.

use crate::both_dbs;
use crate::support::softkey::*;
use crate::support::*;
use idflow_core::config::RelyingParty;
use idflow_core::model::CredentialType;
use idflow_core::store::Commit;
use proptest::prelude::*;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

// ---- recovery codes running out ----------------------------------------------------------

/// A fresh aal1 session token for `email`.
async fn aal1_token(app: &TestApp, email: &str) -> String {
    app.login(email, PASSWORD).await["session_token"].as_str().unwrap().to_string()
}

/// Spend one recovery code in an aal2 login (API).
async fn spend_code(app: &TestApp, email: &str, code: &str) {
    let t = aal1_token(app, email).await;
    let lf: Value = api_client()
        .get(app.url("/self-service/login/api?aal=aal2"))
        .header("X-Session-Token", &t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r: Value = api_client()
        .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
        .header("X-Session-Token", &t)
        .json(&json!({"method": "lookup_secret", "lookup_secret": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["session"]["authenticator_assurance_level"], "aal2", "{r}");
}

fn warning(flow: &Value) -> Option<&Value> {
    flow["ui"]["messages"].as_array()?.iter().find(|m| m["id"] == 1050043 || m["id"] == "1050043")
}

async fn few_recovery_codes_warning(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    // No codes: no warning.
    let flow = u.create(&app).await;
    assert!(warning(&flow).is_none(), "{flow}");
    let r = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    let (_, shown) = u.outcome(&app, r).await;
    let codes = lookup_codes(&shown);
    let r = u.submit(&app, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    let (status, done) = u.outcome(&app, r).await;
    assert_eq!(status, 200);
    assert!(warning(&done).is_none(), "12 codes left: {done}");

    // 9 used: 3 left, no warning yet; the 10th: 2 left, the warning.
    for code in &codes[..9] {
        spend_code(&app, &u.email, code).await;
    }
    let t = aal1_token(&app, &u.email).await;
    let api = User { token: t.clone(), ..u };
    assert!(warning(&api.create(&app).await).is_none(), "3 codes left");
    spend_code(&app, &api.email, &codes[9]).await;
    let flow = api.create(&app).await;
    let w = warning(&flow).expect("the warning with 2 codes left").clone();
    assert_eq!(w["type"], "info");
    assert_eq!(w["context"]["unused"], 2);
    // It stays on the form after a submit (here: an unrelated form error).
    let r = api.submit(&app, &flow, json!({"method": "delete_account"})).await;
    let (status, invalid) = api.outcome(&app, r).await;
    assert_eq!(status, 400);
    assert!(warning(&invalid).is_some(), "{invalid}");

    // v1 flow: the same message, id as a string.
    let v1: Value = api_client()
        .get(app.url("/v1/flows/settings"))
        .header("Authorization", format!("Bearer {t}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(warning(&v1).expect("v1 warning")["id"], "1050043");

    // The UI shows it.
    let b = browser_client();
    browser_login(&app, &b, &api.email, PASSWORD).await;
    let r = b.get(app.url("/self-service/settings/browser")).send().await.unwrap();
    let page = b.get(location(&r)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("You have 2 unused recovery codes left"), "{page}");

    // New codes: the warning is gone.
    let flow = api.create(&app).await;
    let r = api.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    let (_, shown) = api.outcome(&app, r).await;
    let r = api.submit(&app, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    let (_, done) = api.outcome(&app, r).await;
    assert!(warning(&done).is_none(), "{done}");
}
both_dbs!(few_recovery_codes_warning);

// ---- T27: add/remove sequences never strand an account ------------------------------------

/// The two social sign-in providers of the social variant (both the local OpenID provider, under
/// two ids: an account can link both).
const SOCIAL: [&str; 2] = ["op-a", "op-b"];

#[derive(Debug, Clone, Copy)]
enum Op {
    AddTotp,
    RemoveTotp,
    AddCodes,
    DisableCodes,
    AddKey,
    RemoveKey,
    AddPasskey,
    RemovePasskey,
    /// Set a password (accounts without one).
    AddPassword,
    /// Link / unlink the social sign-in provider `SOCIAL[i]`.
    Link(usize),
    Unlink(usize),
}

/// The operations of a step; `social` adds linking and unlinking the providers.
fn op(social: bool) -> impl Strategy<Value = Op> {
    let mut ops = vec![
        Op::AddTotp,
        Op::RemoveTotp,
        Op::AddCodes,
        Op::DisableCodes,
        Op::AddKey,
        Op::RemoveKey,
        Op::AddPasskey,
        Op::RemovePasskey,
        Op::AddPassword,
    ];
    if social {
        for i in 0..SOCIAL.len() {
            // Twice each: links and unlinks are the point of the social variant.
            ops.extend([Op::Link(i), Op::Unlink(i), Op::Link(i), Op::Unlink(i)]);
        }
    }
    prop::sample::select(ops)
}

/// How a case's account starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Registered with a password.
    Password,
    /// A password account that adds a passkey, then loses its password (store edit: the
    /// settings flow cannot remove a password).
    Passkey,
    /// Registered by signing in with `SOCIAL[0]`: no password, one social link.
    Social,
}

/// One first factor the account signs in with.
#[derive(Debug, Clone, Copy)]
enum First {
    Password,
    Passkey(usize),
    Social(&'static str),
}

/// The account as the test believes it to be, with the devices that prove it.
struct Account {
    email: String,
    identity_id: String,
    password: bool,
    totp: Option<String>,
    codes: bool,
    /// One authenticator per registered security key / passkey.
    keys: Vec<SoftAuthenticator>,
    passkeys: Vec<SoftAuthenticator>,
    /// The linked providers (of `SOCIAL`), in the order they were linked.
    linked: Vec<&'static str>,
    /// The account's name at the OpenID provider (the subject of every link).
    login: String,
    /// Which first factor the next settings change signs in with (round robin).
    turn: usize,
}

/// An AJAX browser (cookie jar, JSON).
struct Ajax(reqwest::Client);

impl Ajax {
    async fn get(&self, url: &str) -> (u16, Value) {
        let r = self.0.get(url).header(ACCEPT, "application/json").send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn post(&self, url: &str, mut body: Value, flow: &Value) -> (u16, Value) {
        body["csrf_token"] = json!(csrf(flow));
        let r = self.0.post(url).header(ACCEPT, "application/json").json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn login(&self, app: &TestApp, query: &str, body: impl FnOnce(&Value) -> Value) -> (u16, Value) {
        let (s, flow) = self.get(&app.url(&format!("/self-service/login/browser{query}"))).await;
        assert_eq!(s, 200, "{flow}");
        let b = body(&flow);
        self.post(&app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())), b, &flow).await
    }
    async fn settings(&self, app: &TestApp) -> Value {
        let (s, f) = self.get(&app.url("/self-service/settings/browser")).await;
        assert_eq!(s, 200, "{f}");
        f
    }
    async fn submit(&self, app: &TestApp, flow: &Value, body: Value) -> (u16, Value) {
        self.post(&app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())), body, flow).await
    }
    /// An AJAX answer that sends the browser to the provider (422): through the provider's
    /// pages as `login` and back to the callback; returns the callback's redirect.
    async fn via_provider(&self, app: &TestApp, (status, answer): (u16, Value), login: &str) -> String {
        assert_eq!(status, 422, "{answer}");
        assert_eq!(answer["error"]["id"], "browser_location_change_required", "{answer}");
        let to_op = answer["redirect_browser_to"].as_str().unwrap().to_string();
        let callback = through_provider(&self.0, app, to_op, login).await;
        let r = self.0.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "the callback");
        let to = location(&r);
        assert!(!to.starts_with(&app.engine.ui_url("error")), "the callback failed: {to}");
        to
    }
}

fn values_of<'a>(flow: &'a Value, name: &str) -> Vec<&'a Value> {
    flow["ui"]["nodes"].as_array().unwrap().iter().filter(|n| n["attributes"]["name"] == name).collect()
}

/// The "last way to sign in" refusal of a settings submit: Kratos's error 4000001 with
/// `last_sign_in_method` in its context, on the form or on a node.
fn last_sign_in_refusal(flow: &Value) -> Option<&Value> {
    let on_nodes = flow["ui"]["nodes"].as_array()?.iter().filter_map(|n| n["messages"].as_array()).flatten();
    let on_form = flow["ui"]["messages"].as_array().into_iter().flatten();
    on_form.chain(on_nodes).find(|m| m["context"]["last_sign_in_method"] == true)
}

/// The `name` button for `value` (a provider's link / unlink), if the form offers it.
fn button<'a>(flow: &'a Value, name: &str, value: &str) -> Option<&'a Value> {
    values_of(flow, name).into_iter().find(|n| n["attributes"]["value"] == value)
}

impl Account {
    /// A fresh account as `start` says (the social start needs the provider).
    async fn create(app: &TestApp, origin: &str, start: Start) -> Account {
        let login = format!("t27-{}", uuid::Uuid::new_v4().simple());
        let mut acc = Account {
            email: String::new(),
            identity_id: String::new(),
            password: true,
            totp: None,
            codes: false,
            keys: vec![],
            passkeys: vec![],
            linked: vec![],
            login,
            turn: 0,
        };
        match start {
            Start::Password | Start::Passkey => {
                let (email, _, identity_id) = app.user().await;
                (acc.email, acc.identity_id) = (email, identity_id);
            }
            Start::Social => {
                // Signing in with an account nobody linked registers it.
                let b = Ajax(browser_client());
                let answer = b.login(app, "", |_| json!({"method": "oidc", "provider": SOCIAL[0]})).await;
                b.via_provider(app, answer, &acc.login).await;
                let (s, who) = b.get(&app.url("/sessions/whoami")).await;
                assert_eq!(s, 200, "registered by the provider: {who}");
                acc.email = who["identity"]["traits"]["email"].as_str().unwrap().to_string();
                acc.identity_id = who["identity"]["id"].as_str().unwrap().to_string();
                acc.password = false;
                acc.linked.push(SOCIAL[0]);
            }
        }
        if let Start::Passkey = start {
            acc.apply(app, origin, Op::AddPasskey).await;
            let id = acc.identity_id.parse().unwrap();
            let mut stored = app.engine.store.get_identity(id).await.unwrap().unwrap();
            stored.credentials.remove(&CredentialType::Password);
            app.engine.store.commit(Commit { update_identity: Some(&stored), ..Default::default() }).await.unwrap();
            acc.password = false;
        }
        acc.check_stored(app).await;
        acc
    }

    fn has_second_factor(&self) -> bool {
        self.totp.is_some() || !self.keys.is_empty()
    }

    /// Every first factor the model says the account has.
    fn first_factors(&self) -> Vec<First> {
        let mut all = vec![];
        if self.password {
            all.push(First::Password);
        }
        all.extend(self.linked.iter().copied().map(First::Social));
        all.extend((0..self.passkeys.len()).map(First::Passkey));
        all
    }

    /// Sign in from a new browser with the first factor `via`, then step up when the account
    /// has a second factor. Panics (the property fails) when the account cannot sign in.
    async fn sign_in(&mut self, app: &TestApp, via: First) -> Ajax {
        let b = Ajax(browser_client());
        // A browser whose account needs aal2 is sent on to the second factor (422 for JSON).
        let step_up = self.has_second_factor();
        match via {
            First::Password => {
                let email = self.email.clone();
                let (s, done) = b
                    .login(app, "", |_| json!({"method": "password", "identifier": email, "password": PASSWORD}))
                    .await;
                assert!(s == 200 || (step_up && s == 422), "password refused ({s}): {done}");
            }
            First::Passkey(i) => {
                let device = &mut self.passkeys[i];
                let (s, done) = b
                    .login(app, "", |f| {
                        json!({"method": "passkey", "passkey_login": device.get(&value_json(f, "passkey_challenge")).unwrap()})
                    })
                    .await;
                assert!(s == 200 || (step_up && s == 422), "passkey {i} refused ({s}): {done}");
            }
            First::Social(p) => {
                let answer = b.login(app, "", |_| json!({"method": "oidc", "provider": p})).await;
                b.via_provider(app, answer, &self.login).await;
                let (s, who) = b.get(&app.url("/sessions/whoami")).await;
                assert!(s == 200 || (step_up && s == 403), "{p} sign-in gave no session ({s}): {who}");
                if s == 200 {
                    assert_eq!(who["identity"]["id"], self.identity_id.as_str(), "{p} signed in to another account");
                }
            }
        }
        if step_up {
            let (s, done) = if let Some(secret) = self.totp.clone() {
                app.clock.advance(30); // TOTP codes are single use
                b.login(app, "?aal=aal2", |_| json!({"method": "totp", "totp_code": totp_code(&secret, &app.clock)}))
                    .await
            } else {
                let keys = &mut self.keys;
                b.login(app, "?aal=aal2", |f| {
                    let options = value_json(f, "webauthn_login_trigger");
                    let k = keys.iter_mut().find(|k| k.pick(&options).is_ok()).expect("a registered key");
                    json!({"method": "webauthn", "webauthn_login": k.get(&options).unwrap()})
                })
                .await
            };
            assert_eq!(s, 200, "second factor refused: {done}");
            assert_eq!(done["session"]["authenticator_assurance_level"], "aal2");
        }
        let (s, who) = b.get(&app.url("/sessions/whoami")).await;
        assert_eq!(s, 200, "no usable session: {who}");
        assert_eq!(who["identity"]["id"], self.identity_id.as_str(), "signed in to another account");
        b
    }

    /// Sign in with every first factor the model says the account has.
    async fn sign_in_every_way(&mut self, app: &TestApp) {
        let all = self.first_factors();
        assert!(!all.is_empty(), "model: no first factor left");
        for via in all {
            self.sign_in(app, via).await;
        }
    }

    /// Apply one operation through the settings flow of a fresh sign-in (first factors taken
    /// in turn).
    async fn apply(&mut self, app: &TestApp, origin: &str, op: Op) {
        let all = self.first_factors();
        let via = all[self.turn % all.len()];
        self.turn += 1;
        let b = self.sign_in(app, via).await;
        let flow = b.settings(app).await;
        let last_first_factor = self.first_factors().len() == 1;
        match op {
            Op::AddTotp if self.totp.is_none() => {
                let secret = totp_secret(&flow);
                app.clock.advance(30);
                let (s, f) =
                    b.submit(app, &flow, json!({"method": "totp", "totp_code": totp_code(&secret, &app.clock)})).await;
                assert_eq!(s, 200, "{f}");
                self.totp = Some(secret);
            }
            Op::RemoveTotp if self.totp.is_some() => {
                let (s, f) = b.submit(app, &flow, json!({"method": "totp", "totp_unlink": true})).await;
                assert_eq!(s, 200, "{f}");
                self.totp = None;
            }
            Op::AddCodes => {
                let (s, shown) =
                    b.submit(app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
                assert_eq!(s, 200, "{shown}");
                let (s, f) =
                    b.submit(app, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
                assert_eq!(s, 200, "{f}");
                self.codes = true;
            }
            Op::DisableCodes if self.codes => {
                let (s, f) =
                    b.submit(app, &flow, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
                assert_eq!(s, 200, "{f}");
                self.codes = false;
            }
            Op::AddKey if self.keys.len() < 3 => {
                let mut key = SoftAuthenticator::new(origin);
                let response = key.create(&value_json(&flow, "webauthn_register_trigger")).unwrap();
                let body =
                    json!({"method": "webauthn", "webauthn_register": response, "webauthn_register_displayname": "k"});
                let (s, f) = b.submit(app, &flow, body).await;
                assert_eq!(s, 200, "{f}");
                self.keys.push(key);
            }
            Op::RemoveKey if !self.keys.is_empty() => {
                let id = hex::encode(&self.keys[0].creds[0].id);
                let (s, f) = b.submit(app, &flow, json!({"method": "webauthn", "webauthn_remove": id})).await;
                assert_eq!(s, 200, "{f}");
                self.keys.remove(0);
            }
            Op::AddPasskey if self.passkeys.len() < 3 => {
                let mut device = SoftAuthenticator::new(origin);
                let create = value_json(&flow, "passkey_create_data");
                let response = device.create(&create["credentialOptions"]).unwrap();
                let (s, f) =
                    b.submit(app, &flow, json!({"method": "passkey", "passkey_settings_register": response})).await;
                assert_eq!(s, 200, "{f}");
                self.passkeys.push(device);
            }
            Op::RemovePasskey if !self.passkeys.is_empty() => {
                let id = hex::encode(&self.passkeys[0].creds[0].id);
                let offered = values_of(&flow, "passkey_remove");
                assert_eq!(offered[0]["attributes"]["disabled"], last_first_factor, "{flow}");
                let (s, f) = b.submit(app, &flow, json!({"method": "passkey", "passkey_remove": id})).await;
                if last_first_factor {
                    // The last way to sign in: refused with Kratos's error.
                    assert_eq!(s, 400, "{f}");
                    let m = last_sign_in_refusal(&f).unwrap_or_else(|| panic!("no last-sign-in-method error: {f}"));
                    assert_eq!(m["id"], 4000001, "{f}");
                    assert!(m["text"].as_str().unwrap().contains("lock you out"), "{f}");
                } else {
                    assert_eq!(s, 200, "{f}");
                    self.passkeys.remove(0);
                }
            }
            Op::AddPassword if !self.password => {
                let (s, f) = b.submit(app, &flow, json!({"method": "password", "password": PASSWORD})).await;
                assert_eq!(s, 200, "{f}");
                self.password = true;
            }
            Op::Link(i) if !self.linked.contains(&SOCIAL[i]) => {
                let p = SOCIAL[i];
                assert!(button(&flow, "link", p).is_some(), "no link button for {p}: {flow}");
                let answer = b.submit(app, &flow, json!({"method": "oidc", "link": p})).await;
                b.via_provider(app, answer, &self.login).await;
                let (s, f) =
                    b.get(&app.url(&format!("/self-service/settings/flows?id={}", flow["id"].as_str().unwrap()))).await;
                assert_eq!(s, 200, "{f}");
                assert_eq!(f["state"], "success", "linking {p}: {f}");
                assert!(button(&f, "unlink", p).is_some(), "another first factor remains: {f}");
                self.linked.push(p);
            }
            Op::Unlink(i) if self.linked.contains(&SOCIAL[i]) => {
                let p = SOCIAL[i];
                // The form offers no unlink for the last first factor.
                assert_eq!(button(&flow, "unlink", p).is_some(), !last_first_factor, "{flow}");
                let (s, f) = b.submit(app, &flow, json!({"method": "oidc", "unlink": p})).await;
                if last_first_factor {
                    // The last way to sign in: refused with Kratos's error.
                    assert_eq!(s, 400, "{f}");
                    let m = last_sign_in_refusal(&f).unwrap_or_else(|| panic!("no last-sign-in-method error: {f}"));
                    assert_eq!(m["id"], 4000001, "{f}");
                    assert!(m["text"].as_str().unwrap().contains("last remaining first factor"), "{f}");
                } else {
                    assert_eq!(s, 200, "{f}");
                    assert_eq!(f["state"], "success", "{f}");
                    assert!(button(&f, "link", p).is_some(), "{f}");
                    self.linked.retain(|l| *l != p);
                }
            }
            _ => {} // not applicable in this state
        }
    }

    /// The stored identity agrees with the model.
    async fn check_stored(&self, app: &TestApp) {
        let i = app.engine.store.get_identity(self.identity_id.parse().unwrap()).await.unwrap().unwrap();
        let counts = i.factor_counts();
        let n = |t| counts.get(&t).copied().unwrap_or(0);
        assert_eq!(n(CredentialType::Password), usize::from(self.password));
        assert_eq!(n(CredentialType::Totp), usize::from(self.totp.is_some()));
        assert_eq!(n(CredentialType::LookupSecret), usize::from(self.codes));
        assert_eq!(n(CredentialType::Webauthn), self.keys.len());
        assert_eq!(n(CredentialType::Passkey), self.passkeys.len());
        assert_eq!(n(CredentialType::Oidc), self.linked.len());
        let mut links: Vec<String> =
            i.credential(CredentialType::Oidc).map(|c| c.identifiers.clone()).unwrap_or_default();
        let mut want: Vec<String> = self.linked.iter().map(|p| format!("{p}:{}", self.login)).collect();
        links.sort();
        want.sort();
        assert_eq!(links, want, "the stored social links");
        assert_eq!(i.first_factor_count(), self.first_factors().len());
        assert!(i.first_factor_count() >= 1, "stranded: no first factor left");
    }
}

/// One case: a fresh account, the ops, and after each op the stored state checked and a sign-in
/// from a new browser with every first factor the model says the account has.
async fn run_case(app: &TestApp, origin: &str, start: Start, ops: &[Op]) {
    let mut acc = Account::create(app, origin, start).await;
    for op in ops {
        acc.apply(app, origin, *op).await;
        acc.check_stored(app).await;
        acc.sign_in_every_way(app).await;
    }
}

/// The number of cases: `var` or `default`.
fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The server for a T27 run (SQLite): WebAuthn and passkeys for `http://localhost:<port>`, no
/// attempt limits, and `tweak` (the social variant's providers). Returns it with that origin.
async fn t27_app(port: Option<u16>, tweak: impl FnOnce(&mut idflow_core::config::Config)) -> (TestApp, String) {
    let mut origin = String::new();
    let app = spawn_app_with(Db::Sqlite, |cfg| {
        if let Some(port) = port {
            cfg.serve.public.port = Some(port);
            cfg.serve.public.base_url = Some(format!("http://127.0.0.1:{port}/"));
        }
        origin = format!("http://localhost:{}", cfg.serve.public.port.unwrap());
        let rp = RelyingParty { id: Some("localhost".into()), origins: vec![origin.clone()], ..Default::default() };
        cfg.selfservice.methods.webauthn.config.rp = rp.clone();
        cfg.selfservice.methods.passkey.config.rp = rp;
        cfg.limits.second_factor_attempts = 10_000;
        cfg.limits.login_attempts = 10_000;
        tweak(cfg);
    })
    .await;
    (app, origin)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Without social sign-in (no external process): cases `IDFLOW_T27_CASES` (default 6).
#[test]
fn t27_factor_sequences_never_strand_an_account() {
    let rt = runtime();
    let (app, origin) = rt.block_on(t27_app(None, |_| {}));
    let config =
        ProptestConfig { cases: cases("IDFLOW_T27_CASES", 6), failure_persistence: None, ..Default::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let start = prop_oneof![Just(Start::Password), Just(Start::Passkey)];
    let strategy = (start, prop::collection::vec(op(false), 1..8));
    runner
        .run(&strategy, |(start, ops)| {
            rt.block_on(run_case(&app, &origin, start, &ops));
            Ok(())
        })
        .unwrap();
    drop(app);
}

/// With social sign-in: two providers (the local OpenID provider), link and unlink among the
/// ops, accounts that start with a password, a passkey only, or a social link only (registered
/// by the provider); every sign-in with a link goes through the provider. Cases
/// `IDFLOW_T27_SOCIAL_CASES` (default 4: each provider round trip is several HTTP hops).
/// Skipped (with a message) when the provider cannot be started.
#[test]
fn t27_factor_sequences_with_social_sign_in_never_strand_an_account() {
    let rt = runtime();
    let port = reserve_port();
    let redirects: Vec<String> =
        SOCIAL.iter().map(|p| format!("http://127.0.0.1:{port}/self-service/methods/oidc/callback/{p}")).collect();
    let Some(provider) = rt.block_on(start_provider(free_port(), &redirects)) else { return };
    let (app, origin) = rt.block_on(t27_app(Some(port), |cfg| {
        let providers: Vec<Value> =
            SOCIAL.iter().map(|p| generic_provider(p, &format!("OP {p}"), &provider.issuer)).collect();
        cfg.selfservice.methods.oidc =
            serde_json::from_value(json!({"enabled": true, "config": {"providers": providers}})).unwrap();
    }));
    let config =
        ProptestConfig { cases: cases("IDFLOW_T27_SOCIAL_CASES", 4), failure_persistence: None, ..Default::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let start = prop_oneof![Just(Start::Password), Just(Start::Passkey), Just(Start::Social)];
    let strategy = (start, prop::collection::vec(op(true), 1..8));
    runner
        .run(&strategy, |(start, ops)| {
            // The provider's ID tokens are valid for an hour of real time; each case starts with
            // the server's clock (moved on by TOTP sign-ins) back at real time.
            app.clock.advance(-app.clock.offset_secs());
            rt.block_on(run_case(&app, &origin, start, &ops));
            Ok(())
        })
        .unwrap();
    rt.block_on(async move {
        drop(app);
        drop(provider);
    });
}
