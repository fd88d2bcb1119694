//! `#[derive(Module)]`: the attributes it lists, and TensorFlow's tracking rules
//! (tf-function-semantics.md M02–M04) applied to derived modules.

use ferroflow_nn::{Attr, Module, Track};
use ferroflow_tensor_core::{Tensor, Trackable, Variable};
use std::collections::BTreeMap;
use std::marker::PhantomData;

fn var(name: &str) -> Variable {
    Variable::new(name, Tensor::scalar(1.0f32)).unwrap()
}

fn frozen(name: &str) -> Variable {
    Variable::non_trainable(name, Tensor::scalar(1.0f32)).unwrap()
}

fn paths(m: &dyn Module) -> Vec<String> {
    m.variables_by_path_in_order().into_iter().map(|(p, _)| p).collect()
}

fn names(vars: &[Variable]) -> Vec<&str> {
    vars.iter().map(Variable::name).collect()
}

fn sub_names(m: &dyn Module) -> Vec<String> {
    m.submodules().iter().map(|s| s.name().to_string()).collect()
}

/// The names `attributes()` lists, in the order it lists them.
fn attr_names(m: &dyn Module) -> Vec<String> {
    m.attributes().into_iter().map(|(n, _)| n).collect()
}

// --- The lesson's seed model -------------------------------------------------------------

#[derive(Module)]
struct Dense {
    w: Variable,
}

#[derive(Module)]
struct SequentialModule {
    dense_1: Dense,
    dense_2: Dense,
}

fn seed_model() -> SequentialModule {
    SequentialModule {
        dense_1: Dense { w: var("w") },
        dense_2: Dense { w: var("w") },
    }
}

#[test]
fn seed_model_paths_submodules_and_variables() {
    let m = seed_model();
    assert_eq!(m.name(), "sequential_module");
    assert_eq!(m.name_scope(), "sequential_module/");
    assert_eq!(m.dense_1.name(), "dense");
    assert_eq!(paths(&m), ["dense_1/w", "dense_2/w"]);
    assert_eq!(sub_names(&m), ["dense", "dense"]);
    let vars = m.variables();
    assert_eq!(vars.len(), 2);
    assert_eq!(vars[0].id(), m.dense_1.w.id());
    assert_eq!(vars[1].id(), m.dense_2.w.id());
    assert_eq!(m.trainable_variables().len(), 2);
}

#[test]
fn attributes_are_listed_in_declaration_order() {
    let m = seed_model();
    assert_eq!(attr_names(&m), ["dense_1", "dense_2"]);
    let attrs = m.attributes();
    assert!(matches!(attrs[0].1, Attr::Module(d) if d.name() == "dense"));
    let d = Dense { w: var("w") };
    assert!(matches!(d.attributes()[0].1, Attr::Variable(v) if v.id() == d.w.id()));
}

#[test]
fn derived_module_tracks_as_a_module() {
    let d = Dense { w: var("w") };
    match d.track() {
        Some(Attr::Module(m)) => assert_eq!(paths(m), ["w"]),
        _ => panic!("a derived module tracks as Attr::Module"),
    }
    assert_eq!(paths(d.as_dyn()), ["w"]);
}

// --- M02: variables in sorted attribute order, deduplicated by identity --------------------

#[derive(Module)]
struct Vars {
    z: Variable,
    a: Variable,
    m: Variable,
    alias: Variable,
}

#[test]
fn variables_sorted_by_attribute_and_deduplicated() {
    let z = var("z");
    let m = Vars {
        alias: z.clone(),
        z,
        a: frozen("a"),
        m: var("m"),
    };
    assert_eq!(attr_names(&m), ["z", "a", "m", "alias"]);
    assert_eq!(names(&m.variables()), ["a", "z", "m"]);
    assert_eq!(names(&m.trainable_variables()), ["z", "m"]);
    // Paths keep the first path of a shared variable only.
    let by_path: Vec<(String, u64)> = m
        .variables_by_path_in_order()
        .into_iter()
        .map(|(p, v)| (p, v.id()))
        .collect();
    assert_eq!(by_path[0].0, "a");
    assert_eq!(by_path[1], ("alias".to_string(), m.z.id()));
}

// --- M03: submodules breadth-first, sorted names within a level -----------------------------

#[derive(Module)]
struct Leaf {
    name: String,
    v: Variable,
}

#[derive(Module)]
struct Mid {
    name: String,
    leaf: Leaf,
}

#[derive(Module)]
struct Top {
    name: String,
    zz: Mid,
    aa: Mid,
}

fn mid(name: &str) -> Mid {
    Mid {
        name: name.to_string(),
        leaf: Leaf {
            name: format!("{name}_leaf"),
            v: var(&format!("{name}_v")),
        },
    }
}

#[test]
fn submodules_breadth_first_sorted_within_a_level() {
    let top = Top {
        name: "top".into(),
        zz: mid("zz"),
        aa: mid("aa"),
    };
    assert_eq!(top.name(), "top");
    assert_eq!(attr_names(&top), ["zz", "aa"]);
    assert_eq!(sub_names(&top), ["aa", "zz", "aa_leaf", "zz_leaf"]);
    assert_eq!(paths(&top), ["aa/leaf/v", "zz/leaf/v"]);
    assert_eq!(names(&top.variables()), ["aa_v", "zz_v"]);
}

// --- M04: containers ---------------------------------------------------------------------

#[derive(Module)]
struct Stack {
    layers: Vec<Dense>,
}

#[test]
fn vec_of_layers_is_indexed() {
    let s = Stack {
        layers: vec![Dense { w: var("w0") }, Dense { w: var("w1") }, Dense { w: var("w2") }],
    };
    assert_eq!(paths(&s), ["layers/0/w", "layers/1/w", "layers/2/w"]);
    assert_eq!(sub_names(&s), ["dense", "dense", "dense"]);
    assert_eq!(names(&s.variables()), ["w0", "w1", "w2"]);
}

#[derive(Module)]
struct WithOption {
    bias: Option<Variable>,
    head: Option<Dense>,
}

#[test]
fn option_none_contributes_nothing_some_its_contents() {
    let none = WithOption { bias: None, head: None };
    assert!(none.attributes().is_empty());
    assert!(paths(&none).is_empty());
    assert!(none.submodules().is_empty());

    let some = WithOption {
        bias: Some(var("b")),
        head: Some(Dense { w: var("w") }),
    };
    assert_eq!(attr_names(&some), ["bias", "head"]);
    assert_eq!(paths(&some), ["bias", "head/w"]);
    assert_eq!(sub_names(&some), ["dense"]);
}

#[derive(Module)]
struct WithArray {
    pair: [Dense; 2],
    scales: [Variable; 3],
}

#[test]
fn arrays_are_indexed() {
    let m = WithArray {
        pair: [Dense { w: var("p0") }, Dense { w: var("p1") }],
        scales: [var("s0"), var("s1"), var("s2")],
    };
    assert_eq!(paths(&m), ["pair/0/w", "pair/1/w", "scales/0", "scales/1", "scales/2"]);
    assert_eq!(sub_names(&m), ["dense", "dense"]);
}

#[derive(Module)]
struct WithMap {
    map: BTreeMap<String, Variable>,
}

#[test]
fn map_is_keyed_sorted_with_slash_escaped() {
    let mut map = BTreeMap::new();
    map.insert("zeta".to_string(), var("zeta"));
    map.insert("a/b".to_string(), var("ab"));
    map.insert("beta".to_string(), var("beta"));
    let m = WithMap { map };
    assert_eq!(paths(&m), ["map/a.Sb", "map/beta", "map/zeta"]);
}

#[derive(Module)]
struct Boxed {
    body: Box<dyn Module>,
    extra: Vec<Option<Box<Dense>>>,
}

#[test]
fn boxed_and_nested_containers() {
    let m = Boxed {
        body: Box::new(Dense { w: var("body") }),
        extra: vec![None, Some(Box::new(Dense { w: var("extra") }))],
    };
    // `None` items are dropped from the list, so the `Some` is item 0.
    assert_eq!(paths(&m), ["body/w", "extra/0/w"]);
    assert_eq!(sub_names(&m), ["dense", "dense"]);
}

// --- Field attributes and plain fields ---------------------------------------------------

#[derive(Module)]
struct Attributes {
    #[module(rename = "kernel")]
    w: Variable,
    #[module(skip)]
    cache: Variable,
    b: Variable,
    units: usize,
    activation: String,
    t: Tensor,
    rate: Option<f32>,
    kernel_size: (usize, usize),
    strides: [usize; 2],
    dims: Vec<usize>,
    label: &'static str,
    act: fn(f32) -> f32,
    _marker: PhantomData<Variable>,
}

fn attributes_module() -> Attributes {
    Attributes {
        w: var("w"),
        cache: var("cache"),
        b: var("b"),
        units: 3,
        activation: "relu".into(),
        t: Tensor::scalar(0.0f32),
        rate: Some(0.5),
        kernel_size: (3, 3),
        strides: [1, 1],
        dims: vec![1, 2],
        label: "x",
        act: f32::abs,
        _marker: PhantomData,
    }
}

#[test]
fn skip_rename_and_plain_fields() {
    let m = attributes_module();
    assert_eq!(m.name(), "attributes");
    // `kernel` sorts after `b`, although `w` was declared first.
    assert_eq!(attr_names(&m), ["kernel", "b"]);
    assert_eq!(paths(&m), ["b", "kernel"]);
    assert_eq!(names(&m.variables()), ["b", "w"]);
    assert!(m.variables().iter().all(|v| v.id() != m.cache.id()));
    // The plain fields are still ordinary fields.
    assert_eq!((m.units, m.activation.as_str(), m.label), (3, "relu", "x"));
    assert_eq!(
        (m.rate, m.kernel_size, m.strides, m.dims.len()),
        (Some(0.5), (3, 3), [1, 1], 2)
    );
    assert_eq!((m.act)(-1.0), 1.0);
    assert_eq!(m.t.to_vec::<f32>().unwrap(), vec![0.0]);
}

#[derive(Module)]
struct Named {
    #[module(name)]
    label: String,
    /// A `name` field that is not the name (the marked field wins): tracked as usual.
    name: Variable,
}

#[test]
fn name_attribute_on_another_field() {
    let m = Named {
        label: "my_layer".into(),
        name: var("n"),
    };
    assert_eq!(m.name(), "my_layer");
    assert_eq!(m.name_scope(), "my_layer/");
    assert_eq!(paths(&m), ["name"]);
    assert!(m.attributes().iter().all(|(n, _)| n != "label"));
}

#[derive(Module)]
struct SkippedName {
    #[module(skip)]
    name: String,
}

#[derive(Module)]
struct MyCoolModule {}

#[test]
fn default_name_is_snake_case_of_the_struct() {
    assert_eq!(MyCoolModule {}.name(), "my_cool_module");
    assert_eq!(MyCoolModule {}.name(), ferroflow_nn::snake_case("MyCoolModule"));
    assert!(MyCoolModule {}.attributes().is_empty());
    // A skipped `name` field is not the name.
    let s = SkippedName { name: "ignored".into() };
    assert_eq!(s.name(), "skipped_name");
    assert_eq!(s.name, "ignored");
    assert!(s.attributes().is_empty());
}

// --- Generics ----------------------------------------------------------------------------

#[derive(Module)]
struct Wrap<M: Module + Track> {
    inner: M,
}

#[derive(Module)]
struct Pair<A, B>
where
    A: Track,
{
    first: A,
    second: Vec<B>,
    count: usize,
}

#[test]
fn generic_structs() {
    let w = Wrap {
        inner: Dense { w: var("w") },
    };
    assert_eq!(w.name(), "wrap");
    assert_eq!(paths(&w), ["inner/w"]);
    assert_eq!(sub_names(&w), ["dense"]);

    let nested = Wrap { inner: w };
    assert_eq!(paths(&nested), ["inner/inner/w"]);
    assert_eq!(sub_names(&nested), ["wrap", "dense"]);

    // `B: Track` is not written: the derive adds `Vec<B>: Track` to its impls.
    let p = Pair {
        first: var("a"),
        second: vec![Dense { w: var("b") }],
        count: 1,
    };
    assert_eq!(p.count, 1);
    assert_eq!(paths(&p), ["first", "second/0/w"]);
}

// --- Trackable ---------------------------------------------------------------------------

#[test]
fn trackable_returns_the_module_paths() {
    fn trackable_paths(t: &dyn Trackable) -> Vec<(String, u64)> {
        t.variables_by_path().into_iter().map(|(p, v)| (p, v.id())).collect()
    }
    let m = seed_model();
    let expected: Vec<(String, u64)> = m
        .variables_by_path_in_order()
        .into_iter()
        .map(|(p, v)| (p, v.id()))
        .collect();
    assert_eq!(trackable_paths(&m), expected);
    assert_eq!(trackable_paths(&m)[0].0, "dense_1/w");

    let a = attributes_module();
    assert_eq!(
        trackable_paths(&a).into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        ["b", "kernel"]
    );
}
