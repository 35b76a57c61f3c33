//! RSA public keys and signature verification (RFC 8017: RSASSA-PKCS1-v1_5 and RSASSA-PSS)
//! over our own Montgomery arithmetic.
//!
//! A key's Montgomery constants (`-n⁻¹ mod 2³²` and `R² mod n`) are computed once, when the key
//! is parsed; a verification then costs one exponentiation by `e` (for 65537: 18 Montgomery
//! multiplications) and the padding check. Limbs are 32 bits because their 64-bit products are one `i64.mul` on wasm32, where
//! 128-bit products would be a library call.
//!
//! Verification handles public data only (key, message, signature), so the arithmetic is not
//! constant time.

use sha2::digest::Digest;

/// One digit of a big number; numbers are little-endian slices of limbs.
type Limb = u32;
/// Holds a limb product plus two limbs without overflow: (2³²−1)² + 2·(2³²−1) = 2⁶⁴ − 1.
type Wide = u64;
const LIMB_BITS: u32 = Limb::BITS;
const LIMB_BYTES: usize = (Limb::BITS / 8) as usize;

/// The smallest and largest public exponents accepted, as the `rsa` crate (0.9) this module
/// replaced accepted them; jwt_verify_lib's own rule (3 or 65537) is applied by the JWKS parser.
const MIN_EXPONENT: u64 = 2;
const MAX_EXPONENT: u64 = (1 << 33) - 1;

/// The DER `DigestInfo` prefix of an EMSA-PKCS1-v1_5 encoding for SHA-256 (RFC 8017 §9.2,
/// note 1); the digest follows it.
pub const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// The `DigestInfo` prefix for SHA-384 (RFC 8017 §9.2, note 1).
pub const SHA384_DIGEST_INFO: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
/// The `DigestInfo` prefix for SHA-512 (RFC 8017 §9.2, note 1).
pub const SHA512_DIGEST_INFO: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// Why an RSA public key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RsaKeyError {
    /// The modulus is zero or even.
    #[error("the RSA modulus is even or zero")]
    EvenModulus,
    /// The modulus has more bits than allowed.
    #[error("the RSA modulus has {bits} bits, more than {max}")]
    ModulusTooLarge {
        /// Bits in the modulus.
        bits: usize,
        /// The limit.
        max: usize,
    },
    /// The exponent is even, below 2, above 2³³−1, or not below the modulus.
    #[error("the RSA public exponent is out of range")]
    BadExponent,
}

/// An RSA public key ready for verification: the modulus as limbs with its Montgomery
/// constants, and the exponent.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// The modulus, little-endian limbs, the top limb non-zero.
    n: Box<[Limb]>,
    /// `-n⁻¹ mod 2³²`.
    n0_inv: Limb,
    /// `R² mod n` with `R = 2^(32·limbs)`: multiplying by it enters Montgomery form.
    r_squared: Box<[Limb]>,
    /// The public exponent (odd, at least 3).
    e: u64,
    /// Bits in the modulus.
    bits: usize,
}

impl core::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaPublicKey({} bits, e = {})", self.bits, self.e)
    }
}

impl RsaPublicKey {
    /// A key from big-endian `n` and `e` (leading zero bytes allowed). Refused: an even or
    /// zero modulus, one over `max_bits` bits, and an exponent that is even, below 2, above
    /// 2³³−1 or not below the modulus.
    pub fn new(n: &[u8], e: &[u8], max_bits: usize) -> Result<Self, RsaKeyError> {
        let n = strip_leading_zeros(n);
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err(RsaKeyError::EvenModulus);
        }
        let bits = bit_length(n);
        if bits > max_bits {
            return Err(RsaKeyError::ModulusTooLarge {
                bits,
                max: max_bits,
            });
        }
        let e_bytes = strip_leading_zeros(e);
        if e_bytes.len() > 8 {
            return Err(RsaKeyError::BadExponent);
        }
        let e = e_bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let limbs = n.len().div_ceil(LIMB_BYTES);
        let n = limbs_from_be(n, limbs).ok_or(RsaKeyError::EvenModulus)?;
        let e_limbs = limbs_from_be(e_bytes, limbs);
        let e_below_n = e_limbs.is_some_and(|e| less_than(&e, &n));
        if e & 1 == 0 || !(MIN_EXPONENT..=MAX_EXPONENT).contains(&e) || !e_below_n {
            return Err(RsaKeyError::BadExponent);
        }
        let n0_inv = neg_inverse(n.first().copied().unwrap_or(1));
        let r_squared = r_squared(&n, n0_inv, bits).into_boxed_slice();
        Ok(RsaPublicKey {
            n: n.into_boxed_slice(),
            n0_inv,
            r_squared,
            e,
            bits,
        })
    }

    /// Bits in the modulus.
    pub const fn bits(&self) -> usize {
        self.bits
    }

    /// Bytes in the modulus: the length of every signature under this key.
    pub const fn size(&self) -> usize {
        self.bits.div_ceil(8)
    }

    /// The modulus, big-endian, without leading zeros.
    pub fn modulus_be(&self) -> Vec<u8> {
        be_from_limbs(&self.n, self.size())
    }

    /// The public exponent, big-endian, without leading zeros.
    pub fn exponent_be(&self) -> Vec<u8> {
        let bytes = self.e.to_be_bytes();
        strip_leading_zeros(&bytes).to_vec()
    }

    /// RSAVP1 (RFC 8017 §5.2.2) on a signature of exactly [`Self::size`] bytes: `s^e mod n`
    /// on [`Self::size`] big-endian bytes, or `None` when the length differs or `s ≥ n`.
    fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.size() {
            return None;
        }
        let s = limbs_from_be(signature, self.n.len())?;
        if !less_than(&s, &self.n) {
            return None;
        }
        Some(be_from_limbs(&self.pow_e(&s), self.size()))
    }

    /// `base^e mod n` for `base < n`, left to right over the exponent's bits: for 65537, one
    /// multiplication into Montgomery form, 16 squarings and one multiplication.
    fn pow_e(&self, base: &[Limb]) -> Vec<Limb> {
        let len = self.n.len();
        let mut tmp = vec![0; len];
        // base·R mod n: base in Montgomery form.
        let mut base_m = vec![0; len];
        self.mont_mul(&mut base_m, base, &self.r_squared);
        let mut acc = base_m.clone();
        // e ≥ 3 is odd: its top bit is above bit 0, and bit 0 is set.
        let top = u64::BITS - 1 - self.e.leading_zeros();
        for i in (1..top).rev() {
            self.mont_mul(&mut tmp, &acc, &acc);
            core::mem::swap(&mut acc, &mut tmp);
            if (self.e >> i) & 1 == 1 {
                self.mont_mul(&mut tmp, &acc, &base_m);
                core::mem::swap(&mut acc, &mut tmp);
            }
        }
        self.mont_mul(&mut tmp, &acc, &acc);
        // Bit 0: multiplying x·R by the plain base gives x·base, out of Montgomery form.
        self.mont_mul(&mut acc, &tmp, base);
        acc
    }

    fn mont_mul(&self, out: &mut [Limb], a: &[Limb], b: &[Limb]) {
        mont_mul(out, a, b, &self.n, self.n0_inv);
    }

    /// RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2): the signature's `s^e mod n` must be
    /// exactly `00 01 FF…FF 00 || digest_info || digest` on [`Self::size`] bytes, with at least
    /// eight `FF` bytes. `digest_info` is the hash's DER prefix (e.g. [`SHA256_DIGEST_INFO`]).
    pub fn verify_pkcs1v15(&self, digest_info: &[u8], digest: &[u8], signature: &[u8]) -> bool {
        let k = self.size();
        let t_len = digest_info.len() + digest.len();
        if k < t_len + 11 {
            return false;
        }
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let ps_len = k - t_len - 3;
        let mut expected = Vec::with_capacity(k);
        expected.extend_from_slice(&[0x00, 0x01]);
        expected.resize(2 + ps_len, 0xff);
        expected.push(0x00);
        expected.extend_from_slice(digest_info);
        expected.extend_from_slice(digest);
        em == expected
    }

    /// RSASSA-PSS verification (RFC 8017 §8.1.2, EMSA-PSS-VERIFY §9.1.2) with MGF1 over the
    /// same hash `D`, and the salt length recovered from the encoded message (any length,
    /// including none), as BoringSSL's `EVP_DigestVerify` does by default
    /// (`RSA_PSS_SALTLEN_AUTO`).
    pub fn verify_pss<D: Digest>(&self, message: &[u8], signature: &[u8]) -> bool {
        let Some(m) = self.public_op(signature) else {
            return false;
        };
        let em_bits = self.bits.saturating_sub(1);
        let em_len = em_bits.div_ceil(8);
        // EM is the integer m written on em_len bytes (k or k − 1); anything longer does not
        // fit.
        let Some((high, em)) = m.split_at_checked(m.len().saturating_sub(em_len)) else {
            return false;
        };
        if high.iter().any(|b| *b != 0) {
            return false;
        }
        let h_len = <D as Digest>::output_size();
        if em_len < h_len + 2 || em.last() != Some(&0xbc) {
            return false;
        }
        let db_len = em_len - h_len - 1;
        let (masked_db, rest) = em.split_at(db_len);
        let Some(h) = rest.get(..h_len) else {
            return false;
        };
        let top_bits = 8 * em_len - em_bits;
        let top_mask = 0xffu8.checked_shr(top_bits as u32).unwrap_or(0);
        if masked_db.first().is_some_and(|b| b & !top_mask != 0) {
            return false;
        }
        let mut db = mgf1::<D>(h, db_len);
        for (d, m) in db.iter_mut().zip(masked_db) {
            *d ^= m;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        // DB = PS (zeros) || 0x01 || salt.
        let zeros = db.iter().take_while(|b| **b == 0).count();
        if db.get(zeros) != Some(&0x01) {
            return false;
        }
        let salt = db.get(zeros + 1..).unwrap_or_default();
        // The salt is as long as the hash (RFC 7518 §3.5), as Envoy 1.40's BoringSSL requires
        // (`RSA_PSS_SALTLEN_DIGEST`, its default since 2025): a signature with another salt
        // length gets a 401 from native jwt_authn, measured in host-tests' differential suite.
        if salt.len() != h_len {
            return false;
        }
        let m_hash = D::digest(message);
        let mut prime = D::new();
        prime.update([0u8; 8]);
        prime.update(&m_hash);
        prime.update(salt);
        prime.finalize()[..] == *h
    }
}

/// MGF1 (RFC 8017 §B.2.1) over `D`: `len` bytes of mask from `seed`.
fn mgf1<D: Digest>(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + <D as Digest>::output_size());
    let mut counter = 0u32;
    while out.len() < len {
        let mut d = D::new();
        d.update(seed);
        d.update(counter.to_be_bytes());
        out.extend_from_slice(&d.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// `out = a·b·R⁻¹ mod n` for `a, b < n` (Montgomery multiplication, the reduction interleaved
/// with the product one limb of `b` at a time). All slices have `n`'s length; `n` is odd and
/// `n0_inv = -n⁻¹ mod 2³²`.
fn mont_mul(out: &mut [Limb], a: &[Limb], b: &[Limb], n: &[Limb], n0_inv: Limb) {
    out.fill(0);
    // The limb above `out`: the running value stays below 2n < 2R, so it is 0 or 1.
    let mut high: Limb = 0;
    let a0 = a.first().copied().unwrap_or(0);
    for &bi in b {
        let out0 = out.first().copied().unwrap_or(0);
        // Chosen so that out + a·bi + m·n is divisible by 2³².
        let m = out0.wrapping_add(a0.wrapping_mul(bi)).wrapping_mul(n0_inv);
        let (mut carry_ab, mut carry_mn): (Wide, Wide) = (0, 0);
        // Each sum is written one limb down (the division by 2³²); the lowest, zero by the
        // choice of m, goes nowhere.
        let mut discarded: Limb = 0;
        let mut below: &mut Limb = &mut discarded;
        for ((t, &aj), &nj) in out.iter_mut().zip(a).zip(n) {
            let x = Wide::from(*t) + Wide::from(aj) * Wide::from(bi) + carry_ab;
            carry_ab = x >> LIMB_BITS;
            let y = Wide::from(x as Limb) + Wide::from(m) * Wide::from(nj) + carry_mn;
            carry_mn = y >> LIMB_BITS;
            *below = y as Limb;
            below = t;
        }
        let z = Wide::from(high) + carry_ab + carry_mn;
        *below = z as Limb;
        high = (z >> LIMB_BITS) as Limb;
    }
    if high != 0 || !less_than(out, n) {
        sub_in_place(out, n);
    }
}

/// `-x⁻¹ mod 2³²` for odd `x` (Newton's iteration: each step doubles the correct low bits,
/// from 3 for `x` itself).
fn neg_inverse(x: Limb) -> Limb {
    let mut inv = x;
    for _ in 0..5 {
        inv = inv.wrapping_mul((2 as Limb).wrapping_sub(x.wrapping_mul(inv)));
    }
    inv.wrapping_neg()
}

/// `R² mod n` with `R = 2^(32·n.len())`. `2^w·R mod n` comes from doubling `2^(bits−1)` (below
/// n) modulo n; `j` Montgomery squarings then turn it into the Montgomery form of
/// `2^(w·2^j) = R`, which is `R² mod n`. `w` is the odd part of `32·n.len()`.
fn r_squared(n: &[Limb], n0_inv: Limb, bits: usize) -> Vec<Limb> {
    let r_bits = n.len() * LIMB_BITS as usize;
    let squarings = r_bits.trailing_zeros();
    let w = r_bits >> squarings;
    let mut x = vec![0; n.len()];
    let top = bits.saturating_sub(1);
    if let Some(limb) = x.get_mut(top / LIMB_BITS as usize) {
        *limb = 1 << (top % LIMB_BITS as usize);
    }
    for _ in top..w + r_bits {
        double_mod(&mut x, n);
    }
    let mut tmp = vec![0; n.len()];
    for _ in 0..squarings {
        mont_mul(&mut tmp, &x, &x, n, n0_inv);
        core::mem::swap(&mut x, &mut tmp);
    }
    x
}

/// `x = 2x mod n` for `x < n`.
fn double_mod(x: &mut [Limb], n: &[Limb]) {
    let mut carry = 0;
    for limb in x.iter_mut() {
        let next = *limb >> (LIMB_BITS - 1);
        *limb = (*limb << 1) | carry;
        carry = next;
    }
    // 2x < 2n: one subtraction at most; with a carry out the true value is above n and the
    // wrapped subtraction gives it exactly.
    if carry != 0 || !less_than(x, n) {
        sub_in_place(x, n);
    }
}

/// Whether `a < b`, both of the same length.
fn less_than(a: &[Limb], b: &[Limb]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` modulo `2^(32·len)`.
fn sub_in_place(a: &mut [Limb], b: &[Limb]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(Limb::from(borrow));
        *x = d2;
        borrow = b1 || b2;
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(zeros..).unwrap_or_default()
}

/// Bits in a big-endian number without leading zero bytes.
fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        None => 0,
        Some(top) => (be.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// A big-endian number as `limbs` little-endian limbs; `None` when it does not fit.
fn limbs_from_be(be: &[u8], limbs: usize) -> Option<Vec<Limb>> {
    let mut out = vec![0; limbs];
    for (i, chunk) in be.rchunks(LIMB_BYTES).enumerate() {
        let value = chunk
            .iter()
            .fold(0 as Limb, |acc, b| (acc << 8) | Limb::from(*b));
        match out.get_mut(i) {
            Some(limb) => *limb = value,
            None if value == 0 => {}
            None => return None,
        }
    }
    Some(out)
}

/// The low `len` bytes of a little-endian limb number, big-endian.
fn be_from_limbs(limbs: &[Limb], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().rev().enumerate() {
        let limb = limbs.get(i / LIMB_BYTES).copied().unwrap_or(0);
        *byte = (limb >> (8 * (i % LIMB_BYTES))) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rsa::BigUint;
    use proptest::prelude::*;

    /// The largest modulus the JWKS parser allows (BoringSSL's limit).
    const MAX_BITS: usize = 16384;

    fn oracle(n: &[u8], e: u64, s: &[u8]) -> Vec<u8> {
        let n = BigUint::from_bytes_be(n);
        let s = BigUint::from_bytes_be(s);
        strip_leading_zeros(&s.modpow(&BigUint::from(e), &n).to_bytes_be()).to_vec()
    }

    fn ours(n: &[u8], e: u64, s: &[u8]) -> Option<Vec<u8>> {
        let key = RsaPublicKey::new(n, &e.to_be_bytes(), MAX_BITS).ok()?;
        let mut padded = vec![0u8; key.size().saturating_sub(s.len())];
        padded.extend_from_slice(s);
        let m = key.public_op(&padded)?;
        Some(strip_leading_zeros(&m).to_vec())
    }

    /// An odd modulus of `len` bytes with its top byte non-zero, and a base below it.
    fn modulus_and_base() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
        (1usize..=80).prop_flat_map(|len| {
            (
                proptest::collection::vec(any::<u8>(), len),
                proptest::collection::vec(any::<u8>(), len),
            )
                .prop_map(|(mut n, s)| {
                    if let Some(top) = n.first_mut() {
                        *top |= 0x80;
                    }
                    if let Some(low) = n.last_mut() {
                        *low |= 1;
                    }
                    // s below n: clear its top bit (n's is set).
                    let mut s = s;
                    if let Some(top) = s.first_mut() {
                        *top &= 0x7f;
                    }
                    (n, s)
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn modexp_matches_num_bigint_dig(
            (n, s) in modulus_and_base(),
            e in prop_oneof![Just(3u64), Just(65537u64), (1u64..(1 << 33) / 2).prop_map(|h| 2 * h + 1)],
        ) {
            let n_int = BigUint::from_bytes_be(&n);
            prop_assume!(BigUint::from(e) < n_int);
            prop_assert_eq!(ours(&n, e, &s), Some(oracle(&n, e, &s)));
        }

        #[test]
        fn modexp_matches_near_the_modulus(
            (n, _) in modulus_and_base(),
            below in 1u32..1000,
        ) {
            // s = n − below: the largest bases, where a missed final subtraction would show.
            let n_int = BigUint::from_bytes_be(&n);
            prop_assume!(n_int > BigUint::from(65537u32 + below));
            let s = (&n_int - BigUint::from(below)).to_bytes_be();
            prop_assert_eq!(ours(&n, 65537, &s), Some(oracle(&n, 65537, &s)));
        }
    }

    #[test]
    fn modexp_matches_at_every_size_up_to_the_limit() {
        // Moduli of all ones (the top limb full) and of one bit above a limb boundary (the top
        // limb 1), from 18 to 16384 bits (e = 65537 must stay below n).
        for bits in [
            18, 31, 32, 33, 63, 64, 65, 1023, 1024, 2048, 2049, 4096, 16384,
        ] {
            for top_only in [false, true] {
                let len = (bits as usize).div_ceil(8);
                let mut n = vec![if top_only { 0 } else { 0xff }; len];
                let top_bit = (bits - 1) % 8;
                if let Some(top) = n.first_mut() {
                    *top = if top_only {
                        1 << top_bit
                    } else {
                        0xff >> (7 - top_bit)
                    };
                }
                if let Some(low) = n.last_mut() {
                    *low |= 1;
                }
                let s: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
                let mut s = s;
                if let Some(top) = s.first_mut() {
                    *top = 0;
                }
                assert_eq!(
                    ours(&n, 65537, &s),
                    Some(oracle(&n, 65537, &s)),
                    "{bits} bits"
                );
                assert_eq!(ours(&n, 3, &s), Some(oracle(&n, 3, &s)), "{bits} bits");
            }
        }
    }

    #[test]
    fn key_rules_match_the_rsa_crate() {
        // What `rsa::RsaPublicKey::new_with_max_size` refused, this refuses.
        let cases: [(&[u8], &[u8], bool); 10] = [
            (&[0x01, 0x00, 0x01], &[3], true),
            (&[0x00, 0x01, 0x00, 0x01], &[0, 3], true),
            (&[0x01, 0x00, 0x00], &[3], false), // even
            (&[], &[3], false),                 // zero
            (&[0x00], &[3], false),             // zero
            (&[0x05], &[3], true),
            (&[0x03], &[3], false),                   // e = n
            (&[0x01, 0x00, 0x01], &[4], false),       // even e
            (&[0x01, 0x00, 0x01], &[1], false),       // e < 2
            (&[0xff; 8], &[0x02, 0, 0, 0, 1], false), // e > 2^33 - 1
        ];
        for (n, e, ok) in cases {
            let theirs = ::rsa::RsaPublicKey::new_with_max_size(
                BigUint::from_bytes_be(n),
                BigUint::from_bytes_be(e),
                MAX_BITS,
            )
            .is_ok();
            assert_eq!(theirs, ok, "rsa crate on n={n:?} e={e:?}");
            assert_eq!(
                RsaPublicKey::new(n, e, MAX_BITS).is_ok(),
                ok,
                "n={n:?} e={e:?}"
            );
        }
        let mut big = vec![0xffu8; MAX_BITS / 8];
        assert!(RsaPublicKey::new(&big, &[1, 0, 1], MAX_BITS).is_ok());
        big.insert(0, 1);
        assert_eq!(
            RsaPublicKey::new(&big, &[1, 0, 1], MAX_BITS).unwrap_err(),
            RsaKeyError::ModulusTooLarge {
                bits: MAX_BITS + 1,
                max: MAX_BITS
            }
        );
    }

    #[test]
    fn components_round_trip_without_leading_zeros() {
        let key = RsaPublicKey::new(&[0, 0, 0x80, 0, 0, 0, 0, 1], &[0, 1, 0, 1], 64).unwrap();
        assert_eq!(key.bits(), 48);
        assert_eq!(key.size(), 6);
        assert_eq!(key.modulus_be(), [0x80, 0, 0, 0, 0, 1]);
        assert_eq!(key.exponent_be(), [1, 0, 1]);
    }
}
