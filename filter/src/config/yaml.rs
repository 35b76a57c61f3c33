//! The plugin configuration's YAML (JSON is YAML) read into `serde_json::Value`s, as strictly as
//! kubectl reads a manifest (sigs.k8s.io/yaml `YAMLToJSONStrict`, go-yaml v2 `UnmarshalStrict`):
//!
//! - a key given twice in one mapping is an error at any depth, named by its path. Last-wins
//!   would let `mtls: {mode: STRICT, mode: PERMISSIVE}` read as STRICT and enforce PERMISSIVE,
//!   and Istio never sees such a resource, since kubectl refuses it;
//! - anchors and aliases are expanded;
//! - a YAML 1.1 merge key (`<<: *base`, or `<<: [*a, *b]`) adds the merged mapping's keys, and a
//!   key both merged and given, or merged twice, is a duplicate, as go-yaml's strict mode has it
//!   (it sets merged keys first and refuses any key already set). A quoted `"<<"` is read as a
//!   merge key too; no Istio field or Kubernetes label is named `<<`.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::ConfigError;
use crate::jwt::json::strict_value_visitor;

/// The merge key of YAML 1.1 (`tag:yaml.org,2002:merge`).
const MERGE_KEY: &str = "<<";

/// Parses one YAML document; `path` names it in errors (`""` for the top of the plugin
/// configuration).
pub(super) fn parse(text: &str, path: &str) -> Result<Value, ConfigError> {
    let found = Cell::new(None);
    let de = serde_yaml_ng::Deserializer::from_str(text);
    read(de, path, &found).map_err(|e| match e {
        ReadError::Duplicate(dup) => dup,
        ReadError::Yaml(e) => ConfigError::Syntax(e.to_string()),
    })
}

/// Parses a stream of `---`-separated YAML documents, leaving out empty ones; `path_of(i)`
/// names document `i`.
pub(super) fn parse_documents(
    text: &str,
    path_of: impl Fn(usize) -> String,
) -> Result<Vec<(String, Value)>, ConfigError> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let path = path_of(i);
        let found = Cell::new(None);
        let value = read(de, &path, &found).map_err(|e| match e {
            ReadError::Duplicate(dup) => dup,
            ReadError::Yaml(e) => ConfigError::field(path.clone(), e.to_string()),
        })?;
        if !value.is_null() {
            docs.push((path, value));
        }
    }
    Ok(docs)
}

/// Reads one document; a duplicate key comes back as its own field error, anything else as
/// the YAML error.
fn read(
    de: serde_yaml_ng::Deserializer<'_>,
    path: &str,
    found: &Cell<Option<ConfigError>>,
) -> Result<Value, ReadError> {
    let seed = Strict {
        path: path.to_owned(),
        found,
    };
    seed.deserialize(de).map_err(|e| match found.take() {
        Some(dup) => ReadError::Duplicate(dup),
        None => ReadError::Yaml(e),
    })
}

enum ReadError {
    Duplicate(ConfigError),
    Yaml(serde_yaml_ng::Error),
}

/// One node at `path`; a duplicate is recorded in `found` (the YAML error it aborts with would
/// only carry a line and column).
struct Strict<'a> {
    path: String,
    found: &'a Cell<Option<ConfigError>>,
}

impl Strict<'_> {
    fn child(&self, segment: fmt::Arguments<'_>) -> String {
        if self.path.is_empty() {
            segment.to_string()
        } else {
            format!("{}{segment}", self.path)
        }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn duplicate<E: de::Error>(&self, key: &str, how: &str) -> E {
        self.found.set(Some(ConfigError::field(
            self.key_path(key),
            format!(
                "`{key}` is given twice in one mapping{how}; kubectl refuses duplicate keys, \
                 and reading one of them would silently drop the other: keep one"
            ),
        )));
        E::custom(format_args!("duplicate key `{key}`"))
    }
}

strict_value_visitor!(Strict<'_>);

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    // As serde_json's own `Value`: `.nan` and `.inf` have no JSON number, so they are `null`.
    strict_value_visitor!(scalars "a YAML value");

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::from)
            .map_err(|_| E::custom(format_args!("integer {v} is out of range")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(Value::from)
            .map_err(|_| E::custom(format_args!("integer {v} is out of range")))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let item = Strict {
                path: self.child(format_args!("[{}]", items.len())),
                found: self.found,
            };
            match seq.next_element_seed(item)? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict {
                path: self.key_path(&key),
                found: self.found,
            })?;
            if key == MERGE_KEY {
                let merged = match value {
                    Value::Object(m) => vec![m],
                    Value::Array(list) => list
                        .into_iter()
                        .map(|v| match v {
                            Value::Object(m) => Ok(m),
                            _ => Err(()),
                        })
                        .collect::<Result<_, ()>>()
                        .map_err(|()| self.merge_not_a_mapping::<A::Error>())?,
                    _ => return Err(self.merge_not_a_mapping()),
                };
                for (k, v) in merged.into_iter().flatten() {
                    if object.contains_key(&k) {
                        return Err(self.duplicate(&k, " (once through the `<<` merge key)"));
                    }
                    object.insert(k, v);
                }
                continue;
            }
            if object.contains_key(&key) {
                return Err(self.duplicate(&key, ""));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

impl Strict<'_> {
    fn merge_not_a_mapping<E: de::Error>(&self) -> E {
        self.found.set(Some(ConfigError::field(
            self.key_path(MERGE_KEY),
            "a merge key needs a mapping or a list of mappings (an alias such as `*base`)",
        )));
        E::custom("bad merge")
    }
}
