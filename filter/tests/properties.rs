//! Property tests (proptest) for the invariants a parser or rewriter must never break:
//!
//! - a token verifies iff it is exactly the signed bytes: any mutation of the header or payload
//!   segment fails, and a mutated signature segment verifies only when it still decodes to the
//!   same signature as jwt_verify_lib reads it (for ES256 an odd trailing byte is ignored, as
//!   `verifySignatureEC` splits `len/2`), for RS256, ES256, HS256 and EdDSA keys made here;
//! - query-token removal keeps every other parameter byte for byte and removes every occurrence;
//! - cookie removal keeps every other cookie, in order;
//! - the plugin-config parser never panics on arbitrary structured YAML or JSON;
//! - claim outputs never carry CR, LF or NUL unless the claim is a string holding them (which
//!   Envoy then refuses to send upstream: outputs.rs);
//! - a request decides the same with the verified-token cache on and off, over random rules,
//!   tokens and clocks: the RequestAuthentication verdict, the token AuthorizationPolicy reads,
//!   and an AuthorizationPolicy's verdict on that token's claims.
//!
//! Expected values come from the generator (which knows what it built), never from the code
//! under test. The case count is small for `make test`; a longer run:
//! `PROPTEST_CASES=5000 cargo test -p mesh-authn --test properties --release`.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::rc::Rc;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use mesh_authn::authz::matcher::StringMatch;
use mesh_authn::authz::{Action, Attributes, Authz, Condition, Matcher, Policy, Rule, TokenClaims};
use mesh_authn::config::FilterConfig;
use mesh_authn::extract::{Location, RequestState};
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::jwt::{Audiences, Jwks};
use mesh_authn::outputs::claim_value;
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request::Request;
use mesh_authn::request_authn::{verify_token, Env, KeySource, Provider, RequestAuthn};
use mesh_authn::token_cache::{Settings as CacheSettings, TokenCache};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Default cases unless `PROPTEST_CASES` says otherwise (kept small: `make test` runs these).
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var("PROPTEST_CASES").is_err() {
        c.cases = cases;
    }
    c
}

// ---------------------------------------------------------------- signing

#[derive(Debug, Clone, Copy)]
enum KeyKind {
    Rs256,
    Es256,
    Hs256,
    EdDsa,
}

const KINDS: [KeyKind; 4] = [
    KeyKind::Rs256,
    KeyKind::Es256,
    KeyKind::Hs256,
    KeyKind::EdDsa,
];

struct Keys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
    hmac: Vec<u8>,
    ed: ed25519_dalek::SigningKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        Keys {
            rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            ec: p256::ecdsa::SigningKey::from_slice(&[0x5a; 32]).unwrap(),
            hmac: (0u8..32).map(|i| i.wrapping_mul(37) ^ 0xa5).collect(),
            ed: ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]),
        }
    })
}

fn alg(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rs256 => "RS256",
        KeyKind::Es256 => "ES256",
        KeyKind::Hs256 => "HS256",
        KeyKind::EdDsa => "EdDSA",
    }
}

fn jwks(kind: KeyKind) -> Jwks {
    use rsa::traits::PublicKeyParts as _;
    let k = keys();
    let key = match kind {
        KeyKind::Rs256 => json!({"kty": "RSA", "kid": "k", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(k.rsa.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(k.rsa.e().to_bytes_be())}),
        KeyKind::Es256 => {
            let point = k.ec.verifying_key().to_sec1_point(false);
            let bytes = point.as_bytes();
            json!({"kty": "EC", "crv": "P-256", "kid": "k", "alg": "ES256",
                "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&bytes[33..65])})
        }
        KeyKind::Hs256 => json!({"kty": "oct", "kid": "k", "alg": "HS256",
            "k": URL_SAFE_NO_PAD.encode(&k.hmac)}),
        KeyKind::EdDsa => json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "alg": "EdDSA",
            "x": URL_SAFE_NO_PAD.encode(k.ed.verifying_key().to_bytes())}),
    };
    Jwks::parse(&json!({ "keys": [key] }).to_string()).unwrap()
}

fn sign(kind: KeyKind, message: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    let k = keys();
    match kind {
        KeyKind::Rs256 => {
            let digest = sha2::Sha256::digest(message);
            k.rsa
                .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
                .unwrap()
        }
        KeyKind::Es256 => {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::Signature = k.ec.sign(message);
            sig.to_bytes().to_vec()
        }
        KeyKind::Hs256 => {
            use hmac::Mac as _;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&k.hmac).unwrap();
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        KeyKind::EdDsa => {
            use ed25519_dalek::Signer as _;
            k.ed.sign(message).to_bytes().to_vec()
        }
    }
}

/// A compact JWS signed by `kind`'s key, with `sub` and `extra` claims.
fn token(kind: KeyKind, sub: &str, extra: &Map<String, Value>) -> String {
    let header = json!({"alg": alg(kind), "kid": "k", "typ": "JWT"});
    let mut payload = extra.clone();
    payload.insert("iss".into(), json!("https://issuer.example"));
    payload.insert("sub".into(), json!(sub));
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(payload).to_string())
    );
    let sig = sign(kind, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn provider(jwks: Jwks) -> Provider {
    Provider {
        issuer: "https://issuer.example".into(),
        audiences: Audiences::new(Vec::<String>::new()),
        jwks: KeySource::Inline(Rc::new(jwks)),
        locations: Location::defaults(),
        forward: false,
        outputs: Default::default(),
        required: false,
        space_delimited_claims: Vec::new(),
    }
}

/// Whether `changed` is still the signature `original` means, as jwt_verify_lib reads one:
/// base64url with the trailing bits after the last whole byte ignored (absl), and for ECDSA
/// (`verifySignatureEC`) `r` = the first `len/2` bytes and `s` = the next `len/2` as big-endian
/// integers, so an odd last byte is ignored and leading zero bytes mean nothing. Every other
/// family compares the bytes (BoringSSL's RSA and Ed25519 take exact lengths; HMAC compares
/// all bytes).
fn same_signature(kind: KeyKind, original: &str, changed: &str) -> bool {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ABSL: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let (Ok(a), Ok(b)) = (ABSL.decode(original), ABSL.decode(changed)) else {
        return false;
    };
    match kind {
        KeyKind::Es256 => {
            let halves = |sig: &[u8]| {
                let n = sig.len() / 2;
                let strip = |x: &[u8]| {
                    x.iter()
                        .skip_while(|b| **b == 0)
                        .copied()
                        .collect::<Vec<u8>>()
                };
                (strip(&sig[..n]), strip(&sig[n..2 * n]))
            };
            halves(&a) == halves(&b)
        }
        _ => a == b,
    }
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A mutation of one segment that changes what the segment means.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the character at `at` (never the last: its low bits may be padding that the
    /// decoder ignores, a change that means nothing) with another base64url character.
    Replace { at: usize, with: u8 },
    /// Insert a byte that is neither whitespace nor `.` (both of which the parser skips) nor
    /// `=` (padding, which the decoder takes or leaves).
    Insert { at: usize, byte: u8 },
    /// Delete a character.
    Delete { at: usize },
    /// Truncate to a shorter (non-empty) prefix.
    Truncate { keep: usize },
    /// Append base64url characters.
    Append { text: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let b64 = prop::sample::select(B64URL.to_vec());
    let other = any::<u8>().prop_filter("skipped by the parser", |b| {
        !matches!(*b, b'.' | b'=' | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
    });
    prop_oneof![
        (any::<usize>(), b64.clone()).prop_map(|(at, with)| Mutation::Replace { at, with }),
        (any::<usize>(), other).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Delete { at }),
        any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        prop::collection::vec(b64, 1..6).prop_map(|text| Mutation::Append { text }),
    ]
}

/// Applies `m` to `segment`; `None` when it would leave the segment unchanged.
fn mutate(segment: &str, m: &Mutation) -> Option<Vec<u8>> {
    let mut s = segment.as_bytes().to_vec();
    let n = s.len();
    match m {
        Mutation::Replace { at, with } => {
            let at = at % (n - 1);
            if s[at] == *with {
                return None;
            }
            s[at] = *with;
        }
        Mutation::Insert { at, byte } => s.insert(at % (n + 1), *byte),
        Mutation::Delete { at } => {
            s.remove(at % n);
        }
        Mutation::Truncate { keep } => s.truncate(1 + keep % (n - 1)),
        Mutation::Append { text } => s.extend_from_slice(text),
    }
    Some(s)
}

fn claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z]{1,6}", json_leaf(), 0..4).prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| k != "exp" && k != "nbf" && k != "iss" && k != "aud" && k != "sub")
            .collect()
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x7f]{0,12}".prop_map(Value::String),
    ]
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn a_token_verifies_iff_it_is_exactly_the_signed_bytes(
        kind in prop::sample::select(KINDS.to_vec()),
        sub in "[ -~]{0,40}",
        extra in claims(),
        segment in 0usize..3,
        m in mutation(),
    ) {
        let jwks = jwks(kind);
        let p = provider(jwks);
        let good = token(kind, &sub, &extra);
        prop_assert!(verify_token(&p, &good, &common::ENV).is_ok(), "{kind:?}: the signed token");

        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let Some(changed) = mutate(&parts[segment], &m) else { return Ok(()); };
        // Inserted bytes may be non-UTF-8: such a header value never reaches the parser as a
        // token (extract.rs reads it lossily), and here it is simply not a &str.
        let Ok(changed) = String::from_utf8(changed) else { return Ok(()); };
        let same_signature = segment == 2 && same_signature(kind, &parts[2], &changed);
        parts[segment] = changed;
        let bad = parts.join(".");
        prop_assert_eq!(
            verify_token(&p, &bad, &common::ENV).is_ok(),
            same_signature,
            "{:?}: segment {} mutated by {:?}: {}", kind, segment, m, bad
        );
    }

    #[test]
    fn a_token_signed_by_another_family_never_verifies(
        signer in prop::sample::select(KINDS.to_vec()),
        verifier in prop::sample::select(KINDS.to_vec()),
        sub in "[a-z]{0,8}",
    ) {
        prop_assume!(alg(signer) != alg(verifier));
        let p = provider(jwks(verifier));
        let t = token(signer, &sub, &Map::new());
        prop_assert!(verify_token(&p, &t, &common::ENV).is_err());
    }
}

// ---------------------------------------------------------------- query and cookie removal

/// One query pair as the client wrote it, and whether it is the token's parameter.
fn query_pair() -> impl Strategy<Value = (Vec<u8>, bool)> {
    // Keys that can never decode to `access_token`, values with escapes and `=`.
    let other_key = "[a-z0-9%=._~-]{0,10}".prop_filter("not the token param", |k| {
        !k.contains("access") && !k.contains('%')
    });
    let value = "[A-Za-z0-9%=._~+/-]{0,16}";
    let token_key = prop::sample::select(vec![
        "access_token",
        "access%5Ftoken",
        "%61ccess_token",
        "access_toke%6E",
    ]);
    prop_oneof![
        3 => (other_key, prop::option::of(value)).prop_map(|(k, v)| {
            let pair = match v { Some(v) => format!("{k}={v}"), None => k };
            (pair.into_bytes(), false)
        }),
        1 => (token_key, value).prop_map(|(k, v)| (format!("{k}={v}").into_bytes(), true)),
    ]
}

fn cookie_pair() -> impl Strategy<Value = (Vec<u8>, bool)> {
    let other = ("[a-z]{1,7}", "[A-Za-z0-9._=\"-]{0,10}")
        .prop_filter("not the token cookie", |(n, _)| n != "session");
    prop_oneof![
        3 => other.prop_map(|(n, v)| (format!("{n}={v}").into_bytes(), false)),
        1 => "[A-Za-z0-9._-]{1,12}".prop_map(|v| (format!("session={v}").into_bytes(), true)),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn query_token_removal_keeps_every_other_parameter_byte_for_byte(
        base in "/[a-z0-9/._-]{0,12}",
        pairs in prop::collection::vec(query_pair(), 1..12),
    ) {
        let query: Vec<&[u8]> = pairs.iter().map(|(p, _)| p.as_slice()).collect();
        let mut path = base.clone().into_bytes();
        path.push(b'?');
        path.extend_from_slice(&query.join(&b'&'));
        let request = Request::new(vec![(b":path".to_vec(), path.clone())]);
        let token = Location::Param("access_token".into());
        let mut state = RequestState::new(&request);
        let has_token = pairs.iter().any(|(_, t)| *t);
        prop_assert_eq!(!state.extract(std::slice::from_ref(&token)).is_empty(), has_token);
        state.remove(&token);
        prop_assert!(state.extract(std::slice::from_ref(&token)).is_empty());

        let kept: Vec<&[u8]> = pairs.iter().filter(|(_, t)| !*t).map(|(p, _)| p.as_slice()).collect();
        let mut expected = base.into_bytes();
        if !kept.is_empty() {
            expected.push(b'?');
            expected.extend_from_slice(&kept.join(&b'&'));
        }
        let rewritten = state.rewritten_path().unwrap();
        prop_assert_eq!(
            String::from_utf8_lossy(&rewritten),
            String::from_utf8_lossy(&expected),
            "from {}", String::from_utf8_lossy(&path)
        );
    }

    #[test]
    fn cookie_removal_keeps_other_cookies(
        headers in prop::collection::vec(prop::collection::vec(cookie_pair(), 1..5), 1..3),
    ) {
        let mut pairs = vec![(b":path".to_vec(), b"/".to_vec())];
        for h in &headers {
            let value: Vec<&[u8]> = h.iter().map(|(c, _)| c.as_slice()).collect();
            pairs.push((b"cookie".to_vec(), value.join(&b"; "[..])));
        }
        let request = Request::new(pairs);
        let session = Location::Cookie("session".into());
        let mut state = RequestState::new(&request);
        let has_token = headers.iter().flatten().any(|(_, t)| *t);
        prop_assert_eq!(!state.extract(std::slice::from_ref(&session)).is_empty(), has_token);
        state.remove(&session);
        let kept: Vec<&[u8]> = headers
            .iter()
            .flatten()
            .filter(|(_, t)| !*t)
            .map(|(c, _)| c.as_slice())
            .collect();
        let expected = (!kept.is_empty()).then(|| kept.join(&b"; "[..]));
        prop_assert_eq!(state.rewritten_cookie(), Some(expected));
    }
}

// ---------------------------------------------------------------- plugin config

/// Field names the parser knows, so generated documents get past the first level.
const FIELDS: &[&str] = &[
    "workload",
    "namespace",
    "labels",
    "policies",
    "rootNamespace",
    "trustDomain",
    "trustDomainAliases",
    "jwks",
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "selector",
    "matchLabels",
    "targetRef",
    "targetRefs",
    "jwtRules",
    "issuer",
    "audiences",
    "jwksUri",
    "fromHeaders",
    "prefix",
    "fromParams",
    "fromCookies",
    "forwardOriginalToken",
    "outputPayloadToHeader",
    "outputClaimToHeaders",
    "header",
    "claim",
    "timeout",
    "mtls",
    "mode",
    "portLevelMtls",
    "app",
    "8080",
    "cacheDuration",
    "fetchTimeout",
    "presence",
];

fn config_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "RequestAuthentication",
            "PeerAuthentication",
            "security.istio.io/v1",
            "security.istio.io/v1beta1",
            "STRICT",
            "PERMISSIVE",
            "DISABLE",
            "UNSET",
            "default",
            "istio-system",
            "https://issuer.example",
            "Bearer ",
            "x-jwt",
            "sub",
            "a.b",
            "1s",
            "{\"keys\":[]}",
            "",
            "REQUIRED",
        ])
        .prop_map(|s| json!(s)),
        any::<String>().prop_map(Value::String),
    ]
}

fn config_value() -> impl Strategy<Value = Value> {
    config_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), inner, 0..6)
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
        ]
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_plugin_config_parser_never_panics_on_structured_input(doc in config_value()) {
        let json = doc.to_string();
        let _ = FilterConfig::parse(json.as_bytes());
        let yaml = serde_yaml_ng::to_string(&doc).unwrap();
        let _ = FilterConfig::parse(yaml.as_bytes());
    }

    #[test]
    fn the_plugin_config_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = FilterConfig::parse(&bytes);
    }
}

// ---------------------------------------------------------------- claim outputs

fn payload_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        // Strings with the bytes a header value must not carry.
        "[a-z\\r\\n\\x00 ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn claim_outputs_carry_no_cr_lf_nul_unless_the_claim_string_does(
        payload in prop::collection::btree_map("[a-c]", payload_value(), 0..4),
        path in prop::collection::vec("[a-c]", 1..4),
    ) {
        let payload: Map<String, Value> = payload.into_iter().collect();
        // The claim as the generator knows it: walk objects only.
        let mut at = payload.get(&path[0]);
        for key in &path[1..] {
            at = at.and_then(|v| v.as_object()).and_then(|o| o.get(key));
        }
        let out = claim_value(&payload, &path);
        match at {
            None | Some(Value::Null) => prop_assert_eq!(out, None),
            Some(Value::String(s)) if s.is_empty() => prop_assert_eq!(out, None),
            // A string is copied byte for byte (Envoy's behaviour; Envoy refuses the request
            // upstream when it holds CR/LF/NUL).
            Some(Value::String(s)) => prop_assert_eq!(out, Some(s.as_bytes().to_vec())),
            Some(v) => {
                let out = out.unwrap();
                prop_assert!(
                    !out.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                    "{v} gave {:?}", String::from_utf8_lossy(&out)
                );
                if v.is_object() || v.is_array() {
                    prop_assert_eq!(STANDARD.decode(&out).unwrap(), v.to_string().into_bytes());
                }
            }
        }
    }
}

// ---------------------------------------------------------------- verified-token cache

/// A clock the cache tests move around; token times are offsets from it.
const BASE: u64 = 1_700_000_000;
const ISSUERS: [&str; 2] = ["https://issuer.example", "https://other.example"];
const AUDIENCES: [&str; 3] = ["a", "b", "c"];

/// A token the generator mints: its claims (times as offsets from [`BASE`]) and whether its
/// signature is forged.
#[derive(Debug, Clone)]
struct TokenSpec {
    iss: usize,
    aud: Vec<usize>,
    exp: Option<i64>,
    nbf: Option<i64>,
    forged: bool,
}

fn token_spec() -> impl Strategy<Value = TokenSpec> {
    (
        0..ISSUERS.len(),
        prop::collection::vec(0..AUDIENCES.len(), 0..3),
        prop::option::of(-300i64..300),
        prop::option::of(-300i64..300),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(iss, aud, exp, nbf, forged)| TokenSpec {
            iss,
            aud,
            exp,
            nbf,
            forged,
        })
}

/// An ES256 token with `spec`'s claims (a forged one carries the signature of other bytes).
fn minted(spec: &TokenSpec) -> String {
    let mut payload = Map::new();
    payload.insert("iss".into(), json!(ISSUERS[spec.iss]));
    match spec.aud.as_slice() {
        [] => {}
        [one] => {
            payload.insert("aud".into(), json!(AUDIENCES[*one]));
        }
        many => {
            let auds: Vec<&str> = many.iter().map(|i| AUDIENCES[*i]).collect();
            payload.insert("aud".into(), json!(auds));
        }
    }
    for (claim, offset) in [("exp", spec.exp), ("nbf", spec.nbf)] {
        if let Some(offset) = offset {
            payload.insert(claim.into(), json!(BASE.saturating_add_signed(offset)));
        }
    }
    let header = json!({"alg": "ES256", "kid": "k"});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(payload).to_string())
    );
    let signed = if spec.forged {
        format!("{input}x")
    } else {
        input.clone()
    };
    let sig = sign(KeyKind::Es256, signed.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A rule: its issuer (`None`: any), audiences (empty: any), which of two key-set
/// allocations holding the same key it uses, and `forwardOriginalToken`.
#[derive(Debug, Clone)]
struct RuleSpec {
    issuer: Option<usize>,
    audiences: Vec<usize>,
    set: usize,
    forward: bool,
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (
        prop::option::of(0..ISSUERS.len()),
        prop::collection::vec(0..AUDIENCES.len(), 0..3),
        0usize..2,
        any::<bool>(),
    )
        .prop_map(|(issuer, audiences, set, forward)| RuleSpec {
            issuer,
            audiences,
            set,
            forward,
        })
}

fn rule(spec: &RuleSpec, sets: &[Rc<Jwks>; 2]) -> Provider {
    Provider {
        issuer: spec.issuer.map_or("", |i| ISSUERS[i]).to_owned(),
        audiences: Audiences::new(spec.audiences.iter().map(|i| AUDIENCES[*i])),
        jwks: KeySource::Inline(Rc::clone(&sets[spec.set % 2])),
        locations: Location::defaults(),
        forward: spec.forward,
        outputs: Default::default(),
        required: false,
        space_delimited_claims: Vec::new(),
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The cache skips only the signature: every request, at every clock, decides as it does
    /// with the cache off (the independent path: every token parsed, checked and verified).
    /// Rules share key sets, so a token one rule verified is a hit for another rule with other
    /// issuer and audiences, and the clock moves across the tokens' `nbf` and `exp`.
    #[test]
    fn a_request_decides_the_same_with_the_token_cache_on_and_off(
        rules in prop::collection::vec(rule_spec(), 1..4),
        tokens in prop::collection::vec(token_spec(), 1..4),
        steps in prop::collection::vec((any::<usize>(), -400i64..400), 1..12),
    ) {
        let sets = [Rc::new(jwks(KeyKind::Es256)), Rc::new(jwks(KeyKind::Es256))];
        let authn = RequestAuthn::new(rules.iter().map(|r| rule(r, &sets)).collect());
        let tokens: Vec<String> = tokens.iter().map(minted).collect();
        let cache = TokenCache::new(CacheSettings::default());
        // ALLOW when the token AuthorizationPolicy reads has the first issuer.
        let authz = Authz::new(vec![Policy {
            namespace: "ns".into(),
            name: "p".into(),
            action: Action::Allow,
            dry_run: false,
            rules: vec![Rule {
                id: "r".into(),
                never: false,
                from: Vec::new(),
                to: Vec::new(),
                when: vec![Condition {
                    values: vec![Matcher::Claim(vec!["iss".into()], StringMatch::new(ISSUERS[0]))],
                    not_values: Vec::new(),
                }],
            }],
        }]);
        let decide = |request: &Request, env: &Env<'_>| {
            let (decision, attribution) = authn.authenticate_attributed(request, env);
            let token = attribution.token.as_ref().map(|t| TokenClaims {
                payload: t.jwt.payload().unwrap(),
                space_delimited: &[],
            });
            let attrs = Attributes {
                headers: request,
                peer: Default::default(),
                remote_ip: None,
                destination_ip: None,
                destination_port: None,
                sni: None,
                token,
            };
            let authz = authz.evaluate(&attrs).response_code_details();
            (decision, attribution, authz)
        };
        for (which, offset) in steps {
            let now = BASE.saturating_add_signed(offset);
            // One in `tokens.len() + 1` requests carries no token.
            let bearer = tokens.get(which % (tokens.len() + 1)).map(|t| format!("Bearer {t}"));
            let mut pairs = vec![(":path", "/"), (":authority", "h")];
            if let Some(bearer) = &bearer {
                pairs.push(("authorization", bearer.as_str()));
            }
            let request = Request::from_pairs(&pairs);
            let off = Env { now, crypto: &PureRust, remote: &NoRemoteKeys, cache: None };
            let on = Env { cache: Some(&cache), ..off };
            let expected = decide(&request, &off);
            prop_assert_eq!(
                decide(&request, &on),
                expected,
                "at {:+}s with {:?}", offset, bearer
            );
        }
    }
}
