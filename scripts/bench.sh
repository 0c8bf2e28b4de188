#!/usr/bin/env bash
# Runs the benchmarks of BENCHMARKS.md side by side with the reference Python implementation
# (PyPI karel-for-synthesis 1.4.0, installed into .venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet karel-for-synthesis==1.4.0
fi
cargo build --release --locked --bin karel --example corpus_throughput
echo "== reference (Python), karel's VM in-process and karel exec, same records"
.venv/bin/python scripts/reference_bench.py tests/data/reference-runs.jsonl.gz \
  --karel target/release/karel --karel-vm target/release/examples/corpus_throughput
echo "== karel in-process (criterion, one core)"
cargo bench --locked --bench vm -- --noplot
