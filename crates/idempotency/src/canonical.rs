//! Canonical JSON written straight from any `Serialize` value, without building a
//! [`serde_json::Value`] first.
//!
//! The format is the one [`crate::hash_json`] documents (serde_json's compact text, every
//! object's keys sorted by their UTF-8 bytes, at every depth). Building a `Value` tree to sort it
//! costs an allocation per key and per string; this writer allocates once per object instead,
//! which made hashing an event's payload the largest single cost of a consumer's record.
//!
//! It covers what typed events and `Value`s serialize to. Anything whose `Value` form is not
//! obvious (floats, 128-bit integers, serde_json's private raw-value and number tokens, unusual
//! map keys) is [`Unsupported`], and the caller falls back to the `Value` path, so the bytes
//! are always exactly what `serde_json::to_value` plus sorting would give (a property test below
//! holds the two paths equal).

use std::borrow::Cow;
use std::fmt::Display;
use std::io::Write as _;

use serde::ser::{self, Serialize};

/// The value needs the general (`Value`) path.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not supported by the direct canonical writer")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: Display>(_msg: T) -> Self {
        Unsupported
    }
}

/// Appends the canonical JSON of `value` to `out`. On `Err`, `out` holds partial output: the
/// caller clears it and takes the general path.
pub(crate) fn write<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    value.serialize(Canonical { out })
}

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), Unsupported> {
    // Into a Vec this cannot fail; an error is still reported rather than ignored.
    serde_json::to_writer(&mut *out, s).map_err(|_| Unsupported)
}

fn write_display(out: &mut Vec<u8>, value: impl Display) -> Result<(), Unsupported> {
    write!(out, "{value}").map_err(|_| Unsupported)
}

/// serde_json's private tokens (raw values, arbitrary-precision numbers) are structs whose
/// `Value` form is not their field: only the general path reads them right.
fn is_private_token(name: &str) -> bool {
    name.starts_with("$serde_json::private::")
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        write_display(self.out, v)
    }
    // 128-bit integers and floats: their `Value` form has rules of its own (range limits,
    // non-finite floats as null, float rendering); the general path applies them.
    fn serialize_i128(self, _v: i128) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u128(self, _v: u128) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        write_str(self.out, v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        self.out.push(b'[');
        for (i, byte) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_display(self.out, byte)?;
        }
        self.out.push(b']');
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        write_str(self.out, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        if is_private_token(name) {
            return Err(Unsupported);
        }
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        // `{"variant": value}`: one key, nothing to sort.
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.push(b':');
        value.serialize(Canonical {
            out: &mut *self.out,
        })?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Unsupported> {
        self.out.push(b'[');
        Ok(Seq {
            out: self.out,
            first: true,
            variant: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Seq<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, Unsupported> {
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.extend_from_slice(b":[");
        Ok(Seq {
            out: self.out,
            first: true,
            variant: true,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Object<'a>, Unsupported> {
        Ok(Object::new(self.out, false, len.unwrap_or(0)))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Object<'a>, Unsupported> {
        if is_private_token(name) {
            return Err(Unsupported);
        }
        Ok(Object::new(self.out, false, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a>, Unsupported> {
        self.out.push(b'{');
        write_str(self.out, variant)?;
        self.out.push(b':');
        Ok(Object::new(self.out, true, len))
    }
}

/// An array being written (elements keep their order).
pub(crate) struct Seq<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    /// Inside `{"variant":[...]}`: one more brace to close.
    variant: bool,
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        value.serialize(Canonical {
            out: &mut *self.out,
        })
    }

    fn close(self) -> Result<(), Unsupported> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// serde's four sequence traits differ only in the name of the element method.
macro_rules! sequence_impl {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.element(value)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.close()
            }
        }
    )*};
}

sequence_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

/// An object being written: values go to a scratch buffer as they come, then the entries are
/// sorted by key and copied out in order.
pub(crate) struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Inside `{"variant":{...}}`: one more brace to close.
    variant: bool,
    /// Each entry's key (a struct's field names are borrowed: no allocation per field) and the
    /// span of its value in `values`.
    entries: Vec<(Cow<'static, str>, std::ops::Range<usize>)>,
    values: Vec<u8>,
    /// A key given by `serialize_key`, waiting for its value.
    pending_key: Option<String>,
}

impl<'a> Object<'a> {
    /// `len`: the number of entries announced (sizes the buffers; 0 when unknown).
    fn new(out: &'a mut Vec<u8>, variant: bool, len: usize) -> Self {
        Self {
            out,
            variant,
            entries: Vec::with_capacity(len),
            // A typical value (an id, a timestamp, an amount) is under 32 bytes of JSON.
            values: Vec::with_capacity(len.saturating_mul(32)),
            pending_key: None,
        }
    }

    fn entry<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), Unsupported> {
        let start = self.values.len();
        value.serialize(Canonical {
            out: &mut self.values,
        })?;
        self.entries.push((key, start..self.values.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), Unsupported> {
        if self.pending_key.is_some() {
            return Err(Unsupported);
        }
        // Stable, so among repeated keys the last stays last: like a map insert, it wins.
        self.entries
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        self.out.push(b'{');
        let mut first = true;
        for (i, (key, span)) in self.entries.iter().enumerate() {
            if self.entries.get(i + 1).is_some_and(|next| next.0 == *key) {
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            write_str(self.out, key)?;
            self.out.push(b':');
            self.out
                .extend_from_slice(self.values.get(span.clone()).ok_or(Unsupported)?);
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.pending_key = Some(key.serialize(MapKey)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        let key = self.pending_key.take().ok_or(Unsupported)?;
        self.entry(Cow::Owned(key), value)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.close()
    }
}

/// A struct and a struct variant take their fields the same way.
macro_rules! struct_impl {
    ($($trait:ident),* $(,)?) => {$(
        impl ser::$trait for Object<'_> {
            type Ok = ();
            type Error = Unsupported;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Unsupported> {
                self.entry(Cow::Borrowed(key), value)
            }
            fn end(self) -> Result<(), Unsupported> {
                self.close()
            }
        }
    )*};
}

struct_impl!(SerializeStruct, SerializeStructVariant);

/// Map keys: strings, and what serde_json itself turns into string keys the same way
/// (characters, integers). Anything else takes the general path.
struct MapKey;

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Unsupported;
    type SerializeSeq = ser::Impossible<String, Unsupported>;
    type SerializeTuple = ser::Impossible<String, Unsupported>;
    type SerializeTupleStruct = ser::Impossible<String, Unsupported>;
    type SerializeTupleVariant = ser::Impossible<String, Unsupported>;
    type SerializeMap = ser::Impossible<String, Unsupported>;
    type SerializeStruct = ser::Impossible<String, Unsupported>;
    type SerializeStructVariant = ser::Impossible<String, Unsupported>;

    fn serialize_str(self, v: &str) -> Result<String, Unsupported> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Unsupported> {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Unsupported> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<String, Unsupported> {
        if is_private_token(name) {
            return Err(Unsupported);
        }
        value.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_i128(self, _v: i128) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_u128(self, _v: u128) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f32(self, _v: f32) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_none(self) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit(self) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{Value, json};

    use crate::request::canonical_via_value;

    fn direct<T: Serialize + ?Sized>(value: &T) -> Option<String> {
        let mut out = Vec::new();
        super::write(value, &mut out).ok()?;
        String::from_utf8(out).ok()
    }

    fn via_value<T: Serialize + ?Sized>(value: &T) -> String {
        canonical_via_value(&serde_json::to_value(value).unwrap())
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    enum Kind {
        Unit,
        Newtype(u32),
        Tuple(u8, String),
        Struct { zeta: bool, alpha: Option<i64> },
    }

    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Typed {
        order_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        causation_id: Option<String>,
        quantity: u32,
        delta: i64,
        kinds: Vec<Kind>,
        by_number: BTreeMap<u16, char>,
        unit: (),
        pair: (bool, &'static str),
        bytes: serde_bytes_like::Bytes,
        value: Value,
    }

    mod serde_bytes_like {
        /// Serializes through `serialize_bytes`.
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[test]
    fn typed_structs_enums_and_maps_write_what_the_value_path_writes() {
        let typed = Typed {
            order_id: "1073459984 \"quoted\" \u{1f} é".into(),
            causation_id: None,
            quantity: 3,
            delta: -7,
            kinds: vec![
                Kind::Unit,
                Kind::Newtype(9),
                Kind::Tuple(1, "x".into()),
                Kind::Struct {
                    zeta: true,
                    alpha: None,
                },
            ],
            by_number: BTreeMap::from([(10, 'a'), (2, 'b')]),
            unit: (),
            pair: (false, "p"),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            value: json!({"b": [1, {"d": null, "c": "s"}], "a": -1}),
        };
        let text = direct(&typed).expect("supported");
        assert_eq!(text, via_value(&typed));
        assert!(text.starts_with(r#"{"by-number":{"10":"a","2":"b"},"bytes":[0,255],"delta":-7,"#));
    }

    #[test]
    fn floats_and_private_tokens_take_the_value_path() {
        assert!(direct(&1.5f64).is_none());
        assert!(direct(&json!({"price": 1.5})).is_none());
        // What serde_json's RawValue serializes to (its text is the JSON, not a string).
        #[derive(Serialize)]
        #[serde(rename = "$serde_json::private::RawValue")]
        struct Raw {
            #[serde(rename = "$serde_json::private::RawValue")]
            text: &'static str,
        }
        assert!(direct(&Raw { text: "{\"b\":1}" }).is_none());
        assert!(direct(&u128::MAX).is_none());
    }

    #[test]
    fn a_repeated_map_key_keeps_its_last_value_like_a_map_insert() {
        struct Repeated;
        impl Serialize for Repeated {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("k", &1)?;
                map.serialize_entry("a", &0)?;
                map.serialize_entry("k", &2)?;
                map.end()
            }
        }
        assert_eq!(direct(&Repeated).as_deref(), Some(r#"{"a":0,"k":2}"#));
        assert_eq!(direct(&Repeated).unwrap(), via_value(&Repeated));
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_float_free_json_writes_what_the_value_path_writes(value in any_value()) {
            prop_assert_eq!(direct(&value).expect("no floats"), via_value(&value));
        }
    }
}
