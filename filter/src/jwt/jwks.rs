//! JWKS parsing (RFC 7517) with jwt_verify_lib's rules (`jwks.cc#createFromJwksCore`): keys the
//! filter cannot use are skipped, and the set is an error only when no usable key is left. The
//! Google/Firebase x509 map (`{"<kid>": "-----BEGIN CERTIFICATE-----…"}`) is accepted when the
//! document has no `keys` member. Inline `jwks` and fetched bodies go through [`Jwks::parse`],
//! so both are judged alike.
//!
//! Every key is decoded once, here: the request path never decodes base64, builds a big
//! number or encodes a key. Keys also carry their SubjectPublicKeyInfo DER, which is what
//! Envoy's `verify_signature` foreign function takes.

use serde_json::{Map, Value};

use super::b64;
use super::der;
use super::ed25519;
use super::rsa::RsaPublicKey;
use super::status::AuthnStatus;

/// The largest JWKS document accepted. Real sets are a few KiB; a bound keeps a hostile or
/// broken document from costing the VM megabytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys one set may hold; more is a refusal, not a truncation.
pub const MAX_JWKS_KEYS: usize = 100;
/// RSA moduli above this many bits are skipped: BoringSSL's own limit (`RSA_check_key`), so
/// Envoy skips them too.
const MAX_RSA_BITS: usize = 16384;

/// An elliptic-curve public key, for ES256/ES384/ES512.
#[derive(Clone)]
pub enum EcKey {
    /// P-256.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384.
    P384(p384::ecdsa::VerifyingKey),
    /// P-521.
    P521(p521::ecdsa::VerifyingKey),
}

impl core::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.crv())
    }
}

impl EcKey {
    /// The JWK `crv` name.
    pub const fn crv(&self) -> &'static str {
        match self {
            EcKey::P256(_) => "P-256",
            EcKey::P384(_) => "P-384",
            EcKey::P521(_) => "P-521",
        }
    }

    /// Bytes in one field element (and in each of `r` and `s` of a JWS signature).
    pub const fn field_bytes(&self) -> usize {
        match self {
            EcKey::P256(_) => 32,
            EcKey::P384(_) => 48,
            EcKey::P521(_) => 66,
        }
    }
}

/// A public key decoded once, when the set is parsed, so requests never decode keys.
#[derive(Clone)]
pub enum PublicKey {
    /// `kty: RSA` (or an x509 certificate's RSA key), for RS* and PS*.
    Rsa {
        /// The key.
        key: RsaPublicKey,
        /// Its SubjectPublicKeyInfo DER (rsaEncryption).
        spki: Box<[u8]>,
    },
    /// `kty: EC`, for ES*.
    Ec {
        /// The key.
        key: EcKey,
        /// Its SubjectPublicKeyInfo DER (id-ecPublicKey, named curve).
        spki: Box<[u8]>,
    },
    /// `kty: oct`, an HMAC secret for HS*.
    Oct(Box<[u8]>),
    /// `kty: OKP`, `crv: Ed25519`. `None` when the 32 bytes are not a curve point: BoringSSL
    /// accepts such a key and fails every verification with it, and so do we.
    Ed25519 {
        /// The key (its multiples are built at its first verification), if `x` decodes to a point.
        key: Option<ed25519::Key>,
        /// Its SubjectPublicKeyInfo DER (id-Ed25519).
        spki: Box<[u8]>,
    },
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print an HMAC secret.
        match self {
            PublicKey::Rsa { key, .. } => write!(f, "Rsa({} bits)", key.bits()),
            PublicKey::Ec { key, .. } => write!(f, "Ec({})", key.crv()),
            PublicKey::Oct(k) => write!(f, "Oct({} bytes)", k.len()),
            PublicKey::Ed25519 { .. } => f.write_str("Ed25519"),
        }
    }
}

impl PublicKey {
    /// The JWK `kty`.
    pub const fn kty(&self) -> &'static str {
        match self {
            PublicKey::Rsa { .. } => "RSA",
            PublicKey::Ec { .. } => "EC",
            PublicKey::Oct(_) => "oct",
            PublicKey::Ed25519 { .. } => "OKP",
        }
    }

    /// The curve (`crv`), for EC and OKP keys.
    pub fn crv(&self) -> Option<&'static str> {
        match self {
            PublicKey::Ec { key, .. } => Some(key.crv()),
            PublicKey::Ed25519 { .. } => Some("Ed25519"),
            _ => None,
        }
    }

    /// The SubjectPublicKeyInfo DER of an asymmetric key (none for an HMAC secret).
    pub fn spki_der(&self) -> Option<&[u8]> {
        match self {
            PublicKey::Rsa { spki, .. }
            | PublicKey::Ec { spki, .. }
            | PublicKey::Ed25519 { spki, .. } => Some(spki),
            PublicKey::Oct(_) => None,
        }
    }
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
    /// No `keys` member (and not an x509 map).
    #[error("Jwks does not have [keys] field")]
    NoKeys,
    /// `keys` is not an array.
    #[error("[keys] in Jwks is not an array")]
    KeysNotArray,
    /// Every key was unusable; `skipped` says why each was skipped.
    #[error("Jwks doesn't have any valid public key ({skipped})")]
    NoValidKeys {
        /// jwt_verify_lib's status for the set: the first skipped key's reason, or
        /// `JwksNoValidKeys` when there was no key object at all.
        first: AuthnStatus,
        /// One reason per skipped key, `keys[i]: reason`, joined with `; `.
        skipped: String,
    },
    /// An x509 map whose certificate for `kid` is unusable. jwt_verify_lib refuses the whole
    /// map then (`createFromX509` stops at the first failure).
    #[error("Jwks x509 certificate for kid {kid:?}: {status}")]
    X509 {
        /// The map key of the certificate.
        kid: String,
        /// `JwksX509ParseError` or `JwksX509GetPubkeyError`.
        status: AuthnStatus,
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
            JwksError::NoValidKeys { .. }
            | JwksError::X509 { .. }
            | JwksError::TooLarge(_)
            | JwksError::TooManyKeys(_) => AuthnStatus::JwksNoValidKeys,
        }
    }

    /// The status jwt_verify_lib's `Jwks::getStatus()` reports for the same document (the
    /// first failure it met), for parity tests and logs.
    pub const fn jwt_verify_lib_status(&self) -> AuthnStatus {
        match self {
            JwksError::NoValidKeys { first, .. } => *first,
            JwksError::X509 { status, .. } => *status,
            other => other.status(),
        }
    }
}

/// A parsed key set: only usable keys, in document order (selection tries them in order).
#[derive(Debug, Clone)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document (or an x509 certificate map).
    pub fn parse(text: &str) -> Result<Jwks, JwksError> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(JwksError::TooLarge(text.len()));
        }
        let doc = super::json::parse_object(text.as_bytes()).ok_or(JwksError::InvalidJson)?;
        let entries = match doc.get("keys") {
            None if is_x509_map(&doc) => return Jwks::from_x509_map(&doc),
            None => return Err(JwksError::NoKeys),
            Some(Value::Array(entries)) => entries,
            Some(_) => return Err(JwksError::KeysNotArray),
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys(entries.len()));
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        let mut first = None;
        for (i, entry) in entries.iter().enumerate() {
            // jwt_verify_lib skips a non-object entry without recording a status.
            let Some(object) = entry.as_object() else {
                skipped.push(format!("keys[{i}]: not a JSON object"));
                continue;
            };
            match Jwk::from_json(object) {
                Ok(jwk) => keys.push(jwk),
                Err(status) => {
                    first.get_or_insert(status);
                    skipped.push(format!("keys[{i}]: {}", status.message()));
                }
            }
        }
        if keys.is_empty() {
            let skipped = if skipped.is_empty() {
                "the set is empty".to_owned()
            } else {
                skipped.join("; ")
            };
            return Err(JwksError::NoValidKeys {
                first: first.unwrap_or(AuthnStatus::JwksNoValidKeys),
                skipped,
            });
        }
        Ok(Jwks { keys })
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The set without its symmetric (`oct`) keys, and how many there were.
    pub fn without_symmetric_keys(mut self) -> (Jwks, usize) {
        let before = self.keys.len();
        self.keys.retain(|k| !matches!(k.key, PublicKey::Oct(_)));
        let dropped = before.saturating_sub(self.keys.len());
        (self, dropped)
    }

    fn from_x509_map(doc: &Map<String, Value>) -> Result<Jwks, JwksError> {
        if doc.len() > MAX_JWKS_KEYS {
            return Err(JwksError::TooManyKeys(doc.len()));
        }
        let mut keys = Vec::with_capacity(doc.len());
        // protobuf's Struct is a map ordered by key; serde_json's Map (without
        // preserve_order) is a BTreeMap, so the order is the same.
        for (kid, cert) in doc {
            let cert = cert.as_str().unwrap_or_default();
            let key = x509_rsa_key(cert).map_err(|status| JwksError::X509 {
                kid: kid.clone(),
                status,
            })?;
            keys.push(Jwk {
                kid: kid.clone(),
                alg: String::new(),
                key,
            });
        }
        Ok(Jwks { keys })
    }
}

const X509_PREFIX: &str = "-----BEGIN CERTIFICATE-----\n";
const X509_SUFFIX: &str = "\n-----END CERTIFICATE-----\n";

/// jwt_verify_lib's `shouldCheckX509`: a non-empty object whose every member has a non-empty
/// name and a PEM certificate string value.
fn is_x509_map(doc: &Map<String, Value>) -> bool {
    !doc.is_empty()
        && doc.iter().all(|(kid, v)| {
            !kid.is_empty()
                && v.as_str()
                    .is_some_and(|c| c.starts_with(X509_PREFIX) && c.ends_with(X509_SUFFIX))
        })
}

/// The RSA key of one PEM certificate (jwt_verify_lib takes RSA certificates only).
fn x509_rsa_key(pem: &str) -> Result<PublicKey, AuthnStatus> {
    let body = pem
        .strip_prefix(X509_PREFIX.trim_end())
        .and_then(|rest| rest.strip_suffix(X509_SUFFIX.trim_start()))
        .ok_or(AuthnStatus::JwksX509ParseError)?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let cert = b64::decode_standard(&b64).ok_or(AuthnStatus::JwksX509ParseError)?;
    let spki = der::certificate_spki(&cert).ok_or(AuthnStatus::JwksX509ParseError)?;
    let (n, e) = der::rsa_spki_components(spki).ok_or(AuthnStatus::JwksX509GetPubkeyError)?;
    rsa_from_components(n, e).map_err(|_| AuthnStatus::JwksX509GetPubkeyError)
}

impl Jwk {
    /// One JWK, or jwt_verify_lib's status for why it is skipped (`jwks.cc#extractJwk`).
    fn from_json(jwk: &Map<String, Value>) -> Result<Jwk, AuthnStatus> {
        let kty = match jwk.get("kty") {
            None => return Err(AuthnStatus::JwksMissingKty),
            Some(Value::String(kty)) => kty.as_str(),
            Some(_) => return Err(AuthnStatus::JwksBadKty),
        };
        // jwt_verify_lib reads kid/alg leniently: a non-string is taken as absent.
        let kid = string_member(jwk, "kid").unwrap_or_default().to_owned();
        let alg = string_member(jwk, "alg").unwrap_or_default().to_owned();
        let key = match kty {
            "EC" => ec_key(jwk, &alg)?,
            "RSA" => rsa_key(jwk, &alg)?,
            "oct" => oct_key(jwk, &alg)?,
            "OKP" => okp_key(jwk, &alg)?,
            _ => return Err(AuthnStatus::JwksNotImplementedKty),
        };
        Ok(Jwk { kid, alg, key })
    }
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

/// A required string member: absent ⇒ `missing`, not a string ⇒ `not_string`.
fn required_string<'a>(
    jwk: &'a Map<String, Value>,
    name: &str,
    missing: AuthnStatus,
    not_string: AuthnStatus,
) -> Result<&'a str, AuthnStatus> {
    match jwk.get(name) {
        None => Err(missing),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(not_string),
    }
}

fn rsa_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, AuthnStatus> {
    if !alg.is_empty() && !alg.starts_with("RS") && !alg.starts_with("PS") {
        return Err(AuthnStatus::JwksRSAKeyBadAlg);
    }
    let n = required_string(
        jwk,
        "n",
        AuthnStatus::JwksRSAKeyMissingN,
        AuthnStatus::JwksRSAKeyBadN,
    )?;
    let e = required_string(
        jwk,
        "e",
        AuthnStatus::JwksRSAKeyMissingE,
        AuthnStatus::JwksRSAKeyBadE,
    )?;
    let n = b64::decode(n).ok_or(AuthnStatus::JwksRsaParseError)?;
    let e = b64::decode(e).ok_or(AuthnStatus::JwksRsaParseError)?;
    rsa_from_components(&n, &e)
}

/// An RSA key from big-endian `n` and `e`, judged as BoringSSL's `RSA_check_key` judges a
/// public key, after jwt_verify_lib's own exponent rule (3 or 65537 only).
fn rsa_from_components(n: &[u8], e: &[u8]) -> Result<PublicKey, AuthnStatus> {
    // An even modulus is no RSA modulus (BoringSSL refuses it too).
    if n.last().is_none_or(|b| b & 1 == 0) {
        return Err(AuthnStatus::JwksRsaParseError);
    }
    let e_value = e.iter().try_fold(0u32, |acc, b| {
        acc.checked_mul(256)?.checked_add(u32::from(*b))
    });
    if e_value != Some(3) && e_value != Some(65537) {
        return Err(AuthnStatus::JwksRsaParseError);
    }
    let key = RsaPublicKey::new(n, e, MAX_RSA_BITS).map_err(|_| AuthnStatus::JwksRsaParseError)?;
    let spki = der::rsa_spki(&key.modulus_be(), &key.exponent_be()).into_boxed_slice();
    Ok(PublicKey::Rsa { key, spki })
}

fn ec_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, AuthnStatus> {
    if !alg.is_empty() && !alg.starts_with("ES") {
        return Err(AuthnStatus::JwksECKeyBadAlg);
    }
    let crv = match jwk.get("crv") {
        None => "",
        Some(Value::String(crv)) => crv.as_str(),
        Some(_) => return Err(AuthnStatus::JwksECKeyBadCrv),
    };
    if !alg.is_empty() && !crv.is_empty() {
        let compatible = matches!(
            (alg, crv),
            ("ES256", "P-256") | ("ES384", "P-384") | ("ES512", "P-521")
        );
        if !compatible {
            return Err(AuthnStatus::JwksECKeyAlgNotCompatibleWithCrv);
        }
    }
    // No alg and no crv means P-256, as in jwt_verify_lib.
    let curve = if alg == "ES256" || crv == "P-256" || (alg.is_empty() && crv.is_empty()) {
        Curve::P256
    } else if alg == "ES384" || crv == "P-384" {
        Curve::P384
    } else if alg == "ES512" || crv == "P-521" {
        Curve::P521
    } else {
        return Err(AuthnStatus::JwksECKeyAlgOrCrvUnsupported);
    };
    let x = required_string(
        jwk,
        "x",
        AuthnStatus::JwksECKeyMissingX,
        AuthnStatus::JwksECKeyBadX,
    )?;
    let y = required_string(
        jwk,
        "y",
        AuthnStatus::JwksECKeyMissingY,
        AuthnStatus::JwksECKeyBadY,
    )?;
    let (Some(x), Some(y)) = (b64::decode(x), b64::decode(y)) else {
        return Err(AuthnStatus::JwksEcXorYBadBase64);
    };
    // Coordinates are big-endian integers (BN_bin2bn): leading zeros do not count, and a
    // value wider than the field is no point of the curve.
    let size = curve.field_bytes();
    let mut point = vec![0u8; 1 + 2 * size];
    let parse_error = AuthnStatus::JwksEcParseError;
    if let Some(first) = point.first_mut() {
        *first = 0x04; // SEC1 uncompressed
    }
    for (at, coordinate) in [(1, &x), (1 + size, &y)] {
        let digits = strip_leading_zeros(coordinate);
        let start = (at + size)
            .checked_sub(digits.len())
            .filter(|s| *s >= at)
            .ok_or(parse_error)?;
        point
            .get_mut(start..at + size)
            .ok_or(parse_error)?
            .copy_from_slice(digits);
    }
    let key = match curve {
        Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map(EcKey::P256),
        Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).map(EcKey::P384),
        Curve::P521 => p521::ecdsa::VerifyingKey::from_sec1_bytes(&point).map(EcKey::P521),
    }
    .map_err(|_| parse_error)?;
    let spki = der::ec_spki(curve.oid(), &point).into_boxed_slice();
    Ok(PublicKey::Ec { key, spki })
}

#[derive(Clone, Copy)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    const fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    const fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => der::OID_P256,
            Curve::P384 => der::OID_P384,
            Curve::P521 => der::OID_P521,
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(zeros..).unwrap_or_default()
}

fn oct_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, AuthnStatus> {
    if !alg.is_empty() && alg != "HS256" && alg != "HS384" && alg != "HS512" {
        return Err(AuthnStatus::JwksHMACKeyBadAlg);
    }
    let k = required_string(
        jwk,
        "k",
        AuthnStatus::JwksHMACKeyMissingK,
        AuthnStatus::JwksHMACKeyBadK,
    )?;
    match b64::decode(k) {
        Some(secret) if !secret.is_empty() => Ok(PublicKey::Oct(secret.into_boxed_slice())),
        _ => Err(AuthnStatus::JwksOctBadBase64),
    }
}

fn okp_key(jwk: &Map<String, Value>, alg: &str) -> Result<PublicKey, AuthnStatus> {
    if !alg.is_empty() && alg != "EdDSA" {
        return Err(AuthnStatus::JwksOKPKeyBadAlg);
    }
    let crv = required_string(
        jwk,
        "crv",
        AuthnStatus::JwksOKPKeyMissingCrv,
        AuthnStatus::JwksOKPKeyBadCrv,
    )?;
    if crv != "Ed25519" {
        return Err(AuthnStatus::JwksOKPKeyCrvUnsupported);
    }
    let x = required_string(
        jwk,
        "x",
        AuthnStatus::JwksOKPKeyMissingX,
        AuthnStatus::JwksOKPKeyBadX,
    )?;
    let x = b64::decode(x).ok_or(AuthnStatus::JwksOKPXBadBase64)?;
    let raw: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| AuthnStatus::JwksOKPXWrongLength)?;
    Ok(PublicKey::Ed25519 {
        key: ed25519::Key::new(&raw),
        spki: der::ed25519_spki(&raw).into_boxed_slice(),
    })
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
        assert_eq!(jwks.keys()[0].key.kty(), "EC");
        assert_eq!(jwks.keys()[0].key.crv(), Some("P-256"));
        assert_eq!(jwks.keys()[1].kid, "2011-04-29");
        assert_eq!(jwks.keys()[1].alg, "RS256");
        assert_eq!(jwks.keys()[1].key.kty(), "RSA");
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
            Err(JwksError::NoValidKeys {
                first: AuthnStatus::JwksNoValidKeys,
                ..
            })
        ));
        let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(MAX_JWKS_BYTES));
        assert!(matches!(Jwks::parse(&big), Err(JwksError::TooLarge(_))));
        let many = format!(
            r#"{{"keys":[{}]}}"#,
            vec![r#"{"kty":"oct","k":"AA"}"#; MAX_JWKS_KEYS + 1].join(",")
        );
        assert!(matches!(
            Jwks::parse(&many),
            Err(JwksError::TooManyKeys(101))
        ));
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
        let JwksError::NoValidKeys { first, skipped } = Jwks::parse(doc).unwrap_err() else {
            panic!()
        };
        assert_eq!(first, AuthnStatus::JwksRSAKeyMissingE);
        for want in [
            "keys[0]: [e] field is missing for a RSA key",
            "keys[1]: [alg] is not started with [RS] or [PS] for an RSA key",
            "keys[2]: Jwks EC [x] and [y] fields have a parse error.",
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
            Err(JwksError::NoValidKeys {
                first: AuthnStatus::JwksRsaParseError,
                ..
            })
        ));
    }

    #[test]
    fn rsa_spki_is_the_standard_encoding() {
        use ::rsa::pkcs8::EncodePublicKey as _;
        let jwks = Jwks::parse(RFC7517_A1).unwrap();
        let PublicKey::Rsa { spki, .. } = &jwks.keys()[1].key else {
            panic!()
        };
        // The `rsa` crate's encoding of the same n and e, read from the RFC's text.
        let rfc: Value = serde_json::from_str(RFC7517_A1).unwrap();
        let component = |name: &str| {
            ::rsa::BigUint::from_bytes_be(
                &b64::decode(rfc["keys"][1][name].as_str().unwrap()).unwrap(),
            )
        };
        let oracle = ::rsa::RsaPublicKey::new(component("n"), component("e")).unwrap();
        assert_eq!(&spki[..], oracle.to_public_key_der().unwrap().as_bytes());
    }

    #[test]
    fn hmac_secret_is_not_printed() {
        let jwks = Jwks::parse(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
        let shown = format!("{jwks:?}");
        assert!(shown.contains("Oct(6 bytes)"), "{shown}");
        assert!(!shown.contains("115"), "{shown}");
    }
}
