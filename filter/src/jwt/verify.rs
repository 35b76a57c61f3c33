//! Signature verification with jwt_verify_lib's key selection
//! (`verify.cc#verifyJwtWithoutTimeChecking`).

use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256};

use super::jwks::{Jwks, PublicKey};
use super::status::AuthnStatus;
use super::token::{Alg, Jwt};

/// Verifies the token's signature against the set.
///
/// A key is a candidate unless both it and the token carry a `kid` and they differ, or the key
/// carries an `alg` other than the token's. Candidates are tried in order and the first that
/// verifies wins. No candidate ⇒ [`AuthnStatus::JwksKidAlgMismatch`]; candidates that all fail ⇒
/// [`AuthnStatus::JwtVerificationFail`]. The key's type, not the token's `alg`, decides the
/// family, so an RSA or EC key is never used as an HMAC secret.
pub fn verify_signature(
    jwt: &Jwt,
    jwks: &Jwks,
    crypto: &dyn SignatureVerifier,
) -> Result<(), AuthnStatus> {
    let mut candidate = false;
    for jwk in jwks.keys() {
        if !jwt.kid.is_empty() && !jwk.kid.is_empty() && jwk.kid != jwt.kid {
            continue;
        }
        if !jwk.alg.is_empty() && jwk.alg != jwt.alg.name() {
            continue;
        }
        candidate = true;
        if crypto.verify(
            jwt.alg,
            &jwk.key,
            jwt.signing_input.as_bytes(),
            &jwt.signature,
        ) {
            return Ok(());
        }
    }
    Err(if candidate {
        AuthnStatus::JwtVerificationFail
    } else {
        AuthnStatus::JwksKidAlgMismatch
    })
}

/// The signature backend seam: one key, one algorithm, one verdict. [`PureRust`] runs
/// everywhere; the proxy adapter adds Envoy's `verify_signature` foreign function (host crypto)
/// and picks per algorithm. An unsupported combination answers `false`: fail closed.
pub trait SignatureVerifier {
    /// Whether `signature` is `alg`'s signature of `message` under `key`.
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool;
}

/// Signature checks in pure Rust (RustCrypto), inside the VM.
#[derive(Debug, Clone, Copy, Default)]
pub struct PureRust;

impl SignatureVerifier for PureRust {
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        match (key, alg) {
            (PublicKey::Rsa(key), Alg::RS256) => {
                let digest = Sha256::digest(message);
                key.verify(Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                    .is_ok()
            }
            (PublicKey::P256(key), Alg::ES256) => {
                use p256::ecdsa::signature::Verifier as _;
                match p256::ecdsa::Signature::from_slice(signature) {
                    Ok(signature) => key.verify(message, &signature).is_ok(),
                    Err(_) => false,
                }
            }
            _ => false,
        }
    }
}
