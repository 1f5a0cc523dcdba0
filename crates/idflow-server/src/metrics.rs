//! Prometheus metrics, one registry per [`crate::app::Application`] (no global state, so several
//! applications in one process, as in the tests, keep separate counts). Rendered by
//! `GET /metrics` on the admin listener; there is no listener of its own.
//!
//! - `idflow_http_requests_total{listener, method, route, status}` and
//!   `idflow_http_request_duration_seconds{listener, method, route}`: `route` is the matched
//!   route template (`/self-service/settings`, `/v1/flows/settings/{flow_id}`), never the raw path,
//!   and `unmatched` for the fallback, so hostile paths cannot grow the label set.
//! - `idflow_flow_submits_total{kind, method, outcome}`: self-service submits by flow kind,
//!   method and outcome (`success`, `invalid`, `form`, `error`).
//! - `idflow_password_hashing_seconds{op}`: time of password hashing (`hash`) and verification
//!   (`verify`) on the blocking pool.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idflow_core::model::FlowKind;
use idflow_core::selfservice::instrument::Observer;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    flows: IntCounterVec,
    hashing: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("idflow_http_requests_total", "HTTP requests by listener, method, matched route and status."),
            &["listener", "method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "idflow_http_request_duration_seconds",
                "HTTP request latency by listener, method and matched route.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["listener", "method", "route"],
        )?;
        let flows = IntCounterVec::new(
            Opts::new("idflow_flow_submits_total", "Self-service submits by flow kind, method and outcome."),
            &["kind", "method", "outcome"],
        )?;
        let hashing = HistogramVec::new(
            HistogramOpts::new(
                "idflow_password_hashing_seconds",
                "Password hashing (hash) and verification (verify) time.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["op"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(flows.clone()))?;
        registry.register(Box::new(hashing.clone()))?;
        Ok(Metrics { registry, requests, duration, flows, hashing })
    }

    /// The text exposition format.
    pub fn render(&self) -> Response {
        let mut buf = vec![];
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "could not render metrics");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        let mut resp = buf.into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
        resp
    }

    fn observe_request(&self, listener: &str, method: &str, route: &str, status: StatusCode, took: Duration) {
        self.requests.with_label_values(&[listener, method, route, status.as_str()]).inc();
        self.duration.with_label_values(&[listener, method, route]).observe(took.as_secs_f64());
    }
}

impl Observer for Metrics {
    fn flow_outcome(&self, kind: FlowKind, method: &'static str, outcome: &'static str) {
        self.flows.with_label_values(&[kind.as_str(), method, outcome]).inc();
    }

    fn password_hashing(&self, op: &'static str, took: Duration) {
        self.hashing.with_label_values(&[op]).observe(took.as_secs_f64());
    }
}

/// The HTTP method as a label from a fixed set (extension methods are `OTHER`).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Middleware: count and time every request under its route template.
pub async fn track(
    State((metrics, listener)): State<(Arc<Metrics>, &'static str)>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.observe_request(listener, method, route, resp.status(), started.elapsed());
    resp
}

/// `GET /metrics` on the admin listener (the registry comes as an extension of the router).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metadata",
    operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain", body = String))
)]
pub async fn render_metrics(axum::Extension(m): axum::Extension<std::sync::Arc<Metrics>>) -> Response {
    m.render()
}
