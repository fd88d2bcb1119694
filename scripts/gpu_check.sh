#!/usr/bin/env bash
# The CUDA backend on the device machine (an H200; no Rust toolchain and no network there).
#
# Here (with cargo):   bash scripts/gpu_check.sh build
#   builds, with --features cuda (no CUDA needed to build), the release bench and the GPU
#   test binaries, and copies them to target/gpu/ (carry that folder to the device).
# There:               bash scripts/gpu_check.sh run
#   runs the GPU tests (tests/cuda_device.rs, tests/cuda_graphs.rs, the CUDA modes of the
#   oracle, of models.json's cases and of their Keras `fit`), the GPU bench lines
#   (W1, W3, W4, W5, W6 as `ferroflow-cuda-eager`; W4, W5, W6 traced as
#   `ferroflow-cuda-graph`) and PyTorch CUDA beside them, then a summary.
#   Under 6 minutes (the step limits add up to 390 s; a whole run took about 150 s on an
#   H200); a failing step does not stop the others, and with FERROFLOW_REQUIRE_GPU=1 a test
#   that finds no GPU fails, not skips.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=target/gpu
case "${1:-run}" in
build)
    set -e
    cargo build --release --features cuda --example bench
    mkdir -p "$OUT"
    cp target/release/examples/bench "$OUT/bench"
    cargo test --release --features cuda --no-run --test cuda_device --test cuda_graphs --test oracle \
        --test models --test fit_oracle 2>&1 \
        | tee /dev/stderr | grep -o 'target/release/deps/[a-z_]*-[0-9a-f]*' | while read -r bin; do
        name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
        cp "$bin" "$OUT/$name"
    done
    # Symbols stripped: the six binaries must travel in the device call's 64 MiB.
    strip "$OUT"/* 2>/dev/null || true
    ls -l "$OUT"
    du -sh "$OUT"
    ;;
run)
    [ -x "$OUT/bench" ] || { echo "no $OUT: run 'bash scripts/gpu_check.sh build' here and carry $OUT" >&2; exit 1; }
    # The CUDA 13 driver, NVRTC and cuBLAS: /usr/local/cuda first, then any copy Python
    # packages bring (PyTorch's wheels carry NVRTC and cuBLAS).
    dirs=/usr/local/cuda/lib64
    for lib in libnvrtc.so.13 libcublas.so.13; do
        for d in $(find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) \
            -name "$lib" -printf '%h\n' 2>/dev/null | sort -u); do
            dirs="$dirs:$d"
        done
    done
    export LD_LIBRARY_PATH=$dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for lib in libcuda.so.1 libnvrtc.so.13 libcublas.so.13; do
        found=$( (ldconfig -p | grep -o "/[^ ]*/$lib\$"; IFS=:; for d in $LD_LIBRARY_PATH; do [ -e "$d/$lib" ] && echo "$d/$lib"; done) | head -n 1)
        echo "$lib: ${found:-NOT FOUND}"
    done
    export FERROFLOW_REPO=$PWD
    # A test or bench line that finds no GPU fails instead of skipping.
    export FERROFLOW_REQUIRE_GPU=1
    nvidia-smi -L || true
    status=0
    step() { local label=$1 limit=$2; shift 2; echo "== $label"; timeout "$limit" "$@"; local rc=$?; echo "== $label: exit $rc"; [ $rc -eq 0 ] || status=1; }
    step "cuda_device tests" 60 "$OUT/cuda_device" --test-threads=1 --nocapture
    step "cuda_graphs tests" 30 "$OUT/cuda_graphs" --test-threads=1 --nocapture
    step "oracle on CUDA" 90 "$OUT/oracle" oracle_cuda --test-threads=1 --nocapture
    step "models on CUDA" 45 "$OUT/models" oracle_cuda_models --test-threads=1 --nocapture
    step "fit on CUDA" 45 "$OUT/fit_oracle" oracle_cuda_fit --test-threads=1 --nocapture
    step "bench W1 W3 W4 W5 W6 (GPU lines)" 60 env FERROFLOW_BENCH_GPU_ONLY=1 "$OUT/bench" W1 W3 W4 W5 W6
    step "torch-cuda peer" 60 python3 bench/device_peers.py torch-cuda
    echo "== summary: $( [ $status -eq 0 ] && echo all steps passed || echo some steps FAILED )"
    exit $status
    ;;
*)
    echo "usage: $0 [build|run]" >&2
    exit 2
    ;;
esac
