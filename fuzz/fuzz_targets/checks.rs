//! The checks behind the fuzz targets, shared with the stable property tests
//! (crates/idflow-server/tests/it/fuzz_props.rs includes this file). Each takes arbitrary
//! bytes and panics only on a real defect: a panic or stack overflow in the code under test, or
//! a broken invariant (nesting above the limit, an unbounded method label).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use idflow_core::schema::IdentitySchema;
use serde_json::Value;
use std::sync::OnceLock;

const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    None,
    Some("application/json; charset=utf-8"),
    Some("application/merge-patch+json"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some("APPLICATION/JSON"),
];

const KNOWN_METHODS: &[&str] =
    &["password", "profile", "totp", "lookup_secret", "webauthn", "passkey", "oidc", "code", "none", "other"];

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `http::parse_body` by content type (first byte picks the type and the depth limit), then the
/// settings dispatcher's view of the body.
pub fn parse_body(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else { return };
    let ct = CONTENT_TYPES[sel as usize % CONTENT_TYPES.len()];
    let max_depth = 1 + (sel as usize / CONTENT_TYPES.len()) % 32;
    let form_types =
        [("traits.age".to_string(), "number".to_string()), ("traits.newsletter".to_string(), "checkbox".to_string())];
    if let Ok(b) = idflow_server::http::parse_body(ct, body, max_depth, &form_types) {
        let label = idflow_core::selfservice::instrument::method_label(&b);
        assert!(KNOWN_METHODS.contains(&label), "label {label:?}");
        let d = depth(&Value::Object(b));
        assert!(d <= max_depth.max(1), "nesting {d} above the limit {max_depth}");
    }
}

/// The v1 envelope `{"method": "...", "body": {...}}`.
pub fn v1_envelope(data: &[u8]) {
    let max_depth = 16;
    if let Ok((method, flat)) = idflow_server::http::v1::parse_envelope_bytes(Some("application/json"), data, max_depth)
    {
        assert!(!method.is_empty());
        assert_eq!(flat.get("method").and_then(Value::as_str), Some(method.as_str()));
        let d = depth(&Value::Object(flat));
        assert!(d <= max_depth, "nesting {d} above the limit {max_depth}");
    }
}

fn schemas() -> &'static [IdentitySchema] {
    static S: OnceLock<Vec<IdentitySchema>> = OnceLock::new();
    S.get_or_init(|| {
        let rich = r#"{
          "$schema": "http://json-schema.org/draft-07/schema#",
          "type": "object",
          "properties": { "traits": { "type": "object", "properties": {
            "email": { "type": "string", "format": "email", "maxLength": 320,
              "ory.sh/kratos": { "credentials": { "password": { "identifier": true }, "code": { "identifier": true, "via": "email" } },
                                 "verification": { "via": "email" }, "recovery": { "via": "email" } } },
            "phone": { "type": "string", "format": "tel",
              "ory.sh/kratos": { "credentials": { "password": { "identifier": true } }, "verification": { "via": "sms" } } },
            "username": { "type": "string", "minLength": 3, "pattern": "^[a-z0-9_]+$",
              "ory.sh/kratos": { "credentials": { "password": { "identifier": true } } } },
            "emails": { "type": "array", "items": { "type": "string", "format": "email",
              "ory.sh/kratos": { "credentials": { "password": { "identifier": true } }, "recovery": { "via": "email" } } } },
            "age": { "type": "integer", "minimum": 0 },
            "newsletter": { "type": "boolean" },
            "name": { "type": "object", "properties": { "first": { "type": "string" }, "last": { "type": "string" } } }
          }, "required": ["email"] } }
        }"#;
        vec![
            IdentitySchema::default_schema().expect("default schema"),
            IdentitySchema::compile_str("rich", rich).expect("rich schema"),
        ]
    })
}

/// `IdentitySchema::validate` (and the extension walk and trait nodes) on arbitrary JSON traits.
pub fn schema_validate(data: &[u8]) {
    let Ok(traits) = serde_json::from_slice::<Value>(data) else { return };
    for s in schemas() {
        let _ = s.validate(&traits);
        let _ = s.extract(&traits);
        let _ = s.trait_nodes(idflow_core::ui::Group::Profile, Some(&traits));
    }
}
