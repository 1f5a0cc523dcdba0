//! Errors render themselves with the request id in both dialects (handlers, extractors,
//! router fallbacks, admin), and the flow responder answers one outcome per client: API flow,
//! browser script (JSON), browser navigation.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

async fn get_with_id(url: String, method: reqwest::Method, rid: &str) -> (u16, Value) {
    let r = api_client().request(method, url).header("X-Request-Id", rid).send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], rid);
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn errors_carry_the_request_id(db: Db) {
    let app = spawn_app(db).await;
    let get = reqwest::Method::GET;
    // Kratos envelope: a handler's `?`, the router fallback, the admin API.
    for (url, status) in [
        (app.url("/self-service/login/flows?id=nope"), 400),
        (app.url("/no/such/route"), 404),
        (app.admin_url("/admin/identities/not-a-uuid"), 400),
    ] {
        let (s, body) = get_with_id(url.clone(), get.clone(), "rid-kratos-1").await;
        assert_eq!(s, status, "{url}: {body}");
        assert_eq!(body["error"]["request"], "rid-kratos-1", "{url}: {body}");
        assert_eq!(body["error"]["code"], status, "{url}: {body}");
    }
    // A body the extractor cannot parse is refused before the handler runs, in the envelope.
    let r = api_client()
        .post(app.url("/self-service/login?flow=00000000-0000-0000-0000-000000000000"))
        .header("X-Request-Id", "rid-body")
        .header(CONTENT_TYPE, "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["ory-error-id"], "");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request"], "rid-body", "{body}");
    assert!(body["error"]["reason"].as_str().unwrap().starts_with("Unable to decode JSON payload"), "{body}");

    // v1 envelope: a handler's `?`, the session check, the 405 and 404 fallbacks.
    let flow = "/v1/flows/settings/00000000-0000-0000-0000-000000000000";
    for (url, method, status, code) in [
        (app.url("/v1/flows/login/not-a-uuid"), get.clone(), 404, "AVNOLOGY_AUTH_004"),
        (app.url(flow), get.clone(), 401, "AVNOLOGY_AUTH_005"),
        (app.url("/v1/flows/login"), reqwest::Method::PUT, 405, "AVNOLOGY_AUTH_001"),
        (app.url("/v1/nothing/here"), get.clone(), 404, "AVNOLOGY_AUTH_004"),
    ] {
        let (s, body) = get_with_id(url.clone(), method, "rid-v1-1").await;
        assert_eq!(s, status, "{url}: {body}");
        assert_eq!(body["error"]["request_id"], "rid-v1-1", "{url}: {body}");
        assert_eq!(body["error"]["code"], code, "{url}: {body}");
    }

    // Without a request id the server makes one: the error names the one in the response header.
    let r = api_client().get(app.url("/sessions/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!rid.is_empty());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request"], rid.as_str(), "{body}");
}
both_dbs!(errors_carry_the_request_id);

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A browser login flow (fetched as JSON by a client with a cookie jar); returns (client, flow).
async fn browser_login_flow(app: &TestApp) -> (reqwest::Client, Value) {
    let c = browser_client();
    let r = c.get(app.url("/self-service/login/browser")).header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get_all(SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("csrf_token_")));
    (c, r.json().await.unwrap())
}

fn password_form(flow: &Value, email: &str, password: &str) -> Vec<(&'static str, String)> {
    vec![
        ("method", "password".into()),
        ("identifier", email.into()),
        ("password", password.into()),
        ("csrf_token", csrf(flow)),
    ]
}

/// A password login of an identity with TOTP does not finish the login: the API flow gets the
/// aal1 session, a browser script 422 `browser_location_change_required`, a navigating browser
/// a 303; both browsers get the session cookie and a new CSRF cookie.
async fn second_factor_due_by_client(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    app.admin_create(&email, Some(SECRET)).await;

    let login = app.login(&email, PASSWORD).await;
    assert!(login["session_token"].as_str().is_some_and(|t| !t.is_empty()), "{login}");
    assert!(login["session"]["identity"].is_null(), "{login}");
    assert!(login["continue_with"].is_null(), "{login}");

    let (c, flow) = browser_login_flow(&app).await;
    let submit = app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()));
    let r = c
        .post(&submit)
        .header(ACCEPT, "application/json")
        .form(&password_form(&flow, &email, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["ory-error-id"], "browser_location_change_required");
    let cookies: Vec<String> =
        r.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("ory_kratos_session=")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("csrf_token_")), "{cookies:?}");
    let body: Value = r.json().await.unwrap();
    let to = body["redirect_browser_to"].as_str().unwrap();
    assert!(to.contains("/self-service/login/browser?aal=aal2"), "{body}");
    assert_eq!(body["error"]["reason"], format!("In order to complete this flow please redirect the browser to: {to}"));

    let (c, flow) = browser_login_flow(&app).await;
    let submit = app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()));
    let r = c.post(&submit).form(&password_form(&flow, &email, PASSWORD)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()[LOCATION].to_str().unwrap().contains("/self-service/login/browser?aal=aal2"));
    assert_eq!(r.headers().get_all(SET_COOKIE).iter().count(), 2);
}
both_dbs!(second_factor_due_by_client);

/// Form errors: a navigating browser goes back to the flow's UI, a script gets 400 with the flow.
/// A flow that does not exist is a JSON error for every client.
async fn form_errors_by_client(db: Db) {
    let app = spawn_app(db).await;
    let (email, _, _) = app.user().await;

    let (c, flow) = browser_login_flow(&app).await;
    let id = flow["id"].as_str().unwrap();
    let submit = app.url(&format!("/self-service/login?flow={id}"));
    let r = c.post(&submit).form(&password_form(&flow, &email, "wrong-password-1")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let ui = r.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(ui.ends_with(&format!("?flow={id}")), "{ui}");

    let mut body = json!({"method": "password", "identifier": email, "password": "wrong-password-1"});
    body["csrf_token"] = json!(csrf(&flow));
    let r = c.post(&submit).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let flow: Value = r.json().await.unwrap();
    assert_eq!(flow["id"], id);
    assert!(message_ids(&flow).contains(&4000006), "{flow}");

    let r = c
        .post(app.url("/self-service/login?flow=00000000-0000-0000-0000-000000000000"))
        .form(&[("method", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 404, "{e}");
}
both_dbs!(form_errors_by_client);
