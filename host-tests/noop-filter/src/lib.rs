//! A test-only proxy-wasm plugin (never shipped): the floor of any wasm filter in the
//! side-by-side benchmark (`make bench`). Each request crosses into the VM, the plugin reads
//! the `Authorization` header (as any authentication filter must) and lets the request go on.
//!
//! Its plugin configuration names what else it does, comma-separated:
//! - `remove`: removes `Authorization` when present (as mesh-authn does with a verified token
//!   by default): the floor of reading the header and removing it;
//! - `host-calls`: makes, with no decision at all, the host calls mesh-authn makes for a
//!   cached token: the whole request header map instead of the one header, the clock and the
//!   removal of `Authorization` (mesh-authn's counters reach the host on its tick, not per
//!   request). The floor of mesh-authn's cache hit as long as it makes those calls.
//!
//! Natively this crate is empty: it only means something inside a proxy-wasm host.

#![cfg(target_arch = "wasm32")]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NoopRoot { mode: Mode::default() })
    });
}}

/// What a request does beyond reading `Authorization`.
#[derive(Clone, Copy, Default)]
struct Mode {
    remove: bool,
    /// mesh-authn's hit host calls.
    host_calls: bool,
}

struct NoopRoot {
    mode: Mode,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        let config = String::from_utf8_lossy(&config);
        let words: Vec<&str> = config.split(',').map(str::trim).collect();
        self.mode = Mode {
            remove: words.contains(&"remove"),
            host_calls: words.contains(&"host-calls"),
        };
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp { mode: self.mode }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct NoopHttp {
    mode: Mode,
}

impl Context for NoopHttp {}

impl HttpContext for NoopHttp {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.mode.host_calls {
            // The same calls as mesh-authn's cache hit; the results are kept so that no call
            // is optimised away.
            let headers = request_header_map();
            let now = self.get_current_time();
            let present = has_header(&headers, b"authorization");
            core::hint::black_box((headers.len(), now));
            if present {
                self.set_http_request_header("authorization", None);
            }
            return Action::Continue;
        }
        // Read it as an authentication filter would, and keep the length so the call is not
        // optimised away.
        let len = self
            .get_http_request_header_bytes("authorization")
            .map_or(0, |v| v.len());
        core::hint::black_box(len);
        if self.mode.remove && len > 0 {
            self.set_http_request_header("authorization", None);
        }
        Action::Continue
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request header map as the host serialized it. mesh-authn reads it in place, so this
/// floor does not decode it into a string per header either (the SDK's getter would, and the
/// floor would count the VM's work for that).
fn request_header_map() -> Vec<u8> {
    let mut data = core::ptr::null_mut();
    let mut size = 0;
    // SAFETY: the out-pointers are valid for the call.
    let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
    if status != 0 || data.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated `size` bytes through the SDK's `proxy_on_memory_allocate`,
    // a `Vec<u8>` of that capacity, and handed them over.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Whether the serialized map (a count, then a key and a value size per pair, then each key
/// and value followed by a NUL) has a header named `name`.
///
/// A second reader of the encoding that mesh-authn decodes in `filter/src/request.rs` (`Cursor`), on
/// purpose: depending on the filter crate would put the filter's code into this floor's module.
fn has_header(map: &[u8], name: &[u8]) -> bool {
    let word = |at: usize| -> Option<usize> {
        let bytes: [u8; 4] = map.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    };
    let Some(count) = word(0) else {
        return false;
    };
    let mut data = count.saturating_mul(8).saturating_add(4);
    for i in 0..count {
        let (Some(key), Some(value)) = (word(4 + i * 8), word(8 + i * 8)) else {
            return false;
        };
        if map.get(data..data.saturating_add(key)) == Some(name) {
            return true;
        }
        data = data
            .saturating_add(key)
            .saturating_add(value)
            .saturating_add(2);
    }
    false
}
