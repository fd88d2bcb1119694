#!/usr/bin/env python3
"""Reads the checkpoints `cargo run --example checkpoint_interop -- DIR` wrote, with other
tools, and checks every value against DIR/expected.json.

    python3 scripts/verify_checkpoints.py DIR

* DIR/model.safetensors: Python's `safetensors` (numpy loader and safe_open), values exact,
  dtype and shape as written, metadata with format_version.
* DIR/model (TensorFlow checkpoint): the standard-library TensorFlow bundle reader
  `parse_tf_ckpt.py` (verified against TensorFlow 2.21 in spec/tf-checkpoint-format.md):
  every block, tensor and string CRC, keys re-derived from the object graph.
* When TensorFlow is importable (not in CI, where the package is too large to install each
  run): tf.train.list_variables / load_checkpoint, and
  tf.train.Checkpoint(...).read(DIR/model).assert_consumed() into tf.Modules rebuilt from the
  object paths, model and optimizer.
Exits non-zero on the first difference.
"""
import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parse_tf_ckpt  # noqa: E402

SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def check(cond, what):
    if not cond:
        print("FAIL", what)
        sys.exit(1)
    print("PASS", what)


def main():
    d = sys.argv[1]
    expected = json.load(open(os.path.join(d, "expected.json")))

    st_path = os.path.join(d, "model.safetensors")
    tensors = load_file(st_path)
    check(sorted(tensors) == sorted(expected), "safetensors keys %s" % sorted(tensors))
    for name, e in expected.items():
        a = tensors[name]
        check(a.dtype == np.dtype(e["dtype"]) and list(a.shape) == e["shape"]
              and np.array_equal(a.reshape(-1).astype(np.float64), np.array(e["values"], dtype=np.float64)),
              "safetensors %s %s %s" % (name, a.dtype, list(a.shape)))
    with safe_open(st_path, framework="np") as f:
        meta = f.metadata()
    check(meta is not None and meta.get("format_version") == "1", "safetensors metadata %s" % meta)

    prefix = os.path.join(d, "model")
    _, tf_tensors, _ = parse_tf_ckpt.read_bundle(prefix)
    graph = parse_tf_ckpt.parse_object_graph(tf_tensors["_CHECKPOINTABLE_OBJECT_GRAPH"]["values"][0])
    paths = parse_tf_ckpt.object_paths(graph)
    keys = {a["checkpoint_key"] for node in graph for a in node["attributes"]}
    for node_id, node in enumerate(graph):
        for a in node["attributes"]:
            derived = "/".join(parse_tf_ckpt.escape_local_name(p) for p in paths[node_id]) + SUFFIX
            check(a["checkpoint_key"] == derived, "object graph path of %s" % a["checkpoint_key"])
    check(keys == {k + SUFFIX for k in expected}, "TensorFlow checkpoint keys")
    for name, e in expected.items():
        t = tf_tensors[name + SUFFIX]
        check(t["dtype_name"] == e["dtype"] and list(t["shape"]) == e["shape"]
              and np.array_equal(np.array(t["values"], dtype=np.float64), np.array(e["values"], dtype=np.float64)),
              "TensorFlow checkpoint %s" % name)

    try:
        import tensorflow as tf
    except ImportError:
        print("SKIP TensorFlow itself is not installed")
    else:
        listed = dict(tf.train.list_variables(prefix))
        reader = tf.train.load_checkpoint(prefix)
        for name, e in expected.items():
            v = reader.get_tensor(name + SUFFIX)
            check(list(listed[name + SUFFIX]) == e["shape"] and np.array_equal(
                np.asarray(v, dtype=np.float64).reshape(-1), np.array(e["values"], dtype=np.float64)),
                "tf.train.load_checkpoint %s" % name)
        # Rebuild the object tree from the paths (tf.Modules holding variables) and restore
        # into it: every stored value must find its variable and vice versa.
        roots = {}
        leaves = {}
        for name, e in expected.items():
            parts = name.split("/")
            obj = roots.setdefault(parts[0], tf.Module())
            for p in parts[1:-1]:
                if not hasattr(obj, p):
                    setattr(obj, p, tf.Module())
                obj = getattr(obj, p)
            var = tf.Variable(np.zeros(e["shape"], dtype=e["dtype"]), name=parts[-1])
            setattr(obj, parts[-1], var)
            leaves[name] = var
        tf.train.Checkpoint(**roots).read(prefix).assert_consumed()
        check(all(np.array_equal(np.asarray(v.numpy(), dtype=np.float64).reshape(-1), np.array(expected[n]["values"]))
                  for n, v in leaves.items()),
              "tf.train.Checkpoint(%s).read().assert_consumed() restored every value" % ", ".join(sorted(roots)))
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    main()
