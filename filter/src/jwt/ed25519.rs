//! Ed25519 verification with per-key precomputed multiples, for EdDSA in the VM (Envoy's
//! `verify_signature` cannot do Ed25519, so every EdDSA token is checked here).
//!
//! The check is ed25519-dalek's `Verifier::verify` (cofactorless, `s` must be canonical, no
//! small-order rejection — BoringSSL's `ED25519_verify`): `s < ℓ`, `k = SHA-512(R ‖ A ‖ M)
//! mod ℓ`, and the encoding of `[s]B − [k]A` must equal the signature's `R` bytes. Only the
//! way `[s]B − [k]A` is computed differs. ed25519-dalek runs 253 doublings per verification
//! and builds a table of `A`'s multiples each time; `A` is fixed per key, so a [`Key`]
//! builds, once, at its first verification, the multiples `1..=32` of `A`, `2^66·A`,
//! `2^132·A` and `2^198·A` (and the same for the base point, once per VM, when the first key
//! is parsed). Both scalars are then read as four 66-bit pieces
//! of signed 6-bit digits, and the eight pieces share one accumulator: 60 doublings and
//! about 85 additions instead of 253 doublings and about 86 additions plus the tables. The
//! group law is the same, so the verdict is the same for every input (the tests compare it
//! with ed25519-dalek's and with Wycheproof's vectors).

use std::cell::OnceCell;
use std::sync::OnceLock;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::VerifyingKey;
use sha2::{Digest, Sha512};

/// Bits per signed digit: digits are in `[-32, 32)`, so a table holds `1·P ..= 32·P`.
const WINDOW: usize = 6;
/// Multiples per table.
const TABLE: usize = 1 << (WINDOW - 1);
/// Digits per piece: a piece is 66 bits.
const DIGITS: usize = 11;
/// Pieces per scalar: 4 × 66 = 264 bits hold any scalar below 2^253 with its last carry.
const PIECES: usize = 4;
// The digits hold a scalar below 2^253 and the carry out of its top digit.
const _: () = assert!(PIECES * DIGITS * WINDOW > 253);

/// `1·P ..= 32·P` for `P`, `2^66·P`, `2^132·P`, `2^198·P`.
#[derive(Clone)]
struct Multiples(Box<[[EdwardsPoint; TABLE]; PIECES]>);

impl Multiples {
    fn new(point: EdwardsPoint) -> Self {
        let mut piece = point;
        let tables = core::array::from_fn(|i| {
            if i > 0 {
                // 2^66 = 8^22: this piece's base from the previous one.
                for _ in 0..DIGITS * WINDOW / 3 {
                    piece = piece.mul_by_cofactor();
                }
            }
            let mut next = piece;
            core::array::from_fn(|_| {
                let this = next;
                next += piece;
                this
            })
        });
        Multiples(Box::new(tables))
    }
}

/// An Ed25519 public key and its multiples (about 20 KiB), built at the key's first
/// verification: a key set's keys that no token uses cost neither the memory nor the time
/// (a few hundred µs per key in the VM), however many a JWKS lists.
#[derive(Clone)]
pub struct Key {
    /// The key's 32 bytes as the JWK gave them: the `A` hashed into `k`.
    encoded: [u8; 32],
    point: EdwardsPoint,
    multiples: OnceCell<Multiples>,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key")
            .field("encoded", &self.encoded)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// The key for a JWK's `x`, or `None` when the 32 bytes are not a curve point (the same
    /// acceptance as ed25519-dalek's `VerifyingKey::from_bytes`).
    pub fn new(raw: &[u8; 32]) -> Option<Key> {
        let key = VerifyingKey::from_bytes(raw).ok()?;
        // The base point's multiples are built here too, so that no request pays for them.
        basepoint_multiples();
        Some(Key {
            encoded: *key.as_bytes(),
            point: key.to_edwards(),
            multiples: OnceCell::new(),
        })
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        let (r, s) = signature.split_at(32);
        let Ok(s) = <[u8; 32]>::try_from(s) else {
            return false;
        };
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        let hash: [u8; 64] = Sha512::new()
            .chain_update(r)
            .chain_update(self.encoded)
            .chain_update(message)
            .finalize()
            .into();
        let k = Scalar::from_bytes_mod_order_wide(&hash);
        let expected = self.s_b_minus_k_a(&s, &k).compress();
        expected.as_bytes().as_slice() == r
    }

    /// `[s]B − [k]A`, in variable time (every input is public).
    fn s_b_minus_k_a(&self, s: &Scalar, k: &Scalar) -> EdwardsPoint {
        let s_digits = digits(s);
        let k_digits = digits(k);
        let b = basepoint_multiples();
        let a = self.multiples.get_or_init(|| Multiples::new(self.point));
        let mut acc = EdwardsPoint::default();
        for position in (0..DIGITS).rev() {
            if position != DIGITS - 1 {
                // ·2^6
                acc = acc.mul_by_cofactor().mul_by_cofactor();
            }
            for (piece, (b_table, a_table)) in b.0.iter().zip(a.0.iter()).enumerate() {
                let index = piece * DIGITS + position;
                acc = add_digit(acc, b_table, s_digits.get(index).copied().unwrap_or(0));
                acc = add_digit(acc, a_table, -k_digits.get(index).copied().unwrap_or(0));
            }
        }
        acc
    }
}

/// `acc + digit·P`, with `table` holding `1·P ..= 32·P` and `digit` in `[-32, 32]`.
fn add_digit(acc: EdwardsPoint, table: &[EdwardsPoint; TABLE], digit: i8) -> EdwardsPoint {
    let Some(multiple) = table.get(usize::from(digit.unsigned_abs()).wrapping_sub(1)) else {
        return acc; // digit 0
    };
    if digit > 0 {
        acc + multiple
    } else {
        acc - multiple
    }
}

/// The scalar in signed radix 2^6: `Σ d_i·2^(6i)` with every `d_i` in `[-32, 32)`.
fn digits(scalar: &Scalar) -> [i8; PIECES * DIGITS] {
    let bytes = scalar.as_bytes();
    let mut out = [0i8; PIECES * DIGITS];
    let mut carry = 0u16;
    for (i, digit) in out.iter_mut().enumerate() {
        let bit = i * WINDOW;
        let lo = u16::from(bytes.get(bit / 8).copied().unwrap_or(0));
        let hi = u16::from(bytes.get(bit / 8 + 1).copied().unwrap_or(0));
        let window = (((hi << 8) | lo) >> (bit % 8)) & 0x3f;
        // At most 63 + 1; from 32 up, 64 is taken off here and carried into the next digit.
        let value = (window + carry) as i8;
        carry = u16::from(value >= 32);
        *digit = if value >= 32 { value - 64 } else { value };
    }
    out
}

/// The base point's multiples, built once per VM.
fn basepoint_multiples() -> &'static Multiples {
    static MULTIPLES: OnceLock<Multiples> = OnceLock::new();
    MULTIPLES.get_or_init(|| Multiples::new(curve25519_dalek::constants::ED25519_BASEPOINT_POINT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the module and the README say of the cost: about 20 KiB of multiples per key, 60
    /// doublings per verification.
    #[test]
    fn multiples_size_and_doublings() {
        assert_eq!(
            core::mem::size_of::<[[EdwardsPoint; TABLE]; PIECES]>(),
            20 * 1024
        );
        assert_eq!((DIGITS - 1) * WINDOW, 60);
    }

    /// A key's multiples wait for its first verification, and are kept for the next ones.
    #[test]
    fn multiples_are_built_at_the_first_verification() {
        use ed25519_dalek::{Signer, SigningKey};
        let signing = SigningKey::from_bytes(&[7; 32]);
        let key = Key::new(signing.verifying_key().as_bytes()).unwrap();
        assert!(
            key.multiples.get().is_none(),
            "built when the key was parsed"
        );
        let signature = signing.sign(b"message").to_bytes();
        assert!(key.verify(b"message", &signature));
        assert!(key.multiples.get().is_some());
        assert!(!key.verify(b"other", &signature));
    }

    #[test]
    fn digits_sum_to_the_scalar() {
        for seed in 0u8..64 {
            let mut wide = [0u8; 64];
            for (i, b) in wide.iter_mut().enumerate() {
                *b = (i as u8)
                    .wrapping_mul(seed)
                    .wrapping_add(seed.rotate_left(3));
            }
            let scalar = Scalar::from_bytes_mod_order_wide(&wide);
            let mut sum = Scalar::ZERO;
            let mut weight = Scalar::ONE;
            for d in digits(&scalar) {
                assert!((-32..32).contains(&d));
                let magnitude = Scalar::from(u64::from(d.unsigned_abs()));
                if d < 0 {
                    sum -= magnitude * weight;
                } else {
                    sum += magnitude * weight;
                }
                weight *= Scalar::from(64u64);
            }
            assert_eq!(sum, scalar);
        }
    }
}
