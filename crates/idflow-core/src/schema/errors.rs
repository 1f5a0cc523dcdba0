//! Translation of JSON-schema validation errors into Kratos's UI messages (4000xxx), with the
//! node each belongs to.

use super::*;

impl IdentitySchema {
    pub(super) fn map_error(&self, err: &ValidationError<'_>, out: &mut Vec<(String, UiText)>, depth: usize) {
        let node = location_name(err.instance_path());
        let instance: &Value = err.instance();
        let text = match err.kind() {
            ValidationErrorKind::Required { property } => {
                let prop = property.as_str().map_or_else(|| property.to_string(), String::from);
                let name = if node.is_empty() { prop.clone() } else { format!("{node}.{prop}") };
                out.push((name, msg::missing(&prop)));
                return;
            }
            ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
                let before = out.len();
                if depth < MAX_ERROR_DEPTH {
                    for e in context.iter().flatten() {
                        self.map_error(e, out, depth + 1);
                    }
                }
                if out.len() > before {
                    return;
                }
                msg::generic(&err.to_string())
            }
            ValidationErrorKind::MinLength { limit } => {
                let actual = instance.as_str().map_or(0, |s| s.chars().count());
                UiText::error(4000003, format!("length must be >= {limit}, but got {actual}"))
                    .with_context(json!({ "min_length": limit, "actual_length": actual }))
            }
            ValidationErrorKind::MaxLength { limit } => {
                let actual = instance.as_str().map_or(0, |s| s.chars().count());
                UiText::error(4000017, format!("length must be <= {limit}, but got {actual}"))
                    .with_context(json!({ "max_length": limit, "actual_length": actual }))
            }
            ValidationErrorKind::Pattern { pattern } => {
                UiText::error(4000004, format!("does not match pattern {}", quote(pattern)))
                    .with_context(json!({ "pattern": pattern }))
            }
            ValidationErrorKind::Format { format } => match format.as_str() {
                "email" | "idn-email" | "email_loose" => invalid_email(&scalar_string(instance).unwrap_or_default()),
                "tel" => invalid_phone(&scalar_string(instance).unwrap_or_default()),
                f => msg::generic(&format!("{} is not valid {}", json_text(instance), quote(f))),
            },
            ValidationErrorKind::Type { kind } => {
                let allowed = self.schema_types(err).unwrap_or_else(|| type_kind_names(kind));
                let actual = json_type_name(instance);
                UiText::error(4000026, format!("expected {}, but got {actual}", allowed.join(" or ")))
                    .with_context(json!({ "allowed_types": allowed, "actual_type": actual }))
            }
            ValidationErrorKind::Minimum { limit } => bound(4000018, ">=", "minimum", limit, instance),
            ValidationErrorKind::ExclusiveMinimum { limit } => bound(4000019, ">", "minimum", limit, instance),
            ValidationErrorKind::Maximum { limit } => bound(4000020, "<=", "maximum", limit, instance),
            ValidationErrorKind::ExclusiveMaximum { limit } => bound(4000021, "<", "maximum", limit, instance),
            ValidationErrorKind::MultipleOf { multiple_of } => {
                let base = *multiple_of;
                let actual = instance.as_f64().unwrap_or(0.0);
                UiText::error(4000022, format!("{} not multipleOf {}", go_num(actual), go_num(base)))
                    .with_context(json!({ "base": num_json(base), "actual": num_json(actual) }))
            }
            ValidationErrorKind::MaxItems { limit } => {
                let actual = instance.as_array().map_or(0, Vec::len);
                UiText::error(4000023, format!("maximum {limit} items allowed, but found {actual} items"))
                    .with_context(json!({ "max_items": limit, "actual_items": actual }))
            }
            ValidationErrorKind::MinItems { limit } => {
                let actual = instance.as_array().map_or(0, Vec::len);
                UiText::error(4000024, format!("minimum {limit} items allowed, but found {actual} items"))
                    .with_context(json!({ "min_items": limit, "actual_items": actual }))
            }
            ValidationErrorKind::UniqueItems => {
                let (a, b) = duplicate_indices(instance);
                UiText::error(4000025, format!("items at index {a} and {b} are equal"))
                    .with_context(json!({ "index_a": a, "index_b": b }))
            }
            ValidationErrorKind::Constant { expected_value } => match expected_value.as_ref() {
                Value::Object(_) | Value::Array(_) => UiText::error(4000030, "const failed"),
                v => {
                    let expected = json_text(v);
                    UiText::error(4000029, format!("must be equal to constant {expected}"))
                        .with_context(json!({ "expected": expected }))
                }
            },
            ValidationErrorKind::Enum { options } => {
                let list = match options.as_ref() {
                    Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(", "),
                    other => json_text(other),
                };
                msg::generic(&format!("value must be one of {list}"))
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let list = unexpected.iter().map(|u| quote(u)).collect::<Vec<_>>().join(", ");
                msg::generic(&format!("additionalProperties {list} not allowed"))
            }
            _ => msg::generic(&err.to_string()),
        };
        out.push((node, text));
    }

    /// The `type` keyword value that failed, read from the schema document (keeps its order).
    pub(super) fn schema_types(&self, err: &ValidationError<'_>) -> Option<Vec<String>> {
        let from_uri =
            err.absolute_keyword_location().and_then(|u| u.as_str().split_once('#').map(|(_, f)| percent_decode(f)));
        let candidates = from_uri.into_iter().chain(std::iter::once(err.schema_path().as_str().to_string()));
        for ptr in candidates {
            if !ptr.ends_with("/type") {
                continue;
            }
            match self.raw.pointer(&ptr) {
                Some(Value::String(t)) => return Some(vec![t.clone()]),
                Some(Value::Array(ts)) => {
                    let names: Vec<String> = ts.iter().filter_map(Value::as_str).map(String::from).collect();
                    if !names.is_empty() {
                        return Some(names);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

pub(super) fn invalid_email(value: &str) -> UiText {
    UiText::error(4000040, "Enter a valid email address").with_context(json!({ "value": value }))
}

pub(super) fn invalid_phone(value: &str) -> UiText {
    UiText::error(4000041, "Enter a valid phone number").with_context(json!({ "value": value }))
}

pub(super) fn bound(id: u32, op: &str, key: &str, limit: &Value, instance: &Value) -> UiText {
    let limit = limit.as_f64().unwrap_or(0.0);
    let actual = instance.as_f64().unwrap_or(0.0);
    UiText::error(id, format!("must be {op} {} but found {}", go_num(limit), go_num(actual)))
        .with_context(json!({ key: num_json(limit), "actual": num_json(actual) }))
}

/// A float printed like Go's `%v` for whole numbers (no trailing `.0`).
pub(super) fn go_num(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 { format!("{f:.0}") } else { format!("{f}") }
}

pub(super) fn num_json(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        json!(i)
    } else {
        json!(f)
    }
}

pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

pub(super) fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn type_kind_names(kind: &TypeKind) -> Vec<String> {
    match kind {
        TypeKind::Single(t) => vec![t.to_string()],
        TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
    }
}

/// First pair of equal items (JSON Schema equality), `(-1, -1)` when not found in the first
/// 2000 items.
pub(super) fn duplicate_indices(v: &Value) -> (i64, i64) {
    let Some(items) = v.as_array() else {
        return (-1, -1);
    };
    let items = items.get(..items.len().min(2000)).unwrap_or_default();
    for (i, a) in items.iter().enumerate() {
        for (j, b) in items.iter().enumerate().skip(i + 1) {
            if json_eq(a, b, 0) {
                return (i64::try_from(i).unwrap_or(-1), i64::try_from(j).unwrap_or(-1));
            }
        }
    }
    (-1, -1)
}

pub(super) fn json_eq(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w, depth + 1)))
        }
        _ => a == b,
    }
}

pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn node_name(path: &[String]) -> String {
    if path.is_empty() { "traits".to_string() } else { format!("traits.{}", path.join(".")) }
}

pub(super) fn location_name(loc: &jsonschema::paths::Location) -> String {
    loc.segments().map(|s| s.to_string()).collect::<Vec<_>>().join(".")
}

pub(super) fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).and_then(|c| hex_val(*c)), bytes.get(i + 2).and_then(|c| hex_val(*c)))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Flatten into dot-notation leaves like [`crate::ui::flatten`], but depth-limited.
pub(super) fn flatten_limited(prefix: &str, v: &Value, depth: usize, out: &mut Vec<(String, Value)>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten_limited(&format!("{prefix}.{k}"), v, depth + 1, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten_limited(&format!("{prefix}.{i}"), v, depth + 1, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}
