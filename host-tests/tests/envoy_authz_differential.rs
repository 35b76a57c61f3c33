//! The AuthorizationPolicy differential proof: the same requests through two stock Envoys, one
//! running mesh-authn with AuthorizationPolicies, one running Envoy's native
//! `envoy.filters.http.rbac` configured with what istiod generates for those policies.
//!
//! The oracle is Istio's own data: the golden pairs of istiod's authorization builder
//! (`host-tests/fixtures/istio-authz/*-in.yaml` / `*-out*.yaml`, vendored verbatim, provenance
//! in `host-tests/fixtures/istio-authz/PROVENANCE.md`), plus the project's examples and one
//! policy set of its own, whose RBAC was written by hand following the same builder
//! (`host-tests/fixtures/istio-authz/project/`). Both Envoys share one RequestAuthentication
//! ([`request_authentication`]): native as `envoy.filters.http.jwt_authn` the way istiod
//! translates it (`host_tests::istio_native`), mesh-authn as the resource itself. The listeners
//! are those of the shipped `envoy/mesh-authn-mtls.yaml` (plaintext and TLS with an optional,
//! validated client certificate; Istio's path options), one per policy set, in one Envoy per
//! side, so the Wasm module is compiled once.
//!
//! Requests vary method, path (templates, queries, dot segments), `Host` (case, ports),
//! headers, `X-Forwarded-For`, the client certificate's SPIFFE identity and trust domain (or
//! none, or plaintext) and the token's claims. Decisions must agree: the status, and the body
//! of a refusal. Every difference is a failure or one of [`DEVIATIONS`], the one place where a
//! difference is named and justified; each must be needed at least once.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use host_tests::certs::{Identity, TestPki};
use host_tests::envoy::{Envoy, Options};
use host_tests::fixture_text;
use host_tests::http;
use host_tests::istio_native::{native_jwt_authn, Policy, Rule, WORKLOAD_LABELS, WORKLOAD_NS};
use host_tests::plugin_config::PluginConfig;
use host_tests::servers::EchoUpstream;
use host_tests::tls::{self, Outcome};
use host_tests::tokens::{self, EcIssuer};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The policy sets.

/// One policy set: its AuthorizationPolicies (a file of resources), the RBAC filters istiod
/// makes of them, in filter order, and the trust domain bundle the builder ran with.
struct Case {
    name: &'static str,
    /// From the workspace root.
    input: &'static str,
    outs: &'static [&'static str],
    /// `builder_test.go`'s `tdBundle`: the trust domain and its aliases (the plugin
    /// configuration's `trustDomain` / `trustDomainAliases`).
    trust_domain: Option<(&'static str, &'static [&'static str])>,
}

macro_rules! golden {
    ($name:literal, [$($out:literal),+]) => {
        golden!($name, [$($out),+], None)
    };
    ($name:literal, [$($out:literal),+], $td:expr) => {
        Case {
            name: $name,
            input: concat!("host-tests/fixtures/istio-authz/", $name, "-in.yaml"),
            outs: &[$(concat!("host-tests/fixtures/istio-authz/", $out)),+],
            trust_domain: $td,
        }
    };
}

/// Every HTTP pair of `builder_test.go`'s `TestGenerator_GenerateHTTP` except the CUSTOM ones
/// (mesh-authn refuses CUSTOM), then the project's.
const CASES: &[Case] = &[
    golden!("allow-empty-rule", ["allow-empty-rule-out.yaml"]),
    golden!("allow-full-rule", ["allow-full-rule-out.yaml"]),
    golden!("allow-nil-rule", ["allow-nil-rule-out.yaml"]),
    golden!("allow-path", ["allow-path-out.yaml"]),
    golden!("audit-full-rule", ["audit-full-rule-out.yaml"]),
    golden!(
        "deny-and-allow",
        ["deny-and-allow-out1.yaml", "deny-and-allow-out2.yaml"]
    ),
    golden!("deny-empty-rule", ["deny-empty-rule-out.yaml"]),
    golden!(
        "dry-run-allow-and-deny",
        [
            "dry-run-allow-and-deny-out1.yaml",
            "dry-run-allow-and-deny-out2.yaml"
        ]
    ),
    golden!("dry-run-allow", ["dry-run-allow-out.yaml"]),
    golden!("dry-run-mix", ["dry-run-mix-out.yaml"]),
    golden!("multiple-policies", ["multiple-policies-out.yaml"]),
    golden!("single-policy", ["single-policy-out.yaml"]),
    golden!(
        "simple-policy-td-aliases",
        ["simple-policy-td-aliases-out.yaml"],
        Some(("td1", &["cluster.local"]))
    ),
    golden!(
        "simple-policy-multiple-td-aliases",
        ["simple-policy-multiple-td-aliases-out.yaml"],
        Some(("td1", &["cluster.local", "some-td"]))
    ),
    golden!(
        "simple-policy-principal-with-wildcard",
        ["simple-policy-principal-with-wildcard-out.yaml"],
        Some(("td1", &["foobar"]))
    ),
    golden!(
        "td-aliases-source-principal",
        ["td-aliases-source-principal-out.yaml"],
        Some(("new-td", &["old-td", "some-trustdomain"]))
    ),
    golden!("trust-domains", ["trust-domains-out.yaml"]),
    Case {
        name: "example-require-jwt",
        input: "examples/policies/authz-require-jwt.yaml",
        outs: &["host-tests/fixtures/istio-authz/project/authz-require-jwt-out.yaml"],
        trust_domain: None,
    },
    Case {
        name: "example-claims",
        input: "examples/policies/authz-claims.yaml",
        outs: &["host-tests/fixtures/istio-authz/project/authz-claims-out.yaml"],
        trust_domain: None,
    },
    Case {
        name: "example-path-exemption",
        input: "examples/policies/authz-path-exemption.yaml",
        outs: &["host-tests/fixtures/istio-authz/project/authz-path-exemption-out.yaml"],
        trust_domain: None,
    },
    Case {
        name: "example-mtls-principal",
        input: "examples/policies/authz-mtls-principal.yaml",
        outs: &["host-tests/fixtures/istio-authz/project/authz-mtls-principal-out.yaml"],
        trust_domain: None,
    },
    Case {
        name: "operations",
        input: "host-tests/fixtures/istio-authz/project/operations-in.yaml",
        outs: &[
            "host-tests/fixtures/istio-authz/project/operations-out1.yaml",
            "host-tests/fixtures/istio-authz/project/operations-out2.yaml",
        ],
        trust_domain: None,
    },
    Case {
        name: "request-principals",
        input: "host-tests/fixtures/istio-authz/project/request-principals-in.yaml",
        outs: &[
            "host-tests/fixtures/istio-authz/project/request-principals-out1.yaml",
            "host-tests/fixtures/istio-authz/project/request-principals-out2.yaml",
        ],
        trust_domain: None,
    },
    Case {
        name: "connection",
        input: "host-tests/fixtures/istio-authz/project/connection-in.yaml",
        outs: &["host-tests/fixtures/istio-authz/project/connection-out.yaml"],
        trust_domain: None,
    },
];

/// The YAML documents of a file, as JSON, `LISTENER_PORT` replaced by `port`.
fn documents(path: &str, port: u16) -> Vec<Value> {
    let text = fixture_text(path).replace("LISTENER_PORT", &port.to_string());
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.iter()
        .map(|d| {
            serde_yaml_ng::from_str::<Value>(d)
                .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The AuthorizationPolicies of a case (an example file also holds a RequestAuthentication,
/// which [`request_authentication`] replaces).
fn authorization_policies(case: &Case, port: u16) -> Vec<Value> {
    let docs: Vec<Value> = documents(case.input, port)
        .into_iter()
        .filter(|d| d["kind"] == "AuthorizationPolicy")
        .collect();
    assert!(!docs.is_empty(), "{}: no AuthorizationPolicy", case.input);
    docs
}

/// A golden out as the RBAC HTTP filter stock Envoy runs. The single translation from Istio's
/// proxy to stock Envoy: a matcher on Istio-only metadata (`istio_authn`, which only
/// istio-proxy's authn filter writes) has no stock source. At the vendored commit istiod
/// already reads request principals, audiences, presenters and claims from
/// `envoy.filters.http.jwt_authn`'s `payload` (`payload_in_metadata: payload`, as
/// [`native_jwt_authn`] configures it), so no out needs translating; this function fails on
/// any `istio_authn` matcher, so a re-vendored out that reads it cannot pass silently.
fn stock_envoy_rbac(path: &str, port: u16) -> Value {
    let out = documents(path, port).remove(0);
    let text = out.to_string();
    assert!(
        !text.contains("\"istio_authn\""),
        "{path} reads istio_authn metadata: translate that matcher to \
         envoy.filters.http.jwt_authn / payload here"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The RequestAuthentication both Envoys enforce, and tokens with known claims.

const ISSUER: &str = "https://example.com";
/// An issuer the golden `multiple-policies` names in `requestPrincipals` (no `/`: `iss` only,
/// `sub` empty).
const ISSUER_RP1: &str = "requestPrincipals1";

static SIGNER: LazyLock<EcIssuer> = LazyLock::new(|| EcIssuer::generate("authz-1"));

fn istio_sample(file: &str) -> String {
    fixture_text(format!("host-tests/fixtures/istio-jwt-samples/{file}"))
        .trim()
        .to_owned()
}

/// One RequestAuthentication: Istio's sample issuer (its key set, its tokens) and two issuers
/// signed by [`SIGNER`].
fn request_authentication() -> Policy {
    let ours = tokens::jwks_json(&[SIGNER.jwk()]);
    let rule = |issuer: &str, jwks: &str| Rule {
        issuer: issuer.to_owned(),
        jwks: jwks.to_owned(),
        ..Rule::default()
    };
    Policy {
        name: "authz-tokens",
        namespace: WORKLOAD_NS,
        selector: None,
        rules: vec![
            rule("testing@secure.istio.io", &istio_sample("jwks.json")),
            rule(ISSUER, &ours),
            rule(ISSUER_RP1, &ours),
        ],
    }
}

fn mint(claims: Value) -> String {
    SIGNER.mint(claims)
}

/// `(name, token)`: what each carries is in its claims.
fn tokens() -> Vec<(&'static str, String)> {
    let exp = tokens::now() + 3600;
    vec![
        // iss = sub = testing@secure.istio.io, foo: bar.
        ("istio-demo", istio_sample("demo.jwt")),
        // ... and groups [group1, group2], scope [scope1, scope2].
        ("istio-groups", istio_sample("groups-scope.jwt")),
        (
            "full-claims",
            mint(json!({
                "iss": ISSUER, "sub": "user-1", "exp": exp, "aud": "example_service",
                "azp": "web-client", "nested1": {"nested2": "deep"}, "groups": ["g1", "g2"],
            })),
        ),
        (
            "aud-list",
            mint(json!({
                "iss": ISSUER, "sub": "user-2", "exp": exp, "aud": ["other", "example_service"],
                "azp": "mobile-client", "nested1": {"nested2": ["x", "deep"]},
            })),
        ),
        (
            "wrong-presenter",
            mint(json!({
                "iss": ISSUER, "sub": "user-3", "exp": exp, "aud": "example_service",
                "azp": "client-web", "nested1": {"nested2": "deep"},
            })),
        ),
        (
            "plain",
            mint(json!({"iss": ISSUER, "sub": "user-4", "exp": exp})),
        ),
        (
            "user-6",
            mint(json!({"iss": ISSUER, "sub": "user-6", "exp": exp})),
        ),
        (
            "rp1-empty-sub",
            mint(json!({"iss": ISSUER_RP1, "sub": "", "exp": exp})),
        ),
        ("rp1-no-sub", mint(json!({"iss": ISSUER_RP1, "exp": exp}))),
        (
            "rp1-with-sub",
            mint(json!({"iss": ISSUER_RP1, "sub": "someone", "exp": exp})),
        ),
        (
            "bad-signature",
            tokens::corrupt_signature(&mint(json!({"iss": ISSUER, "sub": "x", "exp": exp}))),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Peers: client certificates from the CA the listener trusts.

/// `(name, URI SAN)`: identities the policies name, in several trust domains.
const PEERS: &[(&str, &str)] = &[
    ("foo-bar", "spiffe://cluster.local/ns/foo/sa/bar"),
    (
        "istio-system",
        "spiffe://cluster.local/ns/istio-system/sa/ingress",
    ),
    ("other-td", "spiffe://other.example/ns/foo/sa/bar"),
    ("deny", "spiffe://deny"),
    ("allow", "spiffe://allow"),
    ("principals1", "spiffe://principals1"),
    ("namespaces1", "spiffe://cluster.local/ns/namespaces1/sa/x"),
    ("my-sa", "spiffe://cluster.local/ns/my-ns/sa/my-sa"),
    ("sa-only", "spiffe://td9/ns/foo/sa/sa-only"),
    (
        "td1-rule1",
        "spiffe://td1/ns/rule[1]/sa/from[0]-principal[0]",
    ),
    (
        "cluster-local-rule1",
        "spiffe://cluster.local/ns/rule[1]/sa/from[0]-principal[0]",
    ),
    ("old-td-all", "spiffe://old-td/ns/foo/sa/all-td"),
    ("some-td-prefix", "spiffe://some-td/ns/foo/sa/prefix-td"),
    ("new-td-system", "spiffe://new-td/ns/istio-system/sa/x"),
    ("another-local", "spiffe://another.local/ns/bar/sa/baz"),
    ("bad-td", "spiffe://bad-domain/ns/foo/sa/bar"),
    ("untrusted-td", "spiffe://untrusted/ns/foo/sa/bar"),
    (
        "foobar-wild",
        "spiffe://foobar/ns/foo/sa/rule[0]-from[1]-principal[1]",
    ),
    (
        "xbar-wild",
        "spiffe://xbar/ns/foo/sa/rule[0]-from[1]-principal[1]",
    ),
];

#[derive(Clone, Copy, Debug)]
enum Conn {
    Plaintext,
    /// TLS without a client certificate.
    TlsNoCert,
    /// mTLS as `PEERS[i]`.
    Peer(usize),
    /// mTLS with a certificate that has a DNS SAN and no URI SAN.
    NoUriSan,
    /// mTLS with a certificate whose URI SANs are [`TWO_URI_SANS`], in that order.
    TwoUriSans,
}

/// A certificate's two URI SANs: policies name the second.
const TWO_URI_SANS: [&str; 2] = [
    "spiffe://cluster.local/ns/other/sa/first",
    "spiffe://cluster.local/ns/foo/sa/bar",
];

struct Clients {
    pki: TestPki,
    peers: Vec<Identity>,
    two_uri_sans: Identity,
}

// ---------------------------------------------------------------------------------------------
// Requests.

struct Req {
    name: String,
    conn: Conn,
    method: &'static str,
    path: &'static str,
    headers: Vec<(String, String)>,
}

fn peer(name: &str) -> Conn {
    Conn::Peer(
        PEERS
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no peer {name}")),
    )
}

fn requests() -> Vec<Req> {
    let toks: BTreeMap<&str, String> = tokens().into_iter().collect();
    let mut out = Vec::new();
    let mut add = |conn: Conn, method: &'static str, path: &'static str, hs: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = hs
            .iter()
            .map(|(n, v)| {
                let v = match v.strip_prefix("token:") {
                    Some(t) => format!("Bearer {}", toks[t]),
                    None => (*v).to_owned(),
                };
                ((*n).to_owned(), v)
            })
            .collect();
        let shown: Vec<String> = hs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        out.push(Req {
            name: format!("{conn:?} {method} {path} [{}]", shown.join(" ")),
            conn,
            method,
            path,
            headers,
        });
    };
    let host = |h: &'static str| ("Host", h);
    let auth = |t: &'static str| ("Authorization", t);
    use Conn::*;
    // Operations, plaintext, no token.
    add(Plaintext, "GET", "/", &[host("httpbin.foo")]);
    add(Plaintext, "GET", "/exact", &[]);
    add(Plaintext, "POST", "/prefix/a?x=1", &[]);
    add(Plaintext, "GET", "/path/template/one", &[]);
    add(Plaintext, "GET", "/path/template/one/two", &[]);
    add(Plaintext, "GET", "/a/b/path/template?q=/x", &[]);
    add(Plaintext, "GET", "/not-exact", &[]);
    add(Plaintext, "GET", "/allow", &[]);
    add(Plaintext, "GET", "/allow?x=/deny", &[]);
    add(Plaintext, "GET", "/deny", &[]);
    add(Plaintext, "GET", "/another", &[]);
    add(Plaintext, "GET", "/v1", &[host("google.com")]);
    add(Plaintext, "PATCH", "/v2", &[host("HTTPBIN.ORG")]);
    add(Plaintext, "GET", "/v2", &[host("httpbin.org:80")]);
    add(Plaintext, "GET", "/healthz", &[]);
    add(Plaintext, "GET", "/healthz?full=1", &[]);
    add(Plaintext, "GET", "/public/x", &[]);
    add(Plaintext, "GET", "/public/../admin", &[]);
    add(Plaintext, "GET", "/public/%2e%2e/admin", &[]);
    add(Plaintext, "GET", "/internal/a", &[]);
    add(Plaintext, "GET", "/internal/../a", &[]);
    add(Plaintext, "GET", "/", &[("X-abc", "abc2")]);
    add(Plaintext, "GET", "/", &[("x-abc", "abc3")]);
    add(Plaintext, "GET", "/", &[("X-header", "x-suffix-header")]);
    add(
        Plaintext,
        "GET",
        "/api/v1/items",
        &[host("httpbin.example.com")],
    );
    add(
        Plaintext,
        "GET",
        "/api/v1/items?page=2",
        &[host("HTTPBIN.Example.COM")],
    );
    add(
        Plaintext,
        "GET",
        "/api/v1/items",
        &[host("httpbin.example.com:8080")],
    );
    add(Plaintext, "DELETE", "/files/a/b", &[host("x.example.org")]);
    add(Plaintext, "GET", "/files/a/b", &[host("x.EXAMPLE.org")]);
    add(
        Plaintext,
        "GET",
        "/files/a",
        &[host("api.example.net:8080")],
    );
    add(Plaintext, "GET", "/files/a", &[host("api.example.net")]);
    add(
        Plaintext,
        "GET",
        "/api/v1/v2/items",
        &[host("a.example.org")],
    );
    add(Plaintext, "PUT", "/x", &[host("other.test")]);
    add(Plaintext, "PUT", "/x", &[host("a.example.com")]);
    add(
        Plaintext,
        "GET",
        "/",
        &[("X-Forwarded-For", "203.0.113.9"), ("x-env", "prod-eu")],
    );
    add(
        Plaintext,
        "GET",
        "/",
        &[
            ("X-Forwarded-For", "203.0.113.9, 198.51.100.1"),
            ("x-env", "prod"),
        ],
    );
    add(
        Plaintext,
        "GET",
        "/",
        &[
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"),
            ("x-env", "production"),
        ],
    );
    add(Plaintext, "GET", "/", &[("x-env", "prod")]);
    add(Plaintext, "POST", "/", &[("x-port-check", "yes")]);
    // Tokens over plaintext.
    for t in [
        "istio-demo",
        "istio-groups",
        "full-claims",
        "aud-list",
        "wrong-presenter",
        "plain",
        "user-6",
        "rp1-empty-sub",
        "rp1-no-sub",
        "rp1-with-sub",
        "bad-signature",
    ] {
        let value: &'static str = Box::leak(format!("token:{t}").into_boxed_str());
        add(Plaintext, "GET", "/", &[auth(value)]);
    }
    add(
        Plaintext,
        "GET",
        "/internal/a",
        &[auth("token:full-claims")],
    );
    add(Plaintext, "GET", "/healthz", &[auth("token:istio-demo")]);
    add(Plaintext, "DELETE", "/admin", &[auth("token:istio-groups")]);
    // TLS.
    add(TlsNoCert, "GET", "/", &[]);
    add(TlsNoCert, "GET", "/internal/a", &[]);
    for (name, _) in PEERS {
        add(peer(name), "GET", "/", &[]);
    }
    add(peer("foo-bar"), "POST", "/", &[]);
    add(peer("foo-bar"), "DELETE", "/", &[]);
    add(peer("foo-bar"), "GET", "/internal/a", &[]);
    add(peer("istio-system"), "DELETE", "/internal/a", &[]);
    add(peer("istio-system"), "GET", "/internal/a", &[]);
    add(peer("other-td"), "GET", "/internal/a", &[]);
    add(peer("foo-bar"), "GET", "/", &[auth("token:istio-groups")]);
    add(
        peer("my-sa"),
        "POST",
        "/exact",
        &[auth("token:full-claims")],
    );
    add(
        peer("deny"),
        "GET",
        "/",
        &[auth("token:istio-demo"), ("X-abc", "abc1")],
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Sending a request and what came back.

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    status: u16,
    /// The body of a response the upstream did not write (a refusal); empty otherwise.
    body: String,
}

fn send(port: u16, r: &Req, clients: &Clients) -> Seen {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if !r
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        headers.push(("Host", "httpbin.foo.svc.cluster.local"));
    }
    headers.extend(r.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let ca = &clients.pki.ca.cert_der;
    let response = match r.conn {
        Conn::Plaintext => http::request(port, r.method, r.path, &headers, ""),
        Conn::TlsNoCert | Conn::Peer(_) | Conn::NoUriSan | Conn::TwoUriSans => {
            let client = match r.conn {
                Conn::Peer(i) => Some(&clients.peers[i]),
                Conn::NoUriSan => Some(&clients.pki.client_no_uri_san),
                Conn::TwoUriSans => Some(&clients.two_uri_sans),
                _ => None,
            };
            match tls::request(port, r.method, r.path, &headers, ca, client) {
                Outcome::Response(resp) => resp,
                Outcome::Refused(why) => panic!("{}: TLS refused: {why}", r.name),
            }
        }
    };
    let from_upstream = response.header("content-type") == Some("application/json")
        && serde_json::from_str::<Value>(&response.body).is_ok_and(|v| v.get("headers").is_some());
    Seen {
        status: response.status,
        body: if from_upstream {
            String::new()
        } else {
            response.body
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The deviations: every way mesh-authn deliberately decides differently from Envoy RBAC as
// istiod configures it. A difference none of them explains fails the test.

struct Deviation {
    name: &'static str,
    why: &'static str,
    /// The policy sets mesh-authn refuses to load at all, and the text its error must contain.
    refuses: Option<(&'static [&'static str], &'static str)>,
    /// Whether this deviation explains native's and ours' decisions for a request.
    explains: fn(&Case, &Req, &Seen, &Seen) -> bool,
}

fn never(_: &Case, _: &Req, _: &Seen, _: &Seen) -> bool {
    false
}

const DEVIATIONS: &[Deviation] = &[
    Deviation {
        name: "direct-peer-address-refused",
        why: "`ipBlocks` / `notIpBlocks` / `source.ip` match the connection's peer address (Envoy \
          RBAC `direct_remote_ip`); Envoy 1.40 gives a Wasm filter only the remote address the \
          connection manager derives from `X-Forwarded-For`, which a client sets, so \
          mesh-authn refuses such a policy with an error naming the field instead of matching \
          a client-chosen address (golden `allow-full-rule`, `multiple-policies`, \
          `single-policy`)",
        refuses: Some((
            &["allow-full-rule", "multiple-policies", "single-policy"],
            "Envoy RBAC `direct_remote_ip`",
        )),
        explains: never,
    },
    Deviation {
        name: LATER_URI_SANS,
        why: "Envoy RBAC's `authenticated` principal matches every URI SAN of the validated peer \
          certificate; Envoy 1.40 gives a Wasm filter only the first \
          (`connection.uri_san_peer_certificate`), so a policy naming a later URI SAN of a \
          certificate with several does not see it: an ALLOW naming it denies (fails closed), \
          but a DENY naming it does not deny, and a `notPrincipals` naming it excludes \
          nothing (the risk); Istio's CA issues one URI SAN per workload certificate",
        refuses: None,
        explains: |_, r, _, _| matches!(r.conn, Conn::TwoUriSans),
    },
];

/// Needed by [`a_peer_is_every_identity_of_its_certificate_as_in_envoy_rbac`] only: the
/// suite's requests carry one URI SAN.
const LATER_URI_SANS: &str = "later-uri-sans-unseen";

// ---------------------------------------------------------------------------------------------
// The two Envoys.

/// The shipped `envoy/mesh-authn-mtls.yaml`, rendered (ports 0, certificates of `pki`), as JSON.
fn mtls_template(pki: &TestPki, dir: &std::path::Path, upstream: u16) -> Value {
    let files = pki.write_server_files(dir);
    let wasm = host_tests::wasm_path();
    let mut values: Vec<(String, String)> = files.template_values();
    values.extend(
        [
            ("ADMIN_PORT", "0".to_owned()),
            ("PORT_A", "0".to_owned()),
            ("PORT_B", "0".to_owned()),
            ("UPSTREAM_PORT", upstream.to_string()),
            ("WASM_PATH", wasm.to_string_lossy().into_owned()),
            ("PLUGIN_CONFIG", "\"policies: []\"".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let refs: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let text = host_tests::render_envoy_template("mesh-authn-mtls.yaml", &refs);
    serde_yaml_ng::from_str(&text).expect("the rendered template is YAML")
}

/// The template with one listener per `(name, http_filters)`, each a copy of its first
/// listener (plaintext and TLS chains) with those filters.
fn bootstrap(template: &Value, listeners: &[(String, Vec<Value>, u16)]) -> String {
    let mut config = template.clone();
    let first = template["static_resources"]["listeners"][0].clone();
    let built: Vec<Value> = listeners
        .iter()
        .map(|(name, filters, port)| {
            let mut l = first.clone();
            l["name"] = json!(name);
            l["address"]["socket_address"]["port_value"] = json!(port);
            for chain in l["filter_chains"].as_array_mut().unwrap() {
                chain["filters"][0]["typed_config"]["http_filters"] = json!(filters);
            }
            l
        })
        .collect();
    config["static_resources"]["listeners"] = json!(built);
    config.to_string()
}

/// The template's `mesh-authn` filter with `plugin_config`, then its router.
fn mesh_authn_filters(template: &Value, plugin_config: &str) -> Vec<Value> {
    let filters = template["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(filters[0]["name"], "mesh-authn");
    let mut filters = filters;
    filters[0]["typed_config"]["config"]["configuration"]["value"] = json!(plugin_config);
    filters
}

fn router() -> Value {
    json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    })
}

fn plugin_config(case: &Case, port: u16) -> String {
    let mut config = PluginConfig::new()
        .workload(WORKLOAD_NS, WORKLOAD_LABELS)
        .policy(&request_authentication());
    for p in authorization_policies(case, port) {
        config = config.raw_policy(p);
    }
    if let Some((td, aliases)) = case.trust_domain {
        config = config
            .set("trustDomain", json!(td))
            .set("trustDomainAliases", json!(aliases));
    }
    config.render()
}

/// What a run found.
struct Run {
    sent: usize,
    policies: usize,
    loaded: usize,
    by_status: BTreeMap<u16, usize>,
    deviations_used: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    report: String,
}

/// Runs `requests` against every policy set of `cases` on both Envoys and compares.
/// The tests of this file one at a time: each chooses listener ports before its Envoys start,
/// and another test's Envoys binding in between could take one.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(cases: &[&'static Case], requests: &[Req]) -> Run {
    let _one = ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = std::time::Instant::now();
    let pki = TestPki::generate();
    let clients = Clients {
        peers: PEERS.iter().map(|(_, uri)| pki.client(uri)).collect(),
        two_uri_sans: pki.client_with_uri_sans(&TWO_URI_SANS),
        pki,
    };
    // One directory per run: the tests of this file run in parallel, each with its own PKI.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mesh-authn-authz-diff-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let native_up = EchoUpstream::start();
    let ours_up = EchoUpstream::start();
    let native_template = mtls_template(&clients.pki, &dir, native_up.port);
    let ours_template = mtls_template(&clients.pki, &dir, ours_up.port);
    let jwt_authn = native_jwt_authn(&[request_authentication()]).expect("rules apply");

    // Each case: loaded by mesh-authn's own parser first, so that a refused one is a finding,
    // not an Envoy that does not start.
    let mut deviations_used: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut loaded = Vec::new();
    let mut policies = 0;
    // Every listener of both Envoys gets a port chosen here, held until just before its Envoy
    // starts: with `port_value: 0` listeners beside explicit ones, the kernel once handed an
    // explicit port, released a moment before, to another listener, and the requests of one
    // policy set were answered by another's rules.
    let reserve = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
    let mut native_held = Vec::new();
    let mut ours_held = Vec::new();
    for &case in cases {
        policies += authorization_policies(case, 0).len();
        let (native_l, ours_l) = (reserve(), reserve());
        let (native_port, ours_port) = (port(&native_l), port(&ours_l));
        native_held.push(native_l);
        ours_held.push(ours_l);
        let config = plugin_config(case, ours_port);
        let refused = mesh_authn::config::FilterConfig::parse(config.as_bytes()).err();
        let expected = DEVIATIONS
            .iter()
            .find(|d| d.refuses.is_some_and(|(c, _)| c.contains(&case.name)));
        match (refused, expected) {
            (None, None) => loaded.push((case, config, native_port, ours_port)),
            (Some(e), Some(d)) if e.to_string().contains(d.refuses.unwrap().1) => {
                *deviations_used.entry(d.name).or_default() += 1;
            }
            (Some(e), _) => failures.push(format!("[{}] mesh-authn refuses it: {e}", case.name)),
            (None, Some(d)) => failures.push(format!(
                "[{}] mesh-authn loads it, but deviation {} says it refuses it",
                case.name, d.name
            )),
        }
    }
    let native_listeners: Vec<(String, Vec<Value>, u16)> = loaded
        .iter()
        .map(|(case, _, port, _)| {
            let mut filters = vec![jwt_authn.clone()];
            filters.extend(case.outs.iter().map(|o| stock_envoy_rbac(o, *port)));
            filters.push(router());
            (case.name.to_owned(), filters, *port)
        })
        .collect();
    let ours_listeners: Vec<(String, Vec<Value>, u16)> = loaded
        .iter()
        .map(|(case, config, _, port)| {
            (
                case.name.to_owned(),
                mesh_authn_filters(&ours_template, config),
                *port,
            )
        })
        .collect();
    drop(native_held);
    let native = Envoy::start_config(
        &bootstrap(&native_template, &native_listeners),
        &Options::default(),
    )
    .unwrap_or_else(|e| panic!("native Envoy did not start: {e}"));
    drop(ours_held);
    let ours = Envoy::start_config(
        &bootstrap(&ours_template, &ours_listeners),
        &Options::default(),
    )
    .unwrap_or_else(|e| panic!("mesh-authn Envoy did not start: {e}"));
    let native_ports = native.listener_ports();
    let ours_ports = ours.listener_ports();

    // Four client threads, each with its share of the policy sets: the Envoys are event
    // driven, the time goes into connections and handshakes.
    let outcomes: Vec<(&Case, &Req, Seen, Seen)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let (loaded, clients) = (&loaded, &clients);
                let (native_ports, ours_ports) = (&native_ports, &ours_ports);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    for (case, ..) in loaded.iter().skip(w).step_by(4) {
                        for r in requests {
                            let n = send(native_ports[case.name], r, clients);
                            let o = send(ours_ports[case.name], r, clients);
                            seen.push((*case, r, n, o));
                        }
                    }
                    seen
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a client thread panicked"))
            .collect()
    });
    let sent = outcomes.len();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (case, r, n, o) in &outcomes {
        if std::env::var("DIFF_SHOW").is_ok_and(|f| r.name.contains(&f) || case.name == f) {
            eprintln!(
                "[{}] {}:\n  native {n:?}\n  ours   {o:?}",
                case.name, r.name
            );
        }
        *by_status.entry(n.status).or_default() += 1;
        if n == o {
            continue;
        }
        match DEVIATIONS.iter().find(|d| (d.explains)(case, r, n, o)) {
            Some(d) => *deviations_used.entry(d.name).or_default() += 1,
            None => failures.push(format!(
                "[{}] {}\n  native: {n:?}\n  ours:   {o:?}",
                case.name, r.name
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let report = format!(
        "{sent} requests over {} policy sets ({policies} AuthorizationPolicies, {} loaded); \
         native statuses {by_status:?}; deviations used {deviations_used:?}; {} failures; {:?}",
        cases.len(),
        loaded.len(),
        failures.len(),
        started.elapsed()
    );
    eprintln!("{report}");
    Run {
        sent,
        policies,
        loaded: loaded.len(),
        by_status,
        deviations_used,
        failures,
        report,
    }
}

#[test]
fn mesh_authn_decides_as_envoy_rbac_configured_by_istiod() {
    let cases: Vec<&Case> = CASES.iter().collect();
    let Run {
        sent,
        policies,
        loaded,
        by_status,
        deviations_used,
        failures,
        report,
    } = run(&cases, &requests());
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
    assert!(policies >= 20 && sent >= 150 && loaded >= 15, "{report}");
    // Both outcomes are exercised in quantity: a suite where everything is 403 proves little.
    assert!(
        by_status.get(&200).copied().unwrap_or(0) >= 100
            && by_status.get(&403).copied().unwrap_or(0) >= 100,
        "{report}"
    );
    let unused: Vec<&str> = DEVIATIONS
        .iter()
        .filter(|d| d.name != LATER_URI_SANS && !deviations_used.contains_key(d.name))
        .map(|d| d.name)
        .collect();
    assert!(
        unused.is_empty(),
        "deviations never needed (remove them): {unused:?}\n{report}"
    );
    for d in DEVIATIONS {
        assert!(!d.why.is_empty(), "{}", d.name);
    }
    readme_states(CASES.len(), policies, sent);
}

/// Client certificates Envoy's listener validated whose identity is not one first URI SAN:
/// Envoy RBAC's `authenticated.principal_name` matches any URI SAN, else the DNS SAN, else
/// the subject. So istiod's `principals: ["*"]` (regex `.+`) matches a certificate with only a
/// DNS SAN, and a principal named by a second URI SAN matches too: an ALLOW lets such a peer
/// in, a DENY keeps it out. mesh-authn reads the first URI SAN, the first DNS SAN and the
/// subject; a later URI SAN is [`LATER_URI_SANS`].
#[test]
fn a_peer_is_every_identity_of_its_certificate_as_in_envoy_rbac() {
    let names = [
        "simple-policy-principal-with-wildcard",
        "example-mtls-principal",
        "deny-any-peer",
    ];
    let cases: Vec<&Case> = CASES
        .iter()
        .chain(PEER_CASES)
        .filter(|c| names.contains(&c.name))
        .collect();
    assert_eq!(cases.len(), names.len());
    let requests: Vec<Req> = [Conn::NoUriSan, Conn::TwoUriSans]
        .into_iter()
        .flat_map(|conn| {
            ["/", "/admin", "/bar-only"]
                .into_iter()
                .map(move |path| Req {
                    name: format!("{conn:?} GET {path}"),
                    conn,
                    method: "GET",
                    path,
                    headers: Vec::new(),
                })
        })
        .collect();
    let result = run(&cases, &requests);
    assert!(
        result.failures.is_empty(),
        "{}\n{}",
        result.report,
        result.failures.join("\n")
    );
    assert!(
        result.deviations_used.contains_key(LATER_URI_SANS),
        "{LATER_URI_SANS} never needed\n{}",
        result.report
    );
}

/// Policy sets of [`a_peer_is_every_identity_of_its_certificate_as_in_envoy_rbac`].
const PEER_CASES: &[Case] = &[Case {
    name: "deny-any-peer",
    input: "host-tests/fixtures/istio-authz/project/deny-any-peer-in.yaml",
    outs: &["host-tests/fixtures/istio-authz/project/deny-any-peer-out.yaml"],
    trust_domain: None,
}];

/// The README's "Differential suite (AuthorizationPolicy)" states what this test runs: the
/// counts, the peers, and every deviation with its reason.
fn readme_states(sets: usize, policies: usize, sent: usize) {
    let readme = fixture_text("README.md");
    let section = readme
        .split("\n### Differential suite (AuthorizationPolicy)\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a \"Differential suite (AuthorizationPolicy)\" section");
    let flat = section.split_whitespace().collect::<Vec<_>>().join(" ");
    let trust_domains: std::collections::BTreeSet<&str> = PEERS
        .iter()
        .map(|(_, uri)| uri["spiffe://".len()..].split('/').next().unwrap())
        .collect();
    for claim in [
        format!("{sets} policy sets, {policies} AuthorizationPolicies, {sent} requests"),
        format!(
            "{} SPIFFE identities in {} trust domains",
            PEERS.len(),
            trust_domains.len()
        ),
        format!("{} tokens with known claims", number_word(tokens().len())),
    ] {
        assert!(
            flat.contains(&claim),
            "the README section does not say {claim:?}"
        );
    }
    for d in DEVIATIONS {
        let why = d.why.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(&format!("| `{}` | {why}", d.name)),
            "the README's deviation table lacks {} with its reason",
            d.name
        );
    }
}

fn number_word(n: usize) -> String {
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    words
        .get(n)
        .map_or_else(|| n.to_string(), |w| (*w).to_owned())
}
