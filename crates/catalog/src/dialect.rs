//! JSON Schema 2020-12 (what schemars writes) to the older dialects the catalog's readers take:
//! draft 7 (AsyncAPI's schema object is a superset of it) and draft 4 (the EventBridge Schema
//! Registry's `JSONSchemaDraft4`).
//!
//! The conversion keeps every validation rule and every description:
//! - `$defs` become named definitions and `#/$defs/X` references point at them;
//! - a `$ref` with sibling keywords (schemars puts a field's description beside the reference
//!   to its type): drafts 4 and 7 ignore everything next to a `$ref`. In draft 7 the reference
//!   moves into `allOf: [{$ref}]` beside those keywords, so documentation keeps every field's
//!   description. In draft 4 (read by code generators, which turn a one-branch `allOf` into an
//!   extra type) a reference whose siblings are only annotations (`description`, `title`, ...)
//!   stays bare and the annotations go, as a draft-4 reader would ignore them anyway; siblings
//!   that validate still move the reference into `allOf`;
//! - boolean schemas become `{}` and `{"not": {}}`;
//! - draft 4 only: `const` becomes a one-value `enum`, numeric `exclusiveMinimum` /
//!   `exclusiveMaximum` become `minimum` / `maximum` with the boolean flag, and annotations
//!   draft 4 does not know (`examples`, `deprecated`, `readOnly`, `writeOnly`, `$comment`) are
//!   dropped (they never changed what validates).
//!
//! Any other keyword is refused with the schema path, so a new schemars feature cannot slip
//! through half translated.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::CatalogError;

/// A target dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON Schema draft 4.
    Draft4,
    /// JSON Schema draft 7 (and AsyncAPI's schema object).
    Draft7,
}

impl Dialect {
    /// The dialect's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Draft4 => "JSON Schema draft 4",
            Self::Draft7 => "JSON Schema draft 7",
        }
    }

    /// Its `$schema` URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Draft4 => "http://json-schema.org/draft-04/schema#",
            Self::Draft7 => "http://json-schema.org/draft-07/schema#",
        }
    }
}

/// A converted schema: the root schema object and its definitions, references rewritten to
/// the prefix the caller keeps the definitions under.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The root schema, without `$schema` and `$defs`.
    pub root: Map<String, Value>,
    /// The `$defs`, converted, by name.
    pub definitions: BTreeMap<String, Value>,
}

/// Keywords copied as they are: their meaning is the same from draft 4 to 2020-12.
const SAME_IN_EVERY_DRAFT: &[&str] = &[
    "type",
    "title",
    "description",
    "default",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "multipleOf",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Annotations draft 7 and AsyncAPI know and draft 4 does not.
const ANNOTATIONS_AFTER_DRAFT_4: &[&str] = &[
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Keywords that describe and never validate.
const ANNOTATIONS: &[&str] = &["title", "description", "default"];

struct Converter<'a> {
    name: &'a str,
    dialect: Dialect,
    definitions_at: &'a str,
}

/// Converts `schema` (draft 2020-12, named `name` in errors) to `dialect`, rewriting
/// `#/$defs/X` to `{definitions_at}X` (e.g. `#/definitions/` or `#/components/schemas/`).
pub fn convert(
    name: &str,
    schema: &Value,
    dialect: Dialect,
    definitions_at: &str,
) -> Result<Converted, CatalogError> {
    let converter = Converter {
        name,
        dialect,
        definitions_at,
    };
    let Some(root) = schema.as_object() else {
        return Err(converter.unsupported("", "a root that is not an object"));
    };
    let mut definitions = BTreeMap::new();
    if let Some(defs) = root.get("$defs") {
        let Some(defs) = defs.as_object() else {
            return Err(converter.unsupported("", "$defs"));
        };
        for (def_name, def) in defs {
            let at = format!("/$defs/{def_name}");
            definitions.insert(def_name.clone(), converter.schema(def, &at)?);
        }
    }
    let body: Map<String, Value> = root
        .iter()
        .filter(|(k, _)| *k != "$schema" && *k != "$defs")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let root = match converter.schema(&Value::Object(body), "")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(Converted { root, definitions })
}

impl Converter<'_> {
    fn unsupported(&self, at: &str, keyword: &str) -> CatalogError {
        CatalogError::UnsupportedKeyword {
            schema: self.name.to_owned(),
            at: if at.is_empty() { "/".into() } else { at.into() },
            keyword: keyword.to_owned(),
            dialect: self.dialect.name(),
        }
    }

    fn schema(&self, node: &Value, at: &str) -> Result<Value, CatalogError> {
        let object = match node {
            Value::Bool(true) => return Ok(json!({})),
            Value::Bool(false) => return Ok(json!({ "not": {} })),
            Value::Object(object) => object,
            _ => return Err(self.unsupported(at, "a schema that is neither object nor boolean")),
        };
        let mut out = Map::new();
        let mut reference = None;
        for (key, value) in object {
            let here = format!("{at}/{key}");
            match key.as_str() {
                "$ref" => reference = Some(self.reference(value, at)?),
                k if SAME_IN_EVERY_DRAFT.contains(&k) => {
                    out.insert(key.clone(), value.clone());
                }
                "properties" | "patternProperties" => {
                    let Some(fields) = value.as_object() else {
                        return Err(self.unsupported(at, key));
                    };
                    let mut converted = Map::new();
                    for (field, schema) in fields {
                        converted.insert(
                            field.clone(),
                            self.schema(schema, &format!("{here}/{field}"))?,
                        );
                    }
                    out.insert(key.clone(), Value::Object(converted));
                }
                "additionalProperties" => {
                    // A boolean is valid here in every draft.
                    let converted = match value {
                        Value::Bool(_) => value.clone(),
                        other => self.schema(other, &here)?,
                    };
                    out.insert(key.clone(), converted);
                }
                // In 2020-12 `items` is always one schema for every item (tuples are
                // `prefixItems`), which is what a single schema means in drafts 4 and 7.
                "items" | "not" => {
                    out.insert(key.clone(), self.schema(value, &here)?);
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let Some(branches) = value.as_array() else {
                        return Err(self.unsupported(at, key));
                    };
                    let converted = branches
                        .iter()
                        .enumerate()
                        .map(|(i, b)| self.schema(b, &format!("{here}/{i}")))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.insert(key.clone(), Value::Array(converted));
                }
                "const" => match self.dialect {
                    Dialect::Draft7 => {
                        out.insert(key.clone(), value.clone());
                    }
                    Dialect::Draft4 => {
                        if object.contains_key("enum") {
                            return Err(self.unsupported(at, "const beside enum"));
                        }
                        out.insert("enum".into(), Value::Array(vec![value.clone()]));
                    }
                },
                "exclusiveMinimum" | "exclusiveMaximum" => match self.dialect {
                    Dialect::Draft7 => {
                        out.insert(key.clone(), value.clone());
                    }
                    Dialect::Draft4 => {
                        let bound = if key == "exclusiveMinimum" {
                            "minimum"
                        } else {
                            "maximum"
                        };
                        if object.contains_key(bound) || !value.is_number() {
                            return Err(self.unsupported(at, key));
                        }
                        out.insert(bound.into(), value.clone());
                        out.insert(key.clone(), Value::Bool(true));
                    }
                },
                k if ANNOTATIONS_AFTER_DRAFT_4.contains(&k) => {
                    if self.dialect == Dialect::Draft7 {
                        out.insert(key.clone(), value.clone());
                    }
                }
                _ => return Err(self.unsupported(at, key)),
            }
        }
        if let Some(reference) = reference {
            let target = json!({ "$ref": reference });
            let only_annotations = out.keys().all(|k| ANNOTATIONS.contains(&k.as_str()));
            if self.dialect == Dialect::Draft4 && only_annotations {
                out.clear();
            }
            if out.is_empty() {
                out.insert("$ref".into(), Value::String(reference));
            } else {
                match out.get_mut("allOf") {
                    Some(Value::Array(branches)) => branches.insert(0, target),
                    _ => {
                        out.insert("allOf".into(), Value::Array(vec![target]));
                    }
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn reference(&self, value: &Value, at: &str) -> Result<String, CatalogError> {
        value
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .filter(|name| !name.contains('/'))
            .map(|name| format!("{}{name}", self.definitions_at))
            .ok_or_else(|| self.unsupported(at, &format!("$ref {value}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft4(schema: Value) -> Result<Converted, CatalogError> {
        convert("T", &schema, Dialect::Draft4, "#/definitions/")
    }

    #[test]
    fn definitions_move_and_references_follow() {
        let c = draft4(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": { "a": { "$ref": "#/$defs/A" } },
            "$defs": { "A": { "type": "string" } }
        }))
        .unwrap();
        assert_eq!(
            Value::Object(c.root),
            json!({ "type": "object", "properties": { "a": { "$ref": "#/definitions/A" } } })
        );
        assert_eq!(c.definitions["A"], json!({ "type": "string" }));
    }

    #[test]
    fn a_described_reference_keeps_its_description_beside_an_all_of() {
        let c = convert(
            "T",
            &json!({ "properties": { "a": { "$ref": "#/$defs/A", "description": "The a." } } }),
            Dialect::Draft7,
            "#/components/schemas/",
        )
        .unwrap();
        assert_eq!(
            c.root["properties"]["a"],
            json!({ "description": "The a.", "allOf": [{ "$ref": "#/components/schemas/A" }] })
        );
    }

    #[test]
    fn a_described_reference_is_bare_in_draft_4_unless_a_sibling_validates() {
        let c = draft4(json!({ "properties": {
            "a": { "$ref": "#/$defs/A", "description": "The a." },
            "b": { "$ref": "#/$defs/A", "description": "The b.", "maxLength": 3 }
        } }))
        .unwrap();
        assert_eq!(
            c.root["properties"]["a"],
            json!({ "$ref": "#/definitions/A" })
        );
        assert_eq!(
            c.root["properties"]["b"],
            json!({ "description": "The b.", "maxLength": 3, "allOf": [{ "$ref": "#/definitions/A" }] })
        );
    }

    #[test]
    fn const_is_an_enum_in_draft_4_and_stays_in_draft_7() {
        let schema = json!({ "oneOf": [{ "const": "UPS", "type": "string" }] });
        assert_eq!(
            draft4(schema.clone()).unwrap().root["oneOf"][0],
            json!({ "enum": ["UPS"], "type": "string" })
        );
        let c = convert("T", &schema, Dialect::Draft7, "#/").unwrap();
        assert_eq!(c.root["oneOf"][0]["const"], "UPS");
    }

    #[test]
    fn numeric_exclusive_bounds_become_draft_4_flags() {
        let c = draft4(json!({ "type": "integer", "exclusiveMinimum": 0 })).unwrap();
        assert_eq!(
            Value::Object(c.root),
            json!({ "type": "integer", "minimum": 0, "exclusiveMinimum": true })
        );
    }

    #[test]
    fn boolean_schemas_become_objects() {
        let c = draft4(json!({ "properties": { "any": true, "none": false } })).unwrap();
        assert_eq!(c.root["properties"]["any"], json!({}));
        assert_eq!(c.root["properties"]["none"], json!({ "not": {} }));
    }

    #[test]
    fn field_names_are_never_taken_for_keywords() {
        let c = draft4(json!({ "properties": { "const": { "type": "string" } } })).unwrap();
        assert_eq!(c.root["properties"]["const"], json!({ "type": "string" }));
    }

    #[test]
    fn untranslatable_keywords_are_refused_with_their_path() {
        let err = draft4(json!({ "properties": { "pair": { "prefixItems": [] } } }))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "schema T: /properties/pair: cannot convert `prefixItems` to JSON Schema draft 4"
        );
        let err = draft4(json!({ "$ref": "other.json" }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("$ref \"other.json\""), "{err}");
    }

    #[test]
    fn draft_4_drops_later_annotations_and_draft_7_keeps_them() {
        let schema = json!({ "type": "string", "deprecated": true, "examples": ["x"] });
        assert_eq!(
            Value::Object(draft4(schema.clone()).unwrap().root),
            json!({ "type": "string" })
        );
        let c = convert("T", &schema, Dialect::Draft7, "#/").unwrap();
        assert_eq!(Value::Object(c.root), schema);
    }
}
