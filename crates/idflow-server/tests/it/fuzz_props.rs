//! The fuzz targets of `fuzz/` (cargo-fuzz, nightly) run as property tests on stable, so every
//! CI run exercises them: arbitrary bytes, generated JSON and form bodies, and the regressions
//! the fuzzer found, through the same checks (`fuzz/fuzz_targets/checks.rs`).

#[path = "../../../../fuzz/fuzz_targets/checks.rs"]
mod checks;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "method",
        "traits",
        "traits.email",
        "traits.name.first",
        "csrf_token",
        "password",
        "body",
        "a.b.c",
        "..",
        ".",
        "",
        "totp_code",
        "lookup_secret_confirm",
        "traits.age",
        "traits.newsletter",
        "\u{0}",
        "é.ü",
    ])
    .prop_map(str::to_string)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
        prop::sample::select(vec!["password", "profile", "totp", "lookup_secret", "true", "on", "1"])
            .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((key(), ".{0,10}"), 0..8).prop_map(|kv| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in kv {
            s.append_pair(&k, &v);
        }
        s.finish().into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_body_on_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        checks::parse_body(&data);
    }

    #[test]
    fn parse_body_on_json(sel in any::<u8>(), v in json_value()) {
        let mut data = vec![sel];
        data.extend(serde_json::to_vec(&v).unwrap());
        checks::parse_body(&data);
    }

    #[test]
    fn parse_body_on_forms(sel in any::<u8>(), body in form_body()) {
        let mut data = vec![sel];
        data.extend(body);
        checks::parse_body(&data);
    }

    #[test]
    fn v1_envelope_on_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        checks::v1_envelope(&data);
    }

    #[test]
    fn v1_envelope_on_json(method in ".{0,12}", body in json_value()) {
        checks::v1_envelope(&serde_json::to_vec(&json!({"method": method, "body": body})).unwrap());
        checks::v1_envelope(&serde_json::to_vec(&body).unwrap());
    }

    #[test]
    fn schema_validate_on_json(v in json_value()) {
        checks::schema_validate(&serde_json::to_vec(&v).unwrap());
        checks::schema_validate(&serde_json::to_vec(&json!({"email": v, "name": {"first": v}})).unwrap());
    }

    #[test]
    fn schema_validate_on_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        checks::schema_validate(&data);
    }
}

/// Found by fuzzing: a flat key made of thousands of dots unflattened into a nesting that
/// overflowed the stack (a crash of the whole process) despite `limits.max_json_depth`.
#[test]
fn dotted_key_bombs_are_refused() {
    let dots = ".".repeat(60_000);
    for sel in 0u8..8 {
        let mut form = vec![sel];
        form.extend(format!("{dots}=1").into_bytes());
        checks::parse_body(&form);
        let mut j = vec![sel];
        j.extend(serde_json::to_vec(&json!({ dots.clone(): 1 })).unwrap());
        checks::parse_body(&j);
    }
    checks::v1_envelope(&serde_json::to_vec(&json!({"method": "profile", "body": { dots.clone(): 1 }})).unwrap());
    checks::schema_validate(&serde_json::to_vec(&json!({ dots: 1 })).unwrap());
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    checks::parse_body(&[0].into_iter().chain(deep.bytes()).collect::<Vec<u8>>());
    checks::schema_validate(deep.as_bytes());
}
