//! The mail courier against a real SMTP server: an in-process SMTP sink (plain, or STARTTLS
//! with a self-signed certificate) receives every message the worker sends. Covers delivery
//! (From/To/Subject/bodies/headers, template overrides), an SMTP server that is down, slow or
//! rejects the recipient (retried, then abandoned and listed by the admin API), two nodes on
//! one PostgreSQL sending each of 200 messages exactly once, the store's claim/lease/record
//! contract on both engines, stopping the worker mid-round, the admin API's pagination and
//! redaction, `courier watch`, and the startup warning when no SMTP server is configured.

use crate::both_dbs;
use crate::support::*;
use idflow_core::clock::Clock;
use idflow_core::config::{Config, Dur};
use idflow_core::courier::{MessageFilter, MessageStatus, Outcome, TemplateType};
use idflow_core::model::*;
use idflow_core::store::{Commit, StoreError};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Helpers (the SMTP sink is in `support::smtp`)

/// Render and queue one recovery-code mail to `to` through the engine (what a flow does).
async fn queue(app: &TestApp, to: &str, code: &str) -> Uuid {
    let m = app
        .engine
        .render_mail(
            TemplateType::RecoveryCodeValid,
            to,
            json!({"RecoveryCode": code, "ExpiresInMinutes": 15, "Identity": {"traits": {"email": to}}}),
        )
        .unwrap();
    app.engine.store.courier_queue(std::slice::from_ref(&m)).await.unwrap();
    m.id
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value, Option<String>) {
    let r = api_client().get(app.admin_url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let link = r.headers().get("link").map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), link)
}

async fn message(app: &TestApp, id: Uuid) -> Value {
    let (status, v, _) = admin_get(app, &format!("/admin/courier/messages/{id}")).await;
    assert_eq!(status, 200, "{v}");
    v
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// Queued mail reaches the SMTP server with the configured sender, extra headers, the
/// recipient, the subject and both bodies; the admin API shows it sent with one dispatch.
async fn courier_delivers_queued_mail(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let uri = plain_uri(sink.addr);
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(uri));
        c.courier.smtp.headers.insert("X-Idflow-Test".into(), "courier".into());
        c.courier.templates.insert(
            "recovery_code".into(),
            serde_json::from_value(json!({"valid": {"email": {
                "subject": "Your code for {{ .Identity.traits.email }}",
            }}}))
            .unwrap(),
        );
    })
    .await;
    let (a, b) = (unique_email(), unique_email());
    let id_a = queue(&app, &a, "481516").await;
    let id_b = queue(&app, &b, "234200").await;
    eventually(20, "two mails delivered", || async { sink.mails().len() >= 2 }).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 2, "each message is delivered once");
    let ma = mails.iter().find(|m| m.to == vec![a.clone()]).expect("mail to a");
    assert_eq!(ma.from, "accounts@idflow.test");
    assert!(!ma.tls);
    let d = &ma.data;
    assert!(
        d.contains("From: \"Idflow Accounts\" <accounts@idflow.test>")
            || d.contains("From: Idflow Accounts <accounts@idflow.test>"),
        "{d}"
    );
    assert!(d.contains(&format!("To: {a}")), "{d}");
    assert!(d.contains(&format!("Subject: Your code for {a}")), "{d}");
    assert!(d.contains("X-Idflow-Test: courier"), "{d}");
    assert!(d.contains("Content-Type: text/plain") && d.contains("Content-Type: text/html"), "{d}");
    assert!(d.contains("481516") && d.contains("<strong>481516</strong>"), "{d}");
    assert!(!d.contains("234200"));

    for (id, to) in [(id_a, &a), (id_b, &b)] {
        eventually(10, "status sent", || async { message(&app, id).await["status"] == "sent" }).await;
        let m = message(&app, id).await;
        assert_eq!(m["recipient"], to.as_str());
        assert_eq!(m["type"], "email");
        assert_eq!(m["template_type"], "recovery_code_valid");
        assert_eq!(m["send_count"], 1);
        assert_eq!(m["subject"], format!("Your code for {to}"), "dev mode shows the subject");
        let ds = m["dispatches"].as_array().unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0]["status"], "success");
        assert_eq!(ds[0]["message_id"], id.to_string());
        assert!(ds[0]["error"].is_null());
    }
}
both_dbs!(courier_delivers_queued_mail);

/// `smtp://` means STARTTLS is required: the sink offers it with a self-signed certificate,
/// accepted with `skip_ssl_verify=true`; without it, delivery fails (untrusted certificate)
/// and the message stays queued for a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_starttls_with_self_signed_certificate() {
    let sink = start_sink(Mode::Accept, Some(self_signed_tls())).await;
    let port = sink.addr.port();
    let app = spawn_app_with(Db::Sqlite, |c| {
        courier_cfg(c, Some(format!("smtp://127.0.0.1:{port}/?skip_ssl_verify=true&server_name=localhost")))
    })
    .await;
    let to = unique_email();
    let id = queue(&app, &to, "777000").await;
    eventually(20, "mail over STARTTLS", || async { !sink.mails().is_empty() }).await;
    let mails = sink.mails();
    assert!(mails[0].tls, "the message was sent after STARTTLS");
    assert!(mails[0].data.contains("777000"));
    eventually(10, "status sent", || async { message(&app, id).await["status"] == "sent" }).await;

    // The same server without skip_ssl_verify: the certificate is not trusted.
    let strict = spawn_app_with(Db::Sqlite, |c| {
        courier_cfg(c, Some(format!("smtp://localhost:{port}/")));
        c.courier.worker.retry_backoff = Dur(Duration::from_secs(60));
    })
    .await;
    let id = queue(&strict, &unique_email(), "123123").await;
    eventually(20, "a failed dispatch", || async {
        message(&strict, id).await["dispatches"].as_array().is_some_and(|d| !d.is_empty())
    })
    .await;
    let m = message(&strict, id).await;
    assert_eq!(m["status"], "queued", "retried later, not lost: {m}");
    assert_eq!(m["dispatches"][0]["status"], "failed");
    assert!(m["dispatches"][0]["error"]["message"].as_str().is_some_and(|e| !e.is_empty()), "{m}");
    assert_eq!(sink.mails().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Failures

/// An SMTP server that rejects the recipient, and one too slow to greet within
/// `courier.smtp.timeout`: each message is attempted 1 + `message_retries` times, then
/// `abandoned`, and listed by `GET /admin/courier/messages?status=abandoned` with its failed
/// dispatches.
async fn courier_rejecting_or_slow_server_abandons_after_retries(db: Db) {
    let reject = start_sink(Mode::RejectRecipient, None).await;
    let slow = start_sink(Mode::Slow(Duration::from_secs(4)), None).await;
    let (ru, su) = (plain_uri(reject.addr), plain_uri(slow.addr));
    let tweak = |c: &mut Config| c.courier.message_retries = 2;
    let app_r = spawn_app_with(db, |c| {
        courier_cfg(c, Some(ru));
        tweak(c)
    })
    .await;
    let app_s = spawn_app_with(db, |c| {
        courier_cfg(c, Some(su));
        tweak(c)
    })
    .await;
    let to_r = unique_email();
    let id_r = queue(&app_r, &to_r, "100001").await;
    let id_s = queue(&app_s, &unique_email(), "100002").await;
    for (app, id) in [(&app_r, id_r), (&app_s, id_s)] {
        eventually(30, "abandoned", || async { message(app, id).await["status"] == "abandoned" }).await;
        let m = message(app, id).await;
        assert_eq!(m["send_count"], 3, "{m}");
        let ds = m["dispatches"].as_array().unwrap();
        assert_eq!(ds.len(), 3, "{m}");
        assert!(ds.iter().all(|d| d["status"] == "failed" && d["error"]["message"].is_string()), "{m}");
        let (status, list, _) = admin_get(app, "/admin/courier/messages?status=abandoned").await;
        assert_eq!(status, 200);
        let ids: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec![id.to_string().as_str()]);
        let (_, sent, _) = admin_get(app, "/admin/courier/messages?status=sent").await;
        assert_eq!(sent, json!([]));
    }
    assert_eq!(reject.rcpts.lock().unwrap().iter().filter(|r| **r == to_r).count(), 3, "three attempts reached RCPT");
    assert!(reject.mails().is_empty() && slow.mails().is_empty());
    let err = message(&app_r, id_r).await["dispatches"][0]["error"]["message"].as_str().unwrap().to_string();
    assert!(err.contains("550") || err.to_lowercase().contains("no such user"), "{err}");
}
both_dbs!(courier_rejecting_or_slow_server_abandons_after_retries);

/// An SMTP server that is down: the message is retried with back-off and delivered once the
/// server is back (nothing lost); the failed attempts are on record.
async fn courier_down_server_retries_until_it_is_back(db: Db) {
    let parked = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = parked.local_addr().unwrap();
    drop(parked);
    let uri = plain_uri(addr);
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(uri));
        c.courier.message_retries = 50;
    })
    .await;
    let to = unique_email();
    let id = queue(&app, &to, "909090").await;
    eventually(20, "two failed attempts", || async {
        message(&app, id).await["send_count"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(message(&app, id).await["status"], "queued");
    let sink = start_sink_on(TcpListener::bind(addr).await.unwrap(), Mode::Accept, None);
    eventually(30, "delivered after the server came back", || async { !sink.mails().is_empty() }).await;
    eventually(10, "status sent", || async { message(&app, id).await["status"] == "sent" }).await;
    let m = message(&app, id).await;
    let ds = m["dispatches"].as_array().unwrap();
    assert_eq!(ds.last().unwrap()["status"], "success");
    assert!(ds[..ds.len() - 1].iter().all(|d| d["status"] == "failed"), "{m}");
    assert_eq!(m["send_count"].as_u64().unwrap() as usize, ds.len());
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(sink.mails()[0].to, vec![to]);
}
both_dbs!(courier_down_server_retries_until_it_is_back);

// ---------------------------------------------------------------------------------------------
// Several nodes

/// Two server nodes on one PostgreSQL database, both running the worker: 200 queued messages
/// are delivered exactly once between them, and both nodes take part.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn courier_two_nodes_send_each_message_exactly_once() {
    if pg_admin_url().is_none() {
        eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: multi-node courier test skipped");
        return;
    }
    let sink = start_sink(Mode::Accept, None).await;
    let (dsn, _) = fresh_dsn(Db::Postgres).await;
    let node = |from: &'static str| {
        let uri = plain_uri(sink.addr);
        move |c: &mut Config| {
            courier_cfg(c, Some(uri));
            c.courier.smtp.from_address = from.into();
            c.courier.worker.pull_count = 5;
            c.courier.worker.pull_wait = Dur(Duration::from_millis(10));
        }
    };
    let a = spawn_on(Db::Postgres, dsn.clone(), None, node("node-a@idflow.test")).await;
    let b = spawn_on(Db::Postgres, dsn, None, node("node-b@idflow.test")).await;
    let recipients: Vec<String> =
        (0..200).map(|i| format!("multi-{i}-{}@example.com", Uuid::new_v4().simple())).collect();
    let mut messages = vec![];
    for (i, to) in recipients.iter().enumerate() {
        messages.push(
            a.engine
                .render_mail(TemplateType::RecoveryCodeValid, to, json!({"RecoveryCode": format!("{i:06}")}))
                .unwrap(),
        );
    }
    for chunk in messages.chunks(50) {
        a.engine.store.courier_queue(chunk).await.unwrap();
    }
    eventually(120, "200 mails", || async { sink.mails().len() >= 200 }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 200, "no message is sent twice");
    let mut seen: Vec<&String> = mails.iter().flat_map(|m| &m.to).collect();
    seen.sort();
    let mut want: Vec<&String> = recipients.iter().collect();
    want.sort();
    assert_eq!(seen, want, "every message exactly once");
    let by_a = mails.iter().filter(|m| m.from == "node-a@idflow.test").count();
    let by_b = mails.iter().filter(|m| m.from == "node-b@idflow.test").count();
    assert_eq!(by_a + by_b, 200);
    assert!(by_a > 0 && by_b > 0, "both nodes sent mail (a: {by_a}, b: {by_b})");
    let sent = b
        .engine
        .store
        .courier_list(&MessageFilter { status: Some(MessageStatus::Sent), recipient: None }, None, 1000)
        .await
        .unwrap();
    assert_eq!(sent.len(), 200);
    assert!(sent.iter().all(|m| m.send_count == 1 && m.dispatches.len() == 1));
}

// ---------------------------------------------------------------------------------------------
// Store contract

fn flow() -> Flow {
    let t = Clock::new().now();
    let id = Uuid::new_v4();
    Flow {
        id,
        kind: FlowKind::Settings,
        flow_type: FlowType::Api,
        identity_id: None,
        expires_at: t + time::Duration::hours(1),
        issued_at: t,
        request_url: "http://localhost/self-service/settings/api".into(),
        return_to: None,
        ui: idflow_core::ui::Ui::new(format!("http://localhost/self-service/settings?flow={id}")),
        state: "show_form".into(),
        active: None,
        refresh: false,
        requested_aal: Aal::Aal1,
        csrf_token: String::new(),
        internal: json!({}),
        version: 0,
        created_at: t,
        updated_at: t,
        reason: None,
    }
}

/// The store's courier contract, written once for both engines: mail queued with a flow
/// change commits or rolls back with it; claims are exclusive and leased (an expired lease is
/// taken over, the old claim can no longer record); a failed attempt is not due before its
/// retry time; sent and abandoned messages are never claimed again.
async fn courier_store_claims_are_exclusive_and_leased(db: Db) {
    let (dsn, _tmp) = fresh_dsn(db).await;
    let s = idflow_store::connect(&dsn, &idflow_store::PoolConfig::default()).await.unwrap();
    let courier = idflow_core::courier::Courier::builtin();
    let t0 = Clock::new().now();
    let mk = |to: &str, t: time::OffsetDateTime| {
        courier.render(TemplateType::VerificationCodeValid, to, json!({"VerificationCode": "1"}), t).unwrap()
    };

    // Same transaction as the flow change: a stale flow version rolls the mail back too.
    let f = flow();
    s.create_flow(&f).await.unwrap();
    let lost = mk("lost@example.com", t0);
    let mut stale = f.clone();
    stale.version = 7;
    let r = s
        .commit(Commit { update_flow: Some(&stale), queue_messages: std::slice::from_ref(&lost), ..Default::default() })
        .await;
    assert!(matches!(r, Err(StoreError::Busy(_))), "{r:?}");
    assert!(s.courier_get(lost.id).await.unwrap().is_none(), "the mail rolled back with the flow");
    let kept = mk("kept@example.com", t0);
    s.commit(Commit { update_flow: Some(&f), queue_messages: std::slice::from_ref(&kept), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(s.courier_get(kept.id).await.unwrap().unwrap().status, MessageStatus::Queued);

    let more: Vec<_> = (1..5).map(|i| mk(&format!("m{i}@example.com"), t0 + time::Duration::milliseconds(i))).collect();
    s.courier_queue(&more).await.unwrap();

    // Two claims at once get disjoint sets covering everything.
    let lease = t0 + time::Duration::minutes(5);
    let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
    let (x, y) = tokio::join!(
        s.courier_claim(t0 + time::Duration::seconds(1), lease, c1, 3),
        s.courier_claim(t0 + time::Duration::seconds(1), lease, c2, 3)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 5, "5 due messages, 6 slots");
    let mut ids: Vec<Uuid> = x.iter().chain(&y).map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no message in both claims");
    assert!(x.iter().chain(&y).all(|m| m.status == MessageStatus::Processing));
    // Nothing left while the leases hold.
    assert!(s.courier_claim(t0 + time::Duration::seconds(2), lease, Uuid::new_v4(), 10).await.unwrap().is_empty());

    // Outcomes of the first claim: sent, retry later, abandoned.
    let (claim_x, rest) = (if x.len() >= 3 { (c1, x) } else { (c2, y) }).clone();
    let now = t0 + time::Duration::seconds(3);
    assert!(s.courier_record(rest[0].id, claim_x, &Outcome::Sent, now).await.unwrap());
    let retry_at = now + time::Duration::seconds(30);
    assert!(
        s.courier_record(
            rest[1].id,
            claim_x,
            &Outcome::Failed { error: "451 try later".into(), retry_at: Some(retry_at) },
            now
        )
        .await
        .unwrap()
    );
    assert!(
        s.courier_record(rest[2].id, claim_x, &Outcome::Failed { error: "550 no".into(), retry_at: None }, now)
            .await
            .unwrap()
    );
    // A wrong claim cannot record.
    assert!(!s.courier_record(rest[0].id, Uuid::new_v4(), &Outcome::Sent, now).await.unwrap());
    let sent = s.courier_get(rest[0].id).await.unwrap().unwrap();
    assert_eq!((sent.status, sent.send_count), (MessageStatus::Sent, 1));
    assert_eq!(sent.dispatches.iter().filter(|d| d.status == idflow_core::courier::DispatchStatus::Success).count(), 1);
    let retry = s.courier_get(rest[1].id).await.unwrap().unwrap();
    assert_eq!((retry.status, retry.send_count), (MessageStatus::Queued, 1));
    assert_eq!(retry.dispatches[0].error, Some(json!({"message": "451 try later"})));
    let gone = s.courier_get(rest[2].id).await.unwrap().unwrap();
    assert_eq!(gone.status, MessageStatus::Abandoned);

    // Not due before its retry time; the other claim's messages are still leased.
    assert!(s.courier_claim(now, lease, Uuid::new_v4(), 10).await.unwrap().is_empty());
    // After the lease: the other claim's messages (a crashed node) and the retry are claimed
    // again; sent and abandoned ones never.
    let later = lease + time::Duration::seconds(1);
    let c3 = Uuid::new_v4();
    let again = s.courier_claim(later, later + time::Duration::minutes(5), c3, 10).await.unwrap();
    let mut again_ids: Vec<Uuid> = again.iter().map(|m| m.id).collect();
    again_ids.sort();
    let mut want: Vec<Uuid> = ids.iter().copied().filter(|id| *id != rest[0].id && *id != rest[2].id).collect();
    want.sort();
    assert_eq!(again_ids, want);
    // The expired claim can no longer record for a message taken over.
    let other_claim = if claim_x == c1 { c2 } else { c1 };
    let taken_over = again.iter().find(|m| m.id != rest[1].id).unwrap();
    assert!(!s.courier_record(taken_over.id, other_claim, &Outcome::Sent, later).await.unwrap());
    assert!(s.courier_record(taken_over.id, c3, &Outcome::Sent, later).await.unwrap());

    // Filters.
    let f = MessageFilter { status: None, recipient: Some("kept@example.com".into()) };
    assert_eq!(s.courier_list(&f, None, 10).await.unwrap().len(), 1);
    let abandoned = MessageFilter { status: Some(MessageStatus::Abandoned), recipient: None };
    assert_eq!(s.courier_list(&abandoned, None, 10).await.unwrap()[0].id, rest[2].id);
}
both_dbs!(courier_store_claims_are_exclusive_and_leased);

// ---------------------------------------------------------------------------------------------
// Admin API

/// Without SMTP the server starts and mail waits as `queued`. The list is newest first, pages
/// with `page_size`/`page_token` and a `Link` header, filters by `status` and `recipient`,
/// and refuses bad parameters with 400; subject and body are redacted unless in dev mode.
async fn courier_admin_api_pages_filters_and_redacts(db: Db) {
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, None);
        c.dev = false;
    })
    .await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(queue(&app, &format!("page-{i}@example.com"), &format!("55555{i}")).await);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut got = vec![];
    let mut path = "/admin/courier/messages?page_size=2".to_string();
    let mut pages = 0;
    loop {
        let (status, v, link) = admin_get(&app, &path).await;
        assert_eq!(status, 200, "{v}");
        pages += 1;
        for m in v.as_array().unwrap() {
            assert_eq!(m["status"], "queued");
            assert_eq!(m["subject"], "<redacted-unless-dev-mode>");
            assert_eq!(m["body"], "<redacted-unless-dev-mode>");
            got.push(m["id"].as_str().unwrap().to_string());
        }
        match link {
            Some(l) => {
                let url = l.trim_start_matches('<').split('>').next().unwrap().to_string();
                assert!(url.contains("page_token=") && url.contains("page_size=2"), "{l}");
                path = url[url.find("/admin/").unwrap()..].to_string();
            }
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = ids.iter().rev().map(|i| i.to_string()).collect();
    assert_eq!(got, want, "newest first, every message once");

    let (_, v, _) = admin_get(&app, "/admin/courier/messages?recipient=page-3@example.com").await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], ids[3].to_string());
    let (_, v, _) = admin_get(&app, "/admin/courier/messages?status=queued").await;
    assert_eq!(v.as_array().unwrap().len(), 5);
    let (_, v, _) = admin_get(&app, "/admin/courier/messages?status=sent").await;
    assert_eq!(v, json!([]));
    for bad in ["status=bogus", "page_size=0", "page_size=x", "page_token=nope"] {
        let (status, v, _) = admin_get(&app, &format!("/admin/courier/messages?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, _, _) = admin_get(&app, &format!("/admin/courier/messages/{}", Uuid::new_v4())).await;
    assert_eq!(status, 404);
    let (status, _, _) = admin_get(&app, "/admin/courier/messages/not-a-uuid").await;
    assert_eq!(status, 400);
    let m = message(&app, ids[0]).await;
    assert_eq!(m["subject"], "<redacted-unless-dev-mode>");
    assert_eq!(m["template_type"], "recovery_code_valid");
    assert_eq!(m["send_count"], 0);
    assert_eq!(m["dispatches"], json!([]));

    // Dev mode shows them.
    let dev = spawn_app_with(db, |c| courier_cfg(c, None)).await;
    let id = queue(&dev, "dev@example.com", "424242").await;
    let m = message(&dev, id).await;
    assert_eq!(m["subject"], "Recover access to your account");
    assert!(m["body"].as_str().unwrap().contains("424242"));
}
both_dbs!(courier_admin_api_pages_filters_and_redacts);

/// `idflow courier watch` sends mail queued by a server that runs without the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_watch_command_sends_queued_mail() {
    let sink = start_sink(Mode::Accept, None).await;
    let (dsn, _tmp) = fresh_dsn(Db::Sqlite).await;
    let app = spawn_on(Db::Sqlite, dsn.clone(), None, |c| {
        courier_cfg(c, None);
        c.courier.worker.enabled = false;
    })
    .await;
    let id = queue(&app, "watch@example.com", "313131").await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idflow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["courier", "watch", "--database", &dsn])
        .env("IDFLOW_LOG", "error")
        .env("IDFLOW_COURIER__SMTP__CONNECTION_URI", plain_uri(sink.addr))
        .env("IDFLOW_COURIER__WORKER__PULL_WAIT", "50ms")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(30, "mail sent by courier watch", || async { !sink.mails().is_empty() }).await;
    assert!(sink.mails()[0].data.contains("313131"));
    eventually(10, "status sent", || async { message(&app, id).await["status"] == "sent" }).await;
    child.kill().await.unwrap();
}

/// A transport that takes its time and counts what it was given.
struct SlowRecorder(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl idflow_core::courier::worker::MailTransport for SlowRecorder {
    async fn send(&self, m: &idflow_core::courier::Message) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.0.lock().unwrap().push(m.recipient.clone());
        Ok(())
    }
}

/// Stopping the worker mid-round finishes and records the message being sent; the other
/// claimed messages are not attempted and are taken over once their lease ends (not lost).
async fn courier_worker_stop_finishes_the_current_message(db: Db) {
    let (dsn, _tmp) = fresh_dsn(db).await;
    let s = idflow_store::connect(&dsn, &idflow_store::PoolConfig::default()).await.unwrap();
    let clock = Clock::new();
    let courier = idflow_core::courier::Courier::builtin();
    let msgs: Vec<_> = (0..3)
        .map(|i| {
            courier
                .render(TemplateType::RecoveryCodeValid, &format!("stop-{i}@example.com"), json!({}), clock.now())
                .unwrap()
        })
        .collect();
    s.courier_queue(&msgs).await.unwrap();
    let mut cfg = Config::default().courier;
    cfg.worker.pull_count = 3;
    cfg.worker.lease = Dur(Duration::from_secs(60));
    let transport = Arc::new(SlowRecorder(Mutex::new(vec![])));
    let worker = idflow_core::courier::worker::Worker::new(s.clone(), clock.clone(), cfg, transport.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(150)).await;
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), run).await.expect("the worker stops promptly").unwrap();
    assert_eq!(transport.0.lock().unwrap().len(), 1, "only the message in flight was sent");
    let all = s.courier_list(&MessageFilter::default(), None, 10).await.unwrap();
    let count = |st| all.iter().filter(|m| m.status == st).count();
    assert_eq!((count(MessageStatus::Sent), count(MessageStatus::Processing)), (1, 2));
    // After the lease the two are claimed again.
    let later = clock.now() + time::Duration::seconds(61);
    let again = s.courier_claim(later, later + time::Duration::minutes(1), Uuid::new_v4(), 10).await.unwrap();
    assert_eq!(again.len(), 2);
}
both_dbs!(courier_worker_stop_finishes_the_current_message);

/// `idflow serve` without SMTP starts, and its log says where to configure delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_serve_without_smtp_warns_where_to_configure_it() {
    use tokio::io::AsyncBufReadExt as _;
    let (dsn, _tmp) = fresh_dsn(Db::Sqlite).await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_idflow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .args(["serve", "--database", &dsn, "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
        .env("IDFLOW_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("no SMTP server configured") && l.contains("courier.smtp.connection_uri") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "the startup warning names courier.smtp.connection_uri");
    assert!(child.try_wait().unwrap().is_none(), "the server keeps running");
    child.kill().await.unwrap();
}
