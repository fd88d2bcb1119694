//! The `ferroflow` tool: `inspect` and `convert` on TensorFlow's own checkpoint and on what
//! we convert it to, and a one-line error with a non-zero exit on bad input.

use ferroflow::checkpoint::{list_variables, load_variable};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ferroflow(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferroflow"))
        .args(args)
        .output()
        .expect("run the ferroflow binary")
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoint/tests/fixtures/tf_ckpt/checkpoint1")
}

#[test]
fn inspect_lists_variables_with_statistics() {
    let out = ferroflow(&[Path::new("inspect"), &fixture()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(TensorFlow), 2 variable(s)"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("model/dense_2/w"))
        .expect("dense_2 listed");
    // float32 [3, 1]: min -0.530829, max 1.066880, mean 0.243534.
    for want in ["float32", "[3, 1]", "-0.530829", "1.066880", "0.243534"] {
        assert!(line.contains(want), "{want} not in {line}");
    }
}

#[test]
fn convert_goes_both_ways_and_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("lesson.safetensors");
    let back = dir.path().join("back");
    assert!(ferroflow(&[Path::new("convert"), &fixture(), &st]).status.success());
    assert!(ferroflow(&[Path::new("convert"), &st, &back]).status.success());
    let inspect = ferroflow(&[Path::new("inspect"), &st]);
    assert!(String::from_utf8(inspect.stdout)
        .unwrap()
        .contains("(Safetensors), 2 variable(s)"));
    for path in [&st, &back] {
        assert_eq!(list_variables(path).unwrap(), list_variables(fixture()).unwrap());
        for name in ["model/dense_1/w", "model/dense_2/w"] {
            let a = load_variable(path, name).unwrap().to_vec::<f32>().unwrap();
            let b = load_variable(fixture(), name).unwrap().to_vec::<f32>().unwrap();
            assert_eq!(a, b);
        }
    }
}

#[test]
fn bad_files_and_arguments_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"\xff\xff\xff\xff\xff\xff\xff\xffgarbage").unwrap();
    for args in [
        vec![Path::new("inspect"), &bad],
        vec![Path::new("inspect"), &dir.path().join("missing")],
    ] {
        let out = ferroflow(&args);
        assert!(!out.status.success());
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ferroflow: error: "), "{err}");
    }
    assert_eq!(ferroflow(&[Path::new("frobnicate")]).status.code(), Some(2));
}
