//! Identity schemas (spec identity-session-login §5, settings-flow §6.5 / §10.2).
//!
//! An identity schema is a JSON Schema (draft-07 unless `$schema` says otherwise) describing
//! the whole identity; the traits live under `properties.traits`. The custom keyword
//! `"ory.sh/kratos"` marks traits as credential identifiers, verifiable / recovery addresses,
//! TOTP account names and passkey display names.
//!
//! This module compiles such schemas, validates traits (mapping every failure to a Kratos
//! message id), extracts identifiers and addresses from traits, and generates the profile
//! input nodes of self-service forms.
//!
//! Schema walking (node generation, extraction) follows local `$ref`s (`#/definitions/…`,
//! `#/$defs/…`, or any pointer into the same document), `allOf`, and the `anyOf` / `oneOf`
//! branches (for extraction only the branches the value actually satisfies).
//! `patternProperties` and `if`/`then`/`else` are validated but not walked.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{Map, Value, json};
use unicode_normalization::UnicodeNormalization;

use crate::ui::{Group, Node, UiText, msg};

mod errors;
mod extension;
mod normalize;
mod policy;
mod walk;

use errors::*;
use extension::*;
pub use normalize::normalize_identifier;
use normalize::*;
pub use policy::FieldPolicy;
use policy::*;

/// The built-in default identity schema (email + name.first / name.last).
pub const DEFAULT_SCHEMA_JSON: &str = include_str!("default_identity.schema.json");

/// Id under which the built-in schema is registered by default.
pub const DEFAULT_SCHEMA_ID: &str = "default";

/// The extension keyword.
const EXT: &str = "ory.sh/kratos";
/// Maximum depth when walking schemas / instances together (and for flattening values).
const MAX_DEPTH: usize = 64;
/// Maximum number of subschemas applying at one instance location (`$ref` / `allOf` chains).
const MAX_EXPAND: usize = 256;
/// Maximum nesting of the schema document itself.
const MAX_SCHEMA_DEPTH: usize = 512;
/// Maximum number of `options` emitted for an `enum` trait.
const MAX_OPTIONS: usize = 500;
/// Nesting limit when translating `anyOf` / `oneOf` sub-errors.
const MAX_ERROR_DEPTH: usize = 8;
/// Formats allowed on a trait carrying `verification`.
const VERIFICATION_FORMATS: &[&str] = &["email", "tel", "date", "time", "date-time", "no-validate", "noformat"];

/// Schema compilation failures.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema is not acceptable as an identity schema.
    #[error("invalid identity schema: {0}")]
    Invalid(String),
    /// The schema text is not JSON.
    #[error("identity schema is not valid JSON: {0}")]
    Parse(String),
}

/// What the `ory.sh/kratos` extension yields for a set of traits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Identifiers of the `password` credential (normalised, deduplicated).
    pub password_identifiers: Vec<String>,
    /// Identifiers of the `webauthn` credential (normalised, deduplicated).
    pub webauthn_identifiers: Vec<String>,
    /// Account name for the `otpauth://` URL (raw trait value).
    pub totp_account_name: Option<String>,
    /// Display name for passkeys (raw trait value).
    pub passkey_display_name: Option<String>,
    /// Verifiable addresses `(via, value)`; email values are trimmed and lowercased,
    /// sms values are E.164 when they parse as a phone number.
    pub verifiable_addresses: Vec<(String, String)>,
    /// Recovery addresses `(via, value)`, normalised like verifiable addresses.
    pub recovery_addresses: Vec<(String, String)>,
}

/// A compiled identity schema.
#[derive(Clone)]
pub struct IdentitySchema {
    pub id: String,
    pub raw: Value,
    validator: Arc<Validator>,
    email_check: Arc<Validator>,
    /// Validators of `anyOf` / `oneOf` branches, by schema pointer (to pick applying branches).
    branches: Arc<HashMap<String, Validator>>,
    /// Trait leaves in schema order.
    fields: Vec<TraitField>,
    /// The extraction walk worked out at compile time (schemas without `anyOf` / `oneOf`).
    compiled_walk: Option<Arc<walk::WalkNode>>,
}

impl fmt::Debug for IdentitySchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentitySchema")
            .field("id", &self.id)
            .field("traits", &self.fields.iter().map(|t| t.name.as_str()).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One generated trait input.
#[derive(Debug, Clone)]
struct TraitField {
    name: String,
    input_type: &'static str,
    autocomplete: Option<&'static str>,
    required: bool,
    pattern: Option<String>,
    options: Option<Vec<Value>>,
    disabled: bool,
    title: Option<String>,
    ext: Ext,
    /// The `idflow` keyword (explicit values only; [`TraitField::policy`] adds the defaults).
    policy: PolicyExt,
    /// The path below `traits`.
    path: Vec<String>,
    /// An array trait (the node stands for the whole list).
    array: bool,
}

impl TraitField {
    fn to_node(&self, group: Group) -> Node {
        let node = Node::input(group, &self.name, self.input_type).with_attrs(|a| {
            a.required = self.required;
            a.disabled = self.disabled;
            a.autocomplete = self.autocomplete.map(String::from);
            a.pattern.clone_from(&self.pattern);
            a.options.clone_from(&self.options);
        });
        match &self.title {
            Some(t) => node.label(msg::label_trait(t, &self.name)),
            None => node,
        }
    }
}

/// Attributes gathered from all subschemas applying at one location (first one wins).
#[derive(Debug, Default)]
struct LeafInfo {
    ty: Option<String>,
    format: Option<String>,
    title: Option<String>,
    pattern: Option<String>,
    enumeration: Option<Vec<Value>>,
    disabled: bool,
    ext: Ext,
    policy: PolicyExt,
}

impl LeafInfo {
    fn from_list(list: &[(String, &Value)]) -> Self {
        let mut info = LeafInfo::default();
        for (_, s) in list {
            if info.ty.is_none() {
                info.ty = schema_type(s);
            }
            let text = |k: &str| s.get(k).and_then(Value::as_str).map(String::from);
            if info.format.is_none() {
                info.format = text("format");
            }
            if info.title.is_none() {
                info.title = text("title");
            }
            if info.pattern.is_none() {
                info.pattern = text("pattern");
            }
            if info.enumeration.is_none() {
                info.enumeration = s.get("enum").and_then(Value::as_array).cloned();
            }
            info.disabled |= s.get("disableFormField") == Some(&Value::Bool(true));
            if let Some(e) = s.get(EXT).and_then(|e| parse_ext(e).ok()) {
                info.ext.merge(&e);
            }
            if let Some(p) = s.get(POLICY_EXT).and_then(|p| parse_policy(p).ok()) {
                info.policy.merge(&p);
            }
        }
        info
    }

    fn into_field(self, name: String, path: Vec<String>, required: bool) -> TraitField {
        let (input_type, autocomplete) = match self.ty.as_deref() {
            Some("number" | "integer") => ("number", None),
            Some("boolean") => ("checkbox", None),
            _ => match self.format.as_deref() {
                Some("email") => ("email", Some("email")),
                Some("tel") => ("tel", Some("tel")),
                Some("date-time") => ("datetime-local", None),
                Some("date") => ("date", None),
                Some("uri") => ("url", Some("url")),
                _ => ("text", None),
            },
        };
        let options =
            self.enumeration.map(|e| e.into_iter().take(MAX_OPTIONS).map(|v| json!({ "value": v })).collect());
        TraitField {
            name,
            input_type,
            autocomplete,
            required,
            pattern: self.pattern,
            options,
            disabled: self.disabled,
            title: self.title,
            ext: self.ext,
            policy: self.policy,
            path,
            array: false,
        }
    }
}

/// How `anyOf` / `oneOf` branches are treated when expanding a location.
#[derive(Clone, Copy)]
enum Mode<'v> {
    /// Every branch applies (node generation).
    Static,
    /// Only branches the value satisfies apply (extraction).
    Instance(&'v Value),
}

/// Collects extension results while walking traits.
struct Sink<'a> {
    email_check: &'a Validator,
    extracted: Extracted,
    code_identifiers: Vec<(String, String)>,
    errors: Vec<(String, UiText)>,
}

impl Sink<'_> {
    fn email_ok(&self, value: &Value) -> bool {
        value.is_string() && self.email_check.is_valid(value)
    }

    fn apply(&mut self, ext: &Ext, format: Option<&str>, value: &Value, path: &[String]) {
        if ext.is_empty() {
            return;
        }
        let Some(raw) = scalar_string(value) else {
            return;
        };
        let node = node_name(path);
        if ext.password_identifier {
            push_identifier(&mut self.extracted.password_identifiers, &raw);
        }
        if ext.webauthn_identifier {
            push_identifier(&mut self.extracted.webauthn_identifiers, &raw);
        }
        if ext.totp_account_name && self.extracted.totp_account_name.is_none() {
            self.extracted.totp_account_name = Some(raw.clone());
        }
        if ext.passkey_display_name && self.extracted.passkey_display_name.is_none() {
            self.extracted.passkey_display_name = Some(raw.clone());
        }
        if ext.code_identifier {
            let via =
                ext.code_via.clone().unwrap_or_else(|| if format == Some("tel") { "sms" } else { "email" }.to_string());
            if via == "email" && format != Some("email") && !self.email_ok(value) {
                self.errors.push((node.clone(), invalid_email(&raw)));
            } else {
                let id = normalize_identifier(&raw);
                if !id.is_empty() && !self.code_identifiers.iter().any(|(v, i)| *v == via && *i == id) {
                    self.code_identifiers.push((via, id));
                }
            }
        }
        if let Some(via) = ext.verification_via.as_deref() {
            // Kratos only checks the email syntax here when the trait declares no format.
            if via == "email" && format.is_none() && !self.email_ok(value) {
                self.errors.push((node.clone(), invalid_email(&raw)));
            } else {
                push_address(&mut self.extracted.verifiable_addresses, via, &raw);
            }
        }
        if let Some(via) = ext.recovery_via.as_deref() {
            if via == "email" && format != Some("email") && !self.email_ok(value) {
                self.errors.push((node, invalid_email(&raw)));
            } else {
                push_address(&mut self.extracted.recovery_addresses, via, &raw);
            }
        }
    }
}

impl IdentitySchema {
    /// Compile (draft-07 by default, formats validated incl. email, plus the extra format
    /// "no-validate"); reject: not an object, properties.traits missing / not type object,
    /// unknown keys inside "ory.sh/kratos" extension, verification via sms without format.
    ///
    /// Trait nodes follow the property order of the document (`serde_json` keeps it:
    /// `preserve_order`).
    pub fn compile(id: &str, raw: Value) -> Result<Self, SchemaError> {
        let Some(root) = raw.as_object() else {
            return Err(SchemaError::Invalid("the schema must be a JSON object".into()));
        };
        match root.get("properties").and_then(|p| p.get("traits")) {
            Some(Value::Object(_)) => {}
            Some(_) => return Err(SchemaError::Invalid("properties.traits must be a schema object".into())),
            None => return Err(SchemaError::Invalid("properties.traits is missing".into())),
        }
        check_extensions(&raw).map_err(SchemaError::Invalid)?;
        check_policies(&raw).map_err(SchemaError::Invalid)?;
        let validator = build_validator(&raw).map_err(SchemaError::Invalid)?;
        let email_check =
            build_validator(&json!({ "type": "string", "format": "email" })).map_err(SchemaError::Invalid)?;
        let branches = compile_branches(&raw);
        let mut schema = IdentitySchema {
            id: id.to_string(),
            raw,
            validator: Arc::new(validator),
            email_check: Arc::new(email_check),
            branches: Arc::new(branches),
            fields: Vec::new(),
            compiled_walk: None,
        };
        if !schema.traits_is_object() {
            return Err(SchemaError::Invalid("properties.traits must be of type object".into()));
        }
        schema.fields = schema.collect_fields();
        schema.check_field_policies().map_err(SchemaError::Invalid)?;
        schema.compiled_walk = walk::compile(&schema).map(Arc::new);
        Ok(schema)
    }

    /// [`IdentitySchema::compile`] from JSON text.
    pub fn compile_str(id: &str, text: &str) -> Result<Self, SchemaError> {
        let raw: Value = serde_json::from_str(text).map_err(|e| SchemaError::Parse(e.to_string()))?;
        Self::compile(id, raw)
    }

    /// The built-in default schema under id `default`.
    pub fn default_schema() -> Result<Self, SchemaError> {
        Self::compile_str(DEFAULT_SCHEMA_ID, DEFAULT_SCHEMA_JSON)
    }

    /// Validate `{"traits": traits}` against the schema. Each error -> (node name, message):
    /// pointer `/traits/email` -> "traits.email", a required error on the traits object for
    /// property `x` -> "traits.x", root -> "" (form level). Never panics.
    pub fn validate(&self, traits: &Value) -> Vec<(String, UiText)> {
        let instance = json!({ "traits": traits.clone() });
        let mut out = Vec::new();
        // Collecting errors costs more than a yes/no answer; most traits are valid.
        if !self.validator.is_valid(&instance) {
            for err in self.validator.iter_errors(&instance) {
                self.map_error(&err, &mut out, 0);
            }
        }
        out.extend(self.walk(traits).errors);
        let mut seen = HashSet::new();
        out.retain(|(node, m)| seen.insert((node.clone(), m.id, m.text.clone())));
        out
    }

    /// Walk the schema extension over the traits value (nested objects and arrays too).
    pub fn extract(&self, traits: &Value) -> Extracted {
        self.walk(traits).extracted
    }

    /// Identifiers of the one-time-code credential as `(via, normalised value)`.
    pub fn code_identifiers(&self, traits: &Value) -> Vec<(String, String)> {
        self.walk(traits).code_identifiers
    }

    /// One input node per trait leaf (dot paths `traits.name.first`), values from `traits`
    /// when given (flattened; flattened keys without a schema node get a node of their own).
    pub fn trait_nodes(&self, group: Group, traits: Option<&Value>) -> Vec<Node> {
        let mut nodes: Vec<Node> = self.fields.iter().map(|f| f.to_node(group)).collect();
        let Some(traits @ Value::Object(_)) = traits else {
            return nodes;
        };
        let mut index: HashMap<String, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id().to_string(), i)).collect();
        let mut flat = Vec::new();
        flatten_limited("traits", traits, 0, &mut flat);
        for (key, value) in flat {
            match index.get(&key).and_then(|i| nodes.get_mut(*i)) {
                Some(node) => {
                    if !value.is_null() {
                        *node = node.clone().value(value);
                    }
                }
                None => {
                    let input_type = match value {
                        Value::Number(_) => "number",
                        Value::Bool(_) => "checkbox",
                        _ => "text",
                    };
                    let mut node = Node::input(group, &key, input_type);
                    if !value.is_null() {
                        node = node.value(value);
                    }
                    index.insert(key, nodes.len());
                    nodes.push(node);
                }
            }
        }
        nodes
    }

    /// Node names of trait leaves in schema order (for sorting).
    pub fn trait_order(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }

    /// If exactly one trait is a password identifier and has a `title`: (title, node name).
    pub fn identifier_label(&self) -> Option<(String, String)> {
        let mut ids = self.fields.iter().filter(|f| f.ext.password_identifier);
        let only = ids.next()?;
        if ids.next().is_some() {
            return None;
        }
        only.title.clone().map(|t| (t, only.name.clone()))
    }

    /// Whether any trait is a password identifier (else login has no identifier, 4000009).
    pub fn has_password_identifier(&self) -> bool {
        self.fields.iter().any(|f| f.ext.password_identifier)
    }

    /// Node names of traits that are protected (a password/webauthn/passkey/code identifier,
    /// a verification or recovery address): changing them needs a privileged session.
    /// Array traits are reported by the array's name (`traits.emails`).
    pub fn protected_trait_paths(&self) -> Vec<String> {
        self.fields.iter().filter(|f| f.ext.is_protected()).map(|f| f.name.clone()).collect()
    }

    // ----------------------------------------------------------------------------------
    // schema walking

    fn sink(&self) -> Sink<'_> {
        Sink {
            email_check: &self.email_check,
            extracted: Extracted::default(),
            code_identifiers: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn walk(&self, traits: &Value) -> Sink<'_> {
        let Some(tree) = &self.compiled_walk else {
            return self.walk_dynamic(traits);
        };
        let mut sink = self.sink();
        tree.walk(traits, &mut Vec::new(), &mut sink);
        sink
    }

    /// The walk expanding the schema at every location (schemas whose walk is not compiled;
    /// tests compare the two).
    fn walk_dynamic(&self, traits: &Value) -> Sink<'_> {
        let mut sink = self.sink();
        if let Some(ts) = self.raw.pointer("/properties/traits") {
            let mut path = Vec::new();
            self.walk_instance(vec![("/properties/traits".to_string(), ts)], traits, &mut path, 0, &mut sink);
        }
        sink
    }

    fn walk_instance<'s>(
        &'s self,
        roots: Vec<(String, &'s Value)>,
        value: &Value,
        path: &mut Vec<String>,
        depth: usize,
        sink: &mut Sink<'_>,
    ) {
        if depth > MAX_DEPTH || roots.is_empty() {
            return;
        }
        let mut list = Vec::new();
        self.expand(&roots, Mode::Instance(value), &mut list);
        let info = LeafInfo::from_list(&list);
        sink.apply(&info.ext, info.format.as_deref(), value, path);
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    let mut subs = Vec::new();
                    for (p, s) in &list {
                        if let Some(sub) = s.get("properties").and_then(|ps| ps.get(k)) {
                            subs.push((format!("{p}/properties/{}", escape_pointer(k)), sub));
                        }
                    }
                    if subs.is_empty() {
                        for (p, s) in &list {
                            if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                                subs.push((format!("{p}/additionalProperties"), ap));
                            }
                        }
                    }
                    if !subs.is_empty() {
                        path.push(k.clone());
                        self.walk_instance(subs, v, path, depth + 1, sink);
                        path.pop();
                    }
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let subs = item_subschemas(&list, i);
                    if !subs.is_empty() {
                        path.push(i.to_string());
                        self.walk_instance(subs, v, path, depth + 1, sink);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    fn collect_fields(&self) -> Vec<TraitField> {
        let mut out = Vec::new();
        if let Some(ts) = self.raw.pointer("/properties/traits") {
            let mut path = Vec::new();
            let mut seen = Vec::new();
            self.fields_at(vec![("/properties/traits".to_string(), ts)], &mut path, &mut seen, false, &mut out);
        }
        out
    }

    /// `ancestors`: schema pointers expanded on the way here; meeting one again means a
    /// recursive schema, whose recursion is not turned into nodes.
    fn fields_at<'s>(
        &'s self,
        roots: Vec<(String, &'s Value)>,
        path: &mut Vec<String>,
        ancestors: &mut Vec<String>,
        required: bool,
        out: &mut Vec<TraitField>,
    ) {
        if path.len() > MAX_DEPTH {
            return;
        }
        let mut list = Vec::new();
        self.expand(&roots, Mode::Static, &mut list);
        if list.iter().any(|(p, _)| ancestors.contains(p)) {
            return;
        }
        let info = LeafInfo::from_list(&list);
        let props = self.properties_of(&list);
        let ty = info.ty.as_deref();
        if ty == Some("object") || (ty.is_none() && !props.is_empty()) {
            let req = required_of(&list);
            let mark = ancestors.len();
            ancestors.extend(list.iter().map(|(p, _)| p.clone()));
            for (k, subs) in props {
                let is_required = req.contains(&k);
                path.push(k);
                self.fields_at(subs, path, ancestors, is_required, out);
                path.pop();
            }
            ancestors.truncate(mark);
            return;
        }
        if path.is_empty() {
            return;
        }
        let name = node_name(path);
        if out.iter().any(|f| f.name == name) {
            return;
        }
        if ty == Some("array") {
            let items: Vec<(String, &Value)> = list
                .iter()
                .filter_map(|(p, s)| s.get("items").filter(|i| i.is_object()).map(|i| (format!("{p}/items"), i)))
                .collect();
            let mut item_list = Vec::new();
            self.expand(&items, Mode::Static, &mut item_list);
            let item = LeafInfo::from_list(&item_list);
            if matches!(item.ty.as_deref(), Some("object" | "array")) {
                return;
            }
            let mut ext = info.ext.clone();
            ext.merge(&item.ext);
            let mut policy = info.policy.clone();
            policy.merge(&item.policy);
            out.push(TraitField {
                name,
                policy,
                path: path.clone(),
                array: true,
                input_type: "text",
                autocomplete: None,
                required,
                pattern: None,
                options: None,
                disabled: info.disabled,
                title: info.title,
                ext,
            });
            return;
        }
        out.push(info.into_field(name, path.clone(), required));
    }

    fn traits_is_object(&self) -> bool {
        let Some(ts) = self.raw.pointer("/properties/traits") else {
            return false;
        };
        let mut list = Vec::new();
        self.expand(&[("/properties/traits".to_string(), ts)], Mode::Static, &mut list);
        list.iter().any(|(_, s)| match s.get("type") {
            Some(Value::String(t)) => t == "object",
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
            _ => false,
        })
    }

    /// All subschemas applying at the location of `roots` (following `$ref`, `allOf`,
    /// and `anyOf` / `oneOf` per `mode`), each with its JSON pointer.
    fn expand<'s>(&'s self, roots: &[(String, &'s Value)], mode: Mode<'_>, out: &mut Vec<(String, &'s Value)>) {
        for (p, s) in roots {
            self.expand_one(p.clone(), s, mode, 0, out);
        }
    }

    fn expand_one<'s>(
        &'s self,
        ptr: String,
        s: &'s Value,
        mode: Mode<'_>,
        depth: usize,
        out: &mut Vec<(String, &'s Value)>,
    ) {
        if depth > MAX_DEPTH || out.len() >= MAX_EXPAND {
            return;
        }
        let Some(o) = s.as_object() else {
            return;
        };
        if out.iter().any(|(p, _)| *p == ptr) {
            return;
        }
        out.push((ptr.clone(), s));
        if let Some(r) = o.get("$ref").and_then(Value::as_str)
            && let Some((rp, rs)) = self.resolve_ref(r)
        {
            self.expand_one(rp, rs, mode, depth + 1, out);
        }
        if let Some(Value::Array(items)) = o.get("allOf") {
            for (i, it) in items.iter().enumerate() {
                self.expand_one(format!("{ptr}/allOf/{i}"), it, mode, depth + 1, out);
            }
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(Value::Array(items)) = o.get(kw) {
                for (i, it) in items.iter().enumerate() {
                    let bp = format!("{ptr}/{kw}/{i}");
                    let applies = match mode {
                        Mode::Static => true,
                        Mode::Instance(v) => self.branches.get(&bp).is_none_or(|val| val.is_valid(v)),
                    };
                    if applies {
                        self.expand_one(bp, it, mode, depth + 1, out);
                    }
                }
            }
        }
    }

    /// Resolve a `$ref` into this document: `#`, `#/pointer`, or `<$id>#/pointer`.
    fn resolve_ref(&self, r: &str) -> Option<(String, &Value)> {
        let frag = match r.split_once('#') {
            Some(("", frag)) => frag,
            Some((base, frag)) => {
                let id = self.raw.get("$id").and_then(Value::as_str)?;
                if id.split('#').next() != Some(base) {
                    return None;
                }
                frag
            }
            None => {
                let id = self.raw.get("$id").and_then(Value::as_str)?;
                if id.split('#').next() != Some(r) {
                    return None;
                }
                ""
            }
        };
        let ptr = percent_decode(frag);
        if !ptr.is_empty() && !ptr.starts_with('/') {
            return None;
        }
        let target = self.raw.pointer(&ptr)?;
        Some((ptr, target))
    }

    /// Properties declared by the subschemas of a location: key -> subschemas, in schema order.
    fn properties_of<'s>(&'s self, list: &[(String, &'s Value)]) -> Vec<(String, Vec<(String, &'s Value)>)> {
        let mut res: Vec<(String, Vec<(String, &'s Value)>)> = Vec::new();
        for (p, s) in list {
            let Some(Value::Object(props)) = s.get("properties") else {
                continue;
            };
            let pp = format!("{p}/properties");
            for (k, sub) in props {
                let sp = format!("{pp}/{}", escape_pointer(k));
                match res.iter_mut().find(|(kk, _)| kk == k) {
                    Some((_, subs)) => subs.push((sp, sub)),
                    None => res.push((k.clone(), vec![(sp, sub)])),
                }
            }
        }
        res
    }
}

// --------------------------------------------------------------------------------------
// compilation helpers

fn build_validator(schema: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_format("no-validate", |_: &str| true)
        .with_format("noformat", |_: &str| true)
        .with_format("tel", is_valid_phone)
        .with_format("email", is_valid_email)
        .build(schema)
        .map_err(|e| e.to_string())
}

type SchemaVisitor<'f> = dyn FnMut(&str, &Map<String, Value>) -> Result<(), String> + 'f;

/// The (first non-null) type a subschema declares, or the type of its `const`.
fn schema_type(s: &Value) -> Option<String> {
    match s.get("type") {
        Some(Value::String(t)) => Some(t.clone()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").map(String::from),
        _ => s.get("const").map(|c| {
            match c {
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::Object(_) => "object",
                Value::Array(_) => "array",
                _ => "string",
            }
            .to_string()
        }),
    }
}

/// The subschemas of array element `i` at a location (`items`, a tuple's `items[i]`, else its
/// `additionalItems`), each with its JSON pointer.
fn item_subschemas<'s>(list: &[(String, &'s Value)], i: usize) -> Vec<(String, &'s Value)> {
    let mut subs = Vec::new();
    for (p, s) in list {
        match s.get("items") {
            Some(it @ Value::Object(_)) => subs.push((format!("{p}/items"), it)),
            Some(Value::Array(tuple)) => {
                if let Some(it) = tuple.get(i).filter(|t| t.is_object()) {
                    subs.push((format!("{p}/items/{i}"), it));
                } else if let Some(ai) = s.get("additionalItems").filter(|x| x.is_object()) {
                    subs.push((format!("{p}/additionalItems"), ai));
                }
            }
            _ => {}
        }
    }
    subs
}

fn required_of(list: &[(String, &Value)]) -> HashSet<String> {
    list.iter()
        .filter_map(|(_, s)| s.get("required").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Attributes;

    fn default_schema() -> IdentitySchema {
        IdentitySchema::default_schema().unwrap()
    }

    fn ids(errs: &[(String, UiText)]) -> Vec<(String, u32)> {
        errs.iter().map(|(n, m)| (n.clone(), m.id)).collect()
    }

    #[test]
    fn default_schema_compiles_from_value_and_text() {
        let raw: Value = serde_json::from_str(DEFAULT_SCHEMA_JSON).unwrap();
        let s = IdentitySchema::compile("default", raw).unwrap();
        assert_eq!(s.trait_order(), vec!["traits.email", "traits.name.first", "traits.name.last"]);
        let s = default_schema();
        assert_eq!(s.id, "default");
        assert_eq!(s.raw["$id"], "https://idflow.local/schemas/default.json");
        assert_eq!(s.trait_order(), vec!["traits.email", "traits.name.first", "traits.name.last"]);
        assert_eq!(s.identifier_label(), Some(("E-Mail".to_string(), "traits.email".to_string())));
        assert_eq!(s.protected_trait_paths(), vec!["traits.email"]);
        assert!(s.has_password_identifier());
    }

    #[test]
    fn validate_ok() {
        let s = default_schema();
        assert!(s.validate(&json!({"email": "ada@example.com"})).is_empty());
        assert!(s.validate(&json!({"email": "Ada@Example.com", "name": {"first": "Ada", "last": "L"}})).is_empty());
    }

    #[test]
    fn validate_missing_email() {
        let s = default_schema();
        let errs = s.validate(&json!({}));
        assert_eq!(ids(&errs), vec![("traits.email".to_string(), 4000002)]);
        let m = &errs[0].1;
        assert_eq!(m.text, "Property email is missing.");
        assert_eq!(m.context, Some(json!({"property": "email"})));
        assert!(m.is_error());
    }

    #[test]
    fn validate_bad_email() {
        let s = default_schema();
        let errs = s.validate(&json!({"email": "not-an-email"}));
        assert_eq!(ids(&errs), vec![("traits.email".to_string(), 4000040)]);
        assert_eq!(errs[0].1.text, "Enter a valid email address");
        assert_eq!(errs[0].1.context, Some(json!({"value": "not-an-email"})));
    }

    #[test]
    fn email_format_accepts_non_ascii_local_parts() {
        let s = default_schema();
        for ok in ["jürgen@example.com", "\u{FF55}\u{FF53}er@example.com", "a.b+c@example.co"] {
            assert!(s.validate(&json!({ "email": ok })).is_empty(), "{ok}");
        }
        let long_local = format!("{}@example.com", "\u{FF41}".repeat(22));
        for bad in ["user\u{FF20}example.com", "user@\u{FF45}xample.com", "@example.com", "ab@", long_local.as_str()] {
            assert_eq!(
                ids(&s.validate(&json!({ "email": bad }))),
                vec![("traits.email".to_string(), 4000040)],
                "{bad}"
            );
        }
    }

    #[test]
    fn validate_too_long_and_too_short() {
        let s = default_schema();
        let long = format!("{}@example.com", "a".repeat(320));
        let errs = s.validate(&json!({ "email": long }));
        let m = errs.iter().find(|(_, m)| m.id == 4000017).unwrap();
        assert_eq!(m.0, "traits.email");
        assert_eq!(m.1.text, format!("length must be <= 320, but got {}", long.chars().count()));
        assert_eq!(m.1.context, Some(json!({"max_length": 320, "actual_length": long.chars().count()})));

        let errs = s.validate(&json!({"email": "a@", "name": {"first": "x".repeat(257)}}));
        let short = errs.iter().find(|(_, m)| m.id == 4000003).unwrap();
        assert_eq!(short.0, "traits.email");
        assert_eq!(short.1.text, "length must be >= 3, but got 2");
        assert_eq!(short.1.context, Some(json!({"min_length": 3, "actual_length": 2})));
        assert!(errs.iter().any(|(n, m)| n == "traits.name.first" && m.id == 4000017));
    }

    #[test]
    fn validate_type() {
        let s = default_schema();
        let errs = s.validate(&json!({"email": 5}));
        let (node, m) = errs.iter().find(|(_, m)| m.id == 4000026).unwrap();
        assert_eq!(node, "traits.email");
        assert_eq!(m.text, "expected string, but got number");
        assert_eq!(m.context, Some(json!({"allowed_types": ["string"], "actual_type": "number"})));

        let errs = s.validate(&json!({"email": "a@b.co", "name": "Ada"}));
        assert_eq!(ids(&errs), vec![("traits.name".to_string(), 4000026)]);
        assert_eq!(errs[0].1.text, "expected object, but got string");
    }

    #[test]
    fn validate_additional_properties() {
        let s = default_schema();
        let errs = s.validate(&json!({"email": "ada@example.com", "foo": 1}));
        assert_eq!(ids(&errs), vec![("traits".to_string(), 4000001)]);
        assert_eq!(errs[0].1.text, "additionalProperties \"foo\" not allowed");
        assert_eq!(errs[0].1.context, Some(json!({"reason": "additionalProperties \"foo\" not allowed"})));
    }

    #[test]
    fn validate_other_keywords() {
        let raw = json!({
            "type": "object",
            "properties": {"traits": {
                "type": "object",
                "properties": {
                    "age": {"type": "integer", "minimum": 18, "maximum": 130, "multipleOf": 2},
                    "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2, "uniqueItems": true},
                    "code": {"type": "string", "pattern": "^[a-z]+$"},
                    "kind": {"const": "user"},
                    "color": {"enum": ["red", "green"]},
                    "phone": {"type": "string", "format": "tel"},
                    "nick": {"type": ["string", "null"]}
                }
            }}
        });
        let s = IdentitySchema::compile("x", raw).unwrap();
        let find = |errs: &[(String, UiText)], id: u32| errs.iter().find(|(_, m)| m.id == id).cloned().unwrap();

        let errs = s.validate(&json!({"age": 9, "score": 0, "tags": ["a", "b", "a"], "code": "A1",
            "kind": "admin", "color": "blue", "phone": "12", "nick": 3}));
        let e = find(&errs, 4000018);
        assert_eq!((e.0.as_str(), e.1.text.as_str()), ("traits.age", "must be >= 18 but found 9"));
        assert_eq!(e.1.context, Some(json!({"minimum": 18, "actual": 9})));
        let e = find(&errs, 4000022);
        assert_eq!(e.1.text, "9 not multipleOf 2");
        assert_eq!(e.1.context, Some(json!({"base": 2, "actual": 9})));
        let e = find(&errs, 4000019);
        assert_eq!(e.1.text, "must be > 0 but found 0");
        let e = find(&errs, 4000023);
        assert_eq!(e.1.text, "maximum 2 items allowed, but found 3 items");
        let e = find(&errs, 4000025);
        assert_eq!(e.1.text, "items at index 0 and 2 are equal");
        assert_eq!(e.1.context, Some(json!({"index_a": 0, "index_b": 2})));
        let e = find(&errs, 4000004);
        assert_eq!((e.0.as_str(), e.1.text.as_str()), ("traits.code", "does not match pattern \"^[a-z]+$\""));
        let e = find(&errs, 4000029);
        assert_eq!(e.1.text, "must be equal to constant \"user\"");
        let e = errs.iter().find(|(n, _)| n == "traits.color").unwrap();
        assert_eq!(e.1.id, 4000001);
        let e = find(&errs, 4000041);
        assert_eq!(e.0, "traits.phone");
        let e = errs.iter().find(|(n, _)| n == "traits.nick").unwrap();
        assert_eq!(e.1.text, "expected string or null, but got number");

        let errs = s.validate(&json!({"age": 140, "score": 1, "tags": []}));
        assert_eq!(find(&errs, 4000020).1.text, "must be <= 130 but found 140");
        assert_eq!(find(&errs, 4000021).1.text, "must be < 1 but found 1");
        assert_eq!(find(&errs, 4000024).1.text, "minimum 1 items allowed, but found 0 items");

        assert!(s.validate(&json!({"phone": "+49 30 1234567", "nick": null, "age": 20})).is_empty());
    }

    #[test]
    fn validate_never_panics_on_junk() {
        let s = default_schema();
        for junk in [json!([]), json!(5), json!(null), json!("x"), json!(true), json!([1, {"a": []}])] {
            let errs = s.validate(&junk);
            assert_eq!(errs.len(), 1, "{junk}: {errs:?}");
            assert_eq!(errs[0].0, "traits");
            assert_eq!(errs[0].1.id, 4000026);
            assert_eq!(s.extract(&junk), Extracted::default());
            assert_eq!(s.trait_nodes(Group::Profile, Some(&junk)).len(), 3);
        }
        let mut deep = json!("leaf");
        for i in 0..1000 {
            deep = if i % 2 == 0 { json!({ "a": deep }) } else { json!([deep, 1]) };
        }
        let traits = json!({"email": "ada@example.com", "name": deep.clone(), "x": deep.clone()});
        let errs = s.validate(&traits);
        assert!(errs.iter().any(|(n, m)| n == "traits" && m.id == 4000001));
        let _ = s.extract(&traits);
        let _ = s.trait_nodes(Group::Profile, Some(&traits));
        let nested = json!({"email": deep.clone(), "name": {"first": deep}});
        assert!(!s.validate(&nested).is_empty());
        let _ = s.extract(&nested);
    }

    #[test]
    fn extract_default() {
        let s = default_schema();
        let ex = s.extract(&json!({"email": "Ada@Example.com", "name": {"first": "Ada", "last": "L"}}));
        assert_eq!(ex.password_identifiers, vec!["ada@example.com"]);
        assert_eq!(ex.webauthn_identifiers, vec!["ada@example.com"]);
        assert_eq!(ex.totp_account_name.as_deref(), Some("Ada@Example.com"));
        assert_eq!(ex.passkey_display_name.as_deref(), Some("Ada@Example.com"));
        assert_eq!(ex.verifiable_addresses, vec![("email".to_string(), "ada@example.com".to_string())]);
        assert_eq!(ex.recovery_addresses, vec![("email".to_string(), "ada@example.com".to_string())]);
        let ex = s.extract(&json!({"email": "Ada@Example.com"}));
        assert_eq!(ex.password_identifiers, vec!["ada@example.com"]);
    }

    #[test]
    fn normalisation() {
        assert_eq!(normalize_identifier("  Ada@Example.com "), "ada@example.com");
        assert_eq!(normalize_identifier("ＡＤＡ@example.com"), "ada@example.com");
        assert_eq!(normalize_identifier("ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "ada@example.com");
        assert_eq!(normalize_identifier("a\u{200B}da@exa\u{200D}mple.com\u{FEFF}"), "ada@example.com");
        assert_eq!(normalize_identifier("\u{202E}ada\u{202C}@ex\u{00AD}ample.com\u{200E}"), "ada@example.com");
        assert_eq!(normalize_identifier("\u{2066}ADA\u{2069}@example.com\u{3000}"), "ada@example.com");
        assert_eq!(normalize_identifier("+49 (30) 123-4567"), "+49301234567");
        assert_eq!(normalize_identifier("+４９３０１２３４５６７"), "+49301234567");
        assert_eq!(normalize_identifier("Ada"), "ada");
        assert_eq!(normalize_identifier("ﬁle"), "file");
        // look-alikes collapse to one identifier
        let s = default_schema();
        let schema = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
            "emails": {"type": "array", "items": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}}
        }}}});
        let multi = IdentitySchema::compile("m", schema).unwrap();
        let ex = multi.extract(
            &json!({"emails": ["ＡＤＡ@example.com", "ada@example.com", "a\u{200B}da@Example.com", "bob@x.io"]}),
        );
        assert_eq!(ex.password_identifiers, vec!["ada@example.com", "bob@x.io"]);
        assert_eq!(s.extract(&json!({"email": "ＡＤＡ@example.com"})).password_identifiers, vec!["ada@example.com"]);
    }

    #[test]
    fn trait_nodes_default() {
        let s = default_schema();
        let nodes = s.trait_nodes(Group::Profile, None);
        assert_eq!(nodes.len(), 3);
        let email = &nodes[0];
        assert_eq!(email.id(), "traits.email");
        assert_eq!(email.group, Group::Profile);
        let Attributes::Input(a) = &email.attributes else { panic!("not an input") };
        assert_eq!(a.input_type, "email");
        assert_eq!(a.autocomplete.as_deref(), Some("email"));
        assert!(a.required);
        assert!(!a.disabled);
        assert_eq!(a.value, None);
        let label = email.meta.label.clone().unwrap();
        assert_eq!(label.id, 1070002);
        assert_eq!(label.text, "E-Mail");
        assert_eq!(label.context, Some(json!({"title": "E-Mail", "name": "traits.email"})));

        let first = &nodes[1];
        assert_eq!(first.id(), "traits.name.first");
        let Attributes::Input(a) = &first.attributes else { panic!("not an input") };
        assert_eq!(a.input_type, "text");
        assert!(!a.required);
        assert_eq!(a.autocomplete, None);
        assert_eq!(first.meta.label.as_ref().map(|l| l.text.as_str()), Some("First Name"));

        let nodes = s.trait_nodes(
            Group::Profile,
            Some(
                &json!({"email": "ada@example.com", "name": {"first": "Ada"}, "extra": 5, "flag": true, "list": ["x"]}),
            ),
        );
        let names: Vec<&str> = nodes.iter().map(Node::id).collect();
        assert_eq!(
            names,
            vec![
                "traits.email",
                "traits.name.first",
                "traits.name.last",
                "traits.extra",
                "traits.flag",
                "traits.list.0"
            ]
        );
        assert_eq!(nodes[0].input_value(), Some(&json!("ada@example.com")));
        assert_eq!(nodes[1].input_value(), Some(&json!("Ada")));
        assert_eq!(nodes[2].input_value(), None);
        assert_eq!(nodes[3].input_type(), Some("number"));
        assert_eq!(nodes[4].input_type(), Some("checkbox"));
        assert_eq!(nodes[5].input_type(), Some("text"));
        let json = serde_json::to_value(&nodes[0]).unwrap();
        assert_eq!(json["attributes"]["name"], "traits.email");
        assert_eq!(json["attributes"]["required"], true);
    }

    #[test]
    fn trait_nodes_mapping_refs_and_order() {
        let text = r##"{
          "$id": "https://example.test/s.json",
          "$schema": "http://json-schema.org/draft-07/schema#",
          "definitions": {
            "tz": {"type": "string", "enum": ["UTC", "CET"], "title": "Zone"},
            "person": {"type": "object", "properties": {
                "zname": {"type": "string", "pattern": "^[A-Z]", "disableFormField": true},
                "alias": {"type": "string"}
            }, "required": ["zname"]}
          },
          "type": "object",
          "properties": {"traits": {"type": "object", "properties": {
            "username": {"type": "string", "title": "Username",
              "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}},
            "phone": {"type": "string", "format": "tel",
              "ory.sh/kratos": {"verification": {"via": "sms"}, "credentials": {"code": {"identifier": true, "via": "sms"}}}},
            "born": {"type": "string", "format": "date"},
            "seen": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
            "age": {"type": "integer"},
            "news": {"type": "boolean"},
            "tz": {"$ref": "#/definitions/tz"},
            "person": {"$ref": "https://example.test/s.json#/definitions/person"},
            "free": {"type": "object"},
            "emails": {"type": "array", "items": {"type": "string", "format": "email",
              "ory.sh/kratos": {"recovery": {"via": "email"}}}}
          }}}
        }"##;
        let s = IdentitySchema::compile_str("x", text).unwrap();
        assert_eq!(
            s.trait_order(),
            vec![
                "traits.username",
                "traits.phone",
                "traits.born",
                "traits.seen",
                "traits.site",
                "traits.age",
                "traits.news",
                "traits.tz",
                "traits.person.zname",
                "traits.person.alias",
                "traits.emails"
            ]
        );
        let nodes = s.trait_nodes(Group::Default, None);
        let get = |name: &str| {
            let n = nodes.iter().find(|n| n.id() == name).unwrap();
            let Attributes::Input(a) = &n.attributes else { panic!("not an input") };
            (n.clone(), a.clone())
        };
        assert_eq!(get("traits.phone").1.input_type, "tel");
        assert_eq!(get("traits.phone").1.autocomplete.as_deref(), Some("tel"));
        assert_eq!(get("traits.born").1.input_type, "date");
        assert_eq!(get("traits.seen").1.input_type, "datetime-local");
        assert_eq!(get("traits.site").1.input_type, "url");
        assert_eq!(get("traits.site").1.autocomplete.as_deref(), Some("url"));
        assert_eq!(get("traits.age").1.input_type, "number");
        assert_eq!(get("traits.news").1.input_type, "checkbox");
        let (tz_node, tz) = get("traits.tz");
        assert_eq!(tz.options, Some(vec![json!({"value": "UTC"}), json!({"value": "CET"})]));
        assert_eq!(tz_node.meta.label.map(|l| l.text), Some("Zone".to_string()));
        let (zn, z) = get("traits.person.zname");
        assert!(z.required && z.disabled);
        assert_eq!(z.pattern.as_deref(), Some("^[A-Z]"));
        assert!(zn.meta.label.is_none());
        assert!(!get("traits.person.alias").1.required);
        assert_eq!(get("traits.emails").1.input_type, "text");
        assert!(nodes.iter().all(|n| n.group == Group::Default));
        assert_eq!(s.identifier_label(), Some(("Username".to_string(), "traits.username".to_string())));
        assert_eq!(s.protected_trait_paths(), vec!["traits.username", "traits.phone", "traits.emails"]);

        let traits = json!({"username": "Ada", "phone": "+49 30 1234567", "emails": ["A@x.io", "b@y.io", "a@x.io"],
            "person": {"zname": "Z"}});
        assert!(s.validate(&traits).is_empty(), "{:?}", s.validate(&traits));
        let ex = s.extract(&traits);
        assert_eq!(ex.password_identifiers, vec!["ada"]);
        assert_eq!(ex.verifiable_addresses, vec![("sms".to_string(), "+49301234567".to_string())]);
        assert_eq!(
            ex.recovery_addresses,
            vec![("email".to_string(), "a@x.io".to_string()), ("email".to_string(), "b@y.io".to_string())]
        );
        assert_eq!(s.code_identifiers(&traits), vec![("sms".to_string(), "+49301234567".to_string())]);
        let errs = s.validate(&json!({"emails": ["nope"], "person": {}}));
        assert!(errs.iter().any(|(n, m)| n == "traits.emails.0" && m.id == 4000040), "{errs:?}");
        assert!(errs.iter().any(|(n, m)| n == "traits.person.zname" && m.id == 4000002), "{errs:?}");
    }

    #[test]
    fn extension_checks_email_without_format() {
        let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
            "mail": {"type": "string", "ory.sh/kratos": {"verification": {"via": "email"}, "recovery": {"via": "email"}}}
        }}}});
        let s = IdentitySchema::compile("x", raw).unwrap();
        let errs = s.validate(&json!({"mail": "nope"}));
        assert_eq!(ids(&errs), vec![("traits.mail".to_string(), 4000040)]);
        assert!(s.extract(&json!({"mail": "nope"})).verifiable_addresses.is_empty());
        assert!(s.validate(&json!({"mail": "A@b.io"})).is_empty());
        assert_eq!(s.extract(&json!({"mail": "A@B.io"})).verifiable_addresses, vec![("email".into(), "a@b.io".into())]);
    }

    #[test]
    fn one_of_branches_extract_only_matching() {
        let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
            "login": {"type": "string", "oneOf": [
                {"format": "email", "ory.sh/kratos": {"verification": {"via": "email"}}},
                {"format": "tel", "ory.sh/kratos": {"verification": {"via": "sms"}}}
            ]}
        }}}});
        let s = IdentitySchema::compile("x", raw).unwrap();
        assert_eq!(
            s.extract(&json!({"login": "a@b.io"})).verifiable_addresses,
            vec![("email".into(), "a@b.io".into())]
        );
        assert_eq!(
            s.extract(&json!({"login": "+4930123456"})).verifiable_addresses,
            vec![("sms".into(), "+4930123456".into())]
        );
        let errs = s.validate(&json!({"login": "zzz"}));
        assert!(errs.iter().any(|(n, m)| n == "traits.login" && m.id == 4000040), "{errs:?}");
        assert!(errs.iter().any(|(n, m)| n == "traits.login" && m.id == 4000041), "{errs:?}");
    }

    #[test]
    fn compile_rejections() {
        let bad = |raw: Value| match IdentitySchema::compile("x", raw) {
            Err(SchemaError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        };
        bad(json!([]));
        bad(json!("schema"));
        assert!(bad(json!({"type": "object"})).contains("traits"));
        bad(json!({"properties": {"traits": true}}));
        assert!(bad(json!({"properties": {"traits": {"type": "string"}}})).contains("object"));
        bad(json!({"properties": {"traits": {"properties": {"a": {"type": "string"}}}}}));
        let with_ext = |ext: Value, extra: Value| {
            let mut field = json!({"type": "string", "ory.sh/kratos": ext});
            if let (Some(f), Some(e)) = (field.as_object_mut(), extra.as_object()) {
                f.extend(e.clone());
            }
            json!({"properties": {"traits": {"type": "object", "properties": {"a": field}}}})
        };
        assert!(bad(with_ext(json!({"unknown": true}), json!({}))).contains("unknown"));
        bad(with_ext(json!({"credentials": {"password": {"identifier": true, "x": 1}}}), json!({})));
        bad(with_ext(json!({"credentials": {"oidc": {}}}), json!({})));
        bad(with_ext(json!({"credentials": {"password": {"identifier": "yes"}}}), json!({})));
        bad(with_ext(json!({"verification": {"via": "pigeon"}}), json!({})));
        bad(with_ext(json!("nope"), json!({})));
        assert!(bad(with_ext(json!({"verification": {"via": "sms"}}), json!({}))).contains("no-validate"));
        bad(with_ext(json!({"verification": {"via": "email"}}), json!({"format": "uuid"})));
        // nested extension (inside definitions) is checked too
        bad(json!({"definitions": {"x": {"ory.sh/kratos": {"foo": 1}}},
            "properties": {"traits": {"type": "object"}}}));
        // invalid JSON schema keyword value
        bad(json!({"properties": {"traits": {"type": "object", "properties": {"a": {"type": 7}}}}}));
        // accepted
        for ok in [
            with_ext(json!({"verification": {"via": "sms"}}), json!({"format": "tel"})),
            with_ext(json!({"verification": {"via": "sms"}}), json!({"format": "no-validate"})),
            with_ext(json!({"verification": {"via": "email"}}), json!({})),
            with_ext(json!({"organizations": {"matcher": "email_domain"}}), json!({})),
            with_ext(json!({"credentials": {"code": {"identifier": true, "via": "email"}}}), json!({})),
        ] {
            IdentitySchema::compile("x", ok).unwrap();
        }
        assert!(matches!(IdentitySchema::compile_str("x", "{"), Err(SchemaError::Parse(_))));
    }

    #[test]
    fn no_validate_format_and_no_identifier_label() {
        let raw = json!({"type": "object", "properties": {"traits": {"type": "object", "properties": {
            "a": {"type": "string", "format": "no-validate", "ory.sh/kratos": {"verification": {"via": "sms"}, "credentials": {"password": {"identifier": true}}}},
            "b": {"type": "string", "title": "B", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
        }}}});
        let s = IdentitySchema::compile("x", raw).unwrap();
        assert!(s.validate(&json!({"a": "anything at all"})).is_empty());
        assert_eq!(s.identifier_label(), None);
        assert_eq!(s.extract(&json!({"a": "X", "b": "x"})).password_identifiers, vec!["x"]);
    }

    #[test]
    fn recursive_refs_do_not_loop() {
        let mut raw = json!({
            "definitions": {
                "loop": {"$ref": "#/definitions/loop"},
                "node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/node"},
                    "id": {"type": "string", "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}}}
            },
            "type": "object",
            "properties": {"traits": {"type": "object", "properties": {
                "tree": {"$ref": "#/definitions/node"},
                "l": {"$ref": "#/definitions/loop"}
            }}}
        });
        // a bare self-referencing `$ref` may or may not be accepted by the validator; either
        // way nothing may hang or overflow
        let mut looping = raw.clone();
        if let Some(p) = looping.pointer_mut("/properties/traits/properties") {
            p["l"] = json!({"$ref": "#/definitions/loop"});
        }
        if let Ok(s) = IdentitySchema::compile("x", looping) {
            let _ = s.trait_nodes(Group::Profile, None);
            let _ = s.validate(&json!({"l": 1}));
            let _ = s.extract(&json!({"l": 1}));
        }
        if let Some(p) = raw.pointer_mut("/properties/traits/properties").and_then(Value::as_object_mut) {
            p.remove("l");
        }
        {
            let s = IdentitySchema::compile("x", raw).unwrap();
            assert_eq!(s.trait_order(), vec!["traits.tree.id"]);
            let _ = s.trait_nodes(Group::Profile, None);
            let mut deep = json!({"id": "Leaf"});
            for _ in 0..200 {
                deep = json!({"child": deep, "id": "X"});
            }
            let ex = s.extract(&json!({"tree": deep}));
            assert!(ex.password_identifiers.contains(&"x".to_string()));
            let errs = s.validate(&json!({"tree": {"child": {"child": 5}}}));
            assert_eq!(ids(&errs), vec![("traits.tree.child.child".to_string(), 4000026)]);
        }
    }

    /// The compiled walk gives what the dynamic walk gives, for schemas with `$ref`, `allOf`,
    /// nested objects, arrays, tuples and `additionalProperties`; schemas with `anyOf` /
    /// `oneOf` keep the dynamic walk.
    #[test]
    fn compiled_walk_matches_dynamic_walk() {
        let ext = |e: Value| json!({ "type": "string", "ory.sh/kratos": e });
        let id = json!({ "credentials": { "password": { "identifier": true }, "webauthn": { "identifier": true },
            "totp": { "account_name": true }, "code": { "identifier": true, "via": "email" } },
            "verification": { "via": "email" }, "recovery": { "via": "email" } });
        let schemas = [
            serde_json::from_str::<Value>(DEFAULT_SCHEMA_JSON).unwrap(),
            json!({ "type": "object", "definitions": { "mail": ext(id.clone()) }, "properties": { "traits": {
                "type": "object",
                "allOf": [{ "properties": { "alt": { "$ref": "#/definitions/mail" } } }],
                "properties": {
                    "email": { "$ref": "#/definitions/mail" },
                    "emails": { "type": "array", "items": { "$ref": "#/definitions/mail" } },
                    "pair": { "type": "array", "items": [ext(json!({ "verification": { "via": "email" } })), { "type": "string" }],
                        "additionalItems": ext(json!({ "recovery": { "via": "email" } })) },
                    "phone": ext(json!({ "credentials": { "code": { "identifier": true, "via": "sms" } } })),
                    "name": { "type": "object", "properties": { "first": ext(json!({ "credentials": { "passkey": { "display_name": true } } })) } },
                    "extra": { "type": "object", "additionalProperties": ext(json!({ "credentials": { "password": { "identifier": true } } })) },
                    "plain": { "type": "string" }
                } } } }),
        ];
        let values = [
            json!({}),
            json!({ "email": "Ada@Example.com", "name": { "first": "Ada", "last": "L" } }),
            json!({ "email": "not-an-email", "alt": " Alt@Example.com ", "emails": ["a@x.io", "B@x.io", "a@x.io", 5],
                "pair": ["v@x.io", "ignored", "r@x.io", "s@x.io"], "phone": "+1 202 555 0143",
                "name": { "first": "Ada" }, "extra": { "k1": "K@x.io", "k2": "other" }, "plain": "p", "unknown": "u" }),
            json!({ "email": 5, "emails": "not-a-list", "pair": { "0": "x" }, "extra": ["x"] }),
            json!("not-an-object"),
        ];
        let schemas_last = schemas[1].clone();
        for raw in schemas {
            let s = IdentitySchema::compile("x", raw).unwrap();
            assert!(s.compiled_walk.is_some(), "schema without anyOf/oneOf compiles its walk");
            for v in &values {
                let (a, b) = (s.walk(v), s.walk_dynamic(v));
                assert_eq!(a.extracted, b.extracted, "extracted for {v}");
                assert_eq!(a.code_identifiers, b.code_identifiers, "code identifiers for {v}");
                assert_eq!(format!("{:?}", a.errors), format!("{:?}", b.errors), "errors for {v}");
            }
        }
        // The second schema reaches every kind of location with the third value.
        let s = IdentitySchema::compile("x", schemas_last).unwrap();
        let w = s.walk(&values[2]);
        assert_eq!(
            w.extracted.password_identifiers,
            vec!["not-an-email", "alt@example.com", "a@x.io", "b@x.io", "5", "k@x.io", "other"]
        );
        assert_eq!(w.extracted.passkey_display_name.as_deref(), Some("Ada"));
        assert_eq!(w.extracted.recovery_addresses.len(), 4, "{:?}", w.extracted.recovery_addresses);
        assert!(
            w.code_identifiers.contains(&("sms".to_string(), "+12025550143".to_string())),
            "{:?}",
            w.code_identifiers
        );
        assert!(!w.errors.is_empty());
        let with_branches = json!({ "type": "object", "properties": { "traits": { "type": "object",
            "properties": { "id": { "oneOf": [ext(id.clone()), { "type": "number" }] } } } } });
        let s = IdentitySchema::compile("x", with_branches).unwrap();
        assert!(s.compiled_walk.is_none(), "anyOf/oneOf keeps the dynamic walk");
        assert_eq!(s.extract(&json!({ "id": "Ada@Example.com" })).password_identifiers, vec!["ada@example.com"]);
        // A recursive schema that branches would need more locations than the budget allows.
        let binary_tree = json!({ "type": "object", "definitions": { "node": { "type": "object", "properties": {
                "id": ext(id.clone()), "l": { "$ref": "#/definitions/node" }, "r": { "$ref": "#/definitions/node" } } } },
            "properties": { "traits": { "type": "object", "properties": { "tree": { "$ref": "#/definitions/node" } } } } });
        let s = IdentitySchema::compile("x", binary_tree).unwrap();
        assert!(s.compiled_walk.is_none(), "a branching recursive schema keeps the dynamic walk");
        let ex = s.extract(&json!({ "tree": { "l": { "r": { "id": "Deep@Example.com" } } } }));
        assert_eq!(ex.password_identifiers, vec!["deep@example.com"]);
    }

    #[test]
    fn is_send_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<IdentitySchema>();
    }
}
