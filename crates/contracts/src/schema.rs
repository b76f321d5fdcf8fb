//! JSON Schemas of every detail type, generated from the Rust types, and a backwards
//! compatibility check between two versions of one schema.
//!
//! The checked-in schemas live in `crates/contracts/schemas/` (the current one per detail type)
//! and `crates/contracts/schemas/released/` (every version ever released). A test regenerates the
//! current ones and fails on any difference (`UPDATE_SCHEMAS=1 cargo test -p contracts` rewrites
//! them), and fails when the current schema is not backwards compatible with a released one.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{
    Detail, DomainEvent, OrderCreated, OrderPicked, OrderShipped, ReturnReceived, ReturnRequested,
};

/// The schema of `Detail<E>` (the whole `detail` object, metadata included).
pub fn detail_schema<E: DomainEvent>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Detail<E>))
        .unwrap_or_else(|e| unreachable!("a schemars Schema is always JSON: {e}"));
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), Value::String(E::DETAIL_TYPE.to_owned()));
        obj.insert(
            "description".into(),
            Value::String(format!("`detail` of {} / {}", E::SOURCE, E::DETAIL_TYPE)),
        );
    }
    schema
}

/// Every detail type's schema, by detail type, in contract order.
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        (OrderCreated::DETAIL_TYPE, detail_schema::<OrderCreated>()),
        (OrderPicked::DETAIL_TYPE, detail_schema::<OrderPicked>()),
        (OrderShipped::DETAIL_TYPE, detail_schema::<OrderShipped>()),
        (
            ReturnRequested::DETAIL_TYPE,
            detail_schema::<ReturnRequested>(),
        ),
        (
            ReturnReceived::DETAIL_TYPE,
            detail_schema::<ReturnReceived>(),
        ),
    ]
}

/// One way a new schema breaks readers or writers of an older one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incompatibility {
    /// A field of the old schema is gone.
    RemovedField(String),
    /// A field's JSON type changed.
    ChangedType {
        /// JSON path of the field.
        path: String,
        /// Old type.
        old: String,
        /// New type.
        new: String,
    },
    /// A field that old events lack is now required.
    NewRequiredField(String),
    /// A field that old readers require may now be missing.
    NoLongerRequired(String),
    /// The allowed values of an enumeration changed (old readers reject new values; new readers
    /// reject removed ones).
    ChangedEnum(String),
    /// A string pattern changed, which may reject values that were valid.
    ChangedPattern(String),
}

impl std::fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RemovedField(p) => write!(f, "field {p} was removed"),
            Self::ChangedType { path, old, new } => {
                write!(f, "field {path} changed type from {old} to {new}")
            }
            Self::NewRequiredField(p) => write!(f, "new field {p} is required (must be optional)"),
            Self::NoLongerRequired(p) => write!(f, "field {p} is no longer required"),
            Self::ChangedEnum(p) => write!(f, "allowed values of {p} changed"),
            Self::ChangedPattern(p) => write!(f, "pattern of {p} changed"),
        }
    }
}

/// Checks that `new` only adds optional fields to `old`; returns every incompatibility found.
pub fn check_backward_compatible(old: &Value, new: &Value) -> Result<(), Vec<Incompatibility>> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    compare(old, new, old, new, "$", &mut found, &mut seen);
    if found.is_empty() { Ok(()) } else { Err(found) }
}

fn resolve<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    let mut node = node;
    // Follow local references (`#/$defs/Name`), bounded so a cyclic schema cannot loop.
    for _ in 0..32 {
        let Some(target) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        match target.strip_prefix('#').and_then(|ptr| root.pointer(ptr)) {
            Some(next) => node = next,
            None => return node,
        }
    }
    node
}

fn type_of(node: &Value) -> String {
    match node.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            let mut names: Vec<_> = ts.iter().filter_map(Value::as_str).collect();
            names.sort_unstable();
            names.join("|")
        }
        _ => "any".to_owned(),
    }
}

/// Allowed values of an enumeration, whether written as `enum` or as `oneOf`/`anyOf` of `const`s
/// (schemars' form for documented variants).
fn enum_values(node: &Value) -> Option<BTreeSet<String>> {
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(Value::to_string).collect());
    }
    let branches = node
        .get("oneOf")
        .or_else(|| node.get("anyOf"))
        .and_then(Value::as_array)?;
    branches
        .iter()
        .map(|b| b.get("const").map(Value::to_string))
        .collect()
}

fn required(node: &Value) -> BTreeSet<&str> {
    node.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn compare<'a>(
    old: &'a Value,
    new: &'a Value,
    old_root: &'a Value,
    new_root: &'a Value,
    path: &str,
    found: &mut Vec<Incompatibility>,
    seen: &mut BTreeSet<(String, String)>,
) {
    let (old, new) = (resolve(old, old_root), resolve(new, new_root));
    let (old_type, new_type) = (type_of(old), type_of(new));
    if old_type != new_type {
        found.push(Incompatibility::ChangedType {
            path: path.to_owned(),
            old: old_type,
            new: new_type,
        });
        return;
    }
    if enum_values(old) != enum_values(new) {
        found.push(Incompatibility::ChangedEnum(path.to_owned()));
    }
    if old.get("pattern") != new.get("pattern") {
        found.push(Incompatibility::ChangedPattern(path.to_owned()));
    }
    // Recursive types: compare each (old, new) pair of nodes once.
    let visit = (format!("{old:p}"), format!("{new:p}"));
    if !seen.insert(visit) {
        return;
    }
    let empty = serde_json::Map::new();
    let old_props = old
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let new_props = new
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, old_field) in old_props {
        let field_path = format!("{path}.{name}");
        match new_props.get(name) {
            None => found.push(Incompatibility::RemovedField(field_path)),
            Some(new_field) => compare(
                old_field,
                new_field,
                old_root,
                new_root,
                &field_path,
                found,
                seen,
            ),
        }
    }
    let (old_req, new_req) = (required(old), required(new));
    for name in new_req.difference(&old_req) {
        found.push(Incompatibility::NewRequiredField(format!("{path}.{name}")));
    }
    for name in old_req.difference(&new_req) {
        found.push(Incompatibility::NoLongerRequired(format!("{path}.{name}")));
    }
    if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
        compare(
            old_items,
            new_items,
            old_root,
            new_root,
            &format!("{path}[]"),
            found,
            seen,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": { "$ref": "#/$defs/Data" }
            },
            "$defs": {
                "Data": {
                    "type": "object",
                    "required": ["order-id", "total"],
                    "properties": {
                        "order-id": { "type": "string" },
                        "total": { "type": "string", "pattern": "^[0-9]+$" },
                        "status": { "type": "string", "enum": ["Open", "Picked"] },
                        "items": { "type": "array", "items": { "type": "object",
                            "required": ["sku"], "properties": { "sku": { "type": "string" } } } }
                    }
                }
            }
        })
    }

    #[test]
    fn identical_schemas_are_compatible() {
        assert_eq!(check_backward_compatible(&base(), &base()), Ok(()));
    }

    #[test]
    fn a_new_optional_field_is_compatible() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]["note"] = json!({ "type": "string" });
        assert_eq!(check_backward_compatible(&base(), &new), Ok(()));
    }

    #[test]
    fn a_removed_field_is_breaking() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        let err = check_backward_compatible(&base(), &new).unwrap_err();
        assert_eq!(
            err,
            vec![Incompatibility::RemovedField("$.data.status".into())]
        );
    }

    #[test]
    fn a_changed_type_is_breaking() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]["total"] = json!({ "type": "number" });
        let err = check_backward_compatible(&base(), &new).unwrap_err();
        assert!(
            matches!(&err[0], Incompatibility::ChangedType { path, .. } if path == "$.data.total")
        );
    }

    #[test]
    fn a_new_required_field_is_breaking() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]["note"] = json!({ "type": "string" });
        new["$defs"]["Data"]["required"] = json!(["order-id", "total", "note"]);
        let err = check_backward_compatible(&base(), &new).unwrap_err();
        assert_eq!(
            err,
            vec![Incompatibility::NewRequiredField("$.data.note".into())]
        );
    }

    #[test]
    fn a_nested_array_item_change_is_found() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]["items"]["items"]["properties"]["sku"] =
            json!({ "type": "integer" });
        let err = check_backward_compatible(&base(), &new).unwrap_err();
        assert!(
            matches!(&err[0], Incompatibility::ChangedType { path, .. } if path == "$.data.items[].sku")
        );
    }

    #[test]
    fn enum_and_pattern_changes_are_breaking() {
        let mut new = base();
        new["$defs"]["Data"]["properties"]["status"]["enum"] = json!(["Open"]);
        new["$defs"]["Data"]["properties"]["total"]["pattern"] = json!("^[0-9]{1,3}$");
        let err = check_backward_compatible(&base(), &new).unwrap_err();
        assert_eq!(err.len(), 2);
    }

    #[test]
    fn a_removed_one_of_const_variant_is_breaking() {
        let variants = |names: &[&str]| json!({ "oneOf": names.iter().map(|n| json!({"const": n, "type": "string"})).collect::<Vec<_>>(), "type": "string" });
        let mut old = base();
        old["$defs"]["Data"]["properties"]["carrier"] = variants(&["UPS", "DHL"]);
        let mut new = old.clone();
        assert_eq!(check_backward_compatible(&old, &new), Ok(()));
        new["$defs"]["Data"]["properties"]["carrier"] = variants(&["UPS"]);
        let err = check_backward_compatible(&old, &new).unwrap_err();
        assert_eq!(
            err,
            vec![Incompatibility::ChangedEnum("$.data.carrier".into())]
        );
    }

    #[test]
    fn every_detail_type_has_a_titled_schema() {
        let all = all();
        assert_eq!(all.len(), crate::detail_type::ALL.len());
        for (dt, schema) in all {
            assert_eq!(schema["title"], dt);
            assert!(schema["properties"]["metadata"].is_object());
        }
    }
}
