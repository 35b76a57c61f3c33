//! The probe's root and HTTP contexts. Test tooling: it reports, it never decides anything.

// Test tooling inside a test host: failing loudly is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::rc::Rc;

use mesh_authn::jwt::jwks::PublicKey;
use mesh_authn::jwt::token::Alg;
use mesh_authn::jwt::verify::{host_check, HostCheck, SignatureVerifier};
use mesh_authn::jwt::{Jwks, Jwt};
use mesh_authn::proxy::crypto::{Envoy, HostAnswer, HostCrypto};
use mesh_authn::proxy::host;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use serde_json::{json, Value};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(ProbeRoot { config: Rc::new(Value::Null) }));
}}

struct ProbeRoot {
    config: Rc<Value>,
}

impl Context for ProbeRoot {}

impl RootContext for ProbeRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let config = host::plugin_configuration(size).unwrap();
        self.config = Rc::new(serde_json::from_slice(&config).unwrap());
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(ProbeHttp {
            config: self.config.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ProbeHttp {
    config: Rc<Value>,
}

impl Context for ProbeHttp {}

impl HttpContext for ProbeHttp {
    /// `GET /` says whether the host has `verify_signature` and how many cases there are;
    /// `GET /<n>` runs case n (one request per case keeps each answer quick).
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let headers = host::request_headers().unwrap();
        let path = String::from_utf8_lossy(headers.path()).into_owned();
        let crypto = HostCrypto::detect(Envoy);
        let cases = self.config["cases"].as_array().unwrap();
        let path = path.trim_start_matches('/');
        let report = if let Some(rest) = path.strip_prefix("request/") {
            let (n, iters) = rest.split_once('/').unwrap();
            request_costs(
                &crypto,
                &cases[n.parse::<usize>().unwrap()],
                iters.parse().unwrap(),
            )
        } else if let Some(iterations) = path.strip_prefix("hostcalls/") {
            host_call_costs(iterations.parse().unwrap())
        } else if let Some(rest) = path.strip_prefix("bench/") {
            let (n, iters) = rest.split_once('/').unwrap();
            bench_case(
                &crypto,
                &cases[n.parse::<usize>().unwrap()],
                iters.parse().unwrap(),
            )
        } else {
            match path.parse::<usize>() {
                Ok(n) => run_case(&crypto, &cases[n]),
                Err(_) => json!({"uses_host": crypto.uses_host(), "cases": cases.len()}),
            }
        };
        let _ = host::send_local_response(
            200,
            "",
            report.to_string().as_bytes(),
            &[("content-type", b"application/json")],
        );
        Action::Pause
    }
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

fn now_ns() -> u64 {
    let mut nanos = 0u64;
    // The probe's own clock for its timing report.
    extern "C" {
        fn proxy_get_current_time_nanoseconds(t: *mut u64) -> u32;
    }
    // SAFETY: a valid out-pointer.
    unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    nanos
}

/// The host's own verdict: `verify_signature` called whatever detection found.
fn host_verdict(check: &HostCheck<'_>, message: &[u8]) -> Result<bool, HostAnswer> {
    HostCrypto::pure(Envoy).host_verdict(check, message)
}

fn answer(r: Result<bool, HostAnswer>) -> Value {
    match r {
        Ok(v) => json!(v),
        Err(HostAnswer::Status(s)) => json!(format!("status {}", s.0)),
        Err(HostAnswer::Garbled) => json!("garbled"),
    }
}

/// Every (case, key) pair: the host's own verdict where `host_check` sends it to the host, and
/// the backend's (`HostCrypto::verify`, which falls back to pure Rust in the VM). Candidate
/// pairs the host handles are swept: every single-bit flip and every truncation.
fn run_case(crypto: &HostCrypto, case: &Value) -> Value {
    let mut capabilities = Vec::new();
    {
        let started = now_ms();
        let jwt = Jwt::parse(case["token"].as_str().unwrap()).unwrap();
        let jwks = Jwks::parse(case["jwks"].as_str().unwrap()).unwrap();
        let message = jwt.signing_input().as_bytes();
        let mut keys = Vec::new();
        for (index, jwk) in jwks.keys().iter().enumerate() {
            let candidate = (jwt.kid.is_empty() || jwk.kid.is_empty() || jwk.kid == jwt.kid)
                && (jwk.alg.is_empty() || jwk.alg == jwt.alg.name());
            let check = host_check(jwt.alg, &jwk.key, &jwt.signature);
            let host = check.as_ref().map(|c| answer(host_verdict(c, message)));
            let backend = crypto.verify(jwt.alg, &jwk.key, message, &jwt.signature);
            let mut entry = json!({
                "index": index, "kty": jwk.key.kty(), "candidate": candidate,
                "host": host, "backend": backend,
            });
            if candidate && check.is_some() && case["sweep"].as_bool().unwrap_or(false) {
                entry["sweep"] = sweep(jwt.alg, &jwk.key, message, &jwt.signature);
            }
            if candidate && backend {
                capabilities.extend(raw_capabilities(
                    case["id"].as_str().unwrap(),
                    jwt.alg,
                    &jwk.key,
                    message,
                    &jwt.signature,
                ));
            }
            keys.push(entry);
        }
        json!({"id": case["id"], "alg": jwt.alg.name(), "keys": keys,
               "ms": now_ms() - started, "capabilities": capabilities})
    }
}

/// Time per verification in the VM (`GET /bench/<n>/<iterations>`, for the benchmark, not
/// the tests): the backend (host where it can) and the pure-Rust code, on the first key that
/// verifies case n.
fn bench_case(crypto: &HostCrypto, case: &Value, iterations: u64) -> Value {
    use mesh_authn::jwt::verify::PureRust;
    let jwt = Jwt::parse(case["token"].as_str().unwrap()).unwrap();
    let jwks = Jwks::parse(case["jwks"].as_str().unwrap()).unwrap();
    let message = jwt.signing_input().as_bytes();
    let key = &jwks
        .keys()
        .iter()
        .find(|k| PureRust.verify(jwt.alg, &k.key, message, &jwt.signature))
        .unwrap()
        .key;
    let time = |v: &dyn SignatureVerifier| {
        let start = now_ns();
        for _ in 0..iterations {
            assert!(v.verify(jwt.alg, key, message, &jwt.signature));
        }
        (now_ns() - start) / iterations
    };
    let backend_ns = time(crypto);
    let pure_ns = time(&PureRust);
    json!({"alg": jwt.alg.name(), "backend_ns": backend_ns, "pure_ns": pure_ns,
           "via_host": host_check(jwt.alg, key, &jwt.signature).is_some() && crypto.uses_host()})
}

/// Time per RequestAuthentication decision in the VM (`GET /request/<n>/<iterations>`, for
/// the benchmark, not the tests): case n's token in `Authorization` under one rule holding
/// its key set, decided by the core as the filter decides it, on a verified-token cache hit
/// and with no cache (every decision parses and verifies, through the backend); the header
/// map read from the host and decoded, on its own.
fn request_costs(crypto: &HostCrypto, case: &Value, iterations: u64) -> Value {
    use mesh_authn::config::FilterConfig;
    use mesh_authn::decision::Decision;
    use mesh_authn::remote_jwks::NoRemoteKeys;
    use mesh_authn::request::Request;
    use mesh_authn::request_authn::Env;
    let token = case["token"].as_str().unwrap();
    let jwt = Jwt::parse(token).unwrap();
    let config = json!({
        "workload": {"namespace": "foo"},
        "policies": [{"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
            "metadata": {"name": "probe", "namespace": "foo"},
            "spec": {"jwtRules": [{"issuer": jwt.iss, "jwks": case["jwks"]}]}}],
    });
    let config = FilterConfig::parse(config.to_string().as_bytes()).unwrap();
    let auth = format!("Bearer {token}");
    let request = Request::from_pairs(&[
        (":authority", "probe"),
        (":path", "/"),
        (":method", "GET"),
        ("authorization", &auth),
    ]);
    let now = jwt.iat.max(jwt.nbf).max(1);
    let time = |cache| {
        let env = Env {
            now,
            crypto,
            remote: &NoRemoteKeys,
            cache,
        };
        assert!(matches!(
            config.request_authn.authenticate(&request, &env),
            Decision::Allow(_)
        ));
        let start = now_ns();
        for _ in 0..iterations {
            std::hint::black_box(config.request_authn.authenticate_attributed(&request, &env));
        }
        (now_ns() - start) as f64 / iterations as f64
    };
    let hit_ns = time(Some(&config.token_cache));
    let verify_ns = time(None);
    let start = now_ns();
    for _ in 0..iterations {
        std::hint::black_box(host::request_headers().unwrap());
    }
    let headers_ns = (now_ns() - start) as f64 / iterations as f64;
    json!({"alg": jwt.alg.name(), "cache_hit_ns": hit_ns, "no_cache_ns": verify_ns,
           "read_headers_ns": headers_ns})
}

/// Time per host call in the VM (`GET /hostcalls/<iterations>`, for the benchmark, not the
/// tests): each of the calls a request can make, in a loop on this request, minus the loop.
fn host_call_costs(iterations: u64) -> Value {
    let counter = host::define_counter("probe.hostcalls").unwrap();
    let time = |f: &mut dyn FnMut()| {
        let start = now_ns();
        for _ in 0..iterations {
            f();
        }
        (now_ns() - start) as f64 / iterations as f64
    };
    let mut sink = 0usize;
    let empty = time(&mut || sink = sink.wrapping_add(std::hint::black_box(1)));
    let clock = time(&mut || sink = sink.wrapping_add(now_ns() as usize));
    let metric = time(&mut || {
        let _ = host::increment_metric(counter, 1);
    });
    let pairs = time(&mut || {
        sink = sink.wrapping_add(host::request_headers().unwrap().path().len());
    });
    let one = time(&mut || {
        sink = sink.wrapping_add(
            host::request_header("authorization")
                .unwrap()
                .map_or(0, |v| v.len()),
        );
    });
    let replace = time(&mut || host::replace_request_header("x-probe", b"1").unwrap());
    let remove = time(&mut || host::remove_request_header("x-probe").unwrap());
    std::hint::black_box(sink);
    json!({"empty_ns": empty, "clock_ns": clock - empty, "increment_metric_ns": metric - empty,
           "header_map_pairs_ns": pairs - empty, "header_value_ns": one - empty,
           "replace_header_ns": replace - empty, "remove_header_ns": remove - empty})
}

/// The host's verdict on every bit flip and truncation: the variants it accepted, and how
/// often it gave no verdict (then the backend would have asked the pure code instead; with
/// none, the backend's verdict is the host's).
fn sweep(alg: Alg, key: &PublicKey, message: &[u8], sig: &[u8]) -> Value {
    let mut variants = Vec::new();
    for bit in 0..sig.len() * 8 {
        let mut s = sig.to_vec();
        s[bit / 8] ^= 1 << (bit % 8);
        variants.push(s);
    }
    for len in 1..sig.len() {
        variants.push(sig[..len].to_vec());
    }
    let mut host_accepted = Vec::new();
    let mut host_errors = 0;
    for (i, s) in variants.iter().enumerate() {
        match host_check(alg, key, s).map(|c| host_verdict(&c, message)) {
            Some(Ok(true)) => host_accepted.push(i),
            Some(Ok(false)) => {}
            _ => host_errors += 1,
        }
    }
    json!({"variants": variants.len(), "host_accepted": host_accepted,
           "host_errors": host_errors})
}

/// What the host answers for the forms it is not used for, measured on a signature the pure
/// backend accepts: PS* through an rsaEncryption key and through an RSASSA-PSS key, EdDSA with
/// each hash name, ES* with the JWS `r||s` form instead of DER, RS* itself as the control.
fn raw_capabilities(id: &str, alg: Alg, key: &PublicKey, message: &[u8], sig: &[u8]) -> Vec<Value> {
    let Some(spki) = key.spki_der() else {
        return Vec::new();
    };
    let hash = match alg {
        Alg::RS384 | Alg::PS384 | Alg::ES384 => "sha384",
        Alg::RS512 | Alg::PS512 | Alg::ES512 => "sha512",
        _ => "sha256",
    };
    let mut tries: Vec<(String, Vec<u8>, &str, Vec<u8>)> = Vec::new();
    match alg {
        Alg::PS256 | Alg::PS384 | Alg::PS512 => {
            tries.push((
                "rsaEncryption key".into(),
                spki.to_vec(),
                hash,
                sig.to_vec(),
            ));
            tries.push((
                "RSASSA-PSS key".into(),
                rsassa_pss_spki(spki),
                hash,
                sig.to_vec(),
            ));
        }
        Alg::EdDSA => {
            for h in ["sha256", "sha512", "sha1", ""] {
                tries.push((format!("hash {h:?}"), spki.to_vec(), h, sig.to_vec()));
            }
        }
        Alg::ES256 | Alg::ES384 | Alg::ES512 => {
            tries.push((
                "JWS r||s signature".into(),
                spki.to_vec(),
                hash,
                sig.to_vec(),
            ));
        }
        Alg::RS256 | Alg::RS384 | Alg::RS512 => {
            tries.push((
                "rsaEncryption key".into(),
                spki.to_vec(),
                hash,
                sig.to_vec(),
            ));
        }
        _ => {}
    }
    tries
        .into_iter()
        .map(|(form, public_key, hash, signature)| {
            let check = HostCheck {
                hash,
                public_key: &public_key,
                signature: std::borrow::Cow::Owned(signature),
            };
            let raw = host::call_foreign_function(
                "verify_signature",
                &mesh_authn::jwt::host_crypto::encode_arguments(&check, message),
            );
            json!({"id": id, "alg": alg.name(), "form": form,
                   "result": answer(host_verdict(&check, message)),
                   "error": raw.map(|r| error_of(&r)).unwrap_or_else(|s| format!("status {}", s.0))})
        })
        .collect()
}

/// `VerifySignatureResult.error` (field 2), for the report.
fn error_of(result: &[u8]) -> String {
    match result.iter().position(|b| *b == 0x12) {
        Some(at) if at + 2 <= result.len() => {
            let len = usize::from(result[at + 1]);
            String::from_utf8_lossy(result.get(at + 2..at + 2 + len).unwrap_or_default())
                .into_owned()
        }
        _ => String::new(),
    }
}

/// The same RSA key under `id-RSASSA-PSS` (1.2.840.113549.1.1.10, no parameters).
fn rsassa_pss_spki(rsa_encryption_spki: &[u8]) -> Vec<u8> {
    // rsaEncryption SPKI: 30 <len> 30 0d 06 09 <9-byte OID> 05 00 03 <bit string>.
    let algorithm_at = if rsa_encryption_spki[1] & 0x80 != 0 {
        2 + usize::from(rsa_encryption_spki[1] & 0x7f)
    } else {
        2
    };
    let bit_string = &rsa_encryption_spki[algorithm_at + 15..];
    let mut content = vec![
        0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
    ];
    content.extend_from_slice(bit_string);
    let mut out = vec![0x30];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(&content);
    out
}
