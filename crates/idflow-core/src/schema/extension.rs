//! The `ory.sh/kratos` extension of identity schemas: parsing and checking each keyword
//! (credentials identifiers, verification, recovery; unknown keys are errors) and merging the
//! keywords of the subschemas that apply at one location.

use super::*;

/// Parsed content of one `ory.sh/kratos` keyword (or several merged).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Ext {
    pub(super) password_identifier: bool,
    pub(super) webauthn_identifier: bool,
    pub(super) passkey_display_name: bool,
    pub(super) totp_account_name: bool,
    pub(super) code_identifier: bool,
    pub(super) code_via: Option<String>,
    pub(super) verification_via: Option<String>,
    pub(super) recovery_via: Option<String>,
}

impl Ext {
    pub(super) fn merge(&mut self, o: &Ext) {
        self.password_identifier |= o.password_identifier;
        self.webauthn_identifier |= o.webauthn_identifier;
        self.passkey_display_name |= o.passkey_display_name;
        self.totp_account_name |= o.totp_account_name;
        self.code_identifier |= o.code_identifier;
        if self.code_via.is_none() {
            self.code_via.clone_from(&o.code_via);
        }
        if self.verification_via.is_none() {
            self.verification_via.clone_from(&o.verification_via);
        }
        if self.recovery_via.is_none() {
            self.recovery_via.clone_from(&o.recovery_via);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        *self == Ext::default()
    }

    /// Changing a trait with this extension touches credentials or addresses.
    pub(super) fn is_protected(&self) -> bool {
        self.password_identifier
            || self.webauthn_identifier
            || self.passkey_display_name
            || self.code_identifier
            || self.verification_via.is_some()
            || self.recovery_via.is_some()
    }
}

/// Validators for every `anyOf` / `oneOf` branch, compiled standalone (with the document's
/// definitions); branches that cannot be compiled alone are always treated as applying.
pub(super) fn compile_branches(raw: &Value) -> HashMap<String, Validator> {
    let mut out = HashMap::new();
    let _ = visit_schemas("", raw, 0, &mut |ptr, o| {
        for kw in ["anyOf", "oneOf"] {
            if let Some(Value::Array(items)) = o.get(kw) {
                for (i, it) in items.iter().enumerate() {
                    let wrapper = match it {
                        Value::Object(b) => {
                            let mut w = b.clone();
                            for k in ["$schema", "$id", "definitions", "$defs"] {
                                if !w.contains_key(k)
                                    && let Some(v) = raw.get(k)
                                {
                                    w.insert(k.to_string(), v.clone());
                                }
                            }
                            Value::Object(w)
                        }
                        other => other.clone(),
                    };
                    if let Ok(v) = build_validator(&wrapper) {
                        out.insert(format!("{ptr}/{kw}/{i}"), v);
                    }
                }
            }
        }
        Ok(())
    });
    out
}

/// Check every `ory.sh/kratos` keyword of the document and the verification format rule.
pub(super) fn check_extensions(raw: &Value) -> Result<(), String> {
    visit_schemas("", raw, 0, &mut |ptr, o| {
        let Some(e) = o.get(EXT) else {
            return Ok(());
        };
        let at = if ptr.is_empty() { "#".to_string() } else { format!("#{ptr}") };
        let ext = parse_ext(e).map_err(|m| format!("{m} (at {at})"))?;
        if let Some(via) = ext.verification_via.as_deref() {
            match o.get("format") {
                None if via == "sms" => {
                    return Err(format!(
                        "no format specified. A format is required if verification is enabled. If this was intentional, please set \"format\" to \"no-validate\" (at {at})"
                    ));
                }
                None => {}
                Some(Value::String(f)) if VERIFICATION_FORMATS.contains(&f.as_str()) => {}
                Some(f) => {
                    return Err(format!(
                        "format {f} is not supported for verification; use one of {} (at {at})",
                        VERIFICATION_FORMATS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    })
}

/// Call `f` on every (sub)schema object of the document, with its JSON pointer.
pub(super) fn visit_schemas(ptr: &str, v: &Value, depth: usize, f: &mut SchemaVisitor<'_>) -> Result<(), String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err("the schema is nested too deeply".into());
    }
    let Some(o) = v.as_object() else {
        return Ok(());
    };
    f(ptr, o)?;
    for (kw, sub) in o {
        let base = format!("{ptr}/{}", escape_pointer(kw));
        match kw.as_str() {
            "properties" | "patternProperties" | "definitions" | "$defs" | "dependencies" | "dependentSchemas" => {
                if let Some(m) = sub.as_object() {
                    for (k, s) in m {
                        visit_schemas(&format!("{base}/{}", escape_pointer(k)), s, depth + 1, f)?;
                    }
                }
            }
            "items"
            | "additionalItems"
            | "additionalProperties"
            | "contains"
            | "propertyNames"
            | "not"
            | "if"
            | "then"
            | "else"
            | "unevaluatedProperties"
            | "unevaluatedItems"
            | "allOf"
            | "anyOf"
            | "oneOf"
            | "prefixItems" => match sub {
                Value::Array(items) => {
                    for (i, s) in items.iter().enumerate() {
                        visit_schemas(&format!("{base}/{i}"), s, depth + 1, f)?;
                    }
                }
                s => visit_schemas(&base, s, depth + 1, f)?,
            },
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn ext_object<'a>(v: &'a Value, what: &str, allowed: &[&str]) -> Result<&'a Map<String, Value>, String> {
    let o = v.as_object().ok_or_else(|| format!("\"{what}\" must be an object"))?;
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown key \"{k}\" in \"{what}\""));
    }
    Ok(o)
}

pub(super) fn ext_bool(o: &Map<String, Value>, key: &str, what: &str) -> Result<bool, String> {
    match o.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("\"{what}.{key}\" must be a boolean")),
    }
}

pub(super) fn ext_enum(
    o: &Map<String, Value>,
    key: &str,
    what: &str,
    allowed: &[&str],
) -> Result<Option<String>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{what}.{key}\" must be one of {}", allowed.join(", "))),
    }
}

/// Parse an `ory.sh/kratos` keyword value; unknown keys or wrong types are errors.
pub(super) fn parse_ext(v: &Value) -> Result<Ext, String> {
    let root = ext_object(v, EXT, &["credentials", "verification", "recovery", "organizations"])?;
    let mut e = Ext::default();
    if let Some(c) = root.get("credentials") {
        let w = "ory.sh/kratos.credentials";
        let c = ext_object(c, w, &["password", "webauthn", "passkey", "totp", "code"])?;
        if let Some(p) = c.get("password") {
            let w = "ory.sh/kratos.credentials.password";
            e.password_identifier = ext_bool(ext_object(p, w, &["identifier"])?, "identifier", w)?;
        }
        if let Some(p) = c.get("webauthn") {
            let w = "ory.sh/kratos.credentials.webauthn";
            e.webauthn_identifier = ext_bool(ext_object(p, w, &["identifier"])?, "identifier", w)?;
        }
        if let Some(p) = c.get("passkey") {
            let w = "ory.sh/kratos.credentials.passkey";
            e.passkey_display_name = ext_bool(ext_object(p, w, &["display_name"])?, "display_name", w)?;
        }
        if let Some(p) = c.get("totp") {
            let w = "ory.sh/kratos.credentials.totp";
            e.totp_account_name = ext_bool(ext_object(p, w, &["account_name"])?, "account_name", w)?;
        }
        if let Some(p) = c.get("code") {
            let w = "ory.sh/kratos.credentials.code";
            let p = ext_object(p, w, &["identifier", "via"])?;
            e.code_identifier = ext_bool(p, "identifier", w)?;
            e.code_via = ext_enum(p, "via", w, &["email", "sms"])?;
        }
    }
    if let Some(x) = root.get("verification") {
        let w = "ory.sh/kratos.verification";
        e.verification_via = ext_enum(ext_object(x, w, &["via"])?, "via", w, &["email", "sms"])?;
    }
    if let Some(x) = root.get("recovery") {
        let w = "ory.sh/kratos.recovery";
        e.recovery_via = ext_enum(ext_object(x, w, &["via"])?, "via", w, &["email", "sms"])?;
    }
    if let Some(x) = root.get("organizations") {
        let w = "ory.sh/kratos.organizations";
        ext_enum(ext_object(x, w, &["matcher"])?, "matcher", w, &["email_domain"])?;
    }
    Ok(e)
}
