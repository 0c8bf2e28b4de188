"""Programs, worlds and runs through the Python API: round trips, and errors for bad input that
are Python exceptions with the library's message, never a crash of the interpreter."""

import pickle

import numpy as np
import pytest

import karel_sed
from karel_sed import KarelSyntaxError, Program, World

MAP = """
+----------+
|. . # 2 . |
|.>. . . 9 |
|. . . # . |
+----------+
"""


def test_programs_parse_print_and_compare():
    text = "DEF run m( REPEAT R=3 r( IF c( not c( frontIsClear c) c) i( turnLeft i) move r) m)"
    p = karel_sed.parse(text)
    assert str(p) == text and p.tokens == text.split() and len(p) == len(text.split())
    assert Program(text) == p and hash(Program(text)) == hash(p)
    assert karel_sed.parse(p.tokens) == p
    assert karel_sed.parse("  DEF run\nm(  REPEAT R=3 r( IF c( not c( frontIsClear c) c) i( turnLeft i) move r) m) ") == p
    assert p.pretty().splitlines()[0] == "DEF run m("
    assert "REPEAT R=3 r(" in p.pretty()
    assert pickle.loads(pickle.dumps(p)) == p
    assert repr(p) == f'Program("{text}")'
    assert p != karel_sed.parse("DEF run m( m)") and p != text


@pytest.mark.parametrize(
    "text, position",
    [
        ("DEF run m( move", None),
        ("DEF run m( jump m)", 3),
        ("DEF run m( REPEAT R=11 r( move r) m)", 4),
        ("DEF run m( move m) move", 5),
        ("", None),
    ],
)
def test_syntax_errors_name_the_token(text, position):
    with pytest.raises(KarelSyntaxError) as caught:
        karel_sed.parse(text)
    assert isinstance(caught.value, ValueError)
    assert caught.value.position == position
    assert str(caught.value)
    with pytest.raises(KarelSyntaxError):
        karel_sed.run(text, World.from_ascii(MAP))


def test_programs_of_the_wrong_type_are_type_errors():
    for value in [3, None, [1, 2], b"DEF run m( m)"]:
        with pytest.raises(TypeError):
            karel_sed.parse(value)


def test_worlds_round_trip_through_every_constructor():
    w = World.from_ascii(MAP)
    assert (w.rows, w.cols, w.hero, w.direction) == (3, 5, (2, 1), "east")
    assert w.markers(3, 4) == 2 and w.markers(2, 5) == 9 and w.markers(0, 0) == 0
    assert w.is_wall(3, 3) and w.is_wall(0, 1) and not w.is_wall(2, 2)
    tensor = w.to_tensor()
    assert tensor.dtype == np.bool_ and tensor.shape == (15, 18, 18)
    assert np.flatnonzero(tensor).tolist() == w.to_indices()
    assert World.from_tensor(tensor) == w
    assert World.from_tensor(tensor.astype(np.uint8)) == w
    assert World.from_tensor(np.concatenate([tensor, np.zeros((1, 18, 18), bool)])) == w
    # A non-contiguous view reads the same.
    wide = np.zeros((15, 18, 36), dtype=bool)
    wide[:, :, ::2] = tensor
    assert World.from_tensor(wide[:, :, ::2]) == w
    assert World.from_indices(w.to_indices()) == w
    assert World.from_indices(list(reversed(w.to_indices()))) == w
    assert World.from_ascii(w.to_ascii()) == w and str(w) == w.to_ascii()
    assert World.from_json(w.to_json()) == w
    assert pickle.loads(pickle.dumps(w)) == w
    assert hash(World.from_indices(w.to_indices())) == hash(w)
    assert len({w, World.from_ascii(MAP)}) == 1
    assert "3x5" in repr(w)


@pytest.mark.parametrize(
    "array, error",
    [
        (np.zeros((15, 18, 18), dtype=np.float32), TypeError),
        (np.zeros((15, 18, 18), dtype=np.int64), TypeError),
        ([[0]], TypeError),
        ("+--+", TypeError),
        (np.zeros((14, 18, 18), dtype=bool), ValueError),
        (np.zeros((15, 18), dtype=bool), ValueError),
        (np.zeros((15, 18, 17), dtype=bool), ValueError),
        (np.zeros((1, 15, 18, 18), dtype=bool), ValueError),
        (np.zeros((15, 18, 18), dtype=bool), ValueError),  # no border, no hero
        (np.full((15, 18, 18), 2, dtype=np.uint8), ValueError),
    ],
)
def test_bad_tensors_are_clear_errors(array, error):
    with pytest.raises(error) as caught:
        World.from_tensor(array)
    assert str(caught.value)


def test_invalid_worlds_say_why():
    w = World.from_ascii(MAP)
    tensor = w.to_tensor()
    two_heroes = tensor.copy()
    two_heroes[0, 1, 1] = True
    with pytest.raises(ValueError, match="more than one hero"):
        World.from_tensor(two_heroes)
    no_hero = tensor.copy()
    no_hero[:4] = False
    with pytest.raises(ValueError, match="no hero"):
        World.from_tensor(no_hero)
    ten = np.concatenate([tensor, np.zeros((1, 18, 18), bool)])
    ten[15, 1, 1] = True
    with pytest.raises(ValueError):
        World.from_tensor(ten)
    with pytest.raises(ValueError, match="out of range"):
        World.from_indices([10**9])
    with pytest.raises(OverflowError):
        World.from_indices([-1])
    with pytest.raises(ValueError, match="ASCII"):
        World.from_ascii("+--+\n|>|\n+--+")
    with pytest.raises(ValueError):
        World.from_json({"rows": 3, "cols": 3, "hero": "9:9:east"})
    with pytest.raises(ValueError):
        World.from_json({"rows": "x"})


def test_runs_report_status_output_steps_and_traces():
    w = World.from_ascii(MAP)
    ok = karel_sed.run("DEF run m( move putMarker m)", w)
    assert ok.status == "ok" and ok.steps == 2 and ok.failure is None
    assert ok.output.hero == (2, 2) and ok.output.markers(2, 2) == 1
    assert ok.events is None and ok.timesteps is None and ok.states is None
    crash = karel_sed.run("DEF run m( turnRight turnRight move m)", w)
    assert crash.status == "crash" and crash.output is None
    assert crash.failure == ("move", 5)
    loop = karel_sed.run("DEF run m( WHILE c( noMarkersPresent c) w( turnLeft w) m)", w, max_steps=50)
    assert loop.status == "timeout" and loop.steps == 50
    traced = karel_sed.run("DEF run m( REPEAT R=2 r( move r) pickMarker m)", w, trace=True)
    assert traced.status == "crash"
    assert traced.events == [
        ("repeat", 3, 7, 2, True),
        ("move", 6, 6, None, True),
        ("repeat", 3, 7, 1, True),
        ("move", 6, 6, None, True),
        ("repeat", 3, 7, 0, True),
        ("pickMarker", 8, 8, None, False),
    ]
    assert traced.timesteps == [1, 1, 2, 2, 3, 3]
    assert [s.hero for s in traced.states] == [(2, 1), (2, 2), (2, 3)]
    with pytest.raises(TypeError):
        karel_sed.run("DEF run m( m)", w.to_tensor())
    with pytest.raises(OverflowError):
        karel_sed.run("DEF run m( m)", w, max_steps=2**32)


def test_a_trace_too_long_to_keep_is_refused():
    w = World.from_ascii(MAP)
    spin = "DEF run m( WHILE c( frontIsClear c) w( turnLeft turnLeft turnLeft turnLeft w) m)"
    assert karel_sed.run(spin, w, max_steps=2_000_000).status == "timeout"
    with pytest.raises(ValueError, match="max_steps"):
        karel_sed.run("DEF run m( REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( "
                      "REPEAT R=10 r( REPEAT R=10 r( REPEAT R=10 r( turnLeft r) r) r) r) r) r) r) m)",
                      w, max_steps=2**32 - 1, trace=True)
