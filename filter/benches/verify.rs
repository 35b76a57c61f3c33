//! Signature verification and JWKS parsing speed, natively (not a test: no assertions on
//! time). `make bench-verify` runs it and prints a table.
//!
//! Tokens and keys are jwt_verify_lib's (tests/fixtures/jwt_verify_lib), except RS256-4096,
//! which has none there: its key is generated here. Each row times `verify_signature` (key
//! selection + signature check, pure-Rust backend) on a one-key set, the request-path work
//! after parsing; `Jwt::parse` is timed once for comparison.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mesh_authn::jwt::verify::{verify_signature, PureRust};
use mesh_authn::jwt::{Jwks, Jwt};
use serde_json::{json, Value};

fn constant(file: &str, name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/jwt_verify_lib/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["constants"][name].as_str().unwrap().to_owned()
}

/// serde_json refuses trailing commas (jwt_verify_lib's HMAC set has one); drop them.
fn strict(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
        if *c == ',' && matches!(next, Some(']' | '}')) {
            continue;
        }
        out.push(*c);
    }
    out
}

/// The one key of `set` whose kid is `kid`, as a one-key set.
fn only(set: &str, kid: &str) -> String {
    let doc: Value = serde_json::from_str(&strict(set)).unwrap();
    let key = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no kid {kid}"))
        .clone();
    json!({ "keys": [key] }).to_string()
}

/// Median time per call over rounds of `batch` calls, for about `budget`.
fn time<F: FnMut()>(mut f: F, budget: Duration) -> Duration {
    f(); // warm up
    let one = {
        let t = Instant::now();
        f();
        t.elapsed().max(Duration::from_nanos(50))
    };
    let batch = (Duration::from_millis(20).as_nanos() / one.as_nanos()).clamp(1, 100_000) as u32;
    let mut rounds = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || rounds.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        rounds.push(t.elapsed() / batch);
    }
    rounds.sort();
    rounds[rounds.len() / 2]
}

fn rs256_4096() -> (String, String) {
    use rsa::traits::PublicKeyParts as _;
    use sha2::Digest as _;
    let mut rng = rand::thread_rng();
    let key = rsa::RsaPrivateKey::new(&mut rng, 4096).unwrap();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"rsa-4096"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"iss":"https://example.com","sub":"bench"}"#)
    );
    let digest = sha2::Sha256::digest(signing_input.as_bytes());
    let sig = key
        .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
        .unwrap();
    let jwks = json!({"keys": [{
        "kty": "RSA", "kid": "rsa-4096", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    }]});
    (
        jwks.to_string(),
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)),
    )
}

fn main() {
    // `cargo test --all-targets` runs bench targets too; only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400),
    );
    let rsa = constant("verify_jwk_rsa_test", "PublicKeyRSA");
    let pss = constant("verify_jwk_rsa_pss_test", "PublicKeyRSAPSS");
    let ec = constant("verify_jwk_ec_test", "PublicKeyJwkEC");
    let okp = constant("verify_jwk_okp_test", "PublicKeyJwkOKP");
    let hmac = constant("verify_jwk_hmac_test", "SymmetricKeyHMAC");
    let (big_jwks, big_token) = rs256_4096();
    let rows: Vec<(&str, String, String)> = vec![
        (
            "RS256 (2048-bit)",
            only(&rsa, "b3319a147514df7ee5e4bcdee51350cc890cc89e"),
            constant("verify_jwk_rsa_test", "JwtTextWithCorrectKid"),
        ),
        ("RS256 (4096-bit)", big_jwks, big_token),
        (
            "PS256 (2048-bit)",
            only(&pss, "4hmO65bbc7IVI-3PfA2emAlO0qhv4rB__yw8BPQ58q8"),
            constant("verify_jwk_rsa_pss_test", "Ps256JwtTextWithCorrectKid"),
        ),
        (
            "ES256 (P-256)",
            only(&ec, "abc"),
            constant("verify_jwk_ec_test", "JwtTextEC"),
        ),
        (
            "ES384 (P-384)",
            only(&ec, "es384"),
            constant("verify_jwk_ec_test", "JwtES384Text"),
        ),
        (
            "ES512 (P-521)",
            only(&ec, "es512"),
            constant("verify_jwk_ec_test", "JwtES512Text"),
        ),
        (
            "EdDSA (Ed25519)",
            only(&okp, "abc"),
            constant("verify_jwk_okp_test", "JwtJWKEd25519"),
        ),
        (
            "HS256",
            only(&hmac, "b3319a147514df7ee5e4bcdee51350cc890cc89e"),
            constant("verify_jwk_hmac_test", "JwtHS256TextWithCorrectKid"),
        ),
    ];
    println!("| what | time per call (native, pure Rust) |");
    println!("|---|---|");
    for (name, jwks, token) in &rows {
        let jwks = Jwks::parse(jwks).unwrap();
        let jwt = Jwt::parse(token).unwrap();
        verify_signature(&jwt, &jwks, &PureRust).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let t = time(
            || {
                black_box(verify_signature(black_box(&jwt), &jwks, &PureRust)).unwrap();
            },
            budget,
        );
        println!("| verify {name} | {:.1} µs |", t.as_secs_f64() * 1e6);
    }
    let token = constant("verify_jwk_rsa_test", "JwtTextWithCorrectKid");
    let t = time(|| drop(black_box(Jwt::parse(black_box(&token)))), budget);
    println!(
        "| parse an RS256 token (Jwt::parse) | {:.1} µs |",
        t.as_secs_f64() * 1e6
    );

    // A 10-key RSA-2048 set (jwt_verify_lib's two keys, five times under other kids), the
    // usual shape of a provider's JWKS.
    let base: Value = serde_json::from_str(&rsa).unwrap();
    let mut keys = Vec::new();
    for i in 0..5 {
        for k in base["keys"].as_array().unwrap() {
            let mut k = k.clone();
            k["kid"] = json!(format!("{}-{i}", k["kid"].as_str().unwrap()));
            keys.push(k);
        }
    }
    let ten_rsa = json!({ "keys": keys }).to_string();
    assert_eq!(Jwks::parse(&ten_rsa).unwrap().keys().len(), 10);
    let t = time(|| drop(black_box(Jwks::parse(black_box(&ten_rsa)))), budget);
    println!(
        "| parse a 10-key RSA-2048 JWKS ({} bytes) | {:.1} µs |",
        ten_rsa.len(),
        t.as_secs_f64() * 1e6
    );
    // A mixed 10-key set: every key type the filter takes.
    let mut mixed = Vec::new();
    for (set, n) in [(&rsa, 2), (&pss, 3), (&ec, 4)] {
        let doc: Value = serde_json::from_str(set).unwrap();
        mixed.extend(doc["keys"].as_array().unwrap().iter().take(n).cloned());
    }
    let okp_doc: Value = serde_json::from_str(&okp).unwrap();
    mixed.push(okp_doc["keys"][0].clone());
    let mixed = json!({ "keys": mixed }).to_string();
    assert_eq!(Jwks::parse(&mixed).unwrap().keys().len(), 10);
    let t = time(|| drop(black_box(Jwks::parse(black_box(&mixed)))), budget);
    println!(
        "| parse a 10-key mixed JWKS (5 RSA, 2 P-256, P-384, P-521, Ed25519; {} bytes) | {:.1} µs |",
        mixed.len(),
        t.as_secs_f64() * 1e6
    );
}
