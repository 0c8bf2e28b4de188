"""A stand-in for karel-for-synthesis 1.4.0's executor (``karel_for_synthesis.executor``), the
one SED-style pipelines call: change the import and keep the code.

``KarelExecutor(action_limit=1000).execute(code, grid, record_trace=False, strict=True)`` behaves
as the original: ``code`` is a sequence of token strings, ``grid`` a numpy array (15, 18, 18) (or
16 channels), and the result an ``ExecutionResult(result, trace)`` namedtuple:

- untraced, ``result`` is the final grid (a new array of the input's dtype and shape); a failed
  action (with ``strict``) or reaching the action limit raises ``ExecutorRuntimeException``;
  without ``strict`` failed actions are skipped;
- traced, failed actions do not stop the run; ``result`` is None when an action failed or the
  limit was reached, and ``trace`` is a ``KarelTrace(grids, events)`` truncated as the original
  truncates it, each event a ``KarelEvent(timestep, type, span, cond_span, cond_value,
  success)``;
- a program that does not parse raises ``ExecutorSyntaxException(str(tuple(code)))``.

Differences, on purpose:

- the trace's grids hold the true states (the original appends one mutable array again and
  again, so every grid after the first shows the final state);
- ``code`` may also be a string of space-separated tokens (the original would split it into
  characters and fail to parse it);
- an invalid grid (no hero, two heroes, a marker on a wall, ...) raises ``ValueError`` with the
  reason, where the original raises various errors or runs on it; and the program is parsed
  before the grid is read, so a bad program on a bad grid raises ``ExecutorSyntaxException``.
"""

from __future__ import annotations

import collections
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _native

__all__ = [
    "ExecutionResult",
    "ExecutorRuntimeException",
    "ExecutorSyntaxException",
    "KarelEvent",
    "KarelExecutor",
    "KarelTrace",
    "execute",
]


class ExecutorSyntaxException(Exception):
    """The program does not parse."""


class ExecutorRuntimeException(Exception):
    """A failed action (strict mode) or the action limit reached."""


ExecutionResult = collections.namedtuple("ExecutionResult", ["result", "trace"])
KarelTrace = collections.namedtuple("KarelTrace", ["grids", "events"])
KarelEvent = collections.namedtuple(
    "KarelEvent",
    ["timestep", "type", "span", "cond_span", "cond_value", "success"],
)

_REFERENCE_CHANNELS = 15
_CACHE_SIZE = 100_000


def _as_bool_grid(grid: Any) -> np.ndarray:
    """The grid as the original reads it: 15 channels, truthy values set."""
    array = np.asarray(grid)
    if array.ndim != 3 or array.shape[0] not in (15, 16):
        raise ValueError(
            f"the grid has shape {array.shape}; expected (15, 18, 18) or (16, 18, 18)"
        )
    if array.shape[0] != _REFERENCE_CHANNELS:
        array = array[:_REFERENCE_CHANNELS]
    if array.dtype != np.bool_:
        array = array != 0
    return array


class KarelExecutor:
    """karel-for-synthesis's ``KarelExecutor``, on karel-sed's VM."""

    def __init__(self, action_limit: int = 1000) -> None:
        self.action_limit = action_limit
        # Parsed programs by token tuple, least recently used first (the original keeps an LRU
        # cache of 100,000 programs too).
        self.code_cache: "collections.OrderedDict[tuple, Optional[_native.Program]]" = (
            collections.OrderedDict()
        )

    def _program(self, code: Union[Sequence[str], str]) -> _native.Program:
        key = tuple(code.split()) if isinstance(code, str) else tuple(code)
        cache = self.code_cache
        try:
            program = cache[key]
            cache.move_to_end(key)
        except KeyError:
            try:
                program = _native.parse(list(key))
            except (_native.KarelSyntaxError, TypeError):
                program = None
            cache[key] = program
            if len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        if program is None:
            raise ExecutorSyntaxException(str(key))
        return program

    def execute(
        self,
        code: Union[Sequence[str], str],
        inp: Any,
        record_trace: bool = False,
        strict: bool = True,
    ) -> ExecutionResult:
        program = self._program(code)
        grid = _as_bool_grid(inp)
        status, output, grids, events = _native.compat_execute(
            program, grid, record_trace, strict, self.action_limit
        )
        if output is not None:
            output = _like(output, inp)
        if not record_trace:
            if status != 0:
                raise ExecutorRuntimeException
            return ExecutionResult(output, None)
        trace = KarelTrace(
            [_like(g, inp) for g in grids],
            [KarelEvent(*event) for event in events],
        )
        return ExecutionResult(output, trace)


def _like(grid: np.ndarray, inp: Any) -> np.ndarray:
    """A 15-channel bool result in the input's dtype and shape (a 16th channel is copied)."""
    template = np.asarray(inp)
    if template.dtype == np.bool_ and template.shape[0] == _REFERENCE_CHANNELS:
        return grid
    out = np.empty(template.shape, dtype=template.dtype)
    out[:_REFERENCE_CHANNELS] = grid
    if template.shape[0] > _REFERENCE_CHANNELS:
        out[_REFERENCE_CHANNELS:] = template[_REFERENCE_CHANNELS:]
    return out


_standard_executor = KarelExecutor()


def execute(code: Union[Sequence[str], str], grid: Any, record_trace: bool = False) -> ExecutionResult:
    """``karel_for_synthesis.execute``: the shared executor with the default limit."""
    return _standard_executor.execute(code, grid, record_trace=record_trace)
