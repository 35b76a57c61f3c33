//! The verified-token cache through `check_token_cached`, the request path's entry: a hit
//! skips the signature and nothing else. Tokens and keys are Envoy's fixtures
//! (`envoy_jwt_authn_test_common.json`), whose verdicts upstream asserts; a counting backend
//! shows whether a signature was checked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::{example_provider, fixture, token, NOW};
use mesh_authn::jwt::jwks::PublicKey;
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::verify::{PureRust, SignatureVerifier};
use mesh_authn::jwt::{AuthnStatus, Jwks};
use mesh_authn::remote_jwks::NoRemoteKeys;
use mesh_authn::request_authn::{check_token_cached, Env, KeySource, Provider, TokenFailure};
use mesh_authn::token_cache::{Settings, TokenCache};

/// The pure backend, counting the signatures it is asked to check.
#[derive(Default)]
struct Counting(Cell<usize>);

impl SignatureVerifier for Counting {
    fn verify(&self, alg: Alg, key: &PublicKey, message: &[u8], signature: &[u8]) -> bool {
        self.0.set(self.0.get() + 1);
        PureRust.verify(alg, key, message, signature)
    }
}

fn env<'a>(now: u64, crypto: &'a Counting, cache: &'a TokenCache) -> Env<'a> {
    Env {
        now,
        crypto,
        remote: &NoRemoteKeys,
        cache: Some(cache),
    }
}

fn status(r: Result<Rc<mesh_authn::jwt::Jwt>, TokenFailure>) -> AuthnStatus {
    match r {
        Ok(_) => AuthnStatus::Ok,
        Err(TokenFailure::Status(s)) => s,
        Err(TokenFailure::Wait(w)) => panic!("unexpected wait {w:?}"),
    }
}

/// `token`'s status for provider `p` at `now`, through the cache, verifying with `crypto`.
fn checked(
    p: &Provider,
    token: &str,
    now: u64,
    crypto: &Counting,
    cache: &TokenCache,
) -> AuthnStatus {
    status(check_token_cached(
        p,
        token.as_bytes(),
        &env(now, crypto, cache),
    ))
}

fn cache() -> TokenCache {
    TokenCache::new(Settings::default())
}

#[test]
fn a_hit_skips_only_the_signature() {
    let (c, cache, p) = (Counting::default(), cache(), example_provider());
    let good = token("GoodToken");
    assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    assert_eq!(c.0.get(), 1);
    assert_eq!(cache.len(), 1);
    for _ in 0..5 {
        assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    }
    assert_eq!(c.0.get(), 1, "hits verify no signature");

    // Same key set, another provider: issuer and audience are checked again on a hit.
    let mut other_aud = example_provider();
    other_aud.audiences = mesh_authn::jwt::Audiences::new(["someone-else"]);
    other_aud.jwks = p.jwks.clone();
    assert_eq!(
        checked(&other_aud, &good, NOW, &c, &cache),
        AuthnStatus::JwtAudienceNotAllowed
    );
    let mut other_iss = example_provider();
    other_iss.issuer = "https://other.example.com".into();
    other_iss.jwks = p.jwks.clone();
    assert_eq!(
        checked(&other_iss, &good, NOW, &c, &cache),
        AuthnStatus::JwtUnknownIssuer
    );
    assert_eq!(c.0.get(), 1);
}

#[test]
fn a_cached_token_stops_passing_when_it_expires() {
    let (c, cache, p) = (Counting::default(), cache(), example_provider());
    let good = token("GoodToken");
    let exp: u64 = 2_001_001_001; // GoodToken's exp (the fixture's comment)
    assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    // Envoy's 60 s clock skew: still valid at exp + 60, expired at exp + 61.
    assert_eq!(checked(&p, &good, exp + 60, &c, &cache), AuthnStatus::Ok);
    assert_eq!(c.0.get(), 1);
    assert_eq!(
        checked(&p, &good, exp + 61, &c, &cache),
        AuthnStatus::JwtExpired
    );
    assert_eq!(cache.len(), 0, "an expired entry is dropped");
}

#[test]
fn a_key_set_change_invalidates_entries() {
    let (c, cache, p) = (Counting::default(), cache(), example_provider());
    let good = token("GoodToken");
    assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    assert_eq!(c.0.get(), 1);

    // The same keys parsed again (a refresh): another set, so the signature is checked again.
    let mut refreshed = example_provider();
    refreshed.jwks = KeySource::Inline(common::public_key_jwks());
    assert_eq!(checked(&refreshed, &good, NOW, &c, &cache), AuthnStatus::Ok);
    assert_eq!(c.0.get(), 2);

    // Rotated to keys that do not include the signer: the cached token no longer passes.
    let mut rotated = example_provider();
    let other_keys = Jwks::parse(fixture()["es256_public_key_jwks"].as_str().unwrap()).unwrap();
    rotated.jwks = KeySource::Inline(Rc::new(other_keys));
    assert_ne!(checked(&rotated, &good, NOW, &c, &cache), AuthnStatus::Ok);
    // Back to the original set: its entry went with the rotation, so it is verified again.
    let before = c.0.get();
    assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    assert!(c.0.get() > before, "verified again after the rotation");
}

#[test]
fn a_forged_token_sharing_everything_but_the_signature_is_verified_and_refused() {
    let (c, cache, p) = (Counting::default(), cache(), example_provider());
    let good = token("GoodToken");
    assert_eq!(checked(&p, &good, NOW, &c, &cache), AuthnStatus::Ok);
    // Same header and payload, last signature character changed.
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    // A prefix of the cached token (its signature cut short), and the cached token with a
    // byte appended: neither is the cached token.
    let prefix = good[..good.len() - 4].to_owned();
    let longer = format!("{good}A");
    for t in [&forged, &prefix, &longer] {
        let before = c.0.get();
        assert_eq!(
            checked(&p, t, NOW, &c, &cache),
            AuthnStatus::JwtVerificationFail,
            "{t}"
        );
        assert!(c.0.get() > before, "its signature was checked");
    }
    assert_eq!(cache.len(), 1, "failures are never cached");
}

#[test]
fn invalid_tokens_are_never_cached() {
    let (c, cache, p) = (Counting::default(), cache(), example_provider());
    for (name, want) in [
        ("ExpiredToken", AuthnStatus::JwtExpired),
        ("NotYetValidToken", AuthnStatus::JwtNotYetValid),
        ("InvalidAudToken", AuthnStatus::JwtAudienceNotAllowed),
    ] {
        for _ in 0..2 {
            assert_eq!(checked(&p, &token(name), NOW, &c, &cache), want, "{name}");
        }
    }
    assert_eq!(cache.len(), 0);
}

/// An HS256 provider and tokens for it: as many distinct valid tokens as a test needs.
fn hs256_provider() -> mesh_authn::request_authn::Provider {
    let mut p = example_provider();
    p.issuer = "https://hs.example.com".into();
    p.jwks = KeySource::Inline(Rc::new(
        Jwks::parse(r#"{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0LWtleS1mb3ItdGhlLWNhY2hlLXRlc3Q"}]}"#)
            .unwrap(),
    ));
    p
}

fn hs256_token(n: usize) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::{Mac as _, SimpleHmac};
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"h"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"https://hs.example.com","aud":"example_service","exp":2001001001,"jti":"{n}"}}"#
    ));
    let input = format!("{header}.{payload}");
    let mut mac =
        SimpleHmac::<sha2::Sha256>::new_from_slice(b"secret-key-for-the-cache-test").unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn bounds_evict_the_oldest_entries() {
    let c = Counting::default();
    let p = hs256_provider();
    let valid: Vec<String> = (0..10).map(hs256_token).collect();
    let probe = cache();
    for t in &valid {
        assert_eq!(checked(&p, t, NOW, &c, &probe), AuthnStatus::Ok);
    }
    assert_eq!(probe.len(), 10);

    // By entries: three at most; the fourth evicts the oldest.
    let small = TokenCache::new(Settings {
        max_entries: 3,
        max_bytes: 1 << 20,
    });
    for t in &valid[..4] {
        check_token_cached(&p, t.as_bytes(), &env(NOW, &c, &small)).unwrap();
    }
    assert_eq!(small.len(), 3);
    let before = c.0.get();
    for t in &valid[1..4] {
        check_token_cached(&p, t.as_bytes(), &env(NOW, &c, &small)).unwrap();
    }
    assert_eq!(c.0.get(), before, "the three newest are hits");
    check_token_cached(&p, valid[0].as_bytes(), &env(NOW, &c, &small)).unwrap();
    assert_eq!(c.0.get(), before + 1, "the oldest was evicted");

    // By bytes: room for two entries.
    let one = probe.bytes() / 10;
    let tight = TokenCache::new(Settings {
        max_entries: 100,
        max_bytes: 2 * one + one / 2,
    });
    for t in &valid {
        check_token_cached(&p, t.as_bytes(), &env(NOW, &c, &tight)).unwrap();
        assert!(tight.len() <= 2 && tight.bytes() <= 2 * one + one / 2);
    }
    assert_eq!(tight.len(), 2);

    // Off.
    let off = TokenCache::new(Settings {
        max_entries: 0,
        max_bytes: 1 << 20,
    });
    check_token_cached(&p, valid[0].as_bytes(), &env(NOW, &c, &off)).unwrap();
    assert!(off.is_empty());

    // Many inserts, re-inserts under new keys included, keep the bound.
    let bounded = TokenCache::new(Settings {
        max_entries: 3,
        max_bytes: 1 << 20,
    });
    for round in 0..100 {
        let mut q = hs256_provider();
        if round % 2 == 0 {
            q.jwks = p.jwks.clone();
        }
        for t in valid.iter().take(2 + round % 5) {
            check_token_cached(&q, t.as_bytes(), &env(NOW, &c, &bounded)).unwrap();
        }
        assert!(bounded.len() <= 3, "round {round}");
    }
}

#[test]
fn the_plugin_config_sets_the_bounds() {
    let base = "workload: {namespace: foo}\npolicies: []\n";
    let c = mesh_authn::config::FilterConfig::parse(base.as_bytes()).unwrap();
    assert_eq!(c.token_cache.settings(), Settings::default());
    let c = mesh_authn::config::FilterConfig::parse(
        format!("{base}tokenCache: {{maxEntries: 10, maxBytes: 5000}}\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        c.token_cache.settings(),
        Settings {
            max_entries: 10,
            max_bytes: 5000
        }
    );
    let e = mesh_authn::config::FilterConfig::parse(
        format!("{base}tokenCache: {{maxEntrys: 10}}\n").as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tokenCache.maxEntrys: unknown field"), "{e}");
}
