//! Admin API: identity create (plaintext and imported hashes), validation and conflicts, get
//! with and without credential configs, keyset pagination, filters, PUT, JSON-Patch, delete,
//! identity sessions and admin sessions; admin paths on the public port redirect.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    api_client().post(app.admin_url("/admin/identities")).json(&body).send().await.unwrap()
}

async fn get_identity(app: &TestApp, id: &str, query: &str) -> reqwest::Response {
    api_client().get(app.admin_url(&format!("/admin/identities/{id}{query}"))).send().await.unwrap()
}

async fn whoami_status(app: &TestApp, token: &str) -> u16 {
    whoami(app, token).await.status().as_u16()
}

/// Plaintext password: 201 with `Location`, credentials without configs; the password works.
async fn admin_create_plaintext(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let resp = create(
        &app,
        json!({"traits": {"email": email.to_uppercase(), "name": {"first": "Ada"}}, "metadata_admin": {"note": "vip"},
               "metadata_public": {"plan": "pro"}, "credentials": {"password": {"config": {"password": PASSWORD}}}}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let id_loc = location(&resp);
    let ident: Value = resp.json().await.unwrap();
    let id = ident["id"].as_str().unwrap();
    assert_eq!(id_loc, format!("{}/admin/identities/{id}", app.admin));
    assert_eq!(ident["state"], "active");
    assert_eq!(ident["metadata_admin"]["note"], "vip");
    assert_eq!(ident["credentials"]["password"]["identifiers"], json!([email]), "identifier normalised: {ident}");
    assert!(ident["credentials"]["password"].get("config").is_none(), "no config unless included");
    assert_eq!(ident["verifiable_addresses"][0]["value"], email.as_str());

    let out = app.login(&email, PASSWORD).await;
    assert_eq!(out["session"]["identity"]["id"], id);
    assert!(out["session"]["identity"].get("metadata_admin").is_none(), "metadata_admin is admin-only");
}
both_dbs!(admin_create_plaintext);

/// An imported bcrypt hash logs in (and is upgraded to the configured hasher on login); an
/// unknown hash format is a 400.
async fn admin_create_hashed(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let resp = create(
        &app,
        json!({"traits": {"email": email}, "credentials": {"password": {"config": {"hashed_password": hash}}}}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let full: Value = get_identity(&app, &id, "?include_credential=password").await.json().await.unwrap();
    assert_eq!(full["credentials"]["password"]["config"]["hashed_password"], hash.as_str());

    let bad = app.login(&email, "not-the-password-1").await;
    assert_eq!(message_ids(&bad), vec![4000006]);
    let out = app.login(&email, PASSWORD).await;
    assert!(out["session_token"].is_string(), "{out}");
    let full: Value = get_identity(&app, &id, "?include_credential=password").await.json().await.unwrap();
    let now = full["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap();
    assert!(now.starts_with("$argon2id$"), "rehashed on login: {now}");
    assert!(app.login(&email, PASSWORD).await["session_token"].is_string());

    for bad_hash in ["plaintext-is-not-a-hash", "$2b$04$tooshort", "$argon2id$v=19$m=1,t=1,p=1$x$y"] {
        let resp = create(&app, json!({"traits": {"email": unique_email()}, "credentials": {"password": {"config": {"hashed_password": bad_hash}}}})).await;
        kratos_error(resp, 400, None).await;
    }
}
both_dbs!(admin_create_hashed);

/// Strict decoding, trait validation and uniqueness.
async fn admin_create_rejections(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    assert_eq!(create(&app, json!({"traits": {"email": email}})).await.status(), 201);

    let body =
        kratos_error(create(&app, json!({"traits": {"email": unique_email()}, "passwort": "x"})).await, 400, None)
            .await;
    assert!(body["error"]["reason"].as_str().unwrap().contains("passwort"), "{body}");
    let resp = create(&app, json!({"traits": {"email": email.to_uppercase()}})).await;
    let body = kratos_error(resp, 409, None).await;
    assert_eq!(body["error"]["reason"], "This identity conflicts with another identity that already exists.");

    for traits in [
        json!({"email": "not-an-email"}),
        json!({}),
        json!({"email": 42}),
        json!("a string"),
        json!({"email": unique_email(), "extra": 1}),
    ] {
        let resp = create(&app, json!({"traits": traits})).await;
        kratos_error(resp, 400, None).await;
    }
    let resp = create(&app, json!({"traits": {"email": unique_email()}, "state": "asleep"})).await;
    kratos_error(resp, 400, None).await;
    let resp = create(&app, json!({"traits": {"email": unique_email()}, "schema_id": "nope"})).await;
    kratos_error(resp, 400, None).await;
    let resp =
        create(&app, json!({"traits": {"email": unique_email()}, "credentials": {"password": {"config": {}}}})).await;
    kratos_error(resp, 400, None).await;
    let resp = create(
        &app,
        json!({"traits": {"email": unique_email()}, "credentials": {"totp": {"config": {"totp_url": "http://x"}}}}),
    )
    .await;
    kratos_error(resp, 400, None).await;
    let resp =
        create(&app, json!({"traits": {"email": unique_email()}, "credentials": {"magic": {"config": {}}}})).await;
    kratos_error(resp, 400, None).await;
}
both_dbs!(admin_create_rejections);

/// GET: configs only with `include_credential`; unknown ids 404, malformed 400.
async fn admin_get_identity(db: Db) {
    let app = spawn_app(db).await;
    let secret = new_totp_secret();
    let ident = app.admin_create(&unique_email(), Some(&secret)).await;
    let id = ident["id"].as_str().unwrap();

    let plain: Value = get_identity(&app, id, "").await.json().await.unwrap();
    assert!(plain["credentials"]["password"].get("config").is_none());
    assert!(plain["credentials"]["totp"].get("config").is_none());
    assert_eq!(plain["credentials"]["totp"]["identifiers"], json!([id]));

    let full: Value = get_identity(&app, id, "?include_credential=password").await.json().await.unwrap();
    assert!(full["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap().starts_with("$argon2id$"));
    assert!(full["credentials"]["totp"].get("config").is_none(), "only the included type");
    let both: Value =
        get_identity(&app, id, "?include_credential=password&include_credential=totp").await.json().await.unwrap();
    assert!(both["credentials"]["totp"]["config"]["totp_url"].as_str().unwrap().contains(&secret));

    kratos_error(get_identity(&app, id, "?include_credential=magic").await, 400, None).await;
    kratos_error(get_identity(&app, &uuid::Uuid::new_v4().to_string(), "").await, 404, None).await;
    kratos_error(get_identity(&app, "not-a-uuid", "").await, 400, None).await;
    // The admin listener also serves the paths without the /admin prefix.
    let resp = api_client().get(app.admin_url(&format!("/identities/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
both_dbs!(admin_get_identity);

fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get("link")?.to_str().ok()?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(link.trim_start_matches('<').split('>').next()?.to_string())
}

/// Keyset pagination with `page_size`/`page_token` and the `Link` header; the
/// `credentials_identifier` filter.
async fn admin_list_identities(db: Db) {
    let app = spawn_app(db).await;
    let mut emails = vec![];
    for _ in 0..5 {
        let e = unique_email();
        app.admin_create(&e, None).await;
        emails.push(e);
    }
    let c = api_client();
    let mut url = Some(app.admin_url("/admin/identities?page_size=2"));
    let mut seen = vec![];
    let mut pages = 0;
    while let Some(u) = url {
        let resp = c.get(&u).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        url = next_link(&resp);
        if let Some(n) = &url {
            assert!(n.starts_with(&format!("{}/admin/identities?", app.admin)), "{n}");
            assert!(n.contains("page_token="), "{n}");
        }
        let page: Value = resp.json().await.unwrap();
        let page = page.as_array().unwrap();
        assert!(page.len() <= 2);
        for i in page {
            assert!(i.get("credentials").is_none(), "list omits credentials: {i}");
            seen.push(i["traits"]["email"].as_str().unwrap().to_string());
        }
        pages += 1;
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let mut want = emails.clone();
    want.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, want, "every identity exactly once");

    let all: Value = c.get(app.admin_url("/admin/identities")).send().await.unwrap().json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5);

    let one: Value = c
        .get(app.admin_url(&format!("/admin/identities?credentials_identifier={}", emails[3].to_uppercase())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let one = one.as_array().unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["traits"]["email"], emails[3].as_str());
    assert!(one[0]["credentials"]["password"].is_object(), "the filter expands credentials");
    let none: Value = c
        .get(app.admin_url("/admin/identities?credentials_identifier=nobody@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));

    let resp = c.get(app.admin_url("/admin/identities?page_token=garbage")).send().await.unwrap();
    kratos_error(resp, 400, None).await;
    let resp = c
        .get(app.admin_url(&format!("/admin/identities?credentials_identifier=a@b.c&ids={}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    kratos_error(resp, 400, None).await;
}
both_dbs!(admin_list_identities);

/// PUT replaces traits (identifiers follow); PATCH applies a JSON patch; forbidden paths 400.
async fn admin_update_identity(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let id = app.admin_create(&email, None).await["id"].as_str().unwrap().to_string();
    let c = api_client();
    let url = app.admin_url(&format!("/admin/identities/{id}"));

    let new_email = unique_email();
    let resp = c
        .put(&url)
        .json(&json!({"traits": {"email": new_email}, "state": "active", "metadata_public": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ident: Value = resp.json().await.unwrap();
    assert_eq!(ident["traits"]["email"], new_email.as_str());
    assert_eq!(ident["metadata_public"]["x"], 1);
    assert_eq!(ident["credentials"]["password"]["identifiers"], json!([new_email]));
    assert!(app.login(&new_email, PASSWORD).await["session_token"].is_string(), "login with the new identifier");
    assert_eq!(message_ids(&app.login(&email, PASSWORD).await), vec![4000006], "the old identifier is gone");
    kratos_error(c.put(&url).json(&json!({"traits": {"email": "bad"}})).send().await.unwrap(), 400, None).await;
    kratos_error(
        c.put(&url).json(&json!({"traits": {"email": unique_email()}, "bogus": true})).send().await.unwrap(),
        400,
        None,
    )
    .await;
    let missing = app.admin_url(&format!("/admin/identities/{}", uuid::Uuid::new_v4()));
    kratos_error(c.put(&missing).json(&json!({"traits": {"email": unique_email()}})).send().await.unwrap(), 404, None)
        .await;
    // Taking another identity's identifier conflicts.
    let taken = unique_email();
    app.admin_create(&taken, None).await;
    kratos_error(c.put(&url).json(&json!({"traits": {"email": taken}})).send().await.unwrap(), 409, None).await;

    let patched_email = unique_email();
    let resp = c
        .patch(&url)
        .json(&json!([{"op": "replace", "path": "/traits/email", "value": patched_email}]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ident: Value = resp.json().await.unwrap();
    assert_eq!(ident["traits"]["email"], patched_email.as_str());
    assert_eq!(ident["metadata_public"]["x"], 1, "untouched fields stay");
    assert!(app.login(&patched_email, PASSWORD).await["session_token"].is_string());

    for ops in [
        json!([{"op": "replace", "path": "/id", "value": uuid::Uuid::new_v4()}]),
        json!([{"op": "remove", "path": "/credentials"}]),
        json!([{"op": "replace", "path": "/traits/email", "value": "not-an-email"}]),
        json!([{"op": "replace", "path": "/state", "value": "asleep"}]),
        json!([{"op": "replace", "path": "/traits/nothing/here", "value": 1}]),
        json!({"op": "replace"}),
    ] {
        let resp = c.patch(&url).json(&ops).send().await.unwrap();
        kratos_error(resp, 400, None).await;
    }
    let after: Value = get_identity(&app, &id, "").await.json().await.unwrap();
    assert_eq!(after["traits"]["email"], patched_email.as_str(), "failed patches change nothing");
    kratos_error(c.patch(&missing).json(&json!([])).send().await.unwrap(), 404, None).await;
}
both_dbs!(admin_update_identity);

/// DELETE: 204, then 404; the identity's sessions die with it.
async fn admin_delete_identity(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, id) = app.user().await;
    let (_, other_token, _) = app.user().await;
    let c = api_client();
    let url = app.admin_url(&format!("/admin/identities/{id}"));
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 204);
    kratos_error(get_identity(&app, &id, "").await, 404, None).await;
    kratos_error(c.delete(&url).send().await.unwrap(), 404, None).await;
    assert_eq!(whoami_status(&app, &token).await, 401);
    assert_eq!(whoami_status(&app, &other_token).await, 200);
}
both_dbs!(admin_delete_identity);

/// `/admin/identities/{id}/sessions` list and delete; `/admin/sessions/{id}` get and delete.
async fn admin_sessions(db: Db) {
    let app = spawn_app(db).await;
    let (email, t1, id) = app.user().await;
    let t2 = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let (_, other, other_id) = app.user().await;
    let c = api_client();

    let list: Value =
        c.get(app.admin_url(&format!("/admin/identities/{id}/sessions"))).send().await.unwrap().json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s["identity"]["id"] == id.as_str()));
    let sid = list[0]["id"].as_str().unwrap().to_string();

    let s: Value = c.get(app.admin_url(&format!("/admin/sessions/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["id"], sid.as_str());
    assert_eq!(s["active"], true);
    assert_eq!(s["identity"]["id"], id.as_str());
    assert_eq!(c.delete(app.admin_url(&format!("/admin/sessions/{sid}"))).send().await.unwrap().status(), 204);
    let s: Value = c.get(app.admin_url(&format!("/admin/sessions/{sid}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(s["active"], false, "disabled, not deleted");
    let alive = [whoami_status(&app, &t1).await, whoami_status(&app, &t2).await];
    assert!(alive.contains(&401) && alive.contains(&200), "exactly the disabled session died: {alive:?}");

    let unknown = uuid::Uuid::new_v4();
    kratos_error(c.get(app.admin_url(&format!("/admin/sessions/{unknown}"))).send().await.unwrap(), 404, None).await;
    kratos_error(c.delete(app.admin_url(&format!("/admin/sessions/{unknown}"))).send().await.unwrap(), 404, None).await;
    kratos_error(c.get(app.admin_url("/admin/sessions/not-a-uuid")).send().await.unwrap(), 400, None).await;
    kratos_error(
        c.get(app.admin_url(&format!("/admin/identities/{unknown}/sessions"))).send().await.unwrap(),
        404,
        None,
    )
    .await;

    let resp = c.delete(app.admin_url(&format!("/admin/identities/{id}/sessions"))).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(whoami_status(&app, &t1).await, 401);
    assert_eq!(whoami_status(&app, &t2).await, 401);
    assert_eq!(whoami_status(&app, &other).await, 200, "other identities keep their sessions");
    let list: Value =
        c.get(app.admin_url(&format!("/admin/identities/{id}/sessions"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, json!([]));
    let list: Value = c
        .get(app.admin_url(&format!("/admin/identities/{other_id}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}
both_dbs!(admin_sessions);

/// Admin paths on the public port → 307 to the admin URL (and vice versa).
async fn admin_path_on_public_port(db: Db) {
    let app = spawn_app(db).await;
    let resp = api_client().get(app.url("/admin/identities?page_size=1")).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(location(&resp), format!("{}/admin/identities?page_size=1", app.admin));
    let resp = api_client().get(app.admin_url("/self-service/login/api?refresh=true")).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(location(&resp), format!("{}/self-service/login/api?refresh=true", app.public));
    // An unknown route is a 404 in the envelope.
    kratos_error(api_client().get(app.url("/no/such/route")).send().await.unwrap(), 404, None).await;
}
both_dbs!(admin_path_on_public_port);
