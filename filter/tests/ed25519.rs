//! EdDSA (Ed25519) verification in the VM (`src/jwt/ed25519.rs`, per-key precomputed
//! multiples) against independent oracles:
//!
//! - Wycheproof's `ed25519_test.json` (C2SP/wycheproof, fixtures/PROVENANCE.md): every `valid`
//!   vector verifies and every `invalid` one fails, with the key read from the vector's JWK;
//! - ed25519-dalek's `Verifier::verify` (the check BoringSSL's `ED25519_verify` makes, which
//!   the filter used directly before): the same verdict on signatures made here and then
//!   mutated, on non-canonical `s`, and on small-order keys and `R` values;
//! - a rotated key set: the key that verifies is the one of the set the token is checked
//!   against.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use mesh_authn::jwt::jwks::PublicKey;
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::verify::{verify_signature, PureRust, SignatureVerifier as _};
use mesh_authn::jwt::{AuthnStatus, Jwks, Jwt};
use proptest::prelude::*;
use serde_json::{json, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn jwks_of(raw: &[u8; 32]) -> Jwks {
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": URL_SAFE_NO_PAD.encode(raw)});
    Jwks::parse(&json!({ "keys": [jwk] }).to_string()).unwrap()
}

/// The filter's pure-Rust verdict for a raw key, message and signature.
fn filter_verdict(raw: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let jwks = jwks_of(raw);
    let key = &jwks.keys()[0].key;
    assert!(matches!(key, PublicKey::Ed25519 { .. }));
    PureRust.verify(Alg::EdDSA, key, message, signature)
}

/// ed25519-dalek's `verify` verdict (a key that is not a point fails everything).
fn dalek_verdict(raw: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(raw) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[test]
fn wycheproof_ed25519_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wycheproof/ed25519_test.json"
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut counts = (0, 0);
    for group in file["testGroups"].as_array().unwrap() {
        let jwks = Jwks::parse(&json!({ "keys": [group["publicKeyJwk"]] }).to_string()).unwrap();
        let key = &jwks.keys()[0].key;
        for test in group["tests"].as_array().unwrap() {
            let message = hex(test["msg"].as_str().unwrap());
            let signature = hex(test["sig"].as_str().unwrap());
            let expected = match test["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {}: result {other}", test["tcId"]),
            };
            assert_eq!(
                PureRust.verify(Alg::EdDSA, key, &message, &signature),
                expected,
                "tcId {} ({})",
                test["tcId"],
                test["comment"]
            );
            if expected {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    assert_eq!(
        counts,
        (88, 63),
        "every vector of the file was checked (valid, invalid)"
    );
}

/// The eight small-order points of edwards25519, as encoded (y, sign of x), from the
/// `is_small_order` definition: the identity, (0, -1), the two points of order 4 and the four
/// of order 8.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let order8 = hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
    let order8_neg = hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05");
    let mut out = vec![
        hex("0100000000000000000000000000000000000000000000000000000000000000"),
        hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        hex("0000000000000000000000000000000000000000000000000000000000000000"),
        hex("0000000000000000000000000000000000000000000000000000000000000080"),
        order8.clone(),
        order8_neg.clone(),
    ];
    for mut p in [order8, order8_neg] {
        p[31] ^= 0x80;
        out.push(p);
    }
    out.into_iter().map(|p| p.try_into().unwrap()).collect()
}

#[test]
fn small_order_keys_and_r_values_verify_as_ed25519_dalek_does() {
    let points = small_order_encodings();
    for p in &points {
        let point = curve25519_dalek::edwards::CompressedEdwardsY(*p)
            .decompress()
            .unwrap();
        assert!(point.is_small_order());
    }
    let mut accepted = 0;
    for key in &points {
        for r in &points {
            for message in [&b"hello"[..], b"", b"eyJhbGciOiJFZERTQSJ9.e30"] {
                let mut signature = r.to_vec();
                signature.extend_from_slice(&[0; 32]); // s = 0
                let expected = dalek_verdict(key, message, &signature);
                accepted += usize::from(expected);
                assert_eq!(
                    filter_verdict(key, message, &signature),
                    expected,
                    "key {key:02x?} R {r:02x?}"
                );
            }
        }
    }
    // Cofactorless verification accepts some of these (R = −[k]A): the cases are not all
    // refusals.
    assert!(accepted > 0);
}

/// ℓ, the order of the base point, little-endian.
const ELL: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s + ℓ` (little-endian; `s < ℓ` so no carry leaves the 32 bytes).
fn plus_ell(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    let mut carry = 0u16;
    for (a, b) in s.iter().zip(ELL) {
        let sum = u16::from(*a) + u16::from(b) + carry;
        out.push(sum as u8);
        carry = sum >> 8;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn same_verdict_as_ed25519_dalek(
        seed in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..300),
        mutation in 0usize..6,
        bit in 0usize..512,
        other in any::<[u8; 32]>(),
    ) {
        let signer = SigningKey::from_bytes(&seed);
        let raw = signer.verifying_key().to_bytes();
        let mut signature = signer.sign(&message).to_bytes().to_vec();
        let mut key = raw;
        let mut message = message;
        match mutation {
            0 => {}
            1 => signature[bit / 8] ^= 1 << (bit % 8),
            // The same s + ℓ: refused (non-canonical s), by both.
            2 => {
                let s = plus_ell(&signature[32..]);
                signature[32..].copy_from_slice(&s);
            }
            3 => signature[..32].copy_from_slice(&other),
            4 => key = other,
            _ => message.push(0),
        }
        let expected = dalek_verdict(&key, &message, &signature);
        // Every mutation breaks the signature (a flipped bit of R or s, s + ℓ, another R, another
        // key, another message).
        prop_assert_eq!(expected, mutation == 0);
        prop_assert_eq!(filter_verdict(&key, &message, &signature), expected);
    }
}

fn token(signer: &SigningKey, payload: &str) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = signer.sign(signing_input.as_bytes()).to_bytes();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[test]
fn a_rotated_key_set_verifies_with_its_own_key_only() {
    let old = SigningKey::from_bytes(&[1; 32]);
    let new = SigningKey::from_bytes(&[2; 32]);
    let old_set = jwks_of(&old.verifying_key().to_bytes());
    let new_set = jwks_of(&new.verifying_key().to_bytes());
    let old_token = Jwt::parse(&token(&old, r#"{"sub":"a"}"#)).unwrap();
    let new_token = Jwt::parse(&token(&new, r#"{"sub":"a"}"#)).unwrap();

    assert_eq!(verify_signature(&old_token, &old_set, &PureRust), Ok(()));
    assert_eq!(
        verify_signature(&new_token, &old_set, &PureRust),
        Err(AuthnStatus::JwtVerificationFail)
    );
    assert_eq!(verify_signature(&new_token, &new_set, &PureRust), Ok(()));
    assert_eq!(
        verify_signature(&old_token, &new_set, &PureRust),
        Err(AuthnStatus::JwtVerificationFail)
    );
}
