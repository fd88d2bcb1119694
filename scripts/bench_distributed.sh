#!/usr/bin/env bash
# Benchmarks of data-parallel training (JSON lines on stdout, as bench/):
#   - all-reduce of 1 KiB ... 64 MiB float32 buffers on 2 ranks: plain MPI_Allreduce, our
#     communicator call and our gradient path, interleaved in one run;
#   - W4 through fit, global batch 128: 2 ranks x 1 thread, 1 process x 2 threads, 1 x 1
#     (and 1, 2, 4, 8 ranks x 1 thread with RANKS="1 2 4 8" on a bigger machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_mpi.sh
cargo build --release --features mpi --example bench_distributed
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
BIN=target/release/examples/bench_distributed
"${MPIRUN[@]}" -n 2 "$BIN" allreduce
"${MPIRUN[@]}" -n 1 -x RAYON_NUM_THREADS=1 "$BIN" w4
"${MPIRUN[@]}" -n 1 -x RAYON_NUM_THREADS=2 "$BIN" w4
for n in ${RANKS:-2}; do
    "${MPIRUN[@]}" -n "$n" -x RAYON_NUM_THREADS=1 "$BIN" w4
done
