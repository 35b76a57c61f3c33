//! `make demo`: the filter in a real Envoy in front of an echo upstream, with a local
//! JWKS/issuer helper, exercised by real `curl` commands that are printed so they can be
//! pasted. Then it keeps running until Ctrl-C (or end of standard input).
//!
//! `--once`: run the curl commands and exit, 0 only when every result is the expected one
//! (`make demo-check`).
//!
//! Envoy never outlives the demo: it is killed on every exit path, from the signal handler's
//! flag, and by the kernel (`PR_SET_PDEATHSIG`) if the demo itself is killed.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use host_tests::certs::TestPki;
use host_tests::envoy::Envoy;
use host_tests::http;
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::servers::{EchoUpstream, StaticServer};
use host_tests::tokens::{self, claims, RsaIssuer};

const AUDIENCE: &str = host_tests::DEMO_AUDIENCE;
const JWKS_PATH: &str = "/.well-known/jwks.json";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe. The main loop does the rest.
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
}

/// One curl run: what to send, what to expect.
struct Check {
    label: &'static str,
    /// The token file under `.demo/`, sent as `Authorization: Bearer`; `None` sends none.
    token: Option<(&'static str, String)>,
    path: &'static str,
    want_status: u16,
}

struct Outcome {
    status: u16,
    summary: String,
    ok: bool,
}

fn usage() -> &'static str {
    "usage: demo [--once]\n  --once  run the curl commands, print them, exit (non-zero if any result is unexpected)"
}

fn main() -> ExitCode {
    let mut once = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--once" => once = true,
            "-h" | "--help" => {
                println!("{}", usage());
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{}", usage());
                return ExitCode::from(2);
            }
        }
    }
    install_signal_handlers();
    match run(once) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(once: bool) -> Result<ExitCode, String> {
    let root = host_tests::workspace_root();
    let demo_dir = root.join(".demo");
    std::fs::create_dir_all(&demo_dir)
        .map_err(|e| format!("cannot create {}: {e}", demo_dir.display()))?;

    // The upstream and the JWKS/issuer helper.
    let upstream = EchoUpstream::start();
    let key = RsaIssuer::generate("demo-key-1");
    let jwks_server = StaticServer::start(JWKS_PATH, tokens::jwks_json(&[key.jwk()]));
    let issuer = format!("http://127.0.0.1:{}", jwks_server.port);
    let jwks = http::try_request(jwks_server.port, "GET", JWKS_PATH, &[], "")
        .map_err(|e| format!("the JWKS helper does not answer: {e}"))?;
    if jwks.status != 200 {
        return Err(format!("the JWKS helper answered {}", jwks.status));
    }

    // The plugin configuration.
    let plugin_config =
        host_tests::demo_plugin_config(&issuer, &format!("{issuer}{JWKS_PATH}"), &jwks.body);
    let config_path = demo_dir.join("plugin-config.yaml");
    write(&config_path, &plugin_config)?;

    // Tokens.
    let valid = key.mint(claims(&issuer, Some(AUDIENCE), 3600));
    let expired = key.mint(claims(&issuer, Some(AUDIENCE), -3600));
    let bad_signature = tokens::corrupt_signature(&valid);
    let wrong_audience = key.mint(claims(&issuer, Some("some-other-service"), 3600));
    for (name, token) in [
        ("valid", &valid),
        ("expired", &expired),
        ("bad-signature", &bad_signature),
        ("wrong-audience", &wrong_audience),
    ] {
        write(&demo_dir.join(format!("{name}.jwt")), token)?;
    }

    // Envoy.
    let mut envoy = Envoy::start(&plugin_config, upstream.port)
        .map_err(|e| format!("Envoy did not start: {e}"))?;
    let base = format!("http://127.0.0.1:{}", envoy.port());

    println!("mesh-authn demo");
    println!("  echo upstream        http://127.0.0.1:{}", upstream.port);
    println!("  JWKS/issuer helper   {issuer}{JWKS_PATH}");
    println!("  plugin config        {}", config_path.display());
    println!("  tokens               {}/*.jwt", demo_dir.display());
    println!(
        "  Envoy                {base}  (admin http://127.0.0.1:{}, log {})",
        envoy.admin_port(),
        envoy.log_path().display()
    );
    println!();

    let checks = [
        Check {
            label: "no token",
            token: None,
            path: "/get",
            want_status: 200,
        },
        Check {
            label: "valid token",
            token: Some(("valid", valid.clone())),
            path: "/get",
            want_status: 200,
        },
        Check {
            label: "valid token, a path an AuthorizationPolicy denies",
            token: Some(("valid", valid)),
            path: "/admin/users",
            want_status: 403,
        },
        Check {
            label: "expired token",
            token: Some(("expired", expired)),
            path: "/get",
            want_status: 401,
        },
        Check {
            label: "bad signature",
            token: Some(("bad-signature", bad_signature)),
            path: "/get",
            want_status: 401,
        },
        Check {
            label: "wrong audience",
            token: Some(("wrong-audience", wrong_audience)),
            path: "/get",
            want_status: 403,
        },
    ];
    let mut as_expected = 0;
    for check in &checks {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let url = format!("{base}{}", check.path);
        let printed = match &check.token {
            None => format!("curl -s {url}"),
            Some((name, _)) => format!(
                "curl -s -H \"Authorization: Bearer $(cat {})\" {url}",
                shell_quote(&demo_dir.join(format!("{name}.jwt")))
            ),
        };
        println!("# {}", check.label);
        println!("$ {printed}");
        let outcome = curl(&url, check, &demo_dir)?;
        println!(
            "  -> {} (expected {}) {}  {}",
            outcome.status,
            check.want_status,
            if outcome.ok { "OK" } else { "UNEXPECTED" },
            outcome.summary
        );
        println!();
        if outcome.ok {
            as_expected += 1;
        }
    }
    // PeerAuthentication: a second Envoy whose listener takes plaintext and TLS, under STRICT.
    let mut total = checks.len();
    let peer_envoy = if STOP.load(Ordering::SeqCst) {
        None
    } else {
        let (envoy, passed, count) = peer_authn_demo(&demo_dir, upstream.port)?;
        as_expected += passed;
        total += count;
        Some(envoy)
    };

    let all_ok = as_expected == total;
    // The plain "N passed, N failed" form, so CI logs read the demo check like a test run.
    println!("demo: {as_expected} passed, {} failed", total - as_expected);

    let code = if once {
        if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    } else {
        wait_for_stop(&mut envoy, &base)
    };
    envoy.stop();
    drop(peer_envoy);
    drop(envoy);
    drop(jwks_server);
    drop(upstream);
    Ok(code)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs the real curl for `check` and judges the result.
fn curl(url: &str, check: &Check, demo_dir: &Path) -> Result<Outcome, String> {
    let body_path: PathBuf = demo_dir.join("last-response-body");
    let _ = std::fs::remove_file(&body_path);
    let mut cmd = Command::new("curl");
    cmd.arg("-sS")
        .arg("--max-time")
        .arg("10")
        .arg("-o")
        .arg(&body_path)
        .arg("-w")
        .arg("%{http_code}");
    if let Some((_, token)) = &check.token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let out = cmd
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl (is it installed?): {e}"))?;
    let code_text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let body = std::fs::read_to_string(&body_path).unwrap_or_default();
    let _ = std::fs::remove_file(&body_path);
    let status: u16 = code_text.parse().unwrap_or(0);
    if !out.status.success() || status == 0 {
        return Ok(Outcome {
            status,
            summary: format!(
                "curl failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            ok: false,
        });
    }
    let mut ok = status == check.want_status;
    let summary = if status == 200 {
        match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(echo) => {
                let headers = echo["headers"].as_array().cloned().unwrap_or_default();
                let saw_auth = headers.iter().any(|h| h[0] == "authorization");
                if check.token.is_some() && saw_auth {
                    // forwardOriginalToken is false: the token must not reach the upstream.
                    ok = false;
                }
                format!(
                    "upstream saw {} {}, {}",
                    echo["method"].as_str().unwrap_or("?"),
                    echo["path"].as_str().unwrap_or("?"),
                    if saw_auth {
                        "WITH an authorization header"
                    } else {
                        "no authorization header"
                    }
                )
            }
            Err(_) => format!("body: {}", excerpt(&body)),
        }
    } else {
        format!("body: {}", excerpt(&body))
    };
    Ok(Outcome {
        status,
        summary,
        ok,
    })
}

fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = one_line.chars().take(100).collect();
    if one_line.chars().count() > 100 {
        s.push('…');
    }
    format!("{s:?}")
}

/// Keeps Envoy up until Ctrl-C, SIGTERM, end of standard input, or Envoy's own exit.
fn wait_for_stop(envoy: &mut Envoy, base: &str) -> ExitCode {
    println!("Envoy on {base}; press Ctrl-C (or Ctrl-D) to stop");
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
        let _ = tx.send(());
    });
    loop {
        if STOP.load(Ordering::SeqCst) {
            println!("\nstopping");
            return ExitCode::SUCCESS;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                println!("end of standard input: stopping");
                return ExitCode::SUCCESS;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !envoy.is_running() {
            eprintln!("Envoy exited unexpectedly; its log:\n{}", envoy.log());
            return ExitCode::FAILURE;
        }
    }
}

/// A STRICT PeerAuthentication on an mTLS-capable listener: plaintext is refused (403),
/// a client certificate from the mesh CA with a `cluster.local` SPIFFE identity gets through.
/// Returns the running Envoy, the checks as expected, and the number of checks.
fn peer_authn_demo(
    demo_dir: &Path,
    upstream_port: u16,
) -> Result<(MtlsEnvoy, usize, usize), String> {
    let pki = TestPki::generate();
    let ca = demo_dir.join("ca.pem");
    let cert = demo_dir.join("client.pem");
    let key = demo_dir.join("client.key");
    write(&ca, &pki.ca.cert_pem)?;
    write(&cert, &pki.client_good.cert_pem)?;
    write(&key, &pki.client_good.key_pem)?;
    let config = |_: u16, _: u16| {
        "# Written by `make demo` (host-tests/src/bin/demo.rs).\n\
         workload: {namespace: foo, labels: {app: httpbin}}\n\
         trustDomain: cluster.local\n\
         policies:\n\
         - apiVersion: security.istio.io/v1\n  \
           kind: PeerAuthentication\n  \
           metadata: {name: default, namespace: istio-system}\n  \
           spec: {mtls: {mode: STRICT}}\n"
            .to_owned()
    };
    let config_path = demo_dir.join("peer-authn-config.yaml");
    write(&config_path, &config(0, 0))?;
    let setup = MtlsEnvoy::start(&pki, upstream_port, config)
        .map_err(|e| format!("the mTLS Envoy did not start: {e}"))?;
    println!(
        "PeerAuthentication STRICT (mesh-wide, {}), Envoy with TLS and plaintext on port {}",
        config_path.display(),
        setup.port_a
    );
    println!();
    let plain_url = format!("http://127.0.0.1:{}/get", setup.port_a);
    let tls_url = format!("https://localhost:{}/get", setup.port_a);
    let mtls_args = vec![
        "--cacert".to_owned(),
        ca.to_string_lossy().into_owned(),
        "--cert".to_owned(),
        cert.to_string_lossy().into_owned(),
        "--key".to_owned(),
        key.to_string_lossy().into_owned(),
    ];
    let peer_checks: [(&str, Vec<String>, &str, u16); 2] = [
        (
            "STRICT mTLS, plaintext: refused",
            Vec::new(),
            &plain_url,
            403,
        ),
        (
            "STRICT mTLS, client certificate spiffe://cluster.local/ns/foo/sa/bar",
            mtls_args,
            &tls_url,
            200,
        ),
    ];
    let mut passed = 0;
    for (label, args, url, want) in &peer_checks {
        if STOP.load(Ordering::SeqCst) {
            break;
        }
        let printed: Vec<String> = args
            .iter()
            .map(|a| {
                if a.starts_with("--") {
                    a.clone()
                } else {
                    shell_quote(Path::new(a))
                }
            })
            .collect();
        println!("# {label}");
        if printed.is_empty() {
            println!("$ curl -s {url}");
        } else {
            println!("$ curl -s {} {url}", printed.join(" "));
        }
        let (status, summary) = curl_plain(url, args, demo_dir)?;
        let ok = status == *want;
        println!(
            "  -> {status} (expected {want}) {}  {summary}",
            if ok { "OK" } else { "UNEXPECTED" }
        );
        println!();
        if ok {
            passed += 1;
        }
    }
    Ok((setup, passed, peer_checks.len()))
}

/// Runs curl with extra arguments: the status, and a one-line summary of the body.
fn curl_plain(url: &str, args: &[String], demo_dir: &Path) -> Result<(u16, String), String> {
    let body_path = demo_dir.join("last-response-body");
    let _ = std::fs::remove_file(&body_path);
    let out = Command::new("curl")
        .arg("-sS")
        .arg("--max-time")
        .arg("10")
        .arg("-o")
        .arg(&body_path)
        .arg("-w")
        .arg("%{http_code}")
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl (is it installed?): {e}"))?;
    let body = std::fs::read_to_string(&body_path).unwrap_or_default();
    let _ = std::fs::remove_file(&body_path);
    let status: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if !out.status.success() || status == 0 {
        return Ok((
            status,
            format!(
                "curl failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let summary = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(echo) if status == 200 => format!(
            "upstream saw {} {}",
            echo["method"].as_str().unwrap_or("?"),
            echo["path"].as_str().unwrap_or("?")
        ),
        _ => format!("body: {}", excerpt(&body)),
    };
    Ok((status, summary))
}
