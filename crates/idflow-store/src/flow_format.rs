//! The stored form of a self-service flow (`flows.data`), versioned.
//!
//! A flow is stored as `{"format":1,"flow":{…}}`, where `flow` is the serde form of the core's
//! [`Flow`] (and of its UI types, `idflow_core::ui`). That form is frozen as **format 1** by the
//! golden test below; it is not the wire: the Kratos JSON sent to clients is built by
//! `idflow-server`'s `wire` module from the same values, so a wire change never changes the
//! database, and a database change never changes the wire.
//!
//! Rows written before the format was versioned hold the bare flow object (`{"id":…}`); they have
//! the same shape as format 1 and are read as such. A row of a format this build does not know
//! (written by a newer idflow) is an error that names the format, never a misread flow.
//!
//! To change the stored form: add a `FlowV2` (its own types where they differ), write only format
//! 2, keep the reader of format 1 (converting to the current [`Flow`]), and add a golden row of
//! format 2. Flows are short-lived, so a reader of an old format can go once every flow of that
//! format has expired (`selfservice.flows.*.lifespan`).

use idflow_core::model::Flow;
use idflow_core::store::StoreError;
use serde::{Deserialize, Serialize};

/// The format this build writes.
pub const CURRENT: u32 = 1;

#[derive(Serialize)]
struct Write<'a> {
    format: u32,
    flow: &'a Flow,
}

#[derive(Deserialize)]
struct ReadV1 {
    flow: Flow,
}

/// Only the format number; every other field is skipped.
#[derive(Deserialize)]
struct Header {
    format: Option<u32>,
}

/// The stored text of a flow, in the current format.
pub fn encode(f: &Flow) -> Result<String, StoreError> {
    serde_json::to_string(&Write { format: CURRENT, flow: f }).map_err(|e| StoreError::Other(e.to_string()))
}

/// A flow from its stored text, of any format this build reads.
pub fn decode(s: &str) -> Result<Flow, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Other(format!("corrupt stored flow: {e}"));
    // What `encode` writes starts with this prefix: read it in one pass.
    if s.starts_with(r#"{"format":1,"#) {
        return serde_json::from_str::<ReadV1>(s).map(|r| r.flow).map_err(corrupt);
    }
    match serde_json::from_str::<Header>(s).map_err(corrupt)?.format {
        // Before formats were numbered: the bare flow object, the same shape as format 1.
        None => serde_json::from_str::<Flow>(s).map_err(corrupt),
        Some(1) => serde_json::from_str::<ReadV1>(s).map(|r| r.flow).map_err(corrupt),
        Some(n) => Err(StoreError::Other(format!(
            "stored flow has format {n}, this build reads formats up to {CURRENT} (written by a newer idflow?)"
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use idflow_core::model::{Aal, FlowKind, FlowType};
    use idflow_core::ui::{Group, Node, Ui, UiText};
    use serde_json::json;
    use time::macros::datetime;
    use uuid::Uuid;

    /// A flow with every kind of UI node and every optional field set.
    pub(crate) fn sample() -> Flow {
        let mut ui =
            Ui::new("https://id.example/self-service/settings?flow=0b7e5f0c-0000-4000-8000-000000000001".into());
        ui.nodes.push(Node::csrf("Y3NyZg=="));
        ui.nodes.push(
            Node::input(Group::Profile, "traits.email", "email")
                .value(json!("a@example.com"))
                .required()
                .autocomplete("email")
                .label(UiText::info(1070002, "E-Mail")),
        );
        ui.nodes.push(Node::input(Group::Webauthn, "webauthn_register_trigger", "button").with_attrs(|a| {
            a.onclick = Some("window.__oryWebAuthnRegistration({})".into());
            a.onclick_trigger = Some("oryWebAuthnRegistration".into());
            a.onload = Some("load()".into());
            a.onload_trigger = Some("oryWebAuthnLoad".into());
            a.pattern = Some("[0-9]*".into());
            a.maxlength = Some(6);
            a.options = Some(vec![json!("a")]);
        }));
        ui.nodes.push(Node::text(
            Group::LookupSecret,
            "lookup_secret_codes",
            UiText::info(1050015, "abc, def").with_context(json!({"secrets": ["abc", "def"]})),
            None,
        ));
        ui.nodes.push(Node::img(
            Group::Totp,
            "totp_qr",
            "data:image/png;base64,AA==".into(),
            256,
            256,
            UiText::info(1050005, "QR code"),
        ));
        ui.nodes.push(Node::anchor(Group::Oidc, "link", "https://id.example/x", UiText::info(1, "x")));
        ui.nodes.push(Node::script(Group::Webauthn, "webauthn_script", "/s.js".into(), "sha512-x".into(), "n".into()));
        ui.add_message("", UiText::error(4000001, "bad"));
        ui.add_message("traits.email", UiText::error(4000002, "missing"));
        Flow {
            id: Uuid::from_u128(0x0b7e5f0c_0000_4000_8000_000000000001),
            kind: FlowKind::Settings,
            flow_type: FlowType::Browser,
            identity_id: Some(Uuid::from_u128(0x1d000000_0000_4000_8000_000000000002)),
            expires_at: datetime!(2026-12-07 05:00:00 UTC),
            issued_at: datetime!(2026-12-07 04:00:00 UTC),
            request_url: "https://id.example/self-service/settings/browser".into(),
            return_to: Some("https://app.example/account".into()),
            ui,
            state: "show_form".into(),
            active: Some("profile".into()),
            refresh: true,
            requested_aal: Aal::Aal2,
            csrf_token: "c2VjcmV0".into(),
            internal: json!({"totp_secret": "JBSWY3DPEHPK3PXP"}),
            version: 3,
            created_at: datetime!(2026-12-07 04:00:00 UTC),
            updated_at: datetime!(2026-12-07 04:10:00 UTC),
            reason: None,
        }
    }

    /// A format 1 row of [`sample`], pretty-printed (key order as stored).
    const GOLDEN_V1: &str = include_str!("flow_format/v1.json");

    fn golden_compact() -> String {
        serde_json::from_str::<serde_json::Value>(GOLDEN_V1).unwrap().to_string()
    }

    #[test]
    fn format_1_is_frozen() {
        // Encoding is byte for byte the golden row: a change to the core's serde attributes (or
        // to a field) fails here instead of silently changing what is in every database.
        assert_eq!(encode(&sample()).unwrap(), golden_compact());
        assert_eq!(decode(&golden_compact()).unwrap(), sample());
        assert_eq!(decode(GOLDEN_V1).unwrap(), sample(), "whitespace is not part of the format");
    }

    #[test]
    fn rows_from_before_the_format_number_are_read() {
        let v: serde_json::Value = serde_json::from_str(GOLDEN_V1).unwrap();
        let bare = serde_json::to_string(&v["flow"]).unwrap();
        assert!(bare.starts_with(r#"{"id":"#));
        assert_eq!(decode(&bare).unwrap(), sample());
        // Format 1 written by another serialiser (keys in another order) is read too.
        let reordered = serde_json::to_string(&json!({"flow": v["flow"], "format": 1})).unwrap();
        assert_eq!(decode(&reordered).unwrap(), sample());
    }

    #[test]
    fn unknown_or_corrupt_formats_are_errors() {
        let newer = r#"{"format":2,"flow":{"id":"x"}}"#;
        let e = decode(newer).unwrap_err().to_string();
        assert!(e.contains("format 2"), "{e}");
        for bad in ["", "null", "[]", r#"{"format":1,"flow":{}}"#, r#"{"format":"1"}"#] {
            assert!(decode(bad).is_err(), "{bad} must not decode");
        }
    }

    #[test]
    fn the_reason_of_a_form_error_is_never_stored() {
        let mut f = sample();
        f.reason = Some(idflow_core::selfservice::FormReason::Malformed);
        let s = encode(&f).unwrap();
        assert!(!s.contains("reason"));
        assert_eq!(decode(&s).unwrap().reason, None);
    }
}
