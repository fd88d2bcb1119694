//! [`Module`]: `tf.Module`'s variable tracking. A module lists its tracked attributes
//! (variables, child modules and containers of them) by attribute name; everything else —
//! `variables`, `trainable_variables`, `submodules`, checkpoint paths — follows TensorFlow's
//! rules from that one list: attributes in sorted-name order, containers by index or key,
//! variables deduplicated by identity, submodules breadth-first.

use ferroflow_tensor_core::Variable;
use std::collections::{HashSet, VecDeque};

/// One tracked attribute value.
pub enum Attr<'a> {
    /// A variable.
    Variable(&'a Variable),
    /// A child module.
    Module(&'a dyn Module),
    /// A list (`Vec`, array, `Option`): items keyed by index.
    List(Vec<Attr<'a>>),
    /// A map: items keyed by string, visited in sorted-key order.
    Map(Vec<(String, Attr<'a>)>),
}

/// A `tf.Module`: a named object owning variables and child modules.
///
/// Implement it with `#[derive(Module)]`, which lists the fields; by hand, return the
/// tracked attributes from [`Module::attributes`].
pub trait Module {
    /// The module's name (`dense`, `my_dense`, ...).
    fn name(&self) -> &str;

    /// The tracked attributes, `(attribute name, value)`, in any order.
    fn attributes(&self) -> Vec<(String, Attr<'_>)>;

    /// `name_scope.name`: the name followed by `/`.
    fn name_scope(&self) -> String {
        format!("{}/", self.name())
    }

    /// Every variable reachable from this module, in TensorFlow's order (sorted attribute
    /// names, recursing into modules and containers), each once.
    fn variables(&self) -> Vec<Variable> {
        let mut seen = HashSet::new();
        self.variables_by_path_in_order()
            .into_iter()
            .filter(|(_, v)| seen.insert(v.id()))
            .map(|(_, v)| v)
            .collect()
    }

    /// [`Module::variables`] that are trainable.
    fn trainable_variables(&self) -> Vec<Variable> {
        self.variables().into_iter().filter(|v| v.trainable()).collect()
    }

    /// Every module below this one, breadth-first, attributes in sorted-name order.
    fn submodules(&self) -> Vec<&dyn Module> {
        let mut out: Vec<&dyn Module> = Vec::new();
        let mut queue: VecDeque<&dyn Module> = VecDeque::new();
        queue.push_back(self.as_dyn());
        while let Some(m) = queue.pop_front() {
            for child in direct_children(m) {
                out.push(child);
                queue.push_back(child);
            }
        }
        out
    }

    /// Variables keyed by object path (`dense_1/w`, `layers/0/kernel`): what checkpoints use.
    /// A variable reachable by several paths appears once, under the first.
    fn variables_by_path_in_order(&self) -> Vec<(String, Variable)> {
        let mut out = Vec::new();
        let mut attrs = self.attributes();
        attrs.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, attr) in attrs {
            walk(&name, &attr, &mut out);
        }
        out
    }

    /// This module as a trait object (implemented by the derive; `self` for sized types).
    fn as_dyn(&self) -> &dyn Module;

    /// The type's name (`Dense`, `SequentialModule`), as Keras shows it in summaries.
    fn class_name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }
}

fn walk(path: &str, attr: &Attr<'_>, out: &mut Vec<(String, Variable)>) {
    match attr {
        Attr::Variable(v) => out.push((path.to_string(), (*v).clone())),
        Attr::Module(m) => {
            for (p, v) in m.variables_by_path_in_order() {
                out.push((format!("{path}/{p}"), v));
            }
        }
        Attr::List(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(&format!("{path}/{i}"), item, out);
            }
        }
        Attr::Map(items) => {
            let mut items: Vec<&(String, Attr<'_>)> = items.iter().collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            for (k, item) in items {
                walk(&format!("{path}/{}", k.replace('/', ".S")), item, out);
            }
        }
    }
}

/// The direct child modules of `m`, attributes in sorted-name order, containers in order.
fn direct_children(m: &dyn Module) -> Vec<&dyn Module> {
    fn collect<'a>(attr: &Attr<'a>, out: &mut Vec<&'a dyn Module>) {
        match attr {
            Attr::Module(c) => out.push(*c),
            Attr::List(items) => items.iter().for_each(|i| collect(i, out)),
            Attr::Map(items) => {
                let mut items: Vec<&(String, Attr<'a>)> = items.iter().collect();
                items.sort_by(|a, b| a.0.cmp(&b.0));
                items.into_iter().for_each(|(_, i)| collect(i, out));
            }
            Attr::Variable(_) => {}
        }
    }
    let mut attrs = m.attributes();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, a) in &attrs {
        collect(a, &mut out);
    }
    out
}

/// Converts a field value into tracked attributes: implemented for variables, modules and
/// containers of them. The derive calls it for every field that is not skipped.
pub trait Track {
    /// The attribute for this value, or `None` if it holds nothing trackable.
    fn track(&self) -> Option<Attr<'_>>;
}

impl Track for Variable {
    fn track(&self) -> Option<Attr<'_>> {
        Some(Attr::Variable(self))
    }
}

impl<T: Track> Track for Vec<T> {
    fn track(&self) -> Option<Attr<'_>> {
        Some(Attr::List(self.iter().filter_map(Track::track).collect()))
    }
}

impl<T: Track, const N: usize> Track for [T; N] {
    fn track(&self) -> Option<Attr<'_>> {
        Some(Attr::List(self.iter().filter_map(Track::track).collect()))
    }
}

impl<T: Track> Track for Option<T> {
    fn track(&self) -> Option<Attr<'_>> {
        self.as_ref().and_then(Track::track)
    }
}

impl<T: Track + ?Sized> Track for Box<T> {
    fn track(&self) -> Option<Attr<'_>> {
        (**self).track()
    }
}

impl<T: Track> Track for std::collections::BTreeMap<String, T> {
    fn track(&self) -> Option<Attr<'_>> {
        Some(Attr::Map(
            self.iter()
                .filter_map(|(k, v)| v.track().map(|a| (k.clone(), a)))
                .collect(),
        ))
    }
}

impl Track for dyn Module {
    fn track(&self) -> Option<Attr<'_>> {
        Some(Attr::Module(self))
    }
}

/// Converts a Rust type name (`MyCoolModule`) into TensorFlow's default module name
/// (`my_cool_module`).
pub fn snake_case(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A valid module name: a non-empty identifier (letters, digits, `_`, not starting with a
/// digit), as TensorFlow requires.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

impl<T: Track> Track for std::cell::OnceCell<T> {
    fn track(&self) -> Option<Attr<'_>> {
        self.get().and_then(Track::track)
    }
}

/// Implements [`Trackable`](ferroflow_tensor_core::Trackable) for a hand-written
/// [`Module`] type (the derive does it for derived ones): its variables by object path.
#[macro_export]
macro_rules! trackable_module {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::__private::Trackable for $t {
            fn variables_by_path(&self) -> ::std::vec::Vec<(::std::string::String, $crate::Variable)> {
                $crate::Module::variables_by_path_in_order(self)
            }
        }
    )*};
}
