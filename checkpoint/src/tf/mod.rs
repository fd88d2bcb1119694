//! TensorFlow V2 checkpoints ("tensor bundles"): `PREFIX.index` plus `PREFIX.data-NNNNN-of-MMMMM`.
//!
//! The format is described in `checkpoint/spec/tf-checkpoint-format.md`. This module reads any
//! bundle TensorFlow writes without partitioned variables, and writes single-shard bundles that
//! TensorFlow restores with `tf.train.Checkpoint(...).read(prefix)`. For the two-variable seed
//! model the written files are byte-identical to TensorFlow's.
//!
//! Layout of the module, one concern per file:
//! * `proto` – protobuf wire format (varints, fields) and the masked CRC32C;
//! * `table` – the LevelDB-style sorted table of the `.index` file (read and build);
//! * `entry` – `BundleHeaderProto` / `BundleEntryProto` and the dtype numbers;
//! * `strings` – the DT_STRING encoding in the data file;
//! * `object_graph` – the `TrackableObjectGraph` a writer stores;
//! * `reader` / `writer` – the public [`BundleReader`] and [`write_bundle`].
//!
//! The reader treats every byte as hostile: lengths are checked against the bytes present before
//! anything is allocated, and no input makes it panic.

mod entry;
mod object_graph;
mod reader;
mod strings;
mod table;
mod writer;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use entry::TfEntry;
pub use reader::BundleReader;
pub use writer::{encode_bundle, write_bundle, BundleVariable};

/// Suffix of the key that holds a variable's value, after its escaped object path.
pub const VALUE_SUFFIX: &str = "/.ATTRIBUTES/VARIABLE_VALUE";

/// Key of the serialized `TrackableObjectGraph` (a DT_STRING scalar) in every TF2 checkpoint.
pub const OBJECT_GRAPH_KEY: &str = "_CHECKPOINTABLE_OBJECT_GRAPH";

/// The table key of a variable from its object path segments:
/// `["model", "dense_1", "w"]` gives `model/dense_1/w/.ATTRIBUTES/VARIABLE_VALUE`.
///
/// Each segment is escaped the way TensorFlow does (`.` becomes `..`, then `/` becomes `.S`), so
/// a dict key such as `"a/b"` stays one segment: `m/cfg/a.Sb/.ATTRIBUTES/VARIABLE_VALUE`.
pub fn checkpoint_key(segments: &[&str]) -> String {
    let mut key = String::new();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        // Per-character mapping equals TF's two sequential replaces: the first never makes a '/'.
        for c in segment.chars() {
            match c {
                '.' => key.push_str(".."),
                '/' => key.push_str(".S"),
                c => key.push(c),
            }
        }
    }
    key.push_str(VALUE_SUFFIX);
    key
}

/// The object path (unescaped segments) of a `…/.ATTRIBUTES/VARIABLE_VALUE` key, the inverse of
/// [`checkpoint_key`].
///
/// `None` for any other key (such as [`OBJECT_GRAPH_KEY`] or another attribute name), for an
/// empty segment, and for an escape that [`checkpoint_key`] cannot produce (a lone `.`).
pub fn object_path(key: &str) -> Option<Vec<String>> {
    let escaped = key.strip_suffix(VALUE_SUFFIX)?;
    escaped.split('/').map(unescape_segment).collect()
}

/// One escaped segment back to its local name; `None` when empty or malformed.
fn unescape_segment(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(segment.len());
    let mut chars = segment.chars();
    while let Some(c) = chars.next() {
        if c != '.' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('.') => out.push('.'),
            Some('S') => out.push('/'),
            _ => return None,
        }
    }
    Some(out)
}

/// The data file of shard `shard` of `num_shards`: `PREFIX.data-00000-of-00001`.
pub fn data_path(prefix: &Path, shard: u32, num_shards: u32) -> PathBuf {
    with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"))
}

/// The index file: `PREFIX.index`.
pub fn index_path(prefix: &Path) -> PathBuf {
    with_suffix(prefix, ".index")
}

/// Appends to the whole prefix; `set_extension` would eat a dot inside it (`ckpt-1.5`).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(prefix.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn spec_examples_escape_and_round_trip() {
        let cases: [(&[&str], &str); 5] = [
            (&["model", "dense_1", "w"], "model/dense_1/w/.ATTRIBUTES/VARIABLE_VALUE"),
            (&["save_counter"], "save_counter/.ATTRIBUTES/VARIABLE_VALUE"),
            (&["m", "layers", "0"], "m/layers/0/.ATTRIBUTES/VARIABLE_VALUE"),
            (&["m", "cfg", "a/b"], "m/cfg/a.Sb/.ATTRIBUTES/VARIABLE_VALUE"),
            (&["model", "d", "c.d"], "model/d/c..d/.ATTRIBUTES/VARIABLE_VALUE"),
        ];
        for (segments, key) in cases {
            assert_eq!(checkpoint_key(segments), key);
            assert_eq!(object_path(key).unwrap(), segments);
        }
    }

    #[test]
    fn tricky_names_round_trip() {
        for name in ["..", "./", "/.", ".S", "a..S/b", "S", "é.ü/ß", "//", "."] {
            let key = checkpoint_key(&["x", name]);
            assert_eq!(object_path(&key).unwrap(), ["x", name], "{key}");
        }
    }

    #[test]
    fn other_keys_are_not_object_paths() {
        for key in [
            OBJECT_GRAPH_KEY,
            "",
            VALUE_SUFFIX,
            "a//.ATTRIBUTES/VARIABLE_VALUE",
            "a.b/.ATTRIBUTES/VARIABLE_VALUE",
            "a./.ATTRIBUTES/VARIABLE_VALUE",
            "model/.ATTRIBUTES/OBJECT_CONFIG_JSON",
            "a/.ATTRIBUTES/VARIABLE_VALUE/.ATTRIBUTES/VARIABLE_VALUE",
        ] {
            assert_eq!(object_path(key), None, "{key}");
        }
    }

    #[test]
    fn file_names_append_to_the_whole_prefix() {
        let p = Path::new("dir/ckpt-1.5");
        assert_eq!(index_path(p), Path::new("dir/ckpt-1.5.index"));
        assert_eq!(data_path(p, 0, 1), Path::new("dir/ckpt-1.5.data-00000-of-00001"));
        assert_eq!(data_path(p, 12, 345), Path::new("dir/ckpt-1.5.data-00012-of-00345"));
    }
}
