//! JSON for untrusted documents (token header and payload, JWKS): like serde_json, except that
//! a repeated object key is an error at any depth, and one trailing comma before a closing
//! bracket is accepted. Envoy's parser (protobuf's JSON→Struct) does both (measured on Envoy
//! 1.40; jwt_verify_lib's own JWKS tests use trailing commas). Refusing duplicates matters:
//! accepting them would let `{"iss":"a","iss":"b"}` mean one thing to us and another to the
//! upstream that reads the forwarded token.

use std::borrow::Cow;

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

/// serde_json's nesting limit: its budget of 128 is spent on entering each array or object and
/// an error when it reaches 0, so 127 levels parse and the 128th is refused.
const MAX_DEPTH: u8 = 127;

/// Integer digits up to which a number without an exponent cannot overflow an `f64`
/// (10^300 < `f64::MAX`), so its range needs no check.
const PLAIN_INTEGER_DIGITS: usize = 300;

/// Checks that `bytes` is a JSON object that [`parse_object`] accepts, in one pass and without
/// building values, and stores the value of each top-level member named in `names` at the
/// same index of `found` (left as it is when absent). `None` when [`parse_object`] would refuse
/// the document.
pub fn scan_object<'a>(
    bytes: &'a [u8],
    names: &[&str],
    found: &mut [Option<Member<'a>>],
) -> Option<()> {
    // Outside strings only ASCII is valid, so the document is valid UTF-8 exactly when each of
    // its strings is: one check for all of them.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut scanner = Scanner {
        text,
        bytes,
        pos: 0,
        depth: 0,
        keys: Vec::new(),
    };
    if scanner.skip_ws()? != b'{' {
        return None;
    }
    scanner.enter()?;
    scanner.object(Some((names, found)))?;
    // serde_json's `end`: only whitespace after the value.
    match scanner.skip_ws() {
        None => Some(()),
        Some(_) => None,
    }
}

/// A top-level member's value as [`scan_object`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member<'a> {
    /// A string.
    String(JsonStr<'a>),
    /// A number's text (JSON's grammar, within `f64`'s range).
    Number(&'a str),
    /// An array's elements; an element that is an array is [`Member::Other`].
    Array(Vec<Member<'a>>),
    /// An object, `true`, `false` or `null`.
    Other,
}

/// A JSON number's value as `serde_json::Value::as_f64` gives it: an integer that fits `u64`
/// or `i64` converted from that, any other number read as serde_json reads a float.
pub fn number_value(text: &str) -> Option<f64> {
    // Through the same deserializer and visitor as `parse_object`: the same value, and no
    // second copy of serde_json's number parsing in the artifact.
    match parse_value(text.as_bytes())? {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A string's text between its quotes: valid UTF-8 without control characters, every escape
/// valid and every `\u` surrogate paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
    escaped: bool,
}

impl<'a> JsonStr<'a> {
    /// The string with its escapes decoded; borrowed when it has none.
    pub fn decode(self) -> Option<Cow<'a, str>> {
        if !self.escaped {
            return Some(Cow::Borrowed(self.raw));
        }
        let mut out = String::with_capacity(self.raw.len());
        unescape(self.raw, Some(&mut out))?;
        Some(Cow::Owned(out))
    }
}

struct Scanner<'a> {
    text: &'a str,
    /// `text` as bytes.
    bytes: &'a [u8],
    pos: usize,
    depth: u8,
    /// The keys of every open object, innermost last (decoded, to find duplicates).
    keys: Vec<Cow<'a, str>>,
}

/// The names asked for at the top level and where their values go.
type Capture<'c, 'a> = Option<(&'c [&'c str], &'c mut [Option<Member<'a>>])>;

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips serde_json's whitespace and returns the next byte without consuming it.
    fn skip_ws(&mut self) -> Option<u8> {
        while let Some(b) = self.peek() {
            if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes an opening bracket, within the nesting limit.
    fn enter(&mut self) -> Option<()> {
        self.pos += 1;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn value(&mut self, collect: bool) -> Option<Member<'a>> {
        let member = match self.skip_ws()? {
            b'"' => {
                self.pos += 1;
                Member::String(self.string()?)
            }
            b'{' => {
                self.enter()?;
                self.object(None)?;
                Member::Other
            }
            b'[' => {
                self.enter()?;
                Member::Array(self.array(collect)?)
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => Member::Number(self.number()?),
            _ => return None,
        };
        Some(member)
    }

    fn literal(&mut self, word: &[u8]) -> Option<Member<'a>> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then_some(())?;
        self.pos = end;
        Some(Member::Other)
    }

    /// After `[`: the elements (kept when `collect`) and the closing `]`, one trailing comma
    /// allowed after the last element.
    fn array(&mut self, collect: bool) -> Option<Vec<Member<'a>>> {
        let mut items = Vec::new();
        if self.skip_ws()? != b']' {
            loop {
                let item = self.value(false)?;
                if collect {
                    items.push(item);
                }
                if self.separator(b']')? {
                    break;
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Some(items)
    }

    /// After `{`: the members and the closing `}`, one trailing comma allowed after the last
    /// member; no key twice. Values of the names in `capture` are stored there.
    fn object(&mut self, mut capture: Capture<'_, 'a>) -> Option<()> {
        let start = self.keys.len();
        if self.skip_ws()? != b'}' {
            loop {
                if self.skip_ws()? != b'"' {
                    return None;
                }
                self.pos += 1;
                let key = self.string()?.decode()?;
                if self.skip_ws()? != b':' {
                    return None;
                }
                self.pos += 1;
                let slot = capture.as_mut().and_then(|(names, found)| {
                    let i = names.iter().position(|name| *name == key)?;
                    found.get_mut(i)
                });
                let value = self.value(slot.is_some())?;
                if let Some(slot) = slot {
                    *slot = Some(value);
                }
                self.keys.push(key);
                if self.separator(b'}')? {
                    break;
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        let keys = self.keys.get(start..)?;
        let unique = if keys.len() <= 32 {
            keys.iter()
                .enumerate()
                .all(|(i, key)| !keys.iter().take(i).any(|k| k == key))
        } else {
            // A large object (rare in a token) costs n log n rather than n², in serde_json's
            // map: the artifact has its code already, a sort would add 4 KB.
            let mut seen = Map::new();
            keys.iter()
                .all(|key| seen.insert(key.clone().into_owned(), Value::Null).is_none())
        };
        self.keys.truncate(start);
        unique.then_some(())
    }

    /// After an element: `true` at the closing bracket (left unconsumed), `false` after a
    /// comma that another element follows.
    fn separator(&mut self, close: u8) -> Option<bool> {
        match self.skip_ws()? {
            b',' => {
                self.pos += 1;
                Some(self.skip_ws()? == close)
            }
            b if b == close => Some(true),
            _ => None,
        }
    }

    /// After `"`: the string and its closing quote.
    fn string(&mut self) -> Option<JsonStr<'a>> {
        let start = self.pos;
        let mut escaped = false;
        let end = loop {
            let rest = self.bytes.get(self.pos..)?;
            self.pos += rest
                .iter()
                .position(|&b| matches!(b, b'"' | b'\\' | 0..=0x1f))?;
            match self.peek()? {
                b'"' => break self.pos,
                // The escaped byte is skipped (a `\"` does not end the string); `unescape`
                // checks the escape itself.
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                _ => return None,
            }
        };
        self.pos += 1;
        // Escapes are ASCII, so the text (valid UTF-8, checked whole) decodes to valid UTF-8.
        let raw = self.text.get(start..end)?;
        if escaped {
            unescape(raw, None)?;
        }
        Some(JsonStr { raw, escaped })
    }

    fn number(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek()? {
            // One leading zero only.
            b'0' => {
                self.pos += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        let mut in_range = self.pos - int_start <= PLAIN_INTEGER_DIGITS;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            in_range = false;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        let text = self.text.get(start..self.pos)?;
        // serde_json refuses a number that overflows an f64 (`1e400`); only an exponent or a
        // long integer part can, and then serde_json itself decides.
        if !in_range {
            number_value(text)?;
        }
        Some(text)
    }

    /// One or more ASCII digits.
    fn digits(&mut self) -> Option<()> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        (self.pos > start).then_some(())
    }
}

/// Checks the escapes of a string's text, decoding it into `out` when given: serde_json's
/// escapes, a `\u` high surrogate only directly followed by a `\u` low surrogate, no lone low
/// surrogate.
fn unescape(raw: &str, mut out: Option<&mut String>) -> Option<()> {
    let mut rest = raw;
    while let Some(i) = rest.find('\\') {
        let (plain, escape) = rest.split_at(i);
        let bytes = escape.as_bytes();
        let (c, len) = match bytes.get(1)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => match hex4(bytes.get(2..6)?)? {
                0xD800..=0xDBFF if bytes.get(6..8)? == b"\\u" => {
                    let high = hex4(bytes.get(2..6)?)?;
                    let low = hex4(bytes.get(8..12)?)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    let n = 0x1_0000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    (char::from_u32(n)?, 12)
                }
                n => (char::from_u32(n)?, 6),
            },
            _ => return None,
        };
        if let Some(out) = out.as_deref_mut() {
            out.push_str(plain);
            out.push(c);
        }
        rest = escape.get(len..)?;
    }
    if let Some(out) = out {
        out.push_str(rest);
    }
    Some(())
}

/// Four hex digits, either case.
fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    digits
        .iter()
        .try_fold(0, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}

fn parse_strict(bytes: &[u8]) -> Option<Map<String, Value>> {
    match parse_value(bytes)? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn parse_value(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
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
