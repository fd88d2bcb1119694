//! Any text as a `checkpoint` state file: parsing must return, never panic.
#![no_main]

use ferroflow_checkpoint::state::CheckpointState;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(state) = CheckpointState::parse(Path::new("checkpoint"), text) {
            let _ = CheckpointState::parse(Path::new("checkpoint"), &state.to_text());
        }
    }
});
