//! The outcome of authenticating one request, with Envoy's exact wording.
//!
//! The messages are jwt_verify_lib's `src/status.cc` strings at commit `b59e8075` (the one Envoy
//! pins): Envoy `jwt_authn` sends them as the body of its 401/403 local reply, so clients, tests
//! and dashboards already match on them. They are `&'static str`, so the deny path allocates
//! nothing to describe itself.

macro_rules! statuses {
    ($( $(#[$doc:meta])* $variant:ident => $message:literal, )*) => {
        /// Why a token was accepted or refused. One variant per jwt_verify_lib status that the
        /// filter can produce, in jwt_verify_lib's order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuthnStatus {
            $( $(#[$doc])* $variant, )*
        }

        impl AuthnStatus {
            /// The response body Envoy `jwt_authn` sends for this status.
            pub const fn message(self) -> &'static str {
                match self {
                    $( AuthnStatus::$variant => $message, )*
                }
            }

            /// Every status, for tables and tests.
            pub const ALL: &'static [AuthnStatus] = &[$( AuthnStatus::$variant, )*];
        }
    };
}

statuses! {
    /// The token verified.
    Ok => "OK",
    /// No token at a location that requires one.
    JwtMissed => "Jwt is missing",
    /// `nbf` is later than now plus the clock skew.
    JwtNotYetValid => "Jwt not yet valid",
    /// `exp` is earlier than now minus the clock skew.
    JwtExpired => "Jwt is expired",
    /// Not three non-empty dot-separated sections.
    JwtBadFormat => "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
    /// The header section is not base64url.
    JwtHeaderParseErrorBadBase64 => "Jwt header is an invalid Base64url encoded",
    /// The header section is not a JSON object.
    JwtHeaderParseErrorBadJson => "Jwt header is an invalid JSON",
    /// `alg` is absent or not a string.
    JwtHeaderBadAlg => "Jwt header [alg] field is required and must be a string",
    /// `alg` names an algorithm outside the supported set (`none` included).
    JwtHeaderNotImplementedAlg => "Jwt header [alg] is not supported",
    /// `kid` is present but not a string.
    JwtHeaderBadKid => "Jwt header [kid] field is not a string",
    /// The payload section is not base64url.
    JwtPayloadParseErrorBadBase64 => "Jwt payload is an invalid Base64url encoded",
    /// The payload section is not a JSON object.
    JwtPayloadParseErrorBadJson => "Jwt payload is an invalid JSON",
    /// `iss` is present but not a string.
    JwtPayloadParseErrorIssNotString => "Jwt payload [iss] field is not a string",
    /// `sub` is present but not a string.
    JwtPayloadParseErrorSubNotString => "Jwt payload [sub] field is not a string",
    /// `iat` is present but not a number.
    JwtPayloadParseErrorIatNotInteger => "Jwt payload [iat] field is not an integer",
    /// `iat` is negative or does not fit in 64 bits.
    JwtPayloadParseErrorIatOutOfRange => "Jwt payload [iat] field is not a positive 64 bit integer",
    /// `nbf` is present but not a number.
    JwtPayloadParseErrorNbfNotInteger => "Jwt payload [nbf] field is not an integer",
    /// `nbf` is negative or does not fit in 64 bits.
    JwtPayloadParseErrorNbfOutOfRange => "Jwt payload [nbf] field is not a positive 64 bit integer",
    /// `exp` is present but not a number.
    JwtPayloadParseErrorExpNotInteger => "Jwt payload [exp] field is not an integer",
    /// `exp` is negative or does not fit in 64 bits.
    JwtPayloadParseErrorExpOutOfRange => "Jwt payload [exp] field is not a positive 64 bit integer",
    /// `jti` is present but not a string.
    JwtPayloadParseErrorJtiNotString => "Jwt payload [jti] field is not a string",
    /// `aud` is neither a string nor a list of strings.
    JwtPayloadParseErrorAudNotString => "Jwt payload [aud] field is not a string or string list",
    /// The signature section is not base64url.
    JwtSignatureParseErrorBadBase64 => "Jwt signature is an invalid Base64url encoded",
    /// An EdDSA signature is not 64 bytes.
    JwtEd25519SignatureWrongLength => "Jwt ED25519 signature is wrong length",
    /// The token's `iss` is not one the rule at this location accepts.
    JwtUnknownIssuer => "Jwt issuer is not configured",
    /// None of the token's audiences is allowed (HTTP 403, the only one).
    JwtAudienceNotAllowed => "Audiences in Jwt are not allowed",
    /// Keys matched the token's `kid`/`alg` but none verified the signature.
    JwtVerificationFail => "Jwt verification fails",
    /// More than one token where one is expected.
    JwtMultipleTokens => "Found multiple Jwt tokens",
    /// The JWKS is not JSON.
    JwksParseError => "Jwks is an invalid JSON",
    /// The JWKS has no `keys` member.
    JwksNoKeys => "Jwks does not have [keys] field",
    /// The JWKS `keys` member is not an array.
    JwksBadKeys => "[keys] in Jwks is not an array",
    /// The JWKS has no key the filter can use.
    JwksNoValidKeys => "Jwks doesn't have any valid public key",
    /// No key in the JWKS matches the token's `kid` and `alg`.
    JwksKidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
    /// An RSA JWK's `n` or `e` is not base64url, `e` is neither 3 nor 65537, or the key is no
    /// valid RSA public key.
    JwksRsaParseError => "Jwks RSA [n] or [e] field is missing or has a parse error",
    /// The EC key could not be created.
    JwksEcCreateKeyFail => "Jwks EC create key fail",
    /// An EC JWK's `x` or `y` is not base64url.
    JwksEcXorYBadBase64 => "Jwks EC [x] or [y] field is an invalid Base64.",
    /// An EC JWK's `x`/`y` is no point of its curve.
    JwksEcParseError => "Jwks EC [x] and [y] fields have a parse error.",
    /// An oct JWK's `k` is not base64url, or empty.
    JwksOctBadBase64 => "Jwks Oct key is an invalid Base64",
    /// An OKP JWK's `x` is not base64url.
    JwksOKPXBadBase64 => "Jwks OKP [x] field is an invalid Base64.",
    /// An OKP JWK's `x` is not 32 bytes.
    JwksOKPXWrongLength => "Jwks OKP [x] field is wrong length.",
    /// The keys for this issuer could not be fetched.
    JwksFetchFail => "Jwks remote fetch is failed",
    /// A JWK has no `kty`.
    JwksMissingKty => "[kty] is missing in [keys]",
    /// A JWK's `kty` is not a string.
    JwksBadKty => "[kty] is bad in [keys]",
    /// A JWK's `kty` is none of RSA, EC, oct, OKP.
    JwksNotImplementedKty => "[kty] is not supported in [keys]",
    /// An RSA JWK's `alg` does not start with RS or PS.
    JwksRSAKeyBadAlg => "[alg] is not started with [RS] or [PS] for an RSA key",
    /// An RSA JWK has no `n`.
    JwksRSAKeyMissingN => "[n] field is missing for a RSA key",
    /// An RSA JWK's `n` is not a string.
    JwksRSAKeyBadN => "[n] field is not string for a RSA key",
    /// An RSA JWK has no `e`.
    JwksRSAKeyMissingE => "[e] field is missing for a RSA key",
    /// An RSA JWK's `e` is not a string.
    JwksRSAKeyBadE => "[e] field is not string for a RSA key",
    /// An EC JWK's `alg` does not start with ES.
    JwksECKeyBadAlg => "[alg] is not started with [ES] for an EC key",
    /// An EC JWK's `crv` is not a string.
    JwksECKeyBadCrv => "[crv] field is not string for an EC key",
    /// An EC JWK names no supported curve.
    JwksECKeyAlgOrCrvUnsupported => "[crv] or [alg] field is not supported for an EC key",
    /// An EC JWK's `crv` and `alg` disagree.
    JwksECKeyAlgNotCompatibleWithCrv => "[crv] field specified is not compatible with [alg] for an EC key",
    /// An EC JWK has no `x`.
    JwksECKeyMissingX => "[x] field is missing for an EC key",
    /// An EC JWK's `x` is not a string.
    JwksECKeyBadX => "[x] field is not string for an EC key",
    /// An EC JWK has no `y`.
    JwksECKeyMissingY => "[y] field is missing for an EC key",
    /// An EC JWK's `y` is not a string.
    JwksECKeyBadY => "[y] field is not string for an EC key",
    /// An oct JWK's `alg` is not HS256/384/512.
    JwksHMACKeyBadAlg => "[alg] does not start with [HS] for an HMAC key",
    /// An oct JWK has no `k`.
    JwksHMACKeyMissingK => "[k] field is missing for an HMAC key",
    /// An oct JWK's `k` is not a string.
    JwksHMACKeyBadK => "[k] field is not string for an HMAC key",
    /// An OKP JWK's `alg` is not EdDSA.
    JwksOKPKeyBadAlg => "[alg] is not [EdDSA] for an OKP key",
    /// An OKP JWK has no `crv`.
    JwksOKPKeyMissingCrv => "[crv] field is missing for an OKP key",
    /// An OKP JWK's `crv` is not a string.
    JwksOKPKeyBadCrv => "[crv] field is not string for an OKP key",
    /// An OKP JWK's `crv` is not Ed25519.
    JwksOKPKeyCrvUnsupported => "[crv] field is not supported for an OKP key",
    /// An OKP JWK has no `x`.
    JwksOKPKeyMissingX => "[x] field is missing for an OKP key",
    /// An OKP JWK's `x` is not a string.
    JwksOKPKeyBadX => "[x] field is not string for an OKP key",
    /// An x509 map's certificate is not a parsable PEM certificate.
    JwksX509ParseError => "X509 parse pubkey fails",
    /// An x509 map's certificate has no RSA public key.
    JwksX509GetPubkeyError => "X509 parse pubkey internal fails: get pubkey",
}

impl AuthnStatus {
    /// The HTTP status Envoy `jwt_authn` answers with: 403 for an audience mismatch, 401 for
    /// everything else (`filter.cc#onComplete`).
    pub const fn http_code(self) -> u32 {
        match self {
            AuthnStatus::JwtAudienceNotAllowed => 403,
            _ => 401,
        }
    }

    /// Whether this status means "no token", which Istio's `allow_missing` turns into a pass.
    pub const fn is_missing(self) -> bool {
        matches!(self, AuthnStatus::JwtMissed)
    }
}

impl core::fmt::Display for AuthnStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_mismatch_is_the_only_403() {
        for s in AuthnStatus::ALL {
            let want = if *s == AuthnStatus::JwtAudienceNotAllowed {
                403
            } else {
                401
            };
            assert_eq!(s.http_code(), want, "{s:?}");
        }
    }

    #[test]
    fn messages_are_envoys() {
        // Strings as Envoy 1.40 sends them (../shared/reference/istio-envoy-semantics.md §1.5).
        assert_eq!(AuthnStatus::JwtExpired.message(), "Jwt is expired");
        assert_eq!(
            AuthnStatus::JwtVerificationFail.message(),
            "Jwt verification fails"
        );
        assert_eq!(
            AuthnStatus::JwtUnknownIssuer.message(),
            "Jwt issuer is not configured"
        );
        assert_eq!(
            AuthnStatus::JwksKidAlgMismatch.message(),
            "Jwks doesn't have key to match kid or alg from Jwt"
        );
    }
}
