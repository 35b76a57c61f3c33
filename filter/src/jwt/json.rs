//! JSON for untrusted documents (token header and payload, JWKS): like serde_json, except that
//! a repeated object key is an error at any depth, and one trailing comma before a closing
//! bracket is accepted. Envoy's parser (protobuf's JSON→Struct) does both (measured on Envoy
//! 1.40; jwt_verify_lib's own JWKS tests use trailing commas). Refusing duplicates matters:
//! accepting them would let `{"iss":"a","iss":"b"}` mean one thing to us and another to the
//! upstream that reads the forwarded token.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses a JSON object, refusing duplicate keys anywhere inside it.
pub fn parse_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    // The strict parse first: documents without trailing commas never pay for the rewrite.
    parse_strict(bytes).or_else(|| parse_strict(&without_trailing_commas(bytes)?))
}

/// The document with each comma that directly precedes a `}` or `]` (whitespace between
/// allowed) removed, outside strings; `None` when there is none, or when the comma follows
/// an opening bracket or another comma (`[,]` and `[1,,]` stay invalid).
fn without_trailing_commas(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    let mut last_significant = 0u8;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        if b == b',' && !matches!(last_significant, b'[' | b'{' | b',') {
            let next = bytes
                .get(i + 1..)
                .unwrap_or_default()
                .iter()
                .find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                changed = true;
                continue;
            }
        }
        if b == b'"' {
            in_string = true;
        }
        if !b.is_ascii_whitespace() {
            last_significant = b;
        }
        out.push(b);
    }
    changed.then_some(out)
}

fn parse_strict(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

struct StrictValue;

/// The parts of a strict `serde` → [`Value`] visitor that JSON (here) and the configuration's
/// YAML (`config::yaml::Strict`) share: the seed, and scalars as `serde_json::Value` makes them
/// (a float without a JSON number, NaN or ±inf, is `null`). Expanded in place, so each
/// visitor's code is what it would be written out.
macro_rules! strict_value_visitor {
    ($seed:ty) => {
        impl<'de> serde::de::DeserializeSeed<'de> for $seed {
            type Value = serde_json::Value;

            fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
                de.deserialize_any(self)
            }
        }
    };
    (scalars $expecting:literal) => {
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str($expecting)
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    };
}
pub(crate) use strict_value_visitor;

strict_value_visitor!(StrictValue);

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    strict_value_visitor!(scalars "a JSON value");

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_object;

    #[test]
    fn objects_parse_and_duplicates_at_any_depth_are_refused() {
        let ok = parse_object(br#"{"a":1,"b":[true,null,-2,1.5,"s",{"c":{}}]}"#).unwrap();
        assert_eq!(ok["b"][5]["c"], serde_json::json!({}));
        assert!(parse_object(br#"{"iss":"a","iss":"b"}"#).is_none());
        assert!(parse_object(br#"{"x":{"k":1,"k":1}}"#).is_none());
        assert!(parse_object(br#"{"x":[{"k":1,"k":2}]}"#).is_none());
        assert!(parse_object(b"[1]").is_none());
        assert!(parse_object(b"{} trailing").is_none());
        // One trailing comma is accepted, as protobuf's JSON parser accepts it.
        assert_eq!(
            parse_object(b"{\"a\":[1,2 ,] ,\n}").unwrap()["a"],
            serde_json::json!([1, 2])
        );
        assert_eq!(parse_object(br#"{"a":",}"}"#).unwrap()["a"], ",}");
        assert!(parse_object(b"{\"a\":[,]}").is_none());
        assert!(parse_object(b"{\"a\":[1,,]}").is_none());
        assert!(parse_object(b"{,}").is_none());
    }
}
