//! A test-only proxy-wasm plugin (never shipped): the floor of any wasm filter in the
//! side-by-side benchmark (`make bench`). Each request crosses into the VM, the plugin reads
//! the `Authorization` header (as any authentication filter must) and lets the request go on.
//! With the plugin configuration `remove` it also removes the header (as mesh-authn does with
//! a verified token by default): the floor of reading the header and removing it.
//!
//! Natively this crate is empty: it only means something inside a proxy-wasm host.

#![cfg(target_arch = "wasm32")]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NoopRoot { remove: false })
    });
}}

struct NoopRoot {
    /// The plugin configuration is `remove`.
    remove: bool,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        self.remove = self.get_plugin_configuration().as_deref() == Some(b"remove".as_slice());
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp {
            remove: self.remove,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct NoopHttp {
    remove: bool,
}

impl Context for NoopHttp {}

impl HttpContext for NoopHttp {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // Read it as an authentication filter would, and keep the length so the call is not
        // optimised away.
        let len = self
            .get_http_request_header_bytes("authorization")
            .map_or(0, |v| v.len());
        core::hint::black_box(len);
        if self.remove && len > 0 {
            self.set_http_request_header("authorization", None);
        }
        Action::Continue
    }
}
