//! Expected values from istio/istio's tests and validation (cited per test).

use super::*;
use crate::config::FilterConfig;

fn error(policies: &str) -> String {
    let indented: String = policies.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!("workload: {{namespace: foo}}\npolicies:\n{indented}");
    match FilterConfig::parse(text.as_bytes()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn ap(spec: &str) -> String {
    format!(
        "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: p, namespace: foo}}\n  spec: {spec}\n"
    )
}

/// istiod's `ValidateAuthorizationPolicy` refusals, and what this filter refuses on top, each
/// naming the field.
#[test]
fn bad_policies_each_name_their_field() {
    let cases: &[(&str, &str)] = &[
        ("{action: CUSTOM, provider: {name: x}, rules: [{}]}", "policies[0].spec.action: CUSTOM delegates to an external authorizer (ext_authz)"),
        ("{action: ALLOWED}", "policies[0].spec.action: `ALLOWED` is not ALLOW, DENY, AUDIT or CUSTOM"),
        ("{provider: {name: x}}", "policies[0].spec.provider: must not be set with action ALLOW"),
        ("{action: DENY}", "policies[0].spec.rules: DENY action without `rules` is meaningless"),
        ("{targetRef: {kind: Gateway, name: g}}", "policies[0].spec.targetRef: attaches the policy"),
        ("{targetRefs: [{kind: Service, name: s}]}", "policies[0].spec.targetRefs: attaches the policy"),
        ("{rules: [{form: []}]}", "policies[0].spec.rules[0].form: unknown field `form`"),
        ("{rules: [{from: [{source: {principal: [a]}}]}]}", "policies[0].spec.rules[0].from[0].source.principal: unknown field `principal`"),
        ("{rules: [{to: [{operation: {path: [a]}}]}]}", "policies[0].spec.rules[0].to[0].operation.path: unknown field `path`"),
        ("{rules: [{from: []}]}", "policies[0].spec.rules[0].from: must not be empty"),
        ("{rules: [{to: []}]}", "policies[0].spec.rules[0].to: must not be empty"),
        ("{rules: [{from: [{}]}]}", "policies[0].spec.rules[0].from[0].source: required"),
        ("{rules: [{from: [{source: {}}]}]}", "policies[0].spec.rules[0].from[0].source: `from.source` must not be empty"),
        ("{rules: [{to: [{operation: {}}]}]}", "policies[0].spec.rules[0].to[0].operation: `to.operation` must not be empty"),
        ("{rules: [{from: [{source: {principals: [a, \"\"]}}]}]}", "policies[0].spec.rules[0].from[0].source.principals[1]: must not be empty"),
        ("{rules: [{from: [{source: {remoteIpBlocks: [10.0.0.0/33]}}]}]}", "policies[0].spec.rules[0].from[0].source.remoteIpBlocks[0]: `10.0.0.0/33`: bad prefix length"),
        ("{rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}]}]}", "policies[0].spec.rules[0].from[0].source.ipBlocks: matches the connection's peer address"),
        ("{rules: [{from: [{source: {notIpBlocks: [10.0.0.0/8]}}]}]}", "policies[0].spec.rules[0].from[0].source.notIpBlocks: matches the connection's peer address"),
        ("{rules: [{when: [{key: source.ip, values: [10.0.0.1]}]}]}", "policies[0].spec.rules[0].when[0].values: matches the connection's peer address"),
        ("{rules: [{from: [{source: {notRemoteIpBlocks: [nope]}}]}]}", "policies[0].spec.rules[0].from[0].source.notRemoteIpBlocks[0]: `nope` is not an IP address"),
        ("{rules: [{from: [{source: {namespaces: [a], serviceAccounts: [b]}}]}]}", "policies[0].spec.rules[0].from[0].source.serviceAccounts: cannot be set with namespaces or principals"),
        ("{rules: [{from: [{source: {serviceAccounts: [a/b/c]}}]}]}", "policies[0].spec.rules[0].from[0].source.serviceAccounts[0]: expected format"),
        ("{rules: [{from: [{source: {serviceAccounts: [\"a*\"]}}]}]}", "policies[0].spec.rules[0].from[0].source.serviceAccounts[0]: wildcard not allowed"),
        ("{rules: [{from: [{source: {trustDomains: [\"a*b\"]}}]}]}", "policies[0].spec.rules[0].from[0].source.trustDomains[0]: wildcard is only allowed at the start or end"),
        ("{rules: [{from: [{source: {trustDomains: [a/b]}}]}]}", "policies[0].spec.rules[0].from[0].source.trustDomains[0]: trust domain must not contain '/'"),
        ("{rules: [{to: [{operation: {ports: [\"65536\"]}}]}]}", "policies[0].spec.rules[0].to[0].operation.ports[0]: bad port `65536`"),
        ("{rules: [{to: [{operation: {notPorts: [http]}}]}]}", "policies[0].spec.rules[0].to[0].operation.notPorts[0]: bad port `http`"),
        ("{rules: [{to: [{operation: {paths: [\"/{**}/{*}\"]}}]}]}", "policies[0].spec.rules[0].to[0].operation.paths[0]: `{**}` is not the last operator"),
        ("{rules: [{to: [{operation: {paths: [\"{*}/x\"]}}]}]}", "policies[0].spec.rules[0].to[0].operation.paths[0]: a path template must start with `/`"),
        ("{rules: [{when: [{key: source.color, values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: unknown attribute `source.color`"),
        ("{rules: [{when: [{key: \"\", values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: must not be empty"),
        ("{rules: [{when: [{key: source.ip}]}]}", "policies[0].spec.rules[0].when[0]: at least one of `values` or `notValues` must be set for key source.ip"),
        ("{rules: [{when: [{key: \"request.headers[]\", values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: bad key `request.headers[]`"),
        ("{rules: [{when: [{key: \"request.auth.claims\", values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: bad key `request.auth.claims`"),
        ("{rules: [{when: [{key: destination.namespace, values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: attribute destination.namespace is replaced by the metadata.namespace"),
        ("{rules: [{when: [{key: \"destination.labels[app]\", values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: attribute destination.labels[app] is replaced by the workload selector"),
        ("{rules: [{when: [{key: \"experimental.envoy.filters.a.b[c]\", values: [x]}]}]}", "policies[0].spec.rules[0].when[0].key: `experimental.envoy.filters.a.b[c]` reads another Envoy filter's metadata"),
        ("{rules: [{when: [{key: destination.port, notValues: [\"-1\"]}]}]}", "policies[0].spec.rules[0].when[0].notValues[0]: bad port `-1`"),
        ("{rules: [{when: [{key: remote.ip, values: [\"\"]}]}]}", "policies[0].spec.rules[0].when[0].values[0]: must not be empty"),
    ];
    for (spec, want) in cases {
        let got = error(&ap(spec));
        assert!(got.starts_with(want), "{spec}\n got: {got}\nwant: {want}…");
    }
}

#[test]
fn the_envelope_is_checked_as_for_the_other_kinds() {
    let e = error("- apiVersion: security.istio.io/v1alpha1\n  kind: AuthorizationPolicy\n  metadata: {name: p, namespace: foo}\n");
    assert!(
        e.starts_with("policies[0].apiVersion: `security.istio.io/v1alpha1` is not one of"),
        "{e}"
    );
    let e = error(
        "- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {name: p}\n",
    );
    assert!(
        e.starts_with("policies[0].metadata.namespace: required"),
        "{e}"
    );
    let e = error("- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {namespace: foo}\n");
    assert!(e.starts_with("policies[0].metadata.name: required"), "{e}");
    let e = error("- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {name: p, namespace: foo, annotations: {istio.io/dry-run: yes}}\n");
    assert!(
        e.starts_with("policies[0].metadata.annotations.istio.io/dry-run: `yes` is not a boolean"),
        "{e}"
    );
    let e = error(&format!("{}{}", ap("{}"), ap("{rules: [{}]}")));
    assert!(
        e.starts_with("policies[1].metadata.name: AuthorizationPolicy foo/p appears twice"),
        "{e}"
    );
    let e = error("- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {name: p, namespace: foo}\n  spec: {}\n  extra: 1\n");
    assert!(e.contains("unknown field `extra`"), "{e}");
}

/// Go's `strconv.ParseBool` accepts these for `istio.io/dry-run`.
#[test]
fn dry_run_reads_as_go_parses_booleans() {
    for t in ["1", "t", "T", "TRUE", "true", "True"] {
        assert_eq!(parse_bool(t), Some(true), "{t}");
    }
    for f in ["0", "f", "F", "FALSE", "false", "False"] {
        assert_eq!(parse_bool(f), Some(false), "{f}");
    }
    for bad in ["yes", "on", "", "tRUE"] {
        assert_eq!(parse_bool(bad), None, "{bad}");
    }
}

/// istio/istio `pilot/pkg/security/trustdomain/bundle_test.go` `TestReplaceTrustDomainAliases`.
#[test]
fn principals_are_expanded_over_trust_domain_aliases_as_istiod() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let bundle = |td: &str, aliases: &[&str]| {
        let mut v = vec![td.to_owned()];
        v.extend(aliases.iter().map(|a| a.to_string()));
        v
    };
    type Case<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "cluster.local",
            &[],
            &["cluster.local/ns/foo/sa/bar"],
            &["cluster.local/ns/foo/sa/bar"],
        ),
        ("cluster.local", &[], &["*"], &["*"]),
        (
            "cluster.local",
            &[],
            &["*/ns/foo/sa/bar"],
            &["*/ns/foo/sa/bar"],
        ),
        (
            "td2",
            &["td1"],
            &["td1/ns/foo/sa/bar"],
            &["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"],
        ),
        (
            "td1",
            &["cluster.local"],
            &["cluster.local/ns/foo/sa/bar", "cluster.local/ns/yyy/sa/zzz"],
            &[
                "td1/ns/foo/sa/bar",
                "cluster.local/ns/foo/sa/bar",
                "td1/ns/yyy/sa/zzz",
                "cluster.local/ns/yyy/sa/zzz",
            ],
        ),
        (
            "td1",
            &["cluster.local"],
            &["*/ns/foo/sa/bar", "*sa/zzz", "*"],
            &["*/ns/foo/sa/bar", "*sa/zzz", "*"],
        ),
        (
            "td2",
            &["td1", "cluster.local"],
            &["cluster.local/ns/foo/sa/bar", "td1/ns/yyy/sa/zzz"],
            &[
                "td2/ns/foo/sa/bar",
                "td1/ns/foo/sa/bar",
                "cluster.local/ns/foo/sa/bar",
                "td2/ns/yyy/sa/zzz",
                "td1/ns/yyy/sa/zzz",
                "cluster.local/ns/yyy/sa/zzz",
            ],
        ),
        (
            "td2",
            &["foo-td1", "cluster.local"],
            &["*-td1/ns/foo/sa/bar"],
            &[
                "td2/ns/foo/sa/bar",
                "*-td1/ns/foo/sa/bar",
                "cluster.local/ns/foo/sa/bar",
            ],
        ),
        (
            "td1",
            &["td2"],
            &["some-td/ns/foo/sa/bar"],
            &["some-td/ns/foo/sa/bar"],
        ),
        (
            "td1",
            &["td2", "some-td"],
            &["some-td/ns/foo/sa/bar"],
            &[
                "td1/ns/foo/sa/bar",
                "td2/ns/foo/sa/bar",
                "some-td/ns/foo/sa/bar",
            ],
        ),
        (
            "new-td",
            &["td2", "td3"],
            &["td1/ns/some-ns/sa/some-sa", "td2/ns/foo/sa/bar"],
            &[
                "td1/ns/some-ns/sa/some-sa",
                "new-td/ns/foo/sa/bar",
                "td2/ns/foo/sa/bar",
                "td3/ns/foo/sa/bar",
            ],
        ),
        (
            "new-td",
            &["td2", "td3"],
            &["/ns/some-ns/sa/some-sa"],
            &["/ns/some-ns/sa/some-sa"],
        ),
        (
            "new-td",
            &["old-td"],
            &["*-td/ns/some-ns/sa/some-sa"],
            &["*-td/ns/some-ns/sa/some-sa"],
        ),
    ];
    for (td, aliases, principals, want) in cases {
        assert_eq!(
            replace_trust_domain_aliases(&s(principals), &bundle(td, aliases)),
            s(want),
            "{td} {aliases:?} {principals:?}"
        );
    }
}

/// istio/istio `pilot/pkg/security/authz/model/util_test.go` `TestExtractNameInNestedBrackets`.
#[test]
fn claim_keys_split_as_istiod_splits_them() {
    let s = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(extract_name_in_nested_brackets("[good]"), s(&["good"]));
    assert_eq!(
        extract_name_in_nested_brackets("[good][abc][xyz]"),
        s(&["good", "abc", "xyz"])
    );
    assert_eq!(extract_name_in_nested_brackets("[]"), s(&[""]));
    assert_eq!(extract_name_in_nested_brackets("[[good]"), s(&["[good"]));
    assert_eq!(extract_name_in_nested_brackets("[good]]"), s(&["good]"]));
    assert_eq!(extract_name_in_nested_brackets("[[good]]"), s(&["[good]"]));
    for bad in ["x[bad]", "[bad", "bad]", "bad"] {
        assert_eq!(extract_name_in_nested_brackets(bad), None, "{bad}");
    }
}

/// `spaceDelimitedClaims` is accepted now and merged with istiod's defaults.
#[test]
fn space_delimited_claims_merge_with_the_defaults() {
    let text = "workload: {namespace: foo}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: {name: r, namespace: foo}\n  spec:\n    jwtRules:\n    - issuer: i\n      jwksUri: https://example.com/jwks\n      spaceDelimitedClaims: [roles, scope]\n    - issuer: j\n      jwksUri: https://example.com/jwks\n";
    let c = FilterConfig::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let lists: Vec<&[String]> = c
        .request_authn
        .providers()
        .iter()
        .map(|p| p.space_delimited_claims.as_slice())
        .collect();
    assert_eq!(
        lists,
        [
            &["permission", "roles", "scope"][..],
            &["permission", "scope"][..]
        ]
    );
}

/// The README's deviation `later-uri-sans-unseen` is said once at configuration time for the
/// policies it can let through (a DENY on peer identities, an ALLOW excluding some), and not
/// for those it can only make stricter (an ALLOW on principals) or that enforce nothing
/// (dry-run).
#[test]
fn policies_a_later_uri_san_could_pass_are_warned_about_once() {
    let warned = |spec: &str, annotations: &str| -> bool {
        let text = format!(
            "workload: {{namespace: foo}}\npolicies:\n- apiVersion: security.istio.io/v1\n  kind: AuthorizationPolicy\n  metadata: {{name: p, namespace: foo{annotations}}}\n  spec: {spec}\n"
        );
        let config =
            FilterConfig::parse(text.as_bytes()).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
        let hits: Vec<_> = config
            .warnings
            .iter()
            .filter(|w| w.contains("foo/p") && w.contains("later-uri-sans-unseen"))
            .collect();
        assert!(hits.len() <= 1, "{hits:?}");
        hits.len() == 1
    };
    let deny_principal = "{action: DENY, rules: [{from: [{source: {principals: [a/ns/b/sa/c]}}]}]}";
    assert!(warned(deny_principal, ""));
    assert!(warned(
        "{action: DENY, rules: [{when: [{key: source.namespace, values: [bad]}]}]}",
        ""
    ));
    assert!(warned(
        "{rules: [{from: [{source: {notPrincipals: [a/ns/b/sa/c]}}]}]}",
        ""
    ));
    assert!(!warned(
        "{rules: [{from: [{source: {principals: [a/ns/b/sa/c]}}]}]}",
        ""
    ));
    assert!(!warned(
        "{action: DENY, rules: [{to: [{operation: {paths: [/admin]}}]}]}",
        ""
    ));
    assert!(!warned(
        deny_principal,
        ", annotations: {istio.io/dry-run: \"true\"}"
    ));
}
