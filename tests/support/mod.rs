//! Shared helpers for the cross-crate tests. Each test binary uses a part of them, so unused
//! items in one binary are expected.
#![allow(dead_code)]

/// `tests/fixtures/oracle/NAME` of this repository, or of `$FERROFLOW_REPO` when set (test
/// binaries carried to another machine, where the build's path does not exist).
pub fn oracle_fixture(name: &str) -> std::path::PathBuf {
    let root = std::env::var_os("FERROFLOW_REPO").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    std::path::Path::new(&root).join("tests/fixtures/oracle").join(name)
}

pub mod cases;
pub mod gpu;
pub mod oracle;
