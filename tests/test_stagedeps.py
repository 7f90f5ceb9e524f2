"""Every stage's src/ deps in dvc.yaml are exactly the modules its command and notebook import."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from datastory import stagedeps

REPO = Path(__file__).resolve().parents[1]


def test_dvc_yaml_deps_are_each_stages_import_closure():
    changes = stagedeps.check(REPO)
    fix = "\n".join(line for c in changes for line in c.lines())
    assert not changes, ("dvc.yaml's src/ deps differ from the stages' import closures; change these lines "
                         f"(or run `datastory stage-deps --write`):\n{fix}")


def test_closure_follows_lazy_imports_and_parent_packages():
    mods = stagedeps.compute(REPO)
    assert "src/datastory/forecast/engine.py" in mods["forecast"]
    assert "src/datastory/forecast/__init__.py" in mods["forecast"]
    assert "src/datastory/pack.py" in mods["report"] and "src/datastory/pack.py" in mods["deliver"]
    # deliver's email draws the report's figures (a lazy import inside a function)
    assert "src/datastory/present/figures.py" in mods["deliver"]   # imported inside a function
    # a stage follows its own branch of the dispatchers, not the others'
    assert not any(m.startswith("src/datastory/forecast/") for m in mods["kpis"])
    assert "src/datastory/forecast/file.py" not in mods["forecast"]
    assert "src/datastory/templates" in mods["report"]


def _project(tmp_path: Path) -> Path:
    for rel in ("src", "notebooks"):
        shutil.copytree(REPO / rel, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    return tmp_path


def test_a_new_import_names_the_line_to_add_and_write_fixes_it(tmp_path):
    root = _project(tmp_path)
    (root / "src/datastory/novelty.py").write_text('"""A new module."""\n')
    kpis = root / "src/datastory/kpis.py"
    kpis.write_text(kpis.read_text().replace("from __future__ import annotations\n",
                                             "from __future__ import annotations\n\nfrom . import novelty\n", 1))
    changes = stagedeps.check(root)
    lines = [line for c in changes for line in c.lines()]
    assert "dvc.yaml stage 'kpis' deps: add      - src/datastory/novelty.py" in lines
    touched = {c.stage for c in changes}
    assert "kpis" in touched and "forecast" not in touched and "sample" not in touched
    stagedeps.write(root)
    assert stagedeps.check(root) == []
    text = (root / "dvc.yaml").read_text()
    assert text.count("- src/datastory/novelty.py") == len(touched)
    assert "# Each stage's src/ deps" in text   # comments survive the rewrite


def test_a_removed_module_names_the_line_to_remove(tmp_path):
    root = _project(tmp_path)
    (root / "src/datastory/closures.py").unlink()
    config = root / "src/datastory/config.py"
    config.write_text(config.read_text().replace("        from .closures import check\n",
                                                 "        def check(v):\n            return v\n"))
    calendar = root / "src/datastory/forecast/calendar.py"
    calendar.write_text(calendar.read_text().replace("from ..closures import FIX, check  # noqa: F401  (re-exported)\n",
                                                     "").replace("from ..closures import parse as _parse\n", ""))
    lines = [line for c in stagedeps.check(root) for line in c.lines()]
    assert "dvc.yaml stage 'ingest' deps: remove   - src/datastory/closures.py" in lines


def test_imports_resolves_relative_and_ignores_other_packages():
    tree = ast.parse("import os\nfrom .. import io\nfrom ..config import Paths\nfrom . import engine\n"
                     "import numpy as np\n")
    known = {"datastory", "datastory.io", "datastory.config", "datastory.forecast", "datastory.forecast.engine"}
    found = stagedeps.imports(tree, "datastory.forecast.views", False, known.__contains__)
    assert found == known


def test_notebook_imports_skip_magics():
    nb = ('{"cells": [{"cell_type": "code", "source": ["%matplotlib inline\\n", "from datastory import kpis\\n"]},'
          ' {"cell_type": "markdown", "source": ["import datastory.io"]}]}')
    assert stagedeps.notebook_imports(nb, {"datastory", "datastory.kpis"}.__contains__) == {"datastory",
                                                                                            "datastory.kpis"}


def test_unknown_stage_is_refused():
    with pytest.raises(KeyError):
        stagedeps.stage_modules(REPO, "nonesuch")
