//! Timing and reporting shared by the workloads, mirroring `tf_peer.py`'s `time_calls` and
//! `emit` so the two sides measure the same way.

use std::time::Instant;

/// Timed runs per case (the peer's default).
pub const RUNS: usize = 7;

/// Warms `f` up, calibrates an inner count so one run lasts about `target_s`, then returns
/// the seconds per call of each of [`RUNS`] runs, and the inner count.
pub fn time_calls(mut f: impl FnMut(), target_s: f64) -> (Vec<f64>, usize) {
    let t0 = Instant::now();
    let mut n = 0;
    while n < 3 || t0.elapsed().as_secs_f64() < 0.3 {
        f();
        n += 1;
    }
    let t0 = Instant::now();
    f();
    let one = t0.elapsed().as_secs_f64();
    let inner = ((target_s / one.max(1e-9)) as usize).clamp(1, 1_000_000);
    let mut out = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t0 = Instant::now();
        for _ in 0..inner {
            f();
        }
        out.push(t0.elapsed().as_secs_f64() / inner as f64);
    }
    (out, inner)
}

/// [`time_calls`] for two functions at once, their runs alternating (`f`, `g`, `f`, ...), so
/// drift in a shared machine's speed affects both alike and their ratio stays meaningful.
pub fn time_pair(mut f: impl FnMut(), mut g: impl FnMut(), target_s: f64) -> ((Vec<f64>, usize), (Vec<f64>, usize)) {
    let calibrate = |h: &mut dyn FnMut()| {
        let t0 = Instant::now();
        let mut n = 0;
        while n < 3 || t0.elapsed().as_secs_f64() < 0.3 {
            h();
            n += 1;
        }
        let t0 = Instant::now();
        h();
        ((target_s / t0.elapsed().as_secs_f64().max(1e-9)) as usize).clamp(1, 1_000_000)
    };
    let (inner_f, inner_g) = (calibrate(&mut f), calibrate(&mut g));
    let (mut out_f, mut out_g) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        for (h, inner, out) in [
            (&mut f as &mut dyn FnMut(), inner_f, &mut out_f),
            (&mut g, inner_g, &mut out_g),
        ] {
            let t0 = Instant::now();
            for _ in 0..inner {
                h();
            }
            out.push(t0.elapsed().as_secs_f64() / inner as f64);
        }
    }
    ((out_f, inner_f), (out_g, inner_g))
}

/// Prints one result line: `{"workload", "framework", "case", "unit", "median", "min", "max",
/// "runs", "inner", "values"}`.
pub fn emit(workload: &str, framework: &str, case: &str, unit: &str, values: &[f64], inner: usize) {
    emit_with(workload, framework, case, unit, values, inner, serde_json::Map::new());
}

/// Median of a sample.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// [`emit`] with extra fields (a final loss, a forward/backward split, ...), as the peer
/// script adds them.
pub fn emit_with(
    workload: &str,
    framework: &str,
    case: &str,
    unit: &str,
    values: &[f64],
    inner: usize,
    extra: serde_json::Map<String, serde_json::Value>,
) {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let mut line = serde_json::json!({
        "workload": workload,
        "framework": framework,
        "case": case,
        "unit": unit,
        "median": median,
        "min": sorted[0],
        "max": sorted[n - 1],
        "runs": n,
        "inner": inner,
        "values": values,
    });
    if let Some(obj) = line.as_object_mut() {
        obj.extend(extra);
    }
    print_line(&line.to_string());
}

/// Prints one result line. A reader that stops early (`bench | head -3`) ends the run
/// quietly, as command-line tools do, instead of a panic on the broken pipe; any other
/// failure to write is reported and exits non-zero.
pub fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("bench: cannot write a result line: {e}");
        std::process::exit(1);
    }
}
