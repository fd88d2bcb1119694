#!/usr/bin/env bash
# The multi-process checks of data-parallel training (CI runs this): builds the MPI examples,
# runs every check on 2 and 3 ranks, the distributed example, and four faults (a rank whose
# callback returns an error, one that exits mid-step, one that panics, one that leaves main
# while the others wait for it), each of which must stop the whole job within 30 s and leave
# only complete checkpoints behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_mpi.sh
cargo build --release --features mpi --example mpi_checks --example distributed --example bench_distributed
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
BIN=target/release/examples

for n in 2 3; do
    echo "== mpi checks on $n ranks"
    timeout 600 "${MPIRUN[@]}" -n "$n" "$BIN/mpi_checks" | tee /tmp/mpi_checks.out
    grep -q "^mpi checks: 9/9 passed ($n ranks)" /tmp/mpi_checks.out
done

echo "== distributed example"
timeout 600 "${MPIRUN[@]}" -n 2 "$BIN/distributed" | tee /tmp/mpi_distributed.out
grep -q "^distributed check: 2 ranks, weights identical: yes, matches one process: yes" /tmp/mpi_distributed.out

for fault in fault-error fault-exit fault-panic fault-return; do
    echo "== $fault: every rank stops within 30 s, no partial checkpoint"
    dir="$(mktemp -d)"
    start=$(date +%s)
    set +e
    timeout 60 "${MPIRUN[@]}" -n 2 -x FERROFLOW_MPI_FINALIZE_TIMEOUT=5 "$BIN/mpi_checks" "$fault" "$dir" > "$dir.out" 2>&1
    status=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    cat "$dir.out" | grep -E "^rank|exit|Exit code" || true
    if [ "$status" = 0 ] || [ "$status" = 124 ] || [ "$elapsed" -gt 30 ]; then
        echo "$fault: status $status after ${elapsed}s (want a failure within 30 s)"
        exit 1
    fi
    if [ "$fault" = fault-error ]; then
        grep -q "^rank 0: fit stopped: .*worker 1 failed" "$dir.out"
        grep -q "^rank 1: fit stopped: .*rank failed on purpose" "$dir.out"
    fi
    "$BIN/mpi_checks" verify-dir "$dir"
    rm -rf "$dir" "$dir.out"
done
echo "mpi checks passed"
