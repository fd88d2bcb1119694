//! Printing in TensorFlow's style: `ff.Tensor([[0.8144 ...]], shape=(1, 1), dtype=float32)`,
//! with NumPy's number formatting and the middle of large tensors elided.

use crate::{Data, Tensor, Value};
use std::fmt;

/// Tensors with more elements than this are summarised (NumPy's default threshold).
const SUMMARY_THRESHOLD: usize = 1000;
/// Leading and trailing entries kept per axis when summarising.
const EDGE: usize = 3;
/// Fractional digits at most, as NumPy's default `precision`.
const PRECISION: usize = 8;

/// The shown elements as NumPy prints them (floats trimmed: `1.`, `0.5`, `0.81449276`; bools
/// as `True`/`False`), keyed by flat row-major index.
fn format_cells(d: &Data, wanted: &[usize]) -> Vec<String> {
    fn pick<T: Copy>(a: &crate::data::Array<T>, wanted: &[usize]) -> Vec<T> {
        let std = a.as_standard_layout();
        let s = std.as_slice().expect("standard layout");
        wanted.iter().map(|&i| s[i]).collect()
    }
    match d {
        Data::F32(a) => pick(a, wanted)
            .into_iter()
            .map(|v| format_float(v as f64, Some(v)))
            .collect(),
        Data::F64(a) => pick(a, wanted).into_iter().map(|v| format_float(v, None)).collect(),
        Data::I32(a) => pick(a, wanted).into_iter().map(|v| v.to_string()).collect(),
        Data::I64(a) => pick(a, wanted).into_iter().map(|v| v.to_string()).collect(),
        Data::Bool(a) => pick(a, wanted)
            .into_iter()
            .map(|v| if v { "True".into() } else { "False".into() })
            .collect(),
    }
}

fn format_float(v: f64, as_f32: Option<f32>) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Shortest round-trip text for the element's own type, then at most PRECISION decimals.
    let short = match as_f32 {
        Some(f) => format!("{f}"),
        None => format!("{v}"),
    };
    let text = match short.split_once('.') {
        Some((_, frac)) if frac.len() > PRECISION => {
            let t = format!("{:.*}", PRECISION, v);
            t.trim_end_matches('0').to_string()
        }
        _ => short,
    };
    if text.contains('.') || text.contains('e') {
        text
    } else {
        format!("{text}.")
    }
}

/// Indices shown along an axis of length `n`, with `None` standing for the elided middle.
fn shown(n: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    }
}

/// Flat indices of the shown elements, in printing order.
fn shown_indices(dims: &[usize], strides: &[usize], base: usize, summarise: bool, out: &mut Vec<usize>) {
    if dims.is_empty() {
        out.push(base);
        return;
    }
    for i in shown(dims[0], summarise).into_iter().flatten() {
        shown_indices(&dims[1..], &strides[1..], base + i * strides[0], summarise, out);
    }
}

/// Recursively writes nested brackets like NumPy; `cells` are consumed in printing order.
fn write_nested(
    out: &mut String,
    cells: &mut std::slice::Iter<'_, String>,
    dims: &[usize],
    depth: usize,
    summarise: bool,
) {
    if dims.is_empty() {
        out.push_str(cells.next().map(String::as_str).unwrap_or(""));
        return;
    }
    out.push('[');
    let last_axis = dims.len() == 1;
    for (k, it) in shown(dims[0], summarise).iter().enumerate() {
        if k > 0 {
            if last_axis {
                out.push(' ');
            } else {
                out.push_str(&"\n".repeat(dims.len() - 1));
                out.push_str(&" ".repeat(depth + 1));
            }
        }
        match it {
            Some(_) => write_nested(out, cells, &dims[1..], depth + 1, summarise),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}

/// Pads cells to a common width: floats align on the decimal point (integer part padded on
/// the left, fraction on the right), everything else is right-aligned.
fn align(cells: &mut [String], float: bool) {
    if float {
        let split = |c: &String| {
            c.split_once('.')
                .map(|(i, f)| (i.len(), f.len()))
                .unwrap_or((c.len(), 0))
        };
        let wi = cells.iter().map(|c| split(c).0).max().unwrap_or(0);
        let wf = cells.iter().map(|c| split(c).1).max().unwrap_or(0);
        for c in cells.iter_mut() {
            let (i, f) = split(c);
            *c = format!("{}{}{}", " ".repeat(wi - i), c, " ".repeat(wf - f));
        }
    } else {
        let w = cells.iter().map(|c| c.len()).max().unwrap_or(0);
        for c in cells.iter_mut() {
            *c = format!("{c:>w$}");
        }
    }
}

/// The NumPy-style body of an eager tensor, e.g. `[[1. 2.]\n [3. 4.]]`.
pub fn numpy_text(d: &Data) -> String {
    let dims = d.dims().to_vec();
    let n: usize = dims.iter().product();
    let summarise = n > SUMMARY_THRESHOLD;
    let strides = crate::Shape::from(dims.as_slice()).contiguous_strides();
    let mut wanted = Vec::new();
    shown_indices(&dims, &strides, 0, summarise, &mut wanted);
    let mut cells = format_cells(d, &wanted);
    if dims.is_empty() {
        return cells.pop().unwrap_or_default();
    }
    align(&mut cells, d.dtype().is_float());
    let mut out = String::new();
    write_nested(&mut out, &mut cells.iter(), &dims, 0, summarise);
    out
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value() {
            Value::Eager(d) => {
                let body = numpy_text(d);
                let sep = if body.contains('\n') { "\n" } else { "" };
                write!(
                    f,
                    "ff.Tensor({sep}{body}, shape={}, dtype={})",
                    self.shape(),
                    self.dtype()
                )
            }
            Value::Device(d) => match d.to_host() {
                Ok(host) => {
                    let body = numpy_text(host);
                    let sep = if body.contains('\n') { "\n" } else { "" };
                    write!(
                        f,
                        "ff.Tensor({sep}{body}, shape={}, dtype={}, device={})",
                        self.shape(),
                        self.dtype(),
                        d.device()
                    )
                }
                Err(e) => write!(
                    f,
                    "ff.Tensor(<unreadable: {e}>, shape={}, dtype={})",
                    self.shape(),
                    self.dtype()
                ),
            },
            Value::Symbolic(s) => write!(
                f,
                "ff.Tensor(<symbolic>, shape={}, dtype={})",
                s.spec.shape, s.spec.dtype
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn prints_like_tensorflow() {
        assert_eq!(
            Tensor::new([[0.81449276f32]]).to_string(),
            "ff.Tensor([[0.81449276]], shape=(1, 1), dtype=float32)"
        );
        assert_eq!(
            Tensor::new([[1.0f32, 2.0], [3.0, 4.5]]).to_string(),
            "ff.Tensor(\n[[1.  2. ]\n [3.  4.5]], shape=(2, 2), dtype=float32)"
        );
        assert_eq!(Tensor::scalar(3i32).to_string(), "ff.Tensor(3, shape=(), dtype=int32)");
        assert_eq!(
            Tensor::new([true, false]).to_string(),
            "ff.Tensor([ True False], shape=(2,), dtype=bool)"
        );
        assert_eq!(
            Tensor::new([0.1f64, 1.0 / 3.0]).to_string(),
            "ff.Tensor([0.1        0.33333333], shape=(2,), dtype=float64)"
        );
        let t = Tensor::new([[[1i64, 2], [3, 4]], [[5, 6], [7, 8]]]);
        assert_eq!(
            t.to_string(),
            "ff.Tensor(\n[[[1 2]\n  [3 4]]\n\n [[5 6]\n  [7 8]]], shape=(2, 2, 2), dtype=int64)"
        );
    }

    #[test]
    fn large_tensors_are_elided() {
        let t = Tensor::range(0.0, 2000.0, 1.0, DType::I32).unwrap();
        assert_eq!(
            t.to_string(),
            "ff.Tensor([   0    1    2 ... 1997 1998 1999], shape=(2000,), dtype=int32)"
        );
    }
}
