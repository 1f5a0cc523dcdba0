//! UI container, nodes and messages of self-service flows (the model of the Kratos `ui` object).
//!
//! The serde form of these types is part of the **stored form of a flow** (format 1 of
//! `idflow-store`'s flow format): its field names are frozen, whatever the wire does. The Kratos
//! JSON sent to clients is `idflow-server`'s `wire::ui` (the v1 dialect converts that in the http
//! layer: string ids, `image` nodes). Message ids and texts follow the Kratos catalogue (see
//! [`msg`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextType {
    Info,
    Error,
    Success,
}

/// A UI message (`UiText`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UiText {
    pub id: u32,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: TextType,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<Value>,
}

impl UiText {
    pub fn new(id: u32, kind: TextType, text: impl Into<String>) -> Self {
        Self { id, text: text.into(), kind, context: None }
    }
    pub fn info(id: u32, text: impl Into<String>) -> Self {
        Self::new(id, TextType::Info, text)
    }
    pub fn error(id: u32, text: impl Into<String>) -> Self {
        Self::new(id, TextType::Error, text)
    }
    pub fn with_context(mut self, ctx: Value) -> Self {
        self.context = Some(ctx);
        self
    }
    pub fn is_error(&self) -> bool {
        self.kind == TextType::Error
    }
}

/// Node groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Default,
    Profile,
    Password,
    Oidc,
    LookupSecret,
    Webauthn,
    Passkey,
    Totp,
    Link,
    Code,
    IdentifierFirst,
    Captcha,
    Saml,
}

impl Group {
    /// Sort rank of the group in settings flows (spec settings-flow §6.6).
    pub fn rank(self) -> u8 {
        match self {
            Group::Default => 1,
            Group::Profile => 2,
            Group::Password => 3,
            Group::Oidc => 4,
            Group::LookupSecret => 5,
            Group::Webauthn => 6,
            Group::Passkey => 7,
            Group::Totp => 8,
            _ => 0,
        }
    }
}

/// Input attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAttributes {
    pub name: String,
    #[serde(rename = "type")]
    pub input_type: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "is_false", default)]
    pub required: bool,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub autocomplete: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub maxlength: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub options: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub onclick: Option<String>,
    #[serde(rename = "onclickTrigger", skip_serializing_if = "Option::is_none", default)]
    pub onclick_trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub onload: Option<String>,
    #[serde(rename = "onloadTrigger", skip_serializing_if = "Option::is_none", default)]
    pub onload_trigger: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Node attributes, tagged by `node_type` like Kratos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node_type", rename_all = "lowercase")]
pub enum Attributes {
    Input(InputAttributes),
    Text {
        id: String,
        text: UiText,
    },
    Img {
        id: String,
        src: String,
        width: u32,
        height: u32,
    },
    A {
        id: String,
        href: String,
        title: UiText,
    },
    Script {
        id: String,
        src: String,
        #[serde(rename = "async")]
        is_async: bool,
        referrerpolicy: String,
        crossorigin: String,
        integrity: String,
        #[serde(rename = "type")]
        script_type: String,
        nonce: String,
    },
    Div {
        id: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        class: Option<String>,
    },
}

/// [`Attributes`] as the derived reader reads them, with a fast path for the common nodes:
/// `node_type` first (where every writer of this crate puts it) and an input, text or img
/// node, read straight into its variant. The derived reader of an internally tagged enum first
/// copies the whole object into a buffer of its own (for a QR code node, its 3 KB picture), which
/// was a third of decoding a stored flow. Other nodes, or another key order, go through the
/// derived reader.
fn de_attributes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Attributes, D::Error> {
    use serde::de::{Error as _, MapAccess, Visitor, value::MapAccessDeserializer};

    struct Fast;
    impl<'de> Visitor<'de> for Fast {
        type Value = Attributes;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("node attributes")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attributes, A::Error> {
            let mut rest = Map::new();
            if let Some(key) = map.next_key::<String>()? {
                let value: Value = map.next_value()?;
                if key == "node_type" {
                    match value.as_str() {
                        Some("input") => {
                            return InputAttributes::deserialize(MapAccessDeserializer::new(map))
                                .map(Attributes::Input);
                        }
                        Some("text") => {
                            return fields::Text::deserialize(MapAccessDeserializer::new(map)).map(Into::into);
                        }
                        Some("img") => {
                            return fields::Img::deserialize(MapAccessDeserializer::new(map)).map(Into::into);
                        }
                        _ => {}
                    }
                }
                rest.insert(key, value);
            }
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                rest.insert(k, v);
            }
            Attributes::deserialize(Value::Object(rest)).map_err(A::Error::custom)
        }
    }
    d.deserialize_map(Fast)
}

/// The fields of the [`Attributes`] variants a stored settings form holds besides inputs (the
/// TOTP QR code and secret, recovery codes), for `de_attributes`' fast path: field for field as
/// the variants (a test reads every kind both ways).
mod fields {
    use super::{Attributes, UiText};
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub(super) struct Text {
        id: String,
        text: UiText,
    }
    #[derive(Deserialize)]
    pub(super) struct Img {
        id: String,
        src: String,
        width: u32,
        height: u32,
    }

    impl From<Text> for Attributes {
        fn from(f: Text) -> Self {
            Attributes::Text { id: f.id, text: f.text }
        }
    }
    impl From<Img> for Attributes {
        fn from(f: Img) -> Self {
            Attributes::Img { id: f.id, src: f.src, width: f.width, height: f.height }
        }
    }
}

/// Node meta (label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<UiText>,
}

/// One UI node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "type")]
    pub node_type: String,
    pub group: Group,
    #[serde(deserialize_with = "de_attributes")]
    pub attributes: Attributes,
    pub messages: Vec<UiText>,
    pub meta: Meta,
}

impl Node {
    fn wrap(group: Group, attributes: Attributes, label: Option<UiText>) -> Self {
        let node_type = match &attributes {
            Attributes::Input(_) => "input",
            Attributes::Text { .. } => "text",
            Attributes::Img { .. } => "img",
            Attributes::A { .. } => "a",
            Attributes::Script { .. } => "script",
            Attributes::Div { .. } => "div",
        };
        Node { node_type: node_type.into(), group, attributes, messages: vec![], meta: Meta { label } }
    }

    /// An input node.
    pub fn input(group: Group, name: &str, input_type: &str) -> Self {
        Self::wrap(
            group,
            Attributes::Input(InputAttributes {
                name: name.into(),
                input_type: input_type.into(),
                ..Default::default()
            }),
            None,
        )
    }

    /// A submit button `name=value`.
    pub fn submit(group: Group, name: &str, value: Value, label: UiText) -> Self {
        Self::input(group, name, "submit").value(value).label(label)
    }

    /// The hidden `csrf_token` node.
    pub fn csrf(token: &str) -> Self {
        Self::input(Group::Default, "csrf_token", "hidden").value(json!(token)).required()
    }

    pub fn text(group: Group, id: &str, text: UiText, label: Option<UiText>) -> Self {
        Self::wrap(group, Attributes::Text { id: id.into(), text }, label)
    }

    /// A link (`a` node) to `href`.
    pub fn anchor(group: Group, id: &str, href: &str, title: UiText) -> Self {
        Self::wrap(group, Attributes::A { id: id.into(), href: href.into(), title }, None)
    }

    pub fn img(group: Group, id: &str, src: String, width: u32, height: u32, label: UiText) -> Self {
        Self::wrap(group, Attributes::Img { id: id.into(), src, width, height }, Some(label))
    }

    pub fn script(group: Group, id: &str, src: String, integrity: String, nonce: String) -> Self {
        Self::wrap(
            group,
            Attributes::Script {
                id: id.into(),
                src,
                is_async: true,
                referrerpolicy: "no-referrer".into(),
                crossorigin: "anonymous".into(),
                integrity,
                script_type: "text/javascript".into(),
                nonce,
            },
            None,
        )
    }

    fn input_attrs(&mut self) -> Option<&mut InputAttributes> {
        match &mut self.attributes {
            Attributes::Input(a) => Some(a),
            _ => None,
        }
    }

    pub fn value(mut self, v: Value) -> Self {
        if let Some(a) = self.input_attrs() {
            a.value = Some(v);
        }
        self
    }
    pub fn required(mut self) -> Self {
        if let Some(a) = self.input_attrs() {
            a.required = true;
        }
        self
    }
    pub fn disabled(mut self, d: bool) -> Self {
        if let Some(a) = self.input_attrs() {
            a.disabled = d;
        }
        self
    }
    pub fn autocomplete(mut self, v: &str) -> Self {
        if let Some(a) = self.input_attrs() {
            a.autocomplete = Some(v.into());
        }
        self
    }
    pub fn label(mut self, l: UiText) -> Self {
        self.meta.label = Some(l);
        self
    }
    pub fn with_attrs(mut self, f: impl FnOnce(&mut InputAttributes)) -> Self {
        if let Some(a) = self.input_attrs() {
            f(a);
        }
        self
    }

    /// `attributes.name` for inputs, `attributes.id` for the rest.
    pub fn id(&self) -> &str {
        match &self.attributes {
            Attributes::Input(a) => &a.name,
            Attributes::Text { id, .. }
            | Attributes::Img { id, .. }
            | Attributes::A { id, .. }
            | Attributes::Script { id, .. }
            | Attributes::Div { id, .. } => id,
        }
    }

    pub fn input_value(&self) -> Option<&Value> {
        match &self.attributes {
            Attributes::Input(a) => a.value.as_ref(),
            _ => None,
        }
    }
    pub fn input_type(&self) -> Option<&str> {
        match &self.attributes {
            Attributes::Input(a) => Some(&a.input_type),
            _ => None,
        }
    }
}

/// The UI container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ui {
    pub action: String,
    pub method: String,
    pub nodes: Vec<Node>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub messages: Vec<UiText>,
}

impl Ui {
    pub fn new(action: String) -> Self {
        Ui { action, method: "POST".into(), nodes: vec![], messages: vec![] }
    }

    /// Remove every message on nodes and at form level.
    pub fn clear_messages(&mut self) {
        self.messages.clear();
        for n in &mut self.nodes {
            n.messages.clear();
        }
    }

    pub fn has_errors(&self) -> bool {
        self.messages.iter().any(UiText::is_error) || self.nodes.iter().any(|n| n.messages.iter().any(UiText::is_error))
    }

    /// Replace the value of the `csrf_token` node (adds the node if missing).
    pub fn set_csrf(&mut self, token: &str) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.id() == "csrf_token") {
            *n = Node::csrf(token);
        } else {
            self.nodes.insert(0, Node::csrf(token));
        }
    }

    /// Find a node by name (input) or id, optionally restricted to a group.
    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id() == name)
    }

    /// Attach a message to the node `name`, creating a text input in group default if absent;
    /// an empty name puts it at form level.
    pub fn add_message(&mut self, name: &str, message: UiText) {
        if name.is_empty() {
            self.messages.push(message);
            return;
        }
        match self.node_mut(name) {
            Some(n) => n.messages.push(message),
            None => {
                let mut n = Node::input(Group::Default, name, "text");
                n.messages.push(message);
                self.nodes.push(n);
            }
        }
    }

    /// Set an input's value (if such node exists).
    pub fn set_value(&mut self, name: &str, value: Value) {
        if let Some(n) = self.node_mut(name)
            && let Attributes::Input(a) = &mut n.attributes
        {
            a.value = Some(value);
        }
    }

    /// Remove every node of a group.
    pub fn remove_group(&mut self, g: Group) {
        self.nodes.retain(|n| n.group != g);
    }

    /// Sort nodes (settings-flow §6.6). `trait_order` is the schema order of trait node names.
    pub fn sort(&mut self, trait_order: &[String]) {
        const ORDER: &[&str] = &[
            "lookup_secret_reveal",
            "lookup_secret_regenerate",
            "lookup_secret_codes",
            "lookup_secret_confirm",
            "webauthn_remove",
            "webauthn_register_displayname",
            "webauthn_register",
            "passkey_remove",
            "passkey_register",
            "totp_qr",
            "totp_secret_key",
            "totp_unlink",
            "totp_code",
        ];
        let key = |n: &Node| -> (u8, usize, String) {
            let id = n.id();
            let pos = if id == "method" {
                usize::MAX
            } else if id == "csrf_token" {
                0
            } else if let Some(p) = trait_order.iter().position(|t| t == id) {
                1 + p
            } else if let Some(p) = ORDER.iter().position(|o| id.starts_with(o)) {
                1 + trait_order.len() + p
            } else {
                usize::MAX - 1
            };
            let v = n.input_value().map(|v| v.to_string()).unwrap_or_default();
            (n.group.rank(), pos, v)
        };
        self.nodes.sort_by_key(key);
    }
}

/// Flatten a JSON object into dot-notation leaves (`traits.name.first`).
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// Turn dot-notation keys of an object into nested objects (`{"traits.email": x}` →
/// `{"traits": {"email": x}}`); keys without dots are kept. Nested objects are merged.
pub fn unflatten(m: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in m {
        insert_path(&mut out, &k, v);
    }
    out
}

fn insert_path(obj: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => match (obj.get_mut(path), v) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    insert_path(existing, &k, v);
                }
            }
            (_, v) => {
                obj.insert(path.to_string(), v);
            }
        },
        Some((head, rest)) => {
            let entry = obj.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert_path(inner, rest, v);
            }
        }
    }
}

/// The message catalogue: constructors for every message id used by idflow.
pub mod msg {
    use super::{TextType, UiText};
    use serde_json::json;

    // Login (1010xxx)
    pub fn login_sign_in() -> UiText {
        UiText::info(1010001, "Sign in")
    }
    pub fn login_refresh() -> UiText {
        UiText::info(1010003, "Please confirm this action by verifying that it is you.")
    }
    pub fn login_aal2() -> UiText {
        UiText::info(1010004, "Please complete the second authentication challenge.")
    }
    pub fn login_auth_code() -> UiText {
        UiText::info(1010006, "Authentication code")
    }
    pub fn login_backup_code() -> UiText {
        UiText::info(1010007, "Backup recovery code")
    }
    pub fn login_use_totp() -> UiText {
        UiText::info(1010009, "Use Authenticator")
    }
    pub fn login_use_lookup() -> UiText {
        UiText::info(1010010, "Use backup recovery code")
    }
    pub fn login_with_password() -> UiText {
        UiText::info(1010022, "Sign in with password")
    }
    // Recovery (1060xxx, 4060xxx) and the code nodes (1070xxx), Kratos's texts.
    pub fn recovery_successful(minutes: f64, expires_unix: i64) -> UiText {
        UiText::new(
            1060001,
            TextType::Success,
            format!("You successfully recovered your account. Please change your password or set up an alternative login method (e.g. social sign in) within the next {minutes:.2} minutes."),
        )
        .with_context(json!({"privileged_session_expires_at_unix": expires_unix}))
    }
    pub fn recovery_code_sent() -> UiText {
        UiText::info(
            1060003,
            "An email containing a recovery code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
        )
    }
    pub fn label_email() -> UiText {
        UiText::info(1070007, "Email")
    }
    pub fn label_resend_code() -> UiText {
        UiText::info(1070008, "Resend code")
    }
    pub fn label_continue() -> UiText {
        UiText::info(1070009, "Continue")
    }
    pub fn label_recovery_code() -> UiText {
        UiText::info(1070010, "Recovery code")
    }
    pub fn recovery_retry_success() -> UiText {
        UiText::error(4060001, "The request was already completed successfully and can not be retried.")
    }
    pub fn recovery_state_failure() -> UiText {
        UiText::error(4060002, "The recovery flow reached a failure state and must be retried.")
    }
    pub fn recovery_expired(minutes: f64, expired_at_unix: i64) -> UiText {
        UiText::error(4060005, format!("The recovery flow expired {minutes:.2} minutes ago, please try again."))
            .with_context(json!({"expired_at_unix": expired_at_unix}))
    }
    pub fn recovery_code_invalid() -> UiText {
        UiText::error(4060006, "The recovery code is invalid or has already been used. Please try again.")
    }
    // Verification (1080xxx, 4070xxx).
    pub fn verification_successful() -> UiText {
        UiText::new(1080002, TextType::Success, "You successfully verified your email address.")
    }
    pub fn verification_code_sent() -> UiText {
        UiText::info(
            1080003,
            "An email containing a verification code has been sent to the email address you provided. If you have not received an email, check the spelling of the address and make sure to use the address you registered with.",
        )
    }
    pub fn label_verification_code() -> UiText {
        UiText::info(1070011, "Verification code")
    }
    pub fn verification_retry_success() -> UiText {
        UiText::error(4070002, "The request was already completed successfully and can not be retried.")
    }
    pub fn verification_state_failure() -> UiText {
        UiText::error(4070003, "The verification flow reached a failure state and must be retried.")
    }
    pub fn verification_expired(minutes: f64, expired_at_unix: i64) -> UiText {
        UiText::error(4070005, format!("The verification flow expired {minutes:.2} minutes ago, please try again."))
            .with_context(json!({"expired_at_unix": expired_at_unix}))
    }
    pub fn verification_code_invalid() -> UiText {
        UiText::error(4070006, "The verification code is invalid or has already been used. Please try again.")
    }
    pub fn address_not_verified() -> UiText {
        UiText::error(4000010, "Account not active yet. Did you forget to verify your email address?")
    }
    pub fn code_submitted_too_often() -> UiText {
        UiText::error(4000001, "The request was submitted too often. Please request another code.")
    }
    // Registration
    pub fn sign_up() -> UiText {
        UiText::info(1040001, "Sign up")
    }
    // Settings (1050xxx)
    pub fn settings_saved() -> UiText {
        UiText::new(1050001, TextType::Success, "Your changes have been saved!")
    }
    pub fn link_provider(p: &str) -> UiText {
        UiText::info(1050002, format!("Link {p}")).with_context(json!({"provider": p}))
    }
    pub fn unlink_provider(p: &str) -> UiText {
        UiText::info(1050003, format!("Unlink {p}")).with_context(json!({"provider": p}))
    }
    pub fn totp_unlink() -> UiText {
        UiText::info(1050004, "Unlink TOTP Authenticator App")
    }
    pub fn totp_qr() -> UiText {
        UiText::info(1050005, "Authenticator app QR code")
    }
    pub fn totp_secret(secret: &str) -> UiText {
        UiText::info(1050006, secret).with_context(json!({"secret": secret}))
    }
    /// [`totp_secret`] plus `context.url` (beyond Kratos, which has only `secret`): the
    /// `otpauth://` key URI encoded in the QR code, for clients that cannot read the image.
    pub fn totp_secret_with_url(secret: &str, url: &str) -> UiText {
        UiText::info(1050006, secret).with_context(json!({"secret": secret, "url": url}))
    }
    pub fn lookup_reveal() -> UiText {
        UiText::info(1050007, "Reveal backup recovery codes")
    }
    pub fn lookup_regenerate() -> UiText {
        UiText::info(1050008, "Generate new backup recovery codes")
    }
    pub fn lookup_codes_label() -> UiText {
        UiText::info(1050010, "These are your back up recovery codes. Please keep them in a safe place!")
    }
    pub fn lookup_confirm() -> UiText {
        UiText::info(1050011, "Confirm backup recovery codes")
    }
    pub fn webauthn_add() -> UiText {
        UiText::info(1050012, "Add security key")
    }
    pub fn webauthn_name() -> UiText {
        UiText::info(1050013, "Name of the security key")
    }
    pub fn lookup_disable() -> UiText {
        UiText::info(1050016, "Disable this method")
    }
    pub fn totp_secret_label() -> UiText {
        UiText::info(1050017, "This is your authenticator app secret. Use it if you can not scan the QR code.")
    }
    pub fn passkey_add() -> UiText {
        UiText::info(1050019, "Add passkey")
    }
    /// Label of a `webauthn_remove` button.
    pub fn webauthn_remove(name: &str, added_at: &str, added_at_unix: i64) -> UiText {
        UiText::info(1050018, format!("Remove security key \"{name}\""))
            .with_context(json!({"display_name": name, "added_at": added_at, "added_at_unix": added_at_unix}))
    }
    /// Label of a `passkey_remove` button.
    pub fn passkey_remove(name: &str, added_at: &str, added_at_unix: i64) -> UiText {
        UiText::info(1050020, format!("Remove passkey \"{name}\""))
            .with_context(json!({"display_name": name, "added_at": added_at, "added_at_unix": added_at_unix}))
    }
    /// The settings notice of an account scheduled for deletion: the offer to cancel.
    pub fn deletion_scheduled_notice(date: &str, delete_after: &str) -> UiText {
        UiText::info(
            1050040,
            format!("Your account is scheduled for deletion on {date}. Cancel the deletion to keep it."),
        )
        .with_context(json!({"delete_after": delete_after}))
    }
    /// A deletion was scheduled (the settings flow's success message).
    pub fn deletion_scheduled(date: &str, delete_after: &str) -> UiText {
        UiText::new(
            1050041,
            TextType::Success,
            format!(
                "Your account will be deleted on {date}. You were signed out everywhere; sign in before then to cancel."
            ),
        )
        .with_context(json!({"delete_after": delete_after}))
    }
    /// Guard rail: few unused recovery codes left.
    pub fn few_recovery_codes(unused: usize) -> UiText {
        UiText::info(
            1050043,
            format!("You have {unused} unused recovery codes left. Generate new ones before you run out."),
        )
        .with_context(json!({"unused": unused}))
    }
    pub fn delete_account() -> UiText {
        UiText::info(1050044, "Delete account")
    }
    pub fn delete_account_confirm() -> UiText {
        UiText::info(1050045, "I understand that my account and its data will be deleted")
    }
    pub fn delete_account_cancel() -> UiText {
        UiText::info(1050046, "Cancel the deletion and keep my account")
    }
    pub fn login_webauthn() -> UiText {
        UiText::info(1010008, "Use security key")
    }
    pub fn login_passkey() -> UiText {
        UiText::info(1010021, "Sign in with passkey")
    }
    pub fn login_continue_webauthn() -> UiText {
        UiText::info(1010011, "Continue with security key")
    }
    pub fn no_webauthn() -> UiText {
        UiText::error(4000013, "You have no WebAuthn device set up.")
    }
    pub fn no_webauthn_user() -> UiText {
        UiText::error(4000015, "This account does not exist or has not setup sign in with security key.")
    }
    // Labels (1070xxx)
    pub fn label_password() -> UiText {
        UiText::info(1070001, "Password")
    }
    pub fn label_trait(title: &str, name: &str) -> UiText {
        UiText::info(1070002, title).with_context(json!({"title": title, "name": name}))
    }
    pub fn label_save() -> UiText {
        UiText::info(1070003, "Save")
    }
    pub fn label_id() -> UiText {
        UiText::info(1070004, "ID")
    }
    pub fn label_verify_code() -> UiText {
        UiText::info(1070006, "Verify code")
    }
    // Validation (4000xxx)
    pub fn generic(reason: &str) -> UiText {
        UiText::error(4000001, reason).with_context(json!({"reason": reason}))
    }
    /// 4000001 for a change that would remove the identity's last way to sign in (the context
    /// flag lets the v1 dialect answer `AVNOLOGY_AUTH_014`).
    pub fn last_sign_in_method(reason: &str) -> UiText {
        UiText::error(4000001, reason).with_context(json!({"reason": reason, "last_sign_in_method": true}))
    }
    pub fn missing(property: &str) -> UiText {
        UiText::error(4000002, format!("Property {property} is missing.")).with_context(json!({"property": property}))
    }
    pub fn invalid_credentials() -> UiText {
        UiText::error(
            4000006,
            "The provided credentials are invalid, check for spelling mistakes in your password or username, email address, or phone number.",
        )
    }
    pub fn duplicate() -> UiText {
        UiText::error(4000007, "An account with the same identifier (email, phone, username, ...) exists already.")
    }
    pub fn totp_invalid() -> UiText {
        UiText::error(4000008, "The provided authentication code is invalid, please try again.")
    }
    pub fn no_identifiers() -> UiText {
        UiText::error(
            4000009,
            "Could not find any login identifiers. Did you forget to set them? This could also be caused by a server misconfiguration.",
        )
    }
    pub fn no_totp() -> UiText {
        UiText::error(4000011, "You have no TOTP device set up.")
    }
    pub fn lookup_used() -> UiText {
        UiText::error(4000012, "This backup recovery code has already been used.")
    }
    pub fn no_lookup() -> UiText {
        UiText::error(4000014, "You have no backup recovery codes set up.")
    }
    pub fn lookup_invalid() -> UiText {
        UiText::error(4000016, "The backup recovery code is not valid.")
    }
    pub fn password_similar() -> UiText {
        UiText::error(4000031, "The password can not be used because it is too similar to the identifier.")
    }
    pub fn password_too_short(min: usize, actual: usize) -> UiText {
        UiText::error(4000032, format!("The password must be at least {min} characters long, but got {actual}."))
            .with_context(json!({"min_length": min, "actual_length": actual}))
    }
    pub fn password_too_long(max: usize, actual: usize) -> UiText {
        UiText::error(4000033, format!("The password must be at most {max} characters long, but got {actual}."))
            .with_context(json!({"max_length": max, "actual_length": actual}))
    }
    pub fn password_breached() -> UiText {
        UiText::error(4000034, "The password has been found in data breaches and must no longer be used.")
            .with_context(json!({"breaches": 1}))
    }
    pub fn password_same_as_old() -> UiText {
        UiText::error(4000039, "The new password must be different from the old password.")
    }
    pub fn no_strategy_login() -> UiText {
        UiText::error(4010002, "Could not find a strategy to log you in with. Did you fill out the form correctly?")
    }
    pub fn no_strategy_registration() -> UiText {
        UiText::error(4010003, "Could not find a strategy to sign you up with. Did you fill out the form correctly?")
    }
    pub fn no_strategy_settings() -> UiText {
        UiText::error(
            4010004,
            "Could not find a strategy to update your settings. Did you fill out the form correctly?",
        )
    }
    pub fn identity_disabled() -> UiText {
        UiText::error(4010011, "This account has been disabled. Please contact support for assistance.")
    }
    pub fn login_expired(minutes: f64) -> UiText {
        UiText::error(4010001, format!("The login flow expired {minutes:.2} minutes ago, please try again."))
    }
    pub fn registration_expired(minutes: f64) -> UiText {
        UiText::error(4040001, format!("The registration flow expired {minutes:.2} minutes ago, please try again."))
    }
    /// `expired_at` is RFC 3339; `expired_at_unix` in seconds (settings-flow §12.5).
    pub fn settings_expired(minutes: f64, expired_at: &str, expired_at_unix: i64) -> UiText {
        UiText::error(4050001, format!("The settings flow expired {minutes:.2} minutes ago, please try again."))
            .with_context(json!({"expired_at": expired_at, "expired_at_unix": expired_at_unix}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of node reads back as written, through the fast path (`node_type` first) and
    /// through the derived reader (`node_type` last).
    #[test]
    fn node_attributes_read_back_through_fast_and_derived_paths() {
        let nodes = vec![
            Node::input(Group::Profile, "traits.email", "email").value(json!("a@example.com")).required(),
            Node::csrf("Y3NyZg=="),
            Node::text(Group::Totp, "totp_secret_key", msg::totp_qr(), Some(msg::totp_qr())),
            Node::anchor(Group::Default, "a", "https://id.example/x", msg::totp_qr()),
            Node::img(Group::Totp, "totp_qr", "data:image/png;base64,AA==".into(), 256, 256, msg::totp_qr()),
            Node::script(Group::Webauthn, "webauthn_script", "/s.js".into(), "sha512-x".into(), "n".into()),
            Node::wrap(Group::Default, Attributes::Div { id: "d".into(), class: Some("c".into()) }, None),
        ];
        let text = serde_json::to_string(&nodes).unwrap();
        let back: Vec<Node> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, nodes);

        for node in &nodes {
            // `node_type` last: the derived reader reads it the same.
            let mut moved = serde_json::to_value(node).unwrap();
            let attrs = moved["attributes"].as_object().unwrap().clone();
            assert_eq!(attrs.keys().next().map(String::as_str), Some("node_type"), "written first");
            let mut reordered = Map::new();
            for (k, v) in attrs.iter().filter(|(k, _)| *k != "node_type") {
                reordered.insert(k.clone(), v.clone());
            }
            reordered.insert("node_type".into(), attrs["node_type"].clone());
            moved["attributes"] = Value::Object(reordered);
            let back: Node = serde_json::from_str(&moved.to_string()).unwrap();
            assert_eq!(&back, node);
        }
        // A div without its optional class.
        let div =
            r#"{"type":"div","group":"default","attributes":{"node_type":"div","id":"d"},"messages":[],"meta":{}}"#;
        assert_eq!(
            serde_json::from_str::<Node>(div).unwrap().attributes,
            Attributes::Div { id: "d".into(), class: None }
        );
        let missing = r#"{"type":"img","group":"totp","attributes":{"node_type":"img","id":"q","src":"x"},"messages":[],"meta":{}}"#;
        assert!(serde_json::from_str::<Node>(missing).is_err(), "an img without its size");

        let bad =
            r#"{"type":"input","group":"default","attributes":{"node_type":"input","name":5},"messages":[],"meta":{}}"#;
        assert!(serde_json::from_str::<Node>(bad).is_err());
        let unknown =
            r#"{"type":"x","group":"default","attributes":{"node_type":"blink","id":"b"},"messages":[],"meta":{}}"#;
        assert!(serde_json::from_str::<Node>(unknown).is_err());
    }
}
