//! PeerAuthentication over real TLS: the built `.wasm` in the real Envoy
//! (`envoy/mesh-authn-mtls.yaml`: TLS inspector, a TLS chain that validates client certificates
//! against a CA made here without requiring one, a plaintext chain, two listener ports), and
//! real clients: plaintext HTTP, and rustls with no client certificate, a good SPIFFE
//! certificate, one of another trust domain, one without a URI SAN, one from a CA Envoy does
//! not trust.
//!
//! Expected outcomes come from Istio's semantics (istiod's composition, `§2` of the reference
//! notes), with our documented L7 deviation: where Istio's STRICT closes the connection, the
//! filter answers 403. A certificate from an untrusted CA never gets a connection, in any
//! mode: that is the listener's job, and Envoy does it.

use std::sync::LazyLock;

use host_tests::certs::TestPki;
use host_tests::http;
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::plugin_config::{PeerPolicy, PluginConfig, Policy, Rule};
use host_tests::servers::EchoUpstream;
use host_tests::tls::{self, Outcome};
use host_tests::tokens::{self, claims, RsaIssuer};
use serde_json::{json, Value};

static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);

/// The connections each case is tried with, in this order in the `want` strings.
#[derive(Debug, Clone, Copy)]
enum Conn {
    Plaintext,
    TlsNoClientCert,
    MtlsGood,
    MtlsOtherTrustDomain,
    MtlsNoUriSan,
    MtlsUntrustedCa,
}

const CONNS: [Conn; 6] = [
    Conn::Plaintext,
    Conn::TlsNoClientCert,
    Conn::MtlsGood,
    Conn::MtlsOtherTrustDomain,
    Conn::MtlsNoUriSan,
    Conn::MtlsUntrustedCa,
];

fn send(conn: Conn, port: u16, headers: &[(&str, &str)]) -> Outcome {
    let ca = &PKI.ca.cert_der;
    let client = match conn {
        Conn::Plaintext => {
            return match http::try_request(port, "GET", "/get", headers, "") {
                Ok(r) => Outcome::Response(r),
                Err(e) => Outcome::Refused(e.to_string()),
            }
        }
        Conn::TlsNoClientCert => None,
        Conn::MtlsGood => Some(&PKI.client_good),
        Conn::MtlsOtherTrustDomain => Some(&PKI.client_other_trust_domain),
        Conn::MtlsNoUriSan => Some(&PKI.client_no_uri_san),
        Conn::MtlsUntrustedCa => Some(&PKI.client_untrusted),
    };
    tls::get(port, "/get", headers, ca, client)
}

/// Checks one connection's outcome against one expectation letter:
/// `P` 200 from the upstream; `S` 403 naming STRICT mTLS, never upstream; `R` connection
/// refused by Envoy (TLS alert or close), never upstream; `J` 401 from the JWT check.
fn check(want: char, outcome: &Outcome, reached: usize) -> Result<(), String> {
    match (want, outcome) {
        ('P', Outcome::Response(r)) if r.status == 200 && reached == 1 => Ok(()),
        ('S', Outcome::Response(r))
            if r.status == 403 && r.body.contains("STRICT mTLS") && reached == 0 =>
        {
            Ok(())
        }
        ('J', Outcome::Response(r)) if r.status == 401 && reached == 0 => Ok(()),
        ('R', Outcome::Refused(_)) if reached == 0 => Ok(()),
        _ => Err(format!(
            "want {want}, got {} (upstream saw {reached})",
            match outcome {
                Outcome::Response(r) => format!("{} {:?}", r.status, r.body),
                Outcome::Refused(why) => format!("refused: {why}"),
            }
        )),
    }
}

/// Runs every connection against both ports; `want_a`/`want_b` have one letter per [`CONNS`].
fn run(
    name: &str,
    setup: &MtlsEnvoy,
    upstream: &EchoUpstream,
    headers: &[(&str, &str)],
    want_a: &str,
    want_b: &str,
    failures: &mut Vec<String>,
) {
    for (port, wants) in [(setup.port_a, want_a), (setup.port_b, want_b)] {
        assert_eq!(wants.len(), CONNS.len(), "{name}: {wants}");
        for (conn, want) in CONNS.iter().zip(wants.chars()) {
            let before = upstream.request_count();
            let outcome = send(*conn, port, headers);
            let reached = upstream.request_count() - before;
            if let Err(why) = check(want, &outcome, reached) {
                failures.push(format!("{name}: port {port} {conn:?}: {why}"));
            }
        }
    }
}

fn pa(name: &'static str, namespace: &'static str, spec: Value) -> Value {
    PeerPolicy {
        name,
        namespace,
        spec,
    }
    .to_json()
}

/// Workload foo/app=httpbin with the top-level fields `top` and these resources.
fn plugin_config(top: &[(&str, Value)], policies: &[Value]) -> String {
    let config = top
        .iter()
        .fold(PluginConfig::new(), |c, (k, v)| c.set(k, v.clone()));
    policies
        .iter()
        .fold(config, |c, p| c.raw_policy(p.clone()))
        .render()
}

/// A `spec` with this `mtls.mode`.
fn mode(mode: &str) -> Value {
    json!({"mtls": {"mode": mode}})
}

/// `spec.selector` for `app=<app>`, and `mtls.mode` when given.
fn selecting(app: &str, mode: Option<&str>) -> Value {
    let mut spec = json!({"selector": {"matchLabels": {"app": app}}});
    if let Some(m) = mode {
        spec["mtls"] = json!({"mode": m});
    }
    spec
}

/// `portLevelMtls` with these ports' modes.
fn ports(modes: &[(u16, &str)]) -> Value {
    modes
        .iter()
        .map(|(port, m)| (port.to_string(), json!({"mode": m})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn trust_domain() -> Vec<(&'static str, Value)> {
    vec![("trustDomain", json!("cluster.local"))]
}

struct Scenario {
    name: &'static str,
    /// The plugin configuration for the two ports.
    config: Box<dyn Fn(u16, u16) -> String>,
    want_a: &'static str,
    want_b: &'static str,
}

fn scenario(
    name: &'static str,
    config: impl Fn(u16, u16) -> String + 'static,
    want_a: &'static str,
    want_b: &'static str,
) -> Scenario {
    Scenario {
        name,
        config: Box::new(config),
        want_a,
        want_b,
    }
}

fn run_scenarios(scenarios: Vec<Scenario>) {
    let upstream = EchoUpstream::start();
    let mut failures = Vec::new();
    for s in &scenarios {
        let setup = MtlsEnvoy::start(&PKI, upstream.port, &s.config)
            .unwrap_or_else(|e| panic!("{}: Envoy did not start: {e}", s.name));
        run(
            s.name,
            &setup,
            &upstream,
            &[],
            s.want_a,
            s.want_b,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// Connections: plaintext, TLS without client certificate, mTLS good, mTLS other trust domain,
// mTLS without URI SAN, mTLS from an untrusted CA.
const ALL_PASS: &str = "PPPPPR";
const STRICT_ANY_CERT: &str = "SSPPPR";
const STRICT_TRUST_DOMAIN: &str = "SSPSSR";

#[test]
fn modes_by_level_and_inheritance() {
    run_scenarios(vec![
        scenario(
            "no policy: PERMISSIVE",
            |_, _| plugin_config(&[], &[]),
            ALL_PASS,
            ALL_PASS,
        ),
        scenario(
            "mesh STRICT",
            |_, _| plugin_config(&[], &[pa("default", "istio-system", mode("STRICT"))]),
            STRICT_ANY_CERT,
            STRICT_ANY_CERT,
        ),
        scenario(
            "mesh STRICT with trustDomain",
            |_, _| {
                plugin_config(
                    &trust_domain(),
                    &[pa("default", "istio-system", mode("STRICT"))],
                )
            },
            STRICT_TRUST_DOMAIN,
            STRICT_TRUST_DOMAIN,
        ),
        scenario(
            "trustDomain alias admits the other trust domain",
            |_, _| {
                plugin_config(
                    &[
                        ("trustDomain", json!("cluster.local")),
                        ("trustDomainAliases", json!(["other.example"])),
                    ],
                    &[pa("default", "istio-system", mode("STRICT"))],
                )
            },
            "SSPPSR",
            "SSPPSR",
        ),
        scenario(
            "namespace DISABLE overrides mesh STRICT",
            |_, _| {
                plugin_config(
                    &[],
                    &[
                        pa("default", "istio-system", mode("STRICT")),
                        pa("default", "foo", mode("DISABLE")),
                    ],
                )
            },
            ALL_PASS,
            ALL_PASS,
        ),
        scenario(
            "namespace UNSET inherits mesh STRICT",
            |_, _| {
                plugin_config(
                    &trust_domain(),
                    &[
                        pa("default", "istio-system", mode("STRICT")),
                        pa("default", "foo", mode("UNSET")),
                    ],
                )
            },
            STRICT_TRUST_DOMAIN,
            STRICT_TRUST_DOMAIN,
        ),
        scenario(
            "workload PERMISSIVE overrides namespace STRICT",
            |_, _| {
                plugin_config(
                    &[],
                    &[
                        pa("default", "foo", mode("STRICT")),
                        pa("httpbin", "foo", selecting("httpbin", Some("PERMISSIVE"))),
                    ],
                )
            },
            ALL_PASS,
            ALL_PASS,
        ),
        scenario(
            "workload UNSET inherits namespace STRICT",
            |_, _| {
                plugin_config(
                    &[],
                    &[
                        pa("default", "foo", mode("STRICT")),
                        pa("httpbin", "foo", selecting("httpbin", None)),
                    ],
                )
            },
            STRICT_ANY_CERT,
            STRICT_ANY_CERT,
        ),
        scenario(
            "workload STRICT for another app does not apply",
            |_, _| {
                plugin_config(
                    &[],
                    &[pa("other", "foo", selecting("other", Some("STRICT")))],
                )
            },
            ALL_PASS,
            ALL_PASS,
        ),
        scenario(
            "selector policy in the root namespace is ignored",
            |_, _| {
                plugin_config(
                    &[],
                    &[pa(
                        "httpbin",
                        "istio-system",
                        selecting("httpbin", Some("STRICT")),
                    )],
                )
            },
            ALL_PASS,
            ALL_PASS,
        ),
        scenario(
            "oldest namespace policy wins",
            |_, _| {
                plugin_config(
                    &[],
                    &[
                        json!({
                            "apiVersion": "security.istio.io/v1beta1",
                            "kind": "PeerAuthentication",
                            "metadata": {"name": "newer", "namespace": "foo",
                                "creationTimestamp": "2026-02-01T00:00:00Z"},
                            "spec": {"mtls": {"mode": "PERMISSIVE"}},
                        }),
                        json!({
                            "apiVersion": "security.istio.io/v1beta1",
                            "kind": "PeerAuthentication",
                            "metadata": {"name": "older", "namespace": "foo",
                                "creationTimestamp": "2026-01-01T00:00:00Z"},
                            "spec": {"mtls": {"mode": "STRICT"}},
                        }),
                    ],
                )
            },
            STRICT_ANY_CERT,
            STRICT_ANY_CERT,
        ),
    ]);
}

#[test]
fn port_level_mtls_on_two_listener_ports() {
    let workload = |mode: &str, port_modes: &[(u16, &str)]| {
        let mut spec = selecting("httpbin", Some(mode));
        spec["portLevelMtls"] = ports(port_modes);
        spec
    };
    run_scenarios(vec![
        scenario(
            "workload STRICT, port B DISABLE",
            move |_, b| {
                plugin_config(
                    &trust_domain(),
                    &[pa("httpbin", "foo", workload("STRICT", &[(b, "DISABLE")]))],
                )
            },
            STRICT_TRUST_DOMAIN,
            ALL_PASS,
        ),
        scenario(
            "workload UNSET (mesh PERMISSIVE), port A STRICT, port B UNSET",
            move |a, b| {
                plugin_config(
                    &[],
                    &[
                        pa("default", "istio-system", mode("PERMISSIVE")),
                        pa(
                            "httpbin",
                            "foo",
                            workload("UNSET", &[(a, "STRICT"), (b, "UNSET")]),
                        ),
                    ],
                )
            },
            STRICT_ANY_CERT,
            ALL_PASS,
        ),
        scenario(
            "UNSET port inherits the namespace's STRICT through an UNSET workload",
            move |a, b| {
                plugin_config(
                    &[],
                    &[
                        pa("default", "foo", mode("STRICT")),
                        pa(
                            "httpbin",
                            "foo",
                            workload("UNSET", &[(a, "DISABLE"), (b, "UNSET")]),
                        ),
                    ],
                )
            },
            ALL_PASS,
            STRICT_ANY_CERT,
        ),
    ]);
}

#[test]
fn peer_check_comes_before_the_jwt_check() {
    let key = RsaIssuer::generate("pa-ra");
    let jwks = tokens::jwks_json(&[key.jwk()]);
    let valid = key.mint(claims("https://issuer.example", None, 600));
    let expired = key.mint(claims("https://issuer.example", None, -3600));
    let config = move |_: u16, _: u16| {
        plugin_config(
            &trust_domain(),
            &[
                pa("default", "istio-system", mode("STRICT")),
                Policy::new(
                    "jwt",
                    vec![Rule {
                        issuer: "https://issuer.example".into(),
                        jwks: jwks.clone(),
                        ..Rule::default()
                    }],
                )
                .to_json(),
            ],
        )
    };
    let upstream = EchoUpstream::start();
    let setup = MtlsEnvoy::start(&PKI, upstream.port, config)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let mut failures = Vec::new();
    let bearer = |t: &str| format!("Bearer {t}");
    let (valid, expired) = (bearer(&valid), bearer(&expired));
    // The peer is refused before the token is looked at; a good peer then meets the JWT check.
    // (name, the request's headers, the outcomes on both ports)
    let rows = [
        ("no token", Vec::new(), STRICT_TRUST_DOMAIN),
        (
            "valid token",
            vec![("authorization", valid.as_str())],
            STRICT_TRUST_DOMAIN,
        ),
        (
            "expired token",
            vec![("authorization", expired.as_str())],
            "SSJSSR",
        ),
    ];
    for (name, headers, want) in &rows {
        run(name, &setup, &upstream, headers, want, want, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn refusal_body_and_warnings_are_readable() {
    let upstream = EchoUpstream::start();
    let setup = MtlsEnvoy::start(&PKI, upstream.port, |_, _| {
        plugin_config(
            &trust_domain(),
            &[
                pa("default", "istio-system", mode("STRICT")),
                pa(
                    "httpbin",
                    "istio-system",
                    selecting("httpbin", Some("DISABLE")),
                ),
            ],
        )
    })
    .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let Outcome::Response(r) = send(Conn::Plaintext, setup.port_a, &[]) else {
        panic!("plaintext got no response");
    };
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body,
        "mesh-authn: PeerAuthentication STRICT mTLS requires a client certificate; this connection presented none"
    );
    let Outcome::Response(r) = send(Conn::MtlsOtherTrustDomain, setup.port_a, &[]) else {
        panic!("other trust domain got no response");
    };
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("not in the configured trust domain"),
        "{}",
        r.body
    );
    // Envoy refuses the untrusted certificate; under TLS 1.3 the client learns it on its first
    // read, from the alert (or a close).
    let Outcome::Refused(why) = send(Conn::MtlsUntrustedCa, setup.port_a, &[]) else {
        panic!("a certificate from an untrusted CA got a response");
    };
    assert!(why.starts_with("read: "), "{why}");
    let log = setup.envoy.log();
    // The access log names the refusals (response-code details without spaces); Envoy flushes
    // it in the background, so wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for details in [
        "/get 403 mesh_authn_peer_denied{strict_mtls_no_client_certificate} peer=-",
        "/get 403 mesh_authn_peer_denied{strict_mtls_foreign_trust_domain} peer=spiffe://other.example/ns/foo/sa/bar",
    ] {
        while !setup.envoy.log().contains(details) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let log = setup.envoy.log();
        assert!(log.contains(details), "{details} not in\n{log}");
    }
    assert!(
        log.contains("configuration warning: PeerAuthentication istio-system/httpbin ignored"),
        "{log}"
    );
    assert!(
        log.contains(
            "PeerAuthentication STRICT; STRICT peers must be in trust domains [cluster.local]"
        ),
        "{log}"
    );
}

/// Envoy configured as istiod configures a STRICT inbound listener (`BuildInboundTLS`): a TLS
/// chain only, client certificate required, validated against the mesh CA, URI SAN prefix
/// `spiffe://cluster.local/`. No wasm filter.
const NATIVE_STRICT: &str = r#"
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: native-strict
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector
    filter_chains:
    - filter_chain_match: {transport_protocol: tls}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: "SERVER_CERT"}
              private_key: {filename: "SERVER_KEY"}
            validation_context:
              trusted_ca: {filename: "CLIENT_CA"}
              match_typed_subject_alt_names:
              - san_type: URI
                matcher: {prefix: "spiffe://cluster.local/"}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: native
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: upstream}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#;

/// The same connections against native Envoy set up as Istio's STRICT and against the filter
/// under STRICT with `trustDomain`: exactly the same connections reach the upstream. Where
/// native Envoy refuses the connection, the filter answers 403 (the documented deviation), or
/// the listener refuses it too (untrusted CA).
#[test]
fn strict_lets_through_what_native_envoy_as_istio_configures_it_lets_through() {
    let upstream = EchoUpstream::start();
    let dir = std::env::temp_dir().join(format!("mesh-authn-native-{}", std::process::id()));
    let files = PKI.write_server_files(&dir);
    let config = NATIVE_STRICT
        .replace("SERVER_CERT", &files.server_cert.to_string_lossy())
        .replace("SERVER_KEY", &files.server_key.to_string_lossy())
        .replace("CLIENT_CA", &files.ca_cert.to_string_lossy())
        + &host_tests::envoy::upstream_clusters(upstream.port);
    let native = host_tests::envoy::Envoy::start_config(&config, &Default::default())
        .unwrap_or_else(|e| panic!("native Envoy did not start: {e}"));
    let ours = MtlsEnvoy::start(&PKI, upstream.port, |_, _| {
        plugin_config(
            &trust_domain(),
            &[pa("default", "istio-system", mode("STRICT"))],
        )
    })
    .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for conn in CONNS {
        let reaches = |port: u16| {
            let before = upstream.request_count();
            let outcome = send(conn, port, &[]);
            let reached = upstream.request_count() - before;
            let passed =
                matches!(&outcome, Outcome::Response(r) if r.status == 200) && reached == 1;
            (passed, outcome)
        };
        let (native_passed, native_outcome) = reaches(native.port());
        let (ours_passed, ours_outcome) = reaches(ours.port_a);
        let describe = |o: &Outcome| match o {
            Outcome::Response(r) => format!("{}", r.status),
            Outcome::Refused(why) => format!("refused ({why})"),
        };
        rows.push(format!(
            "{conn:?}: native {}, filter {}",
            describe(&native_outcome),
            describe(&ours_outcome)
        ));
        if native_passed != ours_passed {
            failures.push(rows.last().cloned().unwrap_or_default());
        }
        // A connection native Envoy refuses is never answered 200 by the filter, and the
        // filter's refusal is either the listener's or the 403.
        if !ours_passed {
            let ok = match &ours_outcome {
                Outcome::Response(r) => r.status == 403,
                Outcome::Refused(_) => true,
            };
            assert!(ok, "{conn:?}: {}", describe(&ours_outcome));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "differences:\n{}\nall:\n{}",
        failures.join("\n"),
        rows.join("\n")
    );
    // The native side refuses at L4: it never answers in HTTP.
    assert!(
        rows[0].starts_with("Plaintext: native refused"),
        "{}",
        rows[0]
    );
}
