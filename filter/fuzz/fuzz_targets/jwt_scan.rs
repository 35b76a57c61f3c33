//! The token JSON scanner against the reading it replaced (tests/jwt_oracle, included by
//! path): any bytes as a token's header and payload JSON (the first byte is the header's
//! length); the scanner accepts exactly what `json::parse_object` accepts, and `Jwt::parse`
//! gives the old claims, payload and status.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/jwt_oracle/mod.rs"]
mod jwt_oracle;

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let (header, payload) = rest.split_at(usize::from(len).min(rest.len()));
    jwt_oracle::check(header, payload);
});
