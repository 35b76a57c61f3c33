//! Host crypto: Envoy's `verify_signature` foreign function (BoringSSL, outside the VM) as a
//! [`SignatureVerifier`], with the pure-Rust backend for what the host cannot check and as
//! the fallback when the function is absent (another proxy, another build). The function is
//! reached through [`VerifySignatureFn`] (the adapter's host call, or a test's fake); its
//! argument and result messages are encoded and decoded here.
//!
//! Envoy's function imports an SPKI DER key and runs `EVP_DigestVerifyInit` +
//! `EVP_DigestVerify` with the named hash and BoringSSL's default padding. Measured on Envoy
//! 1.40 (host-tests/tests/envoy_host_crypto.rs): RS256/384/512 and ES256/384/512 (signature
//! as DER) verify there; PS* cannot (PKCS#1 v1.5 is the default padding and an RSASSA-PSS
//! SPKI is refused), EdDSA cannot (BoringSSL refuses a digest for Ed25519), HMAC has no public
//! key. [`host_check`] encodes that choice.

use std::cell::Cell;
use std::fmt::Debug;

use super::jwks::PublicKey;
use super::token::Alg;
use super::verify::{host_check, HostCheck, PureRust, SignatureVerifier};

/// The host's `verify_signature` foreign function (Envoy
/// `source/extensions/common/wasm/foreign.cc`).
pub trait VerifySignatureFn {
    /// A failed call's status.
    type Status: Copy + Debug;
    /// Calls the function with an encoded `VerifySignatureArguments`; its result's bytes.
    fn call(&self, arguments: &[u8]) -> Result<Vec<u8>, Self::Status>;
    /// Whether `status` says the host has no function of that name.
    fn is_not_found(status: Self::Status) -> bool;
}

/// Signature checks through the host where it can, pure Rust otherwise.
#[derive(Debug)]
pub struct HostCrypto<F> {
    function: F,
    /// Whether the host has `verify_signature` (decided once, at VM start).
    available: bool,
    /// Whether an unexpected host answer was logged already (log once, not per request).
    complained: Cell<bool>,
}

/// A host answer that is not a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAnswer<S> {
    /// The call failed with this status (Envoy: `BadArgument` when it cannot import the key).
    Status(S),
    /// The result is not a `VerifySignatureResult`.
    Garbled,
}

impl<F: VerifySignatureFn> HostCrypto<F> {
    /// Asks the host once whether it has `verify_signature`, and says which backend is used.
    /// An empty argument list is a valid (empty) message that Envoy answers with
    /// `BadArgument` (no key); a host without the function answers `NotFound`.
    pub fn detect(function: F) -> HostCrypto<F> {
        let available = match function.call(&[]) {
            Err(status) if F::is_not_found(status) => {
                log::warn!(
                    "the host has no verify_signature foreign function: all JWT signatures \
                     are verified in the VM (pure Rust), which is slower for RS*/ES*"
                );
                false
            }
            _ => {
                log::info!(
                    "JWT signatures: RS*/ES* through the host's verify_signature (BoringSSL), \
                     PS*/HS*/EdDSA in the VM (pure Rust)"
                );
                true
            }
        };
        HostCrypto {
            function,
            available,
            complained: Cell::new(false),
        }
    }

    /// A backend that never calls the host: for hosts known to lack the function.
    pub const fn pure(function: F) -> HostCrypto<F> {
        HostCrypto {
            function,
            available: false,
            complained: Cell::new(false),
        }
    }

    /// Whether signatures the host can check go to the host.
    pub const fn uses_host(&self) -> bool {
        self.available
    }

    /// The host's verdict, or why there is none.
    pub fn host_verdict(
        &self,
        check: &HostCheck<'_>,
        text: &[u8],
    ) -> Result<bool, HostAnswer<F::Status>> {
        let result = self
            .function
            .call(&encode_arguments(check, text))
            .map_err(HostAnswer::Status)?;
        decode_result(&result).ok_or(HostAnswer::Garbled)
    }
}

impl<F: VerifySignatureFn> SignatureVerifier for HostCrypto<F> {
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        if self.available {
            if let Some(check) = host_check(alg, key, signature) {
                match self.host_verdict(&check, message) {
                    Ok(verdict) => return verdict,
                    Err(answer) => {
                        // The pure backend still decides, so this costs speed, not safety.
                        if !self.complained.replace(true) {
                            log::warn!(
                                "verify_signature gave no verdict ({answer:?}) for {} with a \
                                 {} key; verifying in the VM instead (logged once)",
                                alg.name(),
                                key.kty()
                            );
                        }
                    }
                }
            }
        }
        PureRust.verify(alg, key, message, signature)
    }
}

/// `VerifySignatureArguments` (Envoy `source/extensions/common/wasm/ext/verify_signature.proto`):
/// `hash_function = 1` (string), `public_key = 2` (bytes, SPKI DER), `signature = 3`,
/// `text = 4`.
pub fn encode_arguments(check: &HostCheck<'_>, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        check.hash.len() + check.public_key.len() + check.signature.len() + text.len() + 24,
    );
    for (field, value) in [
        (1u8, check.hash.as_bytes()),
        (2, check.public_key),
        (3, &check.signature[..]),
        (4, text),
    ] {
        out.push(field << 3 | 2); // length-delimited
        push_varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `VerifySignatureResult { bool result = 1; string error = 2; }`. Success is `08 01`; a
/// failure carries only `error` (proto3 omits `result: false`). `None` when the bytes are not
/// such a message.
pub fn decode_result(bytes: &[u8]) -> Option<bool> {
    let mut result = false;
    let mut rest = bytes;
    while let Some((&key, after)) = rest.split_first() {
        match key {
            0x08 => {
                let (v, after) = read_varint(after)?;
                result = v != 0;
                rest = after;
            }
            0x12 => {
                let (len, after) = read_varint(after)?;
                let len = usize::try_from(len).ok()?;
                rest = after.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(result)
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, bytes.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_messages() {
        assert_eq!(decode_result(&[0x08, 0x01]), Some(true));
        assert_eq!(decode_result(&[]), Some(false));
        // A failure: only `error`, e.g. "Failed to verify digest. Error code: 0".
        let mut failure = vec![0x12, 5];
        failure.extend_from_slice(b"nope!");
        assert_eq!(decode_result(&failure), Some(false));
        assert_eq!(decode_result(&[0x08, 0x01, 0x12, 9, b'x']), None);
        assert_eq!(decode_result(&[0x1a, 0]), None);
        assert_eq!(decode_result(&[0x08, 0x80]), None);
    }

    #[test]
    fn arguments_message() {
        let check = HostCheck {
            hash: "sha256",
            public_key: &[0x30; 200],
            signature: std::borrow::Cow::Borrowed(&[7, 7]),
        };
        let msg = encode_arguments(&check, b"h.p");
        assert_eq!(&msg[..8], b"\x0a\x06sha256");
        // 200 as a varint is c8 01.
        assert_eq!(&msg[8..11], &[0x12, 0xc8, 0x01]);
        assert_eq!(&msg[211..215], &[0x1a, 2, 7, 7]);
        assert_eq!(&msg[215..], b"\x22\x03h.p");
    }

    /// A fake `verify_signature`: answers every call with `answer` and counts the calls.
    struct Fake {
        answer: Result<Vec<u8>, u32>,
        calls: Cell<usize>,
    }

    impl VerifySignatureFn for &Fake {
        type Status = u32;
        fn call(&self, _arguments: &[u8]) -> Result<Vec<u8>, u32> {
            self.calls.set(self.calls.get() + 1);
            self.answer.clone()
        }
        fn is_not_found(status: u32) -> bool {
            status == 1
        }
    }

    /// Which backend decides: the host's verdict when it has the function and gives one
    /// (even a wrong one: the fake's `true` accepts a zero signature), pure Rust otherwise.
    #[test]
    fn the_host_decides_what_it_can_and_pure_rust_the_rest() {
        let jwks = super::super::Jwks::parse(
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},{"kty":"oct","k":"c2VjcmV0"}]}"#,
        )
        .unwrap();
        let (ec, oct) = (&jwks.keys()[0].key, &jwks.keys()[1].key);
        let zero = [0u8; 64];
        // (the host's answer to every call, uses host, ES256 verdict, calls)
        type Row = (Result<Vec<u8>, u32>, bool, bool, usize);
        let rows: [Row; 4] = [
            (Ok(vec![0x08, 0x01]), true, true, 2), // host says valid: its verdict stands
            (Ok(vec![]), true, false, 2),          // host says invalid
            (Ok(vec![0x1a, 0]), true, false, 2),   // garbled: pure Rust refuses
            (Err(1), false, false, 1),             // no such function: never asked again
        ];
        for (answer, uses_host, es256, calls) in rows {
            let fake = Fake {
                answer: answer.clone(),
                calls: Cell::new(0),
            };
            let crypto = HostCrypto::detect(&fake);
            assert_eq!(crypto.uses_host(), uses_host, "{answer:?}");
            assert_eq!(
                crypto.verify(Alg::ES256, ec, b"h.p", &zero),
                es256,
                "{answer:?}"
            );
            // HMAC has no public key: never sent to the host.
            assert!(!crypto.verify(Alg::HS256, oct, b"h.p", &zero), "{answer:?}");
            assert_eq!(fake.calls.get(), calls, "{answer:?}");
        }
        let fake = Fake {
            answer: Ok(vec![0x08, 0x01]),
            calls: Cell::new(0),
        };
        assert!(!HostCrypto::pure(&fake).verify(Alg::ES256, ec, b"h.p", &zero));
        assert_eq!(fake.calls.get(), 0);
    }
}
