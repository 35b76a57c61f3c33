//! Expected values from istio/istio's own tests and sources (cited per test), not from this
//! code: `matcher/string_test.go`, `matcher/header_test.go`, `pkg/config/security/
//! security_test.go`, `tests/integration/security/authz_test.go`.

use super::*;

/// istio/istio `pilot/pkg/security/authz/matcher/string_test.go` `TestStringMatcherWithPrefix`:
/// the Envoy matcher each value becomes.
#[test]
fn string_values_become_exact_prefix_suffix_or_non_empty() {
    let cases: &[(&str, &str, StringMatch)] = &[
        ("*", "abc", StringMatch::NonEmpty),
        (
            "-prefix-*",
            "abc",
            StringMatch::Prefix("abc-prefix-".into()),
        ),
        ("*-suffix", "", StringMatch::Suffix("-suffix".into())),
        (
            "*-suffix",
            "abc",
            StringMatch::PrefixSuffix("abc".into(), "-suffix".into()),
        ),
        (
            "*admin.example",
            "spiffe://cluster.local/ns/foo/sa/",
            StringMatch::PrefixSuffix(
                "spiffe://cluster.local/ns/foo/sa/".into(),
                "admin.example".into(),
            ),
        ),
        ("-exact", "abc", StringMatch::Exact("abc-exact".into())),
        ("*", "", StringMatch::NonEmpty),
    ];
    for (value, prefix, want) in cases {
        assert_eq!(
            &StringMatch::with_prefix(value, prefix),
            want,
            "{value} {prefix}"
        );
    }
}

/// Envoy `StringMatcher` semantics: `.+` needs one character; prefix/suffix/exact compare bytes.
#[test]
fn string_matchers_compare_as_envoy() {
    let m = StringMatch::new;
    assert!(m("*").matches("x"));
    assert!(!m("*").matches(""));
    assert!(m("/api/*").matches("/api/"));
    assert!(m("/api/*").matches("/api/v1"));
    assert!(!m("/api/*").matches("/ap"));
    assert!(m("*.txt").matches("a.txt"));
    assert!(m("*.txt").matches(".txt"));
    assert!(!m("*.txt").matches("a.txtx"));
    assert!(m("GET").matches("GET"));
    assert!(!m("GET").matches("get"), "exact is case-sensitive");
    // `spiffe://.*abc`: the prefix and the suffix may not overlap.
    let p = StringMatch::with_prefix("*/sa/bar", "spiffe://");
    assert!(p.matches("spiffe://cluster.local/ns/foo/sa/bar"));
    assert!(!p.matches("cluster.local/ns/foo/sa/bar"));
    assert!(StringMatch::with_prefix("*b", "ab").matches("abb"));
    assert!(!StringMatch::with_prefix("*b", "ab").matches("ab"));
}

/// istio/istio `matcher/header_test.go`: `*` is `present_match`; `HostMatcher` sets
/// `ignore_case` on prefix, suffix and exact.
#[test]
fn headers_match_presence_and_hosts_ignore_case() {
    let v = |vals: &'static [&'static str]| vals.iter().map(|s| s.as_bytes());
    assert!(
        HeaderMatch::new("*").matches(v(&[""])),
        "present, even empty"
    );
    assert!(!HeaderMatch::new("*").matches(v(&[])), "absent");
    assert!(HeaderMatch::new("abc*").matches(v(&["abcd"])));
    assert!(HeaderMatch::new("*bcd").matches(v(&["abcd"])));
    assert!(!HeaderMatch::new("abc").matches(v(&["ABC"])));
    assert!(HeaderMatch::host("example.com").matches(v(&["EXAMPLE.com"])));
    assert!(HeaderMatch::host("*.example.com").matches(v(&["a.EXAMPLE.COM"])));
    assert!(HeaderMatch::host("example.*").matches(v(&["Example.org"])));
    assert!(
        !HeaderMatch::host("example.com").matches(v(&["example.com:8080"])),
        "a port is part of the host: Istio users list `example.com:*` too"
    );
    assert!(HeaderMatch::host("example.com:*").matches(v(&["example.com:8080"])));
    // Envoy's `getAllOfHeaderAsString`: several values are matched joined by `,`.
    assert!(HeaderMatch::new("a,b").matches(v(&["a", "b"])));
    assert!(!HeaderMatch::new("a").matches(v(&["a", "b"])));
}

/// istio/istio `tests/integration/security/authz_test.go` `TestAuthz_PathTemplating` with
/// `paths: ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"]`.
#[test]
fn path_templates_match_as_istios_integration_test_expects() {
    let paths = ["/allow/admin/{**}", "/foo/{*}/bar/{**}", "/store/{**}/cart"];
    for p in paths {
        assert_eq!(check_path_template(p), Ok(()), "{p}");
    }
    let matchers: Vec<PathMatch> = paths.iter().map(|p| PathMatch::new(p)).collect();
    let allowed = |path: &str| matchers.iter().any(|m| m.matches(path.as_bytes()));
    let cases = [
        ("/allow/admin/", true),
        ("/allow/admin", false),
        ("/allow/user/", false),
        ("/allow/admin?param=value", false),
        ("/allow", false),
        ("/allow/admin/temp", true),
        ("/allow/admin/temp.txt", true),
        ("/allow/admin/foo/temp.txt", true),
        ("/foo/buzz/bar/bat.txt", true),
        ("/foo/buzz/bar/bat.temp.txt", true),
        ("/foo/buzz/bar/bat/fuzz.txt", true),
        ("/foo/bar/bat.txt", false),
        ("/foo//bar/bat.txt", false),
        ("/foo/buzz/bar/bat", true),
        ("/store//cart", true),
        ("/store/cart", false),
        ("/store/foo/cart", true),
        ("/store/foo/bar/cart", true),
    ];
    for (path, want) in cases {
        assert_eq!(allowed(path), want, "{path}");
    }
}

/// Envoy's `PathMatcher` and `uri_template` match the path without query and fragment.
#[test]
fn paths_are_matched_without_the_query_string() {
    let m = PathMatch::new("/admin");
    assert!(m.matches(b"/admin?x=1"));
    assert!(m.matches(b"/admin#frag"));
    assert!(!m.matches(b"/admin/"));
    assert!(PathMatch::new("/admin*").matches(b"/admin/x?y"));
    assert!(PathMatch::new("*.png").matches(b"/a/b.png?v=2"));
    assert!(!PathMatch::new("*.png").matches(b"/a/b.png.txt?x=.png"));
    assert!(PathMatch::new("/{*}/x").matches(b"/a/x?q=1"));
}

/// istio/istio `pkg/config/security/security_test.go` `TestCheckValidPathTemplate`.
#[test]
fn path_templates_are_validated_as_istiod() {
    for ok in [
        "/{*}/foo",
        "/{*}/foo/",
        "/foo/{**}/bar",
        "/foo/bar/{**}",
        "/plain*",
        "*x",
    ] {
        assert_eq!(check_path_template(ok), Ok(()), "{ok}");
    }
    for bad in [
        "/foo/{**}buzz/bar",
        "/{*}/foo/{}/bar",
        "/foo/{*}/bar/*",
        "/foo/{*}/bar/**/buzz",
        "/foo/{buzz}/bar",
        "/{buzz}",
        "/foo/{buzz}/bar/{**}",
        "/foo/{buzz=*}/bar/{**}",
        "/{*}/foo/{buzz=**}/bar",
        "/{*}/foo/{**}bar",
        "/{*}/foo/{*}.txt",
        "/{*}/foo/{temp",
        "/{*}/foo/temp}/bar",
        "/{*}/foo/temp}/*",
        "/{**}/foo/temp/{*}/bar",
        "/{**}/{**}",
        "/{**}/foo/temp/{**}/bar",
        "/{*}/foo/?abc",
    ] {
        assert!(check_path_template(bad).is_err(), "{bad}");
    }
}

/// Go `netip.ParseAddr` / `ParsePrefix` (what `security.ValidateIPs` accepts) and Envoy
/// `CidrRange::isInRange`.
#[test]
fn cidrs_parse_like_go_and_contain_like_envoy() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let c = |s: &str| Cidr::parse(s).unwrap();
    assert!(c("10.1.2.3").contains(ip("10.1.2.3")));
    assert!(!c("10.1.2.3").contains(ip("10.1.2.4")));
    assert!(c("10.1.0.0/16").contains(ip("10.1.255.1")));
    assert!(!c("10.1.0.0/16").contains(ip("10.2.0.1")));
    assert!(
        c("10.1.2.3/16").contains(ip("10.1.9.9")),
        "host bits ignored"
    );
    assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
    assert!(!c("0.0.0.0/0").contains(ip("::1")), "families differ");
    assert!(c("2001:db8::/32").contains(ip("2001:db8:1::1")));
    assert!(c("::/0").contains(ip("::1")));
    assert!(!c("::1").contains(ip("::2")));
    for bad in [
        "",
        "10.1.2",
        "10.1.2.3/33",
        "10.0.0.0/-1",
        "::/129",
        "010.1.2.3",
        "x/8",
        "10.0.0.0/08",
    ] {
        assert!(Cidr::parse(bad).is_err(), "{bad}");
    }
}
