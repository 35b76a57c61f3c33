//! Any byte string as the plugin configuration: accepted or refused with an error, never a
//! panic (a panic in `on_configure` would take the VM down).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_authn::config::FilterConfig;

fuzz_target!(|data: &[u8]| {
    let _ = FilterConfig::parse(data);
});
