//! Byte-slice work a word at a time. On wasm32, `==` on byte slices is a call to `memcmp`,
//! which there is a loop over single bytes; a cache hit compares the whole token (hundreds of
//! bytes), so it compares here instead (measured with `make profile`). Header names are a
//! few bytes: `==` is cheaper for them than the calls this makes at the crate's size-first
//! `opt-level`, where even `last_chunk` stays out of line (measured too).

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
/// again (overlapping what was compared: no byte loop); slices shorter than a word are
/// compared as one zero-padded word (their lengths are equal by then, so padding cannot make
/// them agree).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (Some(a_last), Some(b_last)) = (a.last_chunk::<8>(), b.last_chunk::<8>()) else {
        return padded_word(a) == padded_word(b);
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
