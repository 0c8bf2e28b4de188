#!/usr/bin/env bash
# The GPU checks of the CUDA backend, in one go: numerical parity with the CPU backend (every
# operation and training steps of both models), the built-in models on the GPU against the CPU,
# and the training-throughput benchmark side by side with PyTorch on the same GPU.
#
#   scripts/gpu_check.sh build        # here (needs Rust): stripped binaries in target/gpu-check/
#   scripts/gpu_check.sh run [OUT]    # on the GPU machine (no Rust needed), logs and JSON in OUT
#
# `run` finds NVRTC in the CUDA toolkit or in a pip-installed nvidia-cuda-nvrtc package.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/gpu-check

build() {
    cargo build --release --locked --bin karel --example train_throughput
    local it
    it=$(cargo test --release --locked --no-run --test it --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "it" and m.get("executable"):
        print(m["executable"])')
    mkdir -p "$DIR"
    cp target/release/karel target/release/examples/train_throughput "$it" "$DIR/"
    mv "$DIR/$(basename "$it")" "$DIR/it"
    strip "$DIR"/karel "$DIR"/train_throughput "$DIR"/it
    du -sh "$DIR"/*
}

find_nvrtc() {
    local found
    found=$( (ls /usr/local/cuda*/lib64/libnvrtc.so* /usr/local/cuda*/targets/*/lib/libnvrtc.so* 2>/dev/null;
        python3 - <<'EOF'
import glob, site, sys
for base in site.getsitepackages() + [site.getusersitepackages()] + sys.path:
    for f in glob.glob(base + "/nvidia/cu*/lib/libnvrtc.so*") + glob.glob(base + "/nvidia/cuda_nvrtc/lib/libnvrtc.so*"):
        print(f)
EOF
    ) | grep -v builtins | grep -v alt | head -1)
    if [ -z "$found" ]; then
        echo "no libnvrtc found" >&2
        return 1
    fi
    # cudarc looks for libnvrtc.so or libnvrtc.so.12: link whatever version is there.
    mkdir -p /tmp/karel-nvrtc
    ln -sf "$found" /tmp/karel-nvrtc/libnvrtc.so
    export LD_LIBRARY_PATH="/tmp/karel-nvrtc:$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: $found"
}

run() {
    local out=${1:-${OUT:-/tmp/gpu-check}}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$out/gpu.txt"
    find_nvrtc | tee -a "$out/gpu.txt"
    echo "== parity with the CPU backend"
    timeout 300 "$DIR/it" gpu:: --test-threads 1 --nocapture 2>&1 | tee "$out/parity.log" | tail -20
    echo "== the built-in models on the GPU"
    "$DIR/karel" synthesize examples/task.json --explain > "$out/synthesize-cpu.txt"
    "$DIR/karel" synthesize examples/task.json --explain --device cuda > "$out/synthesize-cuda.txt"
    if cmp -s "$out/synthesize-cpu.txt" "$out/synthesize-cuda.txt"; then
        echo "synthesize: same output on CPU and GPU"
    else
        echo "synthesize: outputs differ"; diff "$out/synthesize-cpu.txt" "$out/synthesize-cuda.txt" | head -20
    fi
    echo "== training throughput, paper preset"
    timeout 300 "$DIR/train_throughput" --device cuda --preset paper --batch 64,128 --steps 20 \
        > "$out/karel-bench.md" 2> "$out/karel-bench.jsonl" || true
    cat "$out/karel-bench.md"
    timeout 300 "$DIR/train_throughput" --device cuda --preset paper --batch 64,128 --steps 20 --tf32 \
        > "$out/karel-bench-tf32.md" 2> "$out/karel-bench-tf32.jsonl" || true
    cat "$out/karel-bench-tf32.md"
    # The PyTorch side with the shapes our batches had (batch 128's).
    local shapes
    shapes=$(python3 - "$out/karel-bench.jsonl" <<'EOF'
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
EOF
)
    echo "== PyTorch, same shapes ($shapes)"
    timeout 300 python3 scripts/torch_gpu_bench.py --device cuda --batch 64,128 $shapes \
        | tee "$out/torch-bench.jsonl"
    timeout 300 python3 scripts/torch_gpu_bench.py --device cuda --batch 64,128 $shapes --tf32 \
        | tee "$out/torch-bench-tf32.jsonl"
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 build | run [OUT]" >&2; exit 2 ;;
esac
