//! The oracle harness: loads `tests/fixtures/oracle/ops.json` (TensorFlow 2.21's numbers),
//! turns each case's op name and attributes into a call of ferroflow's API, and compares
//! results with per-dtype tolerances.
//!
//! The case list and the op mapping are written once; each test mode (eager forward, and
//! later traced forward and gradients) is a switch over the same cases.

use ferroflow::optim::losses::Predictions;
use ferroflow::tensor::{Axes, DType, Gelu, MatMul, OneHot, Padding, Reduction, Scan, Slice, Tensor, TensordotAxes};
use serde_json::Value;

/// One case of `ops.json`.
pub struct Case {
    /// `"<op>/<index>"`.
    pub id: String,
    /// The op's name.
    pub op: String,
    /// Attributes as recorded.
    pub attrs: Value,
    /// Positional inputs.
    pub inputs: Vec<Tensor>,
    /// Expected outputs (one for single-output ops).
    pub outputs: Vec<Tensor>,
    /// For float32 cases: the same op run by TensorFlow in float64 on the same values
    /// (`exact_output` / `exact_outputs`), the reference of the float32 rule.
    pub exact_outputs: Option<Vec<Tensor>>,
    /// Upstream gradients, when the case has gradients (read by the gradient modes).
    pub upstreams: Option<Vec<Tensor>>,
    /// Expected input gradients (`None` for integer inputs).
    pub grads: Option<Vec<Option<Tensor>>>,
    /// Float64 references of float32 gradients (`exact_grads`).
    pub exact_grads: Option<Vec<Option<Tensor>>>,
}

/// Reads a tensor in the oracle's JSON encoding.
pub fn tensor_from_json(v: &Value) -> Tensor {
    let dtype = DType::from_name(v["dtype"].as_str().expect("dtype")).expect("known dtype");
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| d.as_u64().expect("dim") as usize)
        .collect();
    let data = v["data"].as_array().expect("data");
    let t = match dtype {
        DType::Bool => Tensor::from_vec(data.iter().map(|x| x.as_bool().expect("bool")).collect(), &shape),
        DType::I32 | DType::I64 => Tensor::from_vec(data.iter().map(|x| x.as_i64().expect("int")).collect(), &shape),
        DType::F32 | DType::F64 => Tensor::from_vec(data.iter().map(|x| x.as_f64().expect("float")).collect(), &shape),
    };
    t.expect("consistent tensor")
        .cast(dtype)
        .expect("cast to the case dtype")
}

/// Loads every case of `ops.json`.
pub fn load_cases() -> Vec<Case> {
    let path = super::oracle_fixture("ops.json");
    let text = std::fs::read_to_string(path).expect("read ops.json");
    let root: Value = serde_json::from_str(&text).expect("parse ops.json");
    root["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let many = |k: &str| {
                c.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(tensor_from_json).collect::<Vec<_>>())
            };
            let outputs = many("outputs").unwrap_or_else(|| vec![tensor_from_json(&c["output"])]);
            let exact_outputs =
                many("exact_outputs").or_else(|| c.get("exact_output").map(|e| vec![tensor_from_json(e)]));
            let upstreams = many("upstreams").or_else(|| c.get("upstream").map(|u| vec![tensor_from_json(u)]));
            let optional_list = |k: &str| {
                c.get(k).and_then(Value::as_array).map(|g| {
                    g.iter()
                        .map(|x| if x.is_null() { None } else { Some(tensor_from_json(x)) })
                        .collect()
                })
            };
            Case {
                id: c["id"].as_str().expect("id").to_string(),
                op: c["op"].as_str().expect("op").to_string(),
                attrs: c["attrs"].clone(),
                inputs: c["inputs"]
                    .as_array()
                    .expect("inputs")
                    .iter()
                    .map(tensor_from_json)
                    .collect(),
                outputs,
                exact_outputs,
                upstreams,
                grads: optional_list("grads"),
                exact_grads: optional_list("exact_grads"),
            }
        })
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_i64().expect("int")).collect())
        .unwrap_or_default()
}

fn usizes(v: &Value) -> Vec<usize> {
    ints(v).into_iter().map(|x| x as usize).collect()
}

fn pair(v: &Value) -> [usize; 2] {
    let u = usizes(v);
    [u[0], u[1]]
}

fn opt_ints(v: &Value) -> Vec<Option<i64>> {
    v.as_array().expect("list").iter().map(Value::as_i64).collect()
}

/// Axis attribute that may be an int, a list or null (all axes).
fn axes(v: &Value) -> Axes {
    match v {
        Value::Null => Axes::All,
        Value::Number(n) => Axes::from(n.as_i64().expect("axis")),
        _ => Axes::from(ints(v)),
    }
}

/// The op as a function of its inputs, or `None` for ops outside tensor-core.
pub type OpFn = Box<dyn Fn(&[Tensor]) -> ferroflow::Result<Vec<Tensor>>>;

/// A single-output op as a function of its inputs.
type OneFn = Box<dyn Fn(&[Tensor]) -> ferroflow::Result<Tensor>>;

/// Maps a case's op name and attributes to a call of ferroflow's API.
pub fn op_fn(case: &Case) -> Option<OpFn> {
    let a = case.attrs.clone();
    let one = |f: OneFn| -> Option<OpFn> { Some(Box::new(move |x| f(x).map(|t| vec![t]))) };
    macro_rules! unary {
        ($m:ident) => {
            one(Box::new(|x| x[0].$m()))
        };
    }
    macro_rules! binary {
        ($m:ident) => {
            one(Box::new(|x| x[0].$m(&x[1])))
        };
    }
    macro_rules! reduce {
        ($m:ident) => {{
            let ax = axes(&a["axis"]);
            let keep = a["keepdims"].as_bool().unwrap_or(false);
            one(Box::new(move |x| {
                x[0].$m(Reduction {
                    axes: ax.clone(),
                    keepdims: keep,
                })
            }))
        }};
    }
    let f64_attr = |k: &str| a[k].as_f64().expect("float attr");
    let i64_attr = |k: &str| a[k].as_i64().expect("int attr");
    match case.op.as_str() {
        "neg" => unary!(neg),
        "abs" => unary!(abs),
        "exp" => unary!(exp),
        "log" => unary!(log),
        "log1p" => unary!(log1p),
        "sqrt" => unary!(sqrt),
        "rsqrt" => unary!(rsqrt),
        "square" => unary!(square),
        "reciprocal" => unary!(reciprocal),
        "sin" => unary!(sin),
        "cos" => unary!(cos),
        "tanh" => unary!(tanh),
        "sigmoid" => unary!(sigmoid),
        "erf" => unary!(erf),
        "softplus" => unary!(softplus),
        "softsign" => unary!(softsign),
        "relu" => unary!(relu),
        "relu6" => unary!(relu6),
        "elu" => unary!(elu),
        "selu" => unary!(selu),
        "sign" => unary!(sign),
        "floor" => unary!(floor),
        "ceil" => unary!(ceil),
        "round" => unary!(round),
        "logical_not" => unary!(logical_not),
        "leaky_relu" => {
            let alpha = f64_attr("alpha");
            one(Box::new(move |x| x[0].leaky_relu(alpha)))
        }
        "gelu" => {
            let approx = a["approximate"].as_bool().expect("approximate");
            one(Box::new(move |x| {
                x[0].gelu(if approx { Gelu::Tanh } else { Gelu::Exact })
            }))
        }
        "add" => binary!(add),
        "subtract" => binary!(sub),
        "multiply" => binary!(mul),
        "divide" => binary!(div),
        "pow" => binary!(pow),
        "maximum" => binary!(maximum),
        "minimum" => binary!(minimum),
        "squared_difference" => binary!(squared_difference),
        "floordiv" => binary!(floordiv),
        "floormod" => binary!(floormod),
        "equal" => binary!(equal),
        "not_equal" => binary!(not_equal),
        "less" => binary!(less),
        "less_equal" => binary!(less_equal),
        "greater" => binary!(greater),
        "greater_equal" => binary!(greater_equal),
        "logical_and" => binary!(logical_and),
        "logical_or" => binary!(logical_or),
        "bias_add" => binary!(bias_add),
        "sigmoid_cross_entropy_with_logits" => binary!(sigmoid_cross_entropy_with_logits),
        "sparse_softmax_cross_entropy_with_logits" => {
            binary!(sparse_softmax_cross_entropy_with_logits)
        }
        "where" => one(Box::new(|x| x[0].select(&x[1], &x[2]))),
        "reduce_sum" => reduce!(reduce_sum),
        "reduce_mean" => reduce!(reduce_mean),
        "reduce_max" => reduce!(reduce_max),
        "reduce_min" => reduce!(reduce_min),
        "reduce_prod" => reduce!(reduce_prod),
        "reduce_logsumexp" => reduce!(reduce_logsumexp),
        "reduce_variance" => reduce!(reduce_variance),
        "reduce_std" => reduce!(reduce_std),
        "argmax" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].argmax(ax)))
        }
        "argmin" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].argmin(ax)))
        }
        "matmul" => {
            let (ta, tb) = (
                a["transpose_a"].as_bool().unwrap_or(false),
                a["transpose_b"].as_bool().unwrap_or(false),
            );
            one(Box::new(move |x| {
                x[0].matmul_with(
                    &x[1],
                    MatMul {
                        transpose_a: ta,
                        transpose_b: tb,
                    },
                )
            }))
        }
        "transpose" => {
            let perm = (!a["perm"].is_null()).then(|| usizes(&a["perm"]));
            one(Box::new(move |x| {
                // perm null reverses the axes.
                let reversed: Vec<usize> = (0..x[0].rank()).rev().collect();
                x[0].transpose(perm.as_deref().unwrap_or(&reversed))
            }))
        }
        "tensordot" => {
            let axes = match &a["axes"] {
                Value::Number(n) => TensordotAxes::Count(n.as_u64().expect("axes") as usize),
                v => TensordotAxes::Pairs(ints(&v[0]), ints(&v[1])),
            };
            one(Box::new(move |x| x[0].tensordot(&x[1], axes.clone())))
        }
        "reshape" => {
            let s = ints(&a["shape"]);
            one(Box::new(move |x| x[0].reshape(&s)))
        }
        "expand_dims" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].expand_dims(ax)))
        }
        "squeeze" => {
            let ax = axes(&a["axis"]);
            one(Box::new(move |x| x[0].squeeze(ax.clone())))
        }
        "concat" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| Tensor::concat(&x.iter().collect::<Vec<_>>(), ax)))
        }
        "stack" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| Tensor::stack(&x.iter().collect::<Vec<_>>(), ax)))
        }
        "split" => {
            let ax = i64_attr("axis");
            let n = a["num_or_size_splits"].clone();
            Some(Box::new(move |x| match &n {
                Value::Number(k) => x[0].split_n(k.as_u64().expect("num") as usize, ax),
                v => x[0].split(&ints(v), ax),
            }))
        }
        "slice" => {
            let (b, s) = (ints(&a["begin"]), ints(&a["size"]));
            one(Box::new(move |x| x[0].slice(&b, &s)))
        }
        "strided_slice" => {
            let (b, e, s) = (opt_ints(&a["begin"]), opt_ints(&a["end"]), ints(&a["strides"]));
            let slices: Vec<Slice> = (0..s.len())
                .map(|i| Slice {
                    start: b[i],
                    end: e[i],
                    step: s[i],
                })
                .collect();
            one(Box::new(move |x| x[0].strided_slice(&slices)))
        }
        "tile" => {
            let m = usizes(&a["multiples"]);
            one(Box::new(move |x| x[0].tile(&m)))
        }
        "broadcast_to" => {
            let s = usizes(&a["shape"]);
            one(Box::new(move |x| x[0].broadcast_to(&s)))
        }
        "pad" => {
            let p: Vec<[usize; 2]> = a["paddings"].as_array().expect("paddings").iter().map(pair).collect();
            let c = f64_attr("constant_values");
            one(Box::new(move |x| x[0].pad(&p, c)))
        }
        "gather" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].gather(&x[1], ax)))
        }
        "one_hot" => {
            let (depth, on, off, ax) = (
                i64_attr("depth") as usize,
                f64_attr("on_value"),
                f64_attr("off_value"),
                i64_attr("axis"),
            );
            let dt = DType::from_name(a["dtype"].as_str().expect("dtype")).expect("dtype");
            one(Box::new(move |x| {
                x[0].one_hot(OneHot::new(depth).on_value(on).off_value(off).axis(ax).dtype(dt))
            }))
        }
        "cast" => {
            let dt = DType::from_name(a["dtype"].as_str().expect("dtype")).expect("dtype");
            one(Box::new(move |x| x[0].cast(dt)))
        }
        "clip_by_value" => {
            let (lo, hi) = (f64_attr("clip_min"), f64_attr("clip_max"));
            one(Box::new(move |x| x[0].clip_by_value(lo, hi)))
        }
        "cumsum" => {
            let ax = i64_attr("axis");
            let (ex, rev) = (
                a["exclusive"].as_bool().unwrap_or(false),
                a["reverse"].as_bool().unwrap_or(false),
            );
            one(Box::new(move |x| {
                x[0].cumsum(Scan {
                    axis: ax,
                    exclusive: ex,
                    reverse: rev,
                })
            }))
        }
        "softmax" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].softmax(ax)))
        }
        "log_softmax" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].log_softmax(ax)))
        }
        "softmax_cross_entropy_with_logits" => {
            let ax = i64_attr("axis");
            one(Box::new(move |x| x[0].softmax_cross_entropy_with_logits(&x[1], ax)))
        }
        "l2_normalize" => {
            let ax = ints(&a["axis"])
                .into_iter()
                .chain(a["axis"].as_i64())
                .collect::<Vec<_>>();
            one(Box::new(move |x| x[0].l2_normalize(&ax)))
        }
        "conv2d" => {
            assert_eq!(a["data_format"], "NHWC");
            let (s, d) = (pair(&a["strides"]), pair(&a["dilations"]));
            let p: Padding = a["padding"].as_str().expect("padding").parse().expect("padding");
            one(Box::new(move |x| x[0].conv2d(&x[1], s, p, d)))
        }
        "max_pool2d" | "avg_pool2d" => {
            let max = case.op == "max_pool2d";
            let (k, s) = (pair(&a["ksize"]), pair(&a["strides"]));
            let p: Padding = a["padding"].as_str().expect("padding").parse().expect("padding");
            one(Box::new(move |x| {
                if max {
                    x[0].max_pool2d(k, s, p)
                } else {
                    x[0].avg_pool2d(k, s, p)
                }
            }))
        }
        "mean_squared_error" => one(Box::new(|x| ferroflow::optim::losses::mean_squared_error(&x[0], &x[1]))),
        "mean_absolute_error" => one(Box::new(|x| {
            ferroflow::optim::losses::mean_absolute_error(&x[0], &x[1])
        })),
        "binary_crossentropy" | "categorical_crossentropy" | "sparse_categorical_crossentropy" => {
            use ferroflow::optim::losses;
            let logits = if a["from_logits"].as_bool().unwrap_or(false) {
                Predictions::Logits
            } else {
                Predictions::Probabilities
            };
            let f = match case.op.as_str() {
                "binary_crossentropy" => losses::binary_crossentropy,
                "categorical_crossentropy" => losses::categorical_crossentropy,
                _ => losses::sparse_categorical_crossentropy,
            };
            one(Box::new(move |x| f(&x[0], &x[1], logits)))
        }
        "huber" => {
            let delta = f64_attr("delta");
            one(Box::new(move |x| ferroflow::optim::losses::huber(&x[0], &x[1], delta)))
        }
        _ => None,
    }
}

/// Relative tolerance of the test for a dtype: float64 1e-12, float32 1e-5.
pub fn forward_rtol(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-12,
        _ => 1e-5,
    }
}

/// Compares `got` with TensorFlow's `want`: same dtype and shape; integers and bools exactly.
///
/// * float32, by the rule of `tests/fixtures/oracle/README.md` and nothing looser: an element
///   is right when it matches TensorFlow's (`|got - tf| <= tol·|tf|`) or, where the case
///   carries `exact` (TensorFlow's float64 run on the same float32 values), when it is at
///   least as close to the exact value as TensorFlow's float32 result
///   (`|got - exact| <= |tf - exact| + tol·|exact|`).
/// * float64: within `tol` relative, with an absolute floor of `tol·1e-3` for values at or
///   near zero, where a relative error is meaningless (a product that cancels to 1e-17
///   instead of 0, say).
pub fn compare(got: &Tensor, want: &Tensor, exact: Option<&Tensor>, tol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.dims() != want.dims() {
        return Err(format!(
            "got {:?} {:?}, want {:?} {:?}",
            got.dtype(),
            got.dims(),
            want.dtype(),
            want.dims()
        ));
    }
    let (g, w) = (
        got.to_f64_vec().map_err(|e| e.to_string())?,
        want.to_f64_vec().map_err(|e| e.to_string())?,
    );
    let e = match exact {
        Some(e) if e.dims() == want.dims() => Some(e.to_f64_vec().map_err(|e| e.to_string())?),
        Some(e) => return Err(format!("exact reference of shape {:?} for {:?}", e.dims(), want.dims())),
        None => None,
    };
    for (i, (x, y)) in g.iter().zip(&w).enumerate() {
        let ok = match want.dtype() {
            DType::F32 => {
                let matches_tf = (x - y).abs() <= tol * y.abs();
                let as_close = e
                    .as_ref()
                    .is_some_and(|e| (x - e[i]).abs() <= (y - e[i]).abs() + tol * e[i].abs());
                matches_tf || as_close
            }
            DType::F64 => approx::relative_eq!(*x, *y, epsilon = tol * 1e-3, max_relative = tol),
            _ => x == y,
        };
        if !ok {
            let exact = e.as_ref().map_or(String::new(), |e| format!(", exact {:e}", e[i]));
            return Err(format!(
                "element {i}: got {x:e}, want {y:e} (rel err {:.2e}{exact})",
                ((x - y) / y).abs()
            ));
        }
    }
    Ok(())
}

/// Prints `oracle <label>: P/N cases passed` for `total` cases of which `failures` (one line
/// each) missed, then fails the test on any miss, listing them.
pub fn report(label: &str, total: usize, failures: &[String]) {
    println!("oracle {label}: {}/{} cases passed", total - failures.len(), total);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs every `(name, run)` of `runs` and [`report`]s them under `label`.
pub fn tally<F: FnOnce() -> Result<(), String>>(label: &str, runs: impl IntoIterator<Item = (String, F)>) {
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, run) in runs {
        total += 1;
        if let Err(e) = run() {
            failures.push(format!("{name}: {e}"));
        }
    }
    report(label, total, &failures);
}
