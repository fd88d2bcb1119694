//! [`CsvLogger`]: one CSV row per epoch.

use super::Callback;
use crate::model::{Logs, Model};
use ferroflow_tensor_core::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// `keras.callbacks.CSVLogger`: writes `epoch` and every logged value per epoch to a CSV file
/// (Keras' layout: sorted columns fixed by the first epoch, `val_` columns even without
/// validation, `NA` for missing values, `\r\n` line ends). With `append`, an existing file
/// gets more rows and no second header.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    keys: Option<Vec<String>>,
}

impl CsvLogger {
    /// Logs to `path`, replacing it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger {
            path: path.into(),
            separator: ',',
            append: false,
            file: None,
            keys: None,
        }
    }

    /// The field separator (`,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Appends to an existing file.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::invalid("CSVLogger", format!("{}: {e}", self.path.display()))
    }
}

impl Callback for CsvLogger {
    fn chief_only(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, _: &Model, _: &Logs) -> Result<()> {
        let has_content = self.append
            && std::fs::read_to_string(&self.path)
                .map(|s| s.lines().next().is_some_and(|l| !l.is_empty()))
                .unwrap_or(false);
        let file = if self.append {
            OpenOptions::new().create(true).append(true).open(&self.path)
        } else {
            File::create(&self.path)
        }
        .map_err(|e| self.io(e))?;
        self.file = Some(file);
        // Appending to a file with a header: its columns are the header's.
        self.keys = if has_content {
            std::fs::read_to_string(&self.path).ok().and_then(|s| {
                s.lines()
                    .next()
                    .map(|h| h.split(self.separator).skip(1).map(str::to_string).collect())
            })
        } else {
            None
        };
        Ok(())
    }

    fn on_epoch_end(&mut self, _: &Model, epoch: usize, logs: &mut Logs) -> Result<()> {
        let sep = self.separator.to_string();
        let mut header = None;
        if self.keys.is_none() {
            let mut keys: Vec<String> = logs.keys().map(str::to_string).collect();
            keys.sort();
            if !keys.iter().any(|k| k.starts_with("val_")) {
                let vals: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(vals);
            }
            header = Some(format!("epoch{sep}{}\r\n", keys.join(&sep)));
            self.keys = Some(keys);
        }
        let keys = self.keys.as_deref().unwrap_or_default();
        let row: Vec<String> = keys
            .iter()
            .map(|k| logs.get(k).map_or_else(|| "NA".to_string(), |v| format!("{v:?}")))
            .collect();
        let line = format!("{epoch}{sep}{}\r\n", row.join(&sep));
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::invalid("CSVLogger", "the file is not open"))?;
        let written = header
            .map_or(Ok(()), |h| file.write_all(h.as_bytes()))
            .and_then(|_| file.write_all(line.as_bytes()))
            .and_then(|_| file.flush());
        written.map_err(|e| self.io(e))
    }

    fn on_train_end(&mut self, _: &Model, _: &Logs) -> Result<()> {
        self.file = None;
        Ok(())
    }

    fn wants_batch_logs(&self) -> bool {
        false
    }
}
