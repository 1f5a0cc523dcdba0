//! Admin courier routes: `GET /admin/courier/messages` (newest first; `page_size`,
//! `page_token`, `status`, `recipient`; `Link` header to the next page) and
//! `GET /admin/courier/messages/{id}`, in Kratos's message shape. Subject and body are shown
//! only in dev mode (`dev: true`); otherwise they read `<redacted-unless-dev-mode>`.

use super::error::KratosError;
use super::{AppState, Ctx, json_response};
use crate::http::responses as R;
use crate::openapi::Routes;
use crate::wire;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use idflow_core::courier::{Message, MessageFilter, MessageStatus, PageToken};
use idflow_core::error::Error;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

const REDACTED: &str = "<redacted-unless-dev-mode>";

/// The courier routes (mounted under `/admin` by `admin::routes`).
pub fn routes() -> Routes {
    Routes::new().routes(routes!(list_messages)).routes(routes!(get_message))
}

/// A delivery attempt of a message.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageDispatch)]
pub struct DispatchJson {
    pub id: Uuid,
    pub message_id: Uuid,
    /// `failed` or `success`.
    pub status: String,
    /// The error of a failed attempt.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// Kratos's `message` object.
#[derive(Serialize, ToSchema)]
#[schema(as = Message)]
pub struct CourierMessageJson {
    pub id: Uuid,
    /// `queued`, `processing`, `sent`, `abandoned`.
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    /// Redacted unless `dev`.
    pub subject: String,
    /// Redacted unless `dev`.
    pub body: String,
    pub template_type: String,
    pub send_count: i64,
    pub dispatches: Vec<DispatchJson>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

fn message(m: &Message, dev: bool) -> Value {
    let (subject, body) = if dev { (m.subject.as_str(), m.body.as_str()) } else { (REDACTED, REDACTED) };
    let ts = |t| wire::ts(t).as_str().unwrap_or_default().to_string();
    let j = CourierMessageJson {
        id: m.id,
        status: m.status.as_str().into(),
        kind: m.channel.clone(),
        channel: m.channel.clone(),
        recipient: m.recipient.clone(),
        subject: subject.into(),
        body: body.into(),
        template_type: m.template_type.as_str().into(),
        send_count: m.send_count,
        dispatches: m
            .dispatches
            .iter()
            .map(|d| DispatchJson {
                id: d.id,
                message_id: d.message_id,
                status: d.status.as_str().into(),
                error: d.error.clone(),
                created_at: ts(d.created_at),
                updated_at: ts(d.updated_at),
            })
            .collect(),
        created_at: ts(m.created_at),
        updated_at: ts(m.updated_at),
    };
    serde_json::to_value(j).unwrap_or(Value::Null)
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

#[utoipa::path(
    get,
    path = "/courier/messages",
    tag = "courier",
    operation_id = "listCourierMessages",
    params(("page_size" = Option<u32>, Query, description = "1 to 1000 (default 250)."), ("page_token" = Option<String>, Query, description = "From the `Link` header of the previous page."), ("status" = Option<String>, Query, description = "`queued`, `processing`, `sent`, `abandoned`."), ("recipient" = Option<String>, Query, description = "Only messages to this address.")),
    responses(
        (status = 200, description = "Messages, newest first (subject and body redacted unless `dev`).", body = Vec<CourierMessageJson>),
        R::AdminBadRequest, R::Unavailable
    )
)]
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

#[utoipa::path(
    get,
    path = "/courier/messages/{id}",
    tag = "courier",
    operation_id = "getCourierMessage",
    params(("id" = uuid::Uuid, Path, description = "The message id.")),
    responses(
        (status = 200, description = "The message.", body = CourierMessageJson),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn get_message(State(state): State<AppState>, _: Ctx, Path(id): Path<String>) -> Result<Response, KratosError> {
    let id = Uuid::parse_str(&id).map_err(|_| Error::bad_request("The id is not a valid UUID."))?;
    match state.engine.store.courier_get(id).await? {
        Some(m) => Ok(json_response(StatusCode::OK, message(&m, state.engine.cfg.dev))),
        None => Err(Error::not_found("The requested message does not exist.").into()),
    }
}
