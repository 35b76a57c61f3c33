//! The oracle for the token JSON scanner: claims read the way `Jwt::parse` read them before the
//! scanner (filter/src/jwt/token.rs at commit 5fc07fa, `decode_object`, `optional_string`,
//! `optional_u64` and the claim order kept as they were): each section read into a serde_json
//! map by `json::parse_object`, then the claims taken from the maps in jwt_verify_lib's order.
//! Shared by tests/jwt_scan.rs and the `jwt_scan` fuzz target (included by path).
#![allow(dead_code)] // each includer uses part of it

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mesh_authn::jwt::json::{parse_object, scan_object};
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::{AuthnStatus, Jwt};
use serde_json::{Map, Value};

/// What the old `Jwt::parse` gave for a header and payload.
#[derive(Debug, PartialEq)]
pub struct Claims {
    pub alg: Alg,
    pub kid: String,
    pub iss: String,
    pub sub: String,
    pub audiences: Vec<String>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub payload: Map<String, Value>,
}

/// The old claim reading from the decoded header and payload JSON.
pub fn claims(header: &[u8], payload: &[u8]) -> Result<Claims, AuthnStatus> {
    let header = parse_object(header).ok_or(AuthnStatus::JwtHeaderParseErrorBadJson)?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => {
            Alg::from_name(name).ok_or(AuthnStatus::JwtHeaderNotImplementedAlg)?
        }
        _ => return Err(AuthnStatus::JwtHeaderBadAlg),
    };
    let kid = optional_string(&header, "kid", AuthnStatus::JwtHeaderBadKid)?;

    let payload = parse_object(payload).ok_or(AuthnStatus::JwtPayloadParseErrorBadJson)?;
    let iss = optional_string(
        &payload,
        "iss",
        AuthnStatus::JwtPayloadParseErrorIssNotString,
    )?;
    let sub = optional_string(
        &payload,
        "sub",
        AuthnStatus::JwtPayloadParseErrorSubNotString,
    )?;
    let iat = optional_u64(
        &payload,
        "iat",
        AuthnStatus::JwtPayloadParseErrorIatNotInteger,
        AuthnStatus::JwtPayloadParseErrorIatOutOfRange,
    )?;
    let nbf = optional_u64(
        &payload,
        "nbf",
        AuthnStatus::JwtPayloadParseErrorNbfNotInteger,
        AuthnStatus::JwtPayloadParseErrorNbfOutOfRange,
    )?;
    let exp = optional_u64(
        &payload,
        "exp",
        AuthnStatus::JwtPayloadParseErrorExpNotInteger,
        AuthnStatus::JwtPayloadParseErrorExpOutOfRange,
    )?;
    optional_string(
        &payload,
        "jti",
        AuthnStatus::JwtPayloadParseErrorJtiNotString,
    )?;
    let audiences = match payload.get("aud") {
        None => Vec::new(),
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(aud) => Ok(aud.clone()),
                _ => Err(AuthnStatus::JwtPayloadParseErrorAudNotString),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(AuthnStatus::JwtPayloadParseErrorAudNotString),
    };
    Ok(Claims {
        alg,
        kid,
        iss,
        sub,
        audiences,
        iat,
        nbf,
        exp,
        payload,
    })
}

fn optional_string(
    object: &Map<String, Value>,
    name: &str,
    wrong_type: AuthnStatus,
) -> Result<String, AuthnStatus> {
    match object.get(name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(wrong_type),
    }
}

fn optional_u64(
    object: &Map<String, Value>,
    name: &str,
    wrong_type: AuthnStatus,
    out_of_range: AuthnStatus,
) -> Result<u64, AuthnStatus> {
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    match object.get(name) {
        None => Ok(0),
        Some(Value::Number(n)) => {
            let v = n.as_f64().ok_or(out_of_range)?;
            if !(0.0..TWO_POW_64).contains(&v) {
                return Err(out_of_range);
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        }
        Some(_) => Err(wrong_type),
    }
}

/// Panics unless the scanner and `parse_object` agree on `json` (accept or refuse), and
/// `Jwt::parse` on a token with `header` and `payload` gives what the old reading gives.
pub fn check(header: &[u8], payload: &[u8]) {
    for json in [header, payload] {
        assert_eq!(
            scan_object(json, &[], &mut []).is_some(),
            parse_object(json).is_some(),
            "scanner and parse_object disagree on {:?}",
            String::from_utf8_lossy(json)
        );
    }
    // An empty section is skipped by the token split (JwtBadFormat), before any JSON.
    if header.is_empty() || payload.is_empty() {
        return;
    }
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(b"sig")
    );
    let got = Jwt::parse(&token).and_then(|jwt| {
        Ok(Claims {
            alg: jwt.alg,
            kid: jwt.kid.clone(),
            iss: jwt.iss.clone(),
            sub: jwt.sub.clone(),
            audiences: jwt.audiences.clone(),
            iat: jwt.iat,
            nbf: jwt.nbf,
            exp: jwt.exp,
            // A payload the map builder refuses after the scanner accepted it fails here.
            payload: jwt.payload().map_err(AuthnStatus::from)?.clone(),
        })
    });
    assert_eq!(
        got,
        claims(header, payload),
        "header {:?} payload {:?}",
        String::from_utf8_lossy(header),
        String::from_utf8_lossy(payload)
    );
}
