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


def _runs(deps: list[str], file: str) -> bool:
    """Does a stage with `deps` depend on `file`: named itself, or inside a folder it names?"""
    return any(file == d or file.startswith(d + "/") for d in deps)


def test_closure_follows_lazy_imports_and_parent_packages():
    mods = stagedeps.compute(REPO)
    assert _runs(mods["forecast"], "src/datastory/forecast/engine.py")
    assert _runs(mods["forecast"], "src/datastory/forecast/__init__.py")
    assert _runs(mods["report"], "src/datastory/pack.py") and _runs(mods["report"], "src/datastory/present/email.py")
    # the deliver stage's function imports its package inside the function (a lazy import); its email inlines the
    # report's chart and takes its words from the report's email.json: it loads no pack and draws nothing
    assert "src/datastory/deliver" in mods["deliver"]
    assert not any(_runs(mods["deliver"], f"src/datastory/{m}") for m in ("pack.py", "present/figures.py",
                                                                          "present/words.py", "kpis.py"))
    # a stage follows its own branch of the dispatchers, not the others'
    assert not any(m.startswith("src/datastory/forecast") for m in mods["kpis"])
    assert not _runs(mods["forecast"], "src/datastory/forecast/file.py")
    assert "src/datastory/templates" in mods["report"]


def test_a_subpackage_the_stage_runs_whole_is_one_folder_dep():
    mods = stagedeps.compute(REPO)
    # the report stage runs every module of report/ and workbook/: one line each, no file of theirs listed
    for folder in ("src/datastory/report", "src/datastory/workbook"):
        assert folder in mods["report"]
        assert not any(m.startswith(folder + "/") for m in mods["report"])
    # the forecast stage does not run forecast/file.py (nor read backtest_plot.json): its files stay one by one
    assert "src/datastory/forecast" not in mods["forecast"]
    assert "src/datastory/forecast/engine.py" in mods["forecast"]


def test_collapse_takes_a_folder_only_when_every_file_of_it_is_run():
    tree = {"src/p/a": {"src/p/a/x.py", "src/p/a/y.py", "src/p/a/b/z.py"}, "src/p/a/b": {"src/p/a/b/z.py"},
            "src/p/c": {"src/p/c/u.py", "src/p/c/data.json"}}
    run = {"src/p/top.py", "src/p/a/x.py", "src/p/a/y.py", "src/p/a/b/z.py", "src/p/c/u.py"}
    assert stagedeps.collapse(run, tree) == ["src/p/a", "src/p/c/u.py", "src/p/top.py"]
    # one file of a/ not run: a/ stays file by file, its subfolder b/ (all run) becomes one line
    assert stagedeps.collapse(run - {"src/p/a/y.py"}, tree) == ["src/p/a/b", "src/p/a/x.py", "src/p/c/u.py",
                                                                "src/p/top.py"]
    assert stagedeps.collapse(set(), tree) == []


def test_byte_code_caches_do_not_count_as_a_folders_files(tmp_path):
    root = tmp_path
    pkg = root / "src" / "datastory" / "sub"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0")
    assert stagedeps._package_files(root) == {"src/datastory/sub": {"src/datastory/sub/__init__.py"}}
    # DVC leaves them out of the folder's hash too: .dvcignore says so
    assert "__pycache__/" in (REPO / ".dvcignore").read_text().splitlines()


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
