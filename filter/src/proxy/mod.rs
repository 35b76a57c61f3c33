//! The proxy-wasm adapter: the only code that talks to the host. It holds host calls and moves
//! bytes: it reads what the core needs (request headers, connection properties, the clock,
//! plugin configuration, shared data), hands it to the core, and applies what the core
//! decided (header changes, local replies, counter increments). What to read, the verdicts,
//! the replies and the counters' names are the core's; the adapter's own choices are only
//! about the host: calling the core from Envoy's callbacks in order (PeerAuthentication before
//! the JWT rules) and failing closed (the core's 500 reply) when a host call fails.
//!
//! - `host.rs`: fallible host calls (the ABI's values are `crate::host_abi`'s);
//!   `crypto.rs`: the core's host-crypto backend over `verify_signature`, installed VM-wide.
//! - `root.rs`: one root context per plugin configuration; `per_config.rs`: what it owns and
//!   hands to every stream (compiled configuration, counters, remote-JWKS runtime).
//! - `http.rs`: the HTTP context; `apply.rs`: run the core's decision on the current request
//!   and apply it (header changes, local replies, counters), for a stream and for a resume.
//! - `peer.rs`: reads and decodes the connection properties the core's
//!   `MtlsPolicy::verdict` asks for.
//! - `metrics.rs`: defines the core's counters (`crate::counters`) and increments them.
//! - `jwks_host.rs`: the remote-JWKS host seam (`remote_jwks::runtime::JwksHost`) implemented
//!   with host calls; every decision is the core's (`remote_jwks::runtime`).

mod apply;
pub mod crypto;
pub mod host;
mod http;
mod jwks_host;
mod metrics;
mod peer;
mod per_config;
mod root;

use host::LogLevel;

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        host::log(LogLevel::of(record.level()), &record.args().to_string());
    }

    fn flush(&self) {}
}

// The `_initialize` export (a wasip1 reactor) that Envoy calls before anything else.
// (In a private module: the export needs no public docs.)
#[cfg(feature = "plugin")]
mod entry {
    proxy_wasm::main! {{
        super::start();
    }}
}

/// Registers the logger, the panic hook and the root context. Called from `_initialize`, where
/// Envoy allows no host calls yet.
pub fn start() {
    // Our own logger, not the SDK's: the SDK unwraps the result of every log call.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    // With panic = "abort" a panic still kills the VM; this leaves a readable last line.
    std::panic::set_hook(Box::new(|info| {
        host::log(LogLevel::Critical, &format!("mesh-authn panicked: {info}"));
    }));
    proxy_wasm::set_root_context(|context_id| {
        Box::new(root::RootFilter {
            state: None,
            context_id,
        })
    });
}
