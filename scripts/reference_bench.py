#!/usr/bin/env python3
"""Times the reference Python Karel implementation (PyPI `karel-for-synthesis`, the standalone copy
of the SED code's parser and executor) on the conformance corpus, for BENCHMARKS.md.

    python3 -m venv .venv && .venv/bin/pip install karel-for-synthesis==1.4.0
    .venv/bin/python scripts/reference_bench.py tests/data/reference-runs.jsonl.gz

Three measurements, each the best of --repeat runs (default 5):
  vm     programs parsed once beforehand, worlds built beforehand; time executor.execute() only
         (strict mode, 1000-step limit). Reports steps/s and ns/step, the steps being counted by
         the executor's own Timeout counter.
  e2e    what `karel exec` does: for each JSON line, decode it, build the world, parse the program
         (a fresh executor, so its compile cache is empty), execute, encode the JSON answer.
         With --trace, executes in trace mode and encodes the events too.
  parse  programs/s of the reference parser on the corpus' programs.

With --karel PATH, also times `PATH exec` on the same requests (a fresh process each time, JSON in
and out included), on 1 thread and on all cores; with --karel-vm PATH (the corpus_throughput
example), the in-process VM on the same corpus. Speed-ups against the reference are added.
"""
import argparse
import gzip
import json
import os
import subprocess
import tempfile
import time

import numpy as np
from karel_for_synthesis import errors as kerrors
from karel_for_synthesis.executor import KarelExecutor
from karel_for_synthesis.parser_for_synthesis import KarelForSynthesisParser


def open_text(path):
    return gzip.open(path, "rt") if path.endswith(".gz") else open(path)


def grid_of(indices):
    grid = np.zeros((15, 18, 18), dtype=bool)
    grid.flat[indices] = True
    return grid


def run_strict(executor, tokens, grid):
    try:
        return executor.execute(tokens, grid).result
    except kerrors.ExecutorRuntimeException:
        return None


def bench_vm(records, repeat):
    executor = KarelExecutor(action_limit=1000)
    jobs = [(tuple(r["program"].split()), grid_of(r["input"])) for r in records]
    for tokens, grid in jobs:  # warm the compile cache: parsing is excluded
        run_strict(executor, tokens, grid)
    counted = [0]
    original_inc = kerrors.Timeout.inc

    def counting_inc(self):
        counted[0] += 1
        return original_inc(self)

    kerrors.Timeout.inc = counting_inc
    for tokens, grid in jobs:
        run_strict(executor, tokens, grid)
    kerrors.Timeout.inc = original_inc
    steps = counted[0]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for tokens, grid in jobs:
            run_strict(executor, tokens, grid)
        best = min(best, time.perf_counter() - start)
    return {"runs": len(jobs), "steps": steps, "seconds": best,
            "steps_per_s": steps / best, "ns_per_step": best / steps * 1e9}


def plain(value):
    """A condition value (numpy bool) or repeat count as a JSON-encodable value."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return int(value)


def answer(executor, line, trace):
    request = json.loads(line)
    grid = grid_of(request["input"])
    tokens = request["program"].split()
    try:
        result = executor.execute(tokens, grid, record_trace=trace)
    except kerrors.ExecutorSyntaxException:
        return json.dumps({"status": "syntax_error"})
    except kerrors.ExecutorRuntimeException:
        return json.dumps({"status": "error"})
    response = {"status": "ok" if result.result is not None else "error"}
    if result.result is not None:
        response["output"] = [int(i) for i in np.flatnonzero(result.result)]
    if trace:
        response["events"] = [[e.type, int(e.span[0]), int(e.span[1]), plain(e.cond_value), bool(e.success)]
                               for e in result.trace.events]
    return json.dumps(response)


def bench_e2e(lines, repeat, trace):
    best = float("inf")
    for _ in range(repeat):
        executor = KarelExecutor(action_limit=1000)
        start = time.perf_counter()
        out = [answer(executor, line, trace) for line in lines]
        best = min(best, time.perf_counter() - start)
    return {"lines": len(out), "seconds": best, "lines_per_s": len(lines) / best}


def bench_parse(records, repeat):
    parser = KarelForSynthesisParser()
    programs = [r["program"].split() for r in records]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for tokens in programs:
            parser.parse(tokens)
        best = min(best, time.perf_counter() - start)
    return {"programs": len(programs), "seconds": best, "programs_per_s": len(programs) / best}


def bench_karel_exec(karel, requests, repeat, threads):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        f.write("\n".join(requests) + "\n")
        path = f.name
    try:
        best = float("inf")
        command = [karel, "exec", path] + (["--threads", str(threads)] if threads else [])
        for _ in range(max(repeat, 20)):
            start = time.perf_counter()
            done = subprocess.run(command, stdout=subprocess.PIPE, check=True)
            best = min(best, time.perf_counter() - start)
        answered = done.stdout.count(b"\n")
        assert answered == len(requests), (answered, len(requests))
    finally:
        os.unlink(path)
    return {"lines": len(requests), "threads": threads or os.cpu_count(), "seconds": best,
            "lines_per_s": len(requests) / best}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--karel", help="path of the karel binary to time against the reference")
    parser.add_argument("--karel-vm", help="path of the corpus_throughput example binary")
    args = parser.parse_args()
    with open_text(args.corpus) as f:
        records = [json.loads(line) for line in f]
    requests = [json.dumps({"program": r["program"], "input": r["input"]}) for r in records]
    traced = [json.dumps({"program": r["program"], "input": r["input"], "trace": True}) for r in records]
    report = {
        "vm": bench_vm(records, args.repeat),
        "e2e": bench_e2e(requests, args.repeat, trace=False),
        "e2e_trace": bench_e2e(traced, args.repeat, trace=True),
        "parse": bench_parse(records, args.repeat),
    }
    if args.karel_vm:
        done = subprocess.run([args.karel_vm, args.corpus], stdout=subprocess.PIPE, check=True)
        run = json.loads(done.stdout)
        run["speedup_vs_reference"] = run["steps_per_s"] / report["vm"]["steps_per_s"]
        report["karel_vm"] = run
    if args.karel:
        for name, lines, reference in [("exec", requests, report["e2e"]),
                                       ("exec_trace", traced, report["e2e_trace"])]:
            for threads in (1, 0):
                run = bench_karel_exec(args.karel, lines, args.repeat, threads)
                run["speedup_vs_reference"] = run["lines_per_s"] / reference["lines_per_s"]
                report[f"karel_{name}_{run['threads']}_threads"] = run
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
