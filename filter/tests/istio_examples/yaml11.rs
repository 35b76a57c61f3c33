//! YAML read as `kubectl apply` reads it: sigs.k8s.io/yaml's `YAMLToJSON`, which decodes with
//! go-yaml v2 (YAML 1.1 scalar resolution) into `interface{}` and converts the result to JSON.
//!
//! Parsing is yaml-rust2's (its events keep each scalar's style); resolving a plain scalar
//! follows go-yaml v2's `resolve` (kubernetes-sigs/yaml `goyaml.v2/resolve.go`):
//! - the words `y Y yes Yes YES true True TRUE on On ON` are `true`, `n N no No NO false False
//!   FALSE off Off OFF` are `false`, `"" ~ null Null NULL` are null, `.nan .inf -.inf` (three
//!   spellings each) are floats; other spellings (`tRUE`) stay strings;
//! - a scalar starting with a digit or a sign, underscores removed, is an integer by Go's
//!   `strconv.ParseInt(s, 0, 64)` (`0x`, `0o`, `0b` prefixes, and a leading `0` is octal:
//!   `0000` is 0), else a `uint64`, else a float when it matches
//!   `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (so `09` and a 64-digit run are
//!   floats), else a string;
//! - one starting with `.` is a float when Go's `ParseFloat` takes it;
//! - sexagesimal (`1:30`) is a string: go-yaml v2 dropped base 60 on purpose; a timestamp is a
//!   string too (decoded into `interface{}`, go-yaml keeps timestamps as text).
//!
//! Quoted and block scalars are strings; `!!str` forces a string. Map keys become strings as
//! `convertToJSONableObject` makes them (`5000:` is the key `"5000"`). Left out, each an error
//! here rather than a guess: merge keys (`<<`), integers beyond 64 bits, NaN/infinite values
//! (JSON has none, so `kubectl` fails too), non-standard tags. Duplicate keys are an error, as
//! with `kubectl`'s strict decoding.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Every document of a YAML stream, as JSON; empty documents are skipped (as `kubectl` does).
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::default();
    let mut docs = Vec::new();
    loop {
        let (event, mark) = parser.next_token().map_err(|e| e.to_string())?;
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => builder.stack.clear(),
            Event::DocumentEnd => {
                if let Some(doc) = builder.done.take() {
                    if !doc.is_null() {
                        docs.push(doc);
                    }
                }
            }
            other => builder.event(other, mark)?,
        }
    }
    Ok(docs)
}

/// One scalar resolved as go-yaml v2 resolves a plain (untagged, unquoted) scalar.
pub fn resolve_plain(text: &str) -> Result<Value, String> {
    let first = text.bytes().next();
    let hint = match first {
        None => b'N',
        Some(b'+' | b'-') => b'S',
        Some(b'0'..=b'9') => b'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => b'M',
        Some(b'.') => b'.',
        Some(_) => return Ok(Value::String(text.to_owned())),
    };
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Ok(Value::Bool(true))
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Ok(Value::Bool(false))
        }
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF"
        | "-.inf" | "-.Inf" | "-.INF" => {
            return Err(format!(
                "`{text}` is a NaN/infinite float in YAML 1.1, which JSON cannot hold"
            ))
        }
        "<<" => return Err("merge keys (`<<`) are not supported here".to_owned()),
        _ => {}
    }
    match hint {
        b'.' => {
            if let Some(f) = go_parse_float(text) {
                return float(f, text);
            }
        }
        b'D' | b'S' => {
            let plain: String = text.chars().filter(|c| *c != '_').collect();
            match go_parse_int(&plain) {
                Ok(IntValue::Signed(i)) => return Ok(Value::Number(i.into())),
                Ok(IntValue::Unsigned(u)) => return Ok(Value::Number(u.into())),
                Err(range) => {
                    if yaml_style_float(&plain) {
                        if let Ok(f) = plain.parse::<f64>() {
                            return float(f, text);
                        }
                    }
                    if range {
                        return Err(format!(
                            "`{text}` is an integer beyond 64 bits in YAML 1.1; not supported here"
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(Value::String(text.to_owned()))
}

fn float(f: f64, text: &str) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("`{text}` is not a finite float"))
}

enum IntValue {
    Signed(i64),
    Unsigned(u64),
}

/// Go's `ParseInt(s, 0, 64)`, then `ParseUint(s, 0, 64)`. `Err(true)` when the digits are valid
/// but out of range.
fn go_parse_int(s: &str) -> Result<IntValue, bool> {
    let (negative, unsigned_text, signed) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..], true),
        Some(b'+') => (false, &s[1..], true),
        _ => (false, s, false),
    };
    let (radix, digits) = if let Some(d) = unsigned_text
        .strip_prefix("0x")
        .or_else(|| unsigned_text.strip_prefix("0X"))
    {
        (16, d)
    } else if let Some(d) = unsigned_text
        .strip_prefix("0o")
        .or_else(|| unsigned_text.strip_prefix("0O"))
    {
        (8, d)
    } else if let Some(d) = unsigned_text
        .strip_prefix("0b")
        .or_else(|| unsigned_text.strip_prefix("0B"))
    {
        (2, d)
    } else if unsigned_text.len() > 1 && unsigned_text.starts_with('0') {
        (8, &unsigned_text[1..])
    } else {
        (10, unsigned_text)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(false);
    }
    let Ok(magnitude) = u128::from_str_radix(digits, radix) else {
        return Err(true);
    };
    if negative {
        if magnitude <= 1u128 << 63 {
            return Ok(IntValue::Signed((-(magnitude as i128)) as i64));
        }
        return Err(true);
    }
    if let Ok(i) = i64::try_from(magnitude) {
        return Ok(IntValue::Signed(i));
    }
    // ParseUint takes no sign.
    if !signed {
        if let Ok(u) = u64::try_from(magnitude) {
            return Ok(IntValue::Unsigned(u));
        }
    }
    Err(true)
}

/// go-yaml v2's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.strip_prefix('.') {
        Some(fraction) => digits(fraction),
        None => match mantissa.split_once('.') {
            Some((int, fraction)) => digits(int) && fraction.bytes().all(|b| b.is_ascii_digit()),
            None => digits(mantissa),
        },
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['-', '+']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Go's `ParseFloat` for a text starting with `.` (the only case go-yaml hands it unfiltered):
/// decimal digits with an optional exponent.
fn go_parse_float(s: &str) -> Option<f64> {
    if yaml_style_float(s) {
        s.parse().ok()
    } else {
        None
    }
}

enum Frame {
    Seq(Vec<Value>, usize),
    Map(Map<String, Value>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    done: Option<Value>,
}

impl Builder {
    fn event(&mut self, event: Event, mark: Marker) -> Result<(), String> {
        let at = |e: String| format!("line {}: {e}", mark.line());
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_ref()).map_err(at)?;
                self.value(value, anchor).map_err(at)
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| at(format!("unknown alias {id}")))?;
                self.value(value, 0).map_err(at)
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "seq").map_err(at)?;
                self.stack.push(Frame::Seq(Vec::new(), anchor));
                Ok(())
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "map").map_err(at)?;
                self.stack.push(Frame::Map(Map::new(), None, anchor));
                Ok(())
            }
            Event::SequenceEnd => match self.stack.pop() {
                Some(Frame::Seq(items, anchor)) => {
                    self.value(Value::Array(items), anchor).map_err(at)
                }
                _ => Err(at("unbalanced sequence end".to_owned())),
            },
            Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Map(map, None, anchor)) => {
                    self.value(Value::Object(map), anchor).map_err(at)
                }
                _ => Err(at("unbalanced mapping end".to_owned())),
            },
            Event::Nothing | Event::StreamStart => Ok(()),
            other => Err(at(format!("unexpected event {other:?}"))),
        }
    }

    fn value(&mut self, value: Value, anchor: usize) -> Result<(), String> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.done = Some(value);
                Ok(())
            }
            Some(Frame::Seq(items, _)) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Map(map, pending, _)) => match pending.take() {
                None => {
                    *pending = Some(key_string(value)?);
                    Ok(())
                }
                Some(key) => {
                    if map.contains_key(&key) {
                        return Err(format!("duplicate key `{key}`"));
                    }
                    map.insert(key, value);
                    Ok(())
                }
            },
        }
    }
}

/// A map key as sigs.k8s.io/yaml's `convertToJSONableObject` turns it into a JSON key.
fn key_string(key: Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) if n.is_i64() => Ok(n.to_string()),
        // Go: strconv.FormatFloat(f, 'g', -1, 32); Rust's shortest f32 text agrees for the
        // ordinary values a key would hold.
        Value::Number(n) if n.is_f64() => Ok(format!("{}", n.as_f64().unwrap_or_default() as f32)),
        other => Err(format!("unsupported map key {other}")),
    }
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if is_core(t) && t.suffix == expected => Ok(()),
        Some(t) => Err(format!(
            "tag {}{} is not supported here",
            t.handle, t.suffix
        )),
    }
}

fn is_core(tag: &Tag) -> bool {
    tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:"
}

fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    match tag {
        Some(t) if is_core(t) && t.suffix == "str" => return Ok(Value::String(text.to_owned())),
        Some(t) if is_core(t) && ["int", "float", "bool", "null"].contains(&t.suffix.as_str()) => {
            return resolve_plain(text)
        }
        // The non-specific tag `!`: a string.
        Some(t) if format!("{}{}", t.handle, t.suffix) == "!" => {
            return Ok(Value::String(text.to_owned()))
        }
        Some(t) => {
            return Err(format!(
                "tag {}{} is not supported here",
                t.handle, t.suffix
            ))
        }
        None => {}
    }
    match style {
        TScalarStyle::Plain => resolve_plain(text),
        _ => Ok(Value::String(text.to_owned())),
    }
}
