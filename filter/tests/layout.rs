//! The core never talks to the host: only `src/proxy/` may use the proxy-wasm SDK, declare
//! host imports or reach into the adapter, so every other module stays testable natively and
//! usable by fuzzers and benchmarks.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

/// What only the adapter may write: the SDK, host imports, and paths into the adapter.
const ADAPTER_ONLY: [&str; 4] = [
    "proxy_wasm",
    "wasm_import_module",
    "extern \"C\"",
    "crate::proxy",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(file, pattern)` for every adapter-only pattern a file outside `proxy/` holds.
fn offenders(src: &Path, files: &[(PathBuf, String)]) -> Vec<(PathBuf, &'static str)> {
    files
        .iter()
        .filter(|(f, _)| !f.starts_with(src.join("proxy")))
        .flat_map(|(f, text)| {
            ADAPTER_ONLY
                .iter()
                .filter(|p| text.contains(**p))
                .map(|p| (f.clone(), *p))
        })
        .collect()
}

fn sources() -> (PathBuf, Vec<(PathBuf, String)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let files = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    (src, files)
}

#[test]
fn only_the_adapter_uses_the_sdk() {
    let (src, files) = sources();
    let offenders = offenders(&src, &files);
    assert!(
        offenders.is_empty(),
        "only src/proxy/ may use these: {offenders:?}"
    );
}

/// The check sees each pattern: a core file holding it is an offender, the adapter is not.
#[test]
fn the_check_finds_each_pattern() {
    let (src, _) = sources();
    for pattern in ADAPTER_ONLY {
        let line = format!("{pattern} // planted");
        let files = vec![
            (src.join("request_authn.rs"), line.clone()),
            (src.join("proxy").join("host.rs"), line),
        ];
        assert_eq!(
            offenders(&src, &files),
            vec![(src.join("request_authn.rs"), pattern)]
        );
    }
}
