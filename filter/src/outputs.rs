//! What a verified token adds to the request: Istio's `outputPayloadToHeader` and
//! `outputClaimToHeaders` (Envoy's `forward_payload_header` and `claim_to_headers`,
//! `authenticator.cc#handleGoodJwt`).
//!
//! Values are encoded as Envoy encodes them, so an upstream written against Istio reads the same
//! bytes: the payload is its base64url segment as it stood in the token; a claim that is a
//! string is copied as is, a number that is a whole number in `0..2^64` as integer text and any
//! other number as C's `%f` (`1.5` ⇒ `1.500000`), a bool as `true`/`false`, an object or array
//! as standard padded base64 of its JSON. A missing claim, `null`, or an empty string adds no
//! header.
//!
//! Claim values are copied byte for byte, CR, LF and NUL included: Envoy then refuses to send
//! the request upstream (503 `invalid header value`), exactly as it does for native
//! `jwt_authn`, so such a claim fails closed and nothing is echoed to the client.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::jwt::{AuthnStatus, Jwt};

/// One `outputClaimToHeaders` entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    /// Lower-case header name.
    pub header: String,
    /// The claim path, split on `.` (`nested.key` walks into objects; no array indexing).
    pub path: Vec<String>,
}

/// The headers one rule writes after a token verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// `outputPayloadToHeader`, lower case.
    pub payload_header: Option<String>,
    /// `outputClaimToHeaders`, in order.
    pub claims: Vec<ClaimHeader>,
}

impl Outputs {
    /// Every header name this rule writes: the names removed from each incoming request so a
    /// client cannot supply them.
    pub fn header_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.payload_header
            .as_deref()
            .into_iter()
            .chain(self.claims.iter().map(|c| c.header.as_str()))
    }

    /// Whether the rule writes no header.
    pub fn is_empty(&self) -> bool {
        self.payload_header.is_none() && self.claims.is_empty()
    }

    /// The headers to add for a verified token, in Envoy's order: payload first, then claims.
    /// An error when the rule copies claims and the token's payload cannot be read into a map
    /// ([`Jwt::payload`]): the token is then refused, never passed on without its headers.
    pub fn headers_for(&self, jwt: &Jwt) -> Result<Vec<(String, Vec<u8>)>, AuthnStatus> {
        // Most rules write no header: no allocation for them on every verified token.
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(self.claims.len() + 1);
        if let Some(name) = &self.payload_header {
            out.push((name.clone(), jwt.payload_b64().as_bytes().to_vec()));
        }
        if self.claims.is_empty() {
            return Ok(out);
        }
        let payload = jwt.payload().map_err(AuthnStatus::from)?;
        for claim in &self.claims {
            if let Some(value) = claim_value(payload, &claim.path) {
                out.push((claim.header.clone(), value));
            }
        }
        Ok(out)
    }
}

/// The header value for the claim at `path`, or `None` when Envoy adds no header.
pub fn claim_value(payload: &Map<String, Value>, path: &[String]) -> Option<Vec<u8>> {
    let (first, rest) = path.split_first()?;
    let mut value = payload.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Object(_) | Value::Array(_) => STANDARD.encode(value.to_string()),
        Value::Null => return None,
    };
    (!text.is_empty()).then(|| text.into_bytes())
}

/// Envoy's `convertClaimDoubleToString`: protobuf holds every JSON number as a double; a whole
/// number in `0..2^64` prints as an integer, anything else as `std::to_string(double)`.
fn number_text(n: &serde_json::Number) -> String {
    let Some(d) = n.as_f64() else {
        return n.to_string();
    };
    // 2^64 as a double, the bound Envoy compares against.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    if (0.0..TWO_POW_64).contains(&d) && d.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = d as u64;
        whole.to_string()
    } else {
        format!("{d:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(payload: Value, path: &str) -> Option<String> {
        let Value::Object(map) = payload else {
            panic!("not an object")
        };
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        claim_value(&map, &path).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn encodings_follow_envoy() {
        let p = json!({
            "s": "text", "empty": "", "n": 1562182722, "neg": -5, "frac": 1.5,
            "big": 1e20, "t": true, "f": false, "null": null,
            "list": ["str1", "str2"],
            "nested": {"nested-2": {"key2": "valueC"}, "k": 1}
        });
        assert_eq!(value(p.clone(), "s").as_deref(), Some("text"));
        assert_eq!(value(p.clone(), "empty"), None);
        assert_eq!(value(p.clone(), "n").as_deref(), Some("1562182722"));
        assert_eq!(value(p.clone(), "neg").as_deref(), Some("-5.000000"));
        assert_eq!(value(p.clone(), "frac").as_deref(), Some("1.500000"));
        assert_eq!(
            value(p.clone(), "big").as_deref(),
            Some("100000000000000000000.000000")
        );
        assert_eq!(value(p.clone(), "t").as_deref(), Some("true"));
        assert_eq!(value(p.clone(), "f").as_deref(), Some("false"));
        assert_eq!(value(p.clone(), "null"), None);
        assert_eq!(value(p.clone(), "missing"), None);
        // Envoy's documented example (jwt_authn docs): ["str1","str2"] ⇒ WyJzdHIxIiwic3RyMiJd.
        assert_eq!(
            value(p.clone(), "list").as_deref(),
            Some("WyJzdHIxIiwic3RyMiJd")
        );
        assert_eq!(
            value(p.clone(), "nested.nested-2.key2").as_deref(),
            Some("valueC")
        );
        assert_eq!(value(p.clone(), "s.x"), None);
        assert_eq!(value(p.clone(), "list.0"), None);
    }

    #[test]
    fn numbers_beyond_two_to_the_64_print_as_doubles() {
        assert_eq!(
            value(json!({"x": 3e19}), "x").as_deref(),
            Some("30000000000000000000.000000")
        );
        assert_eq!(value(json!({"x": 0}), "x").as_deref(), Some("0"));
    }
}
