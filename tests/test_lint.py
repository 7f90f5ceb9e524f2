"""`make lint` as part of the tests: ruff on the code, and notebooks committed with their outputs stripped.

The style section asks for both; a test keeps them true on every `make test`, not only when someone runs lint.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make setup` installs the dev extra that holds it")
    return found


def test_ruff_finds_nothing():
    out = subprocess.run([_tool("ruff"), "check", "src", "tests", "bench"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_notebooks_are_committed_stripped():
    notebooks = sorted(str(p.relative_to(REPO)) for p in (REPO / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebook found"
    out = subprocess.run([_tool("nbstripout"), "--verify", *notebooks], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, f"run `make format` (nbstripout): {out.stdout}{out.stderr}"


def test_the_stripped_check_can_fail(tmp_path):
    nb = tmp_path / "x.ipynb"
    nb.write_text('{"cells": [{"cell_type": "code", "execution_count": 3, "id": "a", "metadata": {}, '
                  '"outputs": [{"name": "stdout", "output_type": "stream", "text": ["hi"]}], "source": ["1"]}], '
                  '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}', encoding="utf-8")
    out = subprocess.run([_tool("nbstripout"), "--verify", str(nb)], capture_output=True, text=True)
    assert out.returncode != 0
