//! Files written by other tools: a safetensors file from Python's `safetensors.numpy.save_file`
//! (0.8.0), with every numpy dtype the format shares with ferroflow plus float16 and uint8.

use ferroflow_checkpoint::{list_variables, load_variable, CheckpointReader, StoredDtype};
use ferroflow_tensor_core::DType;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python.safetensors")
}

#[test]
fn reads_a_file_written_by_python_safetensors() {
    let listed: Vec<(String, StoredDtype, Vec<usize>)> = list_variables(fixture())
        .unwrap()
        .into_iter()
        .map(|i| (i.name, i.dtype, i.shape))
        .collect();
    assert_eq!(
        listed,
        [
            ("bytes".to_string(), StoredDtype::U8, vec![2]),
            ("dense.weight".to_string(), StoredDtype::F32, vec![2, 2]),
            ("empty".to_string(), StoredDtype::F32, vec![0, 3]),
            ("f64".to_string(), StoredDtype::F64, vec![2]),
            ("half".to_string(), StoredDtype::F16, vec![4]),
            ("ids".to_string(), StoredDtype::I32, vec![1, 3]),
            ("mask".to_string(), StoredDtype::Bool, vec![2]),
            ("step".to_string(), StoredDtype::I64, vec![]),
        ]
    );
    let load = |n| load_variable(fixture(), n).unwrap();
    assert_eq!(
        load("dense.weight").to_vec::<f32>().unwrap(),
        vec![1.5, -2.25, 0.125, 4.0]
    );
    let half = load("half");
    assert_eq!(half.dtype(), DType::F32);
    assert_eq!(half.to_vec::<f32>().unwrap(), vec![1.0, -2.0, 0.5, 65504.0]);
    assert_eq!(load("f64").to_vec::<f64>().unwrap(), vec![1e-300, 2.5]);
    assert_eq!(load("ids").to_vec::<i32>().unwrap(), vec![1, 2, 3]);
    assert_eq!(load("step").to_scalar::<i64>().unwrap(), 7);
    assert_eq!(load("mask").to_vec::<bool>().unwrap(), vec![true, false]);
    assert_eq!(load("bytes").to_vec::<i32>().unwrap(), vec![0, 255]);
    assert_eq!(load("empty").dims(), &[0, 3]);
    let reader = CheckpointReader::open(fixture()).unwrap();
    assert_eq!(reader.save_counter().unwrap(), None);
}
