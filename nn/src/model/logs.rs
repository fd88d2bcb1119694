//! [`Logs`] (the values callbacks receive) and [`History`] (what `fit` returns).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Named values at a point of training, as Keras' `logs` dict: `loss`, the compiled metrics,
/// their `val_` counterparts at epoch end, and whatever callbacks add (`learning_rate`).
/// Keys come sorted, as Keras sorts them before callbacks see them; keys added later go at
/// the end.
///
/// ```
/// use ferroflow_nn::Logs;
/// let mut logs = Logs::from_pairs([("loss", 0.5), ("accuracy", 0.75)]);
/// logs.insert("learning_rate", 0.1);
/// assert_eq!(logs.keys().collect::<Vec<_>>(), ["accuracy", "loss", "learning_rate"]);
/// assert_eq!(logs.get("loss"), Some(0.5));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    entries: Vec<(String, f64)>,
}

impl Logs {
    /// No values.
    pub fn new() -> Self {
        Logs::default()
    }

    /// Logs of these pairs, sorted by key.
    pub fn from_pairs<K: Into<String>>(pairs: impl IntoIterator<Item = (K, f64)>) -> Self {
        let mut entries: Vec<(String, f64)> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        Logs { entries }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` (replacing its value in place, or appending it).
    pub fn insert(&mut self, key: impl Into<String>, value: f64) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    /// The `(key, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// These logs with every key prefixed (`val_`).
    pub fn prefixed(&self, prefix: &str) -> Logs {
        Logs {
            entries: self.entries.iter().map(|(k, v)| (format!("{prefix}{k}"), *v)).collect(),
        }
    }

    /// Adds every value of `other` (sorted merge, as Keras merges `val_` logs into the epoch's).
    pub fn merge(&mut self, other: &Logs) {
        for (k, v) in other.iter() {
            self.insert(k, v);
        }
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// Overwrites values in place when the keys are the same as before (the per-batch fast
    /// path), else replaces the whole set.
    pub(crate) fn set_sorted(&mut self, names: &[String], values: &[f64]) {
        let same = self.entries.len() == names.len() && self.entries.iter().zip(names).all(|(e, n)| &e.0 == n);
        if same {
            for (e, v) in self.entries.iter_mut().zip(values) {
                e.1 = *v;
            }
        } else {
            *self = Logs::from_pairs(names.iter().cloned().zip(values.iter().copied()));
        }
    }
}

/// The per-epoch record of a `fit` (`keras.callbacks.History`): every logged value by name,
/// one entry per epoch that logged it (validation values only for epochs that validated),
/// and the epochs that ran. Serialises with serde (`serde_json::to_string(&history)`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs that ran (0-based, as Keras records them).
    pub epoch: Vec<usize>,
    /// Values by name, in epoch order.
    pub history: BTreeMap<String, Vec<f64>>,
    /// The fit's parameters: epochs, steps per epoch, verbosity.
    pub params: FitParams,
}

impl History {
    /// The values logged under `key`, one per epoch that logged it.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(Vec::as_slice)
    }

    /// Records one epoch's logs.
    pub(crate) fn record(&mut self, epoch: usize, logs: &Logs) {
        self.epoch.push(epoch);
        for (k, v) in logs.iter() {
            self.history.entry(k.to_string()).or_default().push(v);
        }
    }
}

/// What callbacks learn about a run before it starts (`callback.params`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FitParams {
    /// The epoch `fit` stops before (its `epochs` argument).
    pub epochs: usize,
    /// Batches per epoch, when known.
    pub steps: Option<usize>,
    /// The verbosity, resolved (0, 1 or 2).
    pub verbose: u8,
}
