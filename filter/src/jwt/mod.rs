//! JWT and JWKS handling, pure and host-independent (jwt_verify_lib's cut): parse a token,
//! parse a key set, check time and audience, verify the signature. Time is an argument.

pub mod audience;
mod b64;
mod der;
pub mod ed25519;
pub mod host_crypto;
pub mod json;
pub mod jwks;
pub mod rsa;
pub mod status;
pub mod token;
pub mod verify;

pub use audience::Audiences;
pub use jwks::{Jwks, JwksError};
pub use status::AuthnStatus;
pub use token::{Jwt, UnreadablePayload};

/// Envoy's default clock skew for `nbf`/`exp` (`clock_skew_seconds`, which Istio never sets).
pub const CLOCK_SKEW_SECS: u64 = 60;
