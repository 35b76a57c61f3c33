//! Two plugin configurations in one Wasm VM: one Envoy, two listeners, each with the filter
//! under the same `vm_config` (same `vm_id`, same code, same plugin name and `root_id`) and a
//! different plugin configuration, so Envoy runs both root contexts in the same VM (as it does
//! for two listeners, or for an old and a new listener while an update drains). Each
//! listener's decisions must follow its own policy, and each configuration must count its
//! decisions against its own issuers.

use host_tests::envoy::{Envoy, Options};
use host_tests::http;
use host_tests::plugin_config::{PluginConfig, Policy, Rule, WORKLOAD_NS};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, RsaIssuer};
use host_tests::yaml_string_literal;

const ISS_A: &str = "https://a.example.com";
const ISS_B: &str = "https://b.example.com";

/// A plugin configuration accepting tokens of `issuer` (signed by `key`) in `Authorization`.
fn plugin_config(issuer: &str, key: &RsaIssuer) -> String {
    PluginConfig::new()
        .workload(WORKLOAD_NS, &[])
        .policy(&Policy::new(
            "p",
            vec![Rule {
                issuer: issuer.into(),
                jwks: tokens::jwks_json(&[key.jwk()]),
                ..Rule::default()
            }],
        ))
        .render()
}

/// One listener on a kernel-chosen port with the filter configured by `plugin_config`.
fn listener(name: &str, plugin_config: &str) -> String {
    format!(
        r#"
  - name: {name}
    address:
      socket_address: {{address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster: upstream}}
          http_filters:
          - name: mesh-authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: mesh-authn
                root_id: mesh-authn
                vm_config:
                  vm_id: mesh-authn
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: {{filename: "{wasm}"}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {config}
                failure_policy: FAIL_CLOSED
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"#,
        wasm = host_tests::wasm_path().display(),
        config = yaml_string_literal(plugin_config),
    )
}

fn bootstrap(listeners: &[String], upstream_port: u16) -> String {
    format!(
        r#"admin:
  address:
    socket_address: {{address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:{}
{}"#,
        listeners.concat(),
        host_tests::envoy::upstream_clusters(upstream_port)
    )
}

/// The bound port of the listener called `name`, from admin `/listeners?format=json`.
fn listener_port(envoy: &Envoy, name: &str) -> u16 {
    let body = envoy.admin_get("/listeners?format=json").body;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["listener_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| {
            s.pointer("/local_address/socket_address/port_value")?
                .as_u64()
        })
        .map(|p| u16::try_from(p).unwrap())
        .unwrap_or_else(|| panic!("no listener {name} in {body}"))
}

#[test]
fn two_listeners_one_vm_decide_and_count_by_their_own_configuration() {
    let a = RsaIssuer::generate("a");
    let b = RsaIssuer::generate("b");
    let upstream = EchoUpstream::start();
    let config = bootstrap(
        &[
            listener("listener_a", &plugin_config(ISS_A, &a)),
            listener("listener_b", &plugin_config(ISS_B, &b)),
        ],
        upstream.port,
    );
    let envoy = Envoy::start_config(&config, &Options::default())
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let (port_a, port_b) = (
        listener_port(&envoy, "listener_a"),
        listener_port(&envoy, "listener_b"),
    );
    let bearer = |t: String| format!("Bearer {t}");
    let good_a = bearer(a.mint(claims(ISS_A, None, 600)));
    let expired_a = bearer(a.mint(claims(ISS_A, None, -600)));
    let good_b = bearer(b.mint(claims(ISS_B, None, 600)));
    let get = |port: u16, token: &str| {
        let r = http::get(port, "/", &[("authorization", token)]);
        (r.status, r.body)
    };

    // Decisions: each listener accepts its own issuer only.
    let unknown = "Jwt issuer is not configured";
    let mut wrong = Vec::new();
    let mut expect = |what: &str, got: (u16, String), want: (u16, &str)| {
        if got.0 != want.0 || (want.0 != 200 && got.1 != want.1) {
            wrong.push(format!("{what}: want {want:?}, got {got:?}"));
        }
    };
    for _ in 0..3 {
        expect("A, token of A", get(port_a, &good_a), (200, ""));
    }
    expect("A, token of B", get(port_a, &good_b), (401, unknown));
    expect(
        "A, expired token of A",
        get(port_a, &expired_a),
        (401, "Jwt is expired"),
    );
    for _ in 0..2 {
        expect("B, token of B", get(port_b, &good_b), (200, ""));
        expect("B, token of A", get(port_b, &good_a), (401, unknown));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Counters: the per-issuer ones follow the configuration that decided; the aggregates
    // are one counter per name for the whole Envoy, so they hold both listeners' requests.
    let want: &[(&str, u64)] = &[
        ("issuer.https___a_example_com.allowed", 3),
        // A's rule answered: the token of B on A, and the expired token of A.
        ("issuer.https___a_example_com.denied", 2),
        ("issuer.https___b_example_com.allowed", 2),
        // B's rule answered the tokens of A on B.
        ("issuer.https___b_example_com.denied", 2),
        ("allowed", 5),
        ("denied", 4),
        ("denied.jwt_unknown_issuer", 3),
        ("denied.jwt_expired", 1),
    ];
    let want: Vec<(String, u64)> = want
        .iter()
        .map(|(name, value)| (format!("wasmcustom.mesh_authn.{name}"), *value))
        // Envoy's own per-listener numbers tell the listeners apart (README "Counters").
        .chain([
            ("http.listener_a.downstream_rq_4xx".to_owned(), 2),
            ("http.listener_b.downstream_rq_4xx".to_owned(), 2),
        ])
        .collect();
    envoy.assert_stats(&want, &["mesh_authn", "downstream_rq_4xx"]);
}
