//! Admin courier routes: `GET /admin/courier/messages` (newest first; `page_size`,
//! `page_token`, `status`, `recipient`; `Link` header to the next page) and
//! `GET /admin/courier/messages/{id}`, in Kratos's message shape. Subject and body are shown
//! only in dev mode (`dev: true`); otherwise they read `<redacted-unless-dev-mode>`.

use super::error::KratosError;
use super::{AppState, Ctx, json_response};
use crate::wire;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use idflow_core::courier::{Message, MessageFilter, MessageStatus, PageToken};
use idflow_core::error::Error;
use serde_json::{Value, json};
use uuid::Uuid;

const REDACTED: &str = "<redacted-unless-dev-mode>";

pub fn routes() -> Router<AppState> {
    Router::new().route("/courier/messages", get(list_messages)).route("/courier/messages/{id}", get(get_message))
}

/// Kratos's `message` object.
fn message(m: &Message, dev: bool) -> Value {
    let (subject, body) = if dev { (m.subject.as_str(), m.body.as_str()) } else { (REDACTED, REDACTED) };
    json!({
        "id": m.id,
        "status": m.status.as_str(),
        "type": m.channel,
        "channel": m.channel,
        "recipient": m.recipient,
        "subject": subject,
        "body": body,
        "template_type": m.template_type.as_str(),
        "send_count": m.send_count,
        "dispatches": m.dispatches.iter().map(|d| json!({
            "id": d.id,
            "message_id": d.message_id,
            "status": d.status.as_str(),
            "error": d.error,
            "created_at": wire::ts(d.created_at),
            "updated_at": wire::ts(d.updated_at),
        })).collect::<Vec<_>>(),
        "created_at": wire::ts(m.created_at),
        "updated_at": wire::ts(m.updated_at),
    })
}

fn query(uri: &axum::http::Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

fn parse_list(uri: &axum::http::Uri) -> Result<(MessageFilter, Option<PageToken>, u32), Error> {
    let size = match query(uri, "page_size") {
        None => 250,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::bad_request("page_size must be a number from 1 to 1000."))?,
    };
    let after = match query(uri, "page_token") {
        None => None,
        Some(t) => Some(PageToken::decode(&t).ok_or_else(|| Error::bad_request("The page_token is invalid."))?),
    };
    let status = match query(uri, "status") {
        None => None,
        Some(s) => Some(
            MessageStatus::parse(&s)
                .ok_or_else(|| Error::bad_request("status must be one of queued, processing, sent, abandoned."))?,
        ),
    };
    Ok((MessageFilter { status, recipient: query(uri, "recipient") }, after, size))
}

async fn list_messages(State(state): State<AppState>, ctx: Ctx) -> Result<Response, KratosError> {
    let (filter, after, size) = parse_list(&ctx.uri)?;
    let list = state.engine.store.courier_list(&filter, after, size).await?;
    let dev = state.engine.cfg.dev;
    let mut resp = json_response(StatusCode::OK, Value::Array(list.iter().map(|m| message(m, dev)).collect()));
    if list.len() == size as usize
        && let Some(last) = list.last()
    {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        next.append_pair("page_size", &size.to_string());
        next.append_pair("page_token", &PageToken::of(last).encode());
        if let Some(s) = filter.status {
            next.append_pair("status", s.as_str());
        }
        if let Some(r) = &filter.recipient {
            next.append_pair("recipient", r);
        }
        let link =
            format!("<{}/admin/courier/messages?{}>; rel=\"next\"", state.engine.cfg.admin_base(), next.finish());
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

async fn get_message(State(state): State<AppState>, _: Ctx, Path(id): Path<String>) -> Result<Response, KratosError> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::bad_request("The id is not a valid UUID."))?;
    match state.engine.store.courier_get(id).await? {
        Some(m) => Ok(json_response(StatusCode::OK, message(&m, state.engine.cfg.dev))),
        None => Err(Error::not_found("The requested message does not exist.").into()),
    }
}
