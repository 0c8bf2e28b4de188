"""Shared fixtures: the conformance corpora (gzipped copies in the repository's tests/data)."""

import gzip
import json
import os
import pathlib

import numpy as np
import pytest

REPOSITORY = pathlib.Path(os.environ.get("KAREL_REPO", pathlib.Path(__file__).resolve().parents[2]))
DATA = REPOSITORY / "tests" / "data"


def read_corpus(name):
    with gzip.open(DATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def dense(indices):
    """The bool (15, 18, 18) tensor of sorted indices."""
    array = np.zeros(15 * 18 * 18, dtype=bool)
    array[np.asarray(indices, dtype=np.int64)] = True
    return array.reshape(15, 18, 18)


@pytest.fixture(scope="session")
def runs():
    records = read_corpus("reference-runs")
    assert len(records) == 5000
    return records


@pytest.fixture(scope="session")
def editops_records():
    records = read_corpus("reference-editops")
    assert len(records) == 3000
    return records


@pytest.fixture(scope="session")
def parse_records():
    records = read_corpus("reference-parses")
    assert len(records) == 3000
    return records
