"""Every record of the reference corpora, through the Python API: `run`, `run_batch`,
`compat.KarelExecutor`, `editops` and `parse`."""

import numpy as np
import pytest

import karel_sed
from karel_sed.compat import ExecutorRuntimeException, KarelExecutor

from conftest import dense


def expected_status(record):
    return "ok" if record["status"] == "ok" else record["error"]


def test_run_matches_every_reference_run(runs):
    for i, record in enumerate(runs):
        world = karel_sed.World.from_indices(record["input"])
        result = karel_sed.run(record["program"], world)
        assert result.status == expected_status(record), i
        assert result.events is None and result.states is None
        if result.status == "ok":
            assert result.output.to_indices() == record["output"], i
        else:
            assert result.output is None
        traced = karel_sed.run(record["program"], world, trace=True)
        assert traced.status == result.status, i
        if result.status == "ok":
            assert traced.steps == result.steps, i
        if "events" in record:
            assert [list(e) for e in traced.events] == record["events"], i
        if traced.status == "ok":
            assert traced.states[-1] == traced.output, i
        assert traced.states[0] == world
        assert len(traced.timesteps) == len(traced.events)
        assert all(0 < t <= len(traced.states) for t in traced.timesteps)


def test_run_batch_matches_every_reference_run(runs):
    inputs = np.stack([dense(r["input"]) for r in runs])
    programs = [r["program"] for r in runs]
    status, outputs = karel_sed.run_batch(programs, inputs)
    assert status.dtype == np.int8 and status.shape == (len(runs),)
    assert outputs.dtype == np.bool_ and outputs.shape == (len(runs), 15, 18, 18)
    codes = {"ok": 0, "crash": 1, "timeout": 2}
    for i, record in enumerate(runs):
        assert status[i] == codes[expected_status(record)], i
        if record["status"] == "ok":
            assert np.flatnonzero(outputs[i]).tolist() == record["output"], i
        else:
            assert not outputs[i].any(), i
    # The same batch as uint8, and with parsed programs.
    parsed = [karel_sed.parse(p) for p in programs]
    status8, outputs8 = karel_sed.run_batch(parsed, inputs.astype(np.uint8))
    assert np.array_equal(status8, status) and np.array_equal(outputs8, outputs)


def test_compat_executor_matches_every_reference_run(runs):
    executor = KarelExecutor()
    for i, record in enumerate(runs):
        grid = dense(record["input"])
        code = record["program"].split()
        if record["status"] == "ok":
            result = executor.execute(code, grid)
            assert np.flatnonzero(result.result).tolist() == record["output"], i
            assert result.trace is None
        else:
            with pytest.raises(ExecutorRuntimeException):
                executor.execute(code, grid)
        traced = executor.execute(code, grid, record_trace=True)
        if record["status"] == "ok":
            assert np.array_equal(traced.result, result.result), i
        else:
            assert traced.result is None
        if "events" in record:
            events = [
                [e.type, e.span[0], e.span[1], e.cond_value, e.success]
                for e in traced.trace.events
            ]
            assert events == record["events"], i
        assert np.array_equal(traced.trace.grids[0], grid)
        if traced.trace.events:
            assert len(traced.trace.grids) >= traced.trace.events[-1].timestep


def test_editops_matches_every_reference_record(editops_records):
    for i, record in enumerate(editops_records):
        ops = karel_sed.editops(record["source"], record["target"])
        assert [list(op) for op in ops] == record["editops"], i
        # Token lists are read the same way.
        assert karel_sed.editops(record["source"].split(), record["target"].split()) == ops


def test_parse_matches_every_reference_record(parse_records):
    for i, record in enumerate(parse_records):
        try:
            program = karel_sed.parse(record["tokens"])
        except karel_sed.KarelSyntaxError:
            assert not record["valid"], i
        else:
            assert record["valid"], i
            assert str(program) == " ".join(record["tokens"].split()), i
