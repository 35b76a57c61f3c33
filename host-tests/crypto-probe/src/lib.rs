//! A test-only proxy-wasm plugin (never shipped): it reads signature cases from its plugin
//! configuration, runs each through mesh-authn's host-crypto backend (`HostCrypto`, the code
//! the product uses) inside Envoy, and answers any HTTP request with the verdicts as JSON.
//! `host-tests/tests/envoy_host_crypto.rs` builds it, starts Envoy with it, and compares the
//! verdicts with the upstream expectations and with the pure-Rust backend.
//!
//! Natively this crate is empty: it only means something inside a proxy-wasm host.

#![cfg(target_arch = "wasm32")]

mod probe;
