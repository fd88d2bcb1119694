//! Deferred restoration (`tf.train.Checkpoint`'s behaviour, C04 in
//! `spec/tf-function-semantics.md`): values loaded before a lazily built layer has created its
//! variables wait here and are assigned the moment those variables exist.

use ferroflow_checkpoint::CheckpointReader;
use ferroflow_tensor_core::{Error, Result, Tensor, Variable};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Values waiting for their variables, by object path.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    values: RefCell<BTreeMap<String, Tensor>>,
    source: RefCell<Option<PathBuf>>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.values.borrow().is_empty()
    }

    /// Loads `path` into `vars` (object path → variable). When the model is built the file
    /// must match exactly and is assigned at once; otherwise every stored value is read now
    /// and the ones whose variables exist are assigned, the rest wait.
    pub fn load(&self, path: &Path, vars: &[(String, Variable)], built: bool) -> Result<()> {
        let reader = CheckpointReader::open(path).map_err(Error::from)?;
        let stored: Vec<String> = reader.list().into_iter().map(|i| i.name).collect();
        if built {
            let by_path: BTreeMap<&str, &Variable> = vars.iter().map(|(p, v)| (p.as_str(), v)).collect();
            let missing: Vec<&str> = vars
                .iter()
                .map(|(p, _)| p.as_str())
                .filter(|p| !stored.iter().any(|s| s == p))
                .collect();
            let extra: Vec<&str> = stored
                .iter()
                .map(String::as_str)
                .filter(|s| !by_path.contains_key(s))
                .collect();
            if !missing.is_empty() || !extra.is_empty() {
                return Err(Error::invalid(
                    "load_weights",
                    format!(
                        "{} does not match the model: {}{}",
                        path.display(),
                        if missing.is_empty() {
                            String::new()
                        } else {
                            format!("no stored value for {}", missing.join(", "))
                        },
                        if extra.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "{}stored values without a variable: {}",
                                if missing.is_empty() { "" } else { "; " },
                                extra.join(", ")
                            )
                        }
                    ),
                ));
            }
        }
        let mut values = BTreeMap::new();
        for name in &stored {
            values.insert(name.clone(), reader.load(name).map_err(Error::from)?);
        }
        *self.values.borrow_mut() = values;
        *self.source.borrow_mut() = Some(path.to_path_buf());
        self.apply(vars)
    }

    /// Assigns every waiting value whose variable now exists. All of them are checked first;
    /// a dtype or shape mismatch assigns nothing.
    pub fn apply(&self, vars: &[(String, Variable)]) -> Result<()> {
        let mut values = self.values.borrow_mut();
        let ready: Vec<(&Variable, Tensor)> = vars
            .iter()
            .filter_map(|(p, v)| values.get(p).map(|t| (v, t.clone())))
            .collect();
        let wrong: Vec<String> = ready
            .iter()
            .filter(|(v, t)| v.dtype() != t.dtype() || v.shape().dims() != t.dims())
            .map(|(v, t)| {
                format!(
                    "{}: stored {} {:?}, variable is {} {:?}",
                    v.name(),
                    t.dtype(),
                    t.dims(),
                    v.dtype(),
                    v.shape().dims()
                )
            })
            .collect();
        if !wrong.is_empty() {
            let source = self.source.borrow().clone().unwrap_or_default();
            values.clear();
            return Err(Error::invalid(
                "load_weights",
                format!("{} does not fit the model: {}", source.display(), wrong.join("; ")),
            ));
        }
        for (v, t) in ready {
            v.assign(&t)?;
        }
        for (p, _) in vars {
            values.remove(p);
        }
        Ok(())
    }

    /// Paths still waiting.
    pub fn waiting(&self) -> Vec<String> {
        self.values.borrow().keys().cloned().collect()
    }
}
