//! The proxy-wasm exports: Envoy's calls into the plugin, routed to the root context of a
//! configuration or to the HTTP context of a request. Only the callbacks the plugin acts on are
//! exported, because Envoy calls every export it finds: the SDK's full set cost each request
//! four more trips into the VM that did nothing (response headers, response body, the access
//! log, `on_done`; README "Performance"). An unknown context id is ignored, or refused for a
//! request, never a panic (the SDK's dispatcher panics there, which takes the VM down).

use std::cell::RefCell;
use std::rc::Rc;

use super::host;
use super::http::{self, AuthnHttp};
use super::root::RootFilter;
use crate::key_hasher::KeyMap;

/// Keyed by context id ([`KeyMap`]: Envoy numbers contexts, a client cannot choose them).
type Table<V> = KeyMap<u32, V>;

thread_local! {
    static ROOTS: RefCell<Table<RootFilter>> = RefCell::new(Table::default());
    static STREAMS: RefCell<Table<AuthnHttp>> = RefCell::new(Table::default());
}

/// Runs `f` on the root context with this id, if any. `f` reaches only its own root's state
/// (during a host call the host re-enters only `proxy_on_memory_allocate`, no table).
fn with_root<R>(context_id: u32, f: impl FnOnce(&mut RootFilter) -> R) -> Option<R> {
    ROOTS.with(|roots| {
        let mut roots = roots.try_borrow_mut().ok()?;
        roots.get_mut(&context_id).map(f)
    })
}

/// The ABI version this plugin speaks.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    host::allocate(size)
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_context_id: u32) {
    if parent_context_id == 0 {
        ROOTS.with(|roots| {
            if let Ok(mut roots) = roots.try_borrow_mut() {
                roots.insert(context_id, RootFilter::new());
            }
        });
        return;
    }
    // A request of a root that is not there (or not configured) is refused when it arrives.
    let state = with_root(parent_context_id, |root| root.state.clone()).flatten();
    let stream = AuthnHttp::new(state, context_id);
    STREAMS.with(|streams| {
        if let Ok(mut streams) = streams.try_borrow_mut() {
            streams.insert(context_id, stream);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> u32 {
    u32::from(RootFilter::on_vm_start())
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(
    root_context_id: u32,
    plugin_configuration_size: usize,
) -> u32 {
    let Some(state) = RootFilter::configure(root_context_id, plugin_configuration_size) else {
        return 0;
    };
    let state = Some(Rc::new(state));
    u32::from(with_root(root_context_id, |root| root.state = state).is_some())
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_context_id: u32) {
    with_root(root_context_id, |root| root.on_tick());
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    context_id: u32,
    token: u32,
    _num_headers: usize,
    body_size: usize,
    _num_trailers: usize,
) {
    // Calls are dispatched as the root, so the response names the root.
    with_root(context_id, |root| {
        root.on_http_call_response(token, body_size)
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(
    context_id: u32,
    _num_headers: usize,
    _end_of_stream: u32,
) -> u32 {
    let stream = STREAMS.with(|streams| {
        let streams = streams.try_borrow().ok()?;
        streams.get(&context_id).map(AuthnHttp::state)
    });
    let (state, context_id) = stream.unwrap_or((None, context_id));
    http::on_request_headers(state, context_id) as u32
}

/// A context goes away. For a root (its configuration is removed, or Envoy stops) this is
/// also where its paused requests are answered and its last counts flushed: `proxy_on_done`
/// is not exported, as Envoy would call it for every request too, and without it Envoy deletes
/// a root at once.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    // Taken out first and dropped after the table is released: a stream's drop reaches its
    // root's state (it forgets a waiting request).
    let stream = STREAMS.with(|streams| {
        let mut streams = streams.try_borrow_mut().ok()?;
        streams.remove(&context_id)
    });
    if stream.is_some() {
        return;
    }
    let root = ROOTS.with(|roots| roots.try_borrow_mut().ok()?.remove(&context_id));
    if let Some(root) = root {
        root.on_delete();
    }
}
