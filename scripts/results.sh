#!/usr/bin/env bash
# Runs every evaluation behind docs/results.md with the models of scripts/train_models.sh, and
# keeps each JSON report (gzipped) and Markdown table in $OUT (default docs/reports/final). Each
# evaluation resumes where it stopped (`karel eval --resume`) and a finished one (its .json.gz
# exists) is skipped, so the script can be run again after an interruption.
#
#   scripts/results.sh [PART...]    PART: real | generated | mutation | timing (default: all)
#
# KAREL: the binary (default target/release/karel, built first if missing).
# SYNTHESIZER, DEBUGGER: the models (default: the built-in files in models/).
# DEBUGGER_8000, DEBUGGER_PLAIN: the pre-trained TraceEmbed debugger at step 8,000 and the one
#   without TraceEmbed at the same step, for the mutation benchmark (default: runs/).
# LIMIT: evaluate only the first LIMIT tasks of each split (to try the script; the reports of
#   docs/results.md have none).
set -euo pipefail
cd "$(dirname "$0")/.."

KAREL=${KAREL:-target/release/karel}
if [ ! -x "$KAREL" ]; then
    cargo build --release
fi
SYNTHESIZER=${SYNTHESIZER:-models/tiny-synthesizer.safetensors}
DEBUGGER=${DEBUGGER:-models/tiny-debugger.safetensors}
DEBUGGER_8000=${DEBUGGER_8000:-runs/debug-8000/checkpoint.safetensors}
DEBUGGER_PLAIN=${DEBUGGER_PLAIN:-runs/debug-plain/checkpoint.safetensors}
OUT=${OUT:-docs/reports/final}
REAL=../shared/data/val-short-tasks.jsonl
GENERATED=data/test.kds
mkdir -p "$OUT"
parts=${*:-real generated mutation timing}
limit=()
if [ -n "${LIMIT:-}" ]; then limit=(--limit "$LIMIT"); fi
models=(--synthesizer "$SYNTHESIZER" --debugger "$DEBUGGER")

# eval_to NAME ARGS...: `karel eval ARGS` into $OUT/NAME.{json.gz,md}, resumed if unfinished.
eval_to() {
    local name=$1
    shift
    local json="$OUT/$name.json"
    if [ -f "$json.gz" ]; then
        echo "$name: done ($json.gz)"
        return
    fi
    local resume=()
    if [ -f "$json" ]; then resume=(--resume); fi
    echo "$name: karel eval $*"
    nice -n 19 "$KAREL" eval "$@" --json "$json" "${resume[@]}" --markdown "$OUT/$name.md"
    gzip -9 -f "$json"
}

for part in $parts; do
    case $part in
    # Table 1 on all 732 real tasks: the synthesizer alone (greedy, beam 32), each search after
    # it, the error against K, and plain beams as wide as the debugger searches' programs.
    real)
        eval_to real "${models[@]}" --data "$REAL" "${limit[@]}" --decode both \
            --search best-first+rewrite,best-first,greedy,rewrite --steps 1,2,5,10,25,50,100 \
            --compare-beam --plot "$OUT/real-curve.svg"
        ;;
    # The same on a held-out generated split: the first 1,000 tasks of the test split.
    generated)
        eval_to generated "${models[@]}" --data "$GENERATED" --limit "${LIMIT:-1000}" \
            --decode both --search best-first+rewrite,best-first,greedy,rewrite \
            --steps 1,2,5,10,25,50,100 --compare-beam --plot "$OUT/generated-curve.svg"
        ;;
    # The mutation benchmark (one debugger call, beam 64, k = 1..5) of the final debugger and of
    # the pre-trained ones with and without TraceEmbed at equal steps, on the generated test split.
    mutation)
        for which in final:"$DEBUGGER" trace-embed-8000:"$DEBUGGER_8000" plain-8000:"$DEBUGGER_PLAIN"; do
            name=mutation-${which%%:*}
            if [ -f "$OUT/$name.json.gz" ]; then
                echo "$name: done"
                continue
            fi
            nice -n 19 "$KAREL" eval --mutation-bench --data "$GENERATED" \
                --limit "${LIMIT:-1000}" --debugger "${which#*:}" --debugger-beam 64 \
                --json "$OUT/$name.json" --markdown "$OUT/$name.md"
            gzip -9 -f "$OUT/$name.json"
        done
        ;;
    # The default search alone (greedy decoding, best-first+rewrite, K = 100), for its time per
    # task and the shares of the networks and the VM (BENCHMARKS.md).
    timing)
        eval_to timing "${models[@]}" --data "$REAL" "${limit[@]}" --decode greedy
        ;;
    *)
        echo "unknown part: $part (real, generated, mutation, timing)" >&2
        exit 2
        ;;
    esac
done
