//! Signature verification with jwt_verify_lib's key selection
//! (`verify.cc#verifyJwtWithoutTimeChecking`), and the pure-Rust signature backend.
//!
//! The JWK's key type, not the token's `alg`, picks the algorithm family, and the token's
//! `alg` picks the hash within it, exactly as jwt_verify_lib does: an RSA or EC key is never
//! used as an HMAC secret, whatever the token claims.

use hmac::{Hmac, Mac};
use sha2::digest::Digest;
use sha2::{Sha256, Sha384, Sha512};

use super::der;
use super::jwks::{EcKey, Jwks, PublicKey};
use super::rsa::{self, RsaPublicKey};
use super::status::AuthnStatus;
use super::token::{Alg, Jwt};

/// The length of every Ed25519 signature.
const ED25519_SIGNATURE_BYTES: usize = 64;

/// Verifies the token's signature against the set.
///
/// A key is a candidate unless both it and the token carry a `kid` and they differ, or the key
/// carries an `alg` other than the token's. Candidates are tried in order and the first that
/// verifies wins. No candidate ⇒ [`AuthnStatus::JwksKidAlgMismatch`]; candidates that all fail ⇒
/// [`AuthnStatus::JwtVerificationFail`]. An Ed25519 candidate met with a signature that is not
/// 64 bytes ends the search with [`AuthnStatus::JwtEd25519SignatureWrongLength`].
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
        if matches!(jwk.key, PublicKey::Ed25519 { .. })
            && jwt.signature.len() != ED25519_SIGNATURE_BYTES
        {
            return Err(AuthnStatus::JwtEd25519SignatureWrongLength);
        }
        if crypto.verify(
            jwt.alg,
            &jwk.key,
            jwt.signing_input().as_bytes(),
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
    /// Whether `signature` is `alg`'s signature of `message` under `key`, with jwt_verify_lib's
    /// dispatch: the key type picks the family, `alg` the hash (SHA-256 unless it names 384 or
    /// 512 of that family).
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool;
}

/// The hash jwt_verify_lib uses for `alg` with a key of type `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256 (also the default for an `alg` of another family).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// The name Envoy's `verify_signature` foreign function takes.
    pub const fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    /// `verify.cc`: for each key type only that family's 384/512 names change the hash.
    pub const fn for_key(alg: Alg, key: &PublicKey) -> Hash {
        match (key, alg) {
            (PublicKey::Ec { .. }, Alg::ES384)
            | (PublicKey::Rsa { .. }, Alg::RS384 | Alg::PS384)
            | (PublicKey::Oct(_), Alg::HS384) => Hash::Sha384,
            (PublicKey::Ec { .. }, Alg::ES512)
            | (PublicKey::Rsa { .. }, Alg::RS512 | Alg::PS512)
            | (PublicKey::Oct(_), Alg::HS512) => Hash::Sha512,
            _ => Hash::Sha256,
        }
    }
}

/// What Envoy's `verify_signature` (BoringSSL `EVP_DigestVerify` with the default padding)
/// needs to check one signature: hash name, SPKI DER key, and the signature in the form
/// BoringSSL expects (DER for ECDSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCheck<'a> {
    /// `sha256`, `sha384` or `sha512`.
    pub hash: &'static str,
    /// SubjectPublicKeyInfo DER.
    pub public_key: &'a [u8],
    /// The signature as BoringSSL takes it.
    pub signature: std::borrow::Cow<'a, [u8]>,
}

/// How this (alg, key) pair is checked through host crypto, or `None` when the host cannot
/// check it with `EVP_DigestVerify` defaults: PS* (PSS padding is not selectable there),
/// HMAC (no public key), Ed25519 (BoringSSL refuses a digest for it), and an RSA key with an
/// alg of another family (jwt_verify_lib fails those without verifying). Measured on Envoy
/// 1.40: see the README's signature backend table.
pub fn host_check<'a>(alg: Alg, key: &'a PublicKey, signature: &'a [u8]) -> Option<HostCheck<'a>> {
    let hash = Hash::for_key(alg, key).name();
    match key {
        PublicKey::Rsa { spki, .. } if matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512) => {
            Some(HostCheck {
                hash,
                public_key: spki,
                signature: std::borrow::Cow::Borrowed(signature),
            })
        }
        PublicKey::Ec { spki, .. } => {
            let (r, s) = split_ecdsa(signature);
            Some(HostCheck {
                hash,
                public_key: spki,
                signature: std::borrow::Cow::Owned(der::ecdsa_signature(r, s)),
            })
        }
        _ => None,
    }
}

/// jwt_verify_lib's reading of a JWS ECDSA signature: the first half is `r`, the next half `s`
/// (an odd last byte is ignored), each a big-endian integer of any length.
fn split_ecdsa(signature: &[u8]) -> (&[u8], &[u8]) {
    let half = signature.len() / 2;
    let (r, rest) = signature.split_at(half);
    (r, rest.get(..half).unwrap_or_default())
}

/// Signature checks in pure Rust inside the VM: RSA in [`super::rsa`], the rest with RustCrypto.
#[derive(Debug, Clone, Copy, Default)]
pub struct PureRust;

impl SignatureVerifier for PureRust {
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        let hash = Hash::for_key(alg, key);
        match key {
            PublicKey::Rsa { key, .. } => match alg {
                Alg::RS256 | Alg::RS384 | Alg::RS512 => rsa_pkcs1(key, hash, message, signature),
                Alg::PS256 | Alg::PS384 | Alg::PS512 => rsa_pss(key, hash, message, signature),
                _ => false,
            },
            PublicKey::Ec { key, .. } => ecdsa(key, hash, message, signature),
            PublicKey::Oct(secret) => hmac(secret, hash, message, signature),
            // Cofactorless, canonical `s` required, no weak-key rejection: the check
            // BoringSSL's `ED25519_verify` makes.
            PublicKey::Ed25519 { key, .. } => key
                .as_ref()
                .is_some_and(|key| key.verify(message, signature)),
        }
    }
}

fn rsa_pkcs1(key: &RsaPublicKey, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
    let digest_info = match hash {
        Hash::Sha256 => rsa::SHA256_DIGEST_INFO,
        Hash::Sha384 => rsa::SHA384_DIGEST_INFO,
        Hash::Sha512 => rsa::SHA512_DIGEST_INFO,
    };
    key.verify_pkcs1v15(digest_info, &hash.digest(message), signature)
}

/// RSASSA-PSS with MGF1 on the same hash. The salt length is recovered from the signature, as
/// BoringSSL's `EVP_DigestVerify` does by default (`RSA_PSS_SALTLEN_AUTO`), so a token signed
/// with any salt length verifies as it does in Envoy.
fn rsa_pss(key: &RsaPublicKey, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
    match hash {
        Hash::Sha256 => key.verify_pss::<Sha256>(message, signature),
        Hash::Sha384 => key.verify_pss::<Sha384>(message, signature),
        Hash::Sha512 => key.verify_pss::<Sha512>(message, signature),
    }
}

/// ECDSA over the key's curve with the token alg's hash, `r||s` read as jwt_verify_lib reads
/// it. A digest shorter than the field is left-padded (the same integer), as BoringSSL's
/// `digest_to_bn` reads it.
fn ecdsa(key: &EcKey, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let size = key.field_bytes();
    let (r, s) = split_ecdsa(signature);
    let (Some(mut rs), Some(s)) = (fixed_width(r, size), fixed_width(s, size)) else {
        return false;
    };
    rs.extend_from_slice(&s);
    let mut prehash = hash.digest(message);
    if prehash.len() < size {
        let mut padded = vec![0u8; size - prehash.len()];
        padded.extend_from_slice(&prehash);
        prehash = padded;
    }
    match key {
        EcKey::P256(key) => {
            let Ok(sig) = p256::ecdsa::Signature::from_slice(&rs) else {
                return false;
            };
            key.verify_prehash(&prehash, &sig).is_ok()
        }
        EcKey::P384(key) => {
            let Ok(sig) = p384::ecdsa::Signature::from_slice(&rs) else {
                return false;
            };
            key.verify_prehash(&prehash, &sig).is_ok()
        }
        EcKey::P521(key) => {
            let Ok(sig) = p521::ecdsa::Signature::from_slice(&rs) else {
                return false;
            };
            key.verify_prehash(&prehash, &sig).is_ok()
        }
    }
}

/// A big-endian integer written on exactly `size` bytes; `None` when it does not fit.
fn fixed_width(be: &[u8], size: usize) -> Option<Vec<u8>> {
    let zeros = be.iter().take_while(|b| **b == 0).count();
    let digits = be.get(zeros..)?;
    let pad = size.checked_sub(digits.len())?;
    let mut out = vec![0u8; pad];
    out.extend_from_slice(digits);
    Some(out)
}

/// HMAC with a constant-time comparison (`Mac::verify_slice`, as `CRYPTO_memcmp` upstream).
fn hmac(secret: &[u8], hash: Hash, message: &[u8], signature: &[u8]) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8], tag: &[u8]) -> bool {
        let Ok(mut mac) = <M as Mac>::new_from_slice(secret) else {
            return false;
        };
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
    match hash {
        Hash::Sha256 => check::<Hmac<Sha256>>(secret, message, signature),
        Hash::Sha384 => check::<Hmac<Sha384>>(secret, message, signature),
        Hash::Sha512 => check::<Hmac<Sha512>>(secret, message, signature),
    }
}
