"""karel_sed: the Karel language, VM, traces, mutator, edit operations, task generator and
dataset readers of karel-sed, for Python, with numpy arrays in and out.

Programs::

    p = karel_sed.parse("DEF run m( WHILE c( frontIsClear c) w( move w) m)")
    p.tokens, str(p), p.pretty()

Worlds are 15x18x18 boolean tensors (channels 0-3 hero facing N/E/S/W, 4 interior wall,
5 border wall, 6+k-1 exactly k markers)::

    w = karel_sed.World.from_ascii(text)     # or from_tensor, from_indices, from_json
    w.to_tensor(), w.to_indices(), w.to_ascii(), w.to_json()

Running::

    r = karel_sed.run(p, w, trace=True)      # r.status, r.output, r.steps, r.events, r.states
    status, outputs = karel_sed.run_batch(programs, inputs)   # numpy in, numpy out, all cores

Data: ``mutate``, ``editops`` (python-Levenshtein's, exactly), ``edit_ops`` (the debugger's
KEEP/DELETE/INSERT/REPLACE stream), ``generate`` and ``read_dataset`` (task dicts in the standard
JSON-lines layout). ``karel_sed.compat.KarelExecutor`` stands in for karel-for-synthesis's
executor.

Errors: a program that does not parse raises ``KarelSyntaxError`` (a ``ValueError``); an invalid
world, array or setting raises ``ValueError`` (``TypeError`` for a wrong type) with the reason.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

from . import _native
from ._native import (
    DEFAULT_MAX_STEPS,
    MAX_BATCH,
    MAX_EDIT_CELLS,
    MAX_GENERATE,
    MAX_MUTATIONS,
    MAX_THREADS,
    KarelSyntaxError,
    Program,
    RunResult,
    World,
    edit_ops,
    editops,
    mutate,
    parse,
    run,
    run_batch,
)

__version__: str = _native.__version__

__all__ = [
    "DEFAULT_MAX_STEPS",
    "MAX_BATCH",
    "MAX_EDIT_CELLS",
    "MAX_GENERATE",
    "MAX_MUTATIONS",
    "MAX_THREADS",
    "KarelSyntaxError",
    "Program",
    "RunResult",
    "World",
    "compat",
    "edit_ops",
    "editops",
    "generate",
    "mutate",
    "parse",
    "read_dataset",
    "run",
    "run_batch",
]


def generate(
    count: int, seed: int = 0, config: Optional[Mapping[str, Any]] = None
) -> List[Dict[str, Any]]:
    """Generates ``count`` synthesis tasks (at most ``MAX_GENERATE``) as dataset records.

    Each record is a dict in the standard JSON-lines layout: ``guid``, ``program_tokens``,
    ``program_json`` and six ``examples`` (the first five given, the sixth held out), each with
    ``inpgrid_tensor``, ``outgrid_tensor``, ``inpgrid_json``, ``outgrid_json`` and ``actions``.
    The tasks are those ``karel gen --count COUNT --seed SEED`` writes with the same settings,
    in the same order. ``config`` holds generator settings (see ``docs/generator.md``); fields
    left out keep their defaults. Runs on all cores without the GIL.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative int, not {count!r}")
    config_json = "" if config is None else json.dumps(dict(config))
    return [json.loads(line) for line in _native.generate_lines(count, seed, config_json)]


def read_dataset(path: Union[str, "os.PathLike[str]"]) -> Iterator[Dict[str, Any]]:
    """Iterates over the tasks of a dataset file as dicts of the standard JSON-lines layout.

    The extension names the format: ``.jsonl`` (or ``.json``) standard JSON lines, ``.pkl``
    SED's pickles with the ``.index`` file beside them, ``.kds`` karel-sed's binary format.
    A file that cannot be opened raises ``OSError``; a malformed record ``ValueError`` naming
    its place in the file.
    """
    reader = _native.open_dataset(os.fspath(path))
    return (json.loads(line) for line in reader)


from . import compat  # noqa: E402  (compat uses the names above)
