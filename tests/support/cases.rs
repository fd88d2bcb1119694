//! `models.json`'s training cases: the file and each case's optimizer, shared by the test
//! that trains by hand (`models.rs`) and the one that trains through `fit` (`fit_oracle.rs`).

use ferroflow::optim::{Adam, Optimizer, Sgd};
use serde_json::Value;

/// Every case of `tests/fixtures/oracle/models.json`.
pub fn model_cases() -> Vec<Value> {
    let path = super::oracle_fixture("models.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read models.json")).expect("parse models.json")
}

/// The case's optimizer with its hyper-parameters (SGD with optional momentum, or Adam).
pub fn optimizer(case: &Value) -> ferroflow::Result<Box<dyn Optimizer>> {
    let o = &case["optimizer"];
    let lr = o["learning_rate"].as_f64().expect("lr");
    Ok(match o["type"].as_str().expect("optimizer type") {
        "SGD" => Box::new(
            Sgd::new(lr)?
                .with_momentum(o["momentum"].as_f64().unwrap_or(0.0))?
                .with_nesterov(o["nesterov"].as_bool().unwrap_or(false)),
        ),
        "Adam" => Box::new(
            Adam::new(lr)?
                .with_beta_1(o["beta_1"].as_f64().expect("beta_1"))?
                .with_beta_2(o["beta_2"].as_f64().expect("beta_2"))?
                .with_epsilon(o["epsilon"].as_f64().expect("epsilon"))?,
        ),
        other => panic!("unknown optimizer {other}"),
    })
}
