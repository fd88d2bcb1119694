//! The lesson's seed model (`models.json`, cases `seed_sequential` and `_f64`): a
//! `SequentialModule` of two bias-free sigmoid `Dense` layers. Its output and the gradients
//! with respect to each weight, taken with a `GradientTape` over `Variable`s, match
//! TensorFlow's.

mod support;

use ferroflow::autodiff::GradientTape;
use ferroflow::tensor::{DType, Tensor, Variable};
use serde_json::Value;
use support::oracle::{compare, tensor_from_json};

fn model_cases() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oracle/models.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read models.json")).expect("parse models.json")
}

#[test]
fn seed_sequential_output_and_gradients_match_tensorflow() {
    let cases = model_cases();
    let seeds: Vec<&Value> = cases
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("seed_sequential"))
        .collect();
    assert_eq!(seeds.len(), 2);
    for case in seeds {
        let dtype = DType::from_name(case["dtype"].as_str().unwrap()).unwrap();
        let (out_tol, grad_tol) = if dtype == DType::F64 {
            (1e-12, 1e-9)
        } else {
            (1e-5, 1e-4)
        };
        let w1 = Variable::new(
            "dense_1/w",
            tensor_from_json(&case["weights"]["dense_1/w"]).cast(dtype).unwrap(),
            true,
        )
        .unwrap();
        let w2 = Variable::new(
            "dense_2/w",
            tensor_from_json(&case["weights"]["dense_2/w"]).cast(dtype).unwrap(),
            true,
        )
        .unwrap();
        let x: Tensor = tensor_from_json(&case["input"]);
        let tape = GradientTape::new();
        let y = x
            .matmul(&w1.read().unwrap())
            .unwrap()
            .sigmoid()
            .unwrap()
            .matmul(&w2.read().unwrap())
            .unwrap()
            .sigmoid()
            .unwrap();
        compare(&y, &tensor_from_json(&case["output"]), out_tol).unwrap();
        let g = tape.gradient_vars(&y, &[&w1, &w2]).unwrap();
        for (got, name) in g.iter().zip(["dense_1/w", "dense_2/w"]) {
            compare(got.as_ref().unwrap(), &tensor_from_json(&case["grads"][name]), grad_tol)
                .unwrap_or_else(|e| panic!("{} {name}: {e}", case["name"]));
        }
    }
}
