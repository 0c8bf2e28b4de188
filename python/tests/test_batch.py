"""`run_batch`: results independent of the thread count, the GIL released while it runs, bounds
and errors."""

import threading
import time

import numpy as np
import pytest

import karel_sed
from conftest import dense

STATUS = {"ok": 0, "crash": 1, "timeout": 2}


def corpus_batch(runs):
    return [r["program"] for r in runs], np.stack([dense(r["input"]) for r in runs])


def test_one_thread_and_all_threads_agree(runs):
    programs, inputs = corpus_batch(runs)
    one = karel_sed.run_batch(programs, inputs, threads=1)
    for threads in [None, 2, 3, 7]:
        other = karel_sed.run_batch(programs, inputs, threads=threads)
        assert np.array_equal(one[0], other[0]) and np.array_equal(one[1], other[1])


def test_one_program_for_all_inputs_and_syntax_errors(runs):
    _, inputs = corpus_batch(runs[:50])
    program = "DEF run m( turnLeft m)"
    status, outputs = karel_sed.run_batch(program, inputs)
    assert (status == 0).all()
    for i in range(50):
        assert np.array_equal(outputs[i], karel_sed.run(program, karel_sed.World.from_tensor(inputs[i])).output.to_tensor())
    assert np.array_equal(karel_sed.run_batch([program], inputs)[1], outputs)
    assert np.array_equal(karel_sed.run_batch(karel_sed.parse(program), inputs)[1], outputs)
    mixed = [program if i % 2 else "DEF run m( fly m)" for i in range(50)]
    status, outputs = karel_sed.run_batch(mixed, inputs)
    assert (status[0::2] == 3).all() and (status[1::2] == 0).all()
    assert not outputs[0::2].any()
    with pytest.raises(karel_sed.KarelSyntaxError):
        karel_sed.run_batch("DEF run m( fly m)", inputs)


def test_step_limit_applies_to_every_run(runs):
    _, inputs = corpus_batch(runs[:20])
    spin = "DEF run m( WHILE c( noMarkersPresent c) w( turnLeft w) WHILE c( markersPresent c) w( turnLeft w) m)"
    status, _ = karel_sed.run_batch(spin, inputs, max_steps=77)
    assert (status == 2).all()


def test_an_empty_batch():
    status, outputs = karel_sed.run_batch([], np.zeros((0, 15, 18, 18), dtype=bool))
    assert status.shape == (0,) and outputs.shape == (0, 15, 18, 18)


def test_bad_batches_are_clear_errors(runs):
    _, inputs = corpus_batch(runs[:4])
    with pytest.raises(ValueError, match="3 programs for 4 inputs"):
        karel_sed.run_batch(["DEF run m( m)"] * 3, inputs)
    with pytest.raises(TypeError):
        karel_sed.run_batch([1, 2, 3, 4], inputs)
    with pytest.raises(TypeError):
        karel_sed.run_batch(17, inputs)
    with pytest.raises(TypeError):
        karel_sed.run_batch("DEF run m( m)", inputs.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        karel_sed.run_batch("DEF run m( m)", inputs[0])
    with pytest.raises(ValueError, match="threads"):
        karel_sed.run_batch("DEF run m( m)", inputs, threads=0)
    with pytest.raises(ValueError, match="threads"):
        karel_sed.run_batch("DEF run m( m)", inputs, threads=karel_sed.MAX_THREADS + 1)
    broken = inputs.copy()
    broken[2, :4] = False
    with pytest.raises(ValueError, match=r"inputs\[2\]: there is no hero"):
        karel_sed.run_batch("DEF run m( m)", broken)


def test_the_gil_is_released_while_a_batch_runs(runs):
    """A second Python thread keeps running Python code while a long batch runs."""
    _, inputs = corpus_batch(runs[:1])
    inputs = np.repeat(inputs, 64, axis=0)
    # Each run spins for its whole step limit.
    spin = "DEF run m( WHILE c( noMarkersPresent c) w( turnLeft w) WHILE c( markersPresent c) w( turnLeft w) m)"
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.01)
        before = len(ticks)
        start = time.perf_counter()
        status, _ = karel_sed.run_batch(spin, inputs, max_steps=3_000_000, threads=1)
        end = time.perf_counter()
    finally:
        done.set()
        counter.join()
    assert (status == 2).all()
    during = [t for t in ticks if start < t < end]
    # The batch takes a good fraction of a second; with the GIL held the counter would stop.
    assert end - start > 0.05
    assert len(during) >= 5, (before, len(during), end - start)
