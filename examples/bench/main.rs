//! ferroflow's side of the benchmark workloads in `bench/WORKLOADS.md`.
//!
//! `cargo run --release --example bench -- [WORKLOAD ...]` prints one JSON line per
//! (workload, framework, case), in the format the TensorFlow peer script (`bench/tf_peer.py`)
//! prints, so `bench/compare.py` can pair them. With no argument every known workload runs.
//! Built with `--features cuda`, `FERROFLOW_BENCH_GPU_ONLY=1` prints only the GPU lines of
//! the workloads asked for (the device check's short run).

#[cfg(feature = "cuda")]
mod cuda;
mod harness;
mod train;
mod workloads;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).map(|a| a.to_uppercase()).collect();
    let known = workloads::all();
    let unknown: Vec<&String> = args.iter().filter(|a| !known.iter().any(|(id, _)| id == a)).collect();
    if !unknown.is_empty() {
        let ids: Vec<&str> = known.iter().map(|(id, _)| *id).collect();
        eprintln!("unknown workload(s) {unknown:?}; known: {ids:?}");
        std::process::exit(2);
    }
    #[cfg(feature = "cuda")]
    if std::env::var_os("FERROFLOW_BENCH_GPU_ONLY").is_some_and(|v| v != "0") {
        if let Err(e) = cuda::only(&args) {
            eprintln!("GPU lines: {e}");
            std::process::exit(1);
        }
        return;
    }
    for (id, run) in known {
        if args.is_empty() || args.iter().any(|a| a == id) {
            if let Err(e) = run() {
                eprintln!("{id}: {e}");
                std::process::exit(1);
            }
        }
    }
}
