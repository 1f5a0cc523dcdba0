//! The one generic node renderer's view model: a flow's `ui` (nodes + messages) turned into
//! forms of plain fields that the templates print without knowing any method.
//!
//! Nodes are grouped by method: each non-default group becomes one `<form>` that posts to the
//! flow's `ui.action` and also carries the `default` group's nodes (the CSRF token, the login
//! identifier, registration traits). Every field gets a page-unique DOM id so labels, messages
//! (`aria-describedby`) and focus order work.

use idflow_core::ui::{Attributes, Group, Node, TextType, Ui, UiText};
use serde_json::Value;
use std::collections::HashSet;

/// A message shown next to a field or at the top of a form or page.
#[derive(Debug, Clone)]
pub struct Msg {
    pub id: u32,
    /// `info`, `error` or `success` (the CSS class and the ARIA role follow from it).
    pub kind: &'static str,
    pub text: String,
}

impl Msg {
    pub fn from_ui(t: &UiText) -> Self {
        let kind = match t.kind {
            TextType::Info => "info",
            TextType::Error => "error",
            TextType::Success => "success",
        };
        Msg { id: t.id, kind, text: t.text.clone() }
    }

    pub fn success(text: impl Into<String>) -> Self {
        Msg { id: 0, kind: "success", text: text.into() }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Msg { id: 0, kind: "error", text: text.into() }
    }

    pub fn is_error(&self) -> bool {
        self.kind == "error"
    }
}

/// One rendered node. `kind` selects the markup: `hidden`, `button`, `checkbox`, `select`,
/// `input`, `img`, `text`, `codes`, `secret`, `link`, `script`, `div`.
#[derive(Debug, Clone, Default)]
pub struct Field {
    pub kind: &'static str,
    pub dom_id: String,
    pub name: String,
    pub input_type: String,
    pub value: String,
    pub label: String,
    pub required: bool,
    pub disabled: bool,
    pub checked: bool,
    pub autocomplete: String,
    pub pattern: String,
    pub maxlength: String,
    /// `primary`, `secondary` or `danger` (buttons).
    pub style: &'static str,
    /// WebAuthn/passkey: the trigger our script runs on click / on load (never inline JS).
    pub trigger: String,
    pub onload_trigger: String,
    pub options: Vec<(String, bool)>,
    pub src: String,
    pub width: u32,
    pub height: u32,
    pub href: String,
    pub text: String,
    pub codes: Vec<String>,
    pub script_async: bool,
    pub integrity: String,
    pub crossorigin: String,
    pub referrerpolicy: String,
    pub script_type: String,
    pub nonce: String,
    pub messages: Vec<Msg>,
    /// Focus this field on load (the first field with an error).
    pub autofocus: bool,
    /// A button that submits without the browser's validation (another method's button in
    /// a form whose required fields belong to the first method).
    pub novalidate: bool,
}

impl Field {
    pub fn has_error(&self) -> bool {
        self.messages.iter().any(Msg::is_error)
    }

    /// Whether the field is visible (hidden inputs and scripts are not).
    pub fn visible(&self) -> bool {
        !matches!(self.kind, "hidden" | "script")
    }
}

/// A method group's fields inside a form; a part with a heading is a `<fieldset>`.
#[derive(Debug, Clone, Default)]
pub struct Part {
    pub group: String,
    pub heading: String,
    pub description: String,
    pub fields: Vec<Field>,
    /// The part has a button that only works with JavaScript (WebAuthn/passkeys).
    pub needs_js: bool,
}

/// One `<form>` posting to the flow's action.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub dom_id: String,
    pub group: String,
    pub heading: String,
    pub description: String,
    pub action: String,
    pub method: String,
    pub parts: Vec<Part>,
    /// Messages of nodes that are not visible (hidden inputs), shown at the top of the form.
    pub messages: Vec<Msg>,
    pub needs_js: bool,
}

/// Gives every element of a page a unique, valid id.
#[derive(Default)]
pub struct Ids(HashSet<String>);

impl Ids {
    pub fn make(&mut self, base: &str) -> String {
        let mut clean: String =
            base.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
        if clean.is_empty() || !clean.starts_with(|c: char| c.is_ascii_alphabetic()) {
            clean.insert_str(0, "f-");
        }
        let mut id = clean.clone();
        let mut n = 2;
        while !self.0.insert(id.clone()) {
            id = format!("{clean}-{n}");
            n += 1;
        }
        id
    }
}

pub fn group_name(g: Group) -> &'static str {
    match g {
        Group::Default => "default",
        Group::Profile => "profile",
        Group::Password => "password",
        Group::Oidc => "oidc",
        Group::LookupSecret => "lookup_secret",
        Group::Webauthn => "webauthn",
        Group::Passkey => "passkey",
        Group::Totp => "totp",
        Group::Link => "link",
        Group::Code => "code",
        Group::IdentifierFirst => "identifier_first",
        Group::Captcha => "captcha",
        Group::Saml => "saml",
    }
}

fn value_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn button_style(name: &str, value: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if ["unlink", "disable", "remove", "revoke", "delete"].iter().any(|w| n.contains(w)) {
        "danger"
    } else if n == "method" || n.ends_with("_confirm") || value == "password" {
        "primary"
    } else {
        "secondary"
    }
}

/// Convert one node. `prefix` scopes the DOM id (the form it is in).
pub fn field(node: &Node, prefix: &str, ids: &mut Ids) -> Field {
    let label = node.meta.label.as_ref().map(|l| l.text.clone()).unwrap_or_default();
    let messages: Vec<Msg> = node.messages.iter().map(Msg::from_ui).collect();
    let mut f = Field { label, messages, ..Default::default() };
    match &node.attributes {
        Attributes::Input(a) => {
            f.name = a.name.clone();
            f.input_type = a.input_type.clone();
            f.value = value_string(a.value.as_ref());
            f.required = a.required;
            f.disabled = a.disabled;
            f.autocomplete = a.autocomplete.clone().unwrap_or_default();
            f.pattern = a.pattern.clone().unwrap_or_default();
            f.maxlength = a.maxlength.map(|m| m.to_string()).unwrap_or_default();
            f.trigger = a.onclick_trigger.clone().unwrap_or_default();
            f.onload_trigger = a.onload_trigger.clone().unwrap_or_default();
            let suffix =
                if matches!(a.input_type.as_str(), "submit" | "button") && !f.value.is_empty() && f.value.len() <= 40 {
                    format!("{}-{}", a.name, f.value)
                } else {
                    a.name.clone()
                };
            f.dom_id = ids.make(&format!("{prefix}-{suffix}"));
            f.kind = match a.input_type.as_str() {
                "hidden" => "hidden",
                "submit" | "button" => "button",
                "checkbox" => {
                    f.checked = matches!(a.value, Some(Value::Bool(true)))
                        || matches!(&a.value, Some(Value::String(s)) if s == "true");
                    "checkbox"
                }
                _ if a.options.as_ref().is_some_and(|o| !o.is_empty()) => {
                    let current = f.value.clone();
                    f.options = a
                        .options
                        .iter()
                        .flatten()
                        .map(|o| {
                            let v = value_string(Some(o));
                            let sel = v == current;
                            (v, sel)
                        })
                        .collect();
                    "select"
                }
                _ => "input",
            };
            if f.kind == "button" {
                f.style = button_style(&a.name, &f.value);
                if f.label.is_empty() {
                    f.label = if f.value.is_empty() { a.name.clone() } else { f.value.clone() };
                }
            }
            if matches!(f.kind, "input" | "select" | "checkbox") && f.label.is_empty() {
                f.label = a.name.clone();
            }
            // Secrets are never echoed back into the page.
            if a.input_type == "password" {
                f.value.clear();
            }
        }
        Attributes::Text { id, text } => {
            f.dom_id = ids.make(id);
            f.name = id.clone();
            f.text = text.text.clone();
            let ctx = text.context.as_ref();
            if let Some(list) = ctx.and_then(|c| c.get("secrets")).and_then(Value::as_array) {
                f.codes = list
                    .iter()
                    .filter_map(|s| s.get("text").and_then(Value::as_str).or_else(|| s.as_str()))
                    .map(str::to_string)
                    .collect();
                f.kind = "codes";
            } else if ctx.and_then(|c| c.get("secret")).is_some() {
                f.kind = "secret";
            } else {
                f.kind = "text";
            }
        }
        Attributes::Img { id, src, width, height } => {
            f.kind = "img";
            f.dom_id = ids.make(id);
            f.name = id.clone();
            f.src = src.clone();
            f.width = *width;
            f.height = *height;
        }
        Attributes::A { id, href, title } => {
            f.kind = "link";
            f.dom_id = ids.make(id);
            f.name = id.clone();
            f.href = href.clone();
            f.text = title.text.clone();
        }
        Attributes::Script { id, src, is_async, referrerpolicy, crossorigin, integrity, script_type, nonce } => {
            f.kind = "script";
            f.dom_id = ids.make(id);
            f.name = id.clone();
            f.src = src.clone();
            f.script_async = *is_async;
            f.referrerpolicy = referrerpolicy.clone();
            f.crossorigin = crossorigin.clone();
            f.integrity = integrity.clone();
            f.script_type = script_type.clone();
            f.nonce = nonce.clone();
        }
        Attributes::Div { id, .. } => {
            f.kind = "div";
            f.dom_id = ids.make(id);
            f.name = id.clone();
        }
    }
    f
}

/// Headings of method groups: (heading, description). The description may depend on the
/// nodes shown (enrolling vs. enrolled).
pub type Describe = dyn Fn(Group, &[&Node]) -> (String, String);

/// Group a flow's nodes into forms. `order` lists groups in display order; groups not listed
/// follow in order of appearance.
///
/// When the `default` group has visible inputs (a login identifier, registration traits) they
/// must appear once, so all groups share one form, each group a part; buttons after the first
/// part skip the browser's validation (the server validates per method). Otherwise (settings,
/// second factors) each group is a form of its own with the default group's hidden nodes.
pub fn forms(ui: &Ui, order: &[Group], ids: &mut Ids, describe: &Describe) -> Vec<Form> {
    let defaults: Vec<&Node> = ui.nodes.iter().filter(|n| n.group == Group::Default).collect();
    let mut groups: Vec<Group> = vec![];
    for n in &ui.nodes {
        if n.group != Group::Default && !groups.contains(&n.group) {
            groups.push(n.group);
        }
    }
    groups.sort_by_key(|g| order.iter().position(|o| o == g).unwrap_or(usize::MAX));
    let of_group = |g: Group| -> Vec<&Node> { ui.nodes.iter().filter(|n| n.group == g).collect() };
    let new_form = |ids: &mut Ids, group: Group, heading: String, description: String| Form {
        dom_id: ids.make(&format!("form-{}", group_name(group))),
        group: group_name(group).to_string(),
        heading,
        description,
        action: ui.action.clone(),
        method: if ui.method.eq_ignore_ascii_case("get") { "get".into() } else { "post".into() },
        ..Default::default()
    };
    let shared = defaults.iter().any(|n| !matches!(n.input_type(), Some("hidden") | None));
    let mut out = vec![];
    if shared || groups.is_empty() {
        let first = groups.first().copied().unwrap_or(Group::Default);
        let mut form = new_form(ids, first, String::new(), String::new());
        let mut parts = vec![(Group::Default, defaults.clone())];
        parts.extend(groups.iter().map(|g| (*g, of_group(*g))));
        for (i, (group, nodes)) in parts.into_iter().enumerate() {
            // The default part and the first method's part read as one.
            let (heading, description) = if i <= 1 { (String::new(), String::new()) } else { describe(group, &nodes) };
            let mut part = Part { group: group_name(group).into(), heading, description, ..Default::default() };
            for n in nodes {
                let mut f = field(n, group_name(group), ids);
                f.novalidate = i > 1 && f.kind == "button";
                part.fields.push(f);
            }
            form.parts.push(part);
        }
        out.push(form);
    } else {
        for group in groups {
            let own = of_group(group);
            let (heading, description) = describe(group, &own);
            let mut form = new_form(ids, group, heading, description);
            let mut part = Part { group: group_name(group).into(), ..Default::default() };
            for n in defaults.iter().chain(own.iter()) {
                part.fields.push(field(n, group_name(group), ids));
            }
            form.parts.push(part);
            out.push(form);
        }
    }
    for form in &mut out {
        for part in &mut form.parts {
            // A method with nothing to show (only hidden inputs or a script) gets no heading.
            if !part.fields.iter().any(|f| f.visible()) {
                part.heading.clear();
                part.description.clear();
            }
            part.needs_js = part.fields.iter().any(|f| !f.trigger.is_empty() || !f.onload_trigger.is_empty());
            form.needs_js |= part.needs_js;
            for f in part.fields.iter().filter(|f| !f.visible()) {
                form.messages.extend(f.messages.iter().cloned());
            }
        }
    }
    // Focus the first field that has an error.
    if let Some(f) = out
        .iter_mut()
        .flat_map(|f| f.parts.iter_mut())
        .flat_map(|p| p.fields.iter_mut())
        .find(|f| f.visible() && f.kind != "button" && f.has_error())
    {
        f.autofocus = true;
    }
    out
}

/// The flow's form-level messages.
pub fn messages(ui: &Ui) -> Vec<Msg> {
    ui.messages.iter().map(Msg::from_ui).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use idflow_core::ui::msg;
    use serde_json::json;

    #[test]
    fn groups_become_forms_with_the_default_nodes() {
        let mut ui = Ui::new("http://x/self-service/login?flow=1".into());
        ui.nodes.push(Node::csrf("tok"));
        ui.nodes.push(Node::input(Group::Totp, "totp_code", "text").label(msg::login_auth_code()));
        ui.nodes.push(Node::submit(Group::Totp, "method", json!("totp"), msg::login_use_totp()));
        ui.nodes.push(Node::input(Group::LookupSecret, "lookup_secret", "text").label(msg::login_backup_code()));
        ui.nodes.push(Node::submit(Group::LookupSecret, "method", json!("lookup_secret"), msg::login_use_lookup()));
        ui.add_message("totp_code", msg::totp_invalid());
        let mut ids = Ids::default();
        let forms = forms(&ui, &[Group::LookupSecret, Group::Totp], &mut ids, &|_, _| (String::new(), String::new()));
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].group, "lookup_secret");
        assert_eq!(forms[1].group, "totp");
        for f in &forms {
            assert_eq!(f.parts.len(), 1);
            assert_eq!(f.parts[0].fields[0].kind, "hidden");
            assert_eq!(f.parts[0].fields[0].value, "tok");
        }
        let totp = &forms[1].parts[0].fields;
        assert_eq!(totp[1].dom_id, "totp-totp_code");
        assert!(totp[1].autofocus && totp[1].has_error());
        assert_eq!(totp[2].kind, "button");
        assert_eq!(totp[2].style, "primary");
        // Ids are unique on the page.
        let all: Vec<&String> =
            forms.iter().flat_map(|f| f.parts.iter().flat_map(|p| p.fields.iter().map(|x| &x.dom_id))).collect();
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
    }

    #[test]
    fn visible_default_inputs_appear_once_in_one_form() {
        let mut ui = Ui::new("http://x/self-service/login?flow=1".into());
        ui.nodes.push(Node::csrf("tok"));
        ui.nodes.push(Node::input(Group::Default, "identifier", "text").label(msg::label_id()));
        ui.nodes.push(Node::input(Group::Password, "password", "password").required());
        ui.nodes.push(Node::submit(Group::Password, "method", json!("password"), msg::login_with_password()));
        ui.nodes.push(Node::input(Group::Passkey, "passkey_login", "hidden"));
        ui.nodes.push(
            Node::input(Group::Passkey, "passkey_login_trigger", "button")
                .with_attrs(|a| a.onclick_trigger = Some("oryPasskeyLogin".into())),
        );
        let forms = forms(&ui, &[Group::Password, Group::Passkey], &mut Ids::default(), &|g, _| {
            (group_name(g).into(), String::new())
        });
        assert_eq!(forms.len(), 1);
        let parts = &forms[0].parts;
        assert_eq!(parts.iter().map(|p| p.group.as_str()).collect::<Vec<_>>(), ["default", "password", "passkey"]);
        assert_eq!(parts.iter().flat_map(|p| &p.fields).filter(|f| f.name == "identifier").count(), 1);
        assert!(parts[1].heading.is_empty() && parts[2].heading == "passkey");
        assert!(parts[2].needs_js && forms[0].needs_js);
        assert_eq!(parts[2].fields[1].trigger, "oryPasskeyLogin");
        assert!(parts[2].fields[1].novalidate && !parts[1].fields[1].novalidate);
    }

    #[test]
    fn text_nodes_with_secrets_become_codes() {
        let codes =
            json!([{"id": 1050009, "text": "abc", "type": "info"}, {"id": 1050009, "text": "def", "type": "info"}]);
        let n = Node::text(
            Group::LookupSecret,
            "lookup_secret_codes",
            UiText::info(1050015, "abc, def").with_context(json!({"secrets": codes})),
            None,
        );
        let f = field(&n, "x", &mut Ids::default());
        assert_eq!(f.kind, "codes");
        assert_eq!(f.codes, vec!["abc", "def"]);
        let n = Node::text(Group::Totp, "totp_secret_key", msg::totp_secret("ABC"), Some(msg::totp_secret_label()));
        let f = field(&n, "x", &mut Ids::default());
        assert_eq!((f.kind, f.text.as_str()), ("secret", "ABC"));
    }

    #[test]
    fn password_values_are_never_rendered() {
        let n = Node::input(Group::Password, "password", "password").value(json!("hunter2"));
        assert_eq!(field(&n, "p", &mut Ids::default()).value, "");
    }
}
