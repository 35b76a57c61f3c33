//! Policies compiled from YAML as a user pastes them, evaluated over requests. Expected
//! decisions are Istio's documented and tested ones (istio/api `security/v1beta1/
//! authorization.proto` comments; istio/istio `tests/integration/security/authz_test.go`;
//! `pilot/pkg/security/authz/model/generator.go` for what each field matches), cited per test.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::*;
use crate::config::FilterConfig;

const SAN_FOO_BAR: &str = "spiffe://cluster.local/ns/foo/sa/bar";

/// The workload's configuration with these policies (YAML list items, indented by 0).
fn compile(policies: &str) -> FilterConfig {
    compile_with(policies, "")
}

fn compile_with(policies: &str, top: &str) -> FilterConfig {
    let indented: String = policies.lines().map(|l| format!("  {l}\n")).collect();
    let list = if indented.is_empty() { " []" } else { "" };
    let text = format!(
        "workload: {{namespace: foo, labels: {{app: httpbin}}}}\n{top}policies:{list}\n{indented}"
    );
    match FilterConfig::parse(text.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// An AuthorizationPolicy in `foo` with this spec (YAML, flow or block at indent 2).
fn policy(name: &str, spec: &str) -> String {
    format!(
        "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: {name}, namespace: foo}}\n  spec:\n{}\n",
        spec.lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A request as the matchers see it.
#[derive(Default, Clone)]
struct Req {
    headers: Vec<(&'static str, &'static str)>,
    san: Option<&'static str>,
    dns_san: Option<&'static str>,
    subject: Option<&'static str>,
    remote: Option<&'static str>,
    dest_ip: Option<&'static str>,
    dest_port: Option<u32>,
    sni: Option<&'static str>,
    claims: Option<Value>,
    space_delimited: Vec<String>,
}

fn get(path: &'static str) -> Req {
    Req {
        headers: vec![
            (":method", "GET"),
            (":path", path),
            (":authority", "httpbin.foo"),
        ],
        ..Req::default()
    }
}

impl Req {
    fn with(mut self, f: impl FnOnce(&mut Req)) -> Req {
        f(&mut self);
        self
    }
    fn token(self, claims: Value) -> Req {
        self.with(|r| {
            r.claims = Some(claims);
            r.space_delimited = vec!["permission".into(), "scope".into()];
        })
    }
}

fn ip(s: Option<&str>) -> Option<IpAddr> {
    s.map(|s| s.parse().unwrap())
}

/// The outcome's verdict: `Ok(allowed_by)` or `Err(details)`.
fn decide(config: &FilterConfig, r: &Req) -> Result<Option<String>, String> {
    with_outcome(config, r, |o| match o.response_code_details() {
        Some(details) => Err(details),
        None => Ok(o.allowed_by.map(|m| m.rule_id.to_owned())),
    })
}

fn with_outcome<T>(config: &FilterConfig, r: &Req, f: impl FnOnce(&Outcome<'_>) -> T) -> T {
    let headers = Request::from_pairs(&r.headers);
    let payload: Option<Map<String, Value>> =
        r.claims.as_ref().map(|c| c.as_object().cloned().unwrap());
    let attrs = Attributes {
        headers: &headers,
        peer: PeerIdentities {
            uri_san: r.san,
            dns_san: r.dns_san,
            subject: r.subject,
        },
        remote_ip: ip(r.remote),
        destination_ip: ip(r.dest_ip),
        destination_port: r.dest_port,
        sni: r.sni,
        token: payload.as_ref().map(|payload| TokenClaims {
            payload,
            space_delimited: &r.space_delimited,
        }),
    };
    f(&config.authz.evaluate(&attrs))
}

fn denied_none() -> Result<Option<String>, String> {
    Err("rbac_access_denied_matched_policy[none]".into())
}

fn denied_by(rule: &str) -> Result<Option<String>, String> {
    Err(format!("rbac_access_denied_matched_policy[{rule}]"))
}

fn allowed_by(rule: &str) -> Result<Option<String>, String> {
    Ok(Some(rule.to_owned()))
}

/// authorization.proto: "If there are no ALLOW policies for the workload, allow the request."
#[test]
fn without_policies_every_request_is_allowed() {
    let c = compile("");
    assert!(c.authz.is_empty());
    assert_eq!(decide(&c, &get("/")), Ok(None));
}

/// authorization.proto's examples: `spec: {}` denies all; `rules: [{}]` allows all.
#[test]
fn an_empty_spec_denies_all_and_an_empty_rule_allows_all() {
    let c = compile(&policy("deny-all", "{}"));
    assert_eq!(decide(&c, &get("/")), denied_none());
    let c = compile(&policy("allow-all", "rules: [{}]"));
    assert_eq!(
        decide(&c, &get("/")),
        allowed_by("ns[foo]-policy[allow-all]-rule[0]")
    );
    // An AUDIT policy without rules never matches and never denies.
    let c = compile(&policy("audit", "action: AUDIT"));
    assert_eq!(decide(&c, &get("/")), Ok(None));
}

/// authorization.proto: "If there are any DENY policies that match the request, deny the
/// request. If there are no ALLOW policies for the workload, allow the request. If any of the
/// ALLOW policies match the request, allow the request. Deny the request."
#[test]
fn deny_is_evaluated_before_allow() {
    let c = compile(&format!(
        "{}{}",
        policy(
            "deny-admin",
            "action: DENY\nrules: [{to: [{operation: {paths: [\"/admin*\"]}}]}]"
        ),
        policy(
            "allow-get",
            "rules: [{to: [{operation: {methods: [GET]}}]}]"
        )
    ));
    assert_eq!(
        decide(&c, &get("/admin/x")),
        denied_by("ns[foo]-policy[deny-admin]-rule[0]")
    );
    assert_eq!(
        decide(&c, &get("/public")),
        allowed_by("ns[foo]-policy[allow-get]-rule[0]")
    );
    let post = get("/public").with(|r| r.headers[0] = (":method", "POST"));
    assert_eq!(decide(&c, &post), denied_none());
}

/// Envoy keeps an RBAC filter's policies in a sorted map: of two matching DENY rules the one
/// with the smaller name is reported (`engine_impl.cc`).
#[test]
fn the_first_matching_rule_by_name_is_reported() {
    let c = compile(&format!(
        "{}{}",
        policy("zz", "action: DENY\nrules: [{}]"),
        policy(
            "aa",
            "action: DENY\nrules: [{to: [{operation: {paths: [/nope]}}]}, {}]"
        )
    ));
    assert_eq!(
        decide(&c, &get("/")),
        denied_by("ns[foo]-policy[aa]-rule[1]")
    );
}

/// istiod's `istio.io/dry-run` puts a policy in `shadow_rules`: evaluated, never enforced.
#[test]
fn dry_run_policies_decide_nothing_but_say_what_they_would_do() {
    let c = compile(
        "- apiVersion: security.istio.io/v1beta1\n  kind: AuthorizationPolicy\n  metadata:\n    name: dry\n    namespace: foo\n    annotations: {istio.io/dry-run: \"true\"}\n  spec: {action: DENY, rules: [{}]}\n- apiVersion: security.istio.io/v1beta1\n  kind: AuthorizationPolicy\n  metadata:\n    name: dry-allow\n    namespace: foo\n    annotations: {istio.io/dry-run: \"true\"}\n  spec: {rules: [{to: [{operation: {paths: [/only]}}]}]}\n",
    );
    with_outcome(&c, &get("/x"), |o| {
        assert_eq!(o.denied, None);
        assert_eq!(
            o.shadow_deny.matched().map(|m| m.rule_id),
            Some("ns[foo]-policy[dry]-rule[0]")
        );
        // The dry-run DENY does not stop the chain: the ALLOW filter's shadow runs too.
        assert_eq!(o.shadow_allow, EngineResult::NoMatch);
    });
}

/// AUDIT (Envoy `LOG`) marks the request and changes no decision.
#[test]
fn audit_policies_never_change_the_decision() {
    let c = compile(&policy(
        "audit",
        "action: AUDIT\nrules: [{to: [{operation: {paths: [/x]}}]}]",
    ));
    with_outcome(&c, &get("/x"), |o| {
        assert_eq!(o.denied, None);
        assert_eq!(
            o.audited_by.map(|m| m.rule_id),
            Some("ns[foo]-policy[audit]-rule[0]")
        );
    });
    with_outcome(&c, &get("/y"), |o| assert_eq!(o.audited_by, None));
}

/// The "require JWT" pair of Istio's docs: `requestPrincipals: ["*"]` is `iss` and `sub` both
/// non-empty (`requestPrincipalGenerator`: `.+` on each).
#[test]
fn request_principals_star_requires_a_token_with_iss_and_sub() {
    let c = compile(&policy(
        "require-jwt",
        "rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]",
    ));
    assert_eq!(decide(&c, &get("/")), denied_none());
    let ok = get("/").token(json!({"iss": "https://issuer", "sub": "alice"}));
    assert!(decide(&c, &ok).is_ok());
    let no_sub = get("/").token(json!({"iss": "https://issuer"}));
    assert_eq!(decide(&c, &no_sub), denied_none());
    let number_sub = get("/").token(json!({"iss": "https://issuer", "sub": 7}));
    assert_eq!(decide(&c, &number_sub), denied_none());
}

/// `requestPrincipals` split at the last `/` (the issuer may be a URL), prefix/suffix forms per
/// `requestPrincipalGenerator`.
#[test]
fn request_principals_split_issuer_and_subject_at_the_last_slash() {
    let token = |iss: &str, sub: &str| get("/").token(json!({"iss": iss, "sub": sub}));
    let cases: &[(&str, &str, &str, bool)] = &[
        (
            "https://a.example/x/alice",
            "https://a.example/x",
            "alice",
            true,
        ),
        (
            "https://a.example/x/alice",
            "https://a.example",
            "x/alice",
            false,
        ),
        (
            "https://a.example/x/*",
            "https://a.example/x",
            "anyone",
            true,
        ),
        (
            "https://a.example/x/al*",
            "https://a.example/x",
            "alice",
            true,
        ),
        (
            "https://a.example/x/al*",
            "https://a.example/x",
            "bob",
            false,
        ),
        ("*/alice", "anything", "alice", true),
        ("*.example/alice", "https://a.example", "alice", true),
        ("*.example/alice", "https://a.example", "bob", false),
        ("*ice", "whatever", "alice", true),
        // The last `/` of `https://a*` is the scheme's: issuer `https:/`, subject prefix `a`.
        ("https://a*", "https:/", "alice", true),
        ("https://a*", "https://a.example", "x", false),
        ("noslash", "noslash", "x", false),
    ];
    for (value, iss, sub, want) in cases {
        let c = compile(&policy(
            "p",
            &format!("rules: [{{from: [{{source: {{requestPrincipals: [\"{value}\"]}}}}]}}]"),
        ));
        assert_eq!(
            decide(&c, &token(iss, sub)).is_ok(),
            *want,
            "{value} vs {iss} / {sub}"
        );
    }
}

/// `notRequestPrincipals: ["*"]` in a DENY policy refuses requests without a token (Istio's
/// docs, "Require a valid token").
#[test]
fn deny_not_request_principals_refuses_requests_without_a_token() {
    let c = compile(&policy(
        "deny-no-jwt",
        "action: DENY\nrules: [{from: [{source: {notRequestPrincipals: [\"*\"]}}]}]",
    ));
    assert!(decide(&c, &get("/")).is_err());
    assert_eq!(
        decide(&c, &get("/").token(json!({"iss": "i", "sub": "s"}))),
        Ok(None)
    );
}

/// `principals`: the peer's URI SAN without `spiffe://`; plaintext has no principal, so a
/// principal never matches it and a `notPrincipals` always does.
#[test]
fn principals_come_from_the_peer_certificate() {
    let c = compile(&policy(
        "p",
        "rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/bar, \"*/sa/admin\"]}}]}]",
    ));
    let peer = |san| get("/").with(|r| r.san = Some(san));
    assert!(decide(&c, &peer(SAN_FOO_BAR)).is_ok());
    assert!(decide(&c, &peer("spiffe://other.td/ns/x/sa/admin")).is_ok());
    assert!(decide(&c, &peer("spiffe://cluster.local/ns/foo/sa/baz")).is_err());
    assert!(decide(&c, &get("/")).is_err(), "plaintext");
    let not = compile(&policy(
        "p",
        "action: DENY\nrules: [{from: [{source: {notPrincipals: [cluster.local/ns/foo/sa/bar]}}]}]",
    ));
    assert!(
        decide(&not, &get("/")).is_err(),
        "plaintext is not that principal"
    );
    assert_eq!(decide(&not, &peer(SAN_FOO_BAR)), Ok(None));
}

/// Envoy RBAC's `authenticated` (`AuthenticatedMatcher::matches`, envoyproxy/envoy
/// `source/extensions/filters/common/rbac/matchers.cc`) matches any URI SAN, then any DNS SAN,
/// then the subject: a certificate with only a DNS SAN is a principal (`*` is the regex `.+`),
/// and a DNS SAN or the subject is matched even next to a URI SAN.
#[test]
fn a_peer_is_its_uri_san_its_dns_san_and_its_subject() {
    let dns_only = get("/").with(|r| {
        r.dns_san = Some("client.example");
        r.subject = Some("CN=client");
    });
    let any = "rules: [{from: [{source: {principals: [\"*\"]}}]}]";
    let allow = compile(&policy("p", any));
    assert!(decide(&allow, &dns_only).is_ok());
    let deny = compile(&policy("p", &format!("action: DENY\n{any}")));
    assert_eq!(
        decide(&deny, &dns_only),
        denied_by("ns[foo]-policy[p]-rule[0]")
    );
    assert!(
        decide(&deny, &get("/")).is_ok(),
        "plaintext is no principal"
    );
    // Next to a URI SAN that matches nothing: `principals` prefix their values with
    // `spiffe://`, which a DNS name or an RFC 2253 subject never starts with, but the
    // `namespaces` regex `.*/ns/<ns>/.*` is matched against the subject too.
    let ns = compile(&policy(
        "p",
        "action: DENY\nrules: [{from: [{source: {namespaces: [bar]}}]}]",
    ));
    let subject = |subject: &'static str| {
        get("/").with(|r| {
            r.san = Some(SAN_FOO_BAR);
            r.dns_san = Some("client.example");
            r.subject = Some(subject);
        })
    };
    assert!(decide(&ns, &subject("CN=x/ns/bar/y")).is_err());
    assert!(decide(&ns, &subject("CN=client")).is_ok());
}

/// `namespaces`: the regex `.*/ns/<ns>/.*` on the URI SAN (`srcNamespaceGenerator`).
#[test]
fn namespaces_come_from_the_identity() {
    let peer = |san| get("/").with(|r| r.san = Some(san));
    let cases: &[(&str, &str, bool)] = &[
        ("foo", SAN_FOO_BAR, true),
        ("fo", SAN_FOO_BAR, false),
        ("fo*", SAN_FOO_BAR, true),
        ("*oo", SAN_FOO_BAR, true),
        ("*", SAN_FOO_BAR, true),
        ("bar", SAN_FOO_BAR, false),
        ("foo", "spiffe://td/ns/foo", false),
        ("foo", "spiffe://td/a/ns/foo/sa/x", true),
    ];
    for (ns, san, want) in cases {
        let c = compile(&policy(
            "p",
            &format!("rules: [{{from: [{{source: {{namespaces: [\"{ns}\"]}}}}]}}]"),
        ));
        assert_eq!(decide(&c, &peer(san)).is_ok(), *want, "{ns} vs {san}");
    }
}

/// `serviceAccounts` (`serviceAccountRegex`): `<sa>` in the policy's namespace, or `<ns>/<sa>`.
#[test]
fn service_accounts_default_to_the_policys_namespace() {
    let c = compile(&policy(
        "p",
        "rules: [{from: [{source: {serviceAccounts: [bar, other/baz]}}]}]",
    ));
    let peer = |san| get("/").with(|r| r.san = Some(san));
    assert!(decide(&c, &peer(SAN_FOO_BAR)).is_ok());
    assert!(decide(&c, &peer("spiffe://td/ns/other/sa/baz")).is_ok());
    assert!(decide(&c, &peer("spiffe://td/ns/other/sa/bar")).is_err());
    assert!(decide(&c, &peer("spiffe://td/ns/foo/sa/bar-x")).is_err());
    assert!(decide(&c, &peer("spiffe://td/ns/foo/k/v/sa/bar/x")).is_ok());
    assert!(decide(&c, &peer("spiffe://td/ns/foo/sa/bar/")).is_err());
}

/// `trustDomains` (`srcTrustDomainGenerator`) with the bundle expanded
/// (`ExpandTrustDomainAliases`).
#[test]
fn trust_domains_match_the_identitys_domain_with_aliases() {
    let top = "trustDomain: td2\ntrustDomainAliases: [td1]\n";
    let c = compile_with(
        &policy(
            "p",
            "rules: [{from: [{source: {trustDomains: [td1, \"*.corp\"]}}]}]",
        ),
        top,
    );
    let peer = |san| get("/").with(|r| r.san = Some(san));
    assert!(decide(&c, &peer("spiffe://td1/ns/a/sa/b")).is_ok());
    assert!(decide(&c, &peer("spiffe://td2/ns/a/sa/b")).is_ok(), "alias");
    assert!(decide(&c, &peer("spiffe://x.corp/ns/a/sa/b")).is_ok());
    assert!(decide(&c, &peer("spiffe://x.corp.evil/ns/a/sa/b")).is_err());
    assert!(decide(&c, &peer("spiffe://td3/ns/a/sa/b")).is_err());
}

/// Principals under trust domain aliases: istiod's bundle_test.go "One trust domain alias, one
/// principal": `td1/ns/foo/sa/bar` under `td2` + alias `td1` stands for both.
#[test]
fn principals_widen_to_every_trust_domain_of_the_bundle() {
    let top = "trustDomain: td2\ntrustDomainAliases: [td1]\n";
    let c = compile_with(
        &policy(
            "p",
            "rules: [{when: [{key: source.principal, values: [td1/ns/foo/sa/bar]}]}]",
        ),
        top,
    );
    let peer = |san| get("/").with(|r| r.san = Some(san));
    assert!(decide(&c, &peer("spiffe://td1/ns/foo/sa/bar")).is_ok());
    assert!(decide(&c, &peer("spiffe://td2/ns/foo/sa/bar")).is_ok());
    assert!(decide(&c, &peer("spiffe://td3/ns/foo/sa/bar")).is_err());
}

/// `request.auth.claims[a][b]`: nested objects, list claims match any element, non-strings never
/// (Envoy's metadata `ValueMatcher` string match), and `scope`/`permission` strings split on
/// spaces (istiod's default `spaceDelimitedClaims`, Envoy `normalize_payload_in_metadata`).
#[test]
fn claims_walk_nested_objects_and_lists() {
    let cond = |key: &str, value: &str| {
        compile(&policy(
            "p",
            &format!("rules: [{{when: [{{key: \"{key}\", values: [\"{value}\"]}}]}}]"),
        ))
    };
    let claims = json!({
        "iss": "i", "sub": "s",
        "groups": ["dev", "ops"],
        "nested": {"key": {"deep": "v"}, "n": 3},
        "scope": "read write",
        "other": "a b",
        "flag": true,
        "aud": ["one", "two"],
        "azp": "client-1",
    });
    let r = get("/").token(claims);
    let cases: &[(&str, &str, bool)] = &[
        ("request.auth.claims[groups]", "ops", true),
        ("request.auth.claims[groups]", "qa", false),
        ("request.auth.claims[groups]", "d*", true),
        ("request.auth.claims[nested][key][deep]", "v", true),
        ("request.auth.claims[nested][key]", "*", false),
        ("request.auth.claims[nested][n]", "3", false),
        ("request.auth.claims[nested][missing]", "*", false),
        ("request.auth.claims[scope]", "write", true),
        ("request.auth.claims[scope]", "read write", false),
        ("request.auth.claims[other]", "a b", true),
        ("request.auth.claims[other]", "a", false),
        ("request.auth.claims[flag]", "true", false),
        ("request.auth.claims[iss]", "i", true),
        ("request.auth.audiences", "two", true),
        ("request.auth.audiences", "three", false),
        ("request.auth.presenter", "client-*", true),
        ("request.auth.principal", "i/s", true),
    ];
    for (key, value, want) in cases {
        assert_eq!(
            decide(&cond(key, value), &r).is_ok(),
            *want,
            "{key} {value}"
        );
    }
    assert!(
        decide(&cond("request.auth.claims[groups]", "*"), &get("/")).is_err(),
        "no token"
    );
}

/// `spaceDelimitedClaims` extends the defaults (istiod's `buildSpaceDelimitedClaims`).
#[test]
fn space_delimited_claims_of_the_rule_that_verified_apply() {
    let c = compile(&policy(
        "p",
        "rules: [{when: [{key: \"request.auth.claims[roles]\", values: [admin]}]}]",
    ));
    let mut r = get("/").token(json!({"roles": "user admin"}));
    assert!(decide(&c, &r).is_err());
    r.space_delimited.push("roles".into());
    assert!(decide(&c, &r).is_ok());
}

/// `to.operation`: hosts case-insensitive, methods, ports, paths; `not*` excludes.
#[test]
fn operations_match_host_method_port_and_path() {
    let c = compile(&policy(
        "p",
        "rules: [{to: [{operation: {hosts: [\"HTTPBIN.foo\", \"*.example.com\"], methods: [GET, HEAD], ports: [\"8000\"], notPaths: [\"/private*\"]}}]}]",
    ));
    let r = get("/x").with(|r| r.dest_port = Some(8000));
    assert!(decide(&c, &r).is_ok());
    assert!(decide(
        &c,
        &r.clone()
            .with(|r| r.headers[2] = (":authority", "a.EXAMPLE.com"))
    )
    .is_ok());
    assert!(decide(
        &c,
        &r.clone()
            .with(|r| r.headers[2] = (":authority", "httpbin.foo:8000"))
    )
    .is_err());
    assert!(decide(&c, &r.clone().with(|r| r.headers[0] = (":method", "POST"))).is_err());
    assert!(decide(&c, &r.clone().with(|r| r.dest_port = Some(9000))).is_err());
    assert!(decide(
        &c,
        &r.clone().with(|r| r.headers[1] = (":path", "/private/a"))
    )
    .is_err());
    assert!(decide(
        &c,
        &r.clone().with(|r| r.headers[1] = (":path", "/x?/private"))
    )
    .is_ok());
}

/// `from` entries OR, fields in one source AND; `to` likewise; `when` conditions AND.
#[test]
fn from_entries_or_and_fields_and() {
    let c = compile(&policy(
        "p",
        "rules:\n- from:\n  - source: {namespaces: [foo], remoteIpBlocks: [10.0.0.0/8]}\n  - source: {remoteIpBlocks: [192.168.1.1]}\n  when:\n  - {key: \"request.headers[x-a]\", values: [\"1\"]}\n  - {key: \"request.headers[X-B]\", notValues: [\"2\"]}",
    ));
    let base = get("/").with(|r| r.headers.push(("x-a", "1")));
    let ns_and_ip = base.clone().with(|r| {
        r.san = Some(SAN_FOO_BAR);
        r.remote = Some("10.1.2.3");
    });
    assert!(decide(&c, &ns_and_ip).is_ok());
    assert!(decide(&c, &ns_and_ip.clone().with(|r| r.remote = Some("11.0.0.1"))).is_err());
    assert!(decide(&c, &base.clone().with(|r| r.remote = Some("192.168.1.1"))).is_ok());
    assert!(decide(&c, &base.clone().with(|r| r.remote = Some("192.168.1.2"))).is_err());
    let with_b = ns_and_ip.clone().with(|r| r.headers.push(("x-b", "2")));
    assert!(decide(&c, &with_b).is_err());
    let without_a = ns_and_ip.with(|r| r.headers.retain(|(n, _)| *n != "x-a"));
    assert!(decide(&c, &without_a).is_err());
}

/// `destination.ip`, `destination.port`, `connection.sni` in `when`.
#[test]
fn connection_conditions_read_the_connection() {
    let c = compile(&policy(
        "p",
        "rules: [{when: [{key: destination.ip, values: [127.0.0.0/8]}, {key: destination.port, values: [\"8443\"]}, {key: connection.sni, values: [\"*.foo.svc\"]}]}]",
    ));
    assert_eq!(
        c.authz.needs(),
        Needs {
            destination_ip: true,
            destination_port: true,
            sni: true,
            ..Needs::default()
        }
    );
    let r = get("/").with(|r| {
        r.dest_ip = Some("127.0.0.1");
        r.dest_port = Some(8443);
        r.sni = Some("httpbin.foo.svc");
    });
    assert!(decide(&c, &r).is_ok());
    assert!(decide(&c, &r.clone().with(|r| r.sni = None)).is_err());
    assert!(decide(&c, &r.with(|r| r.dest_ip = Some("10.0.0.1"))).is_err());
}

/// istiod's builder (`model.go#checkError`): a `when` key validation accepts but the generator
/// cannot parse (`request.headersX[a]`: no `[` right after the prefix) leaves an ALLOW rule out
/// and drops the condition from a DENY rule, which then matches more.
#[test]
fn untranslatable_conditions_narrow_allow_and_widen_deny() {
    let allow = compile(&policy(
        "p",
        "rules: [{when: [{key: \"request.headersX[a]\", values: [v]}]}, {to: [{operation: {paths: [/open]}}]}]",
    ));
    assert!(decide(&allow, &get("/x")).is_err(), "rule 0 never matches");
    assert_eq!(
        decide(&allow, &get("/open")),
        allowed_by("ns[foo]-policy[p]-rule[1]")
    );
    let deny = compile(&policy(
        "p",
        "action: DENY\nrules: [{to: [{operation: {paths: [/x]}}], when: [{key: \"request.auth.claimsX[a]\", values: [v]}]}]",
    ));
    assert!(
        decide(&deny, &get("/x")).is_err(),
        "the condition is dropped: wider"
    );
    assert_eq!(decide(&deny, &get("/y")), Ok(None));
}

/// Only what the policies read is asked of the host.
#[test]
fn needs_name_only_the_properties_the_policies_read() {
    let c = compile(&policy("p", "rules: [{to: [{operation: {paths: [/x]}}]}]"));
    assert_eq!(c.authz.needs(), Needs::default());
    let c = compile(&policy(
        "p",
        "rules: [{from: [{source: {notPrincipals: [a/b/c/d/e], remoteIpBlocks: [\"::1\"]}}]}]",
    ));
    assert_eq!(
        c.authz.needs(),
        Needs {
            peer: true,
            remote_ip: true,
            ..Needs::default()
        }
    );
}

/// Scope as the other kinds: the workload's namespace, the root namespace, the selector.
#[test]
fn policies_apply_by_namespace_and_selector() {
    let p = |ns: &str, selector: &str| {
        format!(
            "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: p, namespace: {ns}}}\n  spec: {{{selector}}}\n"
        )
    };
    assert!(!compile(&p("foo", "")).authz.is_empty());
    assert!(!compile(&p("istio-system", "")).authz.is_empty());
    assert!(compile(&p("bar", "")).authz.is_empty());
    assert!(
        !compile(&p("foo", "selector: {matchLabels: {app: httpbin}}"))
            .authz
            .is_empty()
    );
    assert!(compile(&p("foo", "selector: {matchLabels: {app: other}}"))
        .authz
        .is_empty());
}

/// Envoy's address properties: `ip:port`, `[ipv6]:port` (Envoy `Address::asString`).
#[test]
fn address_properties_read_as_their_ip() {
    assert_eq!(socket_ip(b"127.0.0.1:8080"), ip(Some("127.0.0.1")));
    assert_eq!(socket_ip(b"[::1]:443"), ip(Some("::1")));
    assert_eq!(socket_ip(b"10.0.0.1"), ip(Some("10.0.0.1")));
    assert_eq!(socket_ip(b"/tmp/sock"), None);
    assert_eq!(socket_ip(b"\xff"), None);
}
