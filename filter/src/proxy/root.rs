//! The root context: compiles the plugin configuration once and hands it to every stream.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::crypto::HostCrypto;
use super::host;
use super::http::AuthnHttp;
use super::VERSION;
use crate::config::FilterConfig;

/// `RootContext`: owns the compiled configuration and the signature backend.
pub struct RootFilter {
    config: Option<Rc<FilterConfig>>,
    crypto: Rc<HostCrypto>,
}

impl Default for RootFilter {
    fn default() -> RootFilter {
        RootFilter {
            config: None,
            crypto: Rc::new(HostCrypto::pure()),
        }
    }
}

impl Context for RootFilter {}

impl RootContext for RootFilter {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        log::info!("mesh-authn {VERSION} started");
        // Asked once per VM; logs which backend verifies signatures.
        self.crypto = Rc::new(HostCrypto::detect());
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
        match FilterConfig::parse(&bytes) {
            Ok(config) => {
                log::info!("configured: {}", config.summary);
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
        Some(Box::new(AuthnHttp::new(
            self.config.clone(),
            self.crypto.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
