"""The mutator, edit operations, the generator and the dataset readers through Python."""

import json
import os
import subprocess

import numpy as np
import pytest

import karel_sed
from conftest import DATA

PROGRAM = "DEF run m( WHILE c( frontIsClear c) w( putMarker move w) IF c( markersPresent c) i( turnLeft i) m)"


def test_mutate_is_seeded_and_returns_new_programs():
    p = karel_sed.parse(PROGRAM)
    for n in range(1, 6):
        for seed in range(20):
            mutant = karel_sed.mutate(p, n=n, seed=seed)
            assert isinstance(mutant, karel_sed.Program)
            assert mutant != p
            assert karel_sed.mutate(PROGRAM, n=n, seed=seed) == mutant
            assert karel_sed.parse(str(mutant)) == mutant
    assert len({str(karel_sed.mutate(p, seed=s)) for s in range(50)}) > 10
    karel_sed.mutate(p, compat_original=True)


def test_mutate_bounds():
    for n in [0, karel_sed.MAX_MUTATIONS + 1]:
        with pytest.raises(ValueError, match="mutations"):
            karel_sed.mutate(PROGRAM, n=n)
    with pytest.raises(OverflowError):
        karel_sed.mutate(PROGRAM, n=-1)
    with pytest.raises(karel_sed.KarelSyntaxError):
        karel_sed.mutate("DEF run m(")


def test_edit_ops_turn_the_source_into_the_target():
    for seed in range(30):
        source = karel_sed.parse(PROGRAM)
        target = karel_sed.mutate(source, n=1 + seed % 3, seed=seed)
        ops = karel_sed.edit_ops(source, target)
        # Replay the stream: every op advances over one source token except insertions.
        out, pointer = [], 0
        tokens = source.tokens
        for op, position in ops:
            assert position == pointer
            if op == "KEEP":
                out.append(tokens[pointer])
                pointer += 1
            elif op == "DELETE":
                pointer += 1
            elif op.startswith("REPLACE["):
                out.append(op[len("REPLACE["):-1])
                pointer += 1
            else:
                assert op.startswith("INSERT[")
                out.append(op[len("INSERT["):-1])
        assert pointer == len(tokens) and out == target.tokens
    assert karel_sed.edit_ops("DEF run m( m)", "DEF run m( m)") == [("KEEP", i) for i in range(4)]


def test_edit_errors():
    with pytest.raises(ValueError, match="vocabulary"):
        karel_sed.edit_ops("DEF run m( fly m)", PROGRAM)
    with pytest.raises(TypeError):
        karel_sed.editops(3, PROGRAM)
    with pytest.raises(TypeError):
        karel_sed.editops(["move", 3], PROGRAM)
    long = ["move"] * 5000
    with pytest.raises(ValueError, match="cells"):
        karel_sed.editops(long, ["turnLeft"] * 5000)
    # Any strings compare in editops, as in python-Levenshtein.
    assert karel_sed.editops(["a", "b"], ["b"]) == [("delete", 0, 0)]


def test_generate_makes_valid_reproducible_tasks():
    tasks = karel_sed.generate(20, seed=7)
    assert len(tasks) == 20
    assert karel_sed.generate(20, seed=7) == tasks
    assert karel_sed.generate(5, seed=7) == tasks[:5]
    assert karel_sed.generate(20, seed=8) != tasks
    assert len({" ".join(t["program_tokens"]) for t in tasks}) == 20
    for task in tasks:
        assert set(task) == {"guid", "program_tokens", "program_json", "examples"}
        assert len(task["examples"]) == 6
        program = karel_sed.parse(task["program_tokens"])
        for example in task["examples"]:
            world = karel_sed.World.from_json(example["inpgrid_json"])
            result = karel_sed.run(program, world)
            assert result.status == "ok"
            assert result.output == karel_sed.World.from_json(example["outgrid_json"])
            assert sorted(int(i.split(":")[0]) for i in example["outgrid_tensor"].split()) == result.output.to_indices()
    assert karel_sed.generate(0) == []


def test_generate_settings_and_bounds():
    small = karel_sed.generate(5, seed=1, config={"world": {"max_size": 4}})
    for task in small:
        grid = task["examples"][0]["inpgrid_json"]
        assert grid["rows"] <= 4 and grid["cols"] <= 4
    with pytest.raises(ValueError, match="config"):
        karel_sed.generate(1, config={"no_such_setting": 1})
    with pytest.raises(ValueError, match="config"):
        karel_sed.generate(1, config={"world": {"max_size": 99}})
    with pytest.raises(ValueError):
        karel_sed.generate(karel_sed.MAX_GENERATE + 1)
    with pytest.raises(ValueError):
        karel_sed.generate(-1)


def test_read_dataset_reads_every_format(tmp_path):
    standard = list(karel_sed.read_dataset(DATA / "pickle" / "tasks.jsonl"))
    assert len(standard) > 0
    key = lambda t: (t["program_tokens"], [(e["inpgrid_tensor"], e["outgrid_tensor"]) for e in t["examples"]])
    for name in ["py2.pkl", "py3.pkl"]:
        pickled = list(karel_sed.read_dataset(str(DATA / "pickle" / name)))
        assert [key(t) for t in pickled] == [key(t) for t in standard]
    # Generated tasks written as JSON lines read back the same.
    tasks = karel_sed.generate(10, seed=3)
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    assert list(karel_sed.read_dataset(path)) == tasks


def test_read_dataset_errors(tmp_path):
    with pytest.raises(OSError):
        karel_sed.read_dataset(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"program_tokens": ["DEF"]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        list(karel_sed.read_dataset(bad))
    broken = tmp_path / "broken.kds"
    broken.write_bytes(b"not a dataset")
    with pytest.raises(ValueError):
        list(karel_sed.read_dataset(broken))


def karel_binary():
    """The `karel` binary named by KAREL_BIN (scripts/python_tests.sh sets it); None without."""
    path = os.environ.get("KAREL_BIN")
    if path and not os.path.exists(path):
        raise FileNotFoundError(f"KAREL_BIN={path} does not exist")
    return path


def test_read_dataset_reads_the_binary_format(tmp_path):
    karel = karel_binary()
    if karel is None:
        pytest.skip("KAREL_BIN is not set: no `karel` binary to write a .kds file")
    tasks = karel_sed.generate(12, seed=9)
    source = tmp_path / "tasks.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    binary = tmp_path / "tasks.kds"
    subprocess.run([karel, "data", "convert", str(source), str(binary)], check=True, capture_output=True)
    assert list(karel_sed.read_dataset(binary)) == tasks


def test_generate_equals_karel_gen(tmp_path):
    karel = karel_binary()
    if karel is None:
        pytest.skip("KAREL_BIN is not set: no `karel` binary to compare with")
    out = subprocess.run(
        [karel, "gen", "--count", "15", "--seed", "4", "-o", "-"], check=True, capture_output=True, text=True
    ).stdout
    assert [json.loads(line) for line in out.splitlines()] == karel_sed.generate(15, seed=4)
