//! Any byte string as the plugin configuration: accepted or refused with an error, never a
//! panic (a panic in `on_configure` would take the VM down). Seeds under
//! seeds/plugin_config/ start it at duplicate keys, merge keys and bad header names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_authn::config::{FilterConfig, NodeMetadata};

fuzz_target!(|data: &[u8]| {
    let _ = FilterConfig::parse(data);
    // With node metadata too: each `workload` field left out is filled from it.
    let node = NodeMetadata {
        namespace: Some(b"foo".to_vec()),
        labels: Some(vec![(b"app".to_vec(), b"httpbin".to_vec())]),
    };
    let _ = FilterConfig::parse_with_node(data, &node);
});
