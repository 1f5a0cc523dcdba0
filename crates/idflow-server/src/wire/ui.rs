//! The Kratos JSON of a flow's `ui` object (`UiContainer`, `UiNode`, `UiText`, …).
//!
//! These types are the wire shape only: the core's UI types (`idflow_core::ui`) carry their own
//! serde form, which is the stored form of a flow (`idflow-store`, format 1). A change here
//! (a renamed field, a new attribute) never changes what is in the database, and the reverse.

use idflow_core::ui as core;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Message type.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = UiTextType)]
#[serde(rename_all = "lowercase")]
pub enum TextTypeJson {
    Info,
    Error,
    Success,
}

impl From<core::TextType> for TextTypeJson {
    fn from(t: core::TextType) -> Self {
        match t {
            core::TextType::Info => Self::Info,
            core::TextType::Error => Self::Error,
            core::TextType::Success => Self::Success,
        }
    }
}

/// A UI message (`UiText`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiText)]
pub struct UiTextJson {
    pub id: u32,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: TextTypeJson,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<Value>,
}

impl From<&core::UiText> for UiTextJson {
    fn from(t: &core::UiText) -> Self {
        Self { id: t.id, text: t.text.clone(), kind: t.kind.into(), context: t.context.clone() }
    }
}

/// Node groups.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = UiNodeGroup)]
#[serde(rename_all = "snake_case")]
pub enum GroupJson {
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

impl From<core::Group> for GroupJson {
    fn from(g: core::Group) -> Self {
        use core::Group as G;
        match g {
            G::Default => Self::Default,
            G::Profile => Self::Profile,
            G::Password => Self::Password,
            G::Oidc => Self::Oidc,
            G::LookupSecret => Self::LookupSecret,
            G::Webauthn => Self::Webauthn,
            G::Passkey => Self::Passkey,
            G::Totp => Self::Totp,
            G::Link => Self::Link,
            G::Code => Self::Code,
            G::IdentifierFirst => Self::IdentifierFirst,
            G::Captcha => Self::Captcha,
            G::Saml => Self::Saml,
        }
    }
}

/// Input attributes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiNodeInputAttributes)]
pub struct InputAttributesJson {
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

impl From<&core::InputAttributes> for InputAttributesJson {
    fn from(a: &core::InputAttributes) -> Self {
        Self {
            name: a.name.clone(),
            input_type: a.input_type.clone(),
            value: a.value.clone(),
            required: a.required,
            disabled: a.disabled,
            autocomplete: a.autocomplete.clone(),
            pattern: a.pattern.clone(),
            maxlength: a.maxlength,
            options: a.options.clone(),
            onclick: a.onclick.clone(),
            onclick_trigger: a.onclick_trigger.clone(),
            onload: a.onload.clone(),
            onload_trigger: a.onload_trigger.clone(),
        }
    }
}

/// Node attributes, tagged by `node_type` like Kratos.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiNodeAttributes)]
#[serde(tag = "node_type", rename_all = "lowercase")]
pub enum AttributesJson {
    Input(InputAttributesJson),
    Text {
        id: String,
        text: UiTextJson,
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
        title: UiTextJson,
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

impl From<&core::Attributes> for AttributesJson {
    fn from(a: &core::Attributes) -> Self {
        use core::Attributes as A;
        match a {
            A::Input(i) => Self::Input(i.into()),
            A::Text { id, text } => Self::Text { id: id.clone(), text: text.into() },
            A::Img { id, src, width, height } => {
                Self::Img { id: id.clone(), src: src.clone(), width: *width, height: *height }
            }
            A::A { id, href, title } => Self::A { id: id.clone(), href: href.clone(), title: title.into() },
            A::Script { id, src, is_async, referrerpolicy, crossorigin, integrity, script_type, nonce } => {
                Self::Script {
                    id: id.clone(),
                    src: src.clone(),
                    is_async: *is_async,
                    referrerpolicy: referrerpolicy.clone(),
                    crossorigin: crossorigin.clone(),
                    integrity: integrity.clone(),
                    script_type: script_type.clone(),
                    nonce: nonce.clone(),
                }
            }
            A::Div { id, class } => Self::Div { id: id.clone(), class: class.clone() },
        }
    }
}

/// Node meta (label).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiNodeMeta)]
pub struct MetaJson {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub label: Option<UiTextJson>,
}

/// One UI node.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiNode)]
pub struct NodeJson {
    #[serde(rename = "type")]
    pub node_type: String,
    pub group: GroupJson,
    pub attributes: AttributesJson,
    pub messages: Vec<UiTextJson>,
    pub meta: MetaJson,
}

impl From<&core::Node> for NodeJson {
    fn from(n: &core::Node) -> Self {
        Self {
            node_type: n.node_type.clone(),
            group: n.group.into(),
            attributes: (&n.attributes).into(),
            messages: n.messages.iter().map(Into::into).collect(),
            meta: MetaJson { label: n.meta.label.as_ref().map(Into::into) },
        }
    }
}

/// The UI container.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UiContainer)]
pub struct UiJson {
    pub action: String,
    pub method: String,
    pub nodes: Vec<NodeJson>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub messages: Vec<UiTextJson>,
}

impl From<&core::Ui> for UiJson {
    fn from(u: &core::Ui) -> Self {
        Self {
            action: u.action.clone(),
            method: u.method.clone(),
            nodes: u.nodes.iter().map(Into::into).collect(),
            messages: u.messages.iter().map(Into::into).collect(),
        }
    }
}
