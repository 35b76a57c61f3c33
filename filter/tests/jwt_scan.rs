//! The token JSON scanner (`json::scan_object`, used by `Jwt::parse`) against the reading it
//! replaced (tests/jwt_oracle: `json::parse_object` into serde_json maps, then the claims):
//! the same documents accepted and refused, the same claims, the same status for each failure.

mod jwt_oracle;

use jwt_oracle::check;
use mesh_authn::jwt::json::{parse_object, scan_object};
use proptest::prelude::*;

const HEADER: &str = r#"{"alg":"RS256"}"#;

/// Each document as the payload (with a good header) and as the header (with an empty payload).
fn check_both_ways(doc: &[u8]) {
    check(HEADER.as_bytes(), doc);
    check(doc, b"{}");
}

/// Hand-written edge cases: duplicates through escapes and at depth, trailing commas, escapes,
/// surrogates, UTF-8, numbers, registered claims of every type, non-objects.
const EDGE_CASES: &[&str] = &[
    // Objects and duplicates.
    "{}",
    " \t\r\n{ } \n",
    r#"{"iss":1,"\u0069ss":2}"#,
    r#"{"iss":"a","\u0069\u0073\u0073":"b"}"#,
    r#"{"a":{"k":1,"\u006b":2}}"#,
    r#"{"a":[{"k":1},{"k":1}]}"#,
    r#"{"a":[{"k":1,"k":1}]}"#,
    r#"{"a":{"b":{"c":{"d":1,"d":2}}}}"#,
    r#"{"a":{"k":1},"b":{"k":1}}"#,
    r#"{"😀":1,"\ud83d\ude00":2}"#,
    r#"{"\ud83d\ude00":1}"#,
    r#"{"\/":1,"/":2}"#,
    r#"{"":1,"":2}"#,
    r#"{"":1}"#,
    r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"a":19}"#,
    r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"s":19}"#,
    // Trailing commas.
    r#"{"a":1,}"#,
    "{\"a\":[1,2 ,] ,\n}",
    r#"{"a":[1,[2,],{"b":[],},],}"#,
    r#"{"a":[,]}"#,
    r#"{"a":[1,,]}"#,
    r#"{"a":[1, ,]}"#,
    r#"{,}"#,
    r#"{"a":1,,}"#,
    r#"{"a":{,}}"#,
    r#"{"a":[],}"#,
    r#"{"a":",}"}"#,
    r#"{"a":1},"#,
    r#"{"a":1,"#,
    r#"{"a":,}"#,
    "{\"a\":[1,\x0c]}",
    "{\"a\":1\x0c}",
    // Strings and escapes.
    r#"{"a":"\"\\\/\b\f\n\r\t"}"#,
    r#"{"a":"\u00e9\u00E9"}"#,
    r#"{"a":"\x"}"#,
    r#"{"a":"\u12"}"#,
    r#"{"a":"\u12G4"}"#,
    r#"{"a":"\ud800"}"#,
    r#"{"a":"\udc00"}"#,
    r#"{"a":"\ud800\u0041"}"#,
    r#"{"a":"\ud800\ud800"}"#,
    r#"{"a":"\ud800\n"}"#,
    r#"{"a":"\ud800x"}"#,
    r#"{"a":"\ud83d\ude00\udc00"}"#,
    r#"{"a":"\ud83d\uDE00"}"#,
    r#"{"a":"\udbff\udfff","b":"\uDBFF\uDFFF"}"#,
    r#"{"a":"\ud800\udc00"}"#,
    r#"{"iss":"\"\\\/\b\f\n\r\t","sub":"\udbff\udfff","kid":"\u0000"}"#,
    "{\"a\":\"\x1f\"}",
    "{\"a\":\"\x00\"}",
    "{\"iss\":\"\x1f\"}",
    "{\"a\":\"tab\there\"}",
    "{\"a\":\"nl\nhere\"}",
    "{\"a\":\"\x7f\"}",
    "{\"a\":\"é\"}",
    r#"{"a":"unterminated}"#,
    r#"{"a":"\"}"#,
    r#"{"a\":1}"#,
    // Literals.
    r#"{"a":true,"b":false,"c":null}"#,
    r#"{"a":tru}"#,
    r#"{"a":nulll}"#,
    r#"{"a":True}"#,
    // Numbers.
    r#"{"a":0,"b":-0,"c":-0.0,"d":1.5e3,"e":1E-3,"f":1e+2}"#,
    r#"{"a":01}"#,
    r#"{"a":-01}"#,
    r#"{"a":00}"#,
    r#"{"a":1.}"#,
    r#"{"a":.5}"#,
    r#"{"a":+1}"#,
    r#"{"a":-}"#,
    r#"{"a":1e}"#,
    r#"{"a":1e+}"#,
    r#"{"a":1.e5}"#,
    r#"{"a":1x}"#,
    r#"{"a":1.5.3}"#,
    r#"{"a":1e400}"#,
    r#"{"a":-1e400}"#,
    r#"{"a":1e-400}"#,
    r#"{"a":1.7976931348623157e308}"#,
    r#"{"a":1.7976931348623159e308}"#,
    r#"{"a":17976931348623157e292}"#,
    r#"{"a":0e999999999999}"#,
    r#"{"a":1e999999999999}"#,
    r#"{"a":1e-999999999999}"#,
    r#"{"a":NaN}"#,
    r#"{"a":Infinity}"#,
    // Registered claims of every type.
    r#"{"iss":"i","sub":"s","aud":"a","iat":1,"nbf":2,"exp":3,"jti":"j"}"#,
    r#"{"iss":"\u0069","sub":"\u00e9","aud":["\u0061",""],"jti":"\ud83d\ude00"}"#,
    r#"{"aud":[]}"#,
    r#"{"aud":["a","b",]}"#,
    r#"{"aud":["a",["b"]]}"#,
    r#"{"aud":["a",null]}"#,
    r#"{"aud":[1]}"#,
    r#"{"aud":{"a":1}}"#,
    r#"{"aud":null}"#,
    r#"{"aud":true}"#,
    r#"{"iss":null,"sub":1}"#,
    r#"{"iss":[],"exp":"1"}"#,
    r#"{"sub":{}}"#,
    r#"{"jti":null}"#,
    r#"{"jti":["a"]}"#,
    r#"{"exp":-0}"#,
    r#"{"exp":-0.0}"#,
    r#"{"exp":-1}"#,
    r#"{"exp":-0.5}"#,
    r#"{"exp":3.99}"#,
    r#"{"exp":1e19}"#,
    r#"{"exp":1.8446744073709552e19}"#,
    r#"{"exp":18446744073709551615}"#,
    r#"{"exp":18446744073709550591}"#,
    r#"{"exp":18446744073709550592}"#,
    r#"{"exp":18446744073709551616}"#,
    r#"{"exp":9007199254740993}"#,
    r#"{"exp":-9223372036854775808}"#,
    r#"{"exp":-9223372036854775809}"#,
    r#"{"exp":123456789012345678901234567890}"#,
    r#"{"exp":1e400}"#,
    r#"{"iat":true,"nbf":"x","exp":[]}"#,
    r#"{"nbf":1e30,"iat":-1}"#,
    r#"{"aud":1,"iss":2}"#,
    r#"{"\u0065xp":5}"#,
    r#"{"x":{"iss":1,"aud":2}}"#,
    r#"{"alg":"RS256","kid":"k"}"#,
    r#"{"alg":"R\u0053256","kid":"\u006b"}"#,
    r#"{"alg":"none"}"#,
    r#"{"alg":["RS256"]}"#,
    r#"{"alg":"RS256","kid":null}"#,
    r#"{"alg":"RS256","kid":["k"]}"#,
    r#"{"alg":"ES256","alg":"ES256"}"#,
    // Not an object, or more than one value.
    "",
    " ",
    "[]",
    "[1]",
    "1",
    "\"s\"",
    "null",
    "{} {}",
    "{} x",
    "{}}",
    "{",
    "}",
    "\u{feff}{}",
];

#[test]
fn edge_cases_agree_with_the_old_reading() {
    for doc in EDGE_CASES {
        check_both_ways(doc.as_bytes());
    }
    // Invalid UTF-8: in a string, in a key, outside strings, truncated sequences, overlong.
    for bad in [
        &b"{\"a\":\"\xff\"}"[..],
        b"{\"\xc3\":1}",
        b"{\"a\":\"\xc3\"}",
        b"{\"a\":\"\xe2\x82\"}",
        b"{\"a\":\"\xc0\xaf\"}",
        b"{\"a\":\"\xed\xa0\x80\"}",
        b"{\"a\":\"\xf4\x90\x80\x80\"}",
        b"{\"a\":\"\xc3\\u00a9\"}",
        b"{\"a\":1\xff}",
        b"\xff{}",
    ] {
        check_both_ways(bad);
    }
}

/// Nesting at and past serde_json's limit, through arrays, objects and the audience.
/// Numbers without an exponent whose integer part is long enough to overflow an `f64`, or
/// nearly.
#[test]
fn long_integers_agree_with_the_old_reading() {
    for digits in [19, 20, 300, 301, 308, 309, 310, 400] {
        for lead in ["1", "9", "-1", "-9"] {
            let n = format!("{lead}{}", "9".repeat(digits - 1));
            check_both_ways(format!(r#"{{"a":{n}}}"#).as_bytes());
            check_both_ways(format!(r#"{{"exp":{n}.5}}"#).as_bytes());
        }
    }
}

/// Objects past the size checked pair by pair (32 keys), with and without a repeated key, at the
/// top and nested.
#[test]
fn large_objects_agree_with_the_old_reading() {
    for n in [31, 32, 33, 34, 100] {
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        for dup in [None, Some(0), Some(n / 2), Some(n - 2)] {
            let mut members: Vec<String> = keys.iter().map(|k| format!("\"{k}\":1")).collect();
            if let Some(i) = dup {
                members.push(format!("\"\\u006b{}\":2", &keys[i][1..]));
            }
            let body = members.join(",");
            check_both_ways(format!("{{{body}}}").as_bytes());
            check_both_ways(format!(r#"{{"x":{{{body}}},"iss":"i"}}"#).as_bytes());
        }
    }
}

#[test]
fn nesting_limit_agrees_with_the_old_reading() {
    for depth in 120..=132 {
        let arrays = format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let objects = format!(r#"{{{}1{}}}"#, r#""a":{"#.repeat(depth), "}".repeat(depth));
        let aud = format!(
            r#"{{"aud":["a",{}{}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        for doc in [arrays, objects, aud] {
            check_both_ways(doc.as_bytes());
        }
    }
}

/// Values that do not depend on the oracle: what the rules say, written out.
#[test]
fn rules_written_out() {
    let accepted = |doc: &str| scan_object(doc.as_bytes(), &[], &mut []).is_some();
    assert!(!accepted(r#"{"iss":1,"\u0069ss":2}"#));
    assert!(!accepted(r#"{"a":[{"k":1,"k":2}]}"#));
    assert!(accepted(r#"{"a":[{"k":1},{"k":2}]}"#));
    assert!(accepted("{\"a\":[1,2 ,] ,\n}"));
    assert!(!accepted(r#"{"a":[,]}"#));
    assert!(!accepted(r#"{"a":[1,,]}"#));
    assert!(!accepted(r#"{"a":"\ud800"}"#));
    assert!(!accepted(r#"{"a":1e400}"#));
    assert!(!accepted(r#"{"a":01}"#));
    assert!(!accepted("[1]"));
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(accepted(&format!(r#"{{"a":{}}}"#, nested(126))));
    assert!(!accepted(&format!(r#"{{"a":{}}}"#, nested(127))));
    // The oracle itself refuses what it must (so that agreeing with it means something).
    assert!(parse_object(br#"{"iss":1,"\u0069ss":2}"#).is_none());
    assert!(parse_object(b"{\"a\":[1,]}").is_some());
}

/// JSON fragments that, strung together, make mostly-broken documents near the edges.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\"iss\"",
    "\"\\u0069ss\"",
    "\"aud\"",
    "\"exp\"",
    "\"sub\"",
    "\"jti\"",
    "\"k\"",
    "\"\\ud800\"",
    "\"\\ud83d\\ude00\"",
    "\"\\x\"",
    "\"é\"",
    "1",
    "-0",
    "01",
    "1e400",
    "1.5",
    "18446744073709551616",
    "true",
    "null",
    "\"",
    "\\",
];

/// A JSON value as text, with optional trailing commas and keys drawn from a small set (so
/// duplicates are common).
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0",
            "1e308",
            "2e308",
            "1e-400",
            "true",
            "false",
            "null",
            "\"\"",
            "\"a\"",
            "\"\\u0061\"",
            "\"\\ud83d\\ude00\"",
            "\"\\/\"",
            "4.2",
        ])
        .prop_map(str::to_owned),
    ];
    let key = prop::sample::select(vec![
        "\"a\"",
        "\"\\u0061\"",
        "\"b\"",
        "\"iss\"",
        "\"\\u0069ss\"",
        "\"aud\"",
        "\"exp\"",
        "\"iat\"",
        "\"nbf\"",
        "\"sub\"",
        "\"jti\"",
        "\"alg\"",
        "\"kid\"",
    ]);
    leaf.prop_recursive(4, 24, 4, move |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..4), any::<bool>()).prop_map(|(items, tc)| {
                let comma = if tc && !items.is_empty() { "," } else { "" };
                format!("[{}{comma}]", items.join(","))
            }),
            (
                prop::collection::vec((key.clone(), inner), 0..5),
                any::<bool>()
            )
                .prop_map(|(members, tc)| {
                    let comma = if tc && !members.is_empty() { " ," } else { "" };
                    let members: Vec<String> =
                        members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    format!("{{{}{comma}}}", members.join(","))
                }),
        ]
    })
}

fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var("PROPTEST_CASES").is_err() {
        c.cases = cases;
    }
    c
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn generated_objects_agree_with_the_old_reading(members in prop::collection::vec(
        (prop::sample::select(vec!["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "alg", "kid", "x", "\\u0069ss"]), json_text()),
        0..6,
    ), trailing in any::<bool>()) {
        let body: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let comma = if trailing && !body.is_empty() { "," } else { "" };
        let doc = format!("{{{}{comma}}}", body.join(","));
        check_both_ways(doc.as_bytes());
    }

    #[test]
    fn fragment_soup_agrees_with_the_old_reading(
        parts in prop::collection::vec(prop::sample::select(FRAGMENTS), 0..16),
    ) {
        let doc = format!("{{{}", parts.concat());
        check_both_ways(doc.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_agree_with_the_old_reading(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        check_both_ways(&bytes);
    }
}
