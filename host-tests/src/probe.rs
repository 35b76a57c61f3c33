//! The test-only crypto probe (host-tests/crypto-probe) in Envoy: the signature cases of the
//! fixtures, and an Envoy that runs them.

use serde_json::{json, Value};

use crate::envoy::{Envoy, Options};
use crate::{render_envoy_template, workspace_root, yaml_string_literal};
use std::path::{Path, PathBuf};

/// The built probe; panics with the build command when it is missing.
pub fn probe_wasm() -> PathBuf {
    crate::built_wasm("crypto-probe")
}

fn fixture(path: &str) -> Value {
    crate::fixture_json(Path::new("filter/tests/fixtures").join(path))
}

/// One signature case: (id, jwks, token, upstream expectation, sweep).
pub type Case = (String, String, String, String, bool);

/// Every signature case of the fixtures.
pub fn cases() -> Vec<Case> {
    let dir = workspace_root().join("filter/tests/fixtures/jwt_verify_lib");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let file = crate::fixture_json(&path);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        for case in file["cases"].as_array().unwrap() {
            let (Some(jwks), "verify") = (case["jwks"].as_str(), case["kind"].as_str().unwrap())
            else {
                continue;
            };
            let c = |name: &str| file["constants"][name].as_str().unwrap().to_owned();
            out.push((
                format!("{stem}/{}", case["test"].as_str().unwrap()),
                c(jwks),
                c(case["token"].as_str().unwrap()),
                case["expect"].as_str().unwrap().to_owned(),
                case.get("sweep").is_some(),
            ));
        }
    }
    // Envoy's own jwt_authn test tokens against its test JWKS (their upstream statuses are
    // checked in filter/tests/jwt_authn_fixture_tokens.rs; here only the signatures matter).
    let envoy = fixture("envoy_jwt_authn_test_common.json");
    let jwks = envoy["public_key_jwks"].as_str().unwrap().to_owned();
    for (name, token) in envoy["tokens"].as_object().unwrap() {
        out.push((
            format!("envoy_test_common/{name}"),
            jwks.clone(),
            token.as_str().unwrap().to_owned(),
            String::new(),
            name == "GoodToken",
        ));
    }
    // Its ES256 token against its ES256 key set (the signature verifies: checked
    // independently with Python `cryptography`).
    out.push((
        "envoy_test_common/ES256WithoutIssToken+ES256PublicKey".to_owned(),
        envoy["es256_public_key_jwks"].as_str().unwrap().to_owned(),
        envoy["tokens"]["ES256WithoutIssToken"]
            .as_str()
            .unwrap()
            .to_owned(),
        "Ok".to_owned(),
        true,
    ));
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1 && a.2 == b.2);
    out
}

/// Envoy running the probe with these cases in its plugin configuration.
pub fn start_probe(cases: &[Case]) -> Envoy {
    let config = json!({
        "cases": cases.iter().enumerate().map(|(i, (id, jwks, token, _, sweep))| json!({
            "id": format!("{i}:{id}"), "jwks": jwks, "token": token, "sweep": sweep,
        })).collect::<Vec<_>>()
    });
    let wasm = probe_wasm();
    let bootstrap = render_envoy_template(
        "mesh-authn.yaml",
        &[
            ("ADMIN_PORT", "0"),
            ("LISTEN_PORT", "0"),
            // No request reaches an upstream: the probe answers every request itself.
            ("UPSTREAM_PORT", "9"),
            ("WASM_PATH", &wasm.to_string_lossy()),
            ("PLUGIN_CONFIG", &yaml_string_literal(&config.to_string())),
        ],
    );
    Envoy::start_config(&bootstrap, &Options::default()).unwrap()
}
