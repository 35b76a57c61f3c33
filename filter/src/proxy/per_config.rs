//! What belongs to one plugin configuration in a VM. Envoy runs one root context per plugin
//! configuration, and several of them in one VM when their `vm_config` is the same (two
//! listeners, or an old and a new listener while an update drains): everything a request's
//! decision depends on or records is reached from its root's [`PerConfig`], handed explicitly
//! to each HTTP context and to each resume after a key fetch, never through a VM-wide global.
//! (The signature backend, `crypto::install`, is VM-wide on purpose: it depends on the host
//! only, not on any configuration.)

use std::cell::RefCell;

use super::metrics::Metrics;
use crate::config::FilterConfig;
use crate::remote_jwks::runtime::JwksRuntime;

/// One configuration's compiled rules (with its verified-token cache), counters and
/// remote-JWKS runtime: the one object its root owns and hands to every stream.
pub struct PerConfig {
    /// The compiled configuration; its `token_cache` is this configuration's.
    pub config: FilterConfig,
    /// This configuration's counter ids (`None`: the host refused to define them).
    pub counters: Option<Metrics>,
    /// Remote key sets: fetches, cache, paused requests (`None` without `jwksUri`/discovery).
    /// Borrowed only inside one host callback (a VM is single-threaded).
    pub jwks: Option<RefCell<JwksRuntime>>,
    /// The root context, which dispatches the fetches.
    pub root_context_id: u32,
}

impl PerConfig {
    /// Counts with this configuration's counters, if it has them.
    pub fn count(&self, f: impl FnOnce(&Metrics)) {
        if let Some(counters) = &self.counters {
            f(counters);
        }
    }
}
