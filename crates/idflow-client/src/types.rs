//! The JSON objects of the v1 API: flows with their UI, sessions and identities.
//!
//! The types are lenient readers: fields the server may leave out default to empty values, and
//! fields this crate does not model are ignored, so a newer server does not break an older
//! client. Timestamps are kept as the RFC 3339 strings the server sends.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A self-service flow (settings, login or registration) in the v1 shape.
///
/// The flow carries the form to render (`ui`) and, after a submit, its outcome: `state` is
/// `"show_form"` while the form is being filled in and `"success"` once a settings change was
/// saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// The flow id (a UUID), used in `/v1/flows/<kind>/<id>:submit`.
    pub id: String,
    /// The flow kind: `"settings"`, `"login"` or `"registration"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `"show_form"`, `"success"`, … (see the server documentation).
    #[serde(default)]
    pub state: String,
    /// When the flow expires (RFC 3339); submitting later fails with
    /// [`Error::FlowExpired`](crate::Error::FlowExpired).
    #[serde(default)]
    pub expires_at: String,
    /// When the flow was created (RFC 3339).
    #[serde(default)]
    pub issued_at: String,
    /// The URL that created the flow.
    #[serde(default)]
    pub request_url: String,
    /// Where a browser goes after the flow, when one was requested with `return_to`.
    #[serde(default)]
    pub return_to: Option<String>,
    /// The form: action URL, nodes and form-level messages.
    pub ui: Ui,
    /// The identity a settings flow belongs to (with its current traits).
    #[serde(default)]
    pub identity: Option<Identity>,
    /// Follow-up actions the server suggests after a successful submit.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub continue_with: Vec<Value>,
}

impl Flow {
    /// The first node whose `attributes.name` (inputs) or `attributes.id` (images, text) is
    /// `name`, e.g. `"password"`, `"traits.email"`, `"totp_qr"`, `"totp_secret_key"`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.ui.nodes.iter().find(|n| n.name() == Some(name) || n.id() == Some(name))
    }

    /// Every node of a group (`"profile"`, `"password"`, `"totp"`, `"lookup_secret"`, …).
    pub fn group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.ui.nodes.iter().filter(move |n| n.group == group)
    }

    /// All messages of the flow: the form-level ones first, then those of each node.
    pub fn messages(&self) -> Vec<Message> {
        let mut out = self.ui.messages.clone();
        for n in &self.ui.nodes {
            out.extend(n.messages.iter().cloned());
        }
        out
    }

    /// The messages of type `"error"` (form level and nodes).
    pub fn errors(&self) -> Vec<Message> {
        self.messages().into_iter().filter(|m| m.kind == "error").collect()
    }

    /// The masked CSRF token of the form (empty for token-authenticated flows, which need
    /// none).
    pub fn csrf_token(&self) -> &str {
        self.node("csrf_token").and_then(Node::value).and_then(Value::as_str).unwrap_or_default()
    }

    /// Whether the flow finished successfully (`state == "success"`).
    pub fn is_success(&self) -> bool {
        self.state == "success"
    }
}

/// The form of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ui {
    /// The absolute URL the form is submitted to (the flow's `:submit` endpoint).
    pub action: String,
    /// The HTTP method of the form (`"POST"`).
    pub method: String,
    /// Inputs, images, texts and buttons, in display order.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub nodes: Vec<Node>,
    /// Form-level messages (success, errors that belong to no single field, …).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub messages: Vec<Message>,
}

/// One element of a form: an input, an image (the TOTP QR code), a text (the TOTP secret, the
/// recovery codes), a script or an anchor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `"input"`, `"image"`, `"text"`, `"script"` or `"a"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The method the node belongs to: `"default"`, `"profile"`, `"password"`, `"totp"`, …
    pub group: String,
    /// The type-specific attributes (`name`, `value`, `src`, `text`, …) as sent by the server.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub attributes: Map<String, Value>,
    /// Messages about this node (e.g. the reason a password was rejected).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub messages: Vec<Message>,
    /// Presentation hints such as `meta.label`.
    #[serde(default)]
    pub meta: Value,
}

impl Node {
    /// `attributes.name` of an input node.
    pub fn name(&self) -> Option<&str> {
        self.attributes.get("name").and_then(Value::as_str)
    }

    /// `attributes.id` of an image, text, script or anchor node.
    pub fn id(&self) -> Option<&str> {
        self.attributes.get("id").and_then(Value::as_str)
    }

    /// `attributes.value` of an input node.
    pub fn value(&self) -> Option<&Value> {
        self.attributes.get("value")
    }

    /// `attributes.src` of an image node (a `data:` URI for the TOTP QR code).
    pub fn src(&self) -> Option<&str> {
        self.attributes.get("src").and_then(Value::as_str)
    }

    /// `attributes.text` of a text node, as a message.
    pub fn text(&self) -> Option<Message> {
        self.attributes.get("text").and_then(|t| Message::deserialize(t.clone()).ok())
    }

    /// The node's label (`meta.label`), when it has one.
    pub fn label(&self) -> Option<Message> {
        self.meta.get("label").and_then(|t| Message::deserialize(t.clone()).ok())
    }
}

/// A message shown to the user: a success note, a hint or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message id from the server's catalogue, e.g. `"1050001"` (settings saved) or
    /// `"4000032"` (password too short). The v1 API sends strings; numbers are accepted too.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// The English text.
    pub text: String,
    /// `"info"`, `"error"` or `"success"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Values the text was built from (e.g. `{"secret": "…", "url": "otpauth://…"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// `null` reads as the empty value (some servers send `null` for an empty list).
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("expected a string or number message id, got {other}"))),
    }
}

/// An identity (an account) as the public API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The identity id (a UUID).
    pub id: String,
    /// The identity schema the traits follow.
    #[serde(default)]
    pub schema_id: String,
    /// `"active"` or `"inactive"`.
    #[serde(default)]
    pub state: String,
    /// The profile data, e.g. `{"email": "…", "name": {"first": "…", "last": "…"}}`.
    #[serde(default)]
    pub traits: Value,
}

/// A login session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The session id (a UUID; not the token).
    pub id: String,
    /// Whether the session is active.
    #[serde(default)]
    pub active: bool,
    /// When the session expires (RFC 3339).
    #[serde(default)]
    pub expires_at: String,
    /// When the user last proved who they are (RFC 3339). Settings such as the password need a
    /// recent one; see [`Error::ReauthenticationRequired`](crate::Error::ReauthenticationRequired).
    #[serde(default)]
    pub authenticated_at: String,
    /// `"aal1"` (one factor) or `"aal2"` (two factors).
    #[serde(default)]
    pub authenticator_assurance_level: String,
    /// The methods used to authenticate, e.g. `[{"method": "password", "aal": "aal1", …}]`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub authentication_methods: Vec<Value>,
    /// The identity the session belongs to.
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// The outcome of a successful sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authenticated {
    /// The session token: pass it to [`Client::with_token`](crate::Client::with_token).
    /// It is a secret; do not log it.
    pub session_token: String,
    /// The session the token stands for.
    pub session: Session,
}

/// The outcome of a successful account recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovered {
    /// The new session's token (this client already uses it). It is a secret; do not log it.
    pub session_token: String,
    /// The new session (`authentication_methods[0].method` is `"code_recovery"`).
    pub session: Session,
    /// The recovery flow, with `continue_with` naming the settings flow to change the
    /// password in (`show_settings_ui`).
    pub continue_flow: Flow,
}

/// One entry of the account's activity log (sign-ins, changes, revocations); never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// The entry's id.
    pub id: String,
    /// `login`, `login_refresh`, `login_step_up`, `registration`, `settings_changed`,
    /// `recovery`, `verification`, `logout`, `session_revoked`, `other_sessions_revoked`, or an
    /// admin change (`admin_…`).
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The method involved (`password`, `totp`, …), if any.
    #[serde(default)]
    pub method: Option<String>,
    /// The session the event happened in (or that it ended), if any.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The client's IP address (the TCP peer the server saw).
    pub ip_address: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// When, RFC 3339.
    pub created_at: String,
}

/// A page of the activity log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityPage {
    /// The entries of this page, newest first.
    pub activity: Vec<ActivityEntry>,
    /// Pass to [`Client::activity`](crate::Client::activity) for the next page; `None` on the
    /// last one.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// Whether the account is scheduled for deletion, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountDeletion {
    /// Whether a deletion is scheduled.
    pub scheduled: bool,
    /// RFC 3339, when scheduled.
    #[serde(default)]
    pub delete_after: Option<String>,
}

/// The outcome of a successful registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The new identity.
    pub identity: Identity,
    /// The session token, when the server signs new users in right away (its default).
    #[serde(default)]
    pub session_token: Option<String>,
    /// The session, when one was issued.
    #[serde(default)]
    pub session: Option<Session>,
}

/// A TOTP (authenticator app) enrolment in progress, from
/// [`Auth::enroll_totp`](crate::Auth::enroll_totp).
///
/// Show the QR code (or the secret) to the user, then confirm with a code from their app
/// through [`Auth::confirm_totp`](crate::Auth::confirm_totp).
#[derive(Clone, PartialEq)]
pub struct TotpEnrollment {
    /// The settings flow the secret is bound to; the code must be confirmed on this flow.
    pub flow_id: String,
    /// The QR code as PNG bytes (decoded from the flow's `data:image/png;base64,…` image).
    pub qr_png: Vec<u8>,
    /// The `otpauth://totp/…` key URI encoded in the QR code.
    pub otpauth_url: String,
    /// The shared secret in base32, for typing into an app by hand.
    pub secret: String,
    /// The flow as the server returned it.
    pub flow: Flow,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment")
            .field("flow_id", &self.flow_id)
            .field("qr_png", &format_args!("<{} bytes>", self.qr_png.len()))
            .field("otpauth_url", &"<redacted>")
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}
