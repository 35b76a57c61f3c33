//! Any byte string as a JWKS document (inline or fetched): parsing never panics, and a parsed
//! set is never empty and never over the key-count bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_authn::jwt::jwks::MAX_JWKS_KEYS;
use mesh_authn::jwt::Jwks;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jwks) = Jwks::parse(text) {
        assert!(!jwks.keys().is_empty());
        assert!(jwks.keys().len() <= MAX_JWKS_KEYS);
    }
});
