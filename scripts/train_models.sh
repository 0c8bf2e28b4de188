#!/usr/bin/env bash
# Trains the built-in models (`models/README.md`): the commands, in order, that produce them.
# Every stage resumes where it stopped (`--resume` when its run directory holds a checkpoint), so
# the script can be run again after an interruption, on this machine or another one with the same
# build; the runs' checkpoints and metrics logs are committed while training goes on.
#
#   scripts/train_models.sh [STAGE]      STAGE: data | synthesizer (default: every stage in turn)
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
