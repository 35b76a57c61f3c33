//! Any byte string as a token: parsing and the time check never panic, and a parsed token's
//! signing input is its header and payload sections joined by one dot, both taken from the
//! token (empty sections are skipped, as jwt_verify_lib's `SkipEmpty` split does, so `h..p.s`
//! is signed as `h.p`: the signature still covers exactly the header and payload it carries).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_authn::jwt::Jwt;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jwt) = Jwt::parse(text) {
        let _ = jwt.check_time(1_700_000_000, 60);
        let _ = jwt.check_time(u64::MAX, u64::MAX);
        let mut halves = jwt.signing_input().split('.');
        let (Some(header), Some(payload), None) = (halves.next(), halves.next(), halves.next())
        else {
            panic!("signing input is not header.payload: {}", jwt.signing_input());
        };
        assert!(!header.is_empty() && !payload.is_empty());
        assert!(text.contains(header) && text.contains(payload));
        assert_eq!(payload, jwt.payload_b64());
        assert_eq!(&**jwt.text(), text);
    }
});
