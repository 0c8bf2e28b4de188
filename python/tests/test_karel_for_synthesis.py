"""`karel_sed.compat.KarelExecutor` against karel-for-synthesis 1.4.0 itself, on random programs
and worlds: results, exceptions, trace events, and trace grids where the original's are true
states (its first grid; the others alias its final state).

Skipped when karel-for-synthesis is not installed, unless KAREL_REQUIRE_K4S=1 (set by
scripts/python_tests.sh): then its absence fails the test."""

import os
import random

import numpy as np
import pytest

import karel_sed
from karel_sed import compat

try:
    from karel_for_synthesis import executor as k4s
    from karel_for_synthesis import errors as k4s_errors
except ImportError:  # pragma: no cover - depends on the environment
    k4s = None

if k4s is None and os.environ.get("KAREL_REQUIRE_K4S") == "1":
    raise ImportError("karel-for-synthesis is required (KAREL_REQUIRE_K4S=1): pip install karel-for-synthesis==1.4.0")

pytestmark = pytest.mark.skipif(k4s is None, reason="karel-for-synthesis is not installed")


def random_cases(count, seed):
    """Programs of the generator, their mutants, and the generator's worlds with random edits."""
    rng = random.Random(seed)
    tasks = karel_sed.generate(count // 4, seed=seed)
    cases = []
    for task in tasks:
        program = karel_sed.parse(task["program_tokens"])
        for example in task["examples"][:2]:
            world = karel_sed.World.from_json(example["inpgrid_json"])
            cases.append((program.tokens, world.to_tensor()))
            mutant = karel_sed.mutate(program, n=rng.randint(1, 3), seed=rng.randrange(1 << 30))
            cases.append((mutant.tokens, world.to_tensor()))
    return cases


def test_compat_executor_equals_karel_for_synthesis():
    ours = compat.KarelExecutor()
    theirs = k4s.KarelExecutor()
    outcomes = set()
    for code, grid in random_cases(400, seed=11):
        try:
            expected = theirs.execute(code, grid)
        except k4s_errors.ExecutorRuntimeException:
            with pytest.raises(compat.ExecutorRuntimeException):
                ours.execute(code, grid)
            outcomes.add("error")
        else:
            got = ours.execute(code, grid)
            assert got.trace is None
            assert got.result.dtype == expected.result.dtype
            assert np.array_equal(got.result, expected.result), code
            outcomes.add("ok")
        expected = theirs.execute(code, grid, record_trace=True)
        got = ours.execute(code, grid, record_trace=True)
        assert (got.result is None) == (expected.result is None), code
        if expected.result is not None:
            assert np.array_equal(got.result, expected.result)
        assert [tuple(e) for e in got.trace.events] == [
            (e.timestep, e.type, tuple(e.span), None if e.cond_span is None else tuple(e.cond_span),
             e.cond_value if e.cond_value is None else (int(e.cond_value) if e.type == "repeat" else bool(e.cond_value)),
             bool(e.success))
            for e in expected.trace.events
        ], code
        assert len(got.trace.grids) == len(expected.trace.grids), code
        assert np.array_equal(got.trace.grids[0], expected.trace.grids[0])
        if expected.result is not None and len(expected.trace.grids) > 1:
            # The original's later grids all alias its final state.
            assert np.array_equal(got.trace.grids[-1], expected.trace.grids[-1])
    assert outcomes == {"ok", "error"}


def test_non_strict_runs_and_limits_agree():
    for limit in [1, 7, 50]:
        ours = compat.KarelExecutor(action_limit=limit)
        theirs = k4s.KarelExecutor(action_limit=limit)
        for code, grid in random_cases(80, seed=limit):
            for strict in [True, False]:
                try:
                    expected = theirs.execute(code, grid, strict=strict)
                except k4s_errors.ExecutorRuntimeException:
                    with pytest.raises(compat.ExecutorRuntimeException):
                        ours.execute(code, grid, strict=strict)
                else:
                    assert np.array_equal(ours.execute(code, grid, strict=strict).result, expected.result)


def test_syntax_errors_and_dtypes_agree():
    code, grid = random_cases(4, seed=5)[0]
    bad = ("DEF", "run", "m(", "fly", "m)")
    with pytest.raises(k4s_errors.ExecutorSyntaxException) as theirs:
        k4s.KarelExecutor().execute(bad, grid)
    with pytest.raises(compat.ExecutorSyntaxException) as ours:
        compat.KarelExecutor().execute(bad, grid)
    assert str(ours.value) == str(theirs.value)
    assert type(ours.value).__name__ == type(theirs.value).__name__
    for dtype in [np.uint8, np.float32, np.int64]:
        expected = k4s.KarelExecutor().execute(code, grid.astype(dtype))
        got = compat.KarelExecutor().execute(code, grid.astype(dtype))
        assert got.result.dtype == expected.result.dtype == dtype
        assert np.array_equal(got.result, expected.result)
    sixteen = np.concatenate([grid, np.zeros((1, 18, 18), bool)])
    expected = k4s.KarelExecutor().execute(code, sixteen)
    got = compat.KarelExecutor().execute(code, sixteen)
    assert got.result.shape == expected.result.shape == (16, 18, 18)
    assert np.array_equal(got.result, expected.result)
