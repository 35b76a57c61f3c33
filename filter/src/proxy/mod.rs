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
//! - `dispatcher.rs`: the proxy-wasm exports, routing Envoy's calls to root and HTTP
//!   contexts (only the callbacks the plugin acts on); `root.rs`: one root context per plugin
//!   configuration; `per_config.rs`: what it owns and
//!   hands to every stream (compiled configuration, counters, remote-JWKS runtime).
//! - `http.rs`: the HTTP context; `apply.rs`: run the core's decision on the current request
//!   and apply it (header changes, local replies, counters), for a stream and for a resume.
//! - `peer.rs`: reads and decodes the connection properties the core's
//!   `MtlsPolicy::verdict` asks for.
//! - `metrics.rs`: defines the core's counters (`crate::counters`) and increments them.
//! - `jwks_host.rs`: the remote-JWKS host seam (`remote_jwks::runtime::JwksHost`) implemented
//!   with host calls; every decision is the core's (`remote_jwks::runtime`).

// Without the `plugin` feature (the crypto probe) only the host calls and the host-crypto
// backend are built: the contexts serve the exports alone.
#[cfg(feature = "plugin")]
mod apply;
pub mod crypto;
pub mod host;
#[cfg(feature = "plugin")]
mod http;
#[cfg(feature = "plugin")]
mod jwks_host;
#[cfg(feature = "plugin")]
mod metrics;
#[cfg(feature = "plugin")]
mod peer;
#[cfg(feature = "plugin")]
mod per_config;
#[cfg(feature = "plugin")]
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

// The `_initialize` export (a wasip1 reactor) that Envoy calls before anything else, and the
// proxy-wasm callbacks. (In private modules: the exports need no public docs.)
#[cfg(feature = "plugin")]
mod entry {
    #[cfg(target_os = "wasi")]
    extern "C" {
        /// The reactor's static constructors, which the linker gathers.
        fn __wasm_call_ctors();
    }

    #[no_mangle]
    pub extern "C" fn _initialize() {
        #[cfg(target_os = "wasi")]
        // SAFETY: called once, first, as the wasip1 reactor ABI requires.
        unsafe {
            __wasm_call_ctors();
        }
        super::start();
    }
}
#[cfg(feature = "plugin")]
mod dispatcher;

/// Registers the logger and the panic hook. Called from `_initialize`, where Envoy allows no
/// host calls yet.
pub fn start() {
    // Our own logger, not the SDK's: the SDK unwraps the result of every log call.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    // With panic = "abort" a panic still kills the VM; this leaves a readable last line.
    std::panic::set_hook(Box::new(|info| {
        host::log(LogLevel::Critical, &format!("mesh-authn panicked: {info}"));
    }));
}
