//! The root context: compiles the plugin configuration once and hands it to every stream.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host;
use super::http::AuthnHttp;
use super::metrics::Metrics;
use super::VERSION;
use crate::config::{FilterConfig, NodeMetadata};

/// `RootContext`: owns the compiled configuration.
#[derive(Default)]
pub struct RootFilter {
    config: Option<Rc<FilterConfig>>,
    metrics: Option<Rc<Metrics>>,
}

impl Context for RootFilter {}

impl RootContext for RootFilter {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        log::info!("mesh-authn {VERSION} started");
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
                self.metrics = match Metrics::define(config.request_authn.providers()) {
                    Ok(metrics) => Some(Rc::new(metrics)),
                    Err(status) => {
                        // Counters never decide anything: enforce without them, say so once.
                        log::error!("cannot define counters, running without them: {status}");
                        None
                    }
                };
                self.config = Some(Rc::new(config));
                true
            }
            Err(e) => {
                // One line, naming the field; Envoy then refuses the plugin.
                log::error!("invalid plugin configuration: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(
            AuthnHttp::new(self.config.clone()).with_metrics(self.metrics.clone()),
        ))
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
