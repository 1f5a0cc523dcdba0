//! Property tests (proptest) of two pieces every login and every browser form relies on:
//! identifier normalisation and CSRF token masking.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use idflow_core::crypto::{csrf_matches, mask_csrf, new_csrf_secret};
use idflow_core::schema::normalize_identifier;
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

/// Characters that render as nothing (the set the normaliser strips).
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Identifier-like text full of the troublemakers: case, full-width and mathematical letters,
/// ligatures, combining marks, Greek sigma, Turkish dotted I, the Kelvin sign, invisible and
/// bidi controls, odd spaces, phone-number punctuation.
fn tricky_identifier() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "a",
        "Z",
        "user",
        "@",
        ".",
        "example",
        "com",
        "+",
        "1",
        "49",
        "(",
        ")",
        "-",
        " ",
        "\u{3000}",
        "\u{00A0}",
        "\u{FF21}",
        "\u{FF4D}",
        "\u{1D400}",
        "\u{1D41A}",
        "\u{FB01}",
        "\u{0301}",
        "\u{0307}",
        "\u{00C5}",
        "A\u{030A}",
        "\u{03A3}",
        "\u{03C3}",
        "\u{03C2}",
        "\u{0130}",
        "\u{0131}",
        "\u{212A}",
        "\u{017F}",
        "\u{00DF}",
        "\u{1E9E}",
        "\u{200B}",
        "\u{200D}",
        "\u{202E}",
        "\u{2066}",
        "\u{FEFF}",
        "\u{00AD}",
        "\u{2460}",
        "\u{00BD}",
        "\u{2126}",
        "\u{0391}",
        "\u{0410}",
        "\u{0430}",
        "\u{24B6}",
        "\u{1F600}",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

fn any_identifier() -> impl Strategy<Value = String> {
    prop_oneof![tricky_identifier(), any::<String>(), "[ -~]{0,40}"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_is_idempotent(s in any_identifier()) {
        let once = normalize_identifier(&s);
        prop_assert_eq!(normalize_identifier(&once), once.clone(), "input {:?}", s);
    }

    #[test]
    fn normalised_identifiers_are_lowercase(s in any_identifier()) {
        let n = normalize_identifier(&s);
        prop_assert_eq!(n.to_lowercase(), n.clone(), "input {:?}", s);
    }

    #[test]
    fn normalised_identifiers_have_no_invisible_characters(s in any_identifier()) {
        let n = normalize_identifier(&s);
        prop_assert!(!n.chars().any(invisible), "{:?} -> {:?}", s, n);
        prop_assert_eq!(n.trim(), n.as_str(), "no surrounding whitespace: {:?}", s);
    }

    #[test]
    fn normalised_identifiers_are_nfkc_stable(s in any_identifier()) {
        let n = normalize_identifier(&s);
        prop_assert_eq!(n.nfkc().collect::<String>(), n.clone(), "input {:?}", s);
    }

    /// Variants a person cannot tell apart collapse to one identifier.
    #[test]
    fn case_width_and_invisible_variants_collapse(local in "[a-z0-9]{1,12}", domain in "[a-z]{1,10}") {
        let plain = format!("{local}@{domain}.com");
        let upper = plain.to_uppercase();
        let fullwidth: String = plain.chars().map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap(),
            c => c,
        }).collect();
        let zero_width: String = plain.chars().flat_map(|c| [c, '\u{200B}']).collect();
        let padded = format!(" \u{FEFF}{upper}\u{202E} ");
        for v in [&upper, &fullwidth, &zero_width, &padded] {
            prop_assert_eq!(normalize_identifier(v), plain.clone(), "variant {:?}", v);
        }
    }
}

fn secret() -> impl Strategy<Value = String> {
    prop::array::uniform32(any::<u8>()).prop_map(|b| STANDARD.encode(b))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn masked_token_unmasks_to_its_secret(s in secret()) {
        let masked = mask_csrf(&s);
        prop_assert_eq!(STANDARD.decode(&masked).unwrap().len(), 64);
        prop_assert!(csrf_matches(&masked, &s));
        prop_assert!(csrf_matches(&s, &masked));
    }

    #[test]
    fn every_mask_is_different_and_verifies(s in secret()) {
        let a = mask_csrf(&s);
        let b = mask_csrf(&s);
        prop_assert_ne!(&a, &b, "a fresh pad per mask");
        prop_assert!(csrf_matches(&a, &s) && csrf_matches(&b, &s));
        prop_assert!(csrf_matches(&a, &b), "two masks of one secret match each other");
    }

    #[test]
    fn tampered_token_fails(s in secret(), byte in 0usize..64, bit in 0u8..8) {
        let masked = mask_csrf(&s);
        let mut raw = STANDARD.decode(&masked).unwrap();
        raw[byte] ^= 1 << bit;
        let tampered = STANDARD.encode(&raw);
        prop_assert!(!csrf_matches(&tampered, &s));
    }

    #[test]
    fn another_secret_fails(a in secret(), b in secret()) {
        prop_assume!(a != b);
        prop_assert!(!csrf_matches(&mask_csrf(&a), &b));
        prop_assert!(!csrf_matches(&mask_csrf(&a), &mask_csrf(&b)));
    }

    #[test]
    fn garbage_never_matches_and_never_panics(g in any::<String>(), s in secret()) {
        prop_assume!(g != s);
        let _ = csrf_matches(&g, &g);
        prop_assert!(!csrf_matches(&g, &s) || STANDARD.decode(g.trim()).is_ok_and(|r| r.len() == 64));
    }
}

#[test]
fn fresh_secrets_differ() {
    assert_ne!(new_csrf_secret(), new_csrf_secret());
}
