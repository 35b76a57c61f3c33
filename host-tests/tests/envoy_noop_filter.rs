//! The benchmark's test-only no-op wasm filter (`host-tests/noop-filter`) does what the README
//! ("The side-by-side benchmark") says: by default it lets `Authorization` through; with the
//! plugin configuration `remove` it removes it (the floor of reading the header and removing
//! it, in `make bench-instructions`); with `host-calls` it removes it too, after reading the
//! whole header map and the clock (the floor of mesh-authn's host calls for a cached token).
//! The upstream echoes what reached it.

use host_tests::envoy::{Envoy, Options};
use host_tests::http;
use host_tests::istio_native::{bootstrap, wasm_filter};
use host_tests::servers::EchoUpstream;
use serde_json::json;

/// The `authorization` values that reached the upstream through the no-op filter configured
/// with `configuration`.
fn authorization_upstream(configuration: &str) -> Vec<String> {
    through_noop(configuration, 1)
}

/// Sends `requests` requests with `Authorization` through the no-op filter configured with
/// `configuration`: the `authorization` values of the last that reached the upstream.
fn through_noop(configuration: &str, requests: usize) -> Vec<String> {
    let upstream = EchoUpstream::start();
    let wasm = host_tests::built_wasm("noop-filter");
    let filter = wasm_filter("noop", &wasm.to_string_lossy(), configuration);
    let config = bootstrap(vec![filter], json!({"cluster": "upstream"}), upstream.port);
    let envoy = Envoy::start_config(&config, &Options::default()).unwrap();
    let mut seen = Vec::new();
    for _ in 0..requests {
        let r = http::get(envoy.port(), "/", &[("authorization", "Bearer abc")]);
        assert_eq!(r.status, 200, "{r:?}");
        seen = r.json()["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == "authorization")
            .map(|h| h[1].as_str().unwrap().to_owned())
            .collect();
    }
    seen
}

#[test]
fn by_default_the_no_op_filter_lets_authorization_through() {
    assert_eq!(authorization_upstream(""), ["Bearer abc"]);
}

#[test]
fn configured_remove_the_no_op_filter_removes_authorization() {
    assert_eq!(authorization_upstream("remove"), Vec::<String>::new());
}

#[test]
fn configured_host_calls_the_no_op_filter_removes_authorization_on_every_request() {
    assert_eq!(through_noop("host-calls", 3), Vec::<String>::new());
}
