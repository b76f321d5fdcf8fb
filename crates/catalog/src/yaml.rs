//! A small YAML writer for the generated documents.
//!
//! Why not a YAML serializer crate: they leave strings plain whenever a YAML 1.2 parser would
//! read them back as strings, so `2026-11-23T10:47:00Z` or `1.0` come out unquoted, and YAML 1.1
//! readers (js-yaml's default schema, which much of the AsyncAPI tooling uses) turn the first
//! into a date. This writer leaves a string plain only when it starts with a letter and has none
//! of YAML's indicator characters, and double-quotes everything else (JSON escaping is valid
//! YAML), so every reader gets strings back. Mappings keep the order they are built in; JSON
//! values are converted with their keys sorted, whatever order `serde_json` keeps them in in a
//! given build (another crate of the workspace turns on its `preserve_order`), so a checked-in
//! file is byte for byte what the generator writes on every machine.

use serde_json::Value;

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// An ordered mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Map(Vec<(String, Node)>);

impl Map {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `key: value` after the keys already there.
    pub(crate) fn with(mut self, key: &str, value: impl Into<Node>) -> Self {
        self.insert(key, value);
        self
    }

    /// Adds `key: value` in place.
    pub(crate) fn insert(&mut self, key: &str, value: impl Into<Node>) {
        self.0.push((key.to_owned(), value.into()));
    }
}

impl From<Map> for Node {
    fn from(map: Map) -> Self {
        Node::Map(map)
    }
}

impl From<&str> for Node {
    fn from(text: &str) -> Self {
        Node::String(text.to_owned())
    }
}

impl From<String> for Node {
    fn from(text: String) -> Self {
        Node::String(text)
    }
}

impl From<Vec<Node>> for Node {
    fn from(items: Vec<Node>) -> Self {
        Node::Seq(items)
    }
}

/// A JSON value as a node, object keys sorted.
pub(crate) fn from_json(value: &Value) -> Node {
    match value {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => Node::Number(n.clone()),
        Value::String(s) => Node::String(s.clone()),
        Value::Array(items) => Node::Seq(items.iter().map(from_json).collect()),
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            Node::Map(Map(keys
                .into_iter()
                .map(|k| (k.clone(), from_json(&object[k])))
                .collect()))
        }
    }
}

/// A JSON value as compact JSON text, object keys sorted.
pub(crate) fn sorted_json(value: &Value) -> String {
    fn sort(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(sort).collect()),
            Value::Object(object) => {
                let mut keys: Vec<&String> = object.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sort(&object[k])))
                        .collect(),
                )
            }
            other => other.clone(),
        }
    }
    // With `preserve_order` on, insertion order is the sorted order; without it, the map sorts.
    sort(value).to_string()
}

/// Words YAML 1.1 or 1.2 readers take for booleans or null.
const RESERVED: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
];

/// Whether `text` can be written as a plain scalar and read back as this string by any YAML
/// reader. Quotes and backslashes are literal inside a plain scalar (it starts with a letter).
fn plain(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || matches!(first, '_' | '$' | '/'))
        && !text.ends_with(' ')
        && !RESERVED.contains(&text.to_ascii_lowercase().as_str())
        && text.chars().all(|c| {
            !c.is_control()
                && !line_break(c)
                && !matches!(c, ':' | '#' | '{' | '}' | '[' | ']' | ',')
        })
}

fn quoted(text: &str) -> String {
    // JSON's escapes are a subset of YAML's double-quoted ones.
    Value::String(text.to_owned()).to_string()
}

/// Whether a multi-line string can be a literal block (`|-`) read back unchanged.
fn literal_block(text: &str) -> bool {
    text.contains('\n')
        && !text.ends_with('\n')
        // The first line with text sets the block's indentation.
        && text
            .split('\n')
            .find(|l| !l.is_empty())
            .is_some_and(|l| !l.starts_with(' '))
        && text.split('\n').all(|l| {
            !l.ends_with(' ') && l.chars().all(|c| !c.is_control() && !line_break(c))
        })
}

/// Characters some YAML readers take for line breaks or a byte order mark.
fn line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn scalar(node: &Node) -> Option<String> {
    Some(match node {
        Node::Null => "null".to_owned(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.to_string(),
        Node::String(s) if plain(s) => s.clone(),
        Node::String(s) if !literal_block(s) => quoted(s),
        Node::Seq(items) if items.is_empty() => "[]".to_owned(),
        Node::Map(map) if map.0.is_empty() => "{}".to_owned(),
        _ => return None,
    })
}

/// A string as a one-line YAML scalar: plain when that is safe, else double-quoted.
pub(crate) fn string(text: &str) -> String {
    if plain(text) {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// Writes `node` as the value following `key:` or `- ` (which the caller wrote), at `indent`.
fn value(out: &mut String, node: &Node, indent: usize) {
    if let Some(text) = scalar(node) {
        out.push(' ');
        out.push_str(&text);
        out.push('\n');
        return;
    }
    match node {
        Node::String(text) => {
            out.push_str(" |-\n");
            for line in text.split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        Node::Seq(items) => {
            out.push('\n');
            sequence(out, items, indent + 2);
        }
        Node::Map(map) => {
            out.push('\n');
            mapping(out, map, indent + 2);
        }
        _ => {}
    }
}

fn mapping(out: &mut String, map: &Map, indent: usize) {
    for (k, v) in &map.0 {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(k));
        out.push(':');
        value(out, v, indent);
    }
}

fn sequence(out: &mut String, items: &[Node], indent: usize) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            // The first entry shares the dash's line; the rest align with it.
            Node::Map(map) if !map.0.is_empty() => {
                let mut inner = String::new();
                mapping(&mut inner, map, indent + 2);
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            other => value(out, other, indent),
        }
    }
}

/// The YAML text of a document whose root is `map`.
pub(crate) fn to_string(map: &Map) -> String {
    let mut out = String::new();
    mapping(&mut out, map, 0);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(value: &Value) -> Value {
        let Node::Map(map) = from_json(value) else {
            panic!("not a map")
        };
        let text = to_string(&map);
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn strings_that_look_like_something_else_are_quoted() {
        let map = Map::new()
            .with("time", "2026-11-23T10:47:00Z")
            .with("version", "1")
            .with("flag", "yes")
            .with("empty", "")
            .with("code", "`detail` of x")
            .with("colon", "a: b")
            .with("plain", "com.orders@OrderCreated")
            .with("apostrophe", "the order's \"id\" \\d");
        assert_eq!(
            to_string(&map),
            "time: \"2026-11-23T10:47:00Z\"\nversion: \"1\"\nflag: \"yes\"\nempty: \"\"\n\
             code: \"`detail` of x\"\ncolon: \"a: b\"\nplain: com.orders@OrderCreated\n\
             apostrophe: the order's \"id\" \\d\n"
        );
    }

    #[test]
    fn nested_values_read_back_as_they_were_written() {
        let value = json!({
            "$ref": "#/components/schemas/X",
            "list": [{ "a": 1, "b": [true, null, -2.5] }, "x", [], {}, ["nested", ["deeper"]]],
            "text": "line one\n\nline three: with a colon\n  indented",
            "trailing": "ends with a newline\n",
            "spaces": "line with trailing space \nnext",
            "tab": "a\tb",
            "first line indented": "\n  two",
            "unicode": "rule → queue",
            "quotes": "it's \"quoted\" C:\\path",
            "map": { "inner": { "deep": "2026-11-23" } }
        });
        assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn multi_line_text_is_a_literal_block() {
        let map = Map::new().with("d", "one\n\ntwo");
        assert_eq!(to_string(&map), "d: |-\n  one\n\n  two\n");
    }
}
