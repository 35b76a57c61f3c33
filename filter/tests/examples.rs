//! The shipped example configurations go through the filter's real parser, so an example the
//! filter would refuse fails the build.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mesh_authn::config::FilterConfig;

#[test]
fn plugin_config_example_is_accepted_and_scoped() {
    let text = include_str!("../../examples/plugin-config.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    let issuers: Vec<_> = config
        .request_authn
        .providers()
        .iter()
        .map(|p| p.issuer.as_str())
        .collect();
    assert_eq!(issuers, ["https://example.com"]);
    assert!(
        config.summary.contains("not selected: [bar/someone-else]"),
        "{}",
        config.summary
    );
}

#[test]
fn peer_authentication_example_is_accepted_and_composed() {
    use mesh_authn::peer_authn::MtlsMode;
    let text = include_str!("../../examples/peer-authentication.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    assert_eq!(config.peer_authn.mode(), MtlsMode::Strict);
    assert_eq!(
        config.peer_authn.per_port().get(&8080),
        Some(&MtlsMode::Disable)
    );
    assert!(config.peer_authn.checks_trust_domain());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn remote_jwks_example_is_accepted() {
    use mesh_authn::remote_jwks::SourceKind;
    let text = include_str!("../../examples/remote-jwks.yaml");
    let config = FilterConfig::parse(text.as_bytes()).unwrap();
    let remote = &config.remote_jwks;
    assert_eq!(remote.sources.len(), 2);
    assert_eq!(
        remote.settings.cluster_for(remote.sources[0].first_uri()),
        "idp"
    );
    match &remote.sources[1].kind {
        SourceKind::Discovery(uri) => {
            assert_eq!(
                uri.text,
                "https://login.example.com/realms/r1/.well-known/openid-configuration"
            );
            assert_eq!(
                remote.settings.cluster_for(uri),
                "outbound|443||login.example.com"
            );
        }
        other => panic!("{other:?}"),
    }
}

// The Istio manifests (`examples/istio/`, `examples/policies/`): tests/istio_examples/.
