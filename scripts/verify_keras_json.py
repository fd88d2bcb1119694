"""Reads ferroflow's Keras model file with real Keras 3 (JAX backend) and writes Keras' own.

Usage: python scripts/verify_keras_json.py DIR, after `cargo run --example keras_interop --
write DIR`. Checks that `keras.models.model_from_json` accepts ferroflow's `model.json`
(layer names unique, classes and settings as written), that with ferroflow's weights Keras
predicts what ferroflow predicted, and writes Keras' JSON of the model (`keras.json`) and its
predictions (`keras_predictions.json`) for `keras_interop read DIR`.
"""

import json
import os
import sys

# JAX is the backend the CI installs; an inherited setting (tensorflow) would not import.
os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402


def tensor(path):
    with open(path) as f:
        t = json.load(f)
    return np.asarray(t["values"], dtype=np.float32).reshape(t["shape"])


def main(directory):
    with open(os.path.join(directory, "model.json")) as f:
        text = f.read()
    ours = json.loads(text)
    # Keras' Sequential.add refuses a layer whose name is taken, so loading at all shows the
    # names are unique; the checks below show it read what was written.
    model = keras.models.model_from_json(text)
    names = [layer.name for layer in model.layers]
    written = [entry["config"]["name"] for entry in ours["config"]["layers"]]
    assert names == written, (names, written)
    assert len(set(names)) == len(names), names
    classes = [type(layer).__name__ for layer in model.layers]
    assert classes == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Activation"], classes
    assert model.layers[2].rate == 0.5 and model.layers[4].rate == 0.25
    assert model.layers[1].activation.__name__ == "relu"
    # The first Dense was frozen: Keras trains only the second.
    assert [layer.trainable for layer in model.layers] == [True, False, True, True, True, True]
    assert len(model.trainable_weights) == 2, model.trainable_weights
    assert model.layers[5].activation.__name__ == "softmax"
    # The compile config is applied as Keras applies it (the optimizer is not recorded, so
    # Keras falls back to its default).
    assert ours["compile_config"]["loss"] == "sparse_categorical_crossentropy", ours["compile_config"]
    assert model.compiled and model.loss == "sparse_categorical_crossentropy", model.loss

    with open(os.path.join(directory, "weights.json")) as f:
        weights = [np.asarray(w["values"], dtype=np.float32).reshape(w["shape"]) for w in json.load(f)]
    model.set_weights(weights)
    x = tensor(os.path.join(directory, "x.json"))
    predicted = np.asarray(model.predict(x, verbose=0))
    expected = tensor(os.path.join(directory, "predictions.json"))
    assert predicted.shape == expected.shape, (predicted.shape, expected.shape)
    worst = float(np.max(np.abs(predicted - expected)))
    assert worst <= 1e-5, f"Keras and ferroflow predictions differ by up to {worst:g}"

    with open(os.path.join(directory, "keras.json"), "w") as f:
        f.write(model.to_json())
    with open(os.path.join(directory, "keras_predictions.json"), "w") as f:
        json.dump({"shape": list(predicted.shape), "values": predicted.astype(float).ravel().tolist()}, f)
    print(f"keras {keras.__version__} read ferroflow's model file: layers {names}, "
          f"predictions agree to {worst:.1e}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: verify_keras_json.py DIR")
    main(sys.argv[1])
