//! Every Envoy config shipped in `envoy/` passes `envoy --mode validate` with the real `.wasm`
//! and the example plugin configuration. A template with a placeholder this test does not fill
//! fails here, so a new config cannot go unchecked.

use std::path::Path;

use host_tests::certs::TestPki;
use host_tests::envoy::validate_template_with;
use host_tests::workspace_root;

/// The mTLS template's values: certificate files written to `dir`, both ports 0.
fn mtls_values(dir: &Path) -> Vec<(String, String)> {
    let mut values = TestPki::generate()
        .write_server_files(dir)
        .template_values();
    values.extend([
        ("PORT_A".to_owned(), "0".to_owned()),
        ("PORT_B".to_owned(), "0".to_owned()),
    ]);
    values
}

#[test]
fn every_shipped_envoy_config_validates() {
    let example =
        std::fs::read_to_string(workspace_root().join("examples/plugin-config.yaml")).unwrap();
    let mut templates: Vec<String> = std::fs::read_dir(workspace_root().join("envoy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    templates.sort();
    assert!(!templates.is_empty(), "no Envoy configs found in envoy/");
    // The mTLS template's certificate files and second port; unused by the other templates.
    let dir = std::env::temp_dir().join(format!("mesh-authn-configs-{}", std::process::id()));
    let mut extra = mtls_values(&dir);
    // The LDS template's listener file, with the example configuration.
    extra.push(("LDS_DIR".to_owned(), dir.to_string_lossy().into_owned()));
    host_tests::lds::replace_listeners(&dir, &host_tests::lds::listeners_response(&example, 9, 1));
    for template in &templates {
        let (ok, output) = validate_template_with(template, &example, 9, &extra);
        assert!(
            ok,
            "envoy --mode validate refused envoy/{template}:\n{output}"
        );
        assert!(output.contains("OK"), "envoy/{template}: {output}");
        // The filter itself ran its configuration inside the validating Envoy. (Validation
        // does not read LDS: the LDS template's listener runs in envoy_hot_update.rs.)
        if template != host_tests::lds::TEMPLATE {
            assert!(
                output.contains("configured: workload foo"),
                "envoy/{template}: {output}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mtls_template_validates_with_the_peer_authentication_example() {
    let example =
        std::fs::read_to_string(workspace_root().join("examples/peer-authentication.yaml"))
            .unwrap();
    let dir = std::env::temp_dir().join(format!("mesh-authn-pa-config-{}", std::process::id()));
    let extra = mtls_values(&dir);
    let (ok, output) = validate_template_with("mesh-authn-mtls.yaml", &example, 9, &extra);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "envoy --mode validate refused it:\n{output}");
    assert!(
        output.contains("PeerAuthentication STRICT, port 8080 DISABLE"),
        "{output}"
    );
}
