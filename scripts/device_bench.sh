#!/usr/bin/env bash
# Matmul scaling on the device machine (16 cores, no Rust toolchain there), issue 13's figures.
#
# Here (with cargo):   bash scripts/device_bench.sh build
#   builds the bench example in release; carry target/release/examples/bench to the device.
# There:               bash scripts/device_bench.sh run
#   runs `bench W1 W3 W4` at RAYON_NUM_THREADS = 1, 4, 16 and the numpy / PyTorch-CPU peers
#   (bench/device_peers.py, a copy of the shared peer script) beside it; JSON lines on stdout,
#   each of ours tagged with "threads". About 4 minutes in all (W1 W3 W4 take about 65 s at
#   any thread count, as every case is timed for about 3 s); every step has its own limit.
#   `FERROFLOW_GEMM_SPLIT=shared|bands` (set by the caller) forces one product's split.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/examples/bench
case "${1:-run}" in
build)
    cargo build --release --example bench
    ls -l "$BIN"
    ;;
run)
    [ -x "$BIN" ] || { echo "no $BIN: run 'bash scripts/device_bench.sh build' here first" >&2; exit 1; }
    nproc
    grep -m1 'model name' /proc/cpuinfo || true
    grep -o -m1 'avx512f' /proc/cpuinfo || echo "no avx512f"
    for threads in 1 4 16; do
        RAYON_NUM_THREADS=$threads timeout 90 "$BIN" W1 W3 W4 \
            | sed "s/^{/{\"threads\":$threads,/" || echo "ours at $threads threads: exit $?" >&2
    done
    timeout 60 python3 bench/device_peers.py numpy || echo "numpy peer: exit $?" >&2
    timeout 90 python3 bench/device_peers.py torch-cpu || echo "torch-cpu peer: exit $?" >&2
    ;;
*)
    echo "usage: $0 [build|run]" >&2
    exit 2
    ;;
esac
