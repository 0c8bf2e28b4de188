#!/usr/bin/env bash
# Trains the built-in models (`models/README.md`): the commands, in order, that produce them.
# Every stage resumes where it stopped (`--resume` when its run directory holds a checkpoint), so
# the script can be run again after an interruption, on this machine or another one with the same
# build; the runs' checkpoints and metrics logs are committed while training goes on.
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

# Resumes the run in $1 if it has a checkpoint.
resume_flag() {
    if [ -f "$1/checkpoint.safetensors" ]; then echo --resume; fi
}

# The synthesizer: 120,000 steps of batch 64 (20 × the previous built-in model's 6,000), Adam,
# learning rate chosen by the pilot runs of models/README.md, halved every 40,000 steps.
if [ "$stage" = all ] || [ "$stage" = synthesizer ]; then
    nice -n 19 "$KAREL" train synthesizer --data data/train.kds --val data/val.kds --val-size 300 \
        --out runs/synth --steps 120000 --lr 0.003 --decay-every 40000 --decay-rate 0.5 \
        --validate-every 2000 --checkpoint-every 1000 --quiet $(resume_flag runs/synth)
fi

# The debugger's mutation pre-training (TraceEmbed): 24,000 steps of batch 64 of fresh mutants
# (1 to 3 mutations) of the training programs, Adam, learning rate chosen by the pilot runs of
# models/README.md, halved every 8,000 steps. The run stops once at step 8,000 and keeps that
# checkpoint in runs/debug-8000 (the mutation benchmark compares it with the debugger without
# TraceEmbed trained as many steps), then continues; a step's batch and learning rate depend on
# the step alone, so the stop changes nothing.
debugger_run() {
    nice -n 19 "$KAREL" train debugger --data data/train.kds --val data/val.kds --val-size 300 \
        --out runs/debug --lr 0.003 --decay-every 8000 --decay-rate 0.5 \
        --validate-every 1000 --checkpoint-every 1000 --quiet "$@" $(resume_flag runs/debug)
}
if [ "$stage" = all ] || [ "$stage" = debugger ]; then
    if [ ! -f runs/debug-8000/checkpoint.safetensors ]; then
        debugger_run --steps 8000
        mkdir -p runs/debug-8000
        cp runs/debug/checkpoint.safetensors runs/debug/metrics.jsonl runs/debug/settings.json \
            runs/debug-8000/
    fi
    debugger_run --steps 24000
fi

# The synthesizer's wrong programs (SED's filter: they parse and fail a given example), greedy,
# on the first 200,000 training tasks (10 × the previous built-in model's 20,000) and on the
# validation split: the fine-tuning data. Needs the finished synthesizer.
if [ "$stage" = all ] || [ "$stage" = wrong-programs ]; then
    if [ ! -f data/wrong-train.jsonl ]; then
        # `head` stops reading after its lines, and the converter then ends on SIGPIPE (141).
        "$KAREL" data convert data/train.kds - | head -n 200000 > data/train-first-200000.jsonl ||
            { status=("${PIPESTATUS[@]}"); [ "${status[0]}" = 141 ] && [ "${status[1]}" = 0 ]; }
        [ "$(wc -l < data/train-first-200000.jsonl)" = 200000 ]
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
    if [ -f runs/debug-fine/checkpoint.safetensors ]; then
        start=(--resume)
    else
        start=(--init runs/debug/checkpoint.safetensors)
    fi
    nice -n 19 "$KAREL" train debugger --stage finetune --data data/wrong-train.jsonl \
        --val data/wrong-val.jsonl --val-size 300 --out runs/debug-fine --steps 4000 --lr 0.001 \
        --decay-every 100000 --decay-rate 0.5 --validate-every 500 --checkpoint-every 500 \
        --quiet "${start[@]}"
fi

# The debugger without TraceEmbed, pre-trained as the TraceEmbed one for its first 8,000 steps
# (the mutation benchmark compares it with runs/debug-8000).
if [ "$stage" = all ] || [ "$stage" = debugger-plain ]; then
    nice -n 19 "$KAREL" train debugger --no-trace-embed --data data/train.kds --val data/val.kds \
        --val-size 300 --out runs/debug-plain --steps 8000 --lr 0.003 --decay-every 8000 \
        --decay-rate 0.5 --validate-every 1000 --checkpoint-every 1000 --quiet \
        $(resume_flag runs/debug-plain)
fi

# The built-in models: the final synthesizer and fine-tuned debugger without optimizer state.
if [ "$stage" = all ] || [ "$stage" = export ]; then
    "$KAREL" model export runs/synth/checkpoint.safetensors -o models/tiny-synthesizer.safetensors
    "$KAREL" model export runs/debug-fine/checkpoint.safetensors -o models/tiny-debugger.safetensors
fi
