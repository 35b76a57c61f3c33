//! Algorithm confusion: a token whose `alg` names another family than the key it meets is
//! never accepted. The classic attack signs an HS256 token with the RSA public key's bytes as
//! the HMAC secret, hoping the verifier uses "the key" as a secret; jwt_verify_lib (and so
//! Envoy) lets the JWK's type pick the family, and so do we. Keys and tokens are
//! jwt_verify_lib's (fixtures/jwt_verify_lib); the forged tokens are minted here.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use mesh_authn::jwt::jwks::PublicKey;
use mesh_authn::jwt::verify::{verify_signature, PureRust};
use mesh_authn::jwt::{AuthnStatus, Jwks, Jwt};
use serde_json::Value;

fn constant(file: &str, name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/jwt_verify_lib/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["constants"][name].as_str().unwrap().to_owned()
}

fn hs256(header: &str, payload: &str, secret: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn verify(token: &str, jwks: &Jwks) -> Result<(), AuthnStatus> {
    verify_signature(&Jwt::parse(token).unwrap(), jwks, &PureRust)
}

/// Every byte string an attacker might hope the verifier uses as "the key".
fn secrets_from(jwks_text: &str, jwks: &Jwks) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("the JWKS text".to_owned(), jwks_text.as_bytes().to_vec())];
    for (i, jwk) in jwks.keys().iter().enumerate() {
        let spki = jwk.key.spki_der().unwrap().to_vec();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(&spki)
        );
        out.push((format!("keys[{i}] SPKI DER"), spki));
        out.push((format!("keys[{i}] PEM"), pem.into_bytes()));
        if let PublicKey::Rsa { key, .. } = &jwk.key {
            out.push((format!("keys[{i}] modulus"), key.modulus_be()));
        }
    }
    out
}

#[test]
fn hs256_signed_with_an_rsa_public_key_is_refused() {
    let text = constant("verify_jwk_rsa_test", "PublicKeyRSA");
    let with_alg = Jwks::parse(&text).unwrap();
    let without_alg = Jwks::parse(&text.replace(r#""alg": "RS256","#, "")).unwrap();
    let payload = r#"{"iss":"https://example.com","sub":"attacker","exp":2001001001}"#;
    for (what, secret) in secrets_from(&text, &with_alg) {
        let token = hs256(r#"{"alg":"HS256","typ":"JWT"}"#, payload, &secret);
        // The JWKs say RS256: no candidate at all.
        assert_eq!(
            verify(&token, &with_alg),
            Err(AuthnStatus::JwksKidAlgMismatch),
            "{what}"
        );
        // Without alg the RSA keys are candidates, but an RSA key verifies only RS*/PS*.
        assert_eq!(
            verify(&token, &without_alg),
            Err(AuthnStatus::JwtVerificationFail),
            "{what}"
        );
    }
}

#[test]
fn hs256_signed_with_an_ec_or_ed25519_public_key_is_refused() {
    for (file, name, alg) in [
        ("verify_jwk_ec_test", "PublicKeyJwkEC", r#""alg": "ES256","#),
        (
            "verify_jwk_okp_test",
            "PublicKeyJwkOKP",
            r#""alg": "EdDSA","#,
        ),
    ] {
        let text = constant(file, name).replace(alg, "");
        let jwks = Jwks::parse(&text).unwrap();
        for (what, secret) in secrets_from(&text, &jwks) {
            let token = hs256(r#"{"alg":"HS256"}"#, r#"{"sub":"attacker"}"#, &secret);
            let got = verify(&token, &jwks);
            // An Ed25519 candidate meets a 32-byte "signature": wrong length, as upstream.
            assert!(
                matches!(
                    got,
                    Err(AuthnStatus::JwtVerificationFail
                        | AuthnStatus::JwtEd25519SignatureWrongLength
                        | AuthnStatus::JwksKidAlgMismatch)
                ),
                "{name} {what}: {got:?}"
            );
        }
    }
}

#[test]
fn es_token_against_an_rsa_set_is_refused() {
    let rsa = constant("verify_jwk_rsa_test", "PublicKeyRSA");
    let rsa_no_alg = Jwks::parse(&rsa.replace(r#""alg": "RS256","#, "")).unwrap();
    for token in ["JwtTextECNoKid", "JwtES384Text", "JwtES512Text"] {
        let token = constant("verify_jwk_ec_test", token);
        // Its own set verifies it (so the refusal below is about the key, not the token).
        let ec = Jwks::parse(&constant("verify_jwk_ec_test", "PublicKeyJwkEC")).unwrap();
        assert_eq!(verify(&token, &ec), Ok(()));
        let got = verify(&token, &rsa_no_alg);
        assert!(
            matches!(
                got,
                Err(AuthnStatus::JwtVerificationFail | AuthnStatus::JwksKidAlgMismatch)
            ),
            "{got:?}"
        );
        assert_eq!(
            verify(&token, &Jwks::parse(&rsa).unwrap()),
            Err(AuthnStatus::JwksKidAlgMismatch)
        );
    }
}

#[test]
fn rs_token_against_an_oct_key_is_refused() {
    let token = constant("verify_jwk_rsa_test", "JwtTextNoKid");
    let hmac = constant("verify_jwk_hmac_test", "SymmetricKeyHMAC");
    // Without alg, jwt_verify_lib computes an HMAC with the secret for any token alg: the RS256
    // signature is no such HMAC.
    let no_alg = Jwks::parse(&hmac.replace(r#""alg": "HS256","#, "")).unwrap();
    assert_eq!(
        verify(&token, &no_alg),
        Err(AuthnStatus::JwtVerificationFail)
    );
    assert_eq!(
        verify(&token, &Jwks::parse(&hmac).unwrap()),
        Err(AuthnStatus::JwksKidAlgMismatch)
    );
}

#[test]
fn none_and_unknown_algs_are_refused_at_parse() {
    for alg in ["none", "None", "HS1", "RS1", "ES256K", "Ed25519", "PS256 "] {
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}"}}"#)),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("x")
        );
        assert_eq!(
            Jwt::parse(&token).unwrap_err(),
            AuthnStatus::JwtHeaderNotImplementedAlg,
            "{alg}"
        );
    }
}
