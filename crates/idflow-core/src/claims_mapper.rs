//! The claims mapper of social sign-in providers: a JSON/YAML object whose strings may contain
//! `{{ claims.<name> }}` templates (with `||` alternatives) turns verified provider claims into
//! `traits`, `metadata_public` and `metadata_admin`. Used by the provider configuration (to
//! validate mappers at start) and by the `oidc` method.

use serde_json::{Map, Value};

/// What a mapper produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    pub traits: Value,
    pub metadata_public: Value,
    pub metadata_admin: Value,
}

/// One `{{ … }}` expression: alternatives separated by `||`, each `claims.<path>` or a quoted
/// literal; the first alternative that is present (not absent, not null) wins.
#[derive(Debug, Clone, PartialEq)]
enum Alt {
    Claim(Vec<String>),
    Literal(String),
}

fn parse_expr(expr: &str) -> std::result::Result<Vec<Alt>, String> {
    let mut alts = vec![];
    for part in expr.split("||") {
        let part = part.trim();
        if let Some(path) = part.strip_prefix("claims.") {
            let segs: Vec<String> = path.split('.').map(str::to_string).collect();
            if segs
                .iter()
                .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                return Err(format!("{part:?} is not a claim path (use claims.<name> or claims.<name>.<field>)"));
            }
            alts.push(Alt::Claim(segs));
        } else if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
            alts.push(Alt::Literal(part[1..part.len() - 1].to_string()));
        } else {
            return Err(format!("{part:?} is not claims.<name> or a \"quoted\" text"));
        }
    }
    Ok(alts)
}

/// A template string split into literal text and expressions.
enum Piece {
    Text(String),
    Expr(Vec<Alt>),
}

fn parse_template(s: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        out.push(Piece::Expr(parse_expr(&after[..end])?));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(format!("unbalanced }}}} in {s:?}"));
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

fn validate_value(v: &Value, at: &str) -> std::result::Result<(), String> {
    match v {
        Value::String(s) => parse_template(s).map(|_| ()).map_err(|e| format!("at `{at}`: {e}")),
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| validate_value(x, &format!("{at}.{i}"))),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| validate_value(x, &format!("{at}.{k}"))),
        _ => Ok(()),
    }
}

/// Check a mapper: an object with `traits` (object) and optional `metadata_public`,
/// `metadata_admin`; every template must parse.
pub fn validate_mapper(mapper: &Value) -> std::result::Result<(), String> {
    let Value::Object(m) = mapper else {
        return Err("must be an object with a `traits` object".into());
    };
    for (k, v) in m {
        if !matches!(k.as_str(), "traits" | "metadata_public" | "metadata_admin") {
            return Err(format!("unknown key `{k}` (known: traits, metadata_public, metadata_admin)"));
        }
        if !v.is_object() {
            return Err(format!("`{k}` must be an object"));
        }
        validate_value(v, k)?;
    }
    Ok(())
}

fn lookup<'a>(claims: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = claims;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

fn eval(alts: &[Alt], claims: &Value) -> Option<Value> {
    alts.iter().find_map(|a| match a {
        Alt::Claim(p) => lookup(claims, p).cloned(),
        Alt::Literal(s) => Some(Value::String(s.clone())),
    })
}

fn render(v: &Value, claims: &Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            let pieces = parse_template(s).ok()?;
            if let [Piece::Expr(alts)] = pieces.as_slice() {
                // A whole-string template keeps the claim's JSON type.
                return eval(alts, claims);
            }
            let mut out = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => out.push_str(&t),
                    Piece::Expr(alts) => match eval(&alts, claims)? {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    },
                }
            }
            Some(Value::String(out))
        }
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(|x| render(x, claims)).collect())),
        Value::Object(m) => {
            let out: Map<String, Value> =
                m.iter().filter_map(|(k, x)| render(x, claims).map(|r| (k.clone(), r))).collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

/// Apply a mapper to claims. Keys whose templates refer to absent claims are left out (and
/// objects left empty by that too); a whole-string `"{{ claims.x }}"` keeps the claim's type.
pub fn apply_mapper(mapper: &Value, claims: &Value) -> Mapped {
    let part = |k: &str| mapper.get(k).and_then(|v| render(v, claims));
    Mapped {
        traits: part("traits").unwrap_or_else(|| Value::Object(Map::new())),
        metadata_public: part("metadata_public").unwrap_or(Value::Null),
        metadata_admin: part("metadata_admin").unwrap_or(Value::Null),
    }
}

/// Overlay `over` onto `base`: objects merge key by key; empty strings and nulls in `over` do
/// not replace anything (an untouched form field must not erase a mapped value).
pub fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => overlay(existing, v),
                    None => {
                        if !matches!(v, Value::Null) && v.as_str() != Some("") {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        (_, Value::Null) => {}
        (_, Value::String(s)) if s.is_empty() => {}
        (b, o) => *b = o.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[test]
    fn mapper_keeps_types_and_omits_absent_claims() {
        let mapper = json!({"traits": {
            "email": "{{ claims.email }}",
            "name": {"first": "{{ claims.given_name }}", "last": "{{ claims.family_name }}"},
            "verified": "{{ claims.email_verified }}",
            "greeting": "Hi {{ claims.given_name }}!",
            "nick": "{{ claims.preferred_username || claims.nickname || \"anonymous\" }}",
            "tenant": "{{ claims.org.id }}",
        }});
        validate_mapper(&mapper).unwrap();
        let claims = json!({"email": "a@example.org", "given_name": "Ada", "email_verified": true, "nickname": "ada", "org": {"id": 7}});
        let m = apply_mapper(&mapper, &claims);
        assert_eq!(
            m.traits,
            json!({"email": "a@example.org", "name": {"first": "Ada"}, "verified": true, "greeting": "Hi Ada!", "nick": "ada", "tenant": 7})
        );
        let none = apply_mapper(&mapper, &json!({}));
        assert_eq!(none.traits, json!({"nick": "anonymous"}));
        assert_eq!(none.metadata_public, Value::Null);
    }

    #[test]
    fn mapper_validation_names_the_problem() {
        assert!(validate_mapper(&json!({"traits": {"a": "{{ claims.a "}})).unwrap_err().contains("unclosed"));
        assert!(validate_mapper(&json!({"traits": {"a": "{{ user.a }}"}})).unwrap_err().contains("traits.a"));
        assert!(validate_mapper(&json!({"trait": {}})).unwrap_err().contains("unknown key"));
        assert!(validate_mapper(&json!({"traits": "x"})).is_err());
    }

    #[test]
    fn overlay_ignores_empty_form_values() {
        let mut base = json!({"email": "a@example.org", "name": {"first": "Ada"}});
        overlay(&mut base, &json!({"email": "", "name": {"first": "", "last": "Lovelace"}, "x": null}));
        assert_eq!(base, json!({"email": "a@example.org", "name": {"first": "Ada", "last": "Lovelace"}}));
    }
}
