//! The storage suite: written once against the `Store` trait and run on SQLite and PostgreSQL.

use crate::both_dbs;
use crate::support::*;
use idflow_core::clock::Clock;
use idflow_core::model::*;
use idflow_core::store::{Commit, IdentityFilter, Store, StoreError};
use idflow_store::PoolConfig;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

async fn store(db: Db) -> (Arc<dyn Store>, String, Option<TempDir>) {
    let (dsn, tmp) = fresh_dsn(db).await;
    let s = idflow_store::connect(&dsn, &PoolConfig::default()).await.expect("connect and migrate");
    assert_eq!(s.backend(), if db == Db::Sqlite { "sqlite" } else { "postgres" });
    s.ping().await.unwrap();
    (s, dsn, tmp)
}

fn now() -> time::OffsetDateTime {
    Clock::new().now()
}

/// An identity with a password and a TOTP credential, addresses and metadata.
fn identity(email: &str) -> Identity {
    let t = now();
    let mut i = Identity::new("default", json!({"email": email, "name": {"first": "Store", "last": "Test"}}), t);
    i.metadata_public = json!({"plan": "pro"});
    i.metadata_admin = json!({"note": "vip"});
    i.external_id = Some(format!("ext-{}", Uuid::new_v4()));
    i.credentials.insert(
        CredentialType::Password,
        Credential::new(
            CredentialType::Password,
            vec![email.to_string()],
            json!({"hashed_password": "$argon2id$dummy"}),
            t,
        ),
    );
    i.credentials.insert(
        CredentialType::Totp,
        Credential::new(
            CredentialType::Totp,
            vec![i.id.to_string()],
            json!({"totp_url": "otpauth://totp/x?secret=ABC"}),
            t,
        ),
    );
    i.verifiable_addresses.push(VerifiableAddress {
        id: Uuid::new_v4(),
        value: email.to_string(),
        verified: true,
        via: "email".into(),
        status: "completed".into(),
        verified_at: Some(t),
        created_at: t,
        updated_at: t,
    });
    i.recovery_addresses.push(RecoveryAddress {
        id: Uuid::new_v4(),
        value: email.to_string(),
        via: "email".into(),
        created_at: t,
        updated_at: t,
    });
    i
}

fn session(identity_id: Uuid) -> Session {
    let t = now();
    Session {
        id: Uuid::new_v4(),
        token_hash: format!("tok-{}", Uuid::new_v4()),
        logout_token_hash: format!("lo-{}", Uuid::new_v4()),
        identity_id,
        active: true,
        aal: Aal::Aal1,
        authentication_methods: vec![AuthMethod {
            method: "password".into(),
            aal: Aal::Aal1,
            completed_at: t,
            provider: None,
        }],
        authenticated_at: t,
        issued_at: t,
        expires_at: t + time::Duration::hours(24),
        devices: vec![Device {
            id: Uuid::new_v4(),
            ip_address: "127.0.0.1".into(),
            user_agent: "test".into(),
            location: String::new(),
        }],
        created_at: t,
        updated_at: t,
    }
}

fn flow(identity_id: Option<Uuid>) -> Flow {
    let t = now();
    let id = Uuid::new_v4();
    Flow {
        id,
        kind: FlowKind::Settings,
        flow_type: FlowType::Api,
        identity_id,
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
        internal: json!({"totp_secret": "SECRET"}),
        version: 0,
        created_at: t,
        updated_at: t,
        reason: None,
    }
}

async fn create_identity(s: &Arc<dyn Store>, i: &Identity) -> Result<u64, StoreError> {
    s.commit(Commit { create_identity: Some(i), ..Default::default() }).await
}

/// Create and read back: every field survives, lookups by identifier and external id work.
async fn store_identity_roundtrip(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let i = identity("round@example.com");
    create_identity(&s, &i).await.unwrap();
    let got = s.get_identity(i.id).await.unwrap().expect("stored");
    assert_eq!(got, i);
    let by_ident = s.find_identity_by_identifier(CredentialType::Password, "round@example.com").await.unwrap().unwrap();
    assert_eq!(by_ident.id, i.id);
    assert!(s.find_identity_by_identifier(CredentialType::Totp, "round@example.com").await.unwrap().is_none());
    assert!(s.find_identity_by_identifier(CredentialType::Password, "other@example.com").await.unwrap().is_none());
    let by_ext = s.find_identity_by_external_id(i.external_id.as_deref().unwrap()).await.unwrap().unwrap();
    assert_eq!(by_ext.id, i.id);
    assert!(s.get_identity(Uuid::new_v4()).await.unwrap().is_none());
    assert_eq!(s.count_identities().await.unwrap(), 1);
}
both_dbs!(store_identity_roundtrip);

/// A taken identifier (or external id, or address) conflicts, and the failed transaction
/// leaves nothing behind.
async fn store_unique_conflicts(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let a = identity("taken@example.com");
    create_identity(&s, &a).await.unwrap();

    let b = identity("taken@example.com");
    assert!(matches!(create_identity(&s, &b).await, Err(StoreError::Conflict(_))));
    assert!(s.get_identity(b.id).await.unwrap().is_none(), "rolled back");

    let mut c = identity("free@example.com");
    c.external_id = a.external_id.clone();
    assert!(matches!(create_identity(&s, &c).await, Err(StoreError::Conflict(_))));
    assert!(s.get_identity(c.id).await.unwrap().is_none());

    let mut d = identity("free2@example.com");
    d.verifiable_addresses[0].value = "taken@example.com".into();
    assert!(matches!(create_identity(&s, &d).await, Err(StoreError::Conflict(_))));
    assert!(s.find_identity_by_identifier(CredentialType::Password, "free2@example.com").await.unwrap().is_none());
    assert_eq!(s.count_identities().await.unwrap(), 1);

    // Updating into a taken identifier conflicts too and changes nothing.
    let e = identity("e@example.com");
    create_identity(&s, &e).await.unwrap();
    let mut e2 = e.clone();
    e2.credentials.get_mut(&CredentialType::Password).unwrap().identifiers = vec!["taken@example.com".into()];
    assert!(matches!(
        s.commit(Commit { update_identity: Some(&e2), ..Default::default() }).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_identity(e.id).await.unwrap().unwrap(), e);
}
both_dbs!(store_unique_conflicts);

/// Optimistic concurrency on identities: an update with a stale version is Busy.
async fn store_identity_version(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let i = identity("v@example.com");
    create_identity(&s, &i).await.unwrap();
    let mut upd = s.get_identity(i.id).await.unwrap().unwrap();
    assert_eq!(upd.version, 0);
    upd.traits = json!({"email": "v@example.com", "name": {"first": "New"}});
    upd.credentials.remove(&CredentialType::Totp);
    upd.credentials.get_mut(&CredentialType::Password).unwrap().identifiers = vec!["v2@example.com".into()];
    s.commit(Commit { update_identity: Some(&upd), ..Default::default() }).await.unwrap();
    let got = s.get_identity(i.id).await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.traits["name"]["first"], "New");
    assert!(got.credential(CredentialType::Totp).is_none(), "children replaced");
    assert!(s.find_identity_by_identifier(CredentialType::Password, "v@example.com").await.unwrap().is_none());
    assert!(s.find_identity_by_identifier(CredentialType::Password, "v2@example.com").await.unwrap().is_some());

    // `upd` still carries version 0: stale.
    let mut stale = upd.clone();
    stale.traits = json!({"email": "v@example.com", "name": {"first": "Stale"}});
    assert!(matches!(
        s.commit(Commit { update_identity: Some(&stale), ..Default::default() }).await,
        Err(StoreError::Busy(_))
    ));
    assert_eq!(s.get_identity(i.id).await.unwrap().unwrap().traits["name"]["first"], "New");
    stale.version = 1;
    s.commit(Commit { update_identity: Some(&stale), ..Default::default() }).await.unwrap();
    assert_eq!(s.get_identity(i.id).await.unwrap().unwrap().version, 2);
}
both_dbs!(store_identity_version);

/// Which write a credential row comes from (SQLite rowid, PostgreSQL xmin): it changes only when
/// the row is written.
async fn row_location(db: Db, dsn: &str, credential_id: Uuid) -> String {
    use sqlx::Connection;
    match db {
        Db::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(dsn).await.unwrap();
            sqlx::query_scalar::<_, String>("SELECT CAST(rowid AS TEXT) FROM credentials WHERE id = $1")
                .bind(credential_id)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
        Db::Postgres => {
            let mut c = sqlx::PgConnection::connect(dsn).await.unwrap();
            sqlx::query_scalar::<_, String>("SELECT xmin::text FROM credentials WHERE id = $1")
                .bind(credential_id)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }
}

/// Updates with the previous state rewrite only the children that changed; the result is
/// the same as a full rewrite: traits only, one credential changed, one removed, one added,
/// addresses changed; a `previous` of another version falls back to the full rewrite.
async fn store_identity_partial_update(db: Db) {
    let (s, dsn, _tmp) = store(db).await;
    let i = identity("p@example.com");
    create_identity(&s, &i).await.unwrap();
    // Rows inserted after i's, so a rewrite of one of i's rows cannot land where it was.
    create_identity(&s, &identity("later@example.com")).await.unwrap();
    let pw_id = i.credentials[&CredentialType::Password].id;
    let totp_id = i.credentials[&CredentialType::Totp].id;
    let (pw_at, totp_at) = (row_location(db, &dsn, pw_id).await, row_location(db, &dsn, totp_id).await);
    let check = |got: &Identity, want: &Identity| {
        assert_eq!(got.traits, want.traits);
        assert_eq!(got.credentials, want.credentials);
        assert_eq!(got.verifiable_addresses, want.verifiable_addresses);
        assert_eq!(got.recovery_addresses, want.recovery_addresses);
    };
    let commit = |upd: Identity, prev: Identity| {
        let s = s.clone();
        async move {
            s.commit(Commit { update_identity: Some(&upd), previous_identity: Some(&prev), ..Default::default() })
                .await
                .unwrap();
            let got = s.get_identity(upd.id).await.unwrap().unwrap();
            assert_eq!(got.version, upd.version + 1);
            (got, upd)
        }
    };

    let prev = s.get_identity(i.id).await.unwrap().unwrap();
    let mut upd = prev.clone();
    upd.traits["name"]["first"] = json!("Only");
    let (got, upd) = commit(upd, prev).await;
    check(&got, &upd);
    assert_eq!(row_location(db, &dsn, pw_id).await, pw_at, "an unchanged credential is not rewritten");
    assert_eq!(row_location(db, &dsn, totp_id).await, totp_at, "an unchanged credential is not rewritten");

    let prev = got;
    let mut upd = prev.clone();
    let pw = upd.credentials.get_mut(&CredentialType::Password).unwrap();
    pw.identifiers = vec!["p2@example.com".into()];
    pw.config = json!({"hashed_password": "$argon2id$other"});
    upd.credentials.remove(&CredentialType::Totp);
    upd.credentials.insert(
        CredentialType::LookupSecret,
        Credential::new(CredentialType::LookupSecret, vec![upd.id.to_string()], json!({"codes": []}), now()),
    );
    upd.verifiable_addresses[0].value = "p2@example.com".into();
    upd.recovery_addresses.clear();
    let (got, upd) = commit(upd, prev).await;
    check(&got, &upd);
    assert_ne!(row_location(db, &dsn, pw_id).await, pw_at, "the changed credential is written");
    assert!(s.find_identity_by_identifier(CredentialType::Password, "p@example.com").await.unwrap().is_none());
    assert!(s.find_identity_by_identifier(CredentialType::Password, "p2@example.com").await.unwrap().is_some());

    // A stale `previous` (another version) is ignored: everything is rewritten.
    let stale_prev = upd.clone();
    let mut upd = got.clone();
    upd.credentials.remove(&CredentialType::LookupSecret);
    s.commit(Commit { update_identity: Some(&upd), previous_identity: Some(&stale_prev), ..Default::default() })
        .await
        .unwrap();
    check(&s.get_identity(i.id).await.unwrap().unwrap(), &upd);
}
both_dbs!(store_identity_partial_update);

/// Flows: create/get round trip; compare-and-swap updates, of two concurrent updates with the
/// same version exactly one wins.
async fn store_flow_cas(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let f = flow(None);
    s.create_flow(&f).await.unwrap();
    assert_eq!(s.get_flow(f.id).await.unwrap().unwrap(), f);
    assert!(s.get_flow(Uuid::new_v4()).await.unwrap().is_none());

    let mut f1 = f.clone();
    f1.state = "success".into();
    s.commit(Commit { update_flow: Some(&f1), ..Default::default() }).await.unwrap();
    let got = s.get_flow(f.id).await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.state, "success");
    assert!(matches!(
        s.commit(Commit { update_flow: Some(&f1), ..Default::default() }).await,
        Err(StoreError::Busy(_))
    ));

    for round in 0..5 {
        let base = s.get_flow(f.id).await.unwrap().unwrap();
        let (mut a, mut b) = (base.clone(), base.clone());
        a.state = format!("a{round}");
        b.state = format!("b{round}");
        let (s1, s2) = (s.clone(), s.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { s1.commit(Commit { update_flow: Some(&a), ..Default::default() }).await }),
            tokio::spawn(async move { s2.commit(Commit { update_flow: Some(&b), ..Default::default() }).await })
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra.is_ok() != rb.is_ok(), "round {round}: exactly one wins: {ra:?} {rb:?}");
        let a_won = ra.is_ok();
        let loser = if a_won { rb } else { ra };
        assert!(matches!(loser, Err(StoreError::Busy(_))), "{loser:?}");
        let after = s.get_flow(f.id).await.unwrap().unwrap();
        assert_eq!(after.version, base.version + 1);
        assert_eq!(after.state, if a_won { format!("a{round}") } else { format!("b{round}") });
    }
}
both_dbs!(store_flow_cas);

/// The raw `flows.data` of a flow, or (with `set`) overwrite it, as an older or newer build would.
async fn raw_flow_data(db: Db, dsn: &str, id: Uuid, set: Option<&str>) -> String {
    use sqlx::Connection;
    macro_rules! on {
        ($conn:ty) => {{
            let mut c = <$conn>::connect(dsn).await.unwrap();
            if let Some(v) = set {
                sqlx::query("UPDATE flows SET data = $1 WHERE id = $2").bind(v).bind(id).execute(&mut c).await.unwrap();
            }
            sqlx::query_scalar::<_, String>("SELECT data FROM flows WHERE id = $1")
                .bind(id)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }};
    }
    match db {
        Db::Sqlite => on!(sqlx::SqliteConnection),
        Db::Postgres => on!(sqlx::PgConnection),
    }
}

/// Flows are stored in a numbered format (`{"format":1,"flow":…}`), not in their wire shape;
/// rows written before the number existed (the bare flow) are still read, and a row of a format
/// this build does not know is an error naming it, not a misread flow.
async fn store_flow_stored_format(db: Db) {
    let (s, dsn, _tmp) = store(db).await;
    let f = flow(None);
    s.create_flow(&f).await.unwrap();
    let stored = raw_flow_data(db, &dsn, f.id, None).await;
    assert!(stored.starts_with(r#"{"format":1,"flow":{"id":""#), "{stored}");
    assert!(!stored.contains("organization_id"), "a wire-only field in the stored form: {stored}");

    let envelope: serde_json::Value = serde_json::from_str(&stored).unwrap();
    let bare = envelope["flow"].to_string();
    raw_flow_data(db, &dsn, f.id, Some(&bare)).await;
    assert_eq!(s.get_flow(f.id).await.unwrap().unwrap(), f, "an unnumbered row reads as format 1");
    // The next write of that flow stores it in the current format.
    s.commit(Commit { update_flow: Some(&f), ..Default::default() }).await.unwrap();
    assert!(raw_flow_data(db, &dsn, f.id, None).await.starts_with(r#"{"format":1,"#));

    raw_flow_data(db, &dsn, f.id, Some(&json!({"format": 7, "flow": envelope["flow"]}).to_string())).await;
    let err = s.get_flow(f.id).await.unwrap_err().to_string();
    assert!(err.contains("format 7"), "{err}");
}
both_dbs!(store_flow_stored_format);

/// Sessions: create, look up by token and logout hash, update (rotation), revoke, revoke others.
async fn store_sessions(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let i = identity("s@example.com");
    create_identity(&s, &i).await.unwrap();
    let s1 = session(i.id);
    s.commit(Commit { create_session: Some(&s1), ..Default::default() }).await.unwrap();
    assert_eq!(s.get_session(s1.id).await.unwrap().unwrap(), s1);
    assert_eq!(s.get_session_by_token_hash(&s1.token_hash).await.unwrap().unwrap().id, s1.id);
    assert_eq!(s.get_session_by_logout_hash(&s1.logout_token_hash).await.unwrap().unwrap().id, s1.id);
    assert!(s.get_session_by_token_hash("nope").await.unwrap().is_none());
    // The session with its identity in one call (the authentication path).
    let (got, ident) = s.get_session_with_identity(&s1.token_hash).await.unwrap().unwrap();
    assert_eq!(got, s1);
    assert_eq!(ident, s.get_identity(i.id).await.unwrap());
    assert_eq!(ident.unwrap().credentials.len(), 2, "children are loaded");
    assert!(s.get_session_with_identity("nope").await.unwrap().is_none());

    // Rotation: the old hash no longer finds the session.
    let mut rotated = s1.clone();
    rotated.token_hash = format!("tok-{}", Uuid::new_v4());
    rotated.aal = Aal::Aal2;
    s.commit(Commit { update_session: Some(&rotated), ..Default::default() }).await.unwrap();
    assert!(s.get_session_by_token_hash(&s1.token_hash).await.unwrap().is_none());
    assert_eq!(s.get_session_by_token_hash(&rotated.token_hash).await.unwrap().unwrap().aal, Aal::Aal2);

    // A session for a missing identity is refused.
    let orphan = session(Uuid::new_v4());
    assert!(s.commit(Commit { create_session: Some(&orphan), ..Default::default() }).await.is_err());
    assert!(s.get_session(orphan.id).await.unwrap().is_none());

    let s2 = session(i.id);
    let s3 = session(i.id);
    let s4 = session(i.id);
    for x in [&s2, &s3, &s4] {
        s.commit(Commit { create_session: Some(x), ..Default::default() }).await.unwrap();
    }
    let other = identity("other@example.com");
    create_identity(&s, &other).await.unwrap();
    let so = session(other.id);
    s.commit(Commit { create_session: Some(&so), ..Default::default() }).await.unwrap();

    assert_eq!(s.list_sessions(Some(i.id), false, None, 100).await.unwrap().len(), 4);
    assert!(s.revoke_session(s4.id).await.unwrap());
    assert!(!s.revoke_session(Uuid::new_v4()).await.unwrap());
    assert!(!s.get_session(s4.id).await.unwrap().unwrap().active);
    assert_eq!(s.list_sessions(Some(i.id), true, None, 100).await.unwrap().len(), 3);

    // Revoke all but s2: s1 and s3 (s4 is already inactive); the other identity is untouched.
    let n = s.commit(Commit { revoke_other_sessions: Some((i.id, Some(s2.id))), ..Default::default() }).await.unwrap();
    assert_eq!(n, 2);
    let active: Vec<Uuid> = s.list_sessions(Some(i.id), true, None, 100).await.unwrap().iter().map(|x| x.id).collect();
    assert_eq!(active, vec![s2.id]);
    assert!(s.get_session(so.id).await.unwrap().unwrap().active);

    // Keyset pagination over all sessions.
    let all = s.list_sessions(None, false, None, 100).await.unwrap();
    assert_eq!(all.len(), 5);
    let first = s.list_sessions(None, false, None, 2).await.unwrap();
    let rest = s.list_sessions(None, false, Some(first[1].id), 100).await.unwrap();
    assert_eq!(first.len() + rest.len(), 5);
    assert!(rest.iter().all(|x| first.iter().all(|f| f.id != x.id)));

    assert_eq!(s.delete_sessions_of(i.id).await.unwrap(), 4);
    assert!(s.get_session(s2.id).await.unwrap().is_none());
}
both_dbs!(store_sessions);

/// `kv_get_or_init`: the first writer wins, also under concurrency.
async fn store_kv_first_writer_wins(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    assert_eq!(s.kv_get_or_init("k", "first").await.unwrap(), "first");
    assert_eq!(s.kv_get_or_init("k", "second").await.unwrap(), "first");
    assert_eq!(s.kv_get_or_init("other", "x").await.unwrap(), "x");

    let mut tasks = vec![];
    for n in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.kv_get_or_init("race", &format!("v{n}")).await.unwrap() }));
    }
    let mut got = vec![];
    for t in tasks {
        got.push(t.await.unwrap());
    }
    assert!(got.iter().all(|v| *v == got[0]), "everyone sees the winner: {got:?}");
    assert_eq!(s.kv_get_or_init("race", "late").await.unwrap(), got[0]);
}
both_dbs!(store_kv_first_writer_wins);

/// `rate_hit` counts within a window, restarts in a new window; `rate_clear` resets; counts
/// are exact under concurrency.
async fn store_rate_hits(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    assert_eq!(s.rate_hit("k", 100).await.unwrap(), 1);
    assert_eq!(s.rate_hit("k", 100).await.unwrap(), 2);
    assert_eq!(s.rate_hit("k", 100).await.unwrap(), 3);
    assert_eq!(s.rate_hit("other", 100).await.unwrap(), 1);
    assert_eq!(s.rate_hit("k", 200).await.unwrap(), 1, "a new window starts over");
    assert_eq!(s.rate_hit("k", 200).await.unwrap(), 2);
    s.rate_clear("k").await.unwrap();
    assert_eq!(s.rate_hit("k", 200).await.unwrap(), 1);
    s.rate_clear("never-seen").await.unwrap();

    let mut tasks = vec![];
    for _ in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.rate_hit("burst", 300).await.unwrap() }));
    }
    let mut counts = vec![];
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>(), "every hit counted once");
}
both_dbs!(store_rate_hits);

/// Deleting an identity removes its credentials, addresses, sessions and flows.
async fn store_delete_cascades(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let i = identity("del@example.com");
    create_identity(&s, &i).await.unwrap();
    let keep = identity("keep@example.com");
    create_identity(&s, &keep).await.unwrap();
    let sess = session(i.id);
    let kept_sess = session(keep.id);
    s.commit(Commit { create_session: Some(&sess), ..Default::default() }).await.unwrap();
    s.commit(Commit { create_session: Some(&kept_sess), ..Default::default() }).await.unwrap();
    let f = flow(Some(i.id));
    s.create_flow(&f).await.unwrap();
    let anon = flow(None);
    s.create_flow(&anon).await.unwrap();

    assert!(s.delete_identity(i.id).await.unwrap());
    assert!(s.get_identity(i.id).await.unwrap().is_none());
    assert!(s.get_session(sess.id).await.unwrap().is_none());
    assert!(s.get_session_by_token_hash(&sess.token_hash).await.unwrap().is_none());
    assert!(s.get_flow(f.id).await.unwrap().is_none());
    assert!(s.find_identity_by_identifier(CredentialType::Password, "del@example.com").await.unwrap().is_none());
    assert!(!s.delete_identity(i.id).await.unwrap());

    assert!(s.get_flow(anon.id).await.unwrap().is_some());
    assert!(s.get_session(kept_sess.id).await.unwrap().is_some());
    assert_eq!(s.get_identity(keep.id).await.unwrap().unwrap(), keep);
    // The freed identifier and address can be used again.
    create_identity(&s, &identity("del@example.com")).await.unwrap();
}
both_dbs!(store_delete_cascades);

/// Listing: keyset pagination by id, the identifier filter and the id filter.
async fn store_list_identities(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let mut ids = vec![];
    for n in 0..5 {
        let i = identity(&format!("l{n}@example.com"));
        create_identity(&s, &i).await.unwrap();
        ids.push(i.id);
    }
    ids.sort();
    let page1 = s.list_identities(&IdentityFilter::default(), None, 2).await.unwrap();
    let page2 = s.list_identities(&IdentityFilter::default(), Some(page1[1].id), 2).await.unwrap();
    let page3 = s.list_identities(&IdentityFilter::default(), Some(page2[1].id), 2).await.unwrap();
    let got: Vec<Uuid> = page1.iter().chain(&page2).chain(&page3).map(|i| i.id).collect();
    assert_eq!(got, ids, "ordered by id, each once");
    assert_eq!(page3.len(), 1);
    let f = IdentityFilter { credentials_identifier: Some("l3@example.com".into()), ids: vec![] };
    let found = s.list_identities(&f, None, 100).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].traits["email"], "l3@example.com");
    let f = IdentityFilter { credentials_identifier: None, ids: vec![ids[0], ids[4], Uuid::new_v4()] };
    assert_eq!(s.list_identities(&f, None, 100).await.unwrap().len(), 2);
}
both_dbs!(store_list_identities);

/// Migrations are idempotent: connecting (and migrating) again keeps the data.
async fn store_migrations_idempotent(db: Db) {
    let (s, dsn, _tmp) = store(db).await;
    let i = identity("mig@example.com");
    create_identity(&s, &i).await.unwrap();
    let again = idflow_store::connect(&dsn, &PoolConfig::default()).await.expect("second connect");
    idflow_store::migrate(&dsn).await.expect("migrate again");
    assert_eq!(again.get_identity(i.id).await.unwrap().unwrap(), i);
    assert_eq!(again.count_identities().await.unwrap(), 1);
    assert!(idflow_store::connect("mysql://nope", &PoolConfig::default()).await.is_err());
}
both_dbs!(store_migrations_idempotent);

/// Text the database cannot hold (a NUL character) is bad input, never an internal error:
/// lookups find nothing or fail with `Invalid`; writes fail with `Invalid` (PostgreSQL) or
/// store it (SQLite).
async fn store_nul_is_bad_input(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let r = s.find_identity_by_identifier(CredentialType::Password, "a\0b@example.com").await;
    assert!(matches!(r, Ok(None) | Err(StoreError::Invalid(_))), "{r:?}");
    let r = s.rate_hit("login:a\0b", 100).await;
    assert!(matches!(r, Ok(1) | Err(StoreError::Invalid(_))), "{r:?}");
    let r = s.find_identity_by_external_id("x\0y").await;
    assert!(matches!(r, Ok(None) | Err(StoreError::Invalid(_))), "{r:?}");
    let mut i = identity("nul@example.com");
    i.external_id = Some("ext\0id".into());
    let r = create_identity(&s, &i).await;
    assert!(matches!(r, Ok(_) | Err(StoreError::Invalid(_))), "{r:?}");
    if db == Db::Postgres {
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
        assert!(s.get_identity(i.id).await.unwrap().is_none());
    }
}
both_dbs!(store_nul_is_bad_input);

/// SQLite on a file reads and writes its hot paths through the connection lane, every other
/// call through sqlx; an in-memory database has no lane. Both decode alike: the identity the
/// lane reads (`get_identity`, the session's identity) equals the one sqlx reads
/// (`find_identity_by_identifier`), on a file and in memory, and a whole commit (identity
/// update with a pending change, session, revocation) reads back the same on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_sqlite_lane_and_sqlx_paths_agree() {
    let (file, _dsn, _tmp) = store(Db::Sqlite).await;
    let memory = idflow_store::connect("sqlite::memory:", &PoolConfig::default()).await.expect("in-memory SQLite");
    for s in [file, memory] {
        let i = identity("lane@example.com");
        create_identity(&s, &i).await.unwrap();
        let f = flow(Some(i.id));
        s.create_flow(&f).await.unwrap();
        assert_eq!(s.get_flow(f.id).await.unwrap().unwrap(), f);

        let s1 = session(i.id);
        let s2 = session(i.id);
        let mut upd = s.get_identity(i.id).await.unwrap().unwrap();
        upd.traits["name"]["first"] = json!("Lane");
        let pending = PendingChange {
            identity_id: i.id,
            path: "email".into(),
            value: json!("new@example.com"),
            previous: json!("lane@example.com"),
            address: "new@example.com".into(),
            flow_id: f.id,
            created_at: now(),
            expires_at: now() + time::Duration::hours(1),
        };
        s.commit(Commit { create_session: Some(&s1), ..Default::default() }).await.unwrap();
        s.commit(Commit { create_session: Some(&s2), ..Default::default() }).await.unwrap();
        let revoked = s
            .commit(Commit {
                update_identity: Some(&upd),
                previous_identity: Some(&i),
                put_pending_changes: std::slice::from_ref(&pending),
                revoke_other_sessions: Some((i.id, Some(s1.id))),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(revoked, 1, "the other session");

        let by_lane = s.get_identity(i.id).await.unwrap().unwrap();
        let by_sqlx =
            s.find_identity_by_identifier(CredentialType::Password, "lane@example.com").await.unwrap().unwrap();
        assert_eq!(by_lane, by_sqlx);
        assert_eq!(by_lane.traits["name"]["first"], "Lane");
        assert_eq!(by_lane.version, i.version + 1);
        assert_eq!(by_lane.pending_changes.as_deref().map(<[_]>::len), Some(1));
        let (got, ident) = s.get_session_with_identity(&s1.token_hash).await.unwrap().unwrap();
        assert_eq!((got, ident), (s1.clone(), Some(by_sqlx)));
        assert!(!s.get_session(s2.id).await.unwrap().unwrap().active);
        // A failed check leaves nothing of the transaction behind.
        let s3 = session(i.id);
        let stale = Commit { create_session: Some(&s3), update_identity: Some(&upd), ..Default::default() };
        assert!(matches!(s.commit(stale).await, Err(StoreError::Busy(_))));
        assert!(s.get_session(s3.id).await.unwrap().is_none());
        // The rolled-back transaction ended: the lane's connections take the next writes.
        for _ in 0..3 {
            let next = session(i.id);
            s.commit(Commit { create_session: Some(&next), ..Default::default() }).await.unwrap();
            assert_eq!(s.get_session(next.id).await.unwrap().unwrap(), next);
        }
    }
}

/// A write on SQLite while another process holds the database's write lock (an `idflow`
/// command on the same file, here a second connection in `BEGIN IMMEDIATE`) waits for it and
/// then commits, instead of failing; reads go on meanwhile (WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_sqlite_write_waits_for_another_process_lock() {
    use sqlx::Connection;
    let (s, dsn, _tmp) = store(Db::Sqlite).await;
    let before = flow(None);
    s.create_flow(&before).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&dsn).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    let f = flow(None);
    let s2 = s.clone();
    let f2 = f.clone();
    let write = tokio::spawn(async move { s2.create_flow(&f2).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    assert_eq!(s.get_flow(before.id).await.unwrap().unwrap(), before, "reads go on");
    sqlx::raw_sql("COMMIT").execute(&mut other).await.unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(s.get_flow(f.id).await.unwrap().unwrap(), f);
}

/// The connection lane's connections do not checkpoint the WAL on commit (that would sync files
/// on the request's thread); the lane checkpoints every so many commits on a blocking thread
/// instead. Without that the WAL would only grow: after thousands of writes it stays a fraction
/// of what they wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_sqlite_lane_checkpoints_the_wal() {
    let (s, dsn, _tmp) = store(Db::Sqlite).await;
    let db = dsn.trim_start_matches("sqlite://").split('?').next().unwrap().to_string();
    let wal = std::path::PathBuf::from(format!("{db}-wal"));
    const WRITES: usize = 3000;
    for _ in 0..WRITES {
        s.create_flow(&flow(None)).await.unwrap();
    }
    let wal_bytes = std::fs::metadata(&wal).unwrap().len();
    // A new flow appends a few 4 KiB pages (its row and index pages) to the WAL: ~58 MB after
    // 3 000 of them without checkpoints, ~5 MB at most between two of them.
    assert!(wal_bytes < 8_000_000, "WAL of {wal_bytes} bytes after {WRITES} commits");
}

/// Frames appended to the SQLite WAL since the last call (which checkpoints and empties it).
async fn wal_frames(dsn: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(dsn).await.unwrap();
    let (_, log, _): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut c).await.unwrap();
    let (busy, _, _): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut c).await.unwrap();
    assert_eq!(busy, 0, "nothing holds the WAL");
    log
}

fn activity_event(identity_id: Uuid, created_at: time::OffsetDateTime) -> idflow_core::activity::ActivityEvent {
    idflow_core::activity::ActivityEvent {
        id: Uuid::new_v4(),
        identity_id,
        kind: idflow_core::activity::ActivityKind::SettingsChanged,
        outcome: idflow_core::activity::Outcome::Success,
        method: Some(MethodId::Profile),
        session_id: None,
        ip_address: "127.0.0.1".into(),
        user_agent: "test".into(),
        created_at,
    }
}

/// A commit names an indexed column only when its value changes (naming one in an UPDATE
/// rewrites its index entry even for the same value), and an activity entry is stored in the
/// b-tree its listing reads: on SQLite a profile change (flow, traits, one activity entry)
/// writes one page per table it changes and one of the retention index, 4 pages to the WAL
/// (8 before). The owner of a flow and an external id that do change are still written.
async fn store_commit_writes_only_changed_index_entries(db: Db) {
    let (s, dsn, _tmp) = store(db).await;
    let i = identity("pages@example.com");
    create_identity(&s, &i).await.unwrap();
    let f = flow(Some(i.id));
    s.create_flow(&f).await.unwrap();
    let mut upd = i.clone();
    upd.traits["name"]["first"] = json!("Changed");
    let mut f1 = f.clone();
    f1.state = "success".into();
    let events = [activity_event(i.id, now())];
    if db == Db::Sqlite {
        wal_frames(&dsn).await;
    }
    let commit = Commit {
        update_flow: Some(&f1),
        update_identity: Some(&upd),
        previous_identity: Some(&i),
        record_activity: &events,
        ..Default::default()
    };
    s.commit(commit).await.unwrap();
    if db == Db::Sqlite {
        assert_eq!(wal_frames(&dsn).await, 4, "flows, identities, identity_activity and its retention index");
    }
    assert_eq!(s.get_flow(f.id).await.unwrap().unwrap().state, "success");
    assert_eq!(s.get_identity(i.id).await.unwrap().unwrap().traits["name"]["first"], "Changed");
    assert_eq!(s.list_activity(i.id, None, 10).await.unwrap(), events);

    // A flow that gets an owner keeps it (deleting the owner deletes the flow), and a new
    // external id is found by it.
    let other = identity("owner@example.com");
    create_identity(&s, &other).await.unwrap();
    let anon = flow(None);
    s.create_flow(&anon).await.unwrap();
    let mut owned = anon.clone();
    owned.identity_id = Some(other.id);
    s.commit(Commit { update_flow: Some(&owned), ..Default::default() }).await.unwrap();
    let prev = s.get_identity(other.id).await.unwrap().unwrap();
    let mut ext = prev.clone();
    ext.external_id = Some("ext-42".into());
    s.commit(Commit { update_identity: Some(&ext), previous_identity: Some(&prev), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(s.find_identity_by_external_id("ext-42").await.unwrap().map(|x| x.id), Some(other.id));
    assert!(s.delete_identity(other.id).await.unwrap());
    assert!(s.get_flow(anon.id).await.unwrap().is_none(), "the flow went with its owner");
}
both_dbs!(store_commit_writes_only_changed_index_entries);

/// A database migrated before the activity log was re-keyed keeps its entries: they list
/// newest first after the upgrade, and the retention purge deletes the old ones.
async fn store_activity_survives_the_rekeying_migration(db: Db) {
    use sqlx::Connection;
    let (dsn, _tmp) = fresh_dsn(db).await;
    let i = identity("rekey@example.com");
    let t = now();
    let events: Vec<_> = (0..5).map(|n| activity_event(i.id, t - time::Duration::days(n))).collect();
    macro_rules! before_rekeying {
        ($conn:ty, $dir:literal) => {{
            let mut c = <$conn>::connect(&dsn).await.unwrap();
            let mut m = sqlx::migrate!($dir);
            m.migrations = m.migrations.iter().filter(|m| m.version <= 7).cloned().collect::<Vec<_>>().into();
            m.run(&mut c).await.unwrap();
            sqlx::query("INSERT INTO identities (id, schema_id, state, traits, metadata_public, metadata_admin, version, created_at, updated_at) VALUES ($1, 'default', 'active', '{}', 'null', 'null', 0, 0, 0)")
                .bind(i.id)
                .execute(&mut c)
                .await
                .unwrap();
            for e in &events {
                sqlx::query("INSERT INTO identity_activity (id, identity_id, kind, outcome, method, session_id, ip_address, user_agent, created_at) VALUES ($1, $2, 'settings_changed', 'success', 'profile', NULL, '127.0.0.1', 'test', $3)")
                    .bind(e.id)
                    .bind(e.identity_id)
                    .bind((e.created_at.unix_timestamp_nanos() / 1000) as i64)
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }};
    }
    match db {
        Db::Sqlite => before_rekeying!(sqlx::SqliteConnection, "../idflow-store/migrations/sqlite"),
        Db::Postgres => before_rekeying!(sqlx::PgConnection, "../idflow-store/migrations/postgres"),
    }
    let s = idflow_store::connect(&dsn, &PoolConfig::default()).await.expect("upgrade");
    assert_eq!(s.list_activity(i.id, None, 10).await.unwrap(), events, "newest first, every entry");
    let c = idflow_core::store::Cleanup {
        flows_expired_before: t - time::Duration::days(400),
        sessions_expired_before: t - time::Duration::days(400),
        kv_expired_before: t - time::Duration::days(400),
        pending_changes_expired_before: t - time::Duration::days(400),
        rate_windows_before: 0,
        activity_before: t - time::Duration::hours(60),
        batch: 100,
    };
    assert_eq!(s.cleanup(&c).await.unwrap().map(|n| n.activity), Some(2), "the entries 3 and 4 days old");
    assert_eq!(s.list_activity(i.id, None, 10).await.unwrap(), events[..3]);
}
both_dbs!(store_activity_survives_the_rekeying_migration);

/// An identity's credential identifiers and addresses come back in one order whatever the
/// order they were written in: identifiers alphabetically, addresses by creation, then value.
async fn store_identity_children_in_a_stable_order(db: Db) {
    let (s, _dsn, _tmp) = store(db).await;
    let mut i = identity("z@example.com");
    let pw = i.credentials.get_mut(&CredentialType::Password).unwrap();
    pw.identifiers = vec!["z@example.com".into(), "b@example.com".into(), "m@example.com".into()];
    let first = i.verifiable_addresses[0].clone();
    let t = first.created_at;
    for (value, at) in [("c@example.com", t), ("a@example.com", t), ("y@example.com", t - time::Duration::hours(1))] {
        let mut a = first.clone();
        a.id = Uuid::new_v4();
        a.value = value.into();
        a.created_at = at;
        i.verifiable_addresses.push(a);
    }
    create_identity(&s, &i).await.unwrap();
    let got = s.get_identity(i.id).await.unwrap().unwrap();
    assert_eq!(
        got.credentials[&CredentialType::Password].identifiers,
        ["b@example.com", "m@example.com", "z@example.com"]
    );
    let values: Vec<&str> = got.verifiable_addresses.iter().map(|a| a.value.as_str()).collect();
    assert_eq!(values, ["y@example.com", "a@example.com", "c@example.com", "z@example.com"]);
}
both_dbs!(store_identity_children_in_a_stable_order);
