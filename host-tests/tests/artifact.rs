//! The built `.wasm` itself: what it imports from the host, and how big it is.

use host_tests::{wasm_path, MAX_WASM_BYTES};

/// WASI functions the artifact may import. Rust's std on wasip1 needs these four for its
/// environment access (`environ_*`), stderr/stdout writes (`fd_write`) and abort (`proc_exit`);
/// the filter uses none of them on purpose. Anything else (`random_get`, clocks, files,
/// sockets) must be a deliberate change to this list.
const WASI_ALLOWED: &[&str] = &["environ_get", "environ_sizes_get", "fd_write", "proc_exit"];

fn imports() -> Vec<(String, String)> {
    let bytes = std::fs::read(wasm_path()).unwrap();
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::ImportSection(section) = payload.unwrap() {
            for import in section {
                let import = import.unwrap();
                imports.push((import.module.to_owned(), import.name.to_owned()));
            }
        }
    }
    imports
}

#[test]
fn imports_only_proxy_wasm_abi_and_the_allowed_wasi_functions() {
    let imports = imports();
    assert!(
        imports
            .iter()
            .any(|(m, n)| m == "env" && n == "proxy_send_local_response"),
        "{imports:?}"
    );
    let unexpected: Vec<_> = imports
        .iter()
        .filter(|(module, name)| {
            let proxy = module == "env" && name.starts_with("proxy_");
            let wasi = module == "wasi_snapshot_preview1" && WASI_ALLOWED.contains(&name.as_str());
            !(proxy || wasi)
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "imports outside the allowlist: {unexpected:?}"
    );
}

/// What the artifact exports: the wasip1 reactor's entry, its memory, and the proxy-wasm
/// callbacks the plugin acts on, nothing else. Envoy calls every callback a module exports
/// (proxy-wasm-cpp-host skips only missing ones), so an export that does nothing still costs a
/// trip into the VM on every request (response headers, response body, the access log), or on
/// every body chunk (request and response bodies). `proxy_on_done` too: Envoy calls it for
/// every request, and a root's last work is done in `proxy_on_delete`.
const EXPORTS: &[&str] = &[
    "_initialize",
    "memory",
    "proxy_abi_version_0_2_1",
    "proxy_on_configure",
    "proxy_on_context_create",
    "proxy_on_delete",
    "proxy_on_http_call_response",
    "proxy_on_memory_allocate",
    "proxy_on_request_headers",
    "proxy_on_tick",
    "proxy_on_vm_start",
];

#[test]
fn exports_only_the_callbacks_it_acts_on() {
    let bytes = std::fs::read(wasm_path()).unwrap();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::ExportSection(section) = payload.unwrap() {
            for export in section {
                exports.push(export.unwrap().name.to_owned());
            }
        }
    }
    exports.sort();
    assert_eq!(exports, EXPORTS);
}

#[test]
fn stays_within_its_size_budget() {
    let size = std::fs::metadata(wasm_path()).unwrap().len();
    assert!(
        size <= MAX_WASM_BYTES,
        "mesh_authn.wasm is {size} bytes, over the {MAX_WASM_BYTES}-byte budget"
    );
}

/// What README "The artifact" says of the build is what builds it: the budget is this
/// constant, and the release profile's default level (the filter's) is the one it names.
#[test]
fn the_readme_states_the_budget_and_the_release_level_that_build_it() {
    let root = host_tests::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let digits = MAX_WASM_BYTES.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let budget = format!("1.25 MiB = {grouped} bytes");
    assert_eq!(
        MAX_WASM_BYTES,
        1280 * 1024,
        "update the README's {budget:?}"
    );
    assert!(readme.contains(&budget), "README lacks {budget:?}");

    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let release = cargo
        .split("\n[")
        .find(|section| section.starts_with("profile.release]"))
        .expect("a [profile.release] section");
    let level = release
        .lines()
        .find_map(|l| l.trim().strip_prefix("opt-level = "))
        .expect("an opt-level in [profile.release]");
    let claim = format!("`opt-level = {level}` for the filter and its parsers");
    assert!(readme.contains(&claim), "README lacks {claim:?}");
}
