//! The core never talks to the host: only `src/proxy/` may use the proxy-wasm SDK, so every
//! other module stays testable natively and usable by fuzzers and benchmarks.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_adapter_uses_the_sdk() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let offenders: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(src.join("proxy")))
        .filter(|f| std::fs::read_to_string(f).unwrap().contains("proxy_wasm"))
        .collect();
    assert!(
        offenders.is_empty(),
        "proxy_wasm used outside src/proxy/: {offenders:?}"
    );
}
