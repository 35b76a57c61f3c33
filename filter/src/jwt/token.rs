//! A compact JWS parsed the way jwt_verify_lib's `Jwt::parseFromString` parses it: the same
//! checks in the same order, each failure with its own status.

use std::cell::OnceCell;
use std::ops::Range;
use std::rc::Rc;

use serde_json::{Map, Value};

use super::b64;
use super::json::{self, JsonStr, Member};
use super::status::AuthnStatus;

/// The longest token the filter parses. Envoy bounds request headers at 60 KiB by default; a
/// bound of our own keeps a query parameter or a raised header limit from feeding megabytes to
/// the base64 and JSON decoders.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The JWS algorithms Envoy `jwt_authn` accepts in a token header (`jwt.cc#isImplemented`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the names are the JWA names
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    ES512,
    HS256,
    HS384,
    HS512,
    EdDSA,
}

impl Alg {
    /// The algorithm named by a JWS `alg`, case-sensitively; `None` for `none` and the rest.
    pub fn from_name(name: &str) -> Option<Alg> {
        Some(match name {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "ES512" => Alg::ES512,
            "HS256" => Alg::HS256,
            "HS384" => Alg::HS384,
            "HS512" => Alg::HS512,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// The JWA name.
    pub const fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::ES512 => "ES512",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
            Alg::EdDSA => "EdDSA",
        }
    }
}

/// A parsed token. Registered claims are typed; the payload's JSON is kept, and read into a
/// map only when something asks for [`Jwt::payload`].
#[derive(Debug, Clone)]
pub struct Jwt {
    /// Header `alg`.
    pub alg: Alg,
    /// Header `kid`; empty when absent (jwt_verify_lib treats both alike).
    pub kid: String,
    /// Payload `iss`; empty when absent.
    pub iss: String,
    /// Payload `sub`; empty when absent.
    pub sub: String,
    /// Payload `aud`, a string read as a one-element list.
    pub audiences: Vec<String>,
    /// Payload `iat`; 0 when absent.
    pub iat: u64,
    /// Payload `nbf`; 0 when absent.
    pub nbf: u64,
    /// Payload `exp`; 0 when absent, meaning "never expires".
    pub exp: u64,
    /// The token's text, kept once: the payload's base64url text and the signing input are
    /// spans of it, and the verified-token cache files the token under it (no other copy).
    text: Rc<str>,
    /// Where the payload's base64url text stands in `text`.
    payload_b64: Range<usize>,
    /// `header "." payload`, the bytes the signature covers.
    signing_input: SigningInput,
    /// The payload's JSON text (decoded from base64).
    payload_json: Vec<u8>,
    /// The payload object, read from `payload_json` on first use (`None`: it could not be).
    payload: OnceCell<Option<Map<String, Value>>>,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

impl Jwt {
    /// Parses a compact JWS. Like absl's `StrSplit(.., SkipEmpty())`, empty sections are
    /// skipped, so a leading or trailing `.` is tolerated; what remains must be three sections.
    pub fn parse(token: &str) -> Result<Jwt, AuthnStatus> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthnStatus::JwtBadFormat);
        }
        let mut sections = sections(token);
        let (Some(header_span), Some(payload_span), Some(signature_span), None) = (
            sections.next(),
            sections.next(),
            sections.next(),
            sections.next(),
        ) else {
            return Err(AuthnStatus::JwtBadFormat);
        };
        let (Some(header_b64), Some(payload_b64), Some(signature_b64)) = (
            token.get(header_span.clone()),
            token.get(payload_span.clone()),
            token.get(signature_span),
        ) else {
            return Err(AuthnStatus::JwtBadFormat);
        };

        let header_json =
            b64::decode(header_b64).ok_or(AuthnStatus::JwtHeaderParseErrorBadBase64)?;
        let mut header = [None, None];
        json::scan_object(&header_json, &["alg", "kid"], &mut header)
            .ok_or(AuthnStatus::JwtHeaderParseErrorBadJson)?;
        let [alg, kid] = header;
        let alg = match alg {
            Some(Member::String(name)) => {
                Alg::from_name(&decoded(name)?).ok_or(AuthnStatus::JwtHeaderNotImplementedAlg)?
            }
            _ => return Err(AuthnStatus::JwtHeaderBadAlg),
        };
        let kid = optional_string(kid, AuthnStatus::JwtHeaderBadKid)?;

        let payload_json =
            b64::decode(payload_b64).ok_or(AuthnStatus::JwtPayloadParseErrorBadBase64)?;
        let mut payload = [None, None, None, None, None, None, None];
        json::scan_object(
            &payload_json,
            &["iss", "sub", "iat", "nbf", "exp", "jti", "aud"],
            &mut payload,
        )
        .ok_or(AuthnStatus::JwtPayloadParseErrorBadJson)?;
        let [iss, sub, iat, nbf, exp, jti, aud] = payload;
        let iss = optional_string(iss, AuthnStatus::JwtPayloadParseErrorIssNotString)?;
        let sub = optional_string(sub, AuthnStatus::JwtPayloadParseErrorSubNotString)?;
        let iat = optional_u64(
            iat,
            AuthnStatus::JwtPayloadParseErrorIatNotInteger,
            AuthnStatus::JwtPayloadParseErrorIatOutOfRange,
        )?;
        let nbf = optional_u64(
            nbf,
            AuthnStatus::JwtPayloadParseErrorNbfNotInteger,
            AuthnStatus::JwtPayloadParseErrorNbfOutOfRange,
        )?;
        let exp = optional_u64(
            exp,
            AuthnStatus::JwtPayloadParseErrorExpNotInteger,
            AuthnStatus::JwtPayloadParseErrorExpOutOfRange,
        )?;
        if !matches!(jti, None | Some(Member::String(_))) {
            return Err(AuthnStatus::JwtPayloadParseErrorJtiNotString);
        }
        let audiences = match aud {
            None => Vec::new(),
            Some(Member::String(aud)) => vec![decoded(aud)?.into_owned()],
            Some(Member::Array(list)) => list
                .into_iter()
                .map(|v| match v {
                    Member::String(aud) => Ok(decoded(aud)?.into_owned()),
                    _ => Err(AuthnStatus::JwtPayloadParseErrorAudNotString),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(AuthnStatus::JwtPayloadParseErrorAudNotString),
        };

        let signature =
            b64::decode(signature_b64).ok_or(AuthnStatus::JwtSignatureParseErrorBadBase64)?;
        let signing_input = if header_span.end.checked_add(1) == Some(payload_span.start) {
            SigningInput::Span(header_span.start..payload_span.end)
        } else {
            SigningInput::Apart(format!("{header_b64}.{payload_b64}").into_boxed_str())
        };

        Ok(Jwt {
            alg,
            kid,
            iss,
            sub,
            audiences,
            iat,
            nbf,
            exp,
            text: Rc::from(token),
            payload_b64: payload_span,
            signing_input,
            payload_json,
            payload: OnceCell::new(),
            signature,
        })
    }

    /// The token's text as parsed.
    pub fn text(&self) -> &Rc<str> {
        &self.text
    }

    /// The payload's base64url text exactly as it stood in the token.
    pub fn payload_b64(&self) -> &str {
        self.text.get(self.payload_b64.clone()).unwrap_or_default()
    }

    /// `header "." payload`, the bytes the signature covers.
    pub fn signing_input(&self) -> &str {
        match &self.signing_input {
            SigningInput::Span(span) => self.text.get(span.clone()).unwrap_or_default(),
            SigningInput::Apart(text) => text,
        }
    }

    /// The payload object, read on first use; the outcome, failure included, is kept.
    ///
    /// The scanner that accepted the payload in [`Jwt::parse`] is meant to accept exactly the
    /// documents `json::parse_object` accepts (tested differentially, tests/jwt_scan.rs and the
    /// `jwt_scan` fuzz target), but nothing rests on it: where they differ, the answer is
    /// [`UnreadablePayload`], and every reader refuses the request rather than read the token
    /// as claiming nothing (which would let a DENY on a claim pass). Logged once per VM.
    pub fn payload(&self) -> Result<&Map<String, Value>, UnreadablePayload> {
        self.payload
            .get_or_init(|| {
                let map = json::parse_object(&self.payload_json);
                if map.is_none() {
                    warn_unreadable_once();
                }
                map
            })
            .as_ref()
            .ok_or(UnreadablePayload)
    }

    /// `nbf`/`exp` against `now` with `clock_skew` seconds of tolerance either way
    /// (`jwt.cc#verifyTimeConstraint`): not-yet-valid is checked first.
    pub fn check_time(&self, now: u64, clock_skew: u64) -> Result<(), AuthnStatus> {
        if now.saturating_add(clock_skew) < self.nbf {
            return Err(AuthnStatus::JwtNotYetValid);
        }
        if self.exp != 0 && now > self.exp.saturating_add(clock_skew) {
            return Err(AuthnStatus::JwtExpired);
        }
        Ok(())
    }
}

/// Where a token's signing input is: jwt_verify_lib signs `header "." payload` as split, which
/// is the token's own bytes unless empty sections stood between them (`a..b.c`).
#[derive(Debug, Clone)]
enum SigningInput {
    /// This span of the token's text.
    Span(Range<usize>),
    /// Joined apart from the text.
    Apart(Box<str>),
}

/// Where the token's `.`-separated sections stand, empty ones skipped (absl's
/// `StrSplit(.., '.', SkipEmpty())`).
fn sections(token: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0usize;
    token
        .split('.')
        .map(move |section| {
            let end = start.saturating_add(section.len());
            let span = start..end;
            start = end.saturating_add(1);
            span
        })
        .filter(|span| !span.is_empty())
}

#[cfg(test)]
impl Jwt {
    /// This token with a payload text the map builder refuses, as if the scanner had accepted
    /// a document `json::parse_object` does not: the divergence every reader of
    /// [`Jwt::payload`] must fail closed on. The two parsers agree on every input found so far
    /// (tests/jwt_scan.rs, the `jwt_scan` fuzz target), so only a test can make one.
    pub(crate) fn with_unreadable_payload(mut self) -> Jwt {
        self.payload_json = b"{\"unterminated\":".to_vec();
        self.payload = OnceCell::new();
        self
    }
}

/// A payload [`Jwt::parse`] accepted could not be read into a map of claims
/// ([`Jwt::payload`]). RequestAuthentication refuses the token with the status a payload that
/// is not JSON gets ([`AuthnStatus::JwtPayloadParseErrorBadJson`], as Envoy would); readers
/// after it (AuthorizationPolicy, the claims export) refuse the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreadablePayload;

impl From<UnreadablePayload> for AuthnStatus {
    fn from(_: UnreadablePayload) -> AuthnStatus {
        AuthnStatus::JwtPayloadParseErrorBadJson
    }
}

impl std::fmt::Display for UnreadablePayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read the verified token's claims: {}",
            AuthnStatus::from(*self)
        )
    }
}

/// Says once per VM that a payload the scanner accepted could not be read into a map: a
/// disagreement between the two JSON readers, which is a bug to report, not a client error.
fn warn_unreadable_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        log::warn!(
            "a token payload the JSON scanner accepted could not be read into claims (a bug: \
             please report it); such tokens are refused: {UnreadablePayload}"
        );
    }
}

/// A string the scanner accepted, decoded. Decoding cannot fail on what the scanner checked;
/// were it to, the token is refused as malformed.
fn decoded(s: JsonStr<'_>) -> Result<std::borrow::Cow<'_, str>, AuthnStatus> {
    s.decode().ok_or(AuthnStatus::JwtBadFormat)
}

fn optional_string(
    member: Option<Member<'_>>,
    wrong_type: AuthnStatus,
) -> Result<String, AuthnStatus> {
    match member {
        None => Ok(String::new()),
        Some(Member::String(s)) => Ok(decoded(s)?.into_owned()),
        Some(_) => Err(wrong_type),
    }
}

/// jwt_verify_lib's `StructUtils::GetUInt64`: protobuf's JSON parser makes every number a double
/// (correctly rounded, so every integer from 2^64 − 1024 up is 2^64, and 2^53 + 1 is 2^53); a
/// double `< 0` or `>= 2^64` is out of range, any other is truncated to an integer. Going
/// through the double for integers too gives the claim Envoy would use, not a closer one.
fn optional_u64(
    member: Option<Member<'_>>,
    wrong_type: AuthnStatus,
    out_of_range: AuthnStatus,
) -> Result<u64, AuthnStatus> {
    /// `static_cast<double>(UINT64_MAX)`: 2^64, the first double out of range.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    match member {
        None => Ok(0),
        Some(Member::Number(text)) => {
            // serde_json rounds an integer to the nearest double, as strtod would.
            let v = json::number_value(text).ok_or(out_of_range)?;
            // `-0.0 >= 0.0`: `-0` is 0, as in C++. (NaN, which JSON text cannot give, is out.)
            if !(0.0..TWO_POW_64).contains(&v) {
                return Err(out_of_range);
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        }
        Some(_) => Err(wrong_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    fn parse(header: &str, payload: &str) -> Result<Jwt, AuthnStatus> {
        Jwt::parse(&token(header, payload, b"sig"))
    }

    #[test]
    fn parses_registered_claims() {
        let jwt = parse(
            r#"{"alg":"RS256","kid":"k1"}"#,
            r#"{"iss":"https://example.com","sub":"me","aud":["a","b"],"iat":1,"nbf":2,"exp":3.9}"#,
        )
        .unwrap();
        assert_eq!(jwt.alg, Alg::RS256);
        assert_eq!(jwt.kid, "k1");
        assert_eq!(jwt.iss, "https://example.com");
        assert_eq!(jwt.sub, "me");
        assert_eq!(jwt.audiences, ["a", "b"]);
        assert_eq!((jwt.iat, jwt.nbf, jwt.exp), (1, 2, 3));
        assert_eq!(jwt.signature, b"sig");
    }

    #[test]
    fn each_malformation_has_its_status() {
        use AuthnStatus::*;
        let cases: &[(&str, &str, AuthnStatus)] = &[
            (r#"{"alg":1}"#, "{}", JwtHeaderBadAlg),
            ("{}", "{}", JwtHeaderBadAlg),
            (r#"{"alg":"none"}"#, "{}", JwtHeaderNotImplementedAlg),
            (r#"{"alg":"rs256"}"#, "{}", JwtHeaderNotImplementedAlg),
            (r#"{"alg":"RS256","kid":7}"#, "{}", JwtHeaderBadKid),
            ("[1]", "{}", JwtHeaderParseErrorBadJson),
            (r#"{"alg":"RS256"}"#, "nope", JwtPayloadParseErrorBadJson),
            // Duplicate keys are refused, as Envoy's JSON parser refuses them (measured).
            (
                r#"{"alg":"RS256","alg":"RS256"}"#,
                "{}",
                JwtHeaderParseErrorBadJson,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"iss":"a","iss":"b"}"#,
                JwtPayloadParseErrorBadJson,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"iss":1}"#,
                JwtPayloadParseErrorIssNotString,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"sub":null}"#,
                JwtPayloadParseErrorSubNotString,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"iat":"1"}"#,
                JwtPayloadParseErrorIatNotInteger,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"iat":-1}"#,
                JwtPayloadParseErrorIatOutOfRange,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"nbf":true}"#,
                JwtPayloadParseErrorNbfNotInteger,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"nbf":1e30}"#,
                JwtPayloadParseErrorNbfOutOfRange,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"exp":[1]}"#,
                JwtPayloadParseErrorExpNotInteger,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"exp":18446744073709551616}"#,
                JwtPayloadParseErrorExpOutOfRange,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"jti":2}"#,
                JwtPayloadParseErrorJtiNotString,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"aud":["a",2]}"#,
                JwtPayloadParseErrorAudNotString,
            ),
            (
                r#"{"alg":"RS256"}"#,
                r#"{"aud":{}}"#,
                JwtPayloadParseErrorAudNotString,
            ),
        ];
        for (header, payload, want) in cases {
            assert_eq!(
                parse(header, payload).unwrap_err(),
                *want,
                "{header} {payload}"
            );
        }
    }

    #[test]
    fn section_count_and_encoding() {
        use AuthnStatus::*;
        assert_eq!(Jwt::parse("abc").unwrap_err(), JwtBadFormat);
        assert_eq!(Jwt::parse("a.b").unwrap_err(), JwtBadFormat);
        assert_eq!(Jwt::parse("a.b.c.d").unwrap_err(), JwtBadFormat);
        assert_eq!(Jwt::parse("").unwrap_err(), JwtBadFormat);
        assert_eq!(Jwt::parse("a.b.").unwrap_err(), JwtBadFormat);
        assert_eq!(
            Jwt::parse("a*.b.c").unwrap_err(),
            JwtHeaderParseErrorBadBase64
        );
        let good = token(r#"{"alg":"ES256"}"#, "{}", b"s");
        let (hp, _) = good.rsplit_once('.').unwrap();
        assert_eq!(
            Jwt::parse(&format!("{hp}.***")).unwrap_err(),
            JwtSignatureParseErrorBadBase64
        );
        let (h, _) = hp.split_once('.').unwrap();
        assert_eq!(
            Jwt::parse(&format!("{h}.%%.c2ln")).unwrap_err(),
            JwtPayloadParseErrorBadBase64
        );
        // Empty sections are skipped, as absl::SkipEmpty does.
        let jwt = Jwt::parse(&format!(".{good}.")).unwrap();
        assert_eq!(jwt.signing_input(), hp);
        let (_, p) = hp.split_once('.').unwrap();
        assert_eq!(jwt.payload_b64(), p);
        // With empty sections between header and payload, the signed bytes are still
        // `header "." payload`, which the token's text does not hold side by side.
        let (_, s) = good.rsplit_once('.').unwrap();
        let apart = Jwt::parse(&format!("{h}...{p}..{s}")).unwrap();
        assert_eq!(apart.signing_input(), hp);
        assert_eq!(apart.payload_b64(), p);
        assert_eq!(apart.signature, b"s");
        let too_long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(Jwt::parse(&too_long).unwrap_err(), JwtBadFormat);
    }

    #[test]
    fn time_checks_with_skew() {
        let jwt = parse(r#"{"alg":"RS256"}"#, r#"{"nbf":1000,"exp":2000}"#).unwrap();
        assert_eq!(jwt.check_time(939, 60), Err(AuthnStatus::JwtNotYetValid));
        assert_eq!(jwt.check_time(940, 60), Ok(()));
        assert_eq!(jwt.check_time(2060, 60), Ok(()));
        assert_eq!(jwt.check_time(2061, 60), Err(AuthnStatus::JwtExpired));
        let forever = parse(r#"{"alg":"RS256"}"#, "{}").unwrap();
        assert_eq!(forever.check_time(u64::MAX, 60), Ok(()));
    }
}
