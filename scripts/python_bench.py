#!/usr/bin/env python3
"""Times the Python package `karel_sed` against karel-for-synthesis 1.4.0 in the same process, on
the 5,000 runs of the conformance corpus, for BENCHMARKS.md.

    scripts/python_tests.sh          # builds karel_sed into target/python-venv (tests too)
    target/python-venv/bin/python scripts/python_bench.py tests/data/reference-runs.jsonl.gz

Each figure is the best of --repeat passes over the corpus (default 5), in runs per second:

  k4s.execute           karel-for-synthesis's KarelExecutor.execute, one call at a time, strict,
                        1000-step limit; its compile cache warm (every program parsed before)
  k4s.execute (cold)    the same with a fresh executor each pass: every program parsed
  compat.execute        karel_sed.compat.KarelExecutor.execute, the same calls, cache warm
  compat.execute (cold) a fresh compat executor each pass
  run                   karel_sed.run(program, world) one call at a time, Programs and Worlds built
                        beforehand
  run_batch             karel_sed.run_batch(program strings, inputs): one call for the corpus,
                        parsing included, on all cores and on one thread; and with Programs parsed
                        beforehand
  numpy copy            inputs.copy() (24 MB read, 24 MB written): the memory floor of any
                        interface that takes and returns dense tensors, for scale

Every side's results are checked against the corpus before timing. --json FILE writes the
figures and the machine's description.
"""
import argparse
import gzip
import json
import os
import platform
import time

import numpy as np

import karel_sed
from karel_sed import compat
from karel_for_synthesis import errors as k4s_errors
from karel_for_synthesis.executor import KarelExecutor as K4SExecutor


def load(path):
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as f:
        return [json.loads(line) for line in f]


def dense(indices):
    grid = np.zeros(15 * 18 * 18, dtype=bool)
    grid[indices] = True
    return grid.reshape(15, 18, 18)


def best_of(repeat, run):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def execute_all(executor, cases, runtime_error):
    ok = 0
    for code, grid in cases:
        try:
            executor.execute(code, grid)
            ok += 1
        except runtime_error:
            pass
    return ok


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    records = load(args.corpus)
    n = len(records)
    cases = [(tuple(r["program"].split()), dense(r["input"])) for r in records]
    expected_ok = sum(r["status"] == "ok" for r in records)
    inputs = np.stack([grid for _, grid in cases])
    texts = [r["program"] for r in records]
    programs = [karel_sed.parse(t) for t in texts]
    worlds = [karel_sed.World.from_indices(r["input"]) for r in records]

    # Check every side on the corpus first.
    k4s = K4SExecutor()
    ours = compat.KarelExecutor()
    assert execute_all(k4s, cases, k4s_errors.ExecutorRuntimeException) == expected_ok
    assert execute_all(ours, cases, compat.ExecutorRuntimeException) == expected_ok
    status, outputs = karel_sed.run_batch(texts, inputs)
    assert int((status == 0).sum()) == expected_ok
    for i, r in enumerate(records):
        if r["status"] == "ok":
            assert np.flatnonzero(outputs[i]).tolist() == r["output"]

    figures = {}

    def record(name, seconds):
        figures[name] = {"seconds": seconds, "runs_per_second": n / seconds}
        print(f"{name:34s} {n / seconds:14,.0f} runs/s  ({seconds * 1e3:9.2f} ms per pass)", flush=True)

    record("k4s.execute", best_of(args.repeat, lambda: execute_all(k4s, cases, k4s_errors.ExecutorRuntimeException)))
    record(
        "k4s.execute (cold)",
        best_of(args.repeat, lambda: execute_all(K4SExecutor(), cases, k4s_errors.ExecutorRuntimeException)),
    )
    record("compat.execute", best_of(args.repeat, lambda: execute_all(ours, cases, compat.ExecutorRuntimeException)))
    record(
        "compat.execute (cold)",
        best_of(args.repeat, lambda: execute_all(compat.KarelExecutor(), cases, compat.ExecutorRuntimeException)),
    )
    record("run", best_of(args.repeat, lambda: [karel_sed.run(p, w) for p, w in zip(programs, worlds)]))
    batch_repeat = max(args.repeat, 20)
    record("run_batch, all cores", best_of(batch_repeat, lambda: karel_sed.run_batch(texts, inputs)))
    record("run_batch, 1 thread", best_of(batch_repeat, lambda: karel_sed.run_batch(texts, inputs, threads=1)))
    record("run_batch, parsed, all cores", best_of(batch_repeat, lambda: karel_sed.run_batch(programs, inputs)))
    # Not a competitor: the cost of touching the batch's memory once (read the inputs, write as
    # much), a floor for any dense-tensor interface.
    record("numpy: copy of the inputs", best_of(batch_repeat, lambda: inputs.copy()))

    base = figures["k4s.execute"]["runs_per_second"]
    cold = figures["k4s.execute (cold)"]["runs_per_second"]
    print()
    for name, figure in figures.items():
        if not name.startswith(("k4s", "numpy")):
            figure["vs_k4s_execute"] = figure["runs_per_second"] / base
            figure["vs_k4s_execute_cold"] = figure["runs_per_second"] / cold
            print(f"{name:34s} {figure['vs_k4s_execute']:8.0f}x warm  {figure['vs_k4s_execute_cold']:8.0f}x cold")
    report = {
        "corpus": os.path.basename(args.corpus),
        "runs": n,
        "repeat": args.repeat,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "karel_sed": karel_sed.__version__,
        "figures": figures,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
