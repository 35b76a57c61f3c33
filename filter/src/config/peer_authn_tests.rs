//! Composition as istiod's `ComposePeerAuthentication` and validation as its
//! `ValidatePeerAuthentication`, through the real plugin-config parser. Expected modes follow
//! the rules read from istiod (`policy_applier.go`, `model/config.go`), not this code.

use std::collections::BTreeMap;

use crate::config::FilterConfig;
use crate::peer_authn::MtlsMode::{self, *};

/// A PeerAuthentication as a YAML list item.
struct Pa<'a> {
    name: &'a str,
    ns: &'a str,
    created: Option<&'a str>,
    /// Flow map of matchLabels, e.g. `{app: httpbin}`.
    selector: Option<&'a str>,
    /// `None`: no `mtls` at all.
    mode: Option<&'a str>,
    /// Flow map of portLevelMtls, e.g. `{8080: {mode: DISABLE}}`.
    ports: Option<&'a str>,
}

const fn pa<'a>(name: &'a str, ns: &'a str, mode: Option<&'a str>) -> Pa<'a> {
    Pa {
        name,
        ns,
        created: None,
        selector: None,
        mode,
        ports: None,
    }
}

impl<'a> Pa<'a> {
    fn at(mut self, created: &'a str) -> Self {
        self.created = Some(created);
        self
    }
    fn sel(mut self, selector: &'a str) -> Self {
        self.selector = Some(selector);
        self
    }
    fn ports(mut self, ports: &'a str) -> Self {
        self.ports = Some(ports);
        self
    }
    fn yaml(&self) -> String {
        let mut s = format!(
            "- apiVersion: security.istio.io/v1beta1\n  kind: PeerAuthentication\n  metadata:\n    name: '{}'\n    namespace: '{}'\n",
            self.name, self.ns
        );
        if let Some(t) = self.created {
            s.push_str(&format!("    creationTimestamp: \"{t}\"\n"));
        }
        s.push_str("  spec:\n");
        if let Some(sel) = self.selector {
            s.push_str(&format!("    selector: {{matchLabels: {sel}}}\n"));
        }
        if let Some(mode) = self.mode {
            s.push_str(&format!("    mtls: {{mode: {mode}}}\n"));
        }
        if let Some(ports) = self.ports {
            s.push_str(&format!("    portLevelMtls: {ports}\n"));
        }
        s
    }
}

const S: Option<&str> = Some("STRICT");
const P: Option<&str> = Some("PERMISSIVE");
const D: Option<&str> = Some("DISABLE");
const U: Option<&str> = Some("UNSET");
const ROOT: &str = "istio-system";

fn config_text(namespace: &str, pas: &[Pa<'_>], extra: &str) -> String {
    let mut docs: String = pas.iter().map(Pa::yaml).collect();
    if docs.is_empty() {
        docs = " []\n".to_owned();
    } else {
        docs.insert(0, '\n');
    }
    format!(
        "workload: {{namespace: {namespace}, labels: {{app: httpbin, version: v1}}}}\n{extra}policies:{docs}"
    )
}

fn parse(namespace: &str, pas: &[Pa<'_>]) -> FilterConfig {
    let text = config_text(namespace, pas, "");
    FilterConfig::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn error(pas: &[Pa<'_>], extra: &str) -> String {
    let text = config_text("foo", pas, extra);
    match FilterConfig::parse(text.as_bytes()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

struct Case<'a> {
    name: &'a str,
    pas: Vec<Pa<'a>>,
    mode: MtlsMode,
    ports: &'a [(u32, MtlsMode)],
    /// Each must appear in some warning; no warning at all when empty.
    warnings: &'a [&'a str],
}

#[test]
fn composition_table() {
    let t1 = "2026-01-01T00:00:00Z";
    let t2 = "2026-02-01T00:00:00Z";
    let cases = vec![
        Case {
            name: "no policy: PERMISSIVE",
            pas: vec![],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "mesh STRICT",
            pas: vec![pa("default", ROOT, S)],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "mesh UNSET: PERMISSIVE",
            pas: vec![pa("default", ROOT, U)],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "mesh without mtls is UNSET",
            pas: vec![pa("default", ROOT, None)],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "namespace overrides mesh",
            pas: vec![pa("default", ROOT, S), pa("default", "foo", D)],
            mode: Disable,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "namespace UNSET inherits mesh",
            pas: vec![pa("default", ROOT, S), pa("default", "foo", U)],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "workload overrides namespace and mesh",
            pas: vec![
                pa("default", ROOT, S),
                pa("ns", "foo", P),
                pa("w", "foo", D).sel("{app: httpbin}"),
            ],
            mode: Disable,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "workload UNSET inherits namespace",
            pas: vec![
                pa("default", ROOT, S),
                pa("ns", "foo", P),
                pa("w", "foo", U).sel("{app: httpbin}"),
            ],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "workload and namespace UNSET inherit mesh",
            pas: vec![
                pa("default", ROOT, S),
                pa("ns", "foo", U),
                pa("w", "foo", None).sel("{app: httpbin}"),
            ],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "selector not matching",
            pas: vec![pa("w", "foo", S).sel("{app: other}")],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "selector must be a subset of the labels",
            pas: vec![pa("w", "foo", S).sel("{app: httpbin, version: v2}")],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "selector subset matches",
            pas: vec![pa("w", "foo", S).sel("{app: httpbin, version: v1}")],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "another namespace does not apply",
            pas: vec![pa("default", "bar", S)],
            mode: Permissive,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "selector in the root namespace is ignored with a warning",
            pas: vec![pa("w", ROOT, S).sel("{app: httpbin}")],
            mode: Permissive,
            ports: &[],
            warnings: &["istio-system/w ignored: a policy with a selector in the root namespace"],
        },
        Case {
            name: "empty matchLabels is namespace-wide",
            pas: vec![pa("w", "foo", S).sel("{}")],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "empty matchLabels in the root namespace is mesh-wide",
            pas: vec![pa("w", ROOT, S).sel("{}"), pa("ns", "foo", U)],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "oldest namespace policy wins",
            pas: vec![pa("b-old", "foo", S).at(t1), pa("a-new", "foo", D).at(t2)],
            mode: Strict,
            ports: &[],
            warnings: &["[foo/a-new] ignored: foo/b-old is the oldest at the namespace level"],
        },
        Case {
            name: "oldest wins whatever the document order",
            pas: vec![pa("a-new", "foo", D).at(t2), pa("b-old", "foo", S).at(t1)],
            mode: Strict,
            ports: &[],
            warnings: &["[foo/a-new] ignored"],
        },
        Case {
            name: "oldest mesh policy wins even when UNSET",
            pas: vec![pa("old", ROOT, U).at(t1), pa("new", ROOT, S).at(t2)],
            mode: Permissive,
            ports: &[],
            warnings: &[
                "[istio-system/new] ignored: istio-system/old is the oldest at the mesh level",
            ],
        },
        Case {
            name: "same second: the smaller name wins",
            pas: vec![pa("b", "foo", S).at(t1), pa("a", "foo", D).at(t1)],
            mode: Disable,
            ports: &[],
            warnings: &["[foo/b] ignored: foo/a is the oldest"],
        },
        Case {
            name: "same second, other document order: the smaller name still wins",
            pas: vec![pa("a", "foo", D).at(t1), pa("b", "foo", S).at(t1)],
            mode: Disable,
            ports: &[],
            warnings: &["[foo/b] ignored"],
        },
        Case {
            name: "no timestamp is older than any timestamp",
            pas: vec![pa("dated", "foo", S).at(t1), pa("undated", "foo", D)],
            mode: Disable,
            ports: &[],
            warnings: &["[foo/dated] ignored: foo/undated is the oldest"],
        },
        Case {
            name: "two without timestamp: by name",
            pas: vec![pa("y", "foo", S), pa("x", "foo", P), pa("z", "foo", D)],
            mode: Permissive,
            ports: &[],
            warnings: &["[foo/y, foo/z] ignored: foo/x is the oldest"],
        },
        Case {
            name: "time zones are compared as instants",
            pas: vec![
                pa("a", "foo", D).at("2026-01-01T00:00:00Z"),
                pa("b", "foo", S).at("2026-01-01T01:00:00+02:00"),
            ],
            mode: Strict,
            ports: &[],
            warnings: &["[foo/a] ignored"],
        },
        Case {
            name: "fractions of a second count",
            pas: vec![
                pa("a", "foo", D).at("2026-01-01T00:00:00.5Z"),
                pa("b", "foo", S).at("2026-01-01T00:00:00.25Z"),
            ],
            mode: Strict,
            ports: &[],
            warnings: &["[foo/a] ignored"],
        },
        Case {
            name: "oldest workload policy wins, with its ports only",
            pas: vec![
                pa("new", "foo", D)
                    .sel("{app: httpbin}")
                    .at(t2)
                    .ports("{8080: {mode: STRICT}}"),
                pa("old", "foo", S)
                    .sel("{version: v1}")
                    .at(t1)
                    .ports("{9090: {mode: DISABLE}}"),
            ],
            mode: Strict,
            ports: &[(9090, Disable)],
            warnings: &["[foo/new] ignored: foo/old is the oldest at the workload level"],
        },
        Case {
            name: "port modes, UNSET port takes the workload mode",
            pas: vec![pa("w", "foo", S).sel("{app: httpbin}").ports(
                "{8080: {mode: DISABLE}, 9090: {mode: UNSET}, 9091: {}, 7070: {mode: PERMISSIVE}}",
            )],
            mode: Strict,
            ports: &[
                (7070, Permissive),
                (8080, Disable),
                (9090, Strict),
                (9091, Strict),
            ],
            warnings: &[],
        },
        Case {
            name: "UNSET port of an UNSET workload takes the inherited mode",
            pas: vec![
                pa("default", ROOT, P),
                pa("ns", "foo", D),
                pa("w", "foo", U)
                    .sel("{app: httpbin}")
                    .ports("{8080: {mode: UNSET}, 9090: {mode: STRICT}}"),
            ],
            mode: Disable,
            ports: &[(8080, Disable), (9090, Strict)],
            warnings: &[],
        },
        Case {
            name: "ports of a non-matching workload policy do not apply",
            pas: vec![
                pa("ns", "foo", S),
                pa("w", "foo", D)
                    .sel("{app: other}")
                    .ports("{8080: {mode: DISABLE}}"),
            ],
            mode: Strict,
            ports: &[],
            warnings: &[],
        },
        Case {
            name: "levels are independent: oldest per level",
            pas: vec![
                pa("m1", ROOT, D).at(t2),
                pa("m2", ROOT, S).at(t1),
                pa("n1", "foo", U).at(t1),
                pa("n2", "foo", P).at(t2),
            ],
            mode: Strict,
            ports: &[],
            warnings: &["[istio-system/m1] ignored", "[foo/n2] ignored"],
        },
    ];
    assert!(cases.len() >= 20);
    for case in &cases {
        let c = parse("foo", &case.pas);
        let want_ports: BTreeMap<u32, MtlsMode> = case.ports.iter().copied().collect();
        assert_eq!(
            c.peer_authn.mode(),
            case.mode,
            "{}: {}",
            case.name,
            c.summary
        );
        assert_eq!(
            c.peer_authn.per_port(),
            &want_ports,
            "{}: {}",
            case.name,
            c.summary
        );
        for w in case.warnings {
            assert!(
                c.warnings.iter().any(|got| got.contains(w)),
                "{}: no warning containing {w:?} in {:?}",
                case.name,
                c.warnings
            );
        }
        if case.warnings.is_empty() {
            assert!(c.warnings.is_empty(), "{}: {:?}", case.name, c.warnings);
        }
    }
}

#[test]
fn workload_in_the_root_namespace() {
    // Its namespace-wide policies are the mesh level; its selector policies are ignored.
    let c = parse(
        ROOT,
        &[
            pa("default", ROOT, S),
            pa("w", ROOT, D).sel("{app: httpbin}"),
            pa("other", "foo", D),
        ],
    );
    assert_eq!(c.peer_authn.mode(), Strict);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
}

#[test]
fn summary_names_the_deciding_policies_and_the_rest() {
    let c = parse(
        "foo",
        &[
            pa("default", ROOT, S),
            pa("w", "foo", U)
                .sel("{app: httpbin}")
                .ports("{8080: {mode: DISABLE}}"),
            pa("x", "bar", D),
        ],
    );
    assert!(
        c.summary.contains(
            "PeerAuthentication STRICT, port 8080 DISABLE from [mesh istio-system/default STRICT, \
             workload foo/w UNSET]; not selected: [bar/x]"
        ),
        "{}",
        c.summary
    );
}

#[test]
fn request_and_peer_authentication_mix() {
    let jwks = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
    let text = format!(
        "workload: {{namespace: foo}}\npolicies:\n{}- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: {{name: ra, namespace: foo}}\n  spec:\n    jwtRules:\n    - issuer: i\n      jwks: '{jwks}'\n{}",
        pa("default", ROOT, S).yaml(),
        pa("ns", "foo", P).yaml()
    );
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    assert_eq!(c.request_authn.providers().len(), 1);
    assert_eq!(c.peer_authn.mode(), Permissive);
}

#[test]
fn trust_domains_are_configured_and_validated() {
    let text = config_text(
        "foo",
        &[pa("default", ROOT, S)],
        "trustDomain: cluster.local\ntrustDomainAliases: [old.example, legacy_td]\n",
    );
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    assert!(c.peer_authn.checks_trust_domain());
    assert!(
        c.summary
            .contains("[cluster.local, old.example, legacy_td]"),
        "{}",
        c.summary
    );
    for (extra, want) in [
        (
            "trustDomainAliases: [a]\n",
            "trustDomainAliases: needs `trustDomain`",
        ),
        (
            "trustDomain: ''\n",
            "trustDomain: `` is not a SPIFFE trust domain",
        ),
        (
            "trustDomain: spiffe://cluster.local\n",
            "trustDomain: `spiffe://cluster.local` is not",
        ),
        (
            "trustDomain: Cluster.Local\n",
            "trustDomain: `Cluster.Local` is not",
        ),
        (
            "trustDomain: td\ntrustDomainAliases: [a/b]\n",
            "trustDomainAliases[0]: `a/b` is not",
        ),
        ("trustDomain: [x]\n", "trustDomain: invalid type"),
    ] {
        let e = error(&[], extra);
        assert!(e.contains(want), "{extra:?}: {e}");
    }
}

#[test]
fn invalid_policies_are_refused_with_the_field() {
    let cases: Vec<(Vec<Pa<'_>>, &str)> = vec![
        (vec![pa("n", "foo", S).ports("{8080: {mode: DISABLE}}")], "policies[0].spec.portLevelMtls: mesh/namespace peer authentication cannot have port level mTLS"),
        (vec![pa("n", "foo", S).sel("{}").ports("{8080: {mode: DISABLE}}")], "cannot have port level mTLS"),
        (vec![pa("n", ROOT, S).ports("{8080: {mode: DISABLE}}")], "cannot have port level mTLS"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{}")], "portLevelMtls: port level mTLS, if defined, must have at least one element"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{0: {mode: STRICT}}")], "portLevelMtls.0: port must be in range 1..65535"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{65536: {mode: STRICT}}")], "portLevelMtls.65536: port must be in range"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{http: {mode: STRICT}}")], "portLevelMtls.http: port must be in range"),
        // Two keys for one port: which mode would win depends on key order.
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{8080: {mode: STRICT}, 08080: {mode: DISABLE}}")], "portLevelMtls.8080: port 8080 is given twice (as `08080` and `8080`)"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{80: {mode: strict}}")], "portLevelMtls.80.mode: `strict` is not one of UNSET, DISABLE, PERMISSIVE, STRICT"),
        (vec![pa("w", "foo", S).sel("{app: x}").ports("{80: {mod: STRICT}}")], "portLevelMtls.80.mod: unknown field `mod`"),
        (vec![pa("n", "foo", Some("ISTIO_MUTUAL"))], "policies[0].spec.mtls.mode: `ISTIO_MUTUAL` is not one of"),
        (vec![pa("n", "foo", S).at("yesterday")], "policies[0].metadata.creationTimestamp: `yesterday` is not an RFC 3339 time"),
        (vec![pa("n", "", S)], "policies[0].metadata.namespace: required"),
        (vec![pa("", "foo", S)], "policies[0].metadata.name: required"),
        (vec![pa("n", "foo", S), pa("n", "foo", D)], "PeerAuthentication foo/n appears twice"),
        // A policy that does not apply is still validated, as istiod's admission does.
        (vec![pa("n", "bar", S).ports("{8080: {mode: DISABLE}}")], "cannot have port level mTLS"),
    ];
    for (pas, want) in cases {
        let e = error(&pas, "");
        assert!(e.contains(want), "want {want:?}, got {e}");
    }
    // Unknown spec fields (v1 has no targetRef on PeerAuthentication) and a wrong apiVersion.
    let text = "workload: {namespace: foo}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: PeerAuthentication\n  metadata: {name: a, namespace: foo}\n  spec: {targetRef: {kind: Service, name: x}}\n";
    let e = FilterConfig::parse(text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("policies[0].spec.targetRef: unknown field `targetRef`"),
        "{e}"
    );
    let text = "workload: {namespace: foo}\npolicies:\n- apiVersion: security.istio.io/v1alpha1\n  kind: PeerAuthentication\n  metadata: {name: a, namespace: foo}\n";
    let e = FilterConfig::parse(text.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("policies[0].apiVersion: `security.istio.io/v1alpha1` is not one of"),
        "{e}"
    );
}

#[test]
fn snake_case_and_json_are_accepted() {
    let text = r#"{"workload":{"namespace":"foo","labels":{"app":"a"}},"policies":[{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"w","namespace":"foo"},"spec":{"selector":{"match_labels":{"app":"a"}},"mtls":{"mode":"STRICT"},"port_level_mtls":{"8080":{"mode":"DISABLE"}}}}]}"#;
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    assert_eq!(c.peer_authn.mode(), Strict);
    assert_eq!(c.peer_authn.per_port().get(&8080), Some(&Disable));
}
