//! RequestAuthentication through the real Envoy and the real `.wasm`: one Envoy per policy
//! configuration, a table of requests per Envoy. Tokens are minted here, independently of the
//! filter; expected statuses, bodies and headers are Envoy `jwt_authn`'s (as Istio configures
//! it), never values taken from the filter's code.

use std::sync::LazyLock;

use host_tests::envoy::Envoy;
use host_tests::http::{self, Response};
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::EchoUpstream;
use host_tests::tokens::{self, claims, now, EcIssuer, RsaIssuer};
use serde_json::{json, Value};

const ISSUER: &str = "https://example.com";
const AUDIENCE: &str = "example_service";
const MSG_EXPIRED: &str = "Jwt is expired";
const MSG_NOT_YET_VALID: &str = "Jwt not yet valid";
const MSG_BAD_SIGNATURE: &str = "Jwt verification fails";
const MSG_UNKNOWN_ISSUER: &str = "Jwt issuer is not configured";
const MSG_AUDIENCE: &str = "Audiences in Jwt are not allowed";
const MSG_BAD_FORMAT: &str =
    "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
const MSG_ALG: &str = "Jwt header [alg] is not supported";
const MSG_NO_KID: &str = "Jwks doesn't have key to match kid or alg from Jwt";

static RSA: LazyLock<RsaIssuer> = LazyLock::new(|| RsaIssuer::generate("rsa-1"));
static EC: LazyLock<EcIssuer> = LazyLock::new(|| EcIssuer::generate("ec-1"));
/// A key that is in no JWKS.
static STRANGER: LazyLock<RsaIssuer> = LazyLock::new(|| RsaIssuer::generate("rsa-unknown"));

fn main_jwks() -> String {
    tokens::jwks_json(&[RSA.jwk(), EC.jwk()])
}

/// One `jwtRules` entry with inline keys; `extra` fields as the resource has them.
fn rule(
    issuer: &str,
    audiences: &[&'static str],
    jwks: &str,
    extra: &[(&'static str, Value)],
) -> Rule {
    Rule {
        issuer: issuer.into(),
        audiences: audiences.to_vec(),
        jwks: jwks.to_owned(),
        extra: extra.to_vec(),
        ..Rule::default()
    }
}

/// One RequestAuthentication; `selector` is its `matchLabels`.
fn policy(
    name: &'static str,
    namespace: &'static str,
    selector: Option<&[(&'static str, &'static str)]>,
    rules: &[Rule],
) -> Policy {
    Policy {
        name,
        namespace,
        selector: selector.map(<[_]>::to_vec),
        rules: rules.to_vec(),
    }
}

/// The plugin configuration for workload foo/app=httpbin,version=v1 with these policies.
fn plugin_config(policies: &[Policy]) -> String {
    PluginConfig::new()
        .workload("foo", &[("app", "httpbin"), ("version", "v1")])
        .policies(policies)
        .render()
}

/// The default policy: foo/httpbin, one rule for ISSUER/AUDIENCE with the RSA and EC keys.
fn default_policy_config() -> String {
    plugin_config(&[policy(
        "httpbin",
        "foo",
        Some(&[("app", "httpbin")]),
        &[rule(ISSUER, &[AUDIENCE], &main_jwks(), &[])],
    )])
}

fn start(config: &str, upstream: &EchoUpstream) -> Envoy {
    Envoy::start(config, upstream.port).unwrap_or_else(|e| panic!("Envoy did not start: {e}"))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The headers the upstream received, from the echo body.
fn upstream_headers(r: &Response) -> Vec<(String, String)> {
    r.json()["headers"]
        .as_array()
        .unwrap_or_else(|| panic!("not an echo response: {r:?}"))
        .iter()
        .map(|h| {
            (
                h[0].as_str().unwrap().to_owned(),
                h[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn upstream_header_all(r: &Response, name: &str) -> Vec<String> {
    upstream_headers(r)
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect()
}

fn upstream_path(r: &Response) -> String {
    r.json()["path"].as_str().unwrap().to_owned()
}

/// A check on a response that came from the upstream.
type UpstreamCheck = Box<dyn Fn(&Response) -> Result<(), String>>;

/// What a case expects.
enum Want {
    /// 200 from the upstream, plus a check on what the upstream received.
    Pass(UpstreamCheck),
    /// A local reply: status, exact body, exact `www-authenticate`.
    Reject {
        status: u16,
        body: &'static str,
        realm_path: &'static str,
    },
}

struct Case {
    name: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    want: Want,
}

fn pass(check: impl Fn(&Response) -> Result<(), String> + 'static) -> Want {
    Want::Pass(Box::new(check))
}

fn passes() -> Want {
    pass(|_| Ok(()))
}

fn reject(status: u16, body: &'static str, realm_path: &'static str) -> Want {
    Want::Reject {
        status,
        body,
        realm_path,
    }
}

fn case(name: &'static str, path: &str, headers: Vec<(&'static str, String)>, want: Want) -> Case {
    Case {
        name,
        path: path.to_owned(),
        headers,
        want,
    }
}

/// Sends every case, checks every one, then fails listing all the mismatches at once.
/// Rejected requests must not reach the upstream.
fn run_cases(envoy: &Envoy, upstream: &EchoUpstream, cases: &[Case]) {
    let port = envoy.port();
    let mut failures = Vec::new();
    for c in cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let before = upstream.request_count();
        let r = http::get(port, &c.path, &headers);
        let reached = upstream.request_count() - before;
        let problem = match &c.want {
            Want::Pass(check) => {
                if r.status != 200 || reached != 1 {
                    Err(format!(
                        "want 200 from upstream, got {} (upstream saw {reached} requests)",
                        r.status
                    ))
                } else {
                    check(&r)
                }
            }
            Want::Reject {
                status,
                body,
                realm_path,
            } => {
                let want_auth = format!(
                    "Bearer realm=\"http://127.0.0.1:{port}{realm_path}\", error=\"invalid_token\""
                );
                let got_auth = r.header_all("www-authenticate");
                if r.status != *status || r.body != *body {
                    Err(format!("want {status} {body:?}"))
                } else if got_auth != [want_auth.as_str()] {
                    Err(format!("want www-authenticate [{want_auth:?}]"))
                } else if reached != 0 {
                    Err(format!(
                        "a rejected request reached the upstream {reached} times"
                    ))
                } else {
                    Ok(())
                }
            }
        };
        if let Err(why) = problem {
            failures.push(format!(
                "case {:?}: GET {} with {:?}: {why}\n  got {} {:?} headers {:?}",
                c.name, c.path, c.headers, r.status, r.body, r.headers
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn no_authorization_upstream(r: &Response) -> Result<(), String> {
    let auth = upstream_header_all(r, "authorization");
    if auth.is_empty() {
        Ok(())
    } else {
        Err(format!("upstream saw authorization {auth:?}"))
    }
}

#[test]
fn one_rule_rs256_and_es256_table() {
    let upstream = EchoUpstream::start();
    let envoy = start(&default_policy_config(), &upstream);

    let valid = RSA.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let valid_ec = EC.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let expired = RSA.mint(claims(ISSUER, Some(AUDIENCE), -3600));
    let t = now();
    let mut c = claims(ISSUER, Some(AUDIENCE), 7200);
    c["nbf"] = json!(t + 3600);
    let not_yet = RSA.mint(c);
    // Within the 60 s clock skew on both ends.
    let mut c = claims(ISSUER, Some(AUDIENCE), 7200);
    c["nbf"] = json!(t + 30);
    let nbf_in_skew = RSA.mint(c);
    let exp_in_skew = RSA.mint(claims(ISSUER, Some(AUDIENCE), -30));
    let ec_expired = EC.mint(claims(ISSUER, Some(AUDIENCE), -3600));
    let bad_sig = tokens::corrupt_signature(&valid);
    let bad_sig_ec = tokens::corrupt_signature(&valid_ec);
    let other_issuer = RSA.mint(claims("https://other.example.com", Some(AUDIENCE), 600));
    let wrong_aud = RSA.mint(claims(ISSUER, Some("other_service"), 600));
    let mut c = claims(ISSUER, None, 600);
    c["aud"] = json!(["a", AUDIENCE]);
    let aud_list = RSA.mint(c);
    let no_aud = RSA.mint(claims(ISSUER, None, 600));
    let alg_none = tokens::alg_none_with_signature(&claims(ISSUER, Some(AUDIENCE), 600));
    let alg_none_unsigned = tokens::alg_none(&claims(ISSUER, Some(AUDIENCE), 600));
    let unknown_kid = STRANGER.mint(claims(ISSUER, Some(AUDIENCE), 600));

    let valid_for_lower = valid.clone();
    let cases = vec![
        case("no token", "/get", vec![], passes()),
        case(
            "valid RS256: authorization removed upstream",
            "/get",
            vec![("Authorization", bearer(&valid))],
            pass(move |r| {
                no_authorization_upstream(r)?;
                // Nothing else is lost: the path arrives as sent.
                let path = upstream_path(r);
                (path == "/get")
                    .then_some(())
                    .ok_or(format!("upstream path {path:?}"))
            }),
        ),
        case(
            "valid ES256",
            "/get",
            vec![("Authorization", bearer(&valid_ec))],
            pass(no_authorization_upstream),
        ),
        case(
            "aud list containing the audience",
            "/get",
            vec![("Authorization", bearer(&aud_list))],
            passes(),
        ),
        case(
            "nbf 30 s ahead is within the skew",
            "/get",
            vec![("Authorization", bearer(&nbf_in_skew))],
            passes(),
        ),
        case(
            "exp 30 s ago is within the skew",
            "/get",
            vec![("Authorization", bearer(&exp_in_skew))],
            passes(),
        ),
        case(
            "expired",
            "/expired?x=1",
            vec![("Authorization", bearer(&expired))],
            reject(401, MSG_EXPIRED, "/expired"),
        ),
        case(
            "expired ES256",
            "/ec",
            vec![("Authorization", bearer(&ec_expired))],
            reject(401, MSG_EXPIRED, "/ec"),
        ),
        case(
            "nbf in the future",
            "/nbf",
            vec![("Authorization", bearer(&not_yet))],
            reject(401, MSG_NOT_YET_VALID, "/nbf"),
        ),
        case(
            "bad RS256 signature",
            "/sig",
            vec![("Authorization", bearer(&bad_sig))],
            reject(401, MSG_BAD_SIGNATURE, "/sig"),
        ),
        case(
            "bad ES256 signature",
            "/sig",
            vec![("Authorization", bearer(&bad_sig_ec))],
            reject(401, MSG_BAD_SIGNATURE, "/sig"),
        ),
        case(
            "other issuer",
            "/iss",
            vec![("Authorization", bearer(&other_issuer))],
            reject(401, MSG_UNKNOWN_ISSUER, "/iss"),
        ),
        case(
            "wrong audience",
            "/aud",
            vec![("Authorization", bearer(&wrong_aud))],
            reject(403, MSG_AUDIENCE, "/aud"),
        ),
        case(
            "missing aud while audiences are configured",
            "/aud",
            vec![("Authorization", bearer(&no_aud))],
            reject(403, MSG_AUDIENCE, "/aud"),
        ),
        case(
            "opaque token",
            "/opaque",
            vec![("Authorization", "Bearer notajwt".to_owned())],
            reject(401, MSG_BAD_FORMAT, "/opaque"),
        ),
        case(
            "alg none",
            "/none",
            vec![("Authorization", bearer(&alg_none))],
            reject(401, MSG_ALG, "/none"),
        ),
        case(
            // Envoy splits on '.' skipping empty parts: two sections, so a format error.
            "alg none with an empty signature segment",
            "/none",
            vec![("Authorization", bearer(&alg_none_unsigned))],
            reject(401, MSG_BAD_FORMAT, "/none"),
        ),
        case(
            "kid not in the JWKS",
            "/kid",
            vec![("Authorization", bearer(&unknown_kid))],
            reject(401, MSG_NO_KID, "/kid"),
        ),
        case(
            "lowercase bearer prefix is not extracted and reaches upstream untouched",
            "/get",
            vec![("Authorization", format!("bearer {valid}"))],
            pass(move |r| {
                let auth = upstream_header_all(r, "authorization");
                let want = vec![format!("bearer {valid_for_lower}")];
                (auth == want)
                    .then_some(())
                    .ok_or(format!("upstream authorization {auth:?}, want {want:?}"))
            }),
        ),
        case(
            "valid token in ?access_token= is removed, other params kept",
            &format!("/q?a=1&access_token={valid}&b=x%2Fy&c="),
            vec![],
            pass(move |r| {
                let path = upstream_path(r);
                (path == "/q?a=1&b=x%2Fy&c=")
                    .then_some(())
                    .ok_or(format!("upstream path {path:?}"))
            }),
        ),
        case(
            "valid token as the only query param",
            &format!("/only?access_token={valid}"),
            vec![],
            pass(|r| {
                let path = upstream_path(r);
                (path == "/only" || path == "/only?")
                    .then_some(())
                    .ok_or(format!("upstream path {path:?}"))
            }),
        ),
        case(
            "expired token in ?access_token=: realm without the query",
            &format!("/realm/path?x=1&access_token={expired}&y=2"),
            vec![],
            reject(401, MSG_EXPIRED, "/realm/path"),
        ),
        case(
            "bad token in ?access_token=",
            "/qbad?access_token=notajwt",
            vec![],
            reject(401, MSG_BAD_FORMAT, "/qbad"),
        ),
    ];
    run_cases(&envoy, &upstream, &cases);
}

#[test]
fn two_issuers_forwarding_and_custom_header() {
    const ISSUER_B: &str = "https://issuer-b.example.com";
    const ISSUER_C: &str = "https://issuer-c.example.com";
    let upstream = EchoUpstream::start();
    let config = plugin_config(&[policy(
        "httpbin",
        "foo",
        Some(&[("app", "httpbin")]),
        &[
            // Forwards the token.
            rule(
                ISSUER,
                &[AUDIENCE],
                &tokens::jwks_json(&[RSA.jwk()]),
                &[("forwardOriginalToken", json!(true))],
            ),
            // Default: the token is removed.
            rule(ISSUER_B, &[], &tokens::jwks_json(&[EC.jwk()]), &[]),
            // Reads x-jwt only.
            rule(
                ISSUER_C,
                &[],
                &tokens::jwks_json(&[STRANGER.jwk()]),
                &[(
                    "fromHeaders",
                    json!([{"name": "x-jwt", "prefix": "Bearer "}]),
                )],
            ),
        ],
    )]);
    let envoy = start(&config, &upstream);

    let token_a = RSA.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let token_b = EC.mint(claims(ISSUER_B, None, 600));
    let token_c = STRANGER.mint(claims(ISSUER_C, None, 600));
    let expired_b = EC.mint(claims(ISSUER_B, None, -3600));
    let unknown = RSA.mint(claims("https://nobody.example.com", Some(AUDIENCE), 600));

    let want_a = bearer(&token_a);
    let cases = vec![
        case("no token", "/", vec![], passes()),
        case(
            "issuer A, forwardOriginalToken: true: authorization reaches upstream",
            "/a",
            vec![("Authorization", bearer(&token_a))],
            pass(move |r| {
                let auth = upstream_header_all(r, "authorization");
                (auth == [want_a.clone()])
                    .then_some(())
                    .ok_or(format!("upstream authorization {auth:?}"))
            }),
        ),
        case(
            "issuer B, default forwarding: authorization removed",
            "/b",
            vec![("Authorization", bearer(&token_b))],
            pass(no_authorization_upstream),
        ),
        case(
            "issuer B expired",
            "/b",
            vec![("Authorization", bearer(&expired_b))],
            reject(401, MSG_EXPIRED, "/b"),
        ),
        case(
            "unknown issuer",
            "/u",
            vec![("Authorization", bearer(&unknown))],
            reject(401, MSG_UNKNOWN_ISSUER, "/u"),
        ),
        case(
            "issuer C in x-jwt: passes, x-jwt removed",
            "/c",
            vec![("x-jwt", bearer(&token_c))],
            pass(|r| {
                let got = upstream_header_all(r, "x-jwt");
                got.is_empty()
                    .then_some(())
                    .ok_or(format!("upstream saw x-jwt {got:?}"))
            }),
        ),
        case(
            "bad token in x-jwt",
            "/c",
            vec![("x-jwt", "Bearer notajwt".to_owned())],
            reject(401, MSG_BAD_FORMAT, "/c"),
        ),
    ];
    run_cases(&envoy, &upstream, &cases);
}

#[test]
fn policies_that_do_not_select_the_workload_are_ignored() {
    let upstream = EchoUpstream::start();
    let jwks = main_jwks();
    let config = plugin_config(&[
        // Same namespace, selector that does not match.
        policy(
            "other-app",
            "foo",
            Some(&[("app", "other")]),
            &[rule(ISSUER, &[AUDIENCE], &jwks, &[])],
        ),
        // Selector is a superset of the workload's labels.
        policy(
            "more-labels",
            "foo",
            Some(&[("app", "httpbin"), ("tier", "gold")]),
            &[rule(ISSUER, &[AUDIENCE], &jwks, &[])],
        ),
        // Another namespace, not the root one: no selector, still not ours.
        policy(
            "bar-wide",
            "bar",
            None,
            &[rule(ISSUER, &[AUDIENCE], &jwks, &[])],
        ),
    ]);
    let envoy = start(&config, &upstream);
    let expired = RSA.mint(claims(ISSUER, Some(AUDIENCE), -3600));
    let cases = vec![
        case("no token", "/", vec![], passes()),
        case(
            "expired token is not looked at: passes untouched",
            "/",
            vec![("Authorization", bearer(&expired))],
            pass(move |r| {
                let auth = upstream_header_all(r, "authorization");
                (auth.len() == 1)
                    .then_some(())
                    .ok_or(format!("upstream authorization {auth:?}"))
            }),
        ),
        case(
            "opaque token passes",
            "/",
            vec![("Authorization", "Bearer notajwt".to_owned())],
            passes(),
        ),
        case(
            "expired token in the query passes, query untouched",
            &format!("/q?access_token={expired}"),
            vec![],
            pass(|r| {
                let path = upstream_path(r);
                path.contains("access_token=")
                    .then_some(())
                    .ok_or(format!("upstream path {path:?}"))
            }),
        ),
    ];
    run_cases(&envoy, &upstream, &cases);
}

#[test]
fn root_namespace_policy_without_selector_applies() {
    let upstream = EchoUpstream::start();
    let config = plugin_config(&[policy(
        "mesh-wide",
        "istio-system",
        None,
        &[rule(ISSUER, &[AUDIENCE], &main_jwks(), &[])],
    )]);
    let envoy = start(&config, &upstream);
    let valid = RSA.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let expired = RSA.mint(claims(ISSUER, Some(AUDIENCE), -3600));
    let cases = vec![
        case("no token", "/", vec![], passes()),
        case(
            "valid",
            "/",
            vec![("Authorization", bearer(&valid))],
            pass(no_authorization_upstream),
        ),
        case(
            "expired",
            "/mesh",
            vec![("Authorization", bearer(&expired))],
            reject(401, MSG_EXPIRED, "/mesh"),
        ),
    ];
    run_cases(&envoy, &upstream, &cases);
    // Envoy's own accounting agrees: two requests went upstream, one was answered locally.
    assert_eq!(
        envoy.stat("cluster.upstream.upstream_rq_total"),
        Some(2),
        "{}",
        envoy.stats()
    );
    assert_eq!(envoy.stat("http.ingress.downstream_rq_4xx"), Some(1));
}

/// The filter's lines in Envoy's log (`wasm log mesh-authn mesh-authn: ...`) at `level`.
fn filter_lines(envoy: &Envoy, level: &str) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|l| l.contains("wasm log mesh-authn") && l.contains(&format!("][{level}][")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn logs_version_and_config_once_per_vm_and_nothing_per_request() {
    let upstream = EchoUpstream::start();
    let envoy = start(&default_policy_config(), &upstream);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(host_tests::workspace_root())
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap().trim().to_owned();
    assert_eq!(head.len(), 12, "git rev-parse gave {head:?}");

    let started = filter_lines(&envoy, "info");
    let version_lines: Vec<_> = started.iter().filter(|l| l.ends_with(" started")).collect();
    assert!(
        !version_lines.is_empty(),
        "no version line in:\n{}",
        envoy.log()
    );
    for line in &version_lines {
        assert!(
            line.contains(&format!("(git {head}")),
            "version line without HEAD {head}: {line}"
        );
    }
    let before = filter_lines(&envoy, "info").len()
        + filter_lines(&envoy, "warning").len()
        + filter_lines(&envoy, "error").len();

    let valid = RSA.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let expired = RSA.mint(claims(ISSUER, Some(AUDIENCE), -3600));
    for _ in 0..10 {
        assert_eq!(http::get(envoy.port(), "/", &[]).status, 200);
        assert_eq!(
            http::get(envoy.port(), "/", &[("Authorization", &bearer(&valid))]).status,
            200
        );
        assert_eq!(
            http::get(envoy.port(), "/", &[("Authorization", &bearer(&expired))]).status,
            401
        );
        assert_eq!(
            http::get(envoy.port(), "/", &[("Authorization", "Bearer garbage")]).status,
            401
        );
    }
    let after = filter_lines(&envoy, "info").len()
        + filter_lines(&envoy, "warning").len()
        + filter_lines(&envoy, "error").len();
    assert_eq!(
        after,
        before,
        "the filter logged per request:\n{}",
        envoy.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Cookies as the upstream's parser reads them (issue 14 item 2). Each model below is this
// test's own reading of a common parser's documented behaviour; Python's is the real
// `http.cookies` of the project's virtualenv.

/// `(name, value)` pairs of the `;`-separated segments, each split at its first `=`.
fn segments(cookie: &str) -> Vec<(&str, &str)> {
    cookie
        .split(';')
        .filter_map(|s| s.split_once('=').or(Some((s, ""))))
        .collect()
}

/// Go `net/http` `readCookies`: names and segments trimmed of space, tab, CR, LF; the first
/// cookie of a name wins (`Request.Cookie`).
fn go_reads(cookie: &str, name: &str) -> Option<String> {
    let ws: &[char] = &[' ', '\t', '\r', '\n'];
    segments(cookie)
        .into_iter()
        .find(|(n, _)| n.trim_matches(ws) == name)
        .map(|(_, v)| v.trim_matches(ws).trim_matches('"').to_owned())
}

/// Node `cookie` `parse`: segments with `=`, names trimmed of space and tab, the first wins.
fn node_reads(cookie: &str, name: &str) -> Option<String> {
    cookie
        .split(';')
        .filter_map(|s| s.split_once('='))
        .find(|(n, _)| n.trim_matches([' ', '\t']) == name)
        .map(|(_, v)| v.trim_matches([' ', '\t']).trim_matches('"').to_owned())
}

/// `%XY` decoded; a malformed escape kept as it is.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// PHP `$_COOKIE`: the name percent-decoded (`+` a space), cut at NUL, leading whitespace
/// skipped, `[` opening an array under the part before it, `.` and a space read as `_`; the
/// first wins.
fn php_reads(cookie: &str, name: &str) -> Option<String> {
    segments(cookie).into_iter().find_map(|(n, v)| {
        let decoded = percent_decoded(&n.trim_start().replace('+', " "));
        let decoded = decoded.split('\0').next().unwrap().trim_start_matches(' ');
        let base = decoded.split('[').next().unwrap().replace(['.', ' '], "_");
        (base == name).then(|| v.to_owned())
    })
}

/// ASP.NET Core `Request.Cookies`: names trimmed, compared ignoring case.
fn aspnet_reads(cookie: &str, name: &str) -> Option<String> {
    segments(cookie)
        .into_iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

/// Rack 2 `parse_cookies_header`: split at `;` and `,`, names unescaped, the first wins.
fn rack2_reads(cookie: &str, name: &str) -> Option<String> {
    cookie
        .split([';', ','])
        .filter_map(|s| s.trim_start().split_once('='))
        .find(|(n, _)| percent_decoded(&n.replace('+', " ")) == name)
        .map(|(_, v)| v.to_owned())
}

/// Python `http.cookies.SimpleCookie` (the real one): the last cookie of a name wins.
fn python_reads(cookie: &str, name: &str) -> Option<String> {
    let venv = host_tests::workspace_root().join(".venv/bin/python3");
    let python = if venv.exists() {
        venv
    } else {
        "python3".into()
    };
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, json\nfrom http.cookies import SimpleCookie\nc = SimpleCookie()\n\
             c.load(sys.argv[1])\nprint(json.dumps({k: m.value for k, m in c.items()}))",
            cookie,
        ])
        .output()
        .expect("python3 runs (the project's .venv)");
    assert!(out.status.success(), "python: {out:?}");
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    read[name].as_str().map(str::to_owned)
}

type Reader = fn(&str, &str) -> Option<String>;
const READERS: &[(&str, Reader)] = &[
    ("Go net/http", go_reads),
    ("Node cookie", node_reads),
    ("PHP", php_reads),
    ("ASP.NET Core", aspnet_reads),
    ("Rack 2", rack2_reads),
    ("Python http.cookies", python_reads),
];

#[test]
fn no_upstream_parser_reads_an_unverified_cookie_as_the_configured_name() {
    let good = RSA.mint(claims(ISSUER, Some(AUDIENCE), 600));
    let forged = tokens::corrupt_signature(&RSA.mint(claims(ISSUER, Some(AUDIENCE), 700)));
    let hostile: Vec<Vec<String>> = [
        "session={G}; session ={F}",
        "session={G}; sess%69on={F}",
        "session={G}; SESSION={F}",
        "session={G}; a=1 session={F}",
        "session={G}; a=1,session={F}",
        "session={G}; \tsession={F}",
        "session={G}; session[x]={F}",
        "session={G}; session%00x={F}",
        "session={G}; session+={F}",
        "session={G}; session={F}",
        "{F}=1; session={G}; x=\"a session={F}\"",
    ]
    .iter()
    .map(|c| vec![c.replace("{G}", &good).replace("{F}", &forged)])
    .chain([vec![
        format!("session={good}"),
        format!("session ={forged}"),
    ]])
    .collect();
    let benign: Vec<Vec<String>> = [
        "session={G}",
        "a=1; session={G}; b=2",
        "session={G}; Session={G}",
        "a=1 session={G}",
        "sess%69on={G}; x=1",
    ]
    .iter()
    .map(|c| vec![c.replace("{G}", &good)])
    .collect();

    for forward in [false, true] {
        let upstream = EchoUpstream::start();
        let extra = [
            ("fromCookies", json!(["session"])),
            ("forwardOriginalToken", json!(forward)),
        ];
        let config = plugin_config(&[policy(
            "cookie",
            "foo",
            None,
            &[rule(ISSUER, &[AUDIENCE], &main_jwks(), &extra)],
        )]);
        let envoy = start(&config, &upstream);
        let mut failures = Vec::new();
        for (cookies, must_pass) in hostile
            .iter()
            .map(|c| (c, false))
            .chain(benign.iter().map(|c| (c, true)))
        {
            let headers: Vec<(&str, &str)> =
                cookies.iter().map(|c| ("Cookie", c.as_str())).collect();
            let r = http::get(envoy.port(), "/", &headers);
            match (r.status, must_pass) {
                // Refused: the look-alike is a token that does not verify.
                (401, false) => continue,
                (200, _) => {}
                (s, _) => {
                    failures.push(format!("{cookies:?}: status {s} {:?}", r.body));
                    continue;
                }
            }
            if !must_pass {
                failures.push(format!("{cookies:?}: 200 with an unverified look-alike"));
            }
            let upstream_cookie = upstream_header_all(&r, "cookie").join("; ");
            for (parser, reads) in READERS {
                let read = reads(&upstream_cookie, "session");
                let ok = match &read {
                    None => true,
                    Some(v) => forward && *v == good,
                };
                if !ok {
                    failures.push(format!(
                        "forward {forward}, {cookies:?}: {parser} reads session={read:?} from \
                         the upstream's Cookie {upstream_cookie:?}"
                    ));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
