//! **mesh-authn**: Istio's `RequestAuthentication` and `PeerAuthentication` enforced
//! by a proxy-wasm filter in stock Envoy, with Envoy `jwt_authn`'s behaviour where Istio users
//! rely on it.
//!
//! The crate is a pure core that compiles and tests natively, and a thin adapter:
//!
//! - [`config`]: the plugin configuration (Istio resources as pasted), compiled once;
//! - [`jwt`]: token and key-set parsing, time, audience and signature checks (jwt_verify_lib),
//!   and the host-crypto backend over Envoy's `verify_signature`;
//! - [`extract`]: where tokens are and how they are removed (Envoy's extractor);
//! - [`peer_authn`]: the PeerAuthentication mode per port and the verdict on a connection;
//! - [`outputs`]: the headers a verified token writes (payload and claims);
//! - [`request_authn`]: the rules of every applicable RequestAuthentication over one request;
//! - [`authz`]: AuthorizationPolicy over one request (Istio's matchers, Envoy RBAC's order);
//! - [`decision`]: the verdict on a request and the changes an allowed one gets;
//! - [`export`]: who an allowed request is, written for later filters and the access log;
//! - [`counters`]: the counters' names and which ones a verdict increments;
//! - [`local_reply`]: every reply the filter answers with itself (JWT, PeerAuthentication,
//!   fail-closed refusal);
//! - [`remote_jwks`]: `jwksUri` and OIDC discovery: what to fetch, the shared cache state, and
//!   the runtime (fetches, shared records, paused requests) over a host seam;
//! - [`request`]: the request as bytes, and the proxy-wasm map encoding;
//! - [`bytes`]: byte-slice comparison a word at a time (the token cache, header names, claims);
//! - [`key_hasher`]: the hasher of maps whose keys no client chooses (the token cache's
//!   buckets, the adapter's context tables);
//! - [`host_abi`]: the proxy-wasm ABI's statuses, log levels and property paths;
//! - [`token_cache`]: the verified-token cache (a hit skips only the signature check);
//! - [`proxy`]: the only module that talks to the host (proxy-wasm root and HTTP contexts,
//!   host calls, host crypto, the remote-JWKS host seam). Public so the test-only crypto probe can drive the same
//!   host-crypto code; the plugin's entry point is the default `plugin` feature.

#![warn(missing_docs)]

pub mod authorize;
pub mod authz;
pub mod bytes;
pub mod config;
pub mod counters;
pub mod decision;
pub mod export;
pub mod extract;
pub mod host_abi;
pub mod jwt;
pub mod key_hasher;
pub mod local_reply;
pub mod outputs;
pub mod peer_authn;
pub mod properties;
pub mod remote_jwks;
pub mod request;
pub mod request_authn;
#[cfg(test)]
mod test_fixtures;
pub mod token_cache;
#[cfg(test)]
mod unreadable_payload_tests;

pub mod proxy;

/// The artifact's identity, logged once at VM start so every Envoy log says what runs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("MESH_AUTHN_GIT_HASH"),
    ")"
);
