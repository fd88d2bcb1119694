//! Numeric CSV files: a header line (optional), then rows of numbers of one width.

use ferroflow_tensor_core::{DType, Error, Result, Tensor};
use std::io::Read;
use std::ops::Range;
use std::path::Path;

/// How [`read_csv`] reads a file: `CsvOptions::new().has_header(true).dtype(DType::F64)`.
/// Defaults: no header, `,` separated, float32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    header: bool,
    delimiter: char,
    dtype: DType,
    skip_lines: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions::new()
    }
}

impl CsvOptions {
    /// The defaults.
    pub fn new() -> Self {
        CsvOptions {
            header: false,
            delimiter: ',',
            dtype: DType::F32,
            skip_lines: 0,
        }
    }

    /// Whether the first (non-skipped) line names the columns.
    pub fn has_header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The field separator (`,` by default; `'\t'` for TSV).
    pub fn delimiter(mut self, delimiter: char) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The dtype of the values: a float type, or an integer type for files of integers.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Lines to skip before the header or the data (a title or metadata line).
    pub fn skip_lines(mut self, n: usize) -> Self {
        self.skip_lines = n;
        self
    }
}

/// A numeric table: the column names (with a header) and the values, `[rows, columns]`.
#[derive(Debug, Clone)]
pub struct Table {
    /// Column names, when the file had a header.
    pub header: Option<Vec<String>>,
    /// The values, one row per line.
    pub values: Tensor,
}

impl Table {
    /// Columns `range` as a `[rows, range.len()]` tensor (features, for instance).
    pub fn columns(&self, range: Range<usize>) -> Result<Tensor> {
        let cols = self.values.dims()[1];
        if range.start > range.end || range.end > cols {
            return Err(Error::invalid(
                "csv",
                format!("columns {range:?} of a table with {cols} columns"),
            ));
        }
        self.values.slice(&[0, range.start as i64], &[-1, range.len() as i64])
    }

    /// Column `i` as a `[rows]` tensor (labels, for instance).
    pub fn column(&self, i: usize) -> Result<Tensor> {
        self.columns(i..i + 1)?.reshape(&[-1])
    }

    /// The column named `name` (needs a header).
    pub fn column_named(&self, name: &str) -> Result<Tensor> {
        let i = self
            .header
            .as_ref()
            .and_then(|h| h.iter().position(|c| c == name))
            .ok_or_else(|| Error::invalid("csv", format!("no column named {name:?}")))?;
        self.column(i)
    }
}

/// Reads a numeric CSV file; a path ending in `.gz` is decompressed first.
///
/// ```
/// use ferroflow_data::{read_csv, CsvOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("t.csv");
/// std::fs::write(&path, "a,b\n1,2\n3,4.5\n").unwrap();
/// let t = read_csv(&path, &CsvOptions::new().has_header(true))?;
/// assert_eq!(t.header.as_deref(), Some(&["a".to_string(), "b".to_string()][..]));
/// assert_eq!(t.column_named("b")?.to_vec::<f32>()?, vec![2.0, 4.5]);
/// # Ok::<(), ferroflow_tensor_core::Error>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Table> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let text = if path.extension().is_some_and(|e| e == "gz") {
        // Decompression is bounded by the memory limit: a small hostile file must not
        // expand without end.
        let limit = ferroflow_tensor_core::memory_limit() as u64;
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .take(limit.saturating_add(1))
            .read_to_string(&mut out)
            .map_err(|e| file_error(path, e))?;
        if out.len() as u64 > limit {
            return Err(Error::invalid(
                "csv",
                format!(
                    "{}: decompresses to more than the memory limit of {limit} bytes",
                    path.display()
                ),
            ));
        }
        out
    } else {
        String::from_utf8(bytes)
            .map_err(|e| Error::invalid("csv", format!("{}: not UTF-8 text: {e}", path.display())))?
    };
    parse_csv(&text, options).map_err(|e| match e {
        Error::InvalidArgument { op, msg } => Error::invalid(op, format!("{}: {msg}", path.display())),
        other => other,
    })
}

fn file_error(path: &Path, e: std::io::Error) -> Error {
    Error::invalid("csv", format!("{}: {e}", path.display()))
}

/// Parses numeric CSV text. Every row must have as many fields as the first; blank lines are
/// skipped; fields may be quoted and padded with spaces.
pub fn parse_csv(text: &str, options: &CsvOptions) -> Result<Table> {
    let mut lines = text
        .lines()
        .enumerate()
        .skip(options.skip_lines)
        .filter(|(_, l)| !l.trim().is_empty());
    let split = |line: &str| -> Vec<String> {
        line.split(options.delimiter)
            .map(|f| f.trim().trim_matches('"').trim().to_string())
            .collect()
    };
    let header = if options.header {
        lines.next().map(|(_, l)| split(l))
    } else {
        None
    };
    let mut width = header.as_ref().map(Vec::len);
    let mut rows = 0usize;
    let mut floats: Vec<f64> = Vec::new();
    let mut ints: Vec<i64> = Vec::new();
    let integer = options.dtype.is_int();
    if !(options.dtype.is_float() || integer) {
        return Err(Error::invalid(
            "csv",
            format!("values can be read as floats or integers, not {}", options.dtype),
        ));
    }
    for (index, line) in lines {
        let fields = split(line);
        let expected = *width.get_or_insert(fields.len());
        if fields.len() != expected {
            return Err(Error::invalid(
                "csv",
                format!("line {} has {} fields, expected {expected}", index + 1, fields.len()),
            ));
        }
        for (col, field) in fields.iter().enumerate() {
            let bad = || {
                Error::invalid(
                    "csv",
                    format!(
                        "line {}, column {}: {field:?} is not {}",
                        index + 1,
                        col + 1,
                        if integer { "an integer" } else { "a number" }
                    ),
                )
            };
            if integer {
                ints.push(field.parse::<i64>().map_err(|_| bad())?);
            } else {
                floats.push(field.parse::<f64>().map_err(|_| bad())?);
            }
        }
        rows += 1;
    }
    let shape = [rows, width.unwrap_or(0)];
    let values = match options.dtype {
        DType::F32 => Tensor::from_vec(floats.into_iter().map(|v| v as f32).collect(), &shape)?,
        DType::F64 => Tensor::from_vec(floats, &shape)?,
        DType::I32 => Tensor::from_vec(
            ints.into_iter()
                .map(|v| i32::try_from(v).map_err(|_| Error::invalid("csv", format!("{v} does not fit int32"))))
                .collect::<Result<Vec<i32>>>()?,
            &shape,
        )?,
        _ => Tensor::from_vec(ints, &shape)?,
    };
    Ok(Table { header, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_quotes_blank_lines_and_integers() -> Result<()> {
        let t = parse_csv(
            "x, \"y\"\n\n1, 2\n 3 ,4\n",
            &CsvOptions::new().has_header(true).dtype(DType::I32),
        )?;
        assert_eq!(t.values.dims(), &[2, 2]);
        assert_eq!(t.values.to_vec::<i32>()?, vec![1, 2, 3, 4]);
        assert_eq!(t.column_named("y")?.to_vec::<i32>()?, vec![2, 4]);
        let tsv = parse_csv("1\t2.5\n", &CsvOptions::new().delimiter('\t').dtype(DType::F64))?;
        assert_eq!(tsv.values.to_vec::<f64>()?, vec![1.0, 2.5]);
        let meta = parse_csv("150,4,setosa\n1,2\n", &CsvOptions::new().skip_lines(1))?;
        assert_eq!(meta.values.dims(), &[1, 2]);
        let empty = parse_csv("", &CsvOptions::new())?;
        assert_eq!(empty.values.dims(), &[0, 0]);
        Ok(())
    }

    #[test]
    fn bad_rows_name_the_line_and_column() {
        let err = parse_csv("1,2\n3\n", &CsvOptions::new()).unwrap_err().to_string();
        assert!(err.contains("line 2 has 1 fields, expected 2"), "{err}");
        let err = parse_csv("1,2\n3,x\n", &CsvOptions::new()).unwrap_err().to_string();
        assert!(err.contains("line 2, column 2"), "{err}");
        let err = parse_csv("1.5\n", &CsvOptions::new().dtype(DType::I64))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an integer"), "{err}");
        assert!(parse_csv("3000000000\n", &CsvOptions::new().dtype(DType::I32)).is_err());
        assert!(parse_csv("1\n", &CsvOptions::new().dtype(DType::Bool)).is_err());
    }

    #[test]
    fn reads_gzip_and_names_the_file_in_errors() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::from)?;
        let path = dir.path().join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, b"1,2\n3,4\n")?;
        std::fs::write(&path, enc.finish()?)?;
        assert_eq!(
            read_csv(&path, &CsvOptions::new())?.values.to_vec::<f32>()?,
            vec![1.0, 2.0, 3.0, 4.0]
        );
        let err = read_csv(dir.path().join("missing.csv"), &CsvOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.csv"), "{err}");
        Ok(())
    }
}
