//! The `mesh-authn` command-line tool (filter/src/bin/mesh-authn, feature `cli`), built for the
//! tests that run it: built here with cargo, so a test never runs a stale binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The built `mesh-authn` binary (debug profile), built once per test process.
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .current_dir(crate::workspace_root())
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "mesh-authn",
                    "--features",
                    "cli",
                    "--bin",
                    "mesh-authn",
                ])
                .status()
                .expect("cannot run cargo to build the mesh-authn CLI");
            assert!(
                status.success(),
                "`cargo build -p mesh-authn --features cli --bin mesh-authn` failed"
            );
            crate::workspace_root().join("target/debug/mesh-authn")
        })
        .clone()
}

/// Runs `mesh-authn ARGS` in the workspace root.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(crate::workspace_root())
        .args(args)
        .output()
        .expect("cannot run mesh-authn")
}
