//! Guard rails of the settings flow (issue #14 item 6): the warning when fewer than three unused
//! recovery codes are left (both dialects and the UI), and T27: a proptest state machine over
//! random add/remove sequences of every method (TOTP, recovery codes, security keys, passkeys,
//! on accounts with and without a password) that checks after every step that the account can
//! still sign in, at the level it needs (never stranded: the last first factor can not go).
//!
//! The number of T27 cases is `IDFLOW_T27_CASES` (default 6, so CI stays fast).

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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::AddTotp),
        Just(Op::RemoveTotp),
        Just(Op::AddCodes),
        Just(Op::DisableCodes),
        Just(Op::AddKey),
        Just(Op::RemoveKey),
        Just(Op::AddPasskey),
        Just(Op::RemovePasskey),
    ]
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
}

fn values_of<'a>(flow: &'a Value, name: &str) -> Vec<&'a Value> {
    flow["ui"]["nodes"].as_array().unwrap().iter().filter(|n| n["attributes"]["name"] == name).collect()
}

impl Account {
    fn has_second_factor(&self) -> bool {
        self.totp.is_some() || !self.keys.is_empty()
    }

    /// Sign in from a new browser with a first factor, then step up when the account has a
    /// second factor. Panics (the property fails) when the account cannot sign in.
    async fn sign_in(&mut self, app: &TestApp) -> Ajax {
        let b = Ajax(browser_client());
        let (s, done) = if self.password {
            let email = self.email.clone();
            b.login(app, "", |_| json!({"method": "password", "identifier": email, "password": PASSWORD})).await
        } else {
            let device = self.passkeys.first_mut().expect("model: no first factor left");
            b.login(app, "", |f| {
                json!({"method": "passkey", "passkey_login": device.get(&value_json(f, "passkey_challenge")).unwrap()})
            })
            .await
        };
        // A browser whose account needs aal2 is sent on to the second factor (422 for JSON).
        let step_up = self.has_second_factor();
        assert!(s == 200 || (step_up && s == 422), "first factor refused ({s}): {done}");
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
        b
    }

    /// Apply one operation through the settings flow of a fresh sign-in.
    async fn apply(&mut self, app: &TestApp, origin: &str, op: Op) {
        let b = self.sign_in(app).await;
        let flow = b.settings(app).await;
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
                let last = !self.password && self.passkeys.len() == 1;
                let offered = values_of(&flow, "passkey_remove");
                assert_eq!(offered[0]["attributes"]["disabled"], last, "{flow}");
                let (s, f) = b.submit(app, &flow, json!({"method": "passkey", "passkey_remove": id})).await;
                if last {
                    // The last way to sign in: refused.
                    assert_eq!(s, 400, "{f}");
                } else {
                    assert_eq!(s, 200, "{f}");
                    self.passkeys.remove(0);
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
        assert!(i.first_factor_count() >= 1, "stranded: no first factor left");
    }
}

/// One case: a fresh account (with a password, or passwordless with one passkey), the ops,
/// and after each op a sign-in from a new browser and the stored state checked.
async fn run_case(app: &TestApp, origin: &str, passwordless: bool, ops: &[Op]) {
    let (email, _, identity_id) = app.user().await;
    let mut acc =
        Account { email, identity_id, password: true, totp: None, codes: false, keys: vec![], passkeys: vec![] };
    if passwordless {
        acc.apply(app, origin, Op::AddPasskey).await;
        let id = acc.identity_id.parse().unwrap();
        let mut stored = app.engine.store.get_identity(id).await.unwrap().unwrap();
        stored.credentials.remove(&CredentialType::Password);
        app.engine.store.commit(Commit { update_identity: Some(&stored), ..Default::default() }).await.unwrap();
        acc.password = false;
    }
    for op in ops {
        acc.apply(app, origin, *op).await;
        acc.check_stored(app).await;
        acc.sign_in(app).await;
    }
}

#[test]
fn t27_factor_sequences_never_strand_an_account() {
    let cases = std::env::var("IDFLOW_T27_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (app, origin) = rt.block_on(async {
        let mut origin = String::new();
        let app = spawn_app_with(Db::Sqlite, |cfg| {
            origin = format!("http://localhost:{}", cfg.serve.public.port.unwrap());
            let rp = RelyingParty { id: Some("localhost".into()), origins: vec![origin.clone()], ..Default::default() };
            cfg.selfservice.methods.webauthn.config.rp = rp.clone();
            cfg.selfservice.methods.passkey.config.rp = rp;
            cfg.limits.second_factor_attempts = 10_000;
            cfg.limits.login_attempts = 10_000;
        })
        .await;
        (app, origin)
    });
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = (any::<bool>(), prop::collection::vec(op(), 1..8));
    runner
        .run(&strategy, |(passwordless, ops)| {
            rt.block_on(run_case(&app, &origin, passwordless, &ops));
            Ok(())
        })
        .unwrap();
    drop(app);
}
