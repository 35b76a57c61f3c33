//! Hostile requests against a fixed policy: header names and values, `:path` with its query,
//! cookies, and tokens, all from the fuzzer. The decision never panics, and a request without
//! any token in a looked-at location is never denied for anything but a bad token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh_authn::config::FilterConfig;
use mesh_authn::decision::Decision;
use mesh_authn::jwt::verify::PureRust;
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request::Request;
use mesh_authn::request_authn::Env;

/// Two rules at distinct locations (header with prefix, query parameter, cookie) and one at the
/// defaults, so every extraction path is reachable.
const CONFIG: &str = include_str!("../seeds/plugin_config/two-rules.yaml");

thread_local! {
    // The config holds `Rc`s (as in the VM, which is single-threaded), so it is per thread.
    static COMPILED: FilterConfig = match FilterConfig::parse(CONFIG.as_bytes()) {
        Ok(config) => config,
        Err(e) => panic!("the fuzz policy must parse: {e}"),
    };
}

fuzz_target!(|data: &[u8]| {
    // Lines are headers, `name: value`; a line without `: ` is the path.
    let mut headers = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        match line.windows(2).position(|w| w == b": ") {
            Some(at) => headers.push((line[..at].to_vec(), line[at + 2..].to_vec())),
            None => headers.push((b":path".to_vec(), line.to_vec())),
        }
    }
    let request = Request::new(headers);
    // Through the VM's verified-token cache, as in Envoy: inputs that repeat a token hit it.
    COMPILED.with(|config| {
        let env = Env {
            now: 1_700_000_000,
            crypto: &PureRust,
            remote: &NoRemoteKeys,
            cache: Some(&config.token_cache),
        };
        // A rewritten path only loses bytes: it is never longer than the original, and
        // carries no byte a header value may not hold unless the original already did (Envoy
        // refuses such requests before filters run).
        if let Decision::Allow(mutations) = config.request_authn.authenticate(&request, &env) {
            if let Some(path) = mutations.path {
                let original = request.path();
                let clean = |p: &[u8]| !p.iter().any(|b| matches!(b, b'\n' | b'\r' | 0));
                assert!(path.len() <= original.len());
                assert!(clean(&path) || !clean(original));
            }
        }
    });
});
