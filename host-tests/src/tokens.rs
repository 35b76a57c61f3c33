//! Token minting that is independent of the filter: keys from `rsa` and `p256`, signing by
//! `jsonwebtoken`, JWKs built by hand from the public keys. Plus helpers for the malformed
//! tokens the filter must reject (`alg: none`, corrupted signatures, hand-built headers).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// base64url without padding, as JWS uses it.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A signer of RS256 tokens with a fresh 2048-bit RSA key.
pub struct RsaIssuer {
    pub kid: String,
    key: EncodingKey,
    /// The same key, for signatures jsonwebtoken does not make (PSS with another salt length).
    private: rsa::RsaPrivateKey,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl RsaIssuer {
    pub fn generate(kid: &str) -> RsaIssuer {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA keygen");
        let der = private.to_pkcs1_der().expect("PKCS#1 DER");
        RsaIssuer {
            kid: kid.to_owned(),
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            n: private.n().to_bytes_be(),
            e: private.e().to_bytes_be(),
            private,
        }
    }

    /// The public JWK: `{"kty":"RSA","kid":..,"alg":"RS256","use":"sig","n":..,"e":..}`.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64url(&self.n),
            "e": b64url(&self.e),
        })
    }

    /// An RS256 token with this key's `kid` in the header.
    pub fn mint(&self, claims: Value) -> String {
        self.mint_with_kid(Some(&self.kid), claims)
    }

    /// An RS256 token over header and payload JSON given as text, byte for byte: for JSON that
    /// `serde_json::Value` cannot hold (duplicate keys, extreme nesting, huge numbers).
    pub fn sign_raw(&self, header_json: &str, payload_json: &str) -> String {
        let signing_input = format!(
            "{}.{}",
            b64url(header_json.as_bytes()),
            b64url(payload_json.as_bytes())
        );
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &self.key, Algorithm::RS256)
                .expect("RS256 signing");
        format!("{signing_input}.{signature}")
    }

    /// An RS256 token with the given `kid` (or none) in the header.
    pub fn mint_with_kid(&self, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &self.key).expect("RS256 signing")
    }
}

/// A signer of ES256 tokens with a fresh P-256 key.
pub struct EcIssuer {
    pub kid: String,
    key: EncodingKey,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl EcIssuer {
    pub fn generate(kid: &str) -> EcIssuer {
        use p256::elliptic_curve::sec1::ToEncodedPoint as _;
        use p256::pkcs8::EncodePrivateKey as _;
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let der = secret.to_pkcs8_der().expect("PKCS#8 DER");
        let point = secret.public_key().to_encoded_point(false);
        EcIssuer {
            kid: kid.to_owned(),
            key: EncodingKey::from_ec_der(der.as_bytes()),
            x: point.x().expect("uncompressed point has x").to_vec(),
            y: point.y().expect("uncompressed point has y").to_vec(),
        }
    }

    /// The public JWK: `{"kty":"EC","kid":..,"alg":"ES256","use":"sig","crv":"P-256","x":..,"y":..}`.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "crv": "P-256",
            "x": b64url(&self.x),
            "y": b64url(&self.y),
        })
    }

    /// An ES256 token with this key's `kid` in the header.
    pub fn mint(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("ES256 signing")
    }
}

/// `{"keys":[...]}` as a JSON string.
pub fn jwks_json(jwks: &[Value]) -> String {
    json!({ "keys": jwks }).to_string()
}

/// Claims with `iss`, `sub`, `aud` (omitted when `None`), `iat` now and `exp` in `ttl_secs`
/// (negative: already expired).
pub fn claims(iss: &str, aud: Option<&str>, ttl_secs: i64) -> Value {
    let now = now();
    let mut c = json!({
        "iss": iss,
        "sub": "tester@example.com",
        "iat": now,
        "exp": now + ttl_secs,
    });
    if let Some(aud) = aud {
        c["aud"] = json!(aud);
    }
    c
}

/// A token from arbitrary header and claims JSON and a given signature segment, unsigned.
pub fn raw_token(header: &Value, claims: &Value, signature_segment: &str) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        signature_segment
    )
}

/// An `alg: none` token as RFC 7519 writes an unsecured JWT: empty signature segment. (Envoy
/// splits a token on dots skipping empty parts, so it rejects this one as badly formed before it
/// looks at `alg`.)
pub fn alg_none(claims: &Value) -> String {
    raw_token(&json!({"alg": "none", "typ": "JWT"}), claims, "")
}

/// An `alg: none` token with a non-empty signature segment, so that it is well formed and only
/// its `alg` is wrong.
pub fn alg_none_with_signature(claims: &Value) -> String {
    raw_token(
        &json!({"alg": "none", "typ": "JWT"}),
        claims,
        &b64url(b"not a signature"),
    )
}

/// The token with one bit of its decoded signature flipped, re-encoded: the same header and
/// payload, a signature that no longer verifies.
pub fn corrupt_signature(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').expect("a token has dots");
    let mut bytes = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
    assert!(!bytes.is_empty(), "empty signature in {token}");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    format!("{signed}.{}", b64url(&bytes))
}

/// The token's decoded header as JSON.
pub fn decode_header(token: &str) -> Value {
    let first = token.split('.').next().unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).expect("base64url header"))
        .expect("JSON header")
}

/// The same RSA key used for RSASSA-PSS (PS256), under its own `kid`: a JWK that names `alg`
/// serves only that algorithm (jwt_verify_lib skips it otherwise).
impl RsaIssuer {
    /// The public JWK with `kid` and `"alg": "PS256"`.
    pub fn ps256_jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("PS256");
        jwk
    }

    /// A PS256 token with `kid` in the header.
    pub fn mint_ps256(&self, kid: &str, claims: Value) -> String {
        let mut header = Header::new(Algorithm::PS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("PS256 signing")
    }

    /// A PS256 token whose PSS signature uses a salt of `salt_len` bytes (RFC 7518 §3.5 asks for
    /// the hash's length, 32, which is what [`RsaIssuer::mint_ps256`] makes).
    pub fn mint_ps256_with_salt(&self, kid: &str, claims: Value, salt_len: usize) -> String {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        let header = json!({"alg": "PS256", "typ": "JWT", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer =
            rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(self.private.clone(), salt_len);
        let signature = signer.sign_with_rng(&mut rand::thread_rng(), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// A signer of EdDSA (Ed25519) tokens with a fresh key, signed with `ed25519-dalek` directly
/// (jsonwebtoken's EdDSA key wants a PKCS#8 document; the signature is the same).
pub struct EdIssuer {
    pub kid: String,
    key: ed25519_dalek::SigningKey,
}

impl EdIssuer {
    pub fn generate(kid: &str) -> EdIssuer {
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
        EdIssuer {
            kid: kid.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// The public JWK (RFC 8037): `{"kty":"OKP","crv":"Ed25519","kid":..,"alg":"EdDSA","x":..}`.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
            "x": b64url(self.key.verifying_key().as_bytes()),
        })
    }

    /// An EdDSA token with this key's `kid` in the header.
    pub fn mint(&self, claims: Value) -> String {
        use ed25519_dalek::Signer as _;
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64url(&signature.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn verify(
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
    ) -> jsonwebtoken::errors::Result<Value> {
        let mut v = Validation::new(alg);
        v.set_audience(&["aud1"]);
        jsonwebtoken::decode::<Value>(token, key, &v).map(|d| d.claims)
    }

    #[test]
    fn rsa_tokens_verify_against_their_jwk_and_corruption_breaks_them() {
        let issuer = RsaIssuer::generate("k1");
        let jwk = issuer.jwk();
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let token = issuer.mint(claims("iss", Some("aud1"), 600));
        assert_eq!(decode_header(&token)["kid"], "k1");
        assert_eq!(
            verify(&token, &key, Algorithm::RS256).unwrap()["iss"],
            "iss"
        );
        assert!(verify(&corrupt_signature(&token), &key, Algorithm::RS256).is_err());
    }

    #[test]
    fn ec_tokens_verify_against_their_jwk() {
        let issuer = EcIssuer::generate("e1");
        let jwk = issuer.jwk();
        let key =
            DecodingKey::from_ec_components(jwk["x"].as_str().unwrap(), jwk["y"].as_str().unwrap())
                .unwrap();
        let token = issuer.mint(claims("iss", Some("aud1"), 600));
        assert_eq!(
            verify(&token, &key, Algorithm::ES256).unwrap()["aud"],
            "aud1"
        );
        assert!(verify(&corrupt_signature(&token), &key, Algorithm::ES256).is_err());
    }

    #[test]
    fn alg_none_has_an_empty_signature() {
        let t = alg_none(&claims("i", None, 60));
        assert!(t.ends_with('.'));
        assert_eq!(decode_header(&t)["alg"], "none");
        assert_eq!(t.matches('.').count(), 2);
    }
}
