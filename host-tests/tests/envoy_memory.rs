//! No memory growth in the filter over 200,000 requests with rotating tokens, through the real
//! Envoy (two workers) and the built `.wasm`. Measured from outside: Envoy's
//! `server.memory_allocated` and `server.memory_heap_size` (tcmalloc, where Envoy's own
//! per-request state lives) and the process's resident set (`VmRSS`, which also holds the V8
//! VMs' linear memory: a leak inside the VM grows it and never shrinks). Compared after a
//! warm-up, so that caches, pools and the VMs' heaps have reached their working size; the
//! bounds are generous (a few MiB) but a leak of a few dozen bytes per request exceeds them.
//! Keep-alive connections from a few threads, so the run takes seconds; nothing is timed.
//!
//! The test can fail: a build that leaked 64 bytes per request in `on_http_request_headers`
//! grew VmRSS by 15.4 MiB over the 200,000 requests (2026-11-25); the healthy build 0.1 MiB.
//! The warm-up is long enough for `memory_allocated` to settle (Envoy's own pools and stats:
//! +0.5 MiB after 20,000 requests, +0.02 MiB after 40,000).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use host_tests::envoy::{Envoy, Options};
use host_tests::http;
use host_tests::plugin_config::{PluginConfig, Policy, Rule};
use host_tests::servers::AcceptLoop;
use host_tests::tokens::{self, claims, EcIssuer};
use serde_json::json;

const ISSUER: &str = "https://memory.example";
const WARMUP: usize = 40_000;
const REQUESTS: usize = 200_000;
const THREADS: usize = 4;
const DISTINCT_TOKENS: usize = 2_000;

/// An upstream that answers every request `200 ok` on keep-alive connections (the echo
/// upstream closes each connection: 240,000 upstream connections would measure the kernel).
struct KeepAliveUpstream {
    port: u16,
    _accept: AcceptLoop,
}

impl KeepAliveUpstream {
    fn start() -> KeepAliveUpstream {
        let accept = AcceptLoop::start(|conn| {
            std::thread::spawn(move || serve(conn));
        });
        KeepAliveUpstream {
            port: accept.port,
            _accept: accept,
        }
    }
}

/// GET requests only (no bodies): a request ends at its blank line.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn plugin_config(keys: &[EcIssuer]) -> String {
    let jwks = tokens::jwks_json(&keys.iter().map(EcIssuer::jwk).collect::<Vec<_>>());
    PluginConfig::new()
        .policy(&Policy::new(
            "httpbin",
            vec![Rule {
                issuer: ISSUER.into(),
                jwks,
                claims: vec![("x-sub", "sub")],
                payload_header: Some("x-payload"),
                ..Rule::default()
            }],
        ))
        .render()
}

/// One request of the mix, by number: mostly valid tokens (rotating over all of them), every
/// 10th a forged one, every 10th (offset 5) none.
fn request(i: usize, valid: &[String], forged: &[String]) -> (Vec<u8>, u16) {
    let (token, status) = match i % 10 {
        9 => (Some(&forged[i % forged.len()]), 401),
        5 => (None, 200),
        _ => (Some(&valid[i % valid.len()]), 200),
    };
    let mut req = format!("GET /r/{i} HTTP/1.1\r\nhost: memory\r\n");
    if let Some(t) = token {
        req.push_str(&format!("authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    (req.into_bytes(), status)
}

/// Sends requests `from..to` of the mix over `THREADS` keep-alive connections; counts answers
/// that were not the expected status.
fn run(port: u16, from: usize, to: usize, valid: &[String], forged: &[String]) -> usize {
    let wrong = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let wrong = &wrong;
            s.spawn(move || {
                let connect = || {
                    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_nodelay(true).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    c
                };
                let mut conn = connect();
                for i in (from + t..to).step_by(THREADS) {
                    let (req, status) = request(i, valid, forged);
                    conn.write_all(&req).unwrap();
                    let r = http::read_and_parse(&mut conn).unwrap();
                    if r.status != status && wrong.fetch_add(1, Ordering::SeqCst) < 3 {
                        eprintln!("request {i}: want {status}, got {r:?}");
                    }
                    if r.header("connection") == Some("close") {
                        let _ = conn.shutdown(Shutdown::Both);
                        conn = connect();
                    }
                }
            });
        }
    });
    wrong.into_inner()
}

#[derive(Debug, Clone, Copy)]
struct Memory {
    allocated: u64,
    heap: u64,
    rss: u64,
}

fn memory(envoy: &Envoy) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{}/status", envoy.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    Memory {
        allocated: envoy.stat("server.memory_allocated").unwrap(),
        heap: envoy.stat("server.memory_heap_size").unwrap(),
        rss: rss_kib * 1024,
    }
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn no_memory_growth_over_200k_requests_with_rotating_tokens() {
    let upstream = KeepAliveUpstream::start();
    let keys: Vec<EcIssuer> = (0..3)
        .map(|i| EcIssuer::generate(&format!("k{i}")))
        .collect();
    let valid: Vec<String> = (0..DISTINCT_TOKENS)
        .map(|i| {
            let mut c = claims(ISSUER, None, 3600);
            c["sub"] = json!(format!("user-{i}@example.com"));
            c["jti"] = json!(format!("id-{i}"));
            keys[i % keys.len()].mint(c)
        })
        .collect();
    let forged: Vec<String> = valid
        .iter()
        .take(100)
        .map(|t| tokens::corrupt_signature(t))
        .collect();
    let options = Options {
        concurrency: 2,
        log_level: "warning".into(),
        ..Options::default()
    };
    let envoy = Envoy::start_with(&plugin_config(&keys), upstream.port, &options)
        .unwrap_or_else(|e| panic!("Envoy did not start: {e}"));
    let port = envoy.port();

    assert_eq!(run(port, 0, WARMUP, &valid, &forged), 0, "warm-up answers");
    let before = memory(&envoy);
    assert_eq!(
        run(port, WARMUP, WARMUP + REQUESTS, &valid, &forged),
        0,
        "answers"
    );
    let after = memory(&envoy);
    let growth = |a: u64, b: u64| (b as f64 - a as f64) / MIB;
    let (allocated, heap, rss) = (
        growth(before.allocated, after.allocated),
        growth(before.heap, after.heap),
        growth(before.rss, after.rss),
    );
    eprintln!(
        "MEASURE memory over {REQUESTS} requests after {WARMUP} warm-up ({DISTINCT_TOKENS} \
         distinct tokens, {THREADS} keep-alive connections, 2 workers): \
         memory_allocated {:.2} -> {:.2} MiB ({allocated:+.2}), memory_heap_size {:.2} -> \
         {:.2} MiB ({heap:+.2}), VmRSS {:.2} -> {:.2} MiB ({rss:+.2})",
        before.allocated as f64 / MIB,
        after.allocated as f64 / MIB,
        before.heap as f64 / MIB,
        after.heap as f64 / MIB,
        before.rss as f64 / MIB,
        after.rss as f64 / MIB,
    );
    // 2 MiB over 200,000 requests is 10 bytes a request.
    assert!(allocated < 2.0, "memory_allocated grew {allocated:.2} MiB");
    assert!(heap < 4.0, "memory_heap_size grew {heap:.2} MiB");
    // The VMs' linear memory is in the RSS only: 4 MiB is 20 bytes a request.
    assert!(rss < 4.0, "VmRSS grew {rss:.2} MiB");

    // The VMs are alive on both workers (fresh connections).
    let good = format!("Bearer {}", valid[0]);
    let bad = format!("Bearer {}", forged[0]);
    for _ in 0..12 {
        assert_eq!(
            http::get(port, "/", &[("authorization", &good)]).status,
            200
        );
        assert_eq!(http::get(port, "/", &[("authorization", &bad)]).status, 401);
    }
}
