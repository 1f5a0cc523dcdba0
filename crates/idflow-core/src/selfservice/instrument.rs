//! The entry points of the self-service submits: request-rate limits (`limits.per_ip.*`,
//! `limits.per_identity.*`, counted in the database so they hold across nodes) and outcome
//! reporting to an [`Observer`] (the server turns it into Prometheus metrics).
//!
//! Each `submit_*` here wraps the flow's own `submit_*_inner`, so every dialect (Kratos, v1, UI)
//! gets the same limits and the same counts.

use super::login::LoggedIn;
use super::recovery::Recovered;
use super::registration::Registered;
use super::settings::SettingsDone;
use super::verification::Verified;
use super::{Body, Engine, Req, SubmitFlow, Submitted, body_str};
use crate::error::Result;
use crate::model::FlowKind;
use crate::schema::normalize_identifier;
use std::time::Duration;

/// Receives what the engine measures. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A submit ended: `outcome` is `success`, `invalid` (form errors), `form` (shown again,
    /// not an update) or `error`; `method` is one of a fixed set of names (never user input).
    fn flow_outcome(&self, _kind: FlowKind, _method: &'static str, _outcome: &'static str) {}
    /// A password hash (`op` = `hash`) or verification (`op` = `verify`) took `took`.
    fn password_hashing(&self, _op: &'static str, _took: Duration) {}
}

/// The observer used when none is installed.
pub struct NoopObserver;

impl Observer for NoopObserver {}

/// The method of a submit as a label from a fixed set (hostile input cannot grow the set):
/// the registry's labels, `none` or `other`.
pub fn method_label(body: &Body) -> &'static str {
    super::methods::label_of(body)
}

/// Mark form errors with their reason, when the flow did not (no method took the submit).
fn with_reason<T>(kind: FlowKind, body: &Body, res: Result<Submitted<T>>) -> Result<Submitted<T>> {
    super::with_reason(res, kind, crate::model::MethodId::parse(method_label(body)))
}

fn outcome<T>(r: &Result<Submitted<T>>) -> &'static str {
    match r {
        Ok(Submitted::Done(_)) => "success",
        Ok(Submitted::Invalid(_)) => "invalid",
        Ok(Submitted::ShowForm(_)) => "form",
        Err(_) => "error",
    }
}

/// The rate-limit bucket of a client address: the address itself for IPv4, its /64 for IPv6
/// (one client usually holds a whole /64).
pub fn ip_bucket(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

impl Engine {
    /// Count one submit of `kind` for the client's address and for `identity` (when known);
    /// Err(429 with `retry_after`) once a per-minute limit is exceeded.
    pub async fn submit_limits(&self, kind: &str, req: &Req, identity: Option<&str>) -> Result<()> {
        let l = &self.cfg.limits;
        let (per_ip, per_identity) = match kind {
            "login" => (l.per_ip.login, l.per_identity.login),
            "registration" => (l.per_ip.registration, l.per_identity.registration),
            "recovery" => (l.per_ip.recovery, l.per_identity.recovery),
            "verification" => (l.per_ip.verification, l.per_identity.verification),
            _ => (l.per_ip.settings, l.per_identity.settings),
        };
        if per_ip > 0 && !req.ip.is_empty() {
            self.rate_check(&format!("ip:{kind}:{}", ip_bucket(&req.ip)), per_ip, 60).await?;
        }
        if per_identity > 0
            && let Some(who) = identity.filter(|w| !w.is_empty())
        {
            self.rate_check(&format!("id:{kind}:{who}"), per_identity, 60).await?;
        }
        Ok(())
    }

    /// Submit a login flow (see `submit_login_inner`).
    pub async fn submit_login(
        &self,
        flow: impl Into<SubmitFlow>,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<LoggedIn>> {
        let who = match &req.auth {
            Some(a) => Some(a.identity.id.to_string()),
            None => {
                body_str(body, "identifier").or_else(|| body_str(body, "password_identifier")).map(normalize_identifier)
            }
        };
        let res = match self.submit_limits("login", req, who.as_deref()).await {
            Ok(()) => with_reason(FlowKind::Login, body, self.submit_login_inner(flow.into(), body, req).await),
            Err(e) => Err(e),
        };
        self.observer.flow_outcome(FlowKind::Login, method_label(body), outcome(&res));
        res
    }

    /// Submit a registration flow (see `submit_registration_inner`).
    pub async fn submit_registration(
        &self,
        flow: impl Into<SubmitFlow>,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        let res = match self.submit_limits("registration", req, None).await {
            Ok(()) => {
                with_reason(FlowKind::Registration, body, self.submit_registration_inner(flow.into(), body, req).await)
            }
            Err(e) => Err(e),
        };
        self.observer.flow_outcome(FlowKind::Registration, method_label(body), outcome(&res));
        res
    }

    /// Submit a settings flow (see `submit_settings_inner`).
    pub async fn submit_settings(
        &self,
        flow: impl Into<SubmitFlow>,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<SettingsDone>> {
        let who = req.auth.as_ref().map(|a| a.identity.id.to_string());
        let res = match self.submit_limits("settings", req, who.as_deref()).await {
            Ok(()) => with_reason(FlowKind::Settings, body, self.submit_settings_inner(flow.into(), body, req).await),
            Err(e) => Err(e),
        };
        self.observer.flow_outcome(FlowKind::Settings, method_label(body), outcome(&res));
        res
    }
}

impl Engine {
    /// Submit a recovery flow (see `submit_recovery_inner`); per identity counts per submitted
    /// address.
    pub async fn submit_recovery(
        &self,
        flow: impl Into<SubmitFlow>,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Recovered>> {
        let who = body_str(body, "email").map(normalize_identifier);
        let res = match self.submit_limits("recovery", req, who.as_deref()).await {
            Ok(()) => with_reason(FlowKind::Recovery, body, self.submit_recovery_inner(flow.into(), body, req).await),
            Err(e) => Err(e),
        };
        self.observer.flow_outcome(FlowKind::Recovery, method_label(body), outcome(&res));
        res
    }

    /// Submit a verification flow (see `submit_verification_inner`); per identity counts per
    /// submitted address.
    pub async fn submit_verification(
        &self,
        flow: impl Into<SubmitFlow>,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Verified>> {
        let who = body_str(body, "email").map(normalize_identifier);
        let res = match self.submit_limits("verification", req, who.as_deref()).await {
            Ok(()) => {
                with_reason(FlowKind::Verification, body, self.submit_verification_inner(flow.into(), body, req).await)
            }
            Err(e) => Err(e),
        };
        self.observer.flow_outcome(FlowKind::Verification, method_label(body), outcome(&res));
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn method_labels_are_bounded() {
        let b = |v: serde_json::Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(method_label(&b(json!({"method": "password"}))), "password");
        assert_eq!(method_label(&b(json!({"method": "x".repeat(1000)}))), "other");
        assert_eq!(method_label(&b(json!({"lookup_secret_confirm": "true"}))), "lookup_secret");
        assert_eq!(method_label(&b(json!({}))), "none");
        // Bodies that name their method only through their own fields.
        assert_eq!(method_label(&b(json!({"link": "google"}))), "oidc");
        assert_eq!(method_label(&b(json!({"provider": "google"}))), "oidc");
        assert_eq!(method_label(&b(json!({"webauthn_register": "{}"}))), "webauthn");
        assert_eq!(method_label(&b(json!({"passkey_remove": "ab"}))), "passkey");
        assert_eq!(method_label(&b(json!({"totp_unlink": true}))), "totp");
    }

    #[test]
    fn ip_buckets() {
        assert_eq!(ip_bucket("192.0.2.7"), "192.0.2.7");
        assert_eq!(ip_bucket("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(ip_bucket("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64");
        assert_eq!(ip_bucket("::ffff:192.0.2.7"), "192.0.2.7");
    }
}
