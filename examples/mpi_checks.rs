//! Multi-process checks of data-parallel training, run under MPI by `scripts/mpi_checks.sh`:
//!
//! ```text
//! cargo build --release --features mpi --example mpi_checks
//! mpirun -n 2 target/release/examples/mpi_checks            # every check
//! mpirun -n 2 target/release/examples/mpi_checks fault-error DIR
//! mpirun -n 2 target/release/examples/mpi_checks fault-exit DIR    # also fault-panic
//! mpirun -n 2 -x FERROFLOW_MPI_FINALIZE_TIMEOUT=5 target/release/examples/mpi_checks fault-return
//! target/release/examples/mpi_checks verify-dir DIR         # every checkpoint in DIR loads
//! ```
//!
//! Every check runs the same collectives on every rank, compares, and then agrees on the
//! outcome, so one failing rank fails the check everywhere. The last line is
//! `mpi checks: P/N passed (R ranks)`; the exit status is non-zero unless all passed.

#[path = "support/distributed_checks.rs"]
mod checks;

use checks::*;
use ferroflow::distribute::{CommunicatorExt, MpiWorld};
use ferroflow::random;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mpi = match MpiWorld::init() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mpi_checks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let comm: Comm = mpi.communicator();
    // Reproducible draws: the checks compare runs that start from the same random values.
    random::set_seed(2024);
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("all");
    let dir = match shared_dir(&comm, args.get(2)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mpi_checks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match mode {
        "all" => {
            let (passed, total) = run_all(&comm, &dir);
            if comm.rank() == 0 {
                println!("mpi checks: {passed}/{total} passed ({} ranks)", comm.size());
            }
            if passed == total {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        "fault-error" => fault(&comm, &dir, Fault::Error),
        "fault-exit" => fault(&comm, &dir, Fault::Exit),
        "fault-panic" => fault(&comm, &dir, Fault::Panic),
        "fault-return" => {
            // The last rank leaves main at once; the others wait for it in a barrier that it
            // never joins. Its MPI_Finalize cannot complete, so its watchdog ends it, and
            // mpirun ends the rest.
            if comm.rank() == comm.size() - 1 {
                eprintln!("rank {}: returning from main early on purpose", comm.rank());
                ExitCode::from(4)
            } else {
                let _ = comm.barrier();
                ExitCode::SUCCESS
            }
        }
        "verify-dir" => verify_dir(&dir),
        other => {
            eprintln!("mpi_checks: unknown mode {other}");
            ExitCode::FAILURE
        }
    };
    drop(mpi);
    code
}

/// A directory every rank uses: the one given, or rank 0's new temporary one.
fn shared_dir(comm: &Comm, given: Option<&String>) -> ferroflow::Result<PathBuf> {
    let mut name = match given {
        Some(d) => d.clone().into_bytes(),
        None if comm.rank() == 0 => {
            let d = std::env::temp_dir().join(format!("ferroflow-mpi-{}", std::process::id()));
            std::fs::create_dir_all(&d)?;
            d.to_string_lossy().into_owned().into_bytes()
        }
        None => Vec::new(),
    };
    comm.broadcast_vec(&mut name, 0)?;
    let dir = PathBuf::from(String::from_utf8_lossy(&name).into_owned());
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
