#!/usr/bin/env bash
# Trains the built-in models (`models/README.md`): the commands, in order, that produce them.
# Every training stage resumes where it stopped (`--resume` when its run directory holds a
# checkpoint) and is skipped once its run has reached its last step; a stage refuses to start
# before the runs it needs are finished. So the script can be run again after an interruption, on
# this machine or another one with the same build; the runs' checkpoints and metrics logs are
# committed while training goes on.
#
#   scripts/train_models.sh [STAGE]      STAGE: data | synthesizer | debugger | wrong-programs |
#                                        finetune | debugger-plain | export
#                                        (default: every stage in turn)
#
# KAREL names the binary (default target/release/karel, built first if missing). Training runs
# under `nice -n 19` so that the machine stays usable.
set -euo pipefail
cd "$(dirname "$0")/.."

KAREL=${KAREL:-target/release/karel}
if [ ! -x "$KAREL" ]; then
    cargo build --release
fi
stage=${1:-all}

# The data: the generator's defaults, the standard dataset's size; deterministic (the same seed
# and settings write the same files, checked against the recorded digests).
if [ "$stage" = all ] || [ "$stage" = data ]; then
    if [ ! -f data/train.kds ]; then
        "$KAREL" gen --splits train=1116854,val=2500,test=2500 --seed 1 -o data/
    fi
    sha256sum -c models/data.sha256
fi

# The step of the checkpoint in run directory $1 (0 without one), from its safetensors header.
checkpoint_step() {
    python3 - "$1/checkpoint.safetensors" <<'PY'
import json, os, struct, sys
path = sys.argv[1]
if not os.path.exists(path):
    print(0)
    sys.exit()
with open(path, "rb") as f:
    (size,) = struct.unpack("<Q", f.read(8))
    print(json.loads(f.read(size))["__metadata__"]["step"])
PY
}

# train_run RUN STEPS COMMAND...: trains run RUN up to STEPS steps with COMMAND (a `karel train`
# command without --out and --steps), resumed if RUN has a checkpoint, skipped if it is there.
train_run() {
    local run=$1 steps=$2 step
    shift 2
    step=$(checkpoint_step "$run")
    if [ "$step" -ge "$steps" ]; then
        echo "$run: finished (step $step of $steps)"
        return
    fi
    local resume=()
    if [ "$step" -gt 0 ]; then resume=(--resume); fi
    nice -n 19 "$@" --out "$run" --steps "$steps" --quiet "${resume[@]}"
}

# require_step RUN STEPS: stops the script unless run RUN has reached step STEPS.
require_step() {
    local step
    step=$(checkpoint_step "$1")
    if [ "$step" -lt "$2" ]; then
        echo "$1 is at step $step of $2: run its stage first" >&2
        exit 1
    fi
}

# The synthesizer: 120,000 steps of batch 64 (20 × the previous built-in model's 6,000), Adam,
# learning rate chosen by the pilot runs of models/README.md, halved every 40,000 steps.
if [ "$stage" = all ] || [ "$stage" = synthesizer ]; then
    train_run runs/synth 120000 "$KAREL" train synthesizer --data data/train.kds \
        --val data/val.kds --val-size 300 --lr 0.003 --decay-every 40000 --decay-rate 0.5 \
        --validate-every 2000 --checkpoint-every 1000
fi

# The debugger's mutation pre-training (TraceEmbed): 24,000 steps of batch 64 of fresh mutants
# (1 to 3 mutations) of the training programs, Adam, learning rate chosen by the pilot runs of
# models/README.md, halved every 8,000 steps. The run stops once at step 8,000 and keeps that
# checkpoint in runs/debug-8000 (the mutation benchmark compares it with the debugger without
# TraceEmbed trained as many steps), then continues; a step's batch and learning rate depend on
# the step alone, so the stop changes nothing.
debugger=("$KAREL" train debugger --data data/train.kds --val data/val.kds --val-size 300
    --lr 0.003 --decay-every 8000 --decay-rate 0.5 --validate-every 1000 --checkpoint-every 1000)
if [ "$stage" = all ] || [ "$stage" = debugger ]; then
    if [ ! -f runs/debug-8000/checkpoint.safetensors ]; then
        train_run runs/debug 8000 "${debugger[@]}"
        if [ "$(checkpoint_step runs/debug)" != 8000 ]; then
            echo "runs/debug is past step 8,000 without runs/debug-8000: retrain it" >&2
            exit 1
        fi
        rm -rf runs/debug-8000.part
        mkdir -p runs/debug-8000.part
        cp runs/debug/checkpoint.safetensors runs/debug/metrics.jsonl runs/debug/settings.json \
            runs/debug-8000.part/
        mv runs/debug-8000.part runs/debug-8000
    fi
    train_run runs/debug 24000 "${debugger[@]}"
fi

# The synthesizer's wrong programs (SED's filter: they parse and fail a given example), greedy,
# on the first 200,000 training tasks (10 × the previous built-in model's 20,000) and on the
# validation split: the fine-tuning data. Each file is written whole or not at all.
if [ "$stage" = all ] || [ "$stage" = wrong-programs ]; then
    require_step runs/synth 120000
    if [ ! -f data/wrong-train.jsonl ]; then
        # `head` stops reading after its lines, and the converter then ends on SIGPIPE (141).
        "$KAREL" data convert data/train.kds - | head -n 200000 > data/train-first-200000.jsonl ||
            {
                status=("${PIPESTATUS[@]}")
                if [ "${status[0]}" -ne 141 ] || [ "${status[1]}" -ne 0 ]; then
                    echo "taking the first training tasks failed (${status[*]})" >&2
                    exit 1
                fi
            }
        if [ "$(wc -l < data/train-first-200000.jsonl)" -ne 200000 ]; then
            echo "data/train-first-200000.jsonl does not hold 200,000 tasks" >&2
            exit 1
        fi
        nice -n 19 "$KAREL" synthesize --data data/train-first-200000.jsonl \
            --synthesizer runs/synth/checkpoint.safetensors --wrong-out data/wrong-train.jsonl.part
        mv data/wrong-train.jsonl.part data/wrong-train.jsonl
    fi
    if [ ! -f data/wrong-val.jsonl ]; then
        nice -n 19 "$KAREL" synthesize --data data/val.kds \
            --synthesizer runs/synth/checkpoint.safetensors --wrong-out data/wrong-val.jsonl.part
        mv data/wrong-val.jsonl.part data/wrong-val.jsonl
    fi
fi

# Fine-tuning of the pre-trained TraceEmbed debugger on those programs: 4,000 steps (20 × the
# previous built-in model's 200), Adam at 10⁻³, from the pre-trained weights and moments.
if [ "$stage" = all ] || [ "$stage" = finetune ]; then
    require_step runs/debug 24000
    if [ ! -f data/wrong-train.jsonl ] || [ ! -f data/wrong-val.jsonl ]; then
        echo "no fine-tuning data: run the wrong-programs stage first" >&2
        exit 1
    fi
    finetune=("$KAREL" train debugger --stage finetune --data data/wrong-train.jsonl
        --val data/wrong-val.jsonl --val-size 300 --lr 0.001 --decay-every 100000
        --decay-rate 0.5 --validate-every 500 --checkpoint-every 500)
    if [ "$(checkpoint_step runs/debug-fine)" = 0 ]; then
        finetune+=(--init runs/debug/checkpoint.safetensors)
    fi
    train_run runs/debug-fine 4000 "${finetune[@]}"
fi

# The debugger without TraceEmbed, pre-trained as the TraceEmbed one for its first 8,000 steps
# (the mutation benchmark compares it with runs/debug-8000).
if [ "$stage" = all ] || [ "$stage" = debugger-plain ]; then
    train_run runs/debug-plain 8000 "$KAREL" train debugger --no-trace-embed \
        --data data/train.kds --val data/val.kds --val-size 300 --lr 0.003 --decay-every 8000 \
        --decay-rate 0.5 --validate-every 1000 --checkpoint-every 1000
fi

# The built-in models: the final synthesizer and fine-tuned debugger without optimizer state.
if [ "$stage" = all ] || [ "$stage" = export ]; then
    require_step runs/synth 120000
    require_step runs/debug-fine 4000
    "$KAREL" model export runs/synth/checkpoint.safetensors -o models/tiny-synthesizer.safetensors
    "$KAREL" model export runs/debug-fine/checkpoint.safetensors -o models/tiny-debugger.safetensors
fi
