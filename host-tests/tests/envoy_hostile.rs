//! Hostile requests through the real Envoy (two workers) and the built `.wasm`. For each case:
//! the response is the expected one, and the VM is alive afterwards on both workers (a valid
//! token still gets 200 and a forged one 401), and Envoy's wasm stats show no VM failure (the
//! harness's teardown).
//!
//! Expected statuses and bodies are Envoy `jwt_authn`'s (jwt_verify_lib's status strings for
//! what a token carries), or Envoy's own codec limits where a request never reaches a filter
//! (`max_request_headers_kb` 60, `max_request_headers_count` 100); none is taken from the
//! filter's code.

use std::sync::LazyLock;

use host_tests::envoy::{Envoy, Options};
use host_tests::http::{self, Response};
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::{EchoUpstream, StaticServer};
use host_tests::tokens::{self, claims, now, RsaIssuer};
use serde_json::json;

const ISSUER: &str = "https://example.com";
const AUDIENCE: &str = "example_service";
const BAD_FORMAT: &str =
    "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections";
const BAD_PAYLOAD_JSON: &str = "Jwt payload is an invalid JSON";
const ALG_NOT_SUPPORTED: &str = "Jwt header [alg] is not supported";
const NO_KEY: &str = "Jwks doesn't have key to match kid or alg from Jwt";

static RSA: LazyLock<RsaIssuer> = LazyLock::new(|| RsaIssuer::generate("rsa-1"));
/// The attacker's key: in no configured JWKS.
static ATTACKER: LazyLock<RsaIssuer> = LazyLock::new(|| RsaIssuer::generate("attacker"));

fn plugin_config() -> String {
    PluginConfig::new()
        .policy(&Policy::new(
            "httpbin",
            vec![Rule {
                issuer: ISSUER.into(),
                audiences: vec![AUDIENCE],
                jwks: tokens::jwks_json(&[RSA.jwk()]),
                ..Rule::default()
            }],
        ))
        .render()
}

fn valid() -> String {
    RSA.mint(claims(ISSUER, Some(AUDIENCE), 3600))
}

/// The standard claims as JSON text, for tokens signed over hand-written JSON.
fn claims_text(extra: &str) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}{extra}}}"#,
        now() + 3600
    )
}

fn header_text(extra: &str) -> String {
    format!(
        r#"{{"alg":"RS256","typ":"JWT","kid":"{}"{extra}}}"#,
        RSA.kid
    )
}

fn bearer(port: u16, token: &str) -> Response {
    http::get(
        port,
        "/get",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

/// A raw HTTP/1.1 GET with the given header lines (bytes as they are).
fn raw_get(port: u16, path: &[u8], header_lines: &[&[u8]]) -> Response {
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(path);
    req.extend_from_slice(b" HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for line in header_lines {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"connection: close\r\n\r\n");
    http::send_raw(port, &req).unwrap_or_else(|e| panic!("request failed: {e}"))
}

fn expect(case: &str, r: &Response, status: u16, body: Option<&str>) {
    assert_eq!(r.status, status, "{case}: {r:?}");
    if let Some(body) = body {
        assert_eq!(r.body, body, "{case}");
    }
}

/// Both workers still answer correctly: a dozen connections each way (the kernel spreads new
/// connections over the two workers' listen sockets, so missing one worker is a 1-in-2,000
/// event). A dead VM under FAIL_CLOSED answers 503 to everything on its worker.
fn assert_alive(case: &str, envoy: &Envoy, good: &str, forged: &str) {
    for _ in 0..12 {
        expect(
            &format!("{case}: valid token afterwards"),
            &bearer(envoy.port(), good),
            200,
            None,
        );
        expect(
            &format!("{case}: forged token afterwards"),
            &bearer(envoy.port(), forged),
            401,
            Some("Jwt verification fails"),
        );
    }
}

#[test]
fn hostile_requests_get_the_right_answer_and_the_vm_survives() {
    let upstream = EchoUpstream::start();
    let options = Options {
        concurrency: 2,
        ..Options::default()
    };
    let envoy = Envoy::start_with(&plugin_config(), upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e:?}"));
    let port = envoy.port();
    let active_vms = envoy
        .stat("wasm.envoy.wasm.runtime.v8.active")
        .expect("Envoy reports its active wasm VMs");
    let good = valid();
    let forged = tokens::corrupt_signature(&good);
    let jku_server = StaticServer::start(
        "/jwks.json",
        tokens::jwks_json(&[ATTACKER.jwk(), {
            // The attacker also publishes a key under the legitimate kid.
            let mut k = ATTACKER.jwk();
            k["kid"] = json!(RSA.kid);
            k
        }]),
    );
    let jku = format!("http://127.0.0.1:{}/jwks.json", jku_server.port);

    let check = |case: &str, r: Response, status: u16, body: Option<&str>| {
        expect(case, &r, status, body);
        assert_alive(case, &envoy, &good, &forged);
    };

    // Bytes that are not UTF-8 in a token: refused as a bad token, never as "no token".
    check(
        "non-UTF-8 token",
        raw_get(
            port,
            b"/get",
            &[b"authorization: Bearer \xff\xfe.\xfd\xfc.\xfb"],
        ),
        401,
        None,
    );
    // Not UTF-8 in an unrelated header: a valid token still passes.
    let line = format!("authorization: Bearer {good}");
    check(
        "non-UTF-8 unrelated header",
        raw_get(port, b"/get", &[b"x-junk: \xff\xfe\x80", line.as_bytes()]),
        200,
        None,
    );
    // A header name that is not a token character: Envoy's codec refuses it (400).
    check(
        "non-UTF-8 header name",
        raw_get(port, b"/get", &[b"x-\xff: a", line.as_bytes()]),
        400,
        None,
    );
    // A 53 KiB valid token (under Envoy's 60 KiB header limit) verifies.
    let big = RSA.mint(json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600, "pad": "x".repeat(40_000),
    }));
    check("53 KiB valid token", bearer(port, &big), 200, None);
    // Over Envoy's limit: 431 from the codec, before any filter.
    let huge = RSA.mint(json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600, "pad": "x".repeat(60_000),
    }));
    check("61 KiB token", bearer(port, &huge), 431, None);
    // 1,000 Authorization headers: over Envoy's header count limit.
    let many: Vec<&[u8]> = std::iter::repeat_n(line.as_bytes(), 1000).collect();
    check(
        "1,000 Authorization headers",
        raw_get(port, b"/get", &many),
        431,
        None,
    );
    // 50 Authorization headers: Envoy joins them with commas, which is no longer one token.
    let fifty: Vec<&[u8]> = std::iter::repeat_n(line.as_bytes(), 50).collect();
    check(
        "50 Authorization headers",
        raw_get(port, b"/get", &fifty),
        401,
        Some(BAD_FORMAT),
    );
    // 10,000 query parameters and a valid token in the query: the token goes, the rest stays.
    // 4 bytes each, so the request line stays under Envoy's 60 KiB header limit.
    let params = "a=1&".repeat(10_000);
    let r = http::get(port, &format!("/get?{params}access_token={good}"), &[]);
    let seen = r.json()["path"].as_str().unwrap().to_owned();
    assert!(!seen.contains("access_token"), "token left in {seen:.200}");
    assert_eq!(seen.matches('&').count(), 9_999, "parameters lost");
    check("10,000 query parameters, valid token", r, 200, None);
    let r = http::get(port, &format!("/get?{params}access_token={forged}"), &[]);
    check(
        "10,000 query parameters, forged token",
        r,
        401,
        Some("Jwt verification fails"),
    );
    // Thousands of dots.
    check(
        "5,000 dots",
        bearer(port, &"a.".repeat(5_000)),
        401,
        Some(BAD_FORMAT),
    );
    // JSON nested 10,000 deep in the payload of a properly signed token.
    let deep = format!(
        "{},\"deep\":{}1{}}}",
        &claims_text("")[..claims_text("").len() - 1],
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    check(
        "payload nested 10,000 deep",
        bearer(port, &RSA.sign_raw(&header_text(""), &deep)),
        401,
        Some(BAD_PAYLOAD_JSON),
    );
    let deep_header = format!(
        "{},\"x\":{}1{}}}",
        &header_text("")[..header_text("").len() - 1],
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    check(
        "header nested 10,000 deep",
        bearer(port, &RSA.sign_raw(&deep_header, &claims_text(""))),
        401,
        Some("Jwt header is an invalid JSON"),
    );
    // Huge and negative numbers in `exp`.
    for exp in ["99999999999999999999999", "1e400", "-1"] {
        let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp}}}"#);
        let r = bearer(port, &RSA.sign_raw(&header_text(""), &payload));
        assert_eq!(r.status, 401, "exp {exp}: {r:?}");
        assert!(
            r.body.starts_with("Jwt payload"),
            "exp {exp}: refused for the payload, got {r:?}"
        );
        check(&format!("exp {exp}"), r, 401, None);
    }
    // Duplicate keys: refused outright, so no check can read one value and an output another.
    let dup = format!(
        r#"{{"iss":"https://evil.example","iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}}}"#,
        now() + 3600
    );
    check(
        "duplicate iss",
        bearer(port, &RSA.sign_raw(&header_text(""), &dup)),
        401,
        Some(BAD_PAYLOAD_JSON),
    );
    // A look-alike issuer (Cyrillic 'а') is another issuer.
    let lookalike = RSA.mint(claims("https://exаmple.com", Some(AUDIENCE), 3600));
    check(
        "look-alike iss",
        bearer(port, &lookalike),
        401,
        Some("Jwt issuer is not configured"),
    );
    // A kid with path characters selects nothing and reads nothing.
    let traversal = RSA.mint_with_kid(
        Some("../../../../etc/passwd"),
        claims(ISSUER, Some(AUDIENCE), 3600),
    );
    check(
        "kid with path characters",
        bearer(port, &traversal),
        401,
        Some(NO_KEY),
    );
    // `alg` is case-sensitive.
    for alg in ["rs256", "Rs256", "RS256 ", "none", "NONE", ""] {
        let header = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, RSA.kid);
        let r = bearer(port, &RSA.sign_raw(&header, &claims_text("")));
        check(&format!("alg {alg:?}"), r, 401, Some(ALG_NOT_SUPPORTED));
    }
    // `crit` is ignored, as jwt_verify_lib ignores it: the signature still covers exactly the
    // header and payload sent (documented in the README's security section).
    check(
        "crit header",
        bearer(
            port,
            &RSA.sign_raw(&header_text(r#","crit":["exp"]"#), &claims_text("")),
        ),
        200,
        None,
    );
    // `jku` / `x5u` are never followed: the attacker's key set is not fetched, and a token
    // signed with its key fails whatever kid it claims.
    for (member, kid) in [("jku", "attacker"), ("x5u", "attacker"), ("jku", "rsa-1")] {
        let header = format!(r#"{{"alg":"RS256","kid":"{kid}","{member}":"{jku}"}}"#);
        let token = ATTACKER.sign_raw(&header, &claims_text(""));
        let want = if kid == "attacker" {
            NO_KEY
        } else {
            "Jwt verification fails"
        };
        check(
            &format!("{member} with kid {kid}"),
            bearer(port, &token),
            401,
            Some(want),
        );
    }
    let legit_with_jku = RSA.sign_raw(
        &header_text(&format!(r#","jku":"{jku}","x5u":"{jku}""#)),
        &claims_text(""),
    );
    check(
        "valid token carrying jku",
        bearer(port, &legit_with_jku),
        200,
        None,
    );
    assert_eq!(jku_server.request_count(), 0, "jku/x5u was followed");

    // No VM was replaced on either worker (that none failed, the harness's teardown checks).
    assert_eq!(
        envoy.stat("wasm.envoy.wasm.runtime.v8.active"),
        Some(active_vms),
        "the number of live VMs changed"
    );
}
