//! Tests of the whole bundle reader and writer against the TensorFlow-written fixture.

use super::table::{read_table, TableBuilder};
use super::*;
use crate::error::CheckpointError;
use crate::raw::{RawTensor, StoredDtype};
use ferroflow_wire::{for_each_field, mask_crc};
use std::path::Path;

const FIXTURE_INDEX: &[u8] = include_bytes!("../../tests/fixtures/tf_ckpt/checkpoint1.index");
const FIXTURE_DATA: &[u8] = include_bytes!("../../tests/fixtures/tf_ckpt/checkpoint1.data-00000-of-00001");
const FIXTURE_EXPECTED: &str = include_str!("../../tests/fixtures/tf_ckpt/expected.json");

const DENSE_1: &str = "model/dense_1/w/.ATTRIBUTES/VARIABLE_VALUE";
const DENSE_2: &str = "model/dense_2/w/.ATTRIBUTES/VARIABLE_VALUE";

fn fixture_prefix() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tf_ckpt/checkpoint1")
}

fn fixture_reader() -> BundleReader {
    BundleReader::parse_index(&fixture_prefix(), FIXTURE_INDEX).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// (key, shape, float32 bytes) of the fixture's variables from expected.json.
fn expected_floats() -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let v: serde_json::Value = serde_json::from_str(FIXTURE_EXPECTED).unwrap();
    let mut out = Vec::new();
    for (key, e) in v.as_object().unwrap() {
        if let Some(h) = e.get("float32_hex") {
            let shape = e["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let bytes = hex(h.as_str().unwrap());
            // The hex and the values list agree bit for bit.
            let from_values: Vec<u8> = e["values"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|x| (x.as_f64().unwrap() as f32).to_le_bytes())
                .collect();
            assert_eq!(bytes, from_values);
            out.push((key.clone(), shape, bytes));
        }
    }
    out
}

#[test]
fn fixture_index_matches_the_spec() {
    let r = fixture_reader();
    assert_eq!(r.num_shards(), 1);
    let listed: Vec<(&str, &TfEntry)> = r.entries().collect();
    let expected = [
        (OBJECT_GRAPH_KEY, StoredDtype::String, vec![], 48, 223, 0x3acb_b1f6),
        (DENSE_1, StoredDtype::F32, vec![3, 3], 0, 36, 0x050b_a774),
        (DENSE_2, StoredDtype::F32, vec![3, 1], 36, 12, 0xb055_1df2),
    ];
    assert_eq!(listed.len(), expected.len());
    for ((key, e), (k, dtype, shape, offset, size, crc)) in listed.iter().zip(expected) {
        assert_eq!(*key, k);
        assert_eq!(
            **e,
            TfEntry {
                dtype,
                shape,
                shard_id: 0,
                offset,
                size,
                crc32c: crc
            }
        );
    }
    let infos = r.infos();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[1].name, DENSE_1);
    assert_eq!(infos[1].shape, [3, 3]);
    assert_eq!(infos[0].dtype, StoredDtype::String);
    assert!(r.entry("nope").is_none());
    let table = read_table(FIXTURE_INDEX).unwrap();
    assert_eq!(table.data_blocks, 1);
}

#[test]
fn fixture_values_are_read_bit_exactly_from_disk() {
    let r = BundleReader::open(&fixture_prefix()).unwrap();
    let expected = expected_floats();
    assert_eq!(expected.len(), 2);
    for (key, shape, bytes) in expected {
        let t = r.read(&key).unwrap();
        assert_eq!(t.dtype, StoredDtype::F32);
        assert_eq!(t.shape, shape);
        assert_eq!(t.data, bytes, "{key}");
        assert_eq!(r.read_from_bytes(&key, FIXTURE_DATA).unwrap(), t);
    }
    let graph = r.read_strings(OBJECT_GRAPH_KEY).unwrap();
    assert_eq!(graph.len(), 1);
    assert_eq!(graph[0].len(), 217);
    assert!(matches!(
        r.read(OBJECT_GRAPH_KEY),
        Err(CheckpointError::UnsupportedDtype { .. })
    ));
    assert!(matches!(
        r.read_strings(DENSE_1),
        Err(CheckpointError::UnsupportedDtype { .. })
    ));
    assert!(matches!(r.read("missing"), Err(CheckpointError::MissingKey { .. })));
}

fn fixture_tensors() -> Vec<RawTensor> {
    expected_floats()
        .into_iter()
        .map(|(_, shape, data)| RawTensor {
            dtype: StoredDtype::F32,
            shape,
            data,
        })
        .collect()
}

fn var<'a>(path: &str, full_name: &str, tensor: &'a RawTensor) -> BundleVariable<'a> {
    BundleVariable {
        path: path.split('/').map(String::from).collect(),
        full_name: full_name.to_string(),
        tensor,
    }
}

#[test]
fn writer_reproduces_the_fixture_byte_for_byte() {
    let t = fixture_tensors();
    let vars = [var("model/dense_1/w", "w", &t[0]), var("model/dense_2/w", "w", &t[1])];
    let (index, data) = encode_bundle(&vars).unwrap();
    assert_eq!(data, FIXTURE_DATA);
    assert_eq!(index, FIXTURE_INDEX);
}

/// Node list of a serialized object graph: (children (id, name), attribute checkpoint keys).
type Graph = Vec<(Vec<(u64, String)>, Vec<String>)>;

fn decode_graph(blob: &[u8]) -> Graph {
    let mut nodes = Vec::new();
    for_each_field(blob, |_, node| {
        let (mut children, mut keys) = (Vec::new(), Vec::new());
        for_each_field(node.bytes("node")?, |f, v| {
            let (mut id, mut name) = (0, String::new());
            if f == 1 || f == 2 {
                for_each_field(v.bytes("x")?, |g, w| {
                    match (f, g) {
                        (1, 1) => id = w.varint("id")?,
                        (1, 2) | (2, 3) => name = String::from_utf8(w.bytes("s")?.to_vec()).unwrap(),
                        _ => {}
                    }
                    Ok(())
                })?;
            }
            match f {
                1 => children.push((id, name)),
                2 => keys.push(name),
                _ => {}
            }
            Ok(())
        })?;
        nodes.push((children, keys));
        Ok(())
    })
    .unwrap();
    nodes
}

/// Every variable key reachable from the root, with the path that reaches it (BFS, like TF).
fn graph_paths(graph: &Graph) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut queue = vec![(0u64, Vec::<String>::new())];
    let mut i = 0;
    while i < queue.len() {
        let (id, path) = queue[i].clone();
        let (children, keys) = &graph[id as usize];
        for key in keys {
            out.push((path.clone(), key.clone()));
        }
        for (child, name) in children {
            assert_eq!(*child as usize, queue.len(), "ids are assigned breadth-first");
            let mut p = path.clone();
            p.push(name.clone());
            queue.push((*child, p));
        }
        i += 1;
    }
    out
}

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed * 7)) as u8)
        .collect()
}

#[test]
fn many_variables_of_every_dtype_round_trip() {
    use StoredDtype::{Bool, BF16, F16, F32, F64, I16, I32, I64, I8, U16, U32, U64, U8};
    let dtypes = [Bool, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64];
    let shapes: [&[usize]; 5] = [&[], &[0, 3], &[4], &[2, 3], &[1, 1, 5]];
    let mut tensors = Vec::new();
    let mut paths = Vec::new();
    for (i, &dtype) in dtypes.iter().enumerate() {
        for (j, &shape) in shapes.iter().enumerate() {
            let n = crate::raw::checked_byte_len(dtype, shape).unwrap();
            let mut data = pattern(n, i * 10 + j);
            if dtype == Bool {
                data.iter_mut().for_each(|b| *b &= 1);
            }
            tensors.push(RawTensor {
                dtype,
                shape: shape.to_vec(),
                data,
            });
            paths.push(vec![
                format!("m.{}", dtype.name()),
                format!("s/{j}"),
                "v..w".to_string(),
            ]);
        }
    }
    // Enough long keys to need several data blocks.
    for i in 0..3000usize {
        tensors.push(RawTensor {
            dtype: F32,
            shape: vec![2],
            data: pattern(8, i),
        });
        paths.push(vec![
            "big".to_string(),
            format!("{:05}_{}", (i * 7919) % 3000, "layer".repeat(40)),
            "kernel".to_string(),
        ]);
    }
    let vars: Vec<BundleVariable> = paths
        .iter()
        .zip(&tensors)
        .map(|(p, t)| BundleVariable {
            path: p.clone(),
            full_name: p.last().unwrap().clone(),
            tensor: t,
        })
        .collect();
    let (index, data) = encode_bundle(&vars).unwrap();
    assert!(read_table(&index).unwrap().data_blocks >= 2);

    let r = BundleReader::parse_index(Path::new("mem"), &index).unwrap();
    assert_eq!(r.entries().count(), vars.len() + 1);
    let mut expected_offset = 0;
    for v in &vars {
        let segments: Vec<&str> = v.path.iter().map(String::as_str).collect();
        let key = checkpoint_key(&segments);
        assert_eq!(object_path(&key).unwrap(), v.path);
        let e = r.entry(&key).unwrap();
        assert_eq!(e.offset, expected_offset, "tensors are stored in the order given");
        expected_offset += e.size;
        assert_eq!(&r.read_from_bytes(&key, &data).unwrap(), v.tensor, "{key}");
    }
    assert_eq!(r.entry(OBJECT_GRAPH_KEY).unwrap().offset, expected_offset);

    let blob = r.read_strings_from_bytes(OBJECT_GRAPH_KEY, &data).unwrap();
    let graph = decode_graph(&blob[0]);
    let found = graph_paths(&graph);
    assert_eq!(found.len(), vars.len());
    for (path, key) in found {
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        assert_eq!(checkpoint_key(&segments), key, "the graph path re-derives the key");
        assert!(r.entry(&key).is_some());
    }
}

#[test]
fn invalid_variable_sets_are_refused() {
    let t = RawTensor {
        dtype: StoredDtype::F32,
        shape: vec![],
        data: vec![0; 4],
    };
    let cases: [&[&str]; 5] = [&["a/b", "a/b"], &["a", "a/b"], &["a/b", "a"], &["a//b"], &["x", ""]];
    for paths in cases {
        let vars: Vec<BundleVariable> = paths.iter().map(|p| var(p, "v", &t)).collect();
        assert!(
            matches!(encode_bundle(&vars), Err(CheckpointError::Invalid(_))),
            "{paths:?}"
        );
    }
    let empty = BundleVariable {
        path: vec![],
        full_name: String::new(),
        tensor: &t,
    };
    assert!(matches!(encode_bundle(&[empty]), Err(CheckpointError::Invalid(_))));
    let short = RawTensor {
        dtype: StoredDtype::F64,
        shape: vec![2],
        data: vec![0; 8],
    };
    assert!(matches!(
        encode_bundle(&[var("a", "a", &short)]),
        Err(CheckpointError::Invalid(_))
    ));
    let s = RawTensor {
        dtype: StoredDtype::String,
        shape: vec![],
        data: vec![],
    };
    assert!(matches!(
        encode_bundle(&[var("a", "a", &s)]),
        Err(CheckpointError::Invalid(_))
    ));
}

#[test]
fn an_empty_bundle_holds_only_the_object_graph() {
    let (index, data) = encode_bundle(&[]).unwrap();
    let r = BundleReader::parse_index(Path::new("e"), &index).unwrap();
    assert_eq!(r.entries().map(|(k, _)| k).collect::<Vec<_>>(), [OBJECT_GRAPH_KEY]);
    let blob = r.read_strings_from_bytes(OBJECT_GRAPH_KEY, &data).unwrap();
    // One root node whose has_checkpoint_values is an empty BoolValue (false).
    assert_eq!(blob, [vec![0x0a, 0x02, 0x2a, 0x00]]);
}

#[test]
fn truncated_or_flipped_index_never_panics_and_is_refused() {
    for n in 0..FIXTURE_INDEX.len() {
        assert!(
            BundleReader::parse_index(Path::new("t"), &FIXTURE_INDEX[..n]).is_err(),
            "len {n}"
        );
    }
    // Only the footer's zero padding after the two handles is not covered by any check.
    let footer = FIXTURE_INDEX.len() - 48;
    let padding = footer + 6..footer + 40;
    for i in 0..FIXTURE_INDEX.len() {
        let mut bytes = FIXTURE_INDEX.to_vec();
        bytes[i] ^= 0xff;
        let r = BundleReader::parse_index(Path::new("t"), &bytes);
        if padding.contains(&i) {
            assert_eq!(r.unwrap().entries().count(), 3);
        } else {
            let e = r.err().unwrap_or_else(|| panic!("flip at {i} accepted")).to_string();
            assert!(e.contains("t.index"), "{e}");
        }
    }
}

/// Replaces the block `[start, start + len)` of `file` with `contents` and a fresh trailer,
/// so that mutations get past the CRC and reach the parsers. Handles are not fixed up.
fn with_valid_crc(file: &[u8], start: usize, len: usize, contents: &[u8]) -> Vec<u8> {
    let mut out = file[..start].to_vec();
    out.extend_from_slice(contents);
    out.push(0);
    let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[0]);
    out.extend_from_slice(&mask_crc(crc).to_le_bytes());
    out.extend_from_slice(&file[start + len + 5..]);
    out
}

/// A small deterministic generator for the mutation loops.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_blocks_with_valid_checksums_never_panic() {
    // Data block [0, 180) and index block [198, 213) of the fixture (spec §3.5).
    let blocks = [(0usize, 180usize), (198, 15), (185, 8)];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for &(start, len) in &blocks {
        let block = &FIXTURE_INDEX[start..start + len];
        for i in 0..len {
            for x in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff, 0x7f] {
                let mut m = block.to_vec();
                m[i] ^= x;
                let file = with_valid_crc(FIXTURE_INDEX, start, len, &m);
                if let Ok(r) = BundleReader::parse_index(Path::new("m"), &file) {
                    accepted += 1;
                    for (key, _) in r.entries() {
                        let _ = r.read_from_bytes(key, FIXTURE_DATA);
                        let _ = r.read_strings_from_bytes(key, FIXTURE_DATA);
                    }
                }
            }
        }
        for _ in 0..3000 {
            let mut m = block.to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % len as u64) as usize;
                m[i] = rng.next() as u8;
            }
            let file = with_valid_crc(FIXTURE_INDEX, start, len, &m);
            if let Ok(r) = BundleReader::parse_index(Path::new("m"), &file) {
                for (key, _) in r.entries() {
                    let _ = r.read_from_bytes(key, FIXTURE_DATA);
                }
            }
        }
    }
    // Some mutations (e.g. of a value's crc32c field) still parse; most are refused.
    assert!(accepted > 0);
}

#[test]
fn truncated_or_flipped_data_is_refused() {
    let r = fixture_reader();
    let numeric = [(DENSE_1, 0..36), (DENSE_2, 36..48)];
    let strings = 48..FIXTURE_DATA.len();
    for n in 0..=FIXTURE_DATA.len() {
        let data = &FIXTURE_DATA[..n];
        for (key, range) in numeric.clone() {
            assert_eq!(r.read_from_bytes(key, data).is_ok(), n >= range.end, "{key} len {n}");
        }
        assert_eq!(
            r.read_strings_from_bytes(OBJECT_GRAPH_KEY, data).is_ok(),
            n == FIXTURE_DATA.len()
        );
    }
    for i in 0..FIXTURE_DATA.len() {
        let mut data = FIXTURE_DATA.to_vec();
        data[i] ^= 0xff;
        for (key, range) in numeric.clone() {
            let res = r.read_from_bytes(key, &data);
            if range.contains(&i) {
                let e = res.unwrap_err().to_string();
                assert!(
                    e.contains("checkpoint1.data-00000-of-00001") && e.contains("checksum"),
                    "{e}"
                );
            } else {
                assert!(res.is_ok());
            }
        }
        let res = r.read_strings_from_bytes(OBJECT_GRAPH_KEY, &data);
        assert_eq!(res.is_ok(), !strings.contains(&i), "flip at {i}");
    }
}

/// An index whose entries claim ranges far beyond any file.
fn hostile_index() -> Vec<u8> {
    use super::entry::{encode_entry, encode_header};
    let entries = [
        ("far", encode_entry(1, &[2], i64::MAX as u64, 8, 1)),
        ("huge", encode_entry(1, &[1 << 40], 0, 4 << 40, 1)),
        ("lying", encode_entry(1, &[3], 0, 1 << 50, 1)),
        (
            "maxed",
            encode_entry(1, &[1 << 61], i64::MAX as u64, i64::MAX as u64, 1),
        ),
        ("strs", encode_entry(7, &[1 << 40], 0, 1 << 40, 1)),
        ("strs_big", encode_entry(7, &[], 0, 1 << 62, 1)),
    ];
    let mut t = TableBuilder::new();
    t.add(b"", &encode_header()).unwrap();
    for (k, v) in &entries {
        t.add(k.as_bytes(), v).unwrap();
    }
    t.finish().unwrap()
}

#[test]
fn hostile_sizes_and_offsets_are_errors_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("hostile");
    std::fs::write(index_path(&prefix), hostile_index()).unwrap();
    std::fs::write(data_path(&prefix, 0, 1), [0u8; 64]).unwrap();
    let r = BundleReader::open(&prefix).unwrap();
    for key in ["far", "huge", "lying", "maxed"] {
        let e = r.read(key).unwrap_err().to_string();
        assert!(
            e.contains("hostile.data-00000-of-00001") || e.contains("hostile.index"),
            "{e}"
        );
        assert!(r.read_from_bytes(key, &[0; 64]).is_err());
    }
    for key in ["strs", "strs_big"] {
        let e = r.read_strings(key).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
        assert!(r.read_strings_from_bytes(key, &[0; 64]).is_err());
    }
}

#[test]
fn write_open_read_round_trip_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("nested/dir/ckpt-1");
    let t = fixture_tensors();
    let extra = RawTensor {
        dtype: StoredDtype::I64,
        shape: vec![],
        data: 7i64.to_le_bytes().to_vec(),
    };
    let vars = [
        var("model/dense_1/w", "w", &t[0]),
        var("model/dense_2/w", "w", &t[1]),
        var("save_counter", "save_counter", &extra),
    ];
    write_bundle(&prefix, &vars).unwrap();
    let r = BundleReader::open(&prefix).unwrap();
    assert_eq!(r.read(DENSE_1).unwrap(), t[0]);
    assert_eq!(r.read(DENSE_2).unwrap(), t[1]);
    assert_eq!(r.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE").unwrap(), extra);
    assert_eq!(r.read_strings(OBJECT_GRAPH_KEY).unwrap().len(), 1);
    // Only the two files, no temporaries left behind.
    assert_eq!(std::fs::read_dir(prefix.parent().unwrap()).unwrap().count(), 2);

    // A data file that lost its tail is detected when read.
    let data_file = data_path(&prefix, 0, 1);
    std::fs::write(&data_file, &std::fs::read(&data_file).unwrap()[..40]).unwrap();
    assert!(r.read(DENSE_1).is_ok());
    let e = r.read(DENSE_2).unwrap_err().to_string();
    assert!(e.contains("ckpt-1.data-00000-of-00001"), "{e}");
    std::fs::remove_file(&data_file).unwrap();
    assert!(matches!(r.read(DENSE_1), Err(CheckpointError::Io { .. })));
}

#[test]
fn a_missing_prefix_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("absent");
    match BundleReader::open(&prefix) {
        Err(CheckpointError::NotFound { path, why }) => {
            assert_eq!(path, prefix);
            assert!(why.contains("absent.index"), "{why}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Writes a checkpoint for checking with real TensorFlow (see the module docs of `tf`):
/// `FERROFLOW_TF_OUT=/tmp/x/ckpt cargo test -p ferroflow-checkpoint tf::tests::write_for_tensorflow -- --ignored`.
#[test]
#[ignore]
fn write_for_tensorflow() {
    let prefix = std::env::var("FERROFLOW_TF_OUT").expect("set FERROFLOW_TF_OUT to a prefix");
    let f32s = |v: &[f32], shape: &[usize]| RawTensor {
        dtype: StoredDtype::F32,
        shape: shape.to_vec(),
        data: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    let w1 = f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.5], &[3, 3]);
    let w2 = f32s(&[-1.0, 0.5, 0.25], &[3, 1]);
    let scale = RawTensor {
        dtype: StoredDtype::F64,
        shape: vec![2],
        data: [0.1f64, -2.5].iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    let step = RawTensor {
        dtype: StoredDtype::I64,
        shape: vec![],
        data: 42i64.to_le_bytes().to_vec(),
    };
    let mask = RawTensor {
        dtype: StoredDtype::Bool,
        shape: vec![4],
        data: vec![1, 0, 0, 1],
    };
    let vars = [
        var("model/dense_1/w", "w", &w1),
        var("model/dense_2/w", "w", &w2),
        var("model/scale", "scale", &scale),
        var("model/step", "step", &step),
        var("model/mask", "mask", &mask),
    ];
    write_bundle(Path::new(&prefix), &vars).unwrap();
}

/// Mutates an encoded protobuf value: flips, random bytes, truncation or insertion.
fn mutate(rng: &mut XorShift, value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    for _ in 0..1 + rng.next() % 3 {
        let at = if v.is_empty() {
            0
        } else {
            (rng.next() % v.len() as u64) as usize
        };
        match rng.next() % 5 {
            0 if !v.is_empty() => v[at] ^= 1 << (rng.next() % 8),
            1 if !v.is_empty() => v[at] = rng.next() as u8,
            2 => v.truncate(at),
            3 => v.insert(at, rng.next() as u8),
            _ => v.extend((0..rng.next() % 12).map(|_| rng.next() as u8)),
        }
    }
    v
}

#[test]
fn random_entries_behind_valid_checksums_never_panic() {
    use super::entry::{encode_entry, encode_header};
    // Iterations can be raised for a longer local run: FERROFLOW_TF_FUZZ_ITERS=1000000.
    let iters: usize = std::env::var("FERROFLOW_TF_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let templates = [
        encode_entry(1, &[3, 3], 0, 36, 0x050b_a774),
        encode_entry(7, &[], 48, 223, 0x3acb_b1f6),
        encode_entry(19, &[2, 0, 1], 4, 0, 1),
        encode_entry(10, &[4], 260, 4, 9),
    ];
    let mut parsed = 0;
    for _ in 0..iters {
        let mut t = TableBuilder::new();
        let header = if rng.next().is_multiple_of(4) {
            mutate(&mut rng, &encode_header())
        } else {
            encode_header()
        };
        t.add(b"", &header).unwrap();
        for k in 0..1 + rng.next() % 4 {
            let template = &templates[(rng.next() % templates.len() as u64) as usize];
            t.add(format!("k{k}").as_bytes(), &mutate(&mut rng, template)).unwrap();
        }
        let index = t.finish().unwrap();
        let data: Vec<u8> = (0..rng.next() % 300).map(|_| rng.next() as u8).collect();
        if let Ok(r) = BundleReader::parse_index(Path::new("f"), &index) {
            parsed += 1;
            for (key, _) in r.entries() {
                let _ = r.read_from_bytes(key, &data);
                let _ = r.read_from_bytes(key, FIXTURE_DATA);
                let _ = r.read_strings_from_bytes(key, &data);
                let _ = r.read_strings_from_bytes(key, FIXTURE_DATA);
            }
        }
    }
    assert!(parsed > 0);
}

#[test]
fn entries_of_unrepresentable_dtypes_are_set_aside_not_fatal() {
    use super::entry::{encode_entry, encode_header};
    let mut t = TableBuilder::new();
    t.add(b"", &encode_header()).unwrap();
    t.add(b"a_complex", &encode_entry(8, &[2], 0, 16, 1)).unwrap();
    t.add(
        b"b_float",
        &encode_entry(1, &[1], 16, 4, mask_crc(crc32c::crc32c(&1.5f32.to_le_bytes()))),
    )
    .unwrap();
    let index = t.finish().unwrap();
    let r = BundleReader::parse_index(Path::new("exotic"), &index).unwrap();
    assert_eq!(
        r.skipped(),
        [("a_complex".to_string(), "complex64 (TF DataType 8)".to_string())]
    );
    let keys: Vec<&str> = r.entries().map(|(k, _)| k).collect();
    assert_eq!(keys, ["b_float"]);
    let mut data = vec![0u8; 16];
    data.extend_from_slice(&1.5f32.to_le_bytes());
    assert_eq!(r.read_from_bytes("b_float", &data).unwrap().data, 1.5f32.to_le_bytes());
    assert!(matches!(r.read("a_complex"), Err(CheckpointError::MissingKey { .. })));
}
