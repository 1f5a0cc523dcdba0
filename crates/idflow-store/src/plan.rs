//! A [`Commit`] as data: the statements of its transaction, in order, with their parameters
//! and what each must have changed. Built once here and run by either engine's executor (sqlx
//! on PostgreSQL, the SQLite connection lane in `sqlite_lane.rs`), so the SQL of a write is
//! written once and the SQLite lane can run a whole transaction in one hop to a blocking
//! thread (the plan owns its values, as `spawn_blocking` needs).

use crate::{json_text, ser, ts};
use idflow_core::activity::ActivityEvent;
use idflow_core::courier::Message;
use idflow_core::model::{Credential, Flow, Identity, Session};
use idflow_core::store::{Commit, StoreError};
use uuid::Uuid;

/// A bound value. Text is owned: a plan crosses to another thread.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum P {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
}

/// What a statement must have changed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Check {
    /// Anything.
    Any,
    /// Exactly one row, or the transaction fails with this error (and writes nothing).
    One(Fail),
    /// Anything; the number of rows is the commit's result (sessions revoked).
    Revoked,
}

/// The errors a [`Check::One`] stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fail {
    FlowChanged,
    IdentityChanged,
    SessionRevoked,
    NoPendingChange,
}

impl Fail {
    pub(crate) fn error(self) -> StoreError {
        match self {
            Fail::FlowChanged => StoreError::Busy("the flow was changed by a concurrent request".into()),
            Fail::IdentityChanged => StoreError::Busy("the identity was changed by a concurrent request".into()),
            Fail::SessionRevoked => StoreError::SessionRevoked,
            Fail::NoPendingChange => StoreError::NotFound,
        }
    }
}

/// One statement of a plan. The SQL uses `$n` placeholders (both engines accept them);
/// `params[n - 1]` is `$n`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stmt {
    pub sql: &'static str,
    pub params: Vec<P>,
    pub check: Check,
}

fn stmt(sql: &'static str, params: Vec<P>) -> Stmt {
    Stmt { sql, params, check: Check::Any }
}

fn text(s: &str) -> P {
    P::Text(s.to_owned())
}

fn opt_text(s: &Option<String>) -> P {
    P::OptText(s.clone())
}

/// The rows a plan changed, folded as the checks say: `Err` for the first failed check, or
/// the number of sessions revoked.
pub(crate) struct Tally(u64);

impl Tally {
    pub(crate) fn new() -> Tally {
        Tally(0)
    }

    pub(crate) fn record(&mut self, s: &Stmt, rows: u64) -> Result<(), StoreError> {
        match s.check {
            Check::Any => Ok(()),
            Check::One(f) if rows != 1 => Err(f.error()),
            Check::One(_) => Ok(()),
            Check::Revoked => {
                self.0 += rows;
                Ok(())
            }
        }
    }

    pub(crate) fn revoked(&self) -> u64 {
        self.0
    }
}

/// The statement that stores a new flow.
pub(crate) fn create_flow(f: &Flow) -> Result<Stmt, StoreError> {
    Ok(stmt(
        "INSERT INTO flows (id, kind, identity_id, data, expires_at, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        vec![
            P::Uuid(f.id),
            text(f.kind.as_str()),
            P::OptUuid(f.identity_id),
            P::Text(crate::flow_format::encode(f)?),
            P::Int(ts(f.expires_at)),
            P::Int(f.version),
            P::Int(ts(f.created_at)),
            P::Int(ts(f.updated_at)),
        ],
    ))
}

/// The statements of `c`, in the order they run.
pub(crate) fn commit(c: &Commit<'_>) -> Result<Vec<Stmt>, StoreError> {
    let mut out = Vec::with_capacity(4);
    if let Some(f) = c.update_flow {
        // First write of the transaction: takes the write lock (SQLite) / row lock (PG), so of
        // two concurrent submits to one flow exactly one commits.
        out.push(Stmt {
            sql: "UPDATE flows SET data = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
            params: vec![
                P::Text(crate::flow_format::encode(f)?),
                P::Int(ts(f.updated_at)),
                P::Uuid(f.id),
                P::Int(f.version),
            ],
            check: Check::One(Fail::FlowChanged),
        });
        // Indexed columns are set only when they change: naming one in a SET rewrites its
        // index entry even for the same value (in SQLite one more page in the WAL per commit).
        out.push(stmt(
            "UPDATE flows SET identity_id = $1 WHERE id = $2 AND identity_id IS DISTINCT FROM $1",
            vec![P::OptUuid(f.identity_id), P::Uuid(f.id)],
        ));
    }
    if let Some(i) = c.create_identity {
        out.push(stmt(
            "INSERT INTO identities (id, schema_id, state, state_changed_at, traits, metadata_public, metadata_admin, external_id, version, created_at, updated_at, delete_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            vec![
                P::Uuid(i.id),
                text(&i.schema_id),
                text(i.state.as_str()),
                P::OptInt(i.state_changed_at.map(ts)),
                P::Text(json_text(&i.traits)),
                P::Text(json_text(&i.metadata_public)),
                P::Text(json_text(&i.metadata_admin)),
                opt_text(&i.external_id),
                P::Int(i.version),
                P::Int(ts(i.created_at)),
                P::Int(ts(i.updated_at)),
                P::OptInt(i.delete_after.map(ts)),
            ],
        ));
        identity_children(&mut out, i);
    }
    if let Some(i) = c.update_identity {
        out.push(Stmt {
            sql: "UPDATE identities SET schema_id = $1, state = $2, state_changed_at = $3, traits = $4, metadata_public = $5, metadata_admin = $6, version = version + 1, updated_at = $7, delete_after = $10 WHERE id = $8 AND version = $9",
            params: vec![
                text(&i.schema_id),
                text(i.state.as_str()),
                P::OptInt(i.state_changed_at.map(ts)),
                P::Text(json_text(&i.traits)),
                P::Text(json_text(&i.metadata_public)),
                P::Text(json_text(&i.metadata_admin)),
                P::Int(ts(i.updated_at)),
                P::Uuid(i.id),
                P::Int(i.version),
                P::OptInt(i.delete_after.map(ts)),
            ],
            check: Check::One(Fail::IdentityChanged),
        });
        let previous = c.previous_identity.filter(|p| p.id == i.id && p.version == i.version);
        // The external id is unique (indexed): set only when it changed, or when the stored
        // value is not known.
        if previous.is_none_or(|p| p.external_id != i.external_id) {
            out.push(stmt(
                "UPDATE identities SET external_id = $1 WHERE id = $2",
                vec![opt_text(&i.external_id), P::Uuid(i.id)],
            ));
        }
        match previous {
            Some(prev) => changed_identity_children(&mut out, i, prev),
            None => {
                for q in [
                    "DELETE FROM credential_identifiers WHERE identity_id = $1",
                    "DELETE FROM credentials WHERE identity_id = $1",
                    "DELETE FROM verifiable_addresses WHERE identity_id = $1",
                    "DELETE FROM recovery_addresses WHERE identity_id = $1",
                ] {
                    out.push(stmt(q, vec![P::Uuid(i.id)]));
                }
                identity_children(&mut out, i);
            }
        }
    }
    if let Some(s) = c.create_session {
        out.push(stmt(
            "INSERT INTO sessions (id, token_hash, logout_token_hash, identity_id, active, aal, authentication_methods, authenticated_at, issued_at, expires_at, devices, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            vec![
                P::Uuid(s.id),
                text(&s.token_hash),
                text(&s.logout_token_hash),
                P::Uuid(s.identity_id),
                P::Bool(s.active),
                text(s.aal.as_str()),
                P::Text(ser(&s.authentication_methods)?),
                P::Int(ts(s.authenticated_at)),
                P::Int(ts(s.issued_at)),
                P::Int(ts(s.expires_at)),
                P::Text(ser(&s.devices)?),
                P::Int(ts(s.created_at)),
                P::Int(ts(s.updated_at)),
            ],
        ));
    }
    if let Some(s) = c.update_session {
        out.push(update_session(s)?);
    }
    if let Some((identity, path)) = c.delete_pending_change {
        out.push(Stmt {
            sql: "DELETE FROM pending_changes WHERE identity_id = $1 AND path = $2",
            params: vec![P::Uuid(identity), text(path)],
            check: Check::One(Fail::NoPendingChange),
        });
    }
    for p in c.put_pending_changes {
        out.push(stmt(
            "INSERT INTO pending_changes (identity_id, path, value, previous, address, flow_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (identity_id, path) DO UPDATE SET value = excluded.value, previous = excluded.previous, address = excluded.address, \
             flow_id = excluded.flow_id, created_at = excluded.created_at, expires_at = excluded.expires_at",
            vec![
                P::Uuid(p.identity_id),
                text(&p.path),
                P::Text(json_text(&p.value)),
                P::Text(json_text(&p.previous)),
                text(&p.address),
                P::Uuid(p.flow_id),
                P::Int(ts(p.created_at)),
                P::Int(ts(p.expires_at)),
            ],
        ));
    }
    if let Some((identity, except)) = c.revoke_other_sessions {
        out.push(Stmt {
            sql: "UPDATE sessions SET active = $1 WHERE identity_id = $2 AND id <> $3 AND active = $4",
            params: vec![P::Bool(false), P::Uuid(identity), P::Uuid(except.unwrap_or(Uuid::nil())), P::Bool(true)],
            check: Check::Revoked,
        });
    }
    for m in c.queue_messages {
        out.push(message(m));
    }
    for e in c.record_activity {
        out.push(activity(e));
    }
    Ok(out)
}

/// Compare-and-set: only a session that is still active may be updated, so a request in
/// flight with a copy loaded before a revocation (logout, "revoke other sessions", a password
/// change, the admin API) cannot bring it back.
fn update_session(s: &Session) -> Result<Stmt, StoreError> {
    Ok(Stmt {
        sql: "UPDATE sessions SET active = $1, aal = $2, authentication_methods = $3, authenticated_at = $4, expires_at = $5, devices = $6, updated_at = $7, identity_id = $8, token_hash = $9, logout_token_hash = $10 WHERE id = $11 AND active = $12",
        params: vec![
            P::Bool(s.active),
            text(s.aal.as_str()),
            P::Text(ser(&s.authentication_methods)?),
            P::Int(ts(s.authenticated_at)),
            P::Int(ts(s.expires_at)),
            P::Text(ser(&s.devices)?),
            P::Int(ts(s.updated_at)),
            P::Uuid(s.identity_id),
            text(&s.token_hash),
            text(&s.logout_token_hash),
            P::Uuid(s.id),
            P::Bool(true),
        ],
        check: Check::One(Fail::SessionRevoked),
    })
}

fn message(m: &Message) -> Stmt {
    stmt(
        "INSERT INTO courier_messages (id, status, channel, recipient, subject, body, html_body, template_type, template_data, send_count, next_attempt_at, claim_id, lease_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12, $13)",
        vec![
            P::Uuid(m.id),
            text(m.status.as_str()),
            text(&m.channel),
            text(&m.recipient),
            text(&m.subject),
            text(&m.body),
            text(&m.html_body),
            text(m.template_type.as_str()),
            P::Text(json_text(&m.template_data)),
            P::Int(m.send_count),
            P::Int(ts(m.next_attempt_at)),
            P::Int(ts(m.created_at)),
            P::Int(ts(m.updated_at)),
        ],
    )
}

fn activity(e: &ActivityEvent) -> Stmt {
    stmt(
        "INSERT INTO identity_activity (id, identity_id, kind, outcome, method, session_id, ip_address, user_agent, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            P::Uuid(e.id),
            P::Uuid(e.identity_id),
            text(e.kind.as_str()),
            text(e.outcome.as_str()),
            P::OptText(e.method.map(|m| m.as_str().to_owned())),
            P::OptUuid(e.session_id),
            text(&e.ip_address),
            text(&e.user_agent),
            P::Int(ts(e.created_at)),
        ],
    )
}

/// Every credential (with its identifiers) and address of `i`.
fn identity_children(out: &mut Vec<Stmt>, i: &Identity) {
    for c in i.credentials.values() {
        credential(out, i.id, c);
    }
    verifiable_addresses(out, i);
    recovery_addresses(out, i);
}

/// Only the children of `i` that differ from `prev` (the same identity as stored at
/// `i.version`, which the version check of the identity update guarantees).
fn changed_identity_children(out: &mut Vec<Stmt>, i: &Identity, prev: &Identity) {
    for (kind, old) in &prev.credentials {
        if i.credentials.get(kind) != Some(old) {
            for q in
                ["DELETE FROM credential_identifiers WHERE credential_id = $1", "DELETE FROM credentials WHERE id = $1"]
            {
                out.push(stmt(q, vec![P::Uuid(old.id)]));
            }
        }
    }
    for (kind, new) in &i.credentials {
        if prev.credentials.get(kind) != Some(new) {
            credential(out, i.id, new);
        }
    }
    if i.verifiable_addresses != prev.verifiable_addresses {
        out.push(stmt("DELETE FROM verifiable_addresses WHERE identity_id = $1", vec![P::Uuid(i.id)]));
        verifiable_addresses(out, i);
    }
    if i.recovery_addresses != prev.recovery_addresses {
        out.push(stmt("DELETE FROM recovery_addresses WHERE identity_id = $1", vec![P::Uuid(i.id)]));
        recovery_addresses(out, i);
    }
}

fn credential(out: &mut Vec<Stmt>, identity_id: Uuid, c: &Credential) {
    out.push(stmt(
        "INSERT INTO credentials (id, identity_id, kind, config, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            P::Uuid(c.id),
            P::Uuid(identity_id),
            text(c.kind.as_str()),
            P::Text(json_text(&c.config)),
            P::Int(c.version),
            P::Int(ts(c.created_at)),
            P::Int(ts(c.updated_at)),
        ],
    ));
    for ident in &c.identifiers {
        out.push(stmt(
            "INSERT INTO credential_identifiers (kind, identifier, identity_id, credential_id) VALUES ($1, $2, $3, $4)",
            vec![text(c.kind.as_str()), text(ident), P::Uuid(identity_id), P::Uuid(c.id)],
        ));
    }
}

fn verifiable_addresses(out: &mut Vec<Stmt>, i: &Identity) {
    for a in &i.verifiable_addresses {
        out.push(stmt(
            "INSERT INTO verifiable_addresses (id, identity_id, via, value, verified, status, verified_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                P::Uuid(a.id),
                P::Uuid(i.id),
                text(&a.via),
                text(&a.value),
                P::Bool(a.verified),
                text(&a.status),
                P::OptInt(a.verified_at.map(ts)),
                P::Int(ts(a.created_at)),
                P::Int(ts(a.updated_at)),
            ],
        ));
    }
}

fn recovery_addresses(out: &mut Vec<Stmt>, i: &Identity) {
    for a in &i.recovery_addresses {
        out.push(stmt(
            "INSERT INTO recovery_addresses (id, identity_id, via, value, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                P::Uuid(a.id),
                P::Uuid(i.id),
                text(&a.via),
                text(&a.value),
                P::Int(ts(a.created_at)),
                P::Int(ts(a.updated_at)),
            ],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_parameters() {
        // Every `$n` of every statement has a parameter and every parameter a `$n`.
        let i =
            Identity::new("default", serde_json::json!({"email": "a@example.com"}), time::OffsetDateTime::now_utc());
        let f = crate::flow_format::tests::sample();
        let c =
            Commit { create_identity: Some(&i), update_identity: Some(&i), update_flow: Some(&f), ..Commit::default() };
        for s in commit(&c).unwrap() {
            for n in 1..=s.params.len() {
                assert!(s.sql.contains(&format!("${n}")), "{} lacks ${n}", s.sql);
            }
            assert!(!s.sql.contains(&format!("${}", s.params.len() + 1)), "{}", s.sql);
        }
    }

    #[test]
    fn checks_fold_into_errors_and_the_revoked_count() {
        let one = Stmt { sql: "", params: vec![], check: Check::One(Fail::SessionRevoked) };
        let rev = Stmt { sql: "", params: vec![], check: Check::Revoked };
        let mut t = Tally::new();
        t.record(&one, 1).unwrap();
        t.record(&rev, 3).unwrap();
        assert_eq!(t.revoked(), 3);
        assert!(matches!(t.record(&one, 0), Err(StoreError::SessionRevoked)));
    }
}
