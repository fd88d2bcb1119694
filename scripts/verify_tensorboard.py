#!/usr/bin/env python3
"""Check a log directory written by `cargo run --example tensorboard -- LOGDIR` with
TensorBoard's own event loaders (no TensorFlow needed).

usage: verify_tensorboard.py LOGDIR
Exits non-zero, with a line per failed check, if the graph or the scalars are not what the
example wrote.
"""
import glob
import os
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util


def main(logdir):
    files = sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*")))
    if not files:
        print("FAIL no event file in", logdir)
        return 1
    path = files[-1]
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("PASS " if cond else "FAIL ") + msg)
        ok = ok and bool(cond)

    acc = ea.EventAccumulator(path, size_guidance={ea.TENSORS: 0, ea.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()
    check(acc.file_version == 2.0, "file_version == 2.0")
    check(tags["graph"] is True, "the file holds a graph")
    g = acc.Graph()
    nodes = [(n.name, n.op) for n in g.node]
    want = [("args_0", "Placeholder"), ("args_1", "Placeholder"), ("args_2", "Placeholder"),
            ("MatMul", "MatMul"), ("AddV2", "AddV2"), ("Identity", "Identity")]
    check(nodes == want, "graph nodes %s" % nodes)
    by_name = {n.name: n for n in g.node}
    check(list(by_name["AddV2"].input) == ["MatMul", "args_2"], "AddV2 reads MatMul and b")
    check(list(by_name["MatMul"].input) == ["args_0", "args_1"], "MatMul reads x and y")
    shape = [d.size for d in by_name["MatMul"].attr["_output_shapes"].list.shape[0].dim]
    check(shape == [2, 2], "MatMul output shape [2, 2] (got %s)" % shape)

    check(tags["tensors"] == ["loss"], "a 'loss' curve (tensor-style scalars)")
    points = acc.Tensors("loss")
    steps = [p.step for p in points]
    values = [float(tensor_util.make_ndarray(p.tensor_proto)) for p in points]
    check(steps == list(range(20)), "20 steps, 0..19")
    check(all(b < a for a, b in zip(values, values[1:])), "the loss decreases: %s" % values[:3])
    check(abs(values[0] - 2.5) < 1e-6, "first loss 2.5 (mean of 1^2 and 2^2), got %r" % values[0])

    pacc = pea.EventAccumulator(path)
    pacc.Reload()
    check(list(pacc.PluginTagToContent("scalars")) == ["loss"], "the Scalars dashboard lists 'loss'")
    check("__run_graph__" in pacc.PluginTagToContent("graphs"), "the Graphs dashboard has the run graph")
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
