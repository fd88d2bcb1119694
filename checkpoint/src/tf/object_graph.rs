//! The `TrackableObjectGraph` a writer stores under [`super::OBJECT_GRAPH_KEY`] (spec §5).
//!
//! TensorFlow restores by walking this graph, not by key names, so it must describe every
//! variable: node 0 is the root, each object path segment is an edge (`ObjectReference`), and
//! each variable node carries one `SerializedTensor` naming its table key.

use super::checkpoint_key;
use super::writer::BundleVariable;
use crate::error::{CheckpointError, Result};
use ferroflow_wire::{put_bytes_field, put_varint_field};
use std::collections::HashMap;

/// A node of the path trie.
#[derive(Default)]
struct Node<'a> {
    /// (local name, trie index), in order of first appearance.
    children: Vec<(&'a str, usize)>,
    /// Index into the variables when this node is one.
    variable: Option<usize>,
}

/// The serialized graph of `variables`, after checking their paths form a tree of variables.
pub(crate) fn encode_object_graph(variables: &[BundleVariable]) -> Result<Vec<u8>> {
    let trie = build_trie(variables)?;

    // Ids are assigned breadth-first, in the order nodes are discovered, as TF does. With no
    // aliases every node is discovered once, so the BFS order *is* the id order.
    let mut order = vec![0usize];
    let mut next = 0;
    while let Some(&node) = order.get(next) {
        order.extend(trie[node].children.iter().map(|&(_, child)| child));
        next += 1;
    }
    let mut id_of = vec![0usize; trie.len()];
    for (id, &node) in order.iter().enumerate() {
        id_of[node] = id;
    }

    let mut graph = Vec::new();
    for &node in &order {
        let n = &trie[node];
        let mut msg = Vec::new();
        for &(name, child) in &n.children {
            let mut reference = Vec::new();
            put_varint_field(&mut reference, 1, id_of[child] as u64); // never 0: the root has no parent
            put_bytes_field(&mut reference, 2, name.as_bytes());
            put_bytes_field(&mut msg, 1, &reference);
        }
        if let Some(v) = n.variable {
            let var = &variables[v];
            let segments: Vec<&str> = var.path.iter().map(String::as_str).collect();
            let mut attr = Vec::new();
            put_bytes_field(&mut attr, 1, b"VARIABLE_VALUE");
            if !var.full_name.is_empty() {
                put_bytes_field(&mut attr, 2, var.full_name.as_bytes());
            }
            put_bytes_field(&mut attr, 3, checkpoint_key(&segments).as_bytes());
            put_bytes_field(&mut msg, 2, &attr);
        }
        // has_checkpoint_values (a BoolValue), written on every node by TF 2.21. Every leaf of
        // the trie is a variable, so a node's subtree holds values iff it is one or has children.
        let has_values = n.variable.is_some() || !n.children.is_empty();
        put_bytes_field(&mut msg, 5, if has_values { &[0x08, 0x01] } else { &[] });
        put_bytes_field(&mut graph, 1, &msg);
    }
    Ok(graph)
}

/// The trie of object paths (index 0 = root), refusing paths that cannot form a checkpoint.
fn build_trie<'a>(variables: &'a [BundleVariable]) -> Result<Vec<Node<'a>>> {
    let mut trie = vec![Node::default()];
    let mut child_index: HashMap<(usize, &str), usize> = HashMap::new();
    for (v, var) in variables.iter().enumerate() {
        let shown = var.path.join("/");
        if var.path.is_empty() {
            return Err(CheckpointError::Invalid(format!(
                "variable {v} has an empty object path"
            )));
        }
        if var.path.iter().any(String::is_empty) {
            return Err(CheckpointError::Invalid(format!(
                "object path '{shown}' has an empty segment"
            )));
        }
        let mut node = 0;
        for (depth, segment) in var.path.iter().enumerate() {
            if trie[node].variable.is_some() {
                return Err(CheckpointError::Invalid(format!(
                    "'{}' is a variable and cannot also contain '{shown}'",
                    var.path[..depth].join("/")
                )));
            }
            node = match child_index.get(&(node, segment.as_str())) {
                Some(&child) => child,
                None => {
                    let child = trie.len();
                    trie.push(Node::default());
                    trie[node].children.push((segment, child));
                    child_index.insert((node, segment), child);
                    child
                }
            };
        }
        if trie[node].variable.is_some() {
            return Err(CheckpointError::Invalid(format!(
                "two variables have the object path '{shown}'"
            )));
        }
        if !trie[node].children.is_empty() {
            return Err(CheckpointError::Invalid(format!(
                "'{shown}' is a variable and also contains other variables"
            )));
        }
        trie[node].variable = Some(v);
    }
    Ok(trie)
}
