//! base64url as JWS and JWK use it.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// base64url that, like absl's `WebSafeBase64Unescape` under jwt_verify_lib, takes the input
/// with or without `=` padding.
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes base64url, padded or not; `None` on any other input.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_ANY_PADDING.decode(text).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn takes_padded_and_unpadded_and_refuses_the_standard_alphabet() {
        assert_eq!(super::decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(super::decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(super::decode("+/8"), None);
        assert_eq!(super::decode("a b"), None);
    }
}
