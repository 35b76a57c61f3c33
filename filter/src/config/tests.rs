use super::*;
use crate::extract::Location;

/// RFC 7517 Appendix A.1's RSA public key, as a one-key set.
const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"2011-04-29","alg":"RS256","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}"#;

fn config(policies: &str) -> String {
    format!("workload:\n  namespace: foo\n  labels: {{app: httpbin}}\npolicies:\n{policies}")
}

fn ra(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "- apiVersion: security.istio.io/v1\n  kind: RequestAuthentication\n  metadata: {{name: {name}, namespace: {namespace}}}\n  spec:\n{spec}"
    )
}

fn rule(issuer: &str) -> String {
    format!("    jwtRules:\n    - issuer: {issuer}\n      jwks: '{JWKS}'\n")
}

fn error(text: &str) -> String {
    FilterConfig::parse(text.as_bytes())
        .unwrap_err()
        .to_string()
}

fn issuers(text: &str) -> Vec<String> {
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    c.request_authn
        .providers()
        .iter()
        .map(|p| p.issuer.clone())
        .collect()
}

#[test]
fn accepts_a_resource_as_kubectl_prints_it() {
    let text = format!(
        "workload: {{namespace: foo, labels: {{app: httpbin}}}}
rootNamespace: istio-system
policies:
- apiVersion: security.istio.io/v1beta1
  kind: RequestAuthentication
  metadata:
    name: httpbin
    namespace: foo
    uid: 0b1c
    resourceVersion: \"42\"
    creationTimestamp: \"2026-01-01T00:00:00Z\"
    labels: {{team: a}}
    annotations: {{kubectl.kubernetes.io/last-applied-configuration: '{{}}'}}
  spec:
    selector:
      matchLabels: {{app: httpbin}}
    jwtRules:
    - issuer: https://example.com
      audiences: [example_service]
      jwks: '{JWKS}'
      forwardOriginalToken: true
      fromHeaders: [{{name: X-Jwt, prefix: 'Bearer '}}]
      fromParams: [token]
      fromCookies: [session]
      timeout: 5s
  status: {{}}
"
    );
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    let p = &c.request_authn.providers()[0];
    assert_eq!(p.issuer, "https://example.com");
    assert!(p.forward);
    assert_eq!(
        p.locations,
        vec![
            Location::Header {
                name: "x-jwt".into(),
                prefix: "Bearer ".into()
            },
            Location::Param("token".into()),
            Location::Cookie("session".into()),
        ]
    );
    assert!(c.summary.contains("foo/httpbin"), "{}", c.summary);
}

#[test]
fn json_is_accepted_and_snake_case_names_too() {
    let jwks = serde_json::to_string(JWKS).unwrap();
    let text = format!(
        r#"{{"workload":{{"namespace":"foo"}},"policies":[{{"apiVersion":"security.istio.io/v1","kind":"RequestAuthentication","metadata":{{"name":"a","namespace":"foo"}},"spec":{{"jwt_rules":[{{"issuer":"i","jwks":{jwks},"forward_original_token":true}}]}}}}]}}"#
    );
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    assert!(c.request_authn.providers()[0].forward);
}

#[test]
fn defaults_when_no_location_is_set() {
    let c = FilterConfig::parse(config(&ra("a", "foo", &rule("i"))).as_bytes()).unwrap();
    assert_eq!(
        c.request_authn.providers()[0].locations,
        Location::defaults()
    );
    assert!(!c.request_authn.providers()[0].forward);
}

#[test]
fn policies_as_one_string_of_yaml_documents_and_lists() {
    let docs = format!(
        "---\n{}\n---\napiVersion: v1\nkind: List\nitems:\n{}\n",
        ra("a", "foo", &rule("b-issuer"))
            .trim_start_matches("- ")
            .replace("\n  ", "\n"),
        ra("c", "istio-system", &rule("a-issuer"))
    );
    let text = format!(
        "workload: {{namespace: foo}}\npolicies: |\n{}",
        indent(&docs, "  ")
    );
    // Rules of every applicable policy, ordered by issuer as istiod orders them.
    assert_eq!(issuers(&text), ["a-issuer", "b-issuer"]);
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

#[test]
fn scoping_by_namespace_root_namespace_and_selector() {
    let sel = |app: &str| format!("    selector: {{matchLabels: {{app: {app}}}}}\n");
    let policies = [
        ra("ns-wide", "foo", &rule("1-ns-wide")),
        ra(
            "mine",
            "foo",
            &format!("{}{}", sel("httpbin"), rule("2-mine")),
        ),
        ra(
            "other-app",
            "foo",
            &format!("{}{}", sel("other"), rule("3-other-app")),
        ),
        ra("other-ns", "bar", &rule("4-other-ns")),
        ra("mesh", "istio-system", &rule("5-mesh")),
        ra(
            "mesh-mine",
            "istio-system",
            &format!("{}{}", sel("httpbin"), rule("6-mesh-mine")),
        ),
        ra(
            "mesh-other",
            "istio-system",
            &format!("{}{}", sel("other"), rule("7-mesh-other")),
        ),
    ]
    .concat();
    assert_eq!(
        issuers(&config(&policies)),
        ["1-ns-wide", "2-mine", "5-mesh", "6-mesh-mine"]
    );
    let custom_root = format!(
        "rootNamespace: mesh-root\n{}",
        config(&policies.replace("istio-system", "mesh-root"))
    );
    assert_eq!(
        issuers(&custom_root),
        ["1-ns-wide", "2-mine", "5-mesh", "6-mesh-mine"]
    );
}

#[test]
fn bad_configs_each_name_their_field() {
    let cases: Vec<(String, &str)> = vec![
        ("workload: {namespace: foo}\npolicies: [\n".into(), "plugin configuration is not valid YAML or JSON"),
        ("- just a list".into(), "plugin configuration is not valid YAML or JSON: expected a mapping"),
        ("policies: []".into(), "workload: required"),
        ("workload: {labels: {a: b}}\npolicies: []".into(), "workload.namespace: required"),
        ("workload: {namespace: foo}\npolices: []".into(), "polices: unknown field `polices`, expected one of `workload`, `rootNamespace`, `policies`"),
        ("workload: {namespace: foo}".into(), "policies: required"),
        (config(&ra("a", "foo", "    jwtRulez: []\n")), "policies[0].spec.jwtRulez: unknown field `jwtRulez`"),
        (
            config(&ra("a", "foo", &format!("{}      forwardOriginalToken: \"yes\"\n", rule("i")))),
            "policies[0].spec.jwtRules[0].forwardOriginalToken: invalid type: string \"yes\", expected a boolean",
        ),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - audiences: [x]\n")),
            "policies[0].spec.jwtRules[0].issuer: empty, and `jwksUri` is not set",
        ),
        (
            config(&ra("a", "foo", &format!("    jwtRules:\n    - issuer: ''\n      jwks: '{JWKS}'\n"))),
            "policies[0].spec.jwtRules[0].issuer: empty, and `jwksUri` is not set: Istio requires an issuer or a jwksUri",
        ),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - issuer: i\n      jwks: '{\"keys\": 1}'\n")),
            "policies[0].spec.jwtRules[0].jwks: [keys] in Jwks is not an array",
        ),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - issuer: i\n      jwks: 'nope'\n")),
            "policies[0].spec.jwtRules[0].jwks: Jwks is an invalid JSON",
        ),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - issuer: i\n      jwks: '{\"keys\":[{\"kty\":\"RSA\"}]}'\n")),
            "policies[0].spec.jwtRules[0].jwks: Jwks doesn't have any valid public key (keys[0]: [n] field is missing for a RSA key)",
        ),
        (
            config(&ra("a", "foo", &format!("{}      jwksUri: https://x/jwks\n", rule("i")))),
            "policies[0].spec.jwtRules[0].jwksUri: set together with `jwks`",
        ),
        (
            config(&ra("a", "foo", "    targetRefs: [{kind: Gateway, name: gw}]\n")),
            "policies[0].spec.targetRefs: attaches the policy to a Gateway",
        ),
        (
            config(&ra("a", "foo", &format!("{}      spaceDelimitedClaims: [\"\"]\n", rule("i")))),
            "policies[0].spec.jwtRules[0].spaceDelimitedClaims[0]: must not be empty",
        ),
        (
            config(&ra("a", "foo", &rule("i")).replace("RequestAuthentication", "AuthorizationPolicy")),
            "policies[0].spec.jwtRules: unknown field `jwtRules`",
        ),
        (
            config(&ra("a", "foo", &rule("i")).replace("RequestAuthentication", "Sidecar")),
            "policies[0].kind: unsupported kind `Sidecar`; supported kinds: RequestAuthentication, PeerAuthentication, AuthorizationPolicy",
        ),
        (
            config(&ra("a", "foo", &rule("i")).replace("security.istio.io/v1", "security.istio.io/v1alpha1")),
            "policies[0].apiVersion: `security.istio.io/v1alpha1` is not one of",
        ),
        (
            config(&ra("a", "foo", &rule("i")).replace("namespace: foo}", "}")),
            "policies[0].metadata.namespace: required",
        ),
        (
            config(&ra("a", "foo", &format!("{}      audiences: ['']\n", rule("i")))),
            "policies[0].spec.jwtRules[0].audiences[0]: must not be empty",
        ),
        (
            config(&ra("a", "foo", &format!("{}      fromParams: [t, '']\n", rule("i")))),
            "policies[0].spec.jwtRules[0].fromParams[1]: must not be empty",
        ),
        (
            config(&ra("a", "foo", &format!("{}      fromCookies: ['']\n", rule("i")))),
            "policies[0].spec.jwtRules[0].fromCookies[0]: must not be empty",
        ),
        (
            config(&ra("a", "foo", &format!("{}      timeout: 5m\n", rule("i")))),
            "policies[0].spec.jwtRules[0].timeout: `5m` is not a duration",
        ),
        (
            config(&ra("a", "foo", &format!("{}      presence: ALWAYS\n", rule("i")))),
            "policies[0].spec.jwtRules[0].presence: `ALWAYS` is not OPTIONAL or REQUIRED",
        ),
        (
            config(&ra("a", "foo", &format!("{}      outputClaimToHeaders: [{{header: 'x y', claim: sub}}]\n", rule("i")))),
            "policies[0].spec.jwtRules[0].outputClaimToHeaders[0].header: `x y` must match",
        ),
        (
            config(&ra("a", "foo", &format!("{}      outputClaimToHeaders: [{{header: x-a, claim: sub}}, {{header: X-A, claim: iss}}]\n", rule("i")))),
            "policies[0].spec.jwtRules[0].outputClaimToHeaders[1].header: `X-A` is used twice",
        ),
        (
            config(&ra("a", "foo", &format!("{}      outputClaimToHeaders: [{{header: x-a, claim: ''}}]\n", rule("i")))),
            "policies[0].spec.jwtRules[0].outputClaimToHeaders[0].claim: must not be empty",
        ),
        (
            config(&ra("a", "foo", &format!("{}      outputPayloadToHeader: Authorization\n", rule("i")))),
            "policies[0].spec.jwtRules: `authorization` is both an output header and a token header",
        ),
        (
            config(&ra("a", "foo", &format!("{}      outputPayloadToHeader: 'x:y'\n", rule("i")))),
            "policies[0].spec.jwtRules[0].outputPayloadToHeader: `x:y` is not an HTTP header name",
        ),
        (
            config(&format!("{}  extra: 1\n", ra("a", "foo", &rule("i")))),
            "policies[0].extra: unknown field `extra`",
        ),
        ("workload: {namespace: foo}\npolicies: 7".into(), "policies: expected a list of resources"),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - issuer: i\n      jwksUri: idp/jwks\n")),
            "policies[0].spec.jwtRules[0].jwksUri: `idp/jwks` is not an http:// or https:// URL",
        ),
        (
            config(&ra("a", "foo", "    jwtRules:\n    - issuer: testing@secure.istio.io\n")),
            "policies[0].spec.jwtRules[0].issuer: `testing@secure.istio.io/.well-known/openid-configuration` is not an http:// or https:// URL: with neither `jwks` nor `jwksUri`",
        ),
        (
            format!("{}jwks: {{cacheDuration: 5m}}\n", config(&ra("a", "foo", &rule("i")))),
            "jwks.cacheDuration: `5m` is not a duration",
        ),
        (
            format!("{}jwks: {{retryInitialInterval: 2s, retryMaxInterval: 1s}}\n", config(&ra("a", "foo", &rule("i")))),
            "jwks.retryMaxInterval: shorter than retryInitialInterval",
        ),
        (
            format!("{}jwks: {{clusters: {{'idp:443': ''}}}}\n", config(&ra("a", "foo", &rule("i")))),
            "jwks.clusters.idp:443: the cluster name must not be empty",
        ),
        (
            format!("{}jwks: {{cacheTime: 5s}}\n", config(&ra("a", "foo", &rule("i")))),
            "jwks.cacheTime: unknown field `cacheTime`",
        ),
    ];
    for (text, want) in cases {
        let got = error(&text);
        assert!(
            got.starts_with(want),
            "for\n{text}\nwant a message starting with: {want}\ngot: {got}"
        );
        assert!(
            !got.contains('\n') || got.starts_with("plugin configuration is not valid"),
            "one line: {got}"
        );
    }
}

#[test]
fn remote_key_sets_are_registered_once_per_url() {
    use crate::remote_jwks::SourceKind;
    use crate::request_authn::KeySource;
    let spec = "    jwtRules:\n    - issuer: https://a.example\n      jwksUri: http://127.0.0.1:9/k\n      timeout: 2s\n    - issuer: https://b.example\n      jwksUri: http://127.0.0.1:9/k\n    - issuer: https://c.example/realm/\n";
    let text = format!(
        "{}jwks:\n  clusters: {{'127.0.0.1:9': idp}}\n  cacheDuration: 2s\n  maxStale: 0.5s\n  refetchInterval: 1s\n",
        config(&ra("a", "foo", spec))
    );
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    let r = &c.remote_jwks;
    assert_eq!(r.sources.len(), 2);
    assert_eq!(
        r.sources[0].timeout_ms, 5_000,
        "the longest timeout: the default 5 s"
    );
    assert!(matches!(&r.sources[1].kind, SourceKind::Discovery(u)
        if u.text == "https://c.example/realm/.well-known/openid-configuration"));
    assert_eq!(
        (
            r.settings.cache_duration_ms,
            r.settings.max_stale_ms,
            r.settings.refetch_interval_ms
        ),
        (2_000, 500, 1_000)
    );
    assert_eq!(r.settings.cluster_for(r.sources[0].first_uri()), "idp");
    let sources: Vec<_> = c
        .request_authn
        .providers()
        .iter()
        .map(|p| match p.jwks {
            KeySource::Remote(id) => id.0,
            KeySource::Inline(_) => 99,
        })
        .collect();
    assert_eq!(sources, [0, 0, 1]);
}

#[test]
fn a_bad_policy_is_an_error_even_when_it_does_not_apply() {
    let text = config(&ra(
        "a",
        "elsewhere",
        "    jwtRules:\n    - issuer: i\n      jwks: 'nope'\n",
    ));
    assert!(error(&text).starts_with("policies[0].spec.jwtRules[0].jwks"));
}

#[test]
fn an_output_header_that_is_another_rules_token_header_is_refused() {
    let text = config(&format!(
        "{}{}",
        ra("a", "foo", &rule("i")),
        ra(
            "b",
            "istio-system",
            &format!(
                "{}      outputClaimToHeaders: [{{header: Authorization, claim: sub}}]\n",
                rule("j")
            )
        )
    ));
    assert!(
        error(&text).starts_with("policies[1].spec.jwtRules: `authorization` is both"),
        "{}",
        error(&text)
    );
    // Not applicable to this workload: no conflict.
    let text = config(&format!(
        "{}{}",
        ra("a", "foo", &rule("i")),
        ra(
            "b",
            "bar",
            &format!(
                "{}      outputClaimToHeaders: [{{header: Authorization, claim: sub}}]\n",
                rule("j")
            )
        )
    ));
    assert!(FilterConfig::parse(text.as_bytes()).is_ok());
}

#[test]
fn header_names_outside_the_http_token_grammar_are_refused() {
    // A name Envoy can never look up (RFC 9110 `token`: tchar only; Envoy lower-cases names
    // and keeps pseudo-headers for itself) would leave the rule's tokens unchecked.
    let bad = [
        ("trailing space", "'x-jwt '"),
        ("leading space", "' x-jwt'"),
        ("inner space", "'x jwt'"),
        ("tab", "\"x\\tjwt\""),
        ("colon", "'x:jwt'"),
        ("pseudo-header :path", "':path'"),
        ("pseudo-header :authority", "':authority'"),
        ("slash", "x/jwt"),
        ("quote", "'x\"jwt'"),
        ("non-ASCII", "x-jwté"),
        ("comma", "'x,y'"),
    ];
    type Yaml = fn(&str) -> String;
    let locations: [(&str, Yaml); 3] = [
        ("fromHeaders[0].name", |n| {
            format!("      fromHeaders: [{{name: {n}}}]\n")
        }),
        ("outputPayloadToHeader", |n| {
            format!("      outputPayloadToHeader: {n}\n")
        }),
        ("outputClaimToHeaders[0].header", |n| {
            format!("      outputClaimToHeaders: [{{header: {n}, claim: sub}}]\n")
        }),
    ];
    for (field, yaml) in locations {
        for (what, name) in bad {
            let text = config(&ra("a", "foo", &format!("{}{}", rule("i"), yaml(name))));
            let want = format!("policies[0].spec.jwtRules[0].{field}: ");
            let got = FilterConfig::parse(text.as_bytes()).map(|_| ());
            assert!(
                matches!(&got, Err(e) if e.to_string().starts_with(&want)),
                "{field} {what} ({name}): want an error at {want}, got {got:?}"
            );
        }
    }
    // An empty `fromHeaders` name is refused too (an empty output header means "none").
    assert!(error(&config(&ra(
        "a",
        "foo",
        &format!("{}      fromHeaders: [{{name: ''}}]\n", rule("i"))
    )))
    .starts_with("policies[0].spec.jwtRules[0].fromHeaders[0].name: must not be empty"));
    // Upper case is a token too: Envoy lower-cases header names, and so does the filter.
    let text = config(&ra(
        "a",
        "foo",
        &format!(
            "{}      fromHeaders: [{{name: Authorization, prefix: 'Bearer '}}, {{name: \"X-Tok!#$%&'*+.^_`|~en\"}}]\n      outputPayloadToHeader: X-Payload\n      outputClaimToHeaders: [{{header: X-Sub, claim: sub}}]\n",
            rule("i")
        ),
    ));
    let c = FilterConfig::parse(text.as_bytes()).unwrap();
    let p = &c.request_authn.providers()[0];
    assert_eq!(
        p.locations,
        [
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            },
            Location::Header {
                name: "x-tok!#$%&'*+.^_`|~en".into(),
                prefix: String::new()
            },
        ]
    );
    assert_eq!(
        p.outputs.header_names().collect::<Vec<_>>(),
        ["x-payload", "x-sub"]
    );
}

#[test]
fn workload_fields_left_out_come_from_the_node_metadata() {
    // A RequestAuthentication that applies only to `app: httpbin` in `foo`: whether it is
    // selected shows which namespace and labels the filter used.
    let policy = ra(
        "sel",
        "foo",
        &format!(
            "    selector: {{matchLabels: {{app: httpbin}}}}\n{}",
            rule("i")
        ),
    );
    let node = NodeMetadata {
        namespace: Some(b"foo".to_vec()),
        labels: Some(vec![(b"app".to_vec(), b"httpbin".to_vec())]),
    };
    let no_node = NodeMetadata::default();
    // (what, `workload` text, node metadata, selected or the error's start)
    let cases: &[(&str, &str, &NodeMetadata, Result<bool, &str>)] = &[
        ("no workload: both from the node", "", &node, Ok(true)),
        (
            "namespace only: labels from the node",
            "workload: {namespace: foo}\n",
            &node,
            Ok(true),
        ),
        (
            "labels only: namespace from the node",
            "workload: {labels: {app: httpbin}}\n",
            &node,
            Ok(true),
        ),
        (
            "empty workload: both from the node",
            "workload: {}\n",
            &node,
            Ok(true),
        ),
        (
            "explicit empty labels win",
            "workload: {namespace: foo, labels: {}}\n",
            &node,
            Ok(false),
        ),
        (
            "explicit labels win",
            "workload: {namespace: foo, labels: {app: other}}\n",
            &node,
            Ok(false),
        ),
        (
            "explicit namespace wins",
            "workload: {namespace: bar}\n",
            &node,
            Ok(false),
        ),
        (
            "namespace only, no node labels",
            "workload: {namespace: foo}\n",
            &no_node,
            Ok(false),
        ),
        (
            "labels only, no node namespace",
            "workload: {labels: {app: httpbin}}\n",
            &no_node,
            Err("workload.namespace: required"),
        ),
        (
            "empty namespace",
            "workload: {namespace: ''}\n",
            &node,
            Err("workload.namespace: required"),
        ),
        ("nothing anywhere", "", &no_node, Err("workload: required")),
    ];
    for (what, workload, node, want) in cases {
        let text = format!("{workload}policies:\n{policy}");
        let got = FilterConfig::parse_with_node(text.as_bytes(), node)
            .map(|c| !c.request_authn.providers().is_empty())
            .map_err(|e| e.to_string());
        let ok = match (&got, want) {
            (Ok(g), Ok(w)) => g == w,
            (Err(g), Err(w)) => g.starts_with(w),
            _ => false,
        };
        assert!(ok, "{what}: got {got:?}, want {want:?}");
    }
}
/// A PeerAuthentication in `foo` with this `spec` (flow or block text after `spec:`).
fn pa_doc(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: foo}}\nspec: {spec}\n"
    )
}

#[test]
fn duplicate_keys_are_refused_at_every_depth_with_their_path() {
    // kubectl's strict YAML reader (go-yaml v2 `UnmarshalStrict`) refuses a key given twice in
    // one mapping, so Istio never sees such a resource; last-wins would read `mode` below as
    // PERMISSIVE or DISABLE under what looks like STRICT.
    let list = |docs: &[String]| -> String {
        docs.iter()
            .map(|d| format!("- {}", indent(d, "  ").trim_start()))
            .collect()
    };
    let strict = pa_doc("a", "{mtls: {mode: STRICT}}");
    let ws = "workload: {namespace: foo}\n";
    // (what, config text, the error's start; `Ok(mode)`: accepted with this composed mode)
    let cases: Vec<(&str, String, Result<&str, &str>)> = vec![
        ("no duplicate", format!("{ws}policies:\n{}", list(std::slice::from_ref(&strict))), Ok("STRICT")),
        (
            "mtls.mode twice (YAML flow)",
            format!("{ws}policies:\n{}", list(&[pa_doc("a", "{mtls: {mode: STRICT, mode: PERMISSIVE}}")])),
            Err("policies[0].spec.mtls.mode: "),
        ),
        (
            "mtls.mode twice (YAML block)",
            format!("{ws}policies:\n{}", list(&[pa_doc("a", "\n  mtls:\n    mode: STRICT\n    mode: DISABLE")])),
            Err("policies[0].spec.mtls.mode: "),
        ),
        (
            "mtls.mode twice (JSON)",
            r#"{"workload":{"namespace":"foo"},"policies":[{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"a","namespace":"foo"},"spec":{"mtls":{"mode":"STRICT","mode":"DISABLE"}}}]}"#.into(),
            Err("policies[0].spec.mtls.mode: "),
        ),
        (
            "the same key quoted and plain",
            format!("{ws}policies:\n{}", list(&[pa_doc("a", "{mtls: {mode: STRICT, \"mode\": DISABLE}}")])),
            Err("policies[0].spec.mtls.mode: "),
        ),
        (
            "policies twice at the top (the first list would vanish)",
            format!("{ws}policies:\n{}policies: []\n", list(std::slice::from_ref(&strict))),
            Err("policies: "),
        ),
        ("workload.namespace twice", "workload:\n  namespace: foo\n  namespace: bar\npolicies: []\n".into(), Err("workload.namespace: ")),
        (
            "inside the string of YAML documents",
            format!(
                "{ws}policies: |\n{}",
                indent(&format!("---\n{strict}---\n{}", pa_doc("b", "{mtls: {mode: STRICT}, mtls: {mode: DISABLE}}")), "  ")
            ),
            Err("policies (document 1).spec.mtls: "),
        ),
        (
            "inside a kind: List",
            format!(
                "{ws}policies:\n- apiVersion: v1\n  kind: List\n  items:\n{}",
                indent(&list(&[pa_doc("a", "{mtls: {mode: STRICT}, selector: {matchLabels: {app: a, app: b}}}")]), "  ")
            ),
            Err("policies[0].items[0].spec.selector.matchLabels.app: "),
        ),
        (
            "metadata.namespace twice",
            format!("{ws}policies:\n{}", list(&[strict.replace("namespace: foo}", "namespace: foo, namespace: bar}")])),
            Err("policies[0].metadata.namespace: "),
        ),
        (
            "in the ignored status",
            format!("{ws}policies:\n{}", list(&[format!("{strict}status: {{a: 1, a: 2}}")])),
            Err("policies[0].status.a: "),
        ),
        (
            "portLevelMtls port, number and string",
            format!(
                "{ws}policies:\n{}",
                list(&[pa_doc("a", "{selector: {matchLabels: {app: a}}, portLevelMtls: {8080: {mode: STRICT}, '8080': {mode: DISABLE}}}")])
            ),
            Err("policies[0].spec.portLevelMtls.8080: "),
        ),
        (
            "jwtRules[].issuer twice",
            config(&ra("r", "foo", &format!("{}      issuer: j\n", rule("i")))),
            Err("policies[0].spec.jwtRules[0].issuer: "),
        ),
        (
            "jwks.clusters key twice",
            format!("{ws}policies: []\njwks: {{clusters: {{'idp:443': a, 'idp:443': b}}}}\n"),
            Err("jwks.clusters.idp:443: "),
        ),
        // YAML 1.1 merge keys, as kubectl's strict reader applies them: the merged keys join
        // the mapping, and a key both merged and given (or merged twice) is a duplicate.
        (
            "anchor and alias",
            format!("workload: {{namespace: foo}}\npolicies:\n{}", list(&[pa_doc("a", "{mtls: &m {mode: STRICT}}"), pa_doc("b", "{mtls: *m}")])),
            Ok("STRICT"),
        ),
        (
            "merge key adds keys",
            format!(
                "workload: &w {{namespace: foo}}\npolicies:\n{}",
                list(&[strict.replace("metadata: {name: a, namespace: foo}", "metadata: {<<: *w, name: a}")])
            ),
            Ok("STRICT"),
        ),
        (
            "merge key overlapping a given key",
            format!(
                "workload: {{namespace: foo}}\npolicies:\n{}",
                list(&[pa_doc("a", "{mtls: &m {mode: STRICT}}"), pa_doc("b", "{mtls: {<<: *m, mode: DISABLE}}")])
            ),
            Err("policies[1].spec.mtls.mode: "),
        ),
        (
            "merge key after the given key",
            format!(
                "workload: {{namespace: foo}}\npolicies:\n{}",
                list(&[pa_doc("a", "{mtls: &m {mode: STRICT}}"), pa_doc("b", "{mtls: {mode: DISABLE, <<: *m}}")])
            ),
            Err("policies[1].spec.mtls.mode: "),
        ),
        (
            "merge of a list of mappings that overlap",
            format!(
                "workload: {{namespace: foo}}\npolicies:\n{}",
                list(&[
                    pa_doc("a", "{mtls: &m {mode: STRICT}}"),
                    pa_doc("b", "{mtls: &d {mode: DISABLE}}"),
                    pa_doc("c", "{mtls: {<<: [*m, *d]}}"),
                ])
            ),
            Err("policies[2].spec.mtls.mode: "),
        ),
        (
            "merge of a scalar",
            format!("{ws}policies:\n{}", list(&[pa_doc("a", "{mtls: {<<: STRICT}}")])),
            Err("policies[0].spec.mtls.<<: "),
        ),
    ];
    for (what, text, want) in cases {
        let got = FilterConfig::parse(text.as_bytes())
            .map(|c| c.peer_authn.mode().as_str())
            .map_err(|e| e.to_string());
        let ok = match (&got, &want) {
            (Ok(g), Ok(w)) => g == w,
            (Err(g), Err(w)) => g.starts_with(w) && (g.contains("twice") || w.ends_with("<<: ")),
            _ => false,
        };
        assert!(ok, "{what}: got {got:?}, want {want:?}\n{text}");
    }
    // A field under its camelCase and its proto snake_case name is one field given twice.
    let text = format!(
        "{ws}policies:\n{}",
        list(&[pa_doc(
            "a",
            "{selector: {matchLabels: {a: b}, match_labels: {a: c}}}"
        )])
    );
    assert_eq!(
        error(&text),
        "policies[0].spec.selector: duplicate field `matchLabels`"
    );
}

#[test]
fn the_fuzz_seeds_are_refused_for_the_reason_they_stand_for() {
    // The plugin_config fuzz seeds that exercise refusals: each must fail where its name says,
    // so the fuzzer starts from inputs that reach the duplicate-key and header-name checks.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/plugin_config");
    let cases = [
        (
            "dup-mtls-mode-flow.yaml",
            "policies[0].spec.mtls.mode: `mode` is given twice",
        ),
        (
            "dup-mtls-mode.json",
            "policies[0].spec.mtls.mode: `mode` is given twice",
        ),
        (
            "dup-policies-top.yaml",
            "policies: `policies` is given twice",
        ),
        (
            "dup-in-document-string.yaml",
            "policies (document 1).items[0].metadata.namespace: `namespace` is given twice",
        ),
        (
            "merge-keys.yaml",
            "policies[1].spec.mtls.mode: `mode` is given twice",
        ),
        (
            "header-names.yaml",
            "policies[0].spec.jwtRules[0].outputPayloadToHeader: `x:payload` is not an HTTP header name",
        ),
    ];
    for (file, want) in cases {
        let text = std::fs::read(format!("{dir}/{file}")).unwrap();
        let got = FilterConfig::parse(&text)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(got.starts_with(want), "{file}: {got}");
    }
    for file in ["example.yaml", "two-rules.yaml"] {
        let text = std::fs::read(format!("{dir}/{file}")).unwrap();
        FilterConfig::parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
