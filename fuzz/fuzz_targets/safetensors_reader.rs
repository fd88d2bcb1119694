//! Any bytes as a safetensors file: parsing and reading every tensor must return, never panic
//! or allocate beyond the input.
#![no_main]

use ferroflow_checkpoint::safetensors::SafetensorsReader;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    if let Ok(reader) = SafetensorsReader::parse(path, data) {
        for info in reader.infos() {
            if let Ok(raw) = reader.read_from_bytes(&info.name, data) {
                let _ = raw.to_tensor(path, &info.name);
            }
        }
    }
});
