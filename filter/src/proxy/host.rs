//! Fallible host calls. The SDK's `hostcalls::*` panic on any status they do not expect and
//! its map getters unwrap UTF-8; a panic takes the whole VM down. These wrappers declare the
//! same ABI imports with a plain `u32` status (an unknown value from the host cannot become an
//! invalid enum) and turn every status into a `Result`.

use std::ptr::{null, null_mut};

use crate::host_abi::map::{HTTP_CALL_RESPONSE_HEADERS, HTTP_REQUEST_HEADERS};
use crate::host_abi::{buffer, property_path, METRIC_COUNTER, STREAM_HTTP_REQUEST};
use crate::request::{encode_map, Request};

pub use crate::host_abi::{HostStatus, LogLevel};

/// The host has no such key, property, header or function.
pub const NOT_FOUND: HostStatus = HostStatus::NOT_FOUND;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_metric_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of a buffer the host allocated through the plugin's
/// `proxy_on_memory_allocate` ([`allocate`]: a leaked boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` must be null or come from the host for this call with this `size`.
unsafe fn take_host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: `allocate` returned `data` as a boxed slice of `size` bytes, the layout of a
        // Vec<u8> with capacity `size`.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// `size` bytes for the host to fill and hand over (`proxy_on_memory_allocate`); the
/// receiving call takes them back with [`take_host_buffer`].
pub fn allocate(size: usize) -> *mut u8 {
    Box::into_raw(Box::<[u8]>::new_uninit_slice(size)).cast::<u8>()
}

/// Runs a host call that hands over a buffer through its `(data, size)` out-pointers: the
/// buffer on `Ok`, `None` on `NotFound`, any other status an error.
fn received(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> Result<Option<Vec<u8>>, HostStatus> {
    let (mut data, mut len) = (null_mut(), 0usize);
    match HostStatus::check(call(&mut data, &mut len)) {
        // SAFETY: on Ok the host handed over a buffer it allocated for this call.
        Ok(()) => Ok(Some(unsafe { take_host_buffer(data, len) })),
        Err(NOT_FOUND) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Writes a log line; a failure to log is ignored (there is nowhere else to say it).
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length describe `message`.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

/// The host's log level, if it says.
pub fn log_level() -> Option<LogLevel> {
    let mut level = 0u32;
    // SAFETY: `level` is a valid out-pointer.
    let status = unsafe { proxy_get_log_level(&mut level) };
    HostStatus::check(status)
        .ok()
        .map(|()| LogLevel::from_abi(level))
}

/// The host's clock, in Unix milliseconds.
pub fn now_unix_millis() -> Result<u64, HostStatus> {
    let mut nanos = 0u64;
    // SAFETY: `nanos` is a valid out-pointer.
    HostStatus::check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos / 1_000_000)
}

/// A shared-data value and its CAS token; `None` when the key does not exist.
pub fn get_shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostStatus> {
    let mut cas = 0u32;
    // SAFETY: pointer and length describe `key`; the out-pointers are valid.
    let value = received(|data, len| unsafe {
        proxy_get_shared_data(key.as_ptr(), key.len(), data, len, &mut cas)
    })?;
    Ok(value.map(|value| (value, cas)))
}

/// Writes a shared-data value if its CAS token is still `cas` (0: unconditionally).
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostStatus> {
    // SAFETY: pointers and lengths describe `key` and `value`.
    HostStatus::check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Sets the root context's tick period (0 stops it). From a stream context it still sets the
/// root's, which is how a request wakes the root up at once.
pub fn set_tick_period_ms(period: u64) -> Result<(), HostStatus> {
    // The ABI's period is 32 bits: a longer one is the longest it can say (about 49 days).
    let period = u32::try_from(period).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    HostStatus::check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// Dispatches an HTTP call without a body or trailers to `cluster`, from the effective context
/// (its `proxy_on_http_call_response` names that context); the call's token.
pub fn dispatch_http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    timeout_ms: u64,
) -> Result<u32, HostStatus> {
    let headers = encode_map(headers);
    let trailers = encode_map::<&str, &str>(&[]);
    let timeout = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
    let mut token = 0;
    // SAFETY: each pointer and length describe a live buffer; the out-pointer is valid.
    HostStatus::check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            null(),
            0,
            trailers.as_ptr(),
            trailers.len(),
            timeout,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Makes later host calls act on another context (a paused request, from the root).
pub fn set_effective_context(context_id: u32) -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    HostStatus::check(unsafe { proxy_set_effective_context(context_id) })
}

/// Resumes the paused request of the effective context.
pub fn continue_request() -> Result<(), HostStatus> {
    // SAFETY: no pointers.
    HostStatus::check(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// One header of a dispatched call's response; `None` when absent (a reset, a timeout).
pub fn http_call_response_header(name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    let map = HTTP_CALL_RESPONSE_HEADERS;
    // SAFETY: pointer and length describe `name`; the out-pointers are valid.
    received(|data, len| unsafe {
        proxy_get_header_map_value(map, name.as_ptr(), name.len(), data, len)
    })
}

/// The first `size` bytes of a dispatched call's response body.
pub fn http_call_response_body(size: usize) -> Result<Vec<u8>, HostStatus> {
    buffer_bytes(buffer::HTTP_CALL_RESPONSE_BODY, size)
}

/// The plugin configuration bytes (empty when there are none).
pub fn plugin_configuration(size: usize) -> Result<Vec<u8>, HostStatus> {
    buffer_bytes(buffer::PLUGIN_CONFIGURATION, size)
}

/// The first `size` bytes of one of the host's buffers; an absent buffer is empty.
fn buffer_bytes(buffer: u32, size: usize) -> Result<Vec<u8>, HostStatus> {
    // SAFETY: the out-pointers are valid.
    let bytes =
        received(|data, len| unsafe { proxy_get_buffer_bytes(buffer, 0, size, data, len) })?;
    Ok(bytes.unwrap_or_default())
}

/// Every request header, in order, read in place from the host's buffer.
pub fn request_headers() -> Result<Request, HostStatus> {
    // SAFETY: the out-pointers are valid.
    let bytes = received(|data, len| unsafe {
        proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, data, len)
    })?
    .ok_or(NOT_FOUND)?;
    // The host's buffer is kept and read in place: no copy per header.
    Request::from_map_bytes(bytes).ok_or(HostStatus::SERIALIZATION_FAILURE)
}

/// One request header's value (several values joined by Envoy); `None` when absent.
pub fn request_header(name: &str) -> Result<Option<Vec<u8>>, HostStatus> {
    // SAFETY: pointer and length describe `name`; the out-pointers are valid.
    received(|data, len| unsafe {
        proxy_get_header_map_value(HTTP_REQUEST_HEADERS, name.as_ptr(), name.len(), data, len)
    })
}

/// Removes every value of a request header.
pub fn remove_request_header(name: &str) -> Result<(), HostStatus> {
    // SAFETY: pointer and length describe `name`.
    HostStatus::check(unsafe {
        proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, name.as_ptr(), name.len())
    })
}

/// Sets a request header to one value.
pub fn replace_request_header(name: &str, value: &[u8]) -> Result<(), HostStatus> {
    set_request_header(proxy_replace_header_map_value, name, value)
}

/// Appends a value to a request header (a new header when there is none).
pub fn add_request_header(name: &str, value: &[u8]) -> Result<(), HostStatus> {
    set_request_header(proxy_add_header_map_value, name, value)
}

/// One of the ABI's (map, name, value) header writes on the request headers.
fn set_request_header(
    call: unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize) -> u32,
    name: &str,
    value: &[u8],
) -> Result<(), HostStatus> {
    let (n, v) = (name.as_bytes(), value);
    // SAFETY: pointers and lengths describe `name` and `value`.
    HostStatus::check(unsafe {
        call(
            HTTP_REQUEST_HEADERS,
            n.as_ptr(),
            n.len(),
            v.as_ptr(),
            v.len(),
        )
    })
}

/// Defines a counter; its id for [`increment_metric`].
pub fn define_counter(name: &str) -> Result<u32, HostStatus> {
    let mut id = 0u32;
    // SAFETY: pointer and length describe `name`; `id` is a valid out-pointer.
    HostStatus::check(unsafe {
        proxy_define_metric(METRIC_COUNTER, name.as_ptr(), name.len(), &mut id)
    })?;
    Ok(id)
}

/// Adds `offset` to a metric.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostStatus> {
    // SAFETY: plain values.
    HostStatus::check(unsafe { proxy_increment_metric(id, offset) })
}

/// Sends a local reply instead of forwarding the request.
pub fn send_local_response(
    code: u32,
    details: &str,
    body: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<(), HostStatus> {
    let headers = crate::request::encode_map(headers);
    // SAFETY: every pointer/length pair describes a live slice.
    HostStatus::check(unsafe {
        proxy_send_local_response(
            code,
            if details.is_empty() {
                null()
            } else {
                details.as_ptr()
            },
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// A host property by its path segments (`["connection", "mtls"]`): `None` when the host says
/// NotFound (Envoy: the attribute is absent); any other failure is an error.
pub fn get_property(path: &[&str]) -> Result<Option<Vec<u8>>, HostStatus> {
    let path = property_path(path);
    // SAFETY: pointer and length describe `path`; the out-pointers are valid.
    received(|data, len| unsafe { proxy_get_property(path.as_ptr(), path.len(), data, len) })
}

/// Sets a host property by its path segments (Envoy: the filter state object `wasm.<path>`,
/// bytes, for the rest of the request).
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostStatus> {
    let path = property_path(path);
    // SAFETY: pointers and lengths describe `path` and `value`.
    HostStatus::check(unsafe {
        proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len())
    })
}

/// Calls a host foreign function (Envoy: `verify_signature`, `compress`, …). `NotFound` means
/// the host has no function of that name. Unlike the SDK's `call_foreign_function`, every
/// status comes back as a value, none panics.
pub fn call_foreign_function(name: &str, arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
    let (n, a) = (name.as_bytes(), arguments);
    // SAFETY: pointers and lengths describe live slices; the out-pointers are valid.
    received(|data, len| unsafe {
        proxy_call_foreign_function(n.as_ptr(), n.len(), a.as_ptr(), a.len(), data, len)
    })?
    .ok_or(NOT_FOUND)
}
