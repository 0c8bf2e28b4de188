"""Type stubs of the native module; the package ``karel_sed`` re-exports these names."""

from os import PathLike
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
DEFAULT_MAX_STEPS: int
MAX_BATCH: int
MAX_THREADS: int
MAX_GENERATE: int
MAX_MUTATIONS: int
MAX_EDIT_CELLS: int

ProgramLike = Union["Program", str, Sequence[str]]
TokenSequence = Union["Program", str, Sequence[str]]
EventTuple = Tuple[str, int, int, Union[None, bool, int], bool]

class KarelSyntaxError(ValueError):
    """A program that does not parse; ``position`` is the token position (or None)."""

    position: Optional[int]

class Program:
    """A parsed and compiled Karel program; ``Program(text)`` is ``parse(text)``."""

    def __init__(self, text: Union[str, Sequence[str]]) -> None: ...
    @property
    def tokens(self) -> List[str]:
        """The tokens, as strings."""
    def pretty(self) -> str:
        """An indented listing, one statement a line."""
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class World:
    """A Karel world (interior up to 16x16, walls, 0-9 markers a cell, the hero)."""

    @staticmethod
    def from_tensor(array: npt.NDArray[Union[np.bool_, np.uint8]]) -> World:
        """From a bool or uint8 array of shape (15, 18, 18) or (16, 18, 18)."""
    @staticmethod
    def from_indices(indices: Sequence[int]) -> World:
        """From the indices ``channel * 324 + row * 18 + col`` of the set cells."""
    @staticmethod
    def from_ascii(text: str) -> World:
        """From an ASCII map."""
    @staticmethod
    def from_json(grid: Dict[str, Any]) -> World:
        """From the dataset's grid object (``inpgrid_json``)."""
    def to_tensor(self) -> npt.NDArray[np.bool_]:
        """A new bool array of shape (15, 18, 18)."""
    def to_indices(self) -> List[int]:
        """The sorted indices of the set cells."""
    def to_ascii(self) -> str:
        """The ASCII map."""
    def to_json(self) -> Dict[str, Any]:
        """The dataset's grid object."""
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def hero(self) -> Tuple[int, int]:
        """The hero's (row, col) in the 18x18 array (rows grow to the north)."""
    @property
    def direction(self) -> str:
        """"north", "east", "south" or "west"."""
    def markers(self, row: int, col: int) -> int: ...
    def is_wall(self, row: int, col: int) -> bool: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class RunResult:
    """What ``run`` returns."""

    status: str
    output: Optional[World]
    steps: int
    failure: Optional[Tuple[str, int]]
    events: Optional[List[EventTuple]]
    timesteps: Optional[List[int]]
    states: Optional[List[World]]

class TaskReader(Iterator[str]):
    def __iter__(self) -> TaskReader: ...
    def __next__(self) -> str: ...

def parse(text: Union[str, Sequence[str]]) -> Program:
    """Parses a program; raises KarelSyntaxError."""

def run(
    program: ProgramLike, world: World, max_steps: int = 1000, trace: bool = False
) -> RunResult:
    """Runs a program on a world (strict verdict; with ``trace`` the reference's trace)."""

def run_batch(
    programs: Union[ProgramLike, Sequence[Union[Program, str]]],
    inputs: npt.NDArray[Union[np.bool_, np.uint8]],
    max_steps: int = 1000,
    threads: Optional[int] = None,
) -> Tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """Runs programs on (N, 15, 18, 18) inputs: (status int8 [0 ok, 1 crash, 2 timeout,
    3 syntax error], outputs bool (N, 15, 18, 18))."""

def compat_execute(
    program: Program,
    grid: npt.NDArray[Union[np.bool_, np.uint8]],
    record_trace: bool,
    strict: bool,
    action_limit: int,
) -> Tuple[
    int,
    Optional[npt.NDArray[np.bool_]],
    Optional[List[npt.NDArray[np.bool_]]],
    Optional[List[Tuple[int, str, Tuple[int, int], Optional[Tuple[int, int]], Any, bool]]],
]:
    """The native half of ``karel_sed.compat.KarelExecutor.execute``."""

def mutate(program: ProgramLike, n: int = 1, seed: int = 0, compat_original: bool = False) -> Program:
    """A chain of ``n`` mutations of SED's AST mutator."""

def editops(source: TokenSequence, target: TokenSequence) -> List[Tuple[str, int, int]]:
    """python-Levenshtein's ``editops`` over token sequences, exactly."""

def edit_ops(source: TokenSequence, target: TokenSequence) -> List[Tuple[str, int]]:
    """The debugger's KEEP/DELETE/INSERT[t]/REPLACE[t] stream with source positions."""

def generate_lines(count: int, seed: int, config_json: str) -> List[str]:
    """Generated tasks as lines of the standard format (see ``karel_sed.generate``)."""

def open_dataset(path: Union[str, PathLike[str]]) -> TaskReader:
    """Tasks of a dataset file as lines of the standard format (see ``karel_sed.read_dataset``)."""
