//! The `ferroflow` command-line tool: look inside checkpoints and convert between formats.
//!
//! ```text
//! ferroflow inspect PATH        list variables: name, dtype, shape, min/max/mean/std
//! ferroflow convert IN OUT      rewrite IN as OUT (format chosen by each path)
//! ```
//!
//! A path ending in `.safetensors` is a safetensors file; any other path is a TensorFlow
//! checkpoint prefix (a directory resolves through its `checkpoint` state file). Errors are
//! one line on stderr and a non-zero exit status. No dependency beyond the library: users of
//! the library pay nothing for the tool.

use ferroflow::checkpoint::format::{write_values, CheckpointReader};
use ferroflow::checkpoint::{RawTensor, Result, TensorInfo};
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: ferroflow inspect PATH | ferroflow convert IN OUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["inspect", path] => inspect(Path::new(path)),
        ["convert", input, output] => convert(Path::new(input), Path::new(output)),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the error says.
            eprintln!("ferroflow: error: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn inspect(path: &Path) -> Result<()> {
    let reader = CheckpointReader::open(path)?;
    let infos = reader.list();
    println!(
        "{} ({:?}), {} variable(s)",
        reader.path().display(),
        reader.format(),
        infos.len()
    );
    if let Some(n) = reader.save_counter()? {
        println!("save_counter: {n}");
    }
    for (key, dtype) in reader.skipped() {
        println!("skipped: {key} ({dtype}, no ferroflow type)");
    }
    let width = infos.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:8}  {:14}  {:>12}  {:>12}  {:>12}  {:>12}",
        "name", "dtype", "shape", "min", "max", "mean", "std"
    );
    for info in &infos {
        let stats = match reader.load(&info.name) {
            Ok(t) => summary(&t.to_f64_vec()?),
            Err(ferroflow::checkpoint::CheckpointError::UnsupportedDtype { .. }) => {
                ["-".to_string(), "-".into(), "-".into(), "-".into()]
            }
            Err(e) => return Err(e),
        };
        println!(
            "{:width$}  {:8}  {:14}  {:>12}  {:>12}  {:>12}  {:>12}",
            info.name,
            info.dtype.name(),
            format!("{:?}", info.shape),
            stats[0],
            stats[1],
            stats[2],
            stats[3]
        );
    }
    Ok(())
}

/// min, max, mean and population standard deviation, formatted; dashes for an empty tensor.
fn summary(values: &[f64]) -> [String; 4] {
    if values.is_empty() {
        return ["-".into(), "-".into(), "-".into(), "-".into()];
    }
    let n = values.len() as f64;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    [min, max, mean, var.sqrt()].map(|x| format!("{x:.6}"))
}

fn convert(input: &Path, output: &Path) -> Result<()> {
    let reader = CheckpointReader::open(input)?;
    let mut values = Vec::new();
    let mut skipped = Vec::new();
    for TensorInfo { name, .. } in reader.list() {
        // Raw TensorFlow keys that are not plain object paths (e.g. TF1 optimizer slots under
        // `.OPTIMIZER_SLOT`) have no object path to carry over.
        if name.split('/').any(|segment| segment.starts_with('.')) {
            skipped.push(name);
            continue;
        }
        let raw: RawTensor = reader.read_raw(&name)?;
        // TensorFlow records a variable's own name; the last path segment is the best guess.
        let full_name = name.rsplit('/').next().unwrap_or(&name).to_string();
        values.push((name, raw, full_name));
    }
    write_values(output, &values, reader.save_counter()?)?;
    println!(
        "{} -> {} ({} variable(s))",
        reader.path().display(),
        output.display(),
        values.len()
    );
    if !skipped.is_empty() {
        eprintln!(
            "ferroflow: note: skipped {} entr(y/ies) without an object path: {}",
            skipped.len(),
            skipped.join(", ")
        );
    }
    Ok(())
}
