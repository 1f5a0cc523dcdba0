//! The schema walk compiled ahead of time.
//!
//! Extraction and the extension checks walk the schema together with the traits value
//! ([`IdentitySchema::walk`]). Which subschemas apply at an instance location depends on the
//! value only through `anyOf` / `oneOf` (only satisfied branches apply). A schema without
//! them gives the same answer at the same location for every value, so the walk is worked
//! out once, when the schema is compiled: a tree holding, per location, the merged
//! extension, the format, and the locations below it. A request then walks the value down
//! that tree with one map lookup per key, instead of expanding `$ref` / `allOf` and parsing
//! the extension again at every location.
//!
//! Schemas with `anyOf` / `oneOf`, and schemas whose tree would be very large (recursive
//! `$ref`s), keep the dynamic walk; [`compile`] returns `None` for them.

use std::collections::HashMap;

use serde_json::Value;

use super::{IdentitySchema, LeafInfo, MAX_DEPTH, Mode, Sink, escape_pointer, item_subschemas};
use crate::schema::extension::Ext;

/// Most locations a compiled walk may hold; beyond that the dynamic walk is used.
const MAX_NODES: usize = 4096;

/// One instance location of a compiled walk.
#[derive(Debug, Default)]
pub(super) struct WalkNode {
    ext: Ext,
    format: Option<String>,
    /// Whether this location or any below it carries an extension (else nothing to do here).
    active: bool,
    /// Declared property name -> location.
    props: HashMap<String, WalkNode>,
    /// Location of keys no subschema declares (`additionalProperties` objects).
    additional: Option<Box<WalkNode>>,
    /// Location of array element `i` is `items[min(i, items.len() - 1)]` (tuple forms
    /// first; the last entry holds every index past them).
    items: Vec<Option<WalkNode>>,
}

/// Compile the walk of `schema`, or `None` when it must stay dynamic.
pub(super) fn compile(schema: &IdentitySchema) -> Option<WalkNode> {
    let ts = schema.raw.pointer("/properties/traits")?;
    let mut budget = MAX_NODES;
    build(schema, vec![("/properties/traits".to_string(), ts)], 0, &mut budget)?
}

/// The location reached through `roots` at `depth`: `Some(None)` when the dynamic walk
/// would not visit it, `None` when the walk cannot be compiled.
fn build<'s>(
    schema: &'s IdentitySchema,
    roots: Vec<(String, &'s Value)>,
    depth: usize,
    budget: &mut usize,
) -> Option<Option<WalkNode>> {
    if depth > MAX_DEPTH || roots.is_empty() {
        return Some(None);
    }
    *budget = budget.checked_sub(1)?;
    let mut list = Vec::new();
    schema.expand(&roots, Mode::Static, &mut list);
    if list
        .iter()
        .any(|(_, s)| s.get("anyOf").is_some_and(Value::is_array) || s.get("oneOf").is_some_and(Value::is_array))
    {
        return None;
    }
    let info = LeafInfo::from_list(&list);
    let mut node = WalkNode { active: !info.ext.is_empty(), ext: info.ext, format: info.format, ..WalkNode::default() };

    // Objects: the declared keys, then the location of every other key.
    let mut keys: Vec<&String> = Vec::new();
    for (_, s) in &list {
        if let Some(Value::Object(props)) = s.get("properties") {
            keys.extend(props.keys().filter(|k| !keys.contains(k)).collect::<Vec<_>>());
        }
    }
    for k in keys {
        let subs: Vec<(String, &Value)> = list
            .iter()
            .filter_map(|(p, s)| {
                s.get("properties")
                    .and_then(|ps| ps.get(k))
                    .map(|sub| (format!("{p}/properties/{}", escape_pointer(k)), sub))
            })
            .collect();
        if let Some(child) = build(schema, subs, depth + 1, budget)? {
            node.active |= child.active;
            node.props.insert(k.clone(), child);
        }
    }
    let additional: Vec<(String, &Value)> = list
        .iter()
        .filter_map(|(p, s)| {
            s.get("additionalProperties").filter(|a| a.is_object()).map(|ap| (format!("{p}/additionalProperties"), ap))
        })
        .collect();
    if let Some(child) = build(schema, additional, depth + 1, budget)? {
        node.active |= child.active;
        node.additional = Some(Box::new(child));
    }

    // Arrays: one location per tuple position, and one for every index after them.
    let has_items = list.iter().any(|(_, s)| s.get("items").is_some_and(|i| i.is_object() || i.is_array()));
    if has_items {
        let tuple_len =
            list.iter().filter_map(|(_, s)| s.get("items").and_then(Value::as_array).map(Vec::len)).max().unwrap_or(0);
        for i in 0..=tuple_len {
            let subs = item_subschemas(&list, i);
            let child = build(schema, subs, depth + 1, budget)?;
            node.active |= child.as_ref().is_some_and(|c| c.active);
            node.items.push(child);
        }
    }
    Some(Some(node))
}

impl WalkNode {
    /// Apply the extension of every location of `value` to `sink`, as the dynamic walk does.
    pub(super) fn walk(&self, value: &Value, path: &mut Vec<String>, sink: &mut Sink<'_>) {
        if !self.active {
            return;
        }
        sink.apply(&self.ext, self.format.as_deref(), value, path);
        match value {
            Value::Object(m) => {
                for (k, v) in m {
                    let child = match self.props.get(k) {
                        Some(c) => Some(c),
                        None => self.additional.as_deref(),
                    };
                    if let Some(c) = child.filter(|c| c.active) {
                        path.push(k.clone());
                        c.walk(v, path, sink);
                        path.pop();
                    }
                }
            }
            Value::Array(a) => {
                let Some(last) = self.items.len().checked_sub(1) else {
                    return;
                };
                for (i, v) in a.iter().enumerate() {
                    if let Some(Some(c)) = self.items.get(i.min(last))
                        && c.active
                    {
                        path.push(i.to_string());
                        c.walk(v, path, sink);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }
}
