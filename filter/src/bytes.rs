//! Byte-slice work a word at a time. On wasm32, `==` on byte slices is a call to `memcmp`,
//! which there is a loop over single bytes. A cache hit compares the whole token (hundreds of
//! bytes) and, on every request, header names, the `Bearer ` prefix, the issuer and the
//! audience: comparing those here instead of with `==` took 427 of the VM's instructions off a
//! cache hit in Envoy (`make bench-instructions`, 2026-12-04).

/// An 8-byte chunk as a little-endian word (0 if it is not 8 bytes).
pub fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().unwrap_or_default())
}

/// Up to 8 bytes as a little-endian word, zero-padded (the bytes past 8 ignored).
pub fn padded_word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    for (to, from) in w.iter_mut().zip(bytes) {
        *to = *from;
    }
    u64::from_le_bytes(w)
}

/// Byte-for-byte equality, four words at a time, then a word at a time, then the last word
/// again (overlapping what was compared: no byte loop). Slices shorter than a word compare as
/// [`same_short`].
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return same_short(a, b);
    };
    if a_last != b_last {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let (Some((x, a_rest)), Some((y, b_rest))) =
        (a.split_first_chunk::<32>(), b.split_first_chunk::<32>())
    {
        let differ = (word(&x[..8]) ^ word(&y[..8]))
            | (word(&x[8..16]) ^ word(&y[8..16]))
            | (word(&x[16..24]) ^ word(&y[16..24]))
            | (word(&x[24..]) ^ word(&y[24..]));
        if differ != 0 {
            return false;
        }
        (a, b) = (a_rest, b_rest);
    }
    while let (Some((x, a_rest)), Some((y, b_rest))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if x != y {
            return false;
        }
        (a, b) = (a_rest, b_rest);
    }
    true
}

/// Equality of two slices of the same length below 8 bytes, without a loop: their first and
/// last 4 bytes (overlapping below 8), or below 4 bytes their first, middle and last byte,
/// which between them are every byte of 1 to 3.
fn same_short(a: &[u8], b: &[u8]) -> bool {
    let half = |s: &[u8]| {
        let first = s.first_chunk::<4>().copied().map(u32::from_ne_bytes);
        let last = s.last_chunk::<4>().copied().map(u32::from_ne_bytes);
        (first, last)
    };
    match (half(a), half(b)) {
        ((Some(a0), Some(a1)), (Some(b0), Some(b1))) => a0 == b0 && a1 == b1,
        _ => {
            let mid = a.len() / 2;
            a.first() == b.first() && a.get(mid) == b.get(mid) && a.last() == b.last()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_wise_equality_is_byte_equality() {
        // Every length through two four-word blocks, a word and a partial word.
        let base: Vec<u8> = (0u8..=80).collect();
        for len in 0..base.len() {
            let a = &base[..len];
            assert!(same(a, a), "{len}");
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x01;
                assert!(!same(a, &b), "len {len}, byte {at} differs");
                // A zero byte where the other has one: padding must not hide it.
                b[at] = 0;
                assert_eq!(same(a, &b), a[at] == 0, "len {len}, byte {at} zeroed");
            }
            if len > 0 {
                assert!(!same(a, &a[..len - 1]), "a prefix, {len}");
                assert!(!same(&a[..len - 1], a), "a prefix, {len}");
            }
        }
    }

    #[test]
    fn a_padded_word_keeps_the_bytes_in_order() {
        assert_eq!(padded_word(b""), 0);
        assert_eq!(padded_word(b"\x01\x02"), 0x0201);
        assert_eq!(padded_word(b"abcdefgh"), word(b"abcdefgh"));
        assert_eq!(padded_word(b"abcdefghij"), word(b"abcdefgh"));
    }
}
