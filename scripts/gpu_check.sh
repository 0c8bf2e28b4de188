#!/usr/bin/env bash
# The GPU checks of the CUDA backend, in one go: numerical parity with the CPU backend (every
# operation and training steps of both models), compute-sanitizer's memcheck and racecheck, the
# built-in models on the GPU against the CPU, the achieved TFLOP/s of the product and convolution
# kernels against the GPU's peak, and the training-throughput benchmark side by side with PyTorch
# on the same GPU.
#
#   scripts/gpu_check.sh build        # here (needs Rust): stripped binaries in target/gpu-check/
#   scripts/gpu_check.sh run [OUT]    # on the GPU machine (no Rust needed), logs and JSON in OUT
#
# `run` finds NVRTC in the CUDA toolkit or in a pip-installed nvidia-cuda-nvrtc package (CUDA 12
# or 13). Every step runs even when an earlier one failed; OUT/summary.md lists each step's
# verdict, and the exit status is 1 when any step failed. The CUDA tests run with
# KAREL_REQUIRE_GPU=1, so a missing device or NVRTC fails them. The whole run ends within 8 minutes
# (KAREL_GPU_CHECK_SECONDS): each step's time limit is cut to what is left, and a step stopped
# by it fails. KAREL_GPU_CHECK_BIN names another
# folder of binaries; KAREL_GPU_CHECK_QUICK=1 leaves out the benchmarks (the dry run of
# tests/it/gpu.rs, on a machine without a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=target/gpu-check

build() (
    set -e
    cargo build --release --locked --bin karel --example train_throughput --example kernel_throughput
    local it
    it=$(cargo test --release --locked --no-run --test it --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])')
    mkdir -p "$DIR"
    cp target/release/karel target/release/examples/train_throughput \
        target/release/examples/kernel_throughput "$it" "$DIR/"
    mv "$DIR/$(basename "$it")" "$DIR/it"
    strip "$DIR"/karel "$DIR"/train_throughput "$DIR"/kernel_throughput "$DIR"/it
    du -sh "$DIR"/*
)

find_nvrtc() {
    local found
    found=$( (ls /usr/local/cuda*/lib64/libnvrtc.so* /usr/local/cuda*/targets/*/lib/libnvrtc.so* 2>/dev/null;
        python3 - <<'EOF2'
import glob, site, sys
for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    for f in glob.glob(base + "/nvidia/cu*/lib/libnvrtc.so*") + glob.glob(base + "/nvidia/cuda_nvrtc/lib/libnvrtc.so*"):
        print(f)
EOF2
    ) | grep -v builtins | grep -v alt | head -1)
    if [ -z "$found" ]; then
        echo "no libnvrtc found (CUDA toolkit or an nvidia-cuda-nvrtc wheel)"
        return 1
    fi
    # karel loads libnvrtc.so, libnvrtc.so.13 or libnvrtc.so.12 from the library path.
    export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: $found"
}

device_report() {
    if ! command -v nvidia-smi > /dev/null; then
        echo "no NVIDIA GPU: nvidia-smi not found"
        return 1
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,compute_cap --format=csv ||
        { echo "no NVIDIA GPU: nvidia-smi failed"; return 1; }
}

# Seconds a step may take: at most `want`, and never past the run's deadline (8 minutes from the
# start, so that the run fits one device command with time to spare).
budget() {
    local want=$1 left=$((DEADLINE - SECONDS))
    [ "$left" -lt "$want" ] && want=$left
    [ "$want" -lt 1 ] && want=1
    echo "$want"
}

parity() {
    timeout "$(budget 150)" "$BIN/it" gpu::cuda_ --test-threads 1 --nocapture
}

sanitize() {
    if ! command -v compute-sanitizer > /dev/null; then
        echo "skipped: compute-sanitizer not found"
        return 0
    fi
    local tool status=0
    for tool in memcheck racecheck; do
        echo "-- $tool"
        timeout "$(budget 75)" compute-sanitizer --tool "$tool" --error-exitcode 9 \
            "$BIN/it" gpu::cuda_ops_match_the_cpu --test-threads 1 || status=$?
        if [ "$status" -eq 124 ]; then
            echo "compute-sanitizer --tool $tool: out of time"
            return 1
        elif [ "$status" -ne 0 ] && [ "$status" -ne 9 ]; then
            echo "skipped: compute-sanitizer --tool $tool refused the device (status $status)"
            status=0
        fi
        [ "$status" -eq 0 ] || return "$status"
    done
}

models() {
    timeout "$(budget 60)" "$BIN/karel" synthesize examples/task.json --explain --device cuda \
        > "$OUT_DIR/synthesize-cuda.txt" || return 1
    timeout "$(budget 60)" "$BIN/karel" synthesize examples/task.json --explain \
        > "$OUT_DIR/synthesize-cpu.txt" || return 1
    if cmp -s "$OUT_DIR/synthesize-cpu.txt" "$OUT_DIR/synthesize-cuda.txt"; then
        echo "same program on CPU and GPU"
    else
        diff "$OUT_DIR/synthesize-cpu.txt" "$OUT_DIR/synthesize-cuda.txt" | head -20
        echo "the programs differ"
        return 1
    fi
}

# Peaks of the GPU for the share reached (TFLOP/s; default: the H200 SXM's data sheet, 67 for
# FP32 and 989 for TF32 tensor cores with sparsity, so 494.7 dense).
kernels() {
    timeout "$(budget 45)" "$BIN/kernel_throughput" --device cuda --peak "${KAREL_PEAK_F32:-67}" \
        > "$OUT_DIR/kernels.md" 2> "$OUT_DIR/kernels.jsonl" || return 1
    timeout "$(budget 45)" "$BIN/kernel_throughput" --device cuda --tf32 \
        --peak "${KAREL_PEAK_TF32:-494.7}" \
        > "$OUT_DIR/kernels-tf32.md" 2> "$OUT_DIR/kernels-tf32.jsonl" || return 1
    cat "$OUT_DIR/kernels.md" "$OUT_DIR/kernels-tf32.md"
}

throughput() {
    timeout "$(budget 60)" "$BIN/train_throughput" --device cuda --preset paper --batch 64,128 \
        --steps 20 > "$OUT_DIR/karel-bench.md" 2> "$OUT_DIR/karel-bench.jsonl" || return 1
    cat "$OUT_DIR/karel-bench.md"
    timeout "$(budget 60)" "$BIN/train_throughput" --device cuda --preset paper --batch 64,128 \
        --steps 20 --tf32 > "$OUT_DIR/karel-bench-tf32.md" 2> "$OUT_DIR/karel-bench-tf32.jsonl" || return 1
    cat "$OUT_DIR/karel-bench-tf32.md"
}

torch() {
    # The PyTorch side with the shapes our batches had (batch 128's).
    local shapes
    shapes=$(python3 - "$OUT_DIR/karel-bench.jsonl" <<'EOF2'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
syn = [r for r in rows if r.get("model") == "synthesizer"]
dbg = [r for r in rows if r.get("model") == "debugger"]
args = []
if syn: args += ["--decoder-steps", str(round(syn[-1]["mean_decoder_steps"]))]
if dbg:
    d = dbg[-1]
    args += ["--source-tokens", str(round(d["mean_source_tokens"])), "--edit-ops", str(round(d["mean_edit_ops"])),
             "--states", str(max(1, round(d["mean_states_per_trace"])))]
print(" ".join(args))
EOF2
) || return 1
    echo "PyTorch, same shapes ($shapes)"
    timeout "$(budget 60)" python3 scripts/torch_gpu_bench.py --device cuda --batch 64,128 $shapes \
        > "$OUT_DIR/torch-bench.jsonl" || return 1
    timeout "$(budget 60)" python3 scripts/torch_gpu_bench.py --device cuda --batch 64,128 $shapes --tf32 \
        > "$OUT_DIR/torch-bench-tf32.jsonl" || return 1
    cat "$OUT_DIR/torch-bench.jsonl" "$OUT_DIR/torch-bench-tf32.jsonl"
}

# Runs one step in this shell (so that what it exports stays), its output in OUT_DIR/NAME.log;
# records its verdict and the log's last line in the summary.
step() {
    local name=$1 what=$2 verdict note
    shift 2
    echo "== $name: $what"
    if "$@" > "$OUT_DIR/$name.log" 2>&1; then verdict=PASS; else verdict=FAIL; FAILED=1; fi
    tail -5 "$OUT_DIR/$name.log"
    note=$(grep -v '^\s*$' "$OUT_DIR/$name.log" | tail -1 | tr '|' '/' | cut -c1-200)
    if [ "$verdict" = PASS ] && [[ "$note" == skipped* ]]; then verdict=SKIP; fi
    echo "| $name | $verdict | $what: $note |" >> "$OUT_DIR/summary.md"
}

run() {
    OUT_DIR=${1:-${OUT:-/tmp/gpu-check}}
    BIN=${KAREL_GPU_CHECK_BIN:-$DIR}
    mkdir -p "$OUT_DIR"
    # Every CUDA test fails, never skips, without a device or NVRTC; the tests find the carried
    # binary and this checkout at run time.
    export KAREL_REQUIRE_GPU=1 KAREL_BIN="$BIN/karel" KAREL_REPO="$PWD"
    FAILED=0
    DEADLINE=$((SECONDS + ${KAREL_GPU_CHECK_SECONDS:-480}))
    printf '# GPU check\n\n| step | verdict | note |\n|---|---|---|\n' > "$OUT_DIR/summary.md"
    step device "device and driver" device_report
    step nvrtc "NVRTC library" find_nvrtc
    step parity "every op and training steps of both models against the CPU (f32, TF32)" parity
    step sanitizer "compute-sanitizer memcheck and racecheck over the op tests" sanitize
    step models "the built-in models on GPU and CPU, example task" models
    if [ -z "${KAREL_GPU_CHECK_QUICK:-}" ]; then
        step kernels "achieved TFLOP/s of the product and convolution kernels against the peak" kernels
        step throughput "training throughput, paper preset, f32 and TF32" throughput
        step torch "PyTorch on the same GPU and shapes" torch
    fi
    echo
    cat "$OUT_DIR/summary.md"
    return "$FAILED"
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 build | run [OUT]" >&2; exit 2 ;;
esac
