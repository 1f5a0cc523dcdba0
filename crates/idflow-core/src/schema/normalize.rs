//! Identifier and address normalisation (identity-session-login §5.4) and the `email` / `tel`
//! formats as Kratos checks them.

use super::*;

/// Identifier normalisation (§5.4): trim, NFKC (includes width folding), lowercase, strip
/// invisible / bidi-control characters; a value that looks like an international phone
/// number (`+` and 7–15 digits, separators allowed) becomes E.164.
pub fn normalize_identifier(s: &str) -> String {
    // ASCII is its own NFKC form and holds none of the invisible characters: only lowercase
    // and trim (the same result, without two passes of Unicode normalisation).
    if s.is_ascii() {
        let trimmed = s.trim().to_ascii_lowercase();
        return normalize_phone(&trimmed).unwrap_or(trimmed);
    }
    normalize_unicode_identifier(s)
}

fn normalize_unicode_identifier(s: &str) -> String {
    let visible: String = s.chars().filter(|c| !is_invisible(*c)).collect();
    let lowered = visible.nfkc().collect::<String>().to_lowercase();
    let folded: String = lowered.nfkc().collect();
    let trimmed = folded.trim();
    normalize_phone(trimmed).unwrap_or_else(|| trimmed.to_string())
}

/// Zero-width and bidi-control characters, BOM, soft hyphen and other default-ignorables
/// that render as nothing.
pub(super) fn is_invisible(c: char) -> bool {
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

/// `+` followed by 7–15 digits (spaces, `-`, `.`, `(`, `)` allowed in between) -> E.164.
pub(super) fn normalize_phone(s: &str) -> Option<String> {
    let rest = s.trim().strip_prefix('+')?;
    let mut digits = String::new();
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')') {
            return None;
        }
    }
    if digits.len() < 7 || digits.len() > 15 || digits.starts_with('0') {
        return None;
    }
    Some(format!("+{digits}"))
}

/// The `tel` format.
/// `format: email` as Kratos checks it (Go's `net/mail`, RFC 6532): the local part (at most 64
/// bytes) may hold non-ASCII characters; the structure and the domain are checked like an ASCII
/// address. Look-alikes (e.g. fullwidth letters) are then folded by [`normalize_identifier`].
pub(super) fn is_valid_email(s: &str) -> bool {
    static ASCII_EMAIL: std::sync::LazyLock<Option<Validator>> = std::sync::LazyLock::new(|| {
        jsonschema::options()
            .with_draft(Draft::Draft7)
            .should_validate_formats(true)
            .build(&json!({ "type": "string", "format": "email" }))
            .ok()
    });
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    if local.len() > 64 {
        return false;
    }
    let masked: String = local.chars().map(|c| if c.is_ascii() { c } else { 'a' }).collect();
    ASCII_EMAIL.as_ref().is_some_and(|v| v.is_valid(&Value::String(format!("{masked}@{domain}"))))
}

pub(super) fn is_valid_phone(s: &str) -> bool {
    normalize_phone(s).is_some()
}

pub(super) fn normalize_address(via: &str, raw: &str) -> String {
    let t = raw.trim();
    match via {
        "sms" => normalize_phone(t).unwrap_or_else(|| t.to_string()),
        _ => t.to_lowercase(),
    }
}

pub(super) fn push_identifier(list: &mut Vec<String>, raw: &str) {
    let id = normalize_identifier(raw);
    if !id.is_empty() && !list.contains(&id) {
        list.push(id);
    }
}

pub(super) fn push_address(list: &mut Vec<(String, String)>, via: &str, raw: &str) {
    let value = normalize_address(via, raw);
    if !value.is_empty() && !list.iter().any(|(v, a)| v == via && *a == value) {
        list.push((via.to_string(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ASCII fast path of identifier normalisation gives what the Unicode path gives.
    #[test]
    fn normalize_identifier_ascii_fast_path_matches_unicode_path() {
        let mut samples: Vec<String> = (0u8..128).map(|b| format!(" a{}B\t", b as char)).collect();
        samples.extend(
            [
                "Ada@Example.COM",
                "  +49 (30) 123-456 ",
                "+0301234567",
                "\u{b}x\u{c}",
                "\r\nUSER\u{1f}",
                "",
                " ",
                "+1 555 0100",
            ]
            .map(String::from),
        );
        for s in samples {
            assert!(s.is_ascii());
            assert_eq!(normalize_identifier(&s), normalize_unicode_identifier(&s), "{s:?}");
        }
        assert_eq!(normalize_identifier(" ＡＤＡ@example.com"), "ada@example.com");
    }
}
