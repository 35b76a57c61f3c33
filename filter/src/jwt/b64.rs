//! base64url as JWS and JWK use it.

use base64::alphabet::{STANDARD, URL_SAFE};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// base64url that, like absl's `WebSafeBase64Unescape` under jwt_verify_lib, takes the input
/// with or without `=` padding, and ignores non-zero bits after the last whole byte
/// (jwt_verify_lib's `jwt_time_test.cc` token ends that way and is accepted).
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 (PEM bodies), padded or not.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64url, padded or not; `None` on any other input. Like absl's decoder, ASCII
/// whitespace anywhere in the input is skipped (measured on Envoy 1.40: a space inside a
/// token's signature still verifies).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    // Every JWS section is unpadded base64url without whitespace: decoded in one pass. Anything
    // else (whitespace, `=` padding, a bad symbol) goes the slow way, which decides.
    decode_unpadded(text.as_bytes()).or_else(|| {
        let compact: Vec<u8> = text.bytes().filter(|b| !is_absl_space(*b)).collect();
        URL_SAFE_ANY_PADDING.decode(compact).ok()
    })
}

/// Unpadded base64url, every byte a symbol; `None` for anything else. The `base64` crate's
/// engine, compiled size-first, cost about 25 instructions a character (`make profile`: a
/// third of a token's parse), this loop about 4.
fn decode_unpadded(text: &[u8]) -> Option<Vec<u8>> {
    // The last 2 or 3 symbols give 1 or 2 bytes, their leftover bits ignored (as absl ignores
    // them); one symbol alone is not a byte.
    let tail_bytes = match text.len() % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    let whole = text.len() / 4 * 3;
    let mut out = vec![0u8; whole + tail_bytes];
    let (out_whole, out_tail) = out.split_at_mut_checked(whole)?;
    let mut quads = text.chunks_exact(4);
    // A byte outside the alphabet maps to 0xff: or-ed together, checked once at the end.
    let mut invalid = 0u8;
    for (bytes, quad) in out_whole.chunks_exact_mut(3).zip(&mut quads) {
        if let ([b0, b1, b2], [a, b, c, d]) = (bytes, quad) {
            let (a, b, c, d) = (sextet(*a), sextet(*b), sextet(*c), sextet(*d));
            invalid |= a | b | c | d;
            let n = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
            *b0 = (n >> 16) as u8;
            *b1 = (n >> 8) as u8;
            *b2 = n as u8;
        }
    }
    let mut n = 0u32;
    for (i, symbol) in quads.remainder().iter().enumerate() {
        let v = sextet(*symbol);
        invalid |= v;
        n |= u32::from(v & 0x3f) << (18 - 6 * i);
    }
    for (i, byte) in out_tail.iter_mut().enumerate() {
        *byte = (n >> (16 - 8 * i)) as u8;
    }
    (invalid & 0x80 == 0).then_some(out)
}

/// The value of a base64url symbol; 0xff for any other byte.
#[inline(always)]
fn sextet(symbol: u8) -> u8 {
    SEXTETS.get(usize::from(symbol)).copied().unwrap_or(0xff)
}

/// base64url symbol values, 0xff for every other byte.
const SEXTETS: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        let symbol = match i {
            0..=25 => b'A' + i,
            26..=51 => b'a' + (i - 26),
            52..=61 => b'0' + (i - 52),
            62 => b'-',
            _ => b'_',
        };
        // Evaluated at compile time: an index out of range would not compile.
        #[allow(clippy::indexing_slicing)]
        {
            table[symbol as usize] = i;
        }
        i += 1;
    }
    table
};

/// `absl::ascii_isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_absl_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Decodes standard base64 (a PEM body with its line breaks already removed).
pub fn decode_standard(text: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PADDING.decode(text).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn takes_padded_and_unpadded_and_refuses_the_standard_alphabet() {
        assert_eq!(super::decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(super::decode("+/8"), None);
        assert_eq!(super::decode("Y Q\n").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::decode("Y!Q"), None);
    }
}

#[cfg(test)]
mod properties {
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256),
            ..ProptestConfig::default()
        })]

        #[test]
        fn round_trips_padded_and_unpadded(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(super::decode(&URL_SAFE_NO_PAD.encode(&bytes)), Some(bytes.clone()));
            prop_assert_eq!(super::decode(&URL_SAFE.encode(&bytes)), Some(bytes));
        }

        #[test]
        fn decodes_exactly_what_the_base64_crate_decodes(text in "[A-Za-z0-9_=+/ -]{0,40}") {
            // The crate, configured as before the hand-written loop, is the reference.
            prop_assert_eq!(super::decode(&text), {
                let compact: String = text.chars().filter(|c| *c != ' ').collect();
                super::URL_SAFE_ANY_PADDING.decode(compact).ok()
            });
        }

        #[test]
        fn decodes_unpadded_text_exactly_as_the_base64_crate(text in "[A-Za-z0-9_-]{0,64}") {
            prop_assert_eq!(super::decode(&text), super::URL_SAFE_ANY_PADDING.decode(&text).ok());
        }

        #[test]
        fn whatever_decodes_encodes_back_to_the_same_significant_text(text in "[A-Za-z0-9_=+/ -]{0,64}") {
            if let Some(bytes) = super::decode(&text) {
                // Same bytes from the canonical text: only padding, whitespace and the ignored
                // trailing bits may differ.
                let canonical = URL_SAFE_NO_PAD.encode(&bytes);
                prop_assert_eq!(super::decode(&canonical), Some(bytes));
                prop_assert!(!text.contains('+') && !text.contains('/'));
            }
        }
    }
}
