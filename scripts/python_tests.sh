#!/usr/bin/env bash
# Builds the Python package `karel_sed` (python/) into a virtual environment and runs its tests
# with pytest, karel-for-synthesis 1.4.0 installed for the comparison tests (KAREL_REQUIRE_K4S=1
# makes its absence a failure, not a skip). Run from anywhere; needs python3 with venv and cargo.
#
#   KAREL_PYTHON_VENV   the virtual environment (default: target/python-venv)
# It builds the `karel` binary too (debug, as `cargo test` does) and points KAREL_BIN at it for
# the tests that compare with the command line; without KAREL_BIN those tests skip.
#   extra arguments     passed to pytest (e.g. -k batch)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${KAREL_PYTHON_VENV:-$PWD/target/python-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# The maturin build backend runs the `maturin` program of the environment.
export PATH="$VENV/bin:$PATH"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
"${PIP[@]}" install "maturin>=1.7,<2" "numpy>=1.21" "pytest>=7" "karel-for-synthesis==1.4.0"
# The build uses Cargo.lock as committed.
MATURIN_PEP517_ARGS="--locked" "${PIP[@]}" install --no-build-isolation --force-reinstall --no-deps ./python
# The `karel` binary, for the tests that compare with it (a .kds file, `karel gen`).
cargo build --locked --quiet --bin karel
export KAREL_BIN="$PWD/target/debug/karel"
KAREL_REQUIRE_K4S=1 "$VENV/bin/pytest" -q python/tests "$@"
