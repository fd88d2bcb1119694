//! TensorFlow tensor bundles (being written).
