//! JWKS parsing (RFC 7517) with jwt_verify_lib's rules: keys the filter cannot use are skipped,
//! and the set is an error only when no usable key is left. Inline `jwks` and (later) fetched
//! bodies go through [`Jwks::parse`], so both are judged alike.

use rsa::{BigUint, RsaPublicKey};
use serde_json::{Map, Value};

use super::b64;
use super::status::AuthnStatus;

/// The largest JWKS document accepted. Real sets are a few KiB; a bound keeps a hostile or
/// broken document from costing the VM megabytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys one set may hold; more is a refusal, not a truncation.
pub const MAX_JWKS_KEYS: usize = 100;
/// RSA moduli above this many bits are skipped (`rsa` defaults to 4096; 8192-bit keys exist).
const MAX_RSA_BITS: usize = 16384;

/// A public key decoded once, when the set is parsed, so requests never decode keys.
#[derive(Debug, Clone)]
pub enum PublicKey {
    /// `kty: RSA`, for RS* (and later PS*).
    Rsa(RsaPublicKey),
    /// `kty: EC`, `crv: P-256`, for ES256.
    P256(p256::ecdsa::VerifyingKey),
}

/// One usable key with the JWK members that take part in key selection.
#[derive(Debug, Clone)]
pub struct Jwk {
    /// `kid`; empty when absent.
    pub kid: String,
    /// `alg`; empty when absent.
    pub alg: String,
    /// The decoded key.
    pub key: PublicKey,
}

/// Why a JWKS document gave no usable key set. The variants carry Envoy's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON, or not a JSON object.
    #[error("Jwks is an invalid JSON")]
    InvalidJson,
    /// No `keys` member.
    #[error("Jwks does not have [keys] field")]
    NoKeys,
    /// `keys` is not an array.
    #[error("[keys] in Jwks is not an array")]
    KeysNotArray,
    /// Every key was unusable; `skipped` says why each was skipped.
    #[error("Jwks doesn't have any valid public key ({skipped})")]
    NoValidKeys {
        /// One reason per skipped key, `keys[i]: reason`, joined with `; `.
        skipped: String,
    },
    /// The document is larger than [`MAX_JWKS_BYTES`].
    #[error("Jwks is {0} bytes, more than the {MAX_JWKS_BYTES} accepted")]
    TooLarge(usize),
    /// The set has more than [`MAX_JWKS_KEYS`] keys.
    #[error("Jwks has {0} keys, more than the {MAX_JWKS_KEYS} accepted")]
    TooManyKeys(usize),
}

impl JwksError {
    /// The request-path status for a token that needed this set.
    pub const fn status(&self) -> AuthnStatus {
        match self {
            JwksError::InvalidJson => AuthnStatus::JwksParseError,
            JwksError::NoKeys => AuthnStatus::JwksNoKeys,
            JwksError::KeysNotArray => AuthnStatus::JwksBadKeys,
            JwksError::NoValidKeys { .. } | JwksError::TooLarge(_) | JwksError::TooManyKeys(_) => {
                AuthnStatus::JwksNoValidKeys
            }
        }
    }
}

/// A parsed key set: only usable keys, in document order (selection tries them in order).
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document.
    pub fn parse(text: &str) -> Result<Jwks, JwksError> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge(text.len()));
        }
        let doc = super::json::parse_object(text.as_bytes()).ok_or(JwksError::InvalidJson)?;
        let entries = match doc.get("keys") {
            None => return Err(JwksError::NoKeys),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(JwksError::KeysNotArray),
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys(entries.len()));
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry
                .as_object()
                .ok_or("not a JSON object")
                .and_then(Jwk::from_json)
            {
                Ok(jwk) => keys.push(jwk),
                Err(reason) => skipped.push(format!("keys[{i}]: {reason}")),
            }
        }
        if keys.is_empty() {
            let skipped = if skipped.is_empty() {
                "the set is empty".to_owned()
            } else {
                skipped.join("; ")
            };
            return Err(JwksError::NoValidKeys { skipped });
        }
        Ok(Jwks { keys })
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

impl Jwk {
    /// One JWK, or why it is skipped (jwt_verify_lib's reasons, in its words where it has them).
    fn from_json(jwk: &Map<String, Value>) -> Result<Jwk, &'static str> {
        let kty = match jwk.get("kty") {
            None => return Err("[kty] is missing in [keys]"),
            Some(Value::String(kty)) => kty.as_str(),
            Some(_) => return Err("[kty] is bad in [keys]"),
        };
        // jwt_verify_lib reads kid/alg leniently: a non-string is taken as absent.
        let kid = string_member(jwk, "kid").unwrap_or_default().to_owned();
        let alg = string_member(jwk, "alg").unwrap_or_default().to_owned();
        let key = match kty {
            "RSA" => rsa_key(jwk, &alg)?,
            "EC" => ec_key(jwk, &alg)?,
            "oct" | "OKP" => {
                return Err("this key type is not supported yet (RSA and EC P-256 are)")
            }
            _ => return Err("[kty] is not supported in [keys]"),
        };
        Ok(Jwk { kid, alg, key })
    }
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

fn required_string<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
    missing: &'static str,
    not_string: &'static str,
) -> Result<&'a str, &'static str> {
    match jwk.get(name) {
        None => Err(missing),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(not_string),
    }
}

fn rsa_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, &'static str> {
    if !alg.is_empty() && !alg.starts_with("RS") && !alg.starts_with("PS") {
        return Err("[alg] is not started with [RS] or [PS] for an RSA key");
    }
    let n = required_string(
        jwk,
        "n",
        "[n] field is missing for a RSA key",
        "[n] field is not string for a RSA key",
    )?;
    let e = required_string(
        jwk,
        "e",
        "[e] field is missing for a RSA key",
        "[e] field is not string for a RSA key",
    )?;
    let parse_error = "Jwks RSA [n] or [e] field is missing or has a parse error";
    let n = BigUint::from_bytes_be(&b64::decode(n).ok_or(parse_error)?);
    let e = BigUint::from_bytes_be(&b64::decode(e).ok_or(parse_error)?);
    // jwt_verify_lib rejects non-standard exponents early.
    if e != BigUint::from(3u32) && e != BigUint::from(65537u32) {
        return Err(parse_error);
    }
    RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
        .map(PublicKey::Rsa)
        .map_err(|_| parse_error)
}

fn ec_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, &'static str> {
    if !alg.is_empty() && !alg.starts_with("ES") {
        return Err("[alg] is not started with [ES] for an EC key");
    }
    let crv = match jwk.get("crv") {
        None => "",
        Some(Value::String(crv)) => crv.as_str(),
        Some(_) => return Err("[crv] field is not string for an EC key"),
    };
    if !alg.is_empty() && !crv.is_empty() {
        let compatible = matches!(
            (alg, crv),
            ("ES256", "P-256") | ("ES384", "P-384") | ("ES512", "P-521")
        );
        if !compatible {
            return Err("[crv] field specified is not compatible with [alg] for an EC key");
        }
    }
    // No alg and no crv means P-256, as in jwt_verify_lib.
    let p256 = alg == "ES256" || crv == "P-256" || (alg.is_empty() && crv.is_empty());
    if !p256 {
        return Err("[crv] or [alg] field is not supported for an EC key (P-256 only, for now)");
    }
    let x = required_string(
        jwk,
        "x",
        "[x] field is missing for an EC key",
        "[x] field is not string for an EC key",
    )?;
    let y = required_string(
        jwk,
        "y",
        "[y] field is missing for an EC key",
        "[y] field is not string for an EC key",
    )?;
    let bad_base64 = "Jwks EC [x] or [y] field is an invalid Base64.";
    let x = b64::decode(x).ok_or(bad_base64)?;
    let y = b64::decode(y).ok_or(bad_base64)?;
    let mut point = [0u8; 65];
    point[0] = 0x04; // SEC1 uncompressed
                     // Coordinates are big-endian integers; a short one is left-padded as BN_bin2bn would read it.
    let (Some(x_at), Some(y_at)) = (32usize.checked_sub(x.len()), 32usize.checked_sub(y.len()))
    else {
        return Err("Jwks EC [x] and [y] fields have a parse error.");
    };
    point
        .get_mut(1 + x_at..33)
        .ok_or(bad_base64)?
        .copy_from_slice(&x);
    point
        .get_mut(33 + y_at..65)
        .ok_or(bad_base64)?
        .copy_from_slice(&y);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
        .map(PublicKey::P256)
        .map_err(|_| "Jwks EC create key fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7517 Appendix A.1 example public keys (an EC P-256 key and an RSA key).
    const RFC7517_A1: &str = r#"{"keys":
       [
         {"kty":"EC",
          "crv":"P-256",
          "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
          "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
          "use":"enc",
          "kid":"1"},
         {"kty":"RSA",
          "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e":"AQAB",
          "alg":"RS256",
          "kid":"2011-04-29"}
       ]
     }"#;

    #[test]
    fn parses_the_rfc_example_set() {
        let jwks = Jwks::parse(RFC7517_A1).unwrap();
        assert_eq!(jwks.keys().len(), 2);
        assert!(matches!(jwks.keys()[0].key, PublicKey::P256(_)));
        assert_eq!(jwks.keys()[1].kid, "2011-04-29");
        assert_eq!(jwks.keys()[1].alg, "RS256");
        assert!(matches!(jwks.keys()[1].key, PublicKey::Rsa(_)));
    }

    #[test]
    fn document_level_errors() {
        assert_eq!(Jwks::parse("not json").unwrap_err(), JwksError::InvalidJson);
        assert_eq!(Jwks::parse("[]").unwrap_err(), JwksError::InvalidJson);
        assert_eq!(Jwks::parse("{}").unwrap_err(), JwksError::NoKeys);
        assert_eq!(
            Jwks::parse(r#"{"keys":{}}"#).unwrap_err(),
            JwksError::KeysNotArray
        );
        assert!(matches!(
            Jwks::parse(r#"{"keys":[]}"#),
            Err(JwksError::NoValidKeys { .. })
        ));
        let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(MAX_JWKS_BYTES));
        assert!(matches!(Jwks::parse(&big), Err(JwksError::TooLarge(_))));
    }

    #[test]
    fn unusable_keys_are_skipped_with_reasons() {
        let doc = r#"{"keys":[
            {"kty":"RSA","n":"AQAB"},
            {"kty":"RSA","n":"AQAB","e":"AQAB","alg":"ES256"},
            {"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"},
            {"kty":"EC","crv":"P-256","alg":"ES384","x":"AAAA","y":"AAAA"},
            {"kty":"XYZ"},
            {"kid":"no kty"},
            7
        ]}"#;
        let JwksError::NoValidKeys { skipped } = Jwks::parse(doc).unwrap_err() else {
            panic!()
        };
        for want in [
            "keys[0]: [e] field is missing for a RSA key",
            "keys[1]: [alg] is not started with [RS] or [PS] for an RSA key",
            "keys[2]: Jwks EC create key fail",
            "keys[3]: [crv] field specified is not compatible with [alg] for an EC key",
            "keys[4]: [kty] is not supported in [keys]",
            "keys[5]: [kty] is missing in [keys]",
            "keys[6]: not a JSON object",
        ] {
            assert!(skipped.contains(want), "{want} not in {skipped}");
        }
    }

    #[test]
    fn non_standard_rsa_exponent_is_skipped() {
        let rfc: Value = serde_json::from_str(RFC7517_A1).unwrap();
        let mut rsa = rfc["keys"][1].clone();
        rsa["e"] = Value::String("Aw".into()); // 3: accepted
        let ok = serde_json::json!({ "keys": [rsa.clone()] }).to_string();
        assert!(Jwks::parse(&ok).is_ok());
        rsa["e"] = Value::String("BQ".into()); // 5: jwt_verify_lib rejects it
        let bad = serde_json::json!({ "keys": [rsa] }).to_string();
        assert!(matches!(
            Jwks::parse(&bad),
            Err(JwksError::NoValidKeys { .. })
        ));
    }
}
