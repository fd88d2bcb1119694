//! Files written by NumPy itself (`tests/fixtures/make_numpy_fixtures.py`) read back with
//! their dtypes, shapes and values; a file we write reads back in NumPy's layout.

use ferroflow_data::{read_npy, read_npz, write_npy, write_npz};
use ferroflow_tensor_core::{DType, Tensor};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn numpy_npy_files_load_with_their_dtypes_and_shapes() {
    let f = read_npy(fixture("f32.npy")).unwrap();
    assert_eq!((f.dtype(), f.dims()), (DType::F32, &[2, 3][..]));
    assert_eq!(f.to_vec::<f32>().unwrap(), vec![1.5, -2.0, 3.25, 0.0, 4.0, -0.5]);
    let i = read_npy(fixture("i64.npy")).unwrap();
    assert_eq!((i.dtype(), i.dims()), (DType::I64, &[3, 2][..]));
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        read_npy(fixture("bool.npy")).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    let u = read_npy(fixture("u8.npy")).unwrap();
    assert_eq!((u.dtype(), u.to_vec::<i32>().unwrap()), (DType::I32, vec![0, 7, 255]));
    assert_eq!(
        read_npy(fixture("f64_big_endian.npy"))
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![1.0, -2.5]
    );
    // Fortran order comes back in C order.
    let fo = read_npy(fixture("f32_fortran.npy")).unwrap();
    assert_eq!(fo.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let s = read_npy(fixture("scalar.npy")).unwrap();
    assert_eq!((s.rank(), s.to_scalar::<f64>().unwrap()), (0, 2.5));
}

#[test]
fn numpy_npz_archives_load_plain_and_compressed() {
    for name in ["plain.npz", "compressed.npz"] {
        let arrays = read_npz(fixture(name)).unwrap();
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(arrays[0].1.dims(), &[4, 2]);
        assert_eq!(arrays[0].1.to_vec::<f32>().unwrap()[7], 1.0);
        assert_eq!(arrays[1].1.to_vec::<i32>().unwrap(), vec![0, 1, 1, 0]);
    }
}

#[test]
fn written_files_read_back_and_bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tensor::new([[1i32, 2], [3, 4]]);
    write_npy(dir.path().join("t.npy"), &t).unwrap();
    // The same framing as NumPy's files: magic, version 1.0, a 64-byte-aligned header.
    assert_eq!(
        std::fs::read(dir.path().join("t.npy")).unwrap()[..10],
        std::fs::read(fixture("f32.npy")).unwrap()[..10]
    );
    assert_eq!(
        read_npy(dir.path().join("t.npy")).unwrap().to_vec::<i32>().unwrap(),
        vec![1, 2, 3, 4]
    );
    let w = Tensor::new([0.5f64]);
    write_npz(dir.path().join("a.npz"), &[("t", &t), ("w", &w)]).unwrap();
    let back = read_npz(dir.path().join("a.npz")).unwrap();
    assert_eq!(back[1].0, "w");
    assert_eq!(back[1].1.to_vec::<f64>().unwrap(), vec![0.5]);
    // Truncated files and archives.
    let bytes = std::fs::read(fixture("f32.npy")).unwrap();
    std::fs::write(dir.path().join("cut.npy"), &bytes[..bytes.len() - 8]).unwrap();
    let err = read_npy(dir.path().join("cut.npy")).unwrap_err().to_string();
    assert!(err.contains("cut.npy") && err.contains("needs"), "{err}");
    let zipped = std::fs::read(fixture("compressed.npz")).unwrap();
    std::fs::write(dir.path().join("cut.npz"), &zipped[..zipped.len() / 2]).unwrap();
    assert!(read_npz(dir.path().join("cut.npz")).is_err());
    assert!(read_npy(dir.path().join("missing.npy")).is_err());
}
