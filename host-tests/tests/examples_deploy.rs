//! The deployment examples cannot rot: the docker-compose demo (its compose file validated
//! against the Compose Specification's schema and by `docker-compose config`, its port
//! bindings, mounts and key permissions checked, its mounted Envoy configuration validated
//! with the real `.wasm`, and its topology run without Docker, running every curl line of its
//! README), and every policy in `examples/policies/` enforced through the real Envoy.
//!
//! Expected results are the ones the README states, which follow from Istio's semantics and
//! tokens with known claims (minted by the demo's own issuer, or Istio's sample tokens); the
//! issuer's `kid` is checked against an RFC 7638 thumbprint computed here.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use host_tests::certs::TestPki;
use host_tests::envoy::{self, Envoy, Options};
use host_tests::http;
use host_tests::mtls_envoy::MtlsEnvoy;
use host_tests::readme;
use host_tests::servers::{EchoUpstream, StaticServer};
use host_tests::{workspace_root, yaml_string_literal};
use serde_json::Value;
use sha2::Digest as _;

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

/// The compose file as JSON.
fn compose() -> Value {
    let text = std::fs::read_to_string(compose_dir().join("docker-compose.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The Python that runs the Debian `docker-compose` (its shebang): it has `jsonschema` and
/// `yaml`, which docker-compose itself validates with.
fn compose_python() -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("command -v docker-compose")
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "docker-compose is installed by `make setup` (Debian package)"
    );
    let script = std::fs::read_to_string(&path).unwrap();
    let shebang = script.lines().next().unwrap_or("");
    shebang
        .strip_prefix("#!")
        .filter(|p| p.contains("python"))
        .unwrap_or_else(|| panic!("{path}: not a Python script: {shebang}"))
        .trim()
        .to_owned()
}

/// Validates `compose_yaml` against the vendored Compose Specification schema: Ok, or the
/// validator's message.
fn schema_check(compose_yaml: &str) -> Result<(), String> {
    let schema = workspace_root().join("host-tests/fixtures/compose-spec/compose-spec.json");
    let dir = temp_dir("compose-schema");
    let file = dir.join("compose.yaml");
    std::fs::write(&file, compose_yaml).unwrap();
    let out = Command::new(compose_python())
        .arg("-c")
        .arg(
            "import json, sys, yaml, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.validate(yaml.safe_load(open(sys.argv[2])), schema)\n",
        )
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The Compose v2 file: valid against the Compose Specification's JSON schema (a file with an
/// unknown key is not, so the check can fail), and, but for the v2-only `create_host_path`,
/// against the Debian `docker-compose config` (v1).
#[test]
fn compose_file_validates_against_the_compose_spec_and_docker_compose_v1() {
    let path = compose_dir().join("docker-compose.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        compose().get("version").is_none(),
        "obsolete `version:` key"
    );
    schema_check(&text).unwrap_or_else(|e| panic!("compose spec schema: {e}"));
    let broken = text.replacen("{create_host_path: false}", "{create_host_pathh: false}", 1);
    assert!(
        schema_check(&broken).is_err(),
        "the schema check accepts anything"
    );

    let v1_text: String = text
        .lines()
        .filter(|l| l.trim() != "bind: {create_host_path: false}")
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !v1_text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("create_host_path")),
        "{v1_text}"
    );
    let dir = temp_dir("compose-v1");
    let v1 = dir.join("docker-compose.yaml");
    std::fs::write(&v1, v1_text).unwrap();
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(&v1)
        .arg("--project-directory")
        .arg(compose_dir())
        .arg("config")
        .output()
        .expect("docker-compose is installed by `make setup`");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "docker-compose config: {out:?}");
}

/// Every published port binds to 127.0.0.1 (the admin port and the issuer's minting port
/// among them); every mount is a read-only bind that never creates its source; the Python
/// services run under an init; the Envoy image is the version the tests run; and the mounted
/// Envoy configuration, with container paths mapped to the mounted sources (certificates from
/// gen-certs.sh, the built `.wasm`), passes `envoy --mode validate`.
#[test]
fn compose_file_binds_loopback_and_mounts_what_exists() {
    let makefile = std::fs::read_to_string(workspace_root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION := "))
        .unwrap()
        .trim();
    let compose = compose();
    let services = compose["services"].as_object().unwrap();
    assert_eq!(
        services["envoy"]["image"],
        format!("envoyproxy/envoy:v{version}"),
        "the compose file must run Envoy {version}, as the tests do"
    );

    let certs = temp_dir("compose-certs");
    gen_certs(&certs);
    let mut published = Vec::new();
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for (name, service) in services {
        for port in service["ports"].as_array().into_iter().flatten() {
            let port = port.as_str().unwrap_or_else(|| panic!("{name}: {port}"));
            let parts: Vec<&str> = port.split(':').collect();
            assert!(
                parts.len() == 3 && parts[0] == "127.0.0.1",
                "{name}: port {port} is not bound to 127.0.0.1"
            );
            published.push(parts[1].to_owned());
        }
        for volume in service["volumes"].as_array().into_iter().flatten() {
            assert_eq!(volume["type"], "bind", "{name}: {volume}");
            assert_eq!(volume["read_only"], true, "{name}: {volume}");
            assert_eq!(
                volume["bind"]["create_host_path"], false,
                "{name}: {volume} would create a missing source as a root-owned directory"
            );
            let source = volume["source"].as_str().unwrap();
            let source = if source == "./certs" {
                certs.clone()
            } else {
                compose_dir().join(source)
            };
            assert!(
                source.exists(),
                "{} is mounted but missing",
                source.display()
            );
            mounts.push((volume["target"].as_str().unwrap().to_owned(), source));
        }
        if service["command"][0] == "python3" {
            assert_eq!(service["init"], true, "{name}: a Python PID 1 without init");
        }
    }
    for must in ["9901", "8081"] {
        assert!(published.iter().any(|p| p == must), "{must}: {published:?}");
    }
    assert_eq!(mounts.len(), 5, "mounts found: {mounts:?}");

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

/// gen-certs.sh: no key is world-readable; Envoy's uid/gid 101 in the envoyproxy/envoy image
/// can read `server.key` (owner or group 101 with the read bit); `client.key` is the caller's
/// alone; the CA key is not in the (mounted) output directory, which uid 101 can search.
#[test]
fn gen_certs_keeps_keys_private_yet_readable_by_envoy() {
    let certs = temp_dir("compose-perms");
    gen_certs(&certs);
    let mode = |f: &str| std::fs::metadata(certs.join(f)).unwrap();
    let server = mode("server.key");
    assert_eq!(server.mode() & 0o007, 0, "server.key is world-accessible");
    let readable_by_101 = (server.uid() == 101 && server.mode() & 0o400 != 0)
        || (server.gid() == 101 && server.mode() & 0o040 != 0);
    assert!(
        readable_by_101,
        "server.key: uid {} gid {} mode {:o}",
        server.uid(),
        server.gid(),
        server.mode()
    );
    assert_eq!(mode("client.key").mode() & 0o077, 0, "client.key");
    for f in ["ca.crt", "server.crt", "client.crt"] {
        assert_eq!(mode(f).mode() & 0o004, 0o004, "{f} must be readable");
    }
    assert_eq!(
        std::fs::metadata(&certs).unwrap().mode() & 0o001,
        0o001,
        "uid 101 cannot enter the mounted directory"
    );
    let names: Vec<String> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("ca.") && n != "ca.crt"),
        "CA material in the mounted folder: {names:?}"
    );
    let _ = std::fs::remove_dir_all(&certs);
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

fn issuer(port: u16) -> Helper {
    python(
        "issuer.py",
        &[
            ("ISSUER", "http://issuer:8080".to_owned()),
            ("PORT", port.to_string()),
        ],
    )
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
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

/// RFC 7638 §3 for an RSA JWK: the required members `e`, `kty`, `n` in lexicographic order,
/// no whitespace, SHA-256, base64url without padding.
fn rfc7638_thumbprint(jwk: &Value) -> String {
    let (e, n) = (jwk["e"].as_str().unwrap(), jwk["n"].as_str().unwrap());
    assert_eq!(jwk["kty"], "RSA");
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// The issuer's one key: its `kid` equals the thumbprint computed here, and a token it mints
/// carries that `kid`. Returns the kid.
fn check_issuer_kid(issuer_port: u16) -> String {
    let jwks: Value =
        serde_json::from_str(&curl(&[&format!("127.0.0.1:{issuer_port}/jwks.json")])).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        kid,
        rfc7638_thumbprint(&keys[0]),
        "kid is not the RFC 7638 thumbprint"
    );
    let token = curl(&[&format!("127.0.0.1:{issuer_port}/token?sub=alice&aud=demo")]);
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid.as_str(), "{header}");
    kid
}

/// What a README curl line's comment promises: `200: words` (the status only), `401 Body`
/// (body then status, from `-w ' %{http_code}'`), or no status (the counters line).
fn check_readme_line(command: &str, comment: &str, output: &str) {
    let what = format!("{command}  # {comment}\noutput: {output:?}");
    let first = comment.split_whitespace().next().unwrap_or("");
    let code = first.trim_end_matches(':');
    if !(code.len() == 3 && code.chars().all(|c| c.is_ascii_digit())) {
        assert!(comment.contains("counters"), "no expected result: {what}");
        let lines: Vec<&str> = output.lines().collect();
        assert!(!lines.is_empty(), "{what}");
        assert!(lines.iter().all(|l| l.contains("mesh_authn")), "{what}");
        assert!(output.contains("mesh_authn.allowed"), "{what}");
        return;
    }
    let output = output.trim_end();
    let (body, status) = output
        .rsplit_once(char::is_whitespace)
        .unwrap_or(("", output));
    assert_eq!(status, code, "{what}");
    if !first.ends_with(':') {
        let promised = comment[first.len()..].trim();
        assert_eq!(body.trim(), promised, "{what}");
    }
    if comment.contains("x-jwt-sub: alice, and no Authorization") {
        let echoed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(echoed["headers"]["x-jwt-sub"], "alice", "{what}");
        assert!(echoed["headers"].get("authorization").is_none(), "{what}");
    }
}

/// The compose topology without Docker: the same envoy.yaml, issuer.py and echo.py on
/// 127.0.0.1 ports (hostnames `issuer` and `upstream` replaced by 127.0.0.1, the listener ports
/// by free ones, in the plugin configuration's `portLevelMtls` too). Every line of the README's
/// "Try it" block runs with `sh` from a folder holding `certs/`, with the ports mapped, and
/// gives the result its comment promises. Then the issuer restarts with a new key: the first
/// token it mints gets 200.
#[test]
fn compose_topology_answers_as_its_readme_says() {
    let work = temp_dir("compose-run");
    let certs = work.join("certs");
    gen_certs(&certs);
    let (issuer_port, echo_port) = (free_port(), free_port());
    let issuer_helper = issuer(issuer_port);
    let _echo = python("echo.py", &[("PORT", echo_port.to_string())]);
    wait_for_port(issuer_port);
    wait_for_port(echo_port);
    let first_kid = check_issuer_kid(issuer_port);

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

    // The README's block, one marker line before each command that promises a result.
    let block = readme::blocks("examples/docker-compose/README.md")
        .into_iter()
        .find(|b| b.kind() == "compose-curl")
        .expect("the README's curl block");
    let ports = [
        ("localhost:8081", format!("127.0.0.1:{issuer_port}")),
        (
            "localhost:9901",
            format!("127.0.0.1:{}", envoy.admin_port()),
        ),
        ("localhost:8080", format!("localhost:{plain}")),
        ("localhost:8443", format!("localhost:{strict}")),
    ];
    let commands = readme::shell_commands(&block.text);
    let mut script = String::new();
    for (i, (command, _)) in commands.iter().enumerate() {
        let mut command = command.clone();
        for (from, to) in &ports {
            command = command.replace(from, to);
        }
        script.push_str(&format!("printf '\\n@@{i}\\n'\n{command}\n"));
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut checked = 0;
    for (i, (command, comment)) in commands.iter().enumerate() {
        if comment.is_empty() {
            assert!(
                command
                    .split('=')
                    .next()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_'),
                "a command without a promised result: {command}"
            );
            continue;
        }
        let start = out.find(&format!("\n@@{i}\n")).unwrap() + format!("\n@@{i}\n").len();
        let end = out[start..].find("\n@@").map_or(out.len(), |e| start + e);
        check_readme_line(command, comment, &out[start..end]);
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} README lines checked:\n{out}");

    // The issuer restarts with a new key (a new kid): the first token it mints gets 200,
    // since the filter fetches the key set again on an unknown kid.
    drop(issuer_helper);
    let _issuer = issuer(issuer_port);
    wait_for_port(issuer_port);
    let second_kid = check_issuer_kid(issuer_port);
    assert_ne!(first_kid, second_kid, "a restart makes a new key");
    let token = curl(&[&format!("127.0.0.1:{issuer_port}/token?sub=bob&aud=demo")]);
    let echoed = curl(&[
        "-w",
        "\n%{http_code}",
        "-H",
        &format!("Authorization: Bearer {}", token.trim()),
        &format!("127.0.0.1:{plain}/get"),
    ]);
    let (body, status) = echoed.rsplit_once('\n').unwrap();
    assert_eq!(
        status, "200",
        "first token after the issuer's restart: {body}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["headers"]["x-jwt-sub"], "bob", "{body}");
    let _ = std::fs::remove_dir_all(&work);
}

/// Istio's documentation key set, served where the example policies' `jwksUri` points, through
/// the cluster Istio would create for a `ServiceEntry` of `raw.githubusercontent.com:443`.
fn istio_samples() -> (StaticServer, String, String) {
    let read = |f: &str| {
        host_tests::fixture_text(format!("host-tests/fixtures/istio-jwt-samples/{f}"))
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

/// The AuthorizationPolicy examples with the RequestAuthentication they go with, through the
/// real Envoy: Istio's sample tokens (`demo.jwt` has no `groups`, `groups-scope.jwt` has
/// `group1`) and the test PKI's SPIFFE identities decide as each file's comment says, with
/// Envoy RBAC's 403 body.
#[test]
fn authorization_policy_examples_decide_as_their_comments_say() {
    let (jwks, demo, groups) = istio_samples();
    let upstream = EchoUpstream::start();
    let workload = "{namespace: foo, labels: {app: httpbin}}";
    let authn = policy_file("request-authn-httpbin.yaml");
    let bearer = |t: &str| format!("Bearer {t}");
    let denied = (403, "RBAC: access denied".to_owned());
    let status = |envoy: &Envoy, path: &str, token: Option<&str>| {
        let auth = token.map(bearer);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let r = http::get(envoy.port(), path, &headers);
        (
            r.status,
            if r.status == 200 {
                String::new()
            } else {
                r.body
            },
        )
    };
    let ok = (200, String::new());

    // The "require a JWT" pair: no token ⇒ 403, either sample token ⇒ 200, forged ⇒ 401.
    let e = start_with_istio_cluster(
        &with_workload(workload, &policy_file("authz-require-jwt.yaml")),
        upstream.port,
        jwks.port,
    );
    assert_eq!(status(&e, "/get", None), denied);
    assert_eq!(status(&e, "/get", Some(&demo)), ok);
    assert_eq!(status(&e, "/get", Some(&groups)), ok);
    assert_eq!(
        status(&e, "/get", Some(&format!("{demo}x"))),
        (401, "Jwt verification fails".to_owned())
    );
    drop(e);

    // The claim: only groups-scope.jwt carries group1.
    let both = |file: &str| format!("{authn}---\n{}", policy_file(file));
    let e = start_with_istio_cluster(
        &with_workload(workload, &both("authz-claims.yaml")),
        upstream.port,
        jwks.port,
    );
    assert_eq!(status(&e, "/get", None), denied);
    assert_eq!(status(&e, "/get", Some(&demo)), denied);
    assert_eq!(status(&e, "/get", Some(&groups)), ok);
    drop(e);

    // The exemption: /healthz and /public/* without a token; elsewhere a token.
    let e = start_with_istio_cluster(
        &with_workload(workload, &both("authz-path-exemption.yaml")),
        upstream.port,
        jwks.port,
    );
    assert_eq!(status(&e, "/healthz", None), ok);
    assert_eq!(status(&e, "/public/index.html", None), ok);
    assert_eq!(status(&e, "/get", None), denied);
    assert_eq!(status(&e, "/public/../get", None), denied, "normalised");
    assert_eq!(status(&e, "/healthzz", None), denied);
    assert_eq!(status(&e, "/get", Some(&demo)), ok);
    drop(e);

    // Peer principals over mTLS (envoy/mesh-authn-mtls.yaml).
    let pki = TestPki::generate();
    let system = pki.client("spiffe://cluster.local/ns/istio-system/sa/ingress");
    let policy = policy_file("authz-mtls-principal.yaml");
    let e = MtlsEnvoy::start(&pki, upstream.port, |_, _| with_workload(workload, &policy))
        .unwrap_or_else(|e| panic!("Envoy did not start: {e:?}"));
    let ca = &pki.ca.cert_der;
    let tls_status = |method: &str, client: Option<&host_tests::certs::Identity>| {
        match host_tests::tls::request(e.port_a, method, "/get", &[], ca, client) {
            host_tests::tls::Outcome::Response(r) => (
                r.status,
                if r.status == 200 {
                    String::new()
                } else {
                    r.body
                },
            ),
            host_tests::tls::Outcome::Refused(why) => panic!("refused: {why}"),
        }
    };
    assert_eq!(tls_status("GET", Some(&pki.client_good)), ok);
    assert_eq!(tls_status("POST", Some(&pki.client_good)), denied);
    assert_eq!(tls_status("DELETE", Some(&system)), ok);
    assert_eq!(
        tls_status("GET", Some(&pki.client_other_trust_domain)),
        denied
    );
    assert_eq!(tls_status("GET", Some(&pki.client_no_uri_san)), denied);
    assert_eq!(tls_status("GET", None), denied, "TLS without a certificate");
    let r = http::get(e.port_a, "/get", &[]);
    assert_eq!((r.status, r.body), denied, "plaintext");
}
