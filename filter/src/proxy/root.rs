//! The root context: compiles the plugin configuration once and hands it to every stream.

use std::rc::Rc;

use super::crypto::{self, HostCrypto};
use super::host::{self, LogLevel};
use super::metrics::Metrics;
use super::per_config::PerConfig;
use crate::config::{FilterConfig, NodeMetadata};
use crate::counters::FLUSH_MS;
use crate::VERSION;

/// The root context of one plugin configuration: owns its state (rules, token cache, counters,
/// remote-JWKS runtime) and hands it to each of its streams; installs the VM's signature
/// backend. The [`dispatcher`](super::dispatcher) calls it.
pub struct RootFilter {
    /// This root's configuration (`None` until configured): other roots in the same VM have
    /// their own.
    pub(super) state: Option<Rc<PerConfig>>,
}

impl RootFilter {
    /// A root context before `on_vm_start` and `on_configure`.
    pub(super) fn new() -> RootFilter {
        RootFilter { state: None }
    }

    /// The root is deleted (its configuration is removed, or Envoy stops): no paused request
    /// may be left hanging, and what was counted since the last tick is flushed.
    pub(super) fn on_delete(&self) {
        if let Some(state) = &self.state {
            state.with_jwks(|runtime, host| runtime.abandon(host));
            // After the abandoned requests' denials, so that they are counted too.
            state.count(Metrics::flush);
        }
    }

    pub(super) fn on_http_call_response(&self, token_id: u32, body_size: usize) {
        if let (Some(state), Ok(now)) = (&self.state, host::now_unix_millis()) {
            state.with_jwks(|rt, host| rt.on_http_call_response(token_id, body_size, now, host));
        }
    }

    pub(super) fn on_vm_start() -> bool {
        // Follow the host's log level, so debug lines cost nothing unless Envoy wants them.
        log::set_max_level(LogLevel::filter(host::log_level()));
        log::info!("mesh-authn {VERSION} started");
        // Logs which backend verifies signatures. Envoy starts every root context, so a VM
        // holding two configurations asks twice and gets the same answer: the backend is
        // VM-wide, not per configuration, as what the host can verify does not depend on one.
        crypto::install(HostCrypto::detect(crypto::Envoy));
        true
    }

    /// This root's state for the plugin configuration the host holds now; `None` (logged)
    /// when it cannot be read or is not valid.
    pub(super) fn configure(
        context_id: u32,
        plugin_configuration_size: usize,
    ) -> Option<PerConfig> {
        let bytes = match host::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes,
            Err(status) => {
                log::error!("cannot read the plugin configuration: host returned {status}");
                return None;
            }
        };
        let node = match NodeMetadata::read(host::get_property) {
            Ok(node) => node,
            Err(why) => {
                log::error!("cannot read Envoy's node metadata: {why}");
                return None;
            }
        };
        let config = FilterConfig::configure(&bytes, &node)?;
        let counters = match Metrics::define(config.request_authn.providers()) {
            Ok(metrics) => Some(metrics),
            Err(status) => {
                // Counters never decide anything: enforce without them, say so once.
                log::error!("cannot define counters, running without them: {status}");
                None
            }
        };
        let mut state = PerConfig {
            config,
            counters,
            jwks: None,
            root_context_id: context_id,
        };
        state.start_jwks(&bytes);
        // The counters are flushed on the tick; a remote-JWKS runtime sets its own, never
        // longer than this one.
        if state.jwks.is_none() && state.counters.is_some() {
            if let Err(status) = host::set_tick_period_ms(FLUSH_MS) {
                log::error!("cannot set the tick period, counters will not be updated: {status}");
            }
        }
        Some(state)
    }

    pub(super) fn on_tick(&self) {
        let Some(state) = &self.state else {
            return;
        };
        if let Ok(now) = host::now_unix_millis() {
            state.with_jwks(|runtime, host| runtime.on_tick(now, host));
        }
        state.count(Metrics::flush);
    }
}
