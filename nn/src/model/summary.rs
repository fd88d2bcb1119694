//! `model.summary()`: Keras 3's table of layers, output shapes and parameter counts.

use super::Model;
use crate::{Mode, Module};
use ferroflow_tensor_core::{Result, Tensor, Variable};

/// Python's `round` (halves to even), as rich uses to share out column widths.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && (r as i64) % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// The three cell widths (padding included) of a table `line_length` wide: Keras' column
/// positions (0.45, 0.80, 1.0), shrunk to fit the borders as rich does.
fn cell_widths(line_length: usize) -> [usize; 3] {
    let l = line_length as f64;
    let edges = [0usize, (0.45 * l) as usize, (0.80 * l) as usize, line_length];
    let mut cells = [0usize; 3];
    for i in 0..3 {
        cells[i] = edges[i + 1] - edges[i] + 2;
    }
    let available = line_length.saturating_sub(4);
    let mut excess = cells.iter().sum::<usize>().saturating_sub(available) as i64;
    let mut left = 3i64;
    for c in &mut cells {
        let d = round_half_even(excess as f64 / left as f64).clamp(0, *c as i64);
        *c -= d as usize;
        excess -= d;
        left -= 1;
    }
    cells
}

/// `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras' `readable_memory_size`: `198.79 KB`.
fn readable_size(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut size = bytes;
    for unit in units {
        if size / 1024.0 < 1.0 || unit == "PB" {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    unreachable!("the loop returns at PB")
}

/// Splits `text` into lines of at most `width` characters at spaces (long words cut with `…`).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let word: String = if word.chars().count() > width {
            word.chars()
                .take(width.saturating_sub(1))
                .chain(std::iter::once('…'))
                .collect()
        } else {
            word.to_string()
        };
        if line.is_empty() {
            line = word;
        } else if line.chars().count() + 1 + word.chars().count() <= width {
            line.push(' ');
            line.push_str(&word);
        } else {
            lines.push(std::mem::take(&mut line));
            line = word;
        }
    }
    lines.push(line);
    lines
}

/// One row of the table.
struct Row {
    name: String,
    shape: String,
    params: String,
}

fn params_of(vars: &[Variable]) -> (usize, f64) {
    let count = vars.iter().map(|v| v.shape().num_elements()).sum();
    // A fold from +0.0: an empty float sum is -0.0, which would print as "-0.00 B".
    let bytes = vars.iter().fold(0.0, |acc, v| {
        acc + (v.shape().num_elements() * v.dtype().size_of()) as f64
    });
    (count, bytes)
}

/// `(None, 64)`: the batch dimension unknown.
fn shape_text(t: &Tensor) -> String {
    let dims: Vec<String> = std::iter::once("None".to_string())
        .chain(t.dims().iter().skip(1).map(|d| d.to_string()))
        .collect();
    if dims.len() == 1 {
        "(None,)".into()
    } else {
        format!("({})", dims.join(", "))
    }
}

impl Model {
    /// The summary table Keras prints (`model.summary()`), 76 columns wide as Keras prints
    /// it to a pipe; see [`Model::summary_with_width`].
    ///
    /// ```
    /// use ferroflow_nn::{Dense, Model, Sequential};
    /// let mut layers = Sequential::new().with_name("sequential");
    /// layers.add(Dense::new(64).with_name("dense").with_input_dim(784)?);
    /// layers.add(Dense::new(10).with_name("dense_1"));
    /// let model = Model::new(layers);
    /// model.predict_on_batch(&ferroflow_tensor_core::Tensor::zeros(&[1, 784], ferroflow_tensor_core::DType::F32)?)?;
    /// let text = model.summary()?;
    /// assert!(text.contains("│ dense (Dense)                   │ (None, 64)             │        50,240 │"));
    /// assert!(text.contains(" Total params: 50,890 (198.79 KB)"));
    /// # Ok::<(), ferroflow_tensor_core::Error>(())
    /// ```
    pub fn summary(&self) -> Result<String> {
        self.summary_with_width(76)
    }

    /// The summary table `line_length` columns wide (Keras uses 88 on a wide terminal).
    pub fn summary_with_width(&self, line_length: usize) -> Result<String> {
        let rows = self.summary_rows()?;
        let cells = cell_widths(line_length.max(20));
        let inner: Vec<usize> = cells.iter().map(|c| c.saturating_sub(2)).collect();
        let rule = |l: char, m: char, r: char, fill: char| -> String {
            let parts: Vec<String> = cells.iter().map(|&c| fill.to_string().repeat(c)).collect();
            format!("{l}{}{r}", parts.join(&m.to_string()))
        };
        let line = |sep: char, cols: [&str; 3]| -> String {
            let mut out = String::from(sep);
            for (i, text) in cols.iter().enumerate() {
                let w = inner[i];
                let t: String = text.chars().take(w).collect();
                if i == 2 {
                    out.push_str(&format!(" {t:>w$} {sep}"));
                } else {
                    out.push_str(&format!(" {t:<w$} {sep}"));
                }
            }
            out
        };
        let mut out = format!("Model: \"{}\"\n", self.name());
        out.push_str(&rule('┏', '┳', '┓', '━'));
        out.push('\n');
        out.push_str(&line('┃', ["Layer (type)", "Output Shape", "Param #"]));
        out.push('\n');
        out.push_str(&rule('┡', '╇', '┩', '━'));
        out.push('\n');
        for (i, row) in rows.iter().enumerate() {
            let name_lines = wrap(&row.name, inner[0]);
            for (j, name) in name_lines.iter().enumerate() {
                let (shape, params) = if j == 0 {
                    (row.shape.as_str(), row.params.as_str())
                } else {
                    ("", "")
                };
                out.push_str(&line('│', [name, shape, params]));
                out.push('\n');
            }
            if i + 1 < rows.len() {
                out.push_str(&rule('├', '┼', '┤', '─'));
                out.push('\n');
            }
        }
        out.push_str(&rule('└', '┴', '┘', '─'));
        out.push('\n');
        let vars = self.variables();
        let trainable = self.trainable_variables();
        let trained: std::collections::HashSet<u64> = trainable.iter().map(Variable::id).collect();
        let frozen: Vec<Variable> = vars.iter().filter(|v| !trained.contains(&v.id())).cloned().collect();
        let (t_count, t_bytes) = params_of(&trainable);
        let (n_count, n_bytes) = params_of(&frozen);
        let optimizer = match self.optimizer() {
            Some(opt) if opt.iterations()? > 0 => {
                let mut opt_vars: Vec<Variable> = ferroflow_tensor_core::Trackable::variables_by_path(opt.state())
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect();
                opt_vars.extend(opt.state().rate_variables());
                Some(params_of(&opt_vars))
            }
            _ => None,
        };
        let (o_count, o_bytes) = optimizer.unwrap_or((0, 0.0));
        out.push_str(&format!(
            " Total params: {} ({})\n",
            thousands(t_count + n_count + o_count),
            readable_size(t_bytes + n_bytes + o_bytes)
        ));
        out.push_str(&format!(
            " Trainable params: {} ({})\n",
            thousands(t_count),
            readable_size(t_bytes)
        ));
        out.push_str(&format!(
            " Non-trainable params: {} ({})\n",
            thousands(n_count),
            readable_size(n_bytes)
        ));
        if let Some((c, b)) = optimizer {
            out.push_str(&format!(" Optimizer params: {} ({})\n", thousands(c), readable_size(b)));
        }
        Ok(out)
    }

    /// The rows: the layers of a container (with output shapes once the model is built),
    /// else the module's direct children.
    fn summary_rows(&self) -> Result<Vec<Row>> {
        let built = self.input_spec();
        let mut rows = Vec::new();
        if let Some(layers) = self.layer.sublayers() {
            let mut x = match &built {
                Some(spec) => {
                    let mut dims = spec.shape.dims().to_vec();
                    if let Some(d) = dims.first_mut() {
                        *d = 1;
                    }
                    Some(Tensor::zeros(&dims, spec.dtype)?)
                }
                None => None,
            };
            let names = crate::layers::unique_within(layers.iter().map(|l| l.name()));
            for (l, name) in layers.iter().zip(names) {
                let shape = match x.take() {
                    Some(input) => {
                        let out = l.call(&input, Mode::Inference)?;
                        let text = shape_text(&out);
                        x = Some(out);
                        text
                    }
                    None => "?".to_string(),
                };
                let mut row = self.row_for(l.as_dyn(), shape);
                row.name = format!("{name} ({})", l.class_name());
                rows.push(row);
            }
        } else {
            // A custom module's parts are shown by attribute name (two parts of one type
            // share their module name).
            for (name, child) in direct_children(self.layer.as_dyn()) {
                let mut row = self.row_for(child, "?".into());
                row.name = format!("{name} ({})", child.class_name());
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn row_for(&self, m: &dyn Module, shape: String) -> Row {
        let vars = m.variables();
        let (count, _) = params_of(&vars);
        let params = if vars.is_empty() && !self.is_built() {
            "0 (unbuilt)".to_string()
        } else {
            thousands(count)
        };
        Row {
            name: format!("{} ({})", m.name(), m.class_name()),
            shape,
            params,
        }
    }
}

/// The modules directly below `m` with their attribute paths (`dense_1`, `layers/0`), in
/// attribute order.
fn direct_children(m: &dyn Module) -> Vec<(String, &dyn Module)> {
    fn collect<'a>(path: String, attr: &crate::Attr<'a>, out: &mut Vec<(String, &'a dyn Module)>) {
        match attr {
            crate::Attr::Module(c) => out.push((path, *c)),
            crate::Attr::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    collect(format!("{path}/{i}"), item, out);
                }
            }
            crate::Attr::Map(items) => {
                for (k, item) in items {
                    collect(format!("{path}/{k}"), item, out);
                }
            }
            crate::Attr::Variable(_) => {}
        }
    }
    let mut attrs = m.attributes();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (name, a) in &attrs {
        collect(name.clone(), a, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_sizes_and_numbers_follow_keras() {
        assert_eq!(cell_widths(76), [33, 24, 15]);
        assert_eq!(cell_widths(88), [38, 29, 17]);
        assert_eq!(cell_widths(60), [26, 19, 11]);
        assert_eq!(readable_size(0.0), "0.00 B");
        assert_eq!(readable_size(124.0), "124.00 B");
        assert_eq!(readable_size(1024.0), "1.00 KB");
        assert_eq!(readable_size(203_560.0), "198.79 KB");
        assert_eq!(thousands(50240), "50,240");
        assert_eq!(thousands(650), "650");
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(
            wrap("batch_normalization (BatchNormalization)", 31),
            vec!["batch_normalization", "(BatchNormalization)"]
        );
    }
}
