//! The gate of every GPU test (and of the oracle's CUDA modes): a test runs only where a
//! CUDA device is usable, and GPU tests run one at a time (several read process-wide counters or flip the process-wide
//! capture switch), whatever `--test-threads` says.

use ferroflow::tensor::Device;
use std::sync::{Mutex, MutexGuard};

/// The GPU the tests use.
pub const GPU: Device = Device::Cuda(0);

static SERIAL: Mutex<()> = Mutex::new(());

/// The serialising guard when a GPU is usable; otherwise `None`, and says so for the log.
/// Under `FERROFLOW_REQUIRE_GPU=1` (the device check) a missing GPU fails the test instead,
/// so a machine without the CUDA libraries cannot pass by skipping.
pub fn gpu(test: &str) -> Option<MutexGuard<'static, ()>> {
    if !GPU.is_available() {
        assert!(
            std::env::var_os("FERROFLOW_REQUIRE_GPU").is_none_or(|v| v == "0"),
            "{test}: FERROFLOW_REQUIRE_GPU is set but no CUDA device is usable (are the CUDA 13 libraries on LD_LIBRARY_PATH?)"
        );
        println!("{test}: skipped (no CUDA device in this process; build with --features cuda on a GPU machine)");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|p| p.into_inner()))
}
