//! HTTP layer: request context extraction (session, CSRF cookie, content negotiation, body
//! parsing) and cookie handling shared by the Kratos, v1 and admin routes; errors that render
//! themselves in `error.rs`, the flow responder in `flow.rs`.

pub mod account;
pub mod admin;
pub mod courier;
pub mod error;
pub mod flow;
pub mod kratos;
pub mod oidc;
pub mod responses;
pub mod v1;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use error::KratosError;
use idflow_core::crypto;
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Flow, FlowType, Session};
use idflow_core::selfservice::{Body, Engine, Req};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// Shared state of every route.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Name of the CSRF cookie (`csrf_token_<sha256 of the public base URL>`, with the
    /// `__Host-` prefix when `cookies.host_prefix` applies).
    pub csrf_cookie: String,
    /// Name of the session cookie (`session.cookie.name`, with the `__Host-` prefix when
    /// `cookies.host_prefix` applies).
    pub session_cookie_name: String,
}

impl AppState {
    pub fn new(engine: Arc<Engine>) -> Self {
        let base = engine.cfg.serve.public.base_url.clone().unwrap_or_else(|| format!("{}/", engine.base()));
        let prefix = if host_prefix_applies(&engine) { "__Host-" } else { "" };
        let csrf_cookie = format!("{prefix}csrf_token_{}", crypto::sha256_hex(base.as_bytes()));
        let session_cookie_name = format!("{prefix}{}", engine.cfg.session.cookie.name);
        AppState { engine, csrf_cookie, session_cookie_name }
    }

    fn secure_cookies(&self) -> bool {
        secure_cookies(&self.engine)
    }

    /// The session cookie's `Domain` attribute, if any.
    fn session_domain(&self) -> Option<&String> {
        self.engine.cfg.session.cookie.domain.as_ref().or(self.engine.cfg.cookies.domain.as_ref())
    }

    /// The attributes the session cookie is set with, so clearing it names the same cookie.
    fn session_attrs(&self) -> String {
        let cfg = &self.engine.cfg.session.cookie;
        let mut c = format!("Path={}; HttpOnly; SameSite={}", cfg.path.as_deref().unwrap_or("/"), self.same_site());
        if let Some(d) = self.session_domain() {
            c.push_str(&format!("; Domain={d}"));
        }
        if self.secure_cookies() {
            c.push_str("; Secure");
        }
        c
    }

    /// `Set-Cookie` for the session.
    pub fn session_cookie(&self, token: &str, max_age_secs: i64) -> HeaderValue {
        let cfg = &self.engine.cfg.session.cookie;
        let value = crypto::sign(&self.engine.cookie_keys, token);
        let mut c = format!("{}={}; {}", self.session_cookie_name, value, self.session_attrs());
        if cfg.persistent {
            c.push_str(&format!("; Max-Age={}", max_age_secs.max(0)));
        }
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for the session, kept until the session expires.
    pub fn session_cookie_for(&self, token: &str, session: &Session) -> HeaderValue {
        let remaining = (session.expires_at - self.engine.clock.now()).whole_seconds();
        self.session_cookie(token, remaining)
    }

    /// `Set-Cookie` for a fresh CSRF secret (a new session rotates it).
    pub fn new_csrf_cookie(&self) -> HeaderValue {
        self.csrf_cookie_header(&crypto::new_csrf_secret())
    }

    /// Clears the session cookie: same name, `Path` and `Domain` as when it was set (a cookie
    /// is only replaced by one with the same name, domain and path).
    pub fn clear_session_cookie(&self) -> HeaderValue {
        let c = format!("{}=; {}; Max-Age=0", self.session_cookie_name, self.session_attrs());
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
    }

    /// `Set-Cookie` for the CSRF secret. The value is signed with the cookie keys: a cookie we
    /// did not issue (tossed in by a sibling subdomain, say) is never adopted.
    pub fn csrf_cookie_header(&self, secret: &str) -> HeaderValue {
        let mut c = format!(
            "{}={}; Path={}; HttpOnly; SameSite={}; Max-Age=31536000",
            self.csrf_cookie,
            crypto::sign(&self.engine.cookie_keys, secret),
            self.engine.cfg.cookies.path.as_deref().unwrap_or("/"),
            self.same_site()
        );
        if let Some(d) = &self.engine.cfg.cookies.domain {
            c.push_str(&format!("; Domain={d}"));
        }
        if self.secure_cookies() {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static(""))
    }

    fn same_site(&self) -> &'static str {
        use idflow_core::config::SameSite;
        if !self.secure_cookies() {
            return "Lax";
        }
        match self.engine.cfg.cookies.same_site {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

fn secure_cookies(engine: &Engine) -> bool {
    !engine.cfg.dev && engine.base().starts_with("https://")
}

/// `cookies.host_prefix`: the `__Host-` prefix is used only where browsers accept it (Secure,
/// no `Domain`, `Path=/`); elsewhere the names stay as configured.
fn host_prefix_applies(engine: &Engine) -> bool {
    let cfg = &engine.cfg;
    let root = |p: &Option<String>| p.as_deref().is_none_or(|p| p == "/");
    cfg.cookies.host_prefix
        && secure_cookies(engine)
        && cfg.cookies.domain.is_none()
        && cfg.session.cookie.domain.is_none()
        && root(&cfg.cookies.path)
        && root(&cfg.session.cookie.path)
}

/// Everything about a request that the handlers need, with the session resolved.
pub struct Ctx {
    pub req: Req,
    /// `Accept` negotiates to JSON (used for success/creation responses).
    pub accept_json: bool,
    pub headers: HeaderMap,
    /// Whether the session came from the cookie (so it must be re-issued / cleared there).
    pub via_cookie: bool,
    pub uri: Uri,
}

/// Content negotiation over `text/html, text/*, */*, application/json` (default text/html):
/// true when `application/json` wins.
pub fn negotiates_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return false };
    let offers = ["text/html", "text/*", "*/*", "application/json"];
    let mut best: Option<(usize, f32, usize)> = None; // (offer index, q, specificity)
    for (oi, offer) in offers.iter().enumerate() {
        let (otype, osub) = offer.split_once('/').unwrap_or((offer, ""));
        let mut chosen: Option<(f32, usize)> = None;
        for part in accept.split(',') {
            let mut it = part.split(';');
            let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut q = 1.0f32;
            for p in it {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            let (t, s) = media.split_once('/').unwrap_or((media.as_str(), ""));
            let spec = if t == "*" && s == "*" {
                1
            } else if s == "*" && t == otype {
                2
            } else if t == otype && s == osub {
                3
            } else {
                continue;
            };
            if chosen.is_none_or(|(_, cs)| spec > cs) {
                chosen = Some((q, spec));
            }
        }
        if let Some((q, spec)) = chosen
            && q > 0.0
            && best.is_none_or(|(_, bq, bs)| q > bq || (q == bq && spec > bs))
        {
            best = Some((oi, q, spec));
        }
    }
    best.is_some_and(|(oi, _, _)| offers[oi] == "application/json")
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn non_cf_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('=').map(|(k, _)| k.to_string()))
        .filter(|k| !(k.starts_with("__cf") || k.starts_with("_cf") || k.starts_with("cf_")))
        .collect()
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = KratosError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let engine = &state.engine;
        let headers = parts.headers.clone();
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let accept = h("accept");
        let accept_json = negotiates_json(accept.as_deref());
        let content_json = h("content-type").is_some_and(|c| c.trim() == "application/json");
        let path_q = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
        let request_url = format!("{}{}", engine.base(), path_q);
        // Token lookup order: X-Session-Token, cookie, Authorization: Bearer.
        let mut via_cookie = false;
        let token = h("x-session-token")
            .filter(|t| !t.is_empty())
            .or_else(|| {
                let c = cookie_value(&headers, &state.session_cookie_name)
                    .and_then(|v| crypto::unsign(&engine.cookie_keys, v));
                via_cookie = c.is_some();
                c
            })
            .or_else(|| {
                h("authorization").and_then(|a| {
                    let mut it = a.split(' ');
                    match (it.next(), it.next(), it.next()) {
                        (Some(s), Some(t), None) if s.eq_ignore_ascii_case("bearer") && !t.is_empty() => {
                            Some(t.to_string())
                        }
                        _ => None,
                    }
                })
            });
        let auth = match &token {
            Some(t) => engine.authenticate(t).await?,
            None => None,
        };
        let api_violation = if h("origin").is_some() {
            Some("The request includes the \"Origin\" key in the HTTP header, which is not allowed for API flows. Remove it and try again.".to_string())
        } else if !non_cf_cookies(&headers).is_empty() {
            Some("The request includes the \"Cookie\" key in the HTTP header, which is not allowed for API flows. Remove it and try again.".to_string())
        } else {
            None
        };
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default();
        let user_agent =
            headers.get_all(header::USER_AGENT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(" ");
        let req = Req {
            json: accept_json || content_json,
            request_url,
            auth,
            token,
            csrf_cookie: cookie_value(&headers, &state.csrf_cookie)
                .and_then(|v| crypto::unsign(&engine.cookie_keys, v)),
            api_violation,
            ip,
            user_agent,
        };
        Ok(Ctx { req, accept_json, headers, via_cookie, uri: parts.uri.clone() })
    }
}

/// A request body: JSON object or urlencoded form, unflattened (`traits.email` → nested).
pub struct ParsedBody(pub Body);

/// Nesting of a JSON value as the handlers see it: a dot in a key is one more level, because
/// bodies are unflattened (`{"a.b": 1}` is `{"a": {"b": 1}}`). Counting them here keeps a flat
/// key with thousands of dots from turning into a nesting that exhausts the stack.
fn json_depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.iter().map(|(k, v)| key_depth(k) - 1 + json_depth(v)).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Levels a (possibly dotted) key becomes when unflattened.
fn key_depth(k: &str) -> usize {
    1 + k.bytes().filter(|b| *b == b'.').count()
}

/// Decode a JSON document, refusing nesting deeper than `max_depth`.
fn decode_json(bytes: &[u8], max_depth: usize) -> Result<Value, Error> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::bad_request(format!("Unable to decode JSON payload: {e}")))?;
    if json_depth(&v) > max_depth {
        return Err(Error::bad_request(format!("The JSON payload is nested deeper than {max_depth} levels.")));
    }
    Ok(v)
}

fn media_type(content_type: Option<&str>) -> String {
    content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn is_json_media_type(ct: &str) -> bool {
    ct == "application/json" || ct.ends_with("+json")
}

/// Parse a JSON-only body (admin API, v1): any JSON value, nesting limited. A content type
/// other than JSON is refused; none at all is taken as JSON.
pub fn parse_json(content_type: Option<&str>, bytes: &[u8], max_depth: usize) -> Result<Value, Error> {
    let ct = media_type(content_type);
    if !ct.is_empty() && !is_json_media_type(&ct) {
        return Err(Error::bad_request(format!(
            "The request content type {ct:?} is not supported. Use application/json."
        )));
    }
    decode_json(bytes, max_depth)
}

/// The error for a request body that could not be read (413 over `limits.max_body_bytes`).
pub fn body_error(e: &BytesRejection) -> Error {
    let kind =
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE { ErrorKind::PayloadTooLarge } else { ErrorKind::BadRequest };
    Error::new(kind, e.body_text())
}

/// Parse a body by content type. Errors are Kratos `BadRequest`s.
pub fn parse_body(
    content_type: Option<&str>,
    bytes: &[u8],
    max_depth: usize,
    form_types: &[(String, String)],
) -> Result<Body, Error> {
    let ct = media_type(content_type);
    if bytes.is_empty() && ct.is_empty() {
        return Ok(Map::new());
    }
    if is_json_media_type(&ct) || (ct.is_empty() && bytes.first() == Some(&b'{')) {
        match decode_json(bytes, max_depth)? {
            Value::Object(m) => Ok(idflow_core::ui::unflatten(m)),
            _ => Err(Error::bad_request("The request body must be a JSON object.")),
        }
    } else if ct == "application/x-www-form-urlencoded" || ct.is_empty() {
        let mut m = Map::new();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            if key_depth(&k) > max_depth {
                return Err(Error::bad_request(format!(
                    "The form field names are nested deeper than {max_depth} levels."
                )));
            }
            let typed = match form_types.iter().find(|(n, _)| *n == k).map(|(_, t)| t.as_str()) {
                Some("number") => v
                    .parse::<i64>()
                    .map(Value::from)
                    .or_else(|_| v.parse::<f64>().map(Value::from))
                    .unwrap_or_else(|_| Value::String(v.to_string())),
                Some("checkbox") => Value::Bool(v == "true" || v == "on" || v == "1"),
                _ => Value::String(v.to_string()),
            };
            m.insert(k.into_owned(), typed);
        }
        Ok(idflow_core::ui::unflatten(m))
    } else {
        Err(Error::bad_request(format!(
            "The request content type {ct:?} is not supported. Use application/json or application/x-www-form-urlencoded."
        )))
    }
}

impl FromRequest<AppState> for ParsedBody {
    type Rejection = KratosError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| body_error(&e))?;
        let form_types: Vec<(String, String)> = state
            .engine
            .default_schema()
            .map(|s| {
                s.trait_nodes(idflow_core::ui::Group::Profile, None)
                    .iter()
                    .filter_map(|n| n.input_type().map(|t| (n.id().to_string(), t.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(ParsedBody(parse_body(ct.as_deref(), &bytes, state.engine.cfg.limits.max_json_depth, &form_types)?))
    }
}

/// 303 See Other.
pub fn see_other(url: &str) -> Response {
    Redirect::to(url).into_response()
}

/// JSON with a status.
pub fn json_response(status: StatusCode, v: impl serde::Serialize) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Store an error for the error UI and redirect the browser there.
pub async fn error_redirect(state: &AppState, e: Error) -> Response {
    // Not stored: with the database down it could not be, and a throttled client must not be
    // able to write a row per request. The error is answered directly.
    if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::RateLimited) {
        return KratosError(e).into_response();
    }
    let id = uuid::Uuid::new_v4();
    let body = json!({
        "id": id,
        "error": crate::wire::error(&e, &error::current_request_id()).get("error").cloned().unwrap_or(Value::Null),
        "created_at": crate::wire::ts(state.engine.clock.now()),
    });
    // Stored errors expire (`cleanup.error_lifespan`); the cleanup worker deletes them.
    let expires = state.engine.clock.now() + state.engine.cfg.cleanup.error_lifespan.as_time();
    let _ = state.engine.store.kv_put_expiring(&format!("error:{id}"), &body.to_string(), expires).await;
    let url = idflow_core::selfservice::with_query(&state.engine.ui_url("error"), &[("id", &id.to_string())]);
    see_other(&url)
}

/// A browser flow's CSRF cookie, when the browser does not have it yet.
pub fn set_csrf_cookie(state: &AppState, ctx: &Ctx, flow: &Flow, resp: &mut Response) {
    if flow.flow_type == FlowType::Browser && ctx.req.csrf_cookie.as_deref() != Some(flow.csrf_token.as_str()) {
        resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&flow.csrf_token));
    }
}

/// Parse a UUID query parameter; a missing or malformed one is a 400 in the envelope.
pub fn parse_uuid(v: Option<&String>, name: &str) -> Result<uuid::Uuid, Error> {
    v.and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or_else(|| Error::bad_request(format!("The {name} query parameter is missing or malformed.")))
}

/// `page_size` (1–1000, default 250) and `page_token` of an activity listing.
pub fn activity_page(uri: &Uri) -> Result<(Option<idflow_core::activity::ActivityCursor>, u32), Error> {
    let q = |name: &str| {
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let size = match q("page_size") {
        None => 250,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::bad_request("page_size must be a number from 1 to 1000."))?,
    };
    let after = match q("page_token") {
        None => None,
        Some(t) => Some(
            idflow_core::activity::ActivityCursor::decode(&t)
                .ok_or_else(|| Error::bad_request("The page_token is invalid."))?,
        ),
    };
    Ok((after, size))
}

/// The `page_token` of the page after `list` (a full page), if there may be one.
pub fn activity_next(list: &[idflow_core::activity::ActivityEvent], size: u32) -> Option<String> {
    if list.len() < size as usize {
        return None;
    }
    list.last().map(|e| e.cursor().encode())
}

/// A page of activity as a JSON array, with `Link: <next>; rel="next"` when there is more.
pub fn activity_response(list: &[idflow_core::activity::ActivityEvent], next: Option<String>) -> Response {
    let mut resp = json_response(StatusCode::OK, Value::Array(list.iter().map(crate::wire::activity).collect()));
    if let Some(n) = next
        && let Ok(v) = HeaderValue::from_str(&format!("<{n}>; rel=\"next\""))
    {
        resp.headers_mut().insert(header::LINK, v);
    }
    resp
}
