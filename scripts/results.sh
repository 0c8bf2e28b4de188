#!/usr/bin/env bash
# Runs every evaluation behind docs/results.md with the models of scripts/train_models.sh, and
# keeps each JSON report (gzipped) and Markdown table in $OUT (default docs/reports/final). Each
# evaluation resumes where it stopped (`karel eval --resume`) and a finished one (its .json.gz
# exists) is skipped, so the script can be run again after an interruption. Beside each report,
# NAME.models.sha256 holds the digests of the models it evaluates: a report of other models is
# never resumed or taken as done.
#
#   scripts/results.sh [PART...]    PART: real | generated | mutation | timing (default: all)
#
# KAREL: the binary (default target/release/karel, built first if missing).
# SYNTHESIZER, DEBUGGER: the models (default: the built-in files in models/).
# DEBUGGER_8000, DEBUGGER_PLAIN: the pre-trained TraceEmbed debugger at step 8,000 and the one
#   without TraceEmbed at the same step, for the mutation benchmark (default: runs/).
# LIMIT: evaluate only the first LIMIT tasks of each split, to try the script (OUT then defaults
#   to data/results-try-LIMIT; the reports of docs/results.md have no limit).
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
limit=()
if [ -n "${LIMIT:-}" ]; then
    limit=(--limit "$LIMIT")
    OUT=${OUT:-data/results-try-$LIMIT}
fi
OUT=${OUT:-docs/reports/final}
REAL=../shared/data/val-short-tasks.jsonl
GENERATED=data/test.kds
parts=${*:-real generated mutation timing}
mkdir -p "$OUT"
models=(--synthesizer "$SYNTHESIZER" --debugger "$DEBUGGER")

# pending NAME MODEL...: true if report NAME is still to be made (or finished) with these models;
# stops the script if $OUT holds a report of that name from other models, or a model is missing.
pending() {
    local name=$1 model
    shift
    for model in "$@"; do
        if [ ! -f "$model" ]; then
            echo "$name: no model $model (scripts/train_models.sh makes it)" >&2
            exit 1
        fi
    done
    local digests
    digests=$(sha256sum "$@")
    if [ -f "$OUT/$name.models.sha256" ]; then
        if [ "$(cat "$OUT/$name.models.sha256")" != "$digests" ]; then
            echo "$OUT/$name: a report of other models ($OUT/$name.models.sha256)" >&2
            exit 1
        fi
    else
        echo "$digests" > "$OUT/$name.models.sha256"
    fi
    if [ -f "$OUT/$name.json.gz" ]; then
        echo "$name: done ($OUT/$name.json.gz)"
        return 1
    fi
}

# eval_to NAME ARGS...: `karel eval ARGS` with the two models into $OUT/NAME.{json.gz,md},
# resumed if unfinished.
eval_to() {
    local name=$1
    shift
    pending "$name" "$SYNTHESIZER" "$DEBUGGER" || return 0
    local json="$OUT/$name.json" resume=()
    if [ -f "$json" ]; then resume=(--resume); fi
    echo "$name: karel eval $*"
    nice -n 19 "$KAREL" eval "${models[@]}" "$@" --json "$json" "${resume[@]}" \
        --markdown "$OUT/$name.md"
    gzip -9 -f "$json"
}

for part in $parts; do
    case $part in
    # Table 1 on all 732 real tasks: the synthesizer alone (greedy, beam 32), each search after
    # it, the error against K, and plain beams as wide as the debugger searches' programs.
    real)
        eval_to real --data "$REAL" "${limit[@]}" --decode both \
            --search best-first+rewrite,best-first,greedy,rewrite --steps 1,2,5,10,25,50,100 \
            --compare-beam --plot "$OUT/real-curve.svg"
        # The default search without the simplification of its answer (as in the original), and
        # with the rewrite stage's other rankings of the programs that pass.
        eval_to real-nosimplify --data "$REAL" "${limit[@]}" --decode both \
            --search best-first+rewrite --simplify 0
        for rank in nearest shortest; do
            eval_to "real-rank-$rank" --data "$REAL" "${limit[@]}" --decode both \
                --search best-first+rewrite --rank "$rank"
        done
        ;;
    # The same on a held-out generated split: the first 1,000 tasks of the test split.
    generated)
        eval_to generated --data "$GENERATED" --limit "${LIMIT:-1000}" --decode both \
            --search best-first+rewrite,best-first,greedy,rewrite --steps 1,2,5,10,25,50,100 \
            --compare-beam --plot "$OUT/generated-curve.svg"
        ;;
    # The mutation benchmark (one debugger call, beam 64, k = 1..5) of the final debugger and of
    # the pre-trained ones with and without TraceEmbed at equal steps, on the generated test
    # split. Each is one process that writes its report at the end.
    mutation)
        for which in final:"$DEBUGGER" trace-embed-8000:"$DEBUGGER_8000" \
            plain-8000:"$DEBUGGER_PLAIN"; do
            name=mutation-${which%%:*}
            model=${which#*:}
            pending "$name" "$model" || continue
            if [ -f "$OUT/$name.json" ]; then
                # Written whole at the end: only its compression was left.
                gzip -9 -f "$OUT/$name.json"
                continue
            fi
            nice -n 19 "$KAREL" eval --mutation-bench --data "$GENERATED" \
                --limit "${LIMIT:-1000}" --debugger "$model" --debugger-beam 64 \
                --json "$OUT/$name.json" --markdown "$OUT/$name.md"
            gzip -9 -f "$OUT/$name.json"
        done
        ;;
    # The default search alone (greedy decoding, best-first+rewrite, K = 100), for its time per
    # task and the shares of the networks and the VM (BENCHMARKS.md).
    timing)
        eval_to timing --data "$REAL" "${limit[@]}" --decode greedy
        ;;
    *)
        echo "unknown part: $part (real, generated, mutation, timing)" >&2
        exit 2
        ;;
    esac
done
