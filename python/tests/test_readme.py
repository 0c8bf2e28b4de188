"""The Python examples of README.md and python/README.md run as shown."""

import re

import pytest

from conftest import REPOSITORY

BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def examples():
    for name in ["README.md", "python/README.md"]:
        text = (REPOSITORY / name).read_text(encoding="utf-8")
        for block in BLOCK.findall(text):
            if "import karel_sed" in block:
                yield pytest.param(block, id=name)


@pytest.mark.parametrize("code", list(examples()))
def test_readme_example_runs(code, capsys):
    namespace = {}
    exec(compile(code, "<readme>", "exec"), namespace)
    assert "karel_sed" in namespace


def test_both_readmes_have_an_example():
    assert len(list(examples())) == 2
