//! Kratos JSON shapes of identities, sessions, flows and errors. The only place that knows the
//! Kratos wire format (the v1 dialect converts these in `v1.rs`).

use base64::Engine as _;
use idflow_core::error::Error;
use idflow_core::model::{Flow, FlowKind, Identity, Session};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn ts(t: OffsetDateTime) -> Value {
    Value::String(t.format(&Rfc3339).unwrap_or_default())
}

/// Which identity fields to include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityView {
    /// whoami, flows, login/registration responses.
    Public,
    /// admin responses: credentials (without config) and metadata_admin.
    Admin,
    /// admin with the credential configs of these types.
    AdminWithConfigs,
}

pub fn schema_url(base: &str, schema_id: &str) -> String {
    format!("{base}/schemas/{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(schema_id))
}

pub fn identity(base: &str, i: &Identity, view: IdentityView, include: &[String]) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(i.id));
    if let Some(e) = &i.external_id {
        m.insert("external_id".into(), json!(e));
    }
    if view != IdentityView::Public && !i.credentials.is_empty() {
        let mut creds = Map::new();
        for c in i.credentials.values() {
            let mut cm = Map::new();
            cm.insert("type".into(), json!(c.kind.as_str()));
            cm.insert("identifiers".into(), json!(c.identifiers));
            if view == IdentityView::AdminWithConfigs && include.iter().any(|t| t == c.kind.as_str()) {
                cm.insert("config".into(), c.config.clone());
            }
            cm.insert("version".into(), json!(0));
            cm.insert("created_at".into(), ts(c.created_at));
            cm.insert("updated_at".into(), ts(c.updated_at));
            creds.insert(c.kind.as_str().into(), Value::Object(cm));
        }
        m.insert("credentials".into(), Value::Object(creds));
    }
    m.insert("schema_id".into(), json!(i.schema_id));
    m.insert("schema_url".into(), json!(schema_url(base, &i.schema_id)));
    m.insert("state".into(), json!(i.state.as_str()));
    if let Some(t) = i.state_changed_at {
        m.insert("state_changed_at".into(), ts(t));
    }
    m.insert("traits".into(), i.traits.clone());
    if !i.verifiable_addresses.is_empty() {
        let v: Vec<Value> = i
            .verifiable_addresses
            .iter()
            .map(|a| {
                let mut o = json!({
                    "id": a.id, "value": a.value, "verified": a.verified, "via": a.via, "status": a.status,
                    "created_at": ts(a.created_at), "updated_at": ts(a.updated_at),
                });
                if let Some(v) = a.verified_at {
                    o["verified_at"] = ts(v);
                }
                o
            })
            .collect();
        m.insert("verifiable_addresses".into(), Value::Array(v));
    }
    if !i.recovery_addresses.is_empty() {
        let v: Vec<Value> = i
            .recovery_addresses
            .iter()
            .map(|a| {
                json!({"id": a.id, "value": a.value, "via": a.via, "created_at": ts(a.created_at), "updated_at": ts(a.updated_at)})
            })
            .collect();
        m.insert("recovery_addresses".into(), Value::Array(v));
    }
    m.insert("metadata_public".into(), i.metadata_public.clone());
    if view != IdentityView::Public && !i.metadata_admin.is_null() {
        m.insert("metadata_admin".into(), i.metadata_admin.clone());
    }
    m.insert("created_at".into(), ts(i.created_at));
    m.insert("updated_at".into(), ts(i.updated_at));
    m.insert("organization_id".into(), Value::Null);
    Value::Object(m)
}

/// Session JSON. `identity` may be omitted (`None`) or null (`Some(Value::Null)`).
pub fn session(s: &Session, identity: Option<Value>, now: OffsetDateTime) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(s.id));
    m.insert("active".into(), json!(s.is_active(now)));
    m.insert("expires_at".into(), ts(s.expires_at));
    m.insert("authenticated_at".into(), ts(s.authenticated_at));
    m.insert("authenticator_assurance_level".into(), json!(s.aal.as_str()));
    let methods: Vec<Value> = s
        .authentication_methods
        .iter()
        .map(|a| {
            let mut o = json!({"method": a.method, "aal": a.aal.as_str(), "completed_at": ts(a.completed_at)});
            if let Some(p) = &a.provider {
                o["provider"] = json!(p);
            }
            o
        })
        .collect();
    m.insert("authentication_methods".into(), Value::Array(methods));
    m.insert("issued_at".into(), ts(s.issued_at));
    if let Some(i) = identity {
        m.insert("identity".into(), i);
    }
    let devices: Vec<Value> = s
        .devices
        .iter()
        .map(|d| json!({"id": d.id, "ip_address": d.ip_address, "user_agent": d.user_agent, "location": d.location}))
        .collect();
    m.insert("devices".into(), Value::Array(devices));
    Value::Object(m)
}

/// A flow in Kratos shape. `identity` is required for settings flows.
pub fn flow(f: &Flow, identity: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(f.id));
    m.insert("type".into(), json!(f.flow_type.as_str()));
    m.insert("expires_at".into(), ts(f.expires_at));
    m.insert("issued_at".into(), ts(f.issued_at));
    m.insert("request_url".into(), json!(f.request_url));
    if let Some(rt) = &f.return_to {
        m.insert("return_to".into(), json!(rt));
    }
    if let Some(a) = &f.active {
        m.insert("active".into(), json!(a));
    }
    m.insert("ui".into(), serde_json::to_value(&f.ui).unwrap_or(Value::Null));
    match f.kind {
        FlowKind::Settings => {
            m.insert("identity".into(), identity.unwrap_or(Value::Null));
            m.insert("state".into(), json!(f.state));
        }
        FlowKind::Login => {
            m.insert("created_at".into(), ts(f.created_at));
            m.insert("updated_at".into(), ts(f.updated_at));
            m.insert("refresh".into(), json!(f.refresh));
            m.insert("requested_aal".into(), json!(f.requested_aal.as_str()));
            m.insert("state".into(), json!(f.state));
        }
        FlowKind::Registration => {
            m.insert("state".into(), json!(f.state));
        }
        FlowKind::Recovery | FlowKind::Verification => {
            m.insert("state".into(), json!(f.state));
            m.insert("continue_with".into(), Value::Array(vec![]));
            m.insert("transient_payload".into(), json!({}));
        }
    }
    m.insert("organization_id".into(), Value::Null);
    Value::Object(m)
}

fn reason_phrase(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

/// The Kratos error envelope (`since` measured against the system time).
pub fn error(e: &Error, request_id: &str) -> Value {
    error_at(e, request_id, OffsetDateTime::now_utc())
}

/// The Kratos error envelope; `now` is the server clock (for `since` of expired flows).
pub fn error_at(e: &Error, request_id: &str, now: OffsetDateTime) -> Value {
    let mut inner = Map::new();
    if let Some(id) = e.kind.id() {
        inner.insert("id".into(), json!(id));
    }
    inner.insert("code".into(), json!(e.status()));
    inner.insert("status".into(), json!(reason_phrase(e.status())));
    if !request_id.is_empty() {
        inner.insert("request".into(), json!(request_id));
    }
    if !e.reason.is_empty() {
        inner.insert("reason".into(), json!(e.reason));
    }
    if !e.details.is_empty() {
        inner.insert("details".into(), Value::Object(e.details.clone()));
    }
    inner.insert("message".into(), json!(e.message()));
    let mut m = Map::new();
    m.insert("error".into(), Value::Object(inner));
    if let Some(r) = &e.redirect_browser_to {
        m.insert("redirect_browser_to".into(), json!(r));
    }
    if let Some(id) = e.use_flow_id {
        m.insert("use_flow_id".into(), json!(id));
    }
    if let Some(t) = e.expired_at {
        m.insert("expired_at".into(), ts(t));
        let since = (now - t).whole_nanoseconds();
        m.insert("since".into(), json!(i64::try_from(since).unwrap_or(i64::MAX)));
    }
    Value::Object(m)
}

/// One activity-log entry (an idflow extension; the same shape in every dialect).
pub fn activity(e: &idflow_core::activity::ActivityEvent) -> Value {
    json!({
        "id": e.id,
        "identity_id": e.identity_id,
        "kind": e.kind.as_str(),
        "outcome": e.outcome.as_str(),
        "method": e.method.map(|m| m.as_str()),
        "session_id": e.session_id,
        "ip_address": e.ip_address,
        "user_agent": e.user_agent,
        "created_at": ts(e.created_at),
    })
}
