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
    if text.bytes().any(is_absl_space) {
        let compact: Vec<u8> = text.bytes().filter(|b| !is_absl_space(*b)).collect();
        return URL_SAFE_ANY_PADDING.decode(compact).ok();
    }
    URL_SAFE_ANY_PADDING.decode(text).ok()
}

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
