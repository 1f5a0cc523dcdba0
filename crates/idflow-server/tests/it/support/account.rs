//! Account security helpers: the activity log through the admin route, the security
//! notifications queued for an address (admin courier list), API login steps with a session
//! token (refresh, step-up) and waiting for a notification at the SMTP sink.

use super::*;
use serde_json::{Value, json};

/// `GET /admin/identities/{id}/activity` (all of it, newest first).
pub async fn admin_activity(app: &TestApp, id: &str) -> Vec<Value> {
    let resp = api_client()
        .get(app.admin_url(&format!("/admin/identities/{id}/activity?page_size=1000")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "admin activity");
    resp.json().await.unwrap()
}

/// The `kind` of each entry, newest first.
pub fn kinds(entries: &[Value]) -> Vec<String> {
    entries.iter().map(|e| e["kind"].as_str().unwrap_or_default().to_string()).collect()
}

/// The entries of one kind (and outcome).
pub fn entries_of<'a>(entries: &'a [Value], kind: &str, outcome: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind && e["outcome"] == outcome).collect()
}

/// Wait until the identity's log has an entry of `kind` with `outcome`; returns the log.
pub async fn wait_for_activity(app: &TestApp, id: &str, kind: &str, outcome: &str) -> Vec<Value> {
    eventually(10, &format!("activity {kind} {outcome}"), || async {
        !entries_of(&admin_activity(app, id).await, kind, outcome).is_empty()
    })
    .await;
    admin_activity(app, id).await
}

/// The security notifications queued for `email` (admin courier list, any status).
pub async fn notifications_to(app: &TestApp, email: &str) -> Vec<Value> {
    let url = format!("{}?recipient={}&page_size=1000", app.admin_url("/admin/courier/messages"), form_encode(email));
    let list: Vec<Value> = api_client().get(url).send().await.unwrap().json().await.unwrap();
    list.into_iter().filter(|m| m["template_type"] == "security_notification").collect()
}

/// Wait for the `n`-th mail (from 1) to `to` whose subject is `subject`; returns it decoded.
pub async fn nth_mail(sink: &Sink, to: &str, subject: &str, n: usize) -> String {
    let header = format!("Subject: {subject}");
    let matching = || -> Vec<String> {
        sink.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to) && m.data.contains(&header))
            .map(|m| quoted_printable_decode(&m.data))
            .collect()
    };
    eventually(20, &format!("mail {n} {subject:?} to {to}"), || {
        let c = matching().len();
        async move { c >= n }
    })
    .await;
    matching().swap_remove(n - 1)
}

/// Wait for a mail to `to` whose subject is `subject`; returns it decoded.
pub async fn notice_mail(sink: &Sink, to: &str, subject: &str) -> String {
    nth_mail(sink, to, subject, 1).await
}

/// Create an API login flow (`query`: `?refresh=true`, `?aal=aal2`) with an optional session
/// token and submit `body` with it; returns (status, JSON).
pub async fn api_login_step(app: &TestApp, query: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut r = api_client().get(app.url(&format!("/self-service/login/api{query}")));
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    let flow: Value = r.send().await.unwrap().json().await.unwrap();
    let mut r =
        api_client().post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()))).json(&body);
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A password sign-in body.
pub fn password_body(email: &str, password: &str) -> Value {
    json!({"method": "password", "identifier": email, "password": password})
}
