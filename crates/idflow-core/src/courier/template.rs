//! Mail templates: built-in plain-text and HTML for every [`TemplateType`], overridable per
//! type by `courier.templates.<family>.<variant>.email.*` or by Kratos's files under
//! `courier.template_override_path` (`recovery_code/valid/email.subject.gotmpl`,
//! `email.body.gotmpl`, `email.body.plaintext.gotmpl`).
//!
//! Users write Go templates, as for Kratos. The subset used by mail templates is translated to
//! minijinja: field references (`{{ .RecoveryCode }}`, `{{ .Identity.traits.email }}`),
//! `{{ if … }}` / `{{ else if … }}` / `{{ else }}` / `{{ end }}`, comments `{{/* … */}}` and the
//! `{{-` / `-}}` trim markers. Anything else is refused when the configuration is loaded. The
//! HTML body is escaped (as Go's `html/template` does); subject and plain text are not.

use super::{Message, MessageStatus, TemplateType};
use crate::config::{Config, EmailTemplateConfig};
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// A template that cannot be read, translated or rendered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// Which part of a mail a template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Subject,
    Html,
    Plain,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Html, Part::Plain];

    fn file_name(self) -> &'static str {
        match self {
            Part::Subject => "email.subject.gotmpl",
            Part::Html => "email.body.gotmpl",
            Part::Plain => "email.body.plaintext.gotmpl",
        }
    }
}

/// The templates in effect (translated to minijinja), with the sender settings.
#[derive(Debug, Clone)]
pub struct Courier {
    templates: HashMap<(TemplateType, Part), String>,
}

impl Default for Courier {
    fn default() -> Self {
        Courier::builtin()
    }
}

impl Courier {
    /// Only the built-in templates.
    pub fn builtin() -> Courier {
        let mut templates = HashMap::new();
        for t in TemplateType::ALL {
            for p in Part::ALL {
                // The built-ins are written in the same Go subset; a test checks they translate.
                if let Ok(src) = translate(builtin(t, p)) {
                    templates.insert((t, p), src);
                }
            }
        }
        Courier { templates }
    }

    /// The built-ins overridden by `courier.templates.*` and `courier.template_override_path`
    /// (inline configuration wins over files). Every template is translated and checked here,
    /// so a bad one stops the server at start with the key or file that is wrong.
    pub fn from_config(cfg: &Config) -> Result<Courier, TemplateError> {
        let mut c = Courier::builtin();
        let base = cfg.courier.template_override_path.as_deref().map(|p| p.strip_prefix("file://").unwrap_or(p));
        for t in TemplateType::ALL {
            let (family, variant) = t.family_and_variant();
            for p in Part::ALL {
                let mut source = None;
                if let Some(dir) = base {
                    let path = std::path::Path::new(dir).join(family).join(variant).join(p.file_name());
                    match std::fs::read_to_string(&path) {
                        Ok(text) => source = Some((text, path.display().to_string())),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(TemplateError(format!("could not read template {}: {e}", path.display())));
                        }
                    }
                }
                let inline = cfg
                    .courier
                    .templates
                    .get(family)
                    .and_then(|v| if variant == "valid" { v.valid.as_ref() } else { v.invalid.as_ref() })
                    .and_then(|ch| ch.email.as_ref())
                    .and_then(|e: &EmailTemplateConfig| match p {
                        Part::Subject => e.subject.as_deref(),
                        Part::Html => e.body.html.as_deref(),
                        Part::Plain => e.body.plaintext.as_deref(),
                    });
                if let Some(v) = inline {
                    let key = format!(
                        "courier.templates.{family}.{variant}.email.{}",
                        match p {
                            Part::Subject => "subject",
                            Part::Html => "body.html",
                            Part::Plain => "body.plaintext",
                        }
                    );
                    source = Some((load_value(v).map_err(|e| TemplateError(format!("at key `{key}`: {e}")))?, key));
                }
                if let Some((text, origin)) = source {
                    let src = translate(&text).map_err(|e| TemplateError(format!("template {origin}: {e}")))?;
                    // Parse once now so syntax errors surface at start.
                    let env = environment();
                    env.template_from_str(&src).map_err(|e| TemplateError(format!("template {origin}: {e}")))?;
                    c.templates.insert((t, p), src);
                }
            }
        }
        Ok(c)
    }

    /// Render a message of type `t` for `recipient` with `data` (a JSON object: `RecoveryCode`,
    /// `Identity`, …; `To` is set to the recipient). The message is `queued`, due now.
    pub fn render(
        &self,
        t: TemplateType,
        recipient: &str,
        data: Value,
        now: OffsetDateTime,
    ) -> Result<Message, TemplateError> {
        let mut data = match data {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            _ => return Err(TemplateError("template data must be a JSON object".into())),
        };
        data.insert("To".into(), Value::String(recipient.to_string()));
        let data = Value::Object(data);
        let env = environment();
        let render = |p: Part| -> Result<String, TemplateError> {
            let src = self.templates.get(&(t, p)).map(String::as_str).unwrap_or("");
            let name = if p == Part::Html { "body.html" } else { "body.txt" };
            env.render_named_str(name, src, minijinja::Value::from(minijinja::value::Serde(&data)))
                .map_err(|e| TemplateError(format!("could not render the {} template: {e}", t.as_str())))
        };
        // A subject is one line.
        let subject =
            render(Part::Subject)?.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
        Ok(Message {
            id: Uuid::new_v4(),
            status: MessageStatus::Queued,
            channel: "email".into(),
            recipient: recipient.to_string(),
            subject,
            body: render(Part::Plain)?,
            html_body: render(Part::Html)?,
            template_type: t,
            template_data: data,
            send_count: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
            dispatches: vec![],
        })
    }
}

fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
    });
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    env
}

/// A configured template value: `base64://…`, `file://…`, or the template text itself.
fn load_value(v: &str) -> Result<String, String> {
    use base64::Engine as _;
    if let Some(b) = v.strip_prefix("base64://") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b.trim()))
            .map_err(|_| "not valid base64".to_string())?;
        return String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string());
    }
    if let Some(path) = v.strip_prefix("file://") {
        return std::fs::read_to_string(path).map_err(|e| format!("could not read {path}: {e}"));
    }
    Ok(v.to_string())
}

/// Translate the Go template subset to minijinja source.
fn translate(go: &str) -> Result<String, String> {
    let mut out = String::with_capacity(go.len());
    let mut rest = go;
    // Open `if` blocks (Go closes every block with `end`).
    let mut depth = 0usize;
    while let Some(start) = rest.find("{{") {
        out.push_str(&escape_jinja(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("unclosed {{")?;
        let mut inner = &after[..end];
        rest = &after[end + 2..];
        let trim_left = inner.starts_with('-');
        let trim_right = inner.ends_with('-') && inner.len() > 1;
        if trim_left {
            inner = &inner[1..];
        }
        if trim_right {
            inner = &inner[..inner.len() - 1];
        }
        let inner = inner.trim();
        if inner.starts_with("/*") {
            if !inner.ends_with("*/") {
                return Err("unclosed comment".into());
            }
            out.push_str(&format!("{{#{}{}#}}", if trim_left { "-" } else { "" }, if trim_right { "-" } else { "" }));
            continue;
        }
        let (l, r) = (if trim_left { "-" } else { "" }, if trim_right { "-" } else { "" });
        let (word, tail) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        match word {
            "if" => {
                depth += 1;
                out.push_str(&format!("{{%{l} if {} {r}%}}", expr(tail.trim())?));
            }
            "else" if tail.trim().starts_with("if ") => {
                if depth == 0 {
                    return Err("`else` outside `if`".into());
                }
                out.push_str(&format!("{{%{l} elif {} {r}%}}", expr(tail.trim()[3..].trim())?));
            }
            "else" => {
                if depth == 0 || !tail.trim().is_empty() {
                    return Err("`else` outside `if`".into());
                }
                out.push_str(&format!("{{%{l} else {r}%}}"));
            }
            "end" => {
                depth = depth.checked_sub(1).ok_or("`end` without `if`")?;
                out.push_str(&format!("{{%{l} endif {r}%}}"));
            }
            "range" | "with" | "define" | "template" | "block" => {
                return Err(format!("`{word}` is not supported in mail templates"));
            }
            _ => out.push_str(&format!("{{{{{l} {} {r}}}}}", expr(inner)?)),
        }
    }
    if depth != 0 {
        return Err("`if` without `end`".into());
    }
    out.push_str(&escape_jinja(rest));
    Ok(out)
}

/// Text outside Go actions may contain `{%` or `{#`, which minijinja would read as tags.
fn escape_jinja(text: &str) -> String {
    if text.contains("{%") || text.contains("{#") {
        format!("{{% raw %}}{text}{{% endraw %}}")
    } else {
        text.to_string()
    }
}

/// A Go expression: field paths (`.A.b`), string/number literals, `not`/`and`/`or`/`eq`/`ne`
/// with their operands, and `| filter` pipes of built-in names.
fn expr(e: &str) -> Result<String, String> {
    if e.is_empty() {
        return Err("empty action".into());
    }
    let tokens = tokenize(e)?;
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    // Go's prefix functions: `eq A B`, `ne A B`, `not A`, `and A B`, `or A B`.
    fn operand(tokens: &[String], i: &mut usize) -> Result<String, String> {
        let t = tokens.get(*i).ok_or("missing operand")?;
        *i += 1;
        match t.as_str() {
            "not" => Ok(format!("(not {})", operand(tokens, i)?)),
            "eq" | "ne" | "and" | "or" => {
                let a = operand(tokens, i)?;
                let b = operand(tokens, i)?;
                let op = match t.as_str() {
                    "eq" => "==",
                    "ne" => "!=",
                    "and" => "and",
                    _ => "or",
                };
                Ok(format!("({a} {op} {b})"))
            }
            _ => atom(t),
        }
    }
    while i < tokens.len() {
        if tokens[i] == "|" {
            let f = tokens.get(i + 1).ok_or("empty pipe")?;
            if !f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("unsupported pipe {f:?}"));
            }
            out.push(format!("| {}", f.to_ascii_lowercase()));
            i += 2;
            continue;
        }
        out.push(operand(&tokens, &mut i)?);
    }
    Ok(out.join(" "))
}

fn atom(t: &str) -> Result<String, String> {
    if t == "." {
        return Err("`.` alone is not supported; name a field".into());
    }
    if let Some(path) = t.strip_prefix('.') {
        let ok = path
            .split('.')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-'));
        if !ok {
            return Err(format!("unsupported field reference {t:?}"));
        }
        // `.Identity.traits.email` → Identity["traits"]["email"] (segments may hold dashes).
        let mut segs = path.split('.');
        let first = segs.next().unwrap_or_default();
        let mut s = first.to_string();
        if first.contains('-') {
            return Err(format!("unsupported field reference {t:?}"));
        }
        for seg in segs {
            s.push_str(&format!("[{seg:?}]"));
        }
        return Ok(s);
    }
    if t.starts_with('"') || t.chars().all(|c| c.is_ascii_digit()) || t == "true" || t == "false" {
        return Ok(t.to_string());
    }
    Err(format!("unsupported token {t:?} (use .Field references)"))
}

fn tokenize(e: &str) -> Result<Vec<String>, String> {
    let mut out = vec![];
    let mut chars = e.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            let mut s = String::from('"');
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                s.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else if c == '"' {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err("unclosed string".into());
            }
            out.push(s);
        } else if c == '|' || c == '(' || c == ')' {
            if c != '|' {
                return Err("parentheses are not supported".into());
            }
            chars.next();
            out.push("|".into());
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '|' || c == '"' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// The built-in templates (Go syntax, like Kratos's own).
fn builtin(t: TemplateType, p: Part) -> &'static str {
    use Part::*;
    use TemplateType::*;
    match (t, p) {
        (RecoveryCodeValid, Subject) => "Recover access to your account",
        (RecoveryCodeValid, Plain) => {
            "Hi,\n\nplease recover access to your account by entering the following code:\n\n{{ .RecoveryCode }}\n\nThis code expires in {{ .ExpiresInMinutes }} minutes.\n"
        }
        (RecoveryCodeValid, Html) => {
            "<p>Hi,</p>\n<p>please recover access to your account by entering the following code:</p>\n<p><strong>{{ .RecoveryCode }}</strong></p>\n<p>This code expires in {{ .ExpiresInMinutes }} minutes.</p>\n"
        }
        (RecoveryCodeInvalid | RecoveryInvalid, Subject) => "Account access attempted",
        (RecoveryCodeInvalid | RecoveryInvalid, Plain) => {
            "Hi,\n\nyou (or someone else) entered this email address when trying to recover access to an account.\n\nHowever, this email address is not on our database of registered users and therefore the attempt has failed.\n\nIf this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n"
        }
        (RecoveryCodeInvalid | RecoveryInvalid, Html) => {
            "<p>Hi,</p>\n<p>you (or someone else) entered this email address when trying to recover access to an account.</p>\n<p>However, this email address is not on our database of registered users and therefore the attempt has failed.</p>\n<p>If this was you, check if you signed up using a different address.</p>\n<p>If this was not you, please ignore this email.</p>\n"
        }
        (RecoveryValid, Subject) => "Recover access to your account",
        (RecoveryValid, Plain) => {
            "Hi,\n\nplease recover access to your account by clicking the following link:\n\n{{ .RecoveryURL }}\n"
        }
        (RecoveryValid, Html) => {
            "<p>Hi,</p>\n<p>please recover access to your account by clicking the following link:</p>\n<p><a href=\"{{ .RecoveryURL }}\">{{ .RecoveryURL }}</a></p>\n"
        }
        (VerificationCodeValid, Subject) => "Please verify your email address",
        (VerificationCodeValid, Plain) => {
            "Hi,\n\nplease verify your account by entering the following code:\n\n{{ .VerificationCode }}\n\nor clicking the following link:\n\n{{ .VerificationURL }}\n"
        }
        (VerificationCodeValid, Html) => {
            "<p>Hi,</p>\n<p>please verify your account by entering the following code:</p>\n<p><strong>{{ .VerificationCode }}</strong></p>\n<p>or clicking the following link:</p>\n<p><a href=\"{{ .VerificationURL }}\">{{ .VerificationURL }}</a></p>\n"
        }
        (VerificationCodeInvalid | VerificationInvalid, Subject) => "Someone tried to verify this email address",
        (VerificationCodeInvalid | VerificationInvalid, Plain) => {
            "Hi,\n\nsomeone asked to verify this email address, but we were unable to find an account for this address.\n\nIf this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n"
        }
        (VerificationCodeInvalid | VerificationInvalid, Html) => {
            "<p>Hi,</p>\n<p>someone asked to verify this email address, but we were unable to find an account for this address.</p>\n<p>If this was you, check if you signed up using a different address.</p>\n<p>If this was not you, please ignore this email.</p>\n"
        }
        (VerificationValid, Subject) => "Please verify your email address",
        (VerificationValid, Plain) => {
            "Hi,\n\nplease verify your account by clicking the following link:\n\n{{ .VerificationURL }}\n"
        }
        (VerificationValid, Html) => {
            "<p>Hi,</p>\n<p>please verify your account by clicking the following link:</p>\n<p><a href=\"{{ .VerificationURL }}\">{{ .VerificationURL }}</a></p>\n"
        }
        (SecurityNotification, Subject) => "{{ .Subject }}",
        (SecurityNotification, Plain) => {
            "Hi,\n\n{{ .Body }}\n\n{{ if .RecoveryURL }}This wasn't you? Secure your account now by recovering it:\n\n{{ .RecoveryURL }}\n{{ else }}If this was not you, please recover your account or contact support.\n{{ end }}"
        }
        (SecurityNotification, Html) => {
            "<p>Hi,</p>\n<p>{{ .Body }}</p>\n{{ if .RecoveryURL }}<p>This wasn't you? <a href=\"{{ .RecoveryURL }}\">Secure your account now by recovering it</a>.</p>\n{{ else }}<p>If this was not you, please recover your account or contact support.</p>\n{{ end }}"
        }
        (AccountDeletionScheduled, Subject) => "Your account will be deleted",
        (AccountDeletionScheduled, Plain) => {
            "Hi,\n\nyour account is scheduled for deletion on {{ .DeleteAfterDate }}. All its sessions were ended.\n\nTo keep your account, sign in before then and cancel the deletion:\n\n{{ .CancelURL }}\n\nIf this was not you, sign in, cancel the deletion and change your password.\n"
        }
        (AccountDeletionScheduled, Html) => {
            "<p>Hi,</p>\n<p>your account is scheduled for deletion on {{ .DeleteAfterDate }}. All its sessions were ended.</p>\n<p>To keep your account, sign in before then and cancel the deletion:</p>\n<p><a href=\"{{ .CancelURL }}\">{{ .CancelURL }}</a></p>\n<p>If this was not you, sign in, cancel the deletion and change your password.</p>\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(j: Value) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(j))
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    #[test]
    fn builtins_translate_and_render_every_type() {
        let c = Courier::builtin();
        for t in TemplateType::ALL {
            for p in Part::ALL {
                assert!(c.templates.contains_key(&(t, p)), "{t:?} {p:?}");
            }
            let m = c
                .render(
                    t,
                    "a@example.org",
                    json!({"RecoveryCode": "123456", "VerificationCode": "654321", "RecoveryURL": "https://x/r",
                           "VerificationURL": "https://x/v", "ExpiresInMinutes": 15, "Subject": "S", "Body": "B"}),
                    now(),
                )
                .unwrap();
            assert!(!m.subject.is_empty() && !m.body.is_empty() && !m.html_body.is_empty(), "{t:?}");
        }
    }

    #[test]
    fn go_field_references_and_conditionals() {
        let src = translate("Hi {{ .Identity.traits.email }}, {{- if .RecoveryCode }} code {{ .RecoveryCode }}{{ else }} none{{ end }} {{/* note */}}").unwrap();
        let env = environment();
        let out =
            env.render_str(&src, v(json!({"Identity": {"traits": {"email": "e@x"}}, "RecoveryCode": "42"}))).unwrap();
        assert_eq!(out, "Hi e@x, code 42 ");
        let src = translate(r#"{{ if eq .Kind "a" }}A{{ else if not .Kind }}none{{ else }}B{{ end }}"#).unwrap();
        assert_eq!(env.render_str(&src, v(json!({"Kind": "a"}))).unwrap(), "A");
        assert_eq!(env.render_str(&src, v(json!({}))).unwrap(), "none");
        assert_eq!(env.render_str(&src, v(json!({"Kind": "b"}))).unwrap(), "B");
        assert!(translate("{{ range .X }}{{ end }}").is_err());
        assert!(translate("{{ if .X }}").is_err());
        assert!(translate("{{ .X ").is_err());
        assert!(translate("{{ os.Exit }}").is_err());
        // Jinja syntax in plain text stays text.
        assert_eq!(env.render_str(&translate("{% x %} {{ .A }}").unwrap(), v(json!({"A": 1}))).unwrap(), "{% x %} 1");
    }

    #[test]
    fn html_body_is_escaped_plain_text_is_not() {
        let mut cfg = Config::default();
        cfg.courier.templates.insert(
            "recovery_code".into(),
            serde_json::from_value(json!({"valid": {"email": {
                "subject": "Code for {{ .Identity.traits.email }}",
                "body": {"html": "<b>{{ .RecoveryCode }}</b>", "plaintext": "base64://Q29kZToge3sgLlJlY292ZXJ5Q29kZSB9fQ=="}
            }}}))
            .unwrap(),
        );
        let c = Courier::from_config(&cfg).unwrap();
        let m = c
            .render(
                TemplateType::RecoveryCodeValid,
                "a@example.org",
                json!({"RecoveryCode": "<1&2>", "Identity": {"traits": {"email": "a@example.org"}}}),
                now(),
            )
            .unwrap();
        assert_eq!(m.subject, "Code for a@example.org");
        assert_eq!(m.html_body, "<b>&lt;1&amp;2&gt;</b>");
        assert_eq!(m.body, "Code: <1&2>");
        assert_eq!(m.template_data["To"], "a@example.org");
    }

    #[test]
    fn override_path_uses_kratos_file_names_and_inline_config_wins() {
        let dir = std::env::temp_dir().join(format!("idflow-tpl-{}", Uuid::new_v4()));
        let d = dir.join("verification_code").join("valid");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("email.subject.gotmpl"), "Verify {{ .To }}").unwrap();
        std::fs::write(d.join("email.body.plaintext.gotmpl"), "Code {{ .VerificationCode }}").unwrap();
        std::fs::write(d.join("email.body.gotmpl"), "<p>{{ .VerificationCode }}</p>").unwrap();
        let mut cfg = Config::default();
        cfg.courier.template_override_path = Some(format!("file://{}", dir.display()));
        cfg.courier.templates.insert(
            "verification_code".into(),
            serde_json::from_value(
                json!({"valid": {"email": {"body": {"plaintext": "Inline {{ .VerificationCode }}"}}}}),
            )
            .unwrap(),
        );
        let c = Courier::from_config(&cfg);
        let _ = std::fs::remove_dir_all(&dir);
        let m = c
            .unwrap()
            .render(TemplateType::VerificationCodeValid, "v@example.org", json!({"VerificationCode": "9"}), now())
            .unwrap();
        assert_eq!(
            (m.subject.as_str(), m.body.as_str(), m.html_body.as_str()),
            ("Verify v@example.org", "Inline 9", "<p>9</p>")
        );
        // Types without files keep the built-ins.
        let m = Courier::from_config(&cfg)
            .unwrap()
            .render(TemplateType::RecoveryCodeValid, "v@example.org", json!({}), now())
            .unwrap();
        assert_eq!(m.subject, "Recover access to your account");
    }

    #[test]
    fn bad_override_is_refused_with_its_key() {
        let mut cfg = Config::default();
        cfg.courier.templates.insert(
            "verification_code".into(),
            serde_json::from_value(json!({"invalid": {"email": {"subject": "{{ range .X }}"}}})).unwrap(),
        );
        let e = Courier::from_config(&cfg).unwrap_err();
        assert!(e.0.contains("courier.templates.verification_code.invalid.email.subject"), "{}", e.0);
    }
}
