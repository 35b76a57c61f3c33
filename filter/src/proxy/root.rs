//! The root context: compiles the plugin configuration once and hands it to every stream.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::crypto::{self, HostCrypto};
use super::host;
use super::http::AuthnHttp;
use super::jwks_host::{ProxyJwks, SharedRuntime};
use super::metrics::Metrics;
use super::per_config::PerConfig;
use super::VERSION;
use crate::config::{FilterConfig, NodeMetadata};

/// `RootContext`: owns its configuration's state (rules, token cache, counters) and
/// remote-JWKS runtime, and hands them to each of its streams; installs the VM's signature
/// backend.
#[derive(Default)]
pub struct RootFilter {
    /// This root's configuration: other roots in the same VM have their own.
    state: Option<Rc<PerConfig>>,
    context_id: u32,
    /// Remote key sets: fetches, cache, paused requests (`None` without `jwksUri`/discovery).
    jwks: Option<SharedRuntime>,
}

impl RootFilter {
    pub(super) fn new(context_id: u32) -> RootFilter {
        RootFilter {
            context_id,
            ..RootFilter::default()
        }
    }
}

impl Context for RootFilter {
    /// The plugin is being removed (a new configuration replaces it): no paused request may
    /// be left hanging.
    fn on_done(&mut self) -> bool {
        if let Some(runtime) = &self.jwks {
            if let Ok(mut runtime) = runtime.try_borrow_mut() {
                runtime.abandon();
            }
        }
        true
    }

    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(runtime), Ok(now)) = (&self.jwks, host::now_unix_millis()) else {
            return;
        };
        if let Ok(mut runtime) = runtime.try_borrow_mut() {
            runtime.on_http_call_response(token_id, body_size, now);
        }
    }
}

impl RootContext for RootFilter {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        log::info!("mesh-authn {VERSION} started");
        // Logs which backend verifies signatures. Envoy starts every root context, so a VM
        // holding two configurations asks twice and gets the same answer: the backend is
        // VM-wide, not per configuration, as what the host can verify does not depend on one.
        crypto::install(HostCrypto::detect());
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match host::plugin_configuration(plugin_configuration_size) {
            Ok(bytes) => bytes,
            Err(status) => {
                log::error!("cannot read the plugin configuration: host returned {status}");
                return false;
            }
        };
        let node = match node_metadata() {
            Ok(node) => node,
            Err(why) => {
                log::error!("cannot read Envoy's node metadata: {why}");
                return false;
            }
        };
        match FilterConfig::parse_with_node(&bytes, &node) {
            Ok(config) => {
                log::info!("configured: {}", config.summary);
                for warning in &config.warnings {
                    log::warn!("configuration warning: {warning}");
                }
                let counters = match Metrics::define(config.request_authn.providers()) {
                    Ok(metrics) => Some(metrics),
                    Err(status) => {
                        // Counters never decide anything: enforce without them, say so once.
                        log::error!("cannot define counters, running without them: {status}");
                        None
                    }
                };
                let state = Rc::new(PerConfig {
                    config: Rc::new(config),
                    counters,
                });
                self.jwks = ProxyJwks::new(&state, &bytes, self.context_id);
                self.state = Some(state);
                true
            }
            Err(e) => {
                // One line, naming the field; Envoy then refuses the plugin.
                log::error!("invalid plugin configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let (Some(runtime), Ok(now)) = (&self.jwks, host::now_unix_millis()) else {
            return;
        };
        if let Ok(mut runtime) = runtime.try_borrow_mut() {
            runtime.on_tick(now);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuthnHttp::new(
            self.state.clone(),
            context_id,
            self.jwks.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// `NAMESPACE` and `LABELS` from Envoy's node metadata: `xds.node` on Envoy 1.40 (measured),
/// `node` on older hosts.
fn node_metadata() -> Result<NodeMetadata, String> {
    let mut node = NodeMetadata::default();
    for root in [&["xds", "node"][..], &["node"][..]] {
        let field = |name: &'static str| {
            let path: Vec<&str> = root.iter().copied().chain(["metadata", name]).collect();
            host::get_property(&path).map_err(|status| format!("{}: {status}", path.join(".")))
        };
        node.namespace = field("NAMESPACE")?;
        node.labels = match field("LABELS")? {
            None => None,
            Some(bytes) => Some(host::deserialize_pairs(&bytes).ok_or_else(|| {
                format!("{}.metadata.LABELS is not a map of strings", root.join("."))
            })?),
        };
        if node.namespace.is_some() || node.labels.is_some() {
            break;
        }
    }
    Ok(node)
}
