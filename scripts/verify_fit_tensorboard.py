#!/usr/bin/env python3
"""Check the TensorBoard runs `cargo run --example digits -- LOGDIR` writes through the
TensorBoard callback, with TensorBoard's own event loaders (no TensorFlow needed).

usage: verify_fit_tensorboard.py LOGDIR
For each model (mlp, cnn): LOGDIR/<model>/train holds the train step's graph and the
epoch_loss, epoch_accuracy and epoch_learning_rate curves; LOGDIR/<model>/validation holds
epoch_loss and epoch_accuracy; every curve has one point per epoch (steps 0, 1, ...).
"""
import glob
import os
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.util import tensor_util


def load(run_dir):
    files = sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*")))
    if len(files) != 1:
        return None, "expected one event file in %s, found %d" % (run_dir, len(files))
    acc = ea.EventAccumulator(files[0], size_guidance={ea.TENSORS: 0, ea.SCALARS: 0})
    acc.Reload()
    return acc, files[0]


def main(logdir):
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("PASS " if cond else "FAIL ") + msg)
        ok = ok and bool(cond)

    for model in ["mlp", "cnn"]:
        train, path = load(os.path.join(logdir, model, "train"))
        check(train is not None, "%s/train: %s" % (model, path))
        val, vpath = load(os.path.join(logdir, model, "validation"))
        check(val is not None, "%s/validation: %s" % (model, vpath))
        if train is None or val is None:
            continue
        tags = train.Tags()
        check(tags["graph"] is True, "%s: the train step's graph is there" % model)
        ops = {n.op for n in train.Graph().node}
        check("MatMul" in ops, "%s: the graph has MatMul (%d op types)" % (model, len(ops)))
        for tag in ["epoch_loss", "epoch_accuracy", "epoch_learning_rate"]:
            check(tag in tags["tensors"], "%s/train has %s" % (model, tag))
        losses = train.Tensors("epoch_loss")
        steps = [p.step for p in losses]
        check(steps == list(range(len(steps))) and len(steps) > 1, "%s: one point per epoch (%d)" % (model, len(steps)))
        values = [float(tensor_util.make_ndarray(p.tensor_proto)) for p in losses]
        check(values[-1] < values[0], "%s: the training loss falls (%.4f -> %.4f)" % (model, values[0], values[-1]))
        acc = [float(tensor_util.make_ndarray(p.tensor_proto)) for p in train.Tensors("epoch_accuracy")]
        check(all(0.0 <= a <= 1.0 for a in acc) and acc[-1] > 0.9, "%s: accuracy in [0, 1], last %.4f" % (model, acc[-1]))
        vtags = val.Tags()["tensors"]
        for tag in ["epoch_loss", "epoch_accuracy"]:
            check(tag in vtags, "%s/validation has %s" % (model, tag))
        check(not any(t.startswith("epoch_val_") for t in vtags), "%s: validation tags drop the val_ prefix" % model)
        pacc = pea.EventAccumulator(os.path.join(logdir, model, "train"))
        pacc.Reload()
        check("epoch_loss" in pacc.PluginTagToContent("scalars"), "%s: the Scalars dashboard lists epoch_loss" % model)
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
