//! A test-only proxy-wasm plugin (never shipped): the hostile neighbour of
//! `host-tests/tests/envoy_remote_jwks.rs`. In the same Envoy and with the same `vm_id` as
//! mesh-authn, it writes the shared-data records its configuration lists, unconditionally,
//! when configured and then every 20 ms, so whatever mesh-authn writes is overwritten again.
//!
//! Configuration: records separated by a line holding only `---`; in each, the first line is
//! the shared-data name and the rest (after that line's newline) the value, byte for byte.
//!
//! Natively this crate is empty: it only means something inside a proxy-wasm host.

#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Writer { records: Vec::new() })
    });
}}

struct Writer {
    records: Vec<(String, Vec<u8>)>,
}

impl Writer {
    fn write_all(&self) {
        for (name, value) in &self.records {
            if let Err(status) = hostcalls::set_shared_data(name, Some(value), None) {
                log::warn!("shared-data-writer: cannot write {name}: {status:?}");
            }
        }
    }
}

impl Context for Writer {}

impl RootContext for Writer {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let text = String::from_utf8_lossy(&config).into_owned();
        self.records = text
            .split("\n---\n")
            .filter_map(|record| {
                let (name, value) = record.split_once('\n')?;
                Some((name.to_owned(), value.as_bytes().to_vec()))
            })
            .collect();
        log::info!("shared-data-writer: writing {} records", self.records.len());
        self.write_all();
        self.set_tick_period(Duration::from_millis(20));
        true
    }

    fn on_tick(&mut self) {
        self.write_all();
    }

    // An HTTP filter must have stream contexts: they let every request through.
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(PassThrough))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct PassThrough;

impl Context for PassThrough {}

impl HttpContext for PassThrough {}
