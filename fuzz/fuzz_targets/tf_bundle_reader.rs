//! Any bytes as a TensorFlow checkpoint: the first two bytes split the input into the `.index`
//! file and the data shard. Parsing the index and reading every entry from the shard must
//! return, never panic or allocate beyond the input.
#![no_main]

use ferroflow_checkpoint::tf::BundleReader;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let (index, shard) = data[2..].split_at(split);
    let prefix = Path::new("fuzz");
    if let Ok(reader) = BundleReader::parse_index(prefix, index) {
        let keys: Vec<String> = reader.entries().map(|(k, _)| k.to_string()).collect();
        for key in keys {
            if let Ok(raw) = reader.read_from_bytes(&key, shard) {
                let _ = raw.to_tensor(prefix, &key);
            }
            let _ = reader.read_strings_from_bytes(&key, shard);
        }
    }
});
