//! Accessors of flow JSON: nodes, the CSRF value, message ids, TOTP secrets and lookup codes
//! shown in a flow, and small body and URL helpers.

use super::*;
use serde_json::{Map, Value};

/// Find a node by name (input) or id.
pub fn node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"].as_array()?.iter().find(|n| n["attributes"]["name"] == name || n["attributes"]["id"] == name)
}

/// The JSON carried in a node's `value` (e.g. WebAuthn options).
pub fn value_json(flow: &Value, name: &str) -> Value {
    let v = node(flow, name).unwrap_or_else(|| panic!("no node {name} in {flow}"))["attributes"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    serde_json::from_str(&v).unwrap()
}

/// The `csrf_token` node value.
pub fn csrf(flow: &Value) -> String {
    node(flow, "csrf_token").and_then(|n| n["attributes"]["value"].as_str()).unwrap_or_default().to_string()
}

/// All messages of a flow: form level first, then each node's.
pub fn messages(flow: &Value) -> Vec<&Value> {
    let form = flow["ui"]["messages"].as_array().into_iter().flatten();
    let nodes = flow["ui"]["nodes"].as_array().into_iter().flatten();
    form.chain(nodes.flat_map(|n| n["messages"].as_array().into_iter().flatten())).collect()
}

/// All message ids of a flow (form level and nodes).
pub fn message_ids(flow: &Value) -> Vec<i64> {
    messages(flow).iter().map(|m| m["id"].as_i64().unwrap_or(0)).collect()
}

/// All message texts of a flow (form level and nodes).
pub fn message_texts(flow: &Value) -> Vec<String> {
    messages(flow).iter().map(|m| m["text"].as_str().unwrap_or_default().to_string()).collect()
}

/// The flow's settings UI URL.
pub fn ui_url(app: &TestApp, id: &str) -> String {
    format!("{}/ui/settings?flow={id}", app.public)
}

/// Form-level message ids.
pub fn form_ids(flow: &Value) -> Vec<i64> {
    flow["ui"]["messages"].as_array().into_iter().flatten().map(|m| m["id"].as_i64().unwrap_or(0)).collect()
}

/// Message ids on one node.
pub fn node_ids(flow: &Value, name: &str) -> Vec<i64> {
    node(flow, name)
        .and_then(|n| n["messages"].as_array())
        .into_iter()
        .flatten()
        .map(|m| m["id"].as_i64().unwrap_or(0))
        .collect()
}

/// A node within a group (several nodes share the name `method`).
pub fn group_node<'a>(flow: &'a Value, group: &str, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["group"] == group && (n["attributes"]["name"] == name || n["attributes"]["id"] == name))
}

/// The TOTP secret offered in the flow (`totp_secret_key` text node).
pub fn totp_secret(flow: &Value) -> String {
    node(flow, "totp_secret_key").expect("totp_secret_key node")["attributes"]["text"]["context"]["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The regenerated lookup codes shown in the flow.
pub fn lookup_codes(flow: &Value) -> Vec<String> {
    node(flow, "lookup_secret_codes").expect("lookup_secret_codes node")["attributes"]["text"]["context"]["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap().to_string())
        .collect()
}

/// Percent-encode as `application/x-www-form-urlencoded` (what the server uses in URLs).
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Body helper.
pub fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}
