//! The `idflow` extension keyword: a per-trait change policy next to `ory.sh/kratos`.
//!
//! ```json
//! "email": {"type": "string", "format": "email",
//!   "ory.sh/kratos": {"verification": {"via": "email"}},
//!   "idflow": {"privileged": true, "aal2": false, "verify_before_apply": true, "notify": true}}
//! ```
//!
//! Every key is optional; the defaults follow the `ory.sh/kratos` keywords of the trait:
//! `privileged` and `notify` are on for identifiers and addresses, `verify_before_apply` for
//! single (non-array) email addresses with `verification.via: email`, `aal2` is off.
//! Unknown keys, non-boolean values and `verify_before_apply: true` on a trait that is not a
//! single verifiable email address are schema errors at start (naming the trait).

use super::*;

/// The keyword.
pub(super) const POLICY_EXT: &str = "idflow";

const POLICY_KEYS: &[&str] = &["privileged", "aal2", "verify_before_apply", "notify"];

/// What changing one trait requires and causes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldPolicy {
    /// A change needs a privileged session (a recent login: `privileged_session_max_age`).
    pub privileged: bool,
    /// A change needs a session at AAL2.
    pub aal2: bool,
    /// A change is kept pending until the new address is verified (email addresses only).
    pub verify_before_apply: bool,
    /// A change is announced to the addresses the identity had before it.
    pub notify: bool,
}

/// The explicit values of one `idflow` keyword (or several merged: the first one wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PolicyExt {
    pub(super) privileged: Option<bool>,
    pub(super) aal2: Option<bool>,
    pub(super) verify_before_apply: Option<bool>,
    pub(super) notify: Option<bool>,
}

impl PolicyExt {
    pub(super) fn merge(&mut self, o: &PolicyExt) {
        self.privileged = self.privileged.or(o.privileged);
        self.aal2 = self.aal2.or(o.aal2);
        self.verify_before_apply = self.verify_before_apply.or(o.verify_before_apply);
        self.notify = self.notify.or(o.notify);
    }
}

/// Parse an `idflow` keyword value; unknown keys or wrong types are errors.
pub(super) fn parse_policy(v: &Value) -> Result<PolicyExt, String> {
    let o = ext_object(v, POLICY_EXT, POLICY_KEYS)?;
    let get = |k: &str| match o.get(k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("\"{POLICY_EXT}.{k}\" must be a boolean")),
    };
    Ok(PolicyExt {
        privileged: get("privileged")?,
        aal2: get("aal2")?,
        verify_before_apply: get("verify_before_apply")?,
        notify: get("notify")?,
    })
}

/// The trait a schema pointer describes (`/properties/traits/properties/name/properties/first`
/// → `traits.name.first`), when it is one.
pub(super) fn trait_of_pointer(ptr: &str) -> Option<String> {
    let rest = ptr.strip_prefix("/properties/traits")?;
    let mut parts = vec!["traits".to_string()];
    let mut segs = rest.split('/').skip(1);
    while let Some(kw) = segs.next() {
        match kw {
            "properties" => parts.push(segs.next()?.replace("~1", "/").replace("~0", "~")),
            "items" => {}
            _ => return None,
        }
    }
    Some(parts.join("."))
}

/// Check every `idflow` keyword of the document (shape only; the rules that depend on the
/// trait are checked on the collected fields).
pub(super) fn check_policies(raw: &Value) -> Result<(), String> {
    visit_schemas("", raw, 0, &mut |ptr, o| {
        let Some(p) = o.get(POLICY_EXT) else {
            return Ok(());
        };
        parse_policy(p).map(|_| ()).map_err(|m| match trait_of_pointer(ptr) {
            Some(t) => format!("{m} (trait {t}, at #{ptr})"),
            None => format!("{m} (at #{})", if ptr.is_empty() { "" } else { ptr }),
        })
    })
}

impl TraitField {
    /// A single email address that verification mails to: what `verify_before_apply` needs.
    fn verifiable_email(&self) -> bool {
        !self.array && self.ext.verification_via.as_deref() == Some("email")
    }

    pub(super) fn policy(&self) -> FieldPolicy {
        let protected = self.ext.is_protected();
        FieldPolicy {
            privileged: self.policy.privileged.unwrap_or(protected),
            aal2: self.policy.aal2.unwrap_or(false),
            verify_before_apply: self.policy.verify_before_apply.unwrap_or_else(|| self.verifiable_email()),
            notify: self.policy.notify.unwrap_or(protected),
        }
    }

    /// The rules that depend on the trait itself.
    pub(super) fn check_policy(&self) -> Result<(), String> {
        if self.policy.verify_before_apply == Some(true) && !self.verifiable_email() {
            return Err(format!(
                "\"{POLICY_EXT}.verify_before_apply\" needs a single email address verified by mail (\"ory.sh/kratos\": {{\"verification\": {{\"via\": \"email\"}}}}, not an array) (trait {})",
                self.name
            ));
        }
        Ok(())
    }

    /// The trait's value in `traits` (`None` when absent).
    fn value_in<'v>(&self, traits: &'v Value) -> Option<&'v Value> {
        let mut cur = traits;
        for seg in &self.path {
            cur = match cur {
                Value::Object(m) => m.get(seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

impl IdentitySchema {
    /// The policy of the trait with node name `path` (`traits.email`; `email` works too).
    /// Traits the schema does not describe get the policy of a plain trait (all off).
    pub fn field_policy(&self, path: &str) -> FieldPolicy {
        let name = if path.starts_with("traits.") { path.to_string() } else { format!("traits.{path}") };
        self.fields.iter().find(|f| f.name == name).map(TraitField::policy).unwrap_or_default()
    }

    /// Every trait's policy, in schema order.
    pub fn field_policies(&self) -> Vec<(String, FieldPolicy)> {
        self.fields.iter().map(|f| (f.name.clone(), f.policy())).collect()
    }

    /// The traits whose value differs between `old` and `new`, with their policies.
    pub fn changed_fields(&self, old: &Value, new: &Value) -> Vec<(String, FieldPolicy)> {
        self.fields
            .iter()
            .filter(|f| f.value_in(old) != f.value_in(new))
            .map(|f| (f.name.clone(), f.policy()))
            .collect()
    }

    /// The value of trait `path` (node name) in `traits`.
    pub fn field_value<'v>(&self, path: &str, traits: &'v Value) -> Option<&'v Value> {
        self.fields.iter().find(|f| f.name == path)?.value_in(traits)
    }

    /// `traits` with trait `path` (node name) set to `value`, or removed for `None` (objects on
    /// the way are created). `None` when the schema has no such trait or the traits are not
    /// shaped for it.
    pub fn with_field_value(&self, path: &str, traits: &Value, value: Option<Value>) -> Option<Value> {
        let f = self.fields.iter().find(|f| f.name == path)?;
        let mut out = traits.clone();
        let mut cur = &mut out;
        let (last, parents) = f.path.split_last()?;
        for seg in parents {
            let m = cur.as_object_mut()?;
            cur = m.entry(seg.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
        let m = cur.as_object_mut()?;
        match value {
            Some(v) => {
                m.insert(last.clone(), v);
            }
            None => {
                m.shift_remove(last);
            }
        }
        Some(out)
    }

    pub(super) fn check_field_policies(&self) -> Result<(), String> {
        self.fields.iter().try_for_each(TraitField::check_policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(email_ext: Value, extra: Value) -> Result<IdentitySchema, SchemaError> {
        let mut email = json!({"type": "string", "format": "email",
            "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}, "verification": {"via": "email"}}});
        if let (Some(e), Some(x)) = (email.as_object_mut(), email_ext.as_object()) {
            e.extend(x.clone());
        }
        let mut props = json!({"email": email, "nick": {"type": "string"},
            "name": {"type": "object", "properties": {"first": {"type": "string"}}}});
        if let (Some(p), Some(x)) = (props.as_object_mut(), extra.as_object()) {
            p.extend(x.clone());
        }
        IdentitySchema::compile(
            "s",
            json!({"type": "object", "properties": {"traits": {"type": "object", "properties": props}}}),
        )
    }

    fn err(r: Result<IdentitySchema, SchemaError>) -> String {
        match r {
            Err(SchemaError::Invalid(m)) => m,
            other => panic!("expected an invalid schema, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_the_kratos_keywords() {
        let s = schema(json!({}), json!({})).unwrap();
        let email = s.field_policy("traits.email");
        assert_eq!(email, FieldPolicy { privileged: true, aal2: false, verify_before_apply: true, notify: true });
        assert_eq!(s.field_policy("email"), email);
        assert_eq!(s.field_policy("traits.nick"), FieldPolicy::default());
        assert_eq!(s.field_policy("traits.unknown"), FieldPolicy::default());
        let d = IdentitySchema::default_schema().unwrap();
        assert!(d.field_policy("traits.email").verify_before_apply);
        assert_eq!(
            d.field_policies().iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            vec!["traits.email", "traits.name.first", "traits.name.last"]
        );
    }

    #[test]
    fn explicit_values_win() {
        let s = schema(
            json!({"idflow": {"privileged": false, "aal2": true, "verify_before_apply": false, "notify": false}}),
            json!({"nick": {"type": "string", "idflow": {"privileged": true, "notify": true}}}),
        )
        .unwrap();
        assert_eq!(s.field_policy("traits.email"), FieldPolicy { aal2: true, ..FieldPolicy::default() });
        assert_eq!(
            s.field_policy("traits.nick"),
            FieldPolicy { privileged: true, notify: true, ..FieldPolicy::default() }
        );
        let changed =
            s.changed_fields(&json!({"email": "a@b.io", "nick": "x"}), &json!({"email": "a@b.io", "nick": "y"}));
        assert_eq!(changed.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), vec!["traits.nick"]);
        let set = s.with_field_value("traits.name.first", &json!({"email": "a@b.io"}), Some(json!("Ada"))).unwrap();
        assert_eq!(set, json!({"email": "a@b.io", "name": {"first": "Ada"}}));
        assert_eq!(s.field_value("traits.name.first", &set), Some(&json!("Ada")));
        let unset = s.with_field_value("traits.name.first", &set, None).unwrap();
        assert_eq!(unset, json!({"email": "a@b.io", "name": {}}));
    }

    #[test]
    fn errors_name_the_trait() {
        let m = err(schema(json!({"idflow": {"privileged": "yes"}}), json!({})));
        assert!(m.contains("idflow.privileged") && m.contains("trait traits.email"), "{m}");
        let m = err(schema(json!({"idflow": {"verify": true}}), json!({})));
        assert!(m.contains("unknown key \"verify\"") && m.contains("trait traits.email"), "{m}");
        let m = err(schema(json!({"idflow": true}), json!({})));
        assert!(m.contains("must be an object"), "{m}");
        let m = err(schema(json!({}), json!({"nick": {"type": "string", "idflow": {"verify_before_apply": true}}})));
        assert!(m.contains("verify_before_apply") && m.contains("trait traits.nick"), "{m}");
        let m = err(schema(
            json!({}),
            json!({"emails": {"type": "array", "items": {"type": "string", "format": "email",
                "ory.sh/kratos": {"verification": {"via": "email"}}}, "idflow": {"verify_before_apply": true}}}),
        ));
        assert!(m.contains("trait traits.emails"), "{m}");
        // arrays of addresses are never verified before they apply by default
        let s = schema(
            json!({}),
            json!({"emails": {"type": "array", "items": {"type": "string", "format": "email",
                "ory.sh/kratos": {"verification": {"via": "email"}}}}}),
        )
        .unwrap();
        assert!(!s.field_policy("traits.emails").verify_before_apply);
        assert!(s.field_policy("traits.emails").privileged);
        assert_eq!(trait_of_pointer("/properties/traits/properties/a~1b/items"), Some("traits.a/b".into()));
        assert_eq!(trait_of_pointer("/definitions/x"), None);
    }
}
