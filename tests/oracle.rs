//! TensorFlow's numbers for every op of `ops.json`, through the facade.
//!
//! Each mode is a switch over the same case list (`support::oracle`): today the eager
//! forward pass; traced and gradient modes join as the graph and autodiff crates land.

mod support;

use support::oracle::{compare, forward_rtol, load_cases, op_fn, KERAS_LOSSES};

#[test]
fn oracle_forward() {
    let cases = load_cases();
    let mut total = 0;
    let mut failures = Vec::new();
    for case in cases
        .iter()
        .filter(|c| !KERAS_LOSSES.contains(&c.op.as_str()))
    {
        total += 1;
        let Some(f) = op_fn(case) else {
            failures.push(format!("{}: op not mapped", case.id));
            continue;
        };
        let result = f(&case.inputs).map_err(|e| e.to_string()).and_then(|outs| {
            if outs.len() != case.outputs.len() {
                return Err(format!(
                    "{} outputs, want {}",
                    outs.len(),
                    case.outputs.len()
                ));
            }
            outs.iter()
                .zip(&case.outputs)
                .try_for_each(|(g, w)| compare(g, w, forward_rtol(w.dtype())))
        });
        if let Err(e) = result {
            failures.push(format!("{}: {e}", case.id));
        }
    }
    println!(
        "oracle forward: {}/{} cases passed",
        total - failures.len(),
        total
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
