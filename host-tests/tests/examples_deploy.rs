//! The deployment examples cannot rot: the docker-compose demo (validated with
//! `docker-compose config`, its mounted Envoy configuration validated with the real `.wasm`,
//! and its topology run without Docker, checking the results its README promises), and every
//! policy in `examples/policies/` enforced through the real Envoy.
//!
//! Expected results are the ones the README states, which follow from Istio's semantics and
//! tokens with known claims (minted by the demo's own issuer, or Istio's sample tokens).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_tests::certs::TestPki;
use host_tests::envoy::{self, Envoy, Options};
use host_tests::http;
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::servers::{EchoUpstream, StaticServer};
use host_tests::{workspace_root, yaml_string_literal};

fn compose_dir() -> PathBuf {
    workspace_root().join("examples/docker-compose")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-authn-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `gen-certs.sh DIR`, as the README's second command runs it (into `certs/`).
fn gen_certs(dir: &Path) {
    let out = Command::new(compose_dir().join("gen-certs.sh"))
        .arg(dir)
        .output()
        .expect("run gen-certs.sh (needs openssl)");
    assert!(out.status.success(), "gen-certs.sh: {out:?}");
    for f in [
        "ca.crt",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
    ] {
        assert!(dir.join(f).is_file(), "gen-certs.sh made no {f}");
    }
}

/// The Envoy image tag is the Envoy version the tests run.
#[test]
fn compose_file_validates_and_mounts_what_exists() {
    let makefile = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION := "))
        .unwrap()
        .trim();
    let compose_path = compose_dir().join("docker-compose.yaml");
    let compose = std::fs::read_to_string(&compose_path).unwrap();
    assert!(
        compose.contains(&format!("image: envoyproxy/envoy:v{version}\n")),
        "the compose file must run Envoy {version}, as the tests do"
    );
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(&compose_path)
        .arg("config")
        .output()
        .expect("docker-compose is installed by `make setup`");
    assert!(out.status.success(), "docker-compose config: {out:?}");
    let normalized = String::from_utf8(out.stdout).unwrap();

    // Every bind mount: the source exists (certs/ once gen-certs.sh ran, the .wasm once
    // `make wasm` ran); remember where each container path comes from.
    let certs = temp_dir("compose-certs");
    gen_certs(&certs);
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for line in normalized.lines() {
        let line = line.trim().trim_start_matches("- ");
        let parts: Vec<&str> = line.split(':').collect();
        if parts.len() != 3 || !parts[0].starts_with('/') || parts[2] != "ro" {
            continue;
        }
        let (source, target) = (PathBuf::from(parts[0]), parts[1].to_owned());
        let source = if source.ends_with("certs") {
            certs.clone()
        } else {
            source
        };
        assert!(
            source.exists(),
            "{} is mounted but missing",
            source.display()
        );
        mounts.push((target, source));
    }
    assert_eq!(mounts.len(), 5, "mounts found: {mounts:?}\n{normalized}");

    // The mounted Envoy configuration, with container paths mapped to the mounted sources,
    // passes `envoy --mode validate`, which loads the .wasm and runs its configuration.
    let mut config = std::fs::read_to_string(compose_dir().join("envoy.yaml")).unwrap();
    for (target, source) in &mounts {
        config = config.replace(target.as_str(), source.to_str().unwrap());
    }
    let path = certs.join("envoy.yaml");
    std::fs::write(&path, &config).unwrap();
    let (ok, log) = envoy::validate(&path);
    assert!(ok, "{log}");
    assert!(
        log.contains("configured: workload demo{app=httpbin}"),
        "{log}"
    );
}

/// A helper process on 127.0.0.1, killed when dropped.
struct Helper(Child);

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python(script: &str, env: &[(&str, String)]) -> Helper {
    let mut cmd = Command::new("python3");
    cmd.arg(compose_dir().join(script))
        .env("BIND", "127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Helper(envoy::spawn_tied_to_process(cmd).expect("python3"))
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// curl, as the README runs it; returns stdout.
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The compose topology without Docker: the same envoy.yaml, issuer.py and echo.py on
/// 127.0.0.1 ports (hostnames `issuer` and `upstream` replaced by 127.0.0.1, the listener ports
/// by free ones, in the plugin configuration's `portLevelMtls` too), and every curl line of
/// the folder's README with its promised result.
#[test]
fn compose_topology_answers_as_its_readme_says() {
    let certs = temp_dir("compose-run");
    gen_certs(&certs);
    let (issuer_port, echo_port) = (free_port(), free_port());
    let _issuer = python(
        "issuer.py",
        &[
            ("ISSUER", "http://issuer:8080".to_owned()),
            ("PORT", issuer_port.to_string()),
        ],
    );
    let _echo = python("echo.py", &[("PORT", echo_port.to_string())]);
    wait_for_port(issuer_port);
    wait_for_port(echo_port);

    let (plain, strict) = (free_port(), free_port());
    let config = std::fs::read_to_string(compose_dir().join("envoy.yaml"))
        .unwrap()
        .replace("/etc/envoy/certs", certs.to_str().unwrap())
        .replace(
            "/etc/envoy/mesh_authn.wasm",
            host_tests::wasm_path().to_str().unwrap(),
        )
        .replace(
            "address: 0.0.0.0, port_value: 9901",
            "address: 127.0.0.1, port_value: 0",
        )
        .replace(
            "address: 0.0.0.0, port_value: 8080",
            &format!("address: 127.0.0.1, port_value: {plain}"),
        )
        .replace(
            "address: 0.0.0.0, port_value: 8443",
            &format!("address: 127.0.0.1, port_value: {strict}"),
        )
        .replace(
            "                          8080:\n",
            &format!("                          {plain}:\n"),
        )
        .replace(
            "address: upstream, port_value: 8000",
            &format!("address: 127.0.0.1, port_value: {echo_port}"),
        )
        .replace(
            "address: issuer, port_value: 8080",
            &format!("address: 127.0.0.1, port_value: {issuer_port}"),
        );
    assert!(!config.contains("port_value: 8443") && !config.contains("0.0.0.0"));
    let envoy = Envoy::start_config(&config, &Options::default())
        .unwrap_or_else(|e| panic!("Envoy did not start: {e:?}"));

    let token_url = |q: &str| format!("127.0.0.1:{issuer_port}/token?{q}");
    let token = curl(&[&token_url("sub=alice&aud=demo")]).trim().to_owned();
    let expired = curl(&[&token_url("sub=alice&aud=demo&ttl=-3600")])
        .trim()
        .to_owned();
    let other_aud = curl(&[&token_url("sub=alice&aud=other")]).trim().to_owned();
    assert_eq!(token.matches('.').count(), 2, "not a token: {token}");

    let at = |port: u16| format!("127.0.0.1:{port}/get");
    let code = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        curl(&all)
    };
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let body_and_code = |args: &[&str]| {
        let mut all = vec!["-w", " %{http_code}"];
        all.extend_from_slice(args);
        curl(&all)
    };
    assert_eq!(code(&[&at(plain)]), "200", "no token");
    let echoed = curl(&["-H", &bearer(&token), &at(plain)]);
    let echoed: serde_json::Value = serde_json::from_str(&echoed).unwrap();
    assert_eq!(echoed["headers"]["x-jwt-sub"], "alice", "{echoed}");
    assert!(echoed["headers"].get("authorization").is_none(), "{echoed}");
    assert_eq!(
        body_and_code(&["-H", &bearer(&format!("{token}x")), &at(plain)]),
        "Jwt verification fails 401"
    );
    assert_eq!(
        body_and_code(&["-H", &bearer(&expired), &at(plain)]),
        "Jwt is expired 401"
    );
    assert_eq!(
        body_and_code(&["-H", &bearer(&other_aud), &at(plain)]),
        "Audiences in Jwt are not allowed 403"
    );
    assert!(
        body_and_code(&[&at(strict)]).ends_with(" 403"),
        "STRICT, plaintext"
    );
    let ca = certs.join("ca.crt");
    let https = format!("https://localhost:{strict}/get");
    assert!(
        body_and_code(&["--cacert", ca.to_str().unwrap(), &https]).ends_with(" 403"),
        "STRICT, TLS without a client certificate"
    );
    assert_eq!(
        code(&[
            "--cacert",
            ca.to_str().unwrap(),
            "--cert",
            certs.join("client.crt").to_str().unwrap(),
            "--key",
            certs.join("client.key").to_str().unwrap(),
            "-H",
            &bearer(&token),
            &https,
        ]),
        "200",
        "STRICT, mTLS and a valid token"
    );
    let stats = envoy.stats();
    assert!(stats.contains("mesh_authn.allowed"), "{stats}");
}

/// Istio's documentation key set, served where the example policies' `jwksUri` points, through
/// the cluster Istio would create for a `ServiceEntry` of `raw.githubusercontent.com:443`.
fn istio_samples() -> (StaticServer, String, String) {
    let fixtures = workspace_root().join("host-tests/fixtures/istio-jwt-samples");
    let read = |f: &str| {
        std::fs::read_to_string(fixtures.join(f))
            .unwrap()
            .trim()
            .to_owned()
    };
    let server = StaticServer::start(
        "/istio/istio/release-1.28/security/tools/jwt/samples/jwks.json",
        read("jwks.json"),
    );
    (server, read("demo.jwt"), read("groups-scope.jwt"))
}

fn policy_file(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("examples/policies").join(name)).unwrap()
}

/// The bootstrap of `envoy/mesh-authn.yaml` plus the `outbound|443||raw.githubusercontent.com`
/// cluster (pointing at the local key-set server), appended to its `clusters` list, which
/// ends the template.
fn start_with_istio_cluster(plugin_config: &str, upstream: u16, jwks_port: u16) -> Envoy {
    let mut config = envoy::render_config(plugin_config, upstream);
    assert!(config
        .trim_end()
        .ends_with(&format!("port_value: {upstream}}}")));
    config.push_str(&format!(
        "  - name: \"outbound|443||raw.githubusercontent.com\"\n    type: STATIC\n    \
         connect_timeout: 2s\n    load_assignment:\n      cluster_name: jwks\n      endpoints:\n      \
         - lb_endpoints:\n        - endpoint:\n            address:\n              \
         socket_address: {{address: 127.0.0.1, port_value: {jwks_port}}}\n"
    ));
    Envoy::start_config(&config, &Options::default())
        .unwrap_or_else(|e| panic!("Envoy did not start: {e:?}"))
}

fn with_workload(workload: &str, policy: &str) -> String {
    format!(
        "workload: {workload}\npolicies: {}\n",
        yaml_string_literal(policy)
    )
}

#[test]
fn request_authentication_examples_accept_istios_sample_tokens() {
    let (jwks, demo, groups) = istio_samples();
    let upstream = EchoUpstream::start();
    let bearer = |t: &str| format!("Bearer {t}");
    let forged = format!("{}x", demo);

    // app: httpbin in foo: the token is verified and removed.
    let envoy = start_with_istio_cluster(
        &with_workload(
            "{namespace: foo, labels: {app: httpbin}}",
            &policy_file("request-authn-httpbin.yaml"),
        ),
        upstream.port,
        jwks.port,
    );
    for token in [&demo, &groups] {
        let r = http::get(envoy.port(), "/get", &[("authorization", &bearer(token))]);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            !r.body.contains("authorization"),
            "token not removed: {}",
            r.body
        );
    }
    let r = http::get(envoy.port(), "/get", &[("authorization", &bearer(&forged))]);
    assert_eq!((r.status, r.body.as_str()), (401, "Jwt verification fails"));
    assert_eq!(http::get(envoy.port(), "/get", &[]).status, 200, "no token");
    assert!(jwks.request_count() >= 1, "the jwksUri was not fetched");
    drop(envoy);

    // The ingress gateway: forwardOriginalToken keeps it.
    let envoy = start_with_istio_cluster(
        &with_workload(
            "{namespace: istio-system, labels: {istio: ingressgateway}}",
            &policy_file("request-authn-ingress.yaml"),
        ),
        upstream.port,
        jwks.port,
    );
    let r = http::get(envoy.port(), "/get", &[("authorization", &bearer(&demo))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains(&demo), "token not forwarded: {}", r.body);
    let r = http::get(envoy.port(), "/get", &[("authorization", &bearer(&forged))]);
    assert_eq!(r.status, 401, "{r:?}");
}

#[test]
fn peer_authentication_examples_refuse_plaintext_where_strict() {
    let upstream = EchoUpstream::start();
    let start = |workload: &str, file: &str| {
        Envoy::start(&with_workload(workload, &policy_file(file)), upstream.port)
            .unwrap_or_else(|e| panic!("{file}: Envoy did not start: {e:?}"))
    };
    let plaintext = |envoy: &Envoy| http::get(envoy.port(), "/get", &[]).status;
    // Namespace-wide STRICT: every workload of foo.
    let e = start(
        "{namespace: foo, labels: {app: any}}",
        "peer-strict-namespace.yaml",
    );
    assert_eq!(plaintext(&e), 403);
    let e = start(
        "{namespace: bar, labels: {app: any}}",
        "peer-strict-namespace.yaml",
    );
    assert_eq!(plaintext(&e), 200, "another namespace");
    // STRICT for app: prod only.
    let e = start(
        "{namespace: foo, labels: {app: prod}}",
        "peer-strict-workload.yaml",
    );
    assert_eq!(plaintext(&e), 403);
    let e = start(
        "{namespace: foo, labels: {app: web}}",
        "peer-strict-workload.yaml",
    );
    assert_eq!(plaintext(&e), 200, "not selected");
    // STRICT but port 5000 DISABLE: the listener's port decides. The mTLS Envoy listens on two
    // ports chosen at run time; the policy's 5000 becomes the first of them.
    let pki = TestPki::generate();
    let policy = policy_file("peer-strict-port-disable.yaml");
    let e = MtlsEnvoy::start(&pki, upstream.port, |port_a, _| {
        with_workload(
            "{namespace: foo, labels: {app: prod}}",
            &policy.replace("5000:", &format!("{port_a}:")),
        )
    })
    .unwrap_or_else(|e| panic!("Envoy did not start: {e:?}"));
    assert_eq!(
        http::get(e.port_a, "/get", &[]).status,
        200,
        "port-level DISABLE"
    );
    assert_eq!(
        http::get(e.port_b, "/get", &[]).status,
        403,
        "STRICT elsewhere"
    );
}
