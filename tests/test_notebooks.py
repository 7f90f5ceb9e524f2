"""Stage notebooks: their defaults agree with params/, they are stored stripped, and they run as-is."""

from __future__ import annotations

import ast

import nbformat
import papermill
import pytest
import yaml
from conftest import committed_params
from e2e import REPO, copy_repo, sh

from datastory import runner

NOTEBOOKS = {stage: (REPO / "notebooks" / f"{nb}.ipynb", params) for stage, (nb, params) in runner.NOTEBOOKS.items()}
# parameters a notebook adds to its params file's keys: the audience; where it writes (scratch/ by hand)
EXTRA = {stage: {"write_outputs"} | ({"audience"} if stage == "report" else set()) for stage in runner.NOTEBOOKS}


@pytest.mark.parametrize("stage", sorted(NOTEBOOKS))
def test_parameter_defaults_equal_the_params_file(stage):
    path, params_stage = NOTEBOOKS[stage]
    declared = papermill.inspect_notebook(str(path))
    expected = yaml.safe_load(committed_params(f"{params_stage}.yaml"))   # not an experiment's working copy
    assert set(declared) == set(expected) | EXTRA.get(stage, set())
    for key, value in expected.items():
        assert ast.literal_eval(declared[key]["default"]) == value, f"{path.name}: {key}"
        assert declared[key]["inferred_type_name"] != "None", f"{path.name}: {key} has no type"
        assert declared[key]["help"], f"{path.name}: {key} has no comment"


@pytest.mark.parametrize("stage", sorted(NOTEBOOKS))
def test_notebook_is_committed_stripped_and_thin(stage):
    nb = nbformat.read(NOTEBOOKS[stage][0], as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.source.splitlines())


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_with_their_defaults(tmp_path_factory):
    """nbval --nbval-lax runs each notebook in order, as an analyst opening it in Jupyter would."""
    root = copy_repo(tmp_path_factory.mktemp("nb"))
    sh(root, "datastory", "sample")
    res = sh(root, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
             *[f"notebooks/{p.name}" for p in sorted((root / "notebooks").glob("*.ipynb"))], check=False)
    assert res.returncode == 0, res.stdout[-6000:]
    assert "passed" in res.stdout and "failed" not in res.stdout
    # run by hand, they wrote under scratch/ and read each other's outputs there; the pipeline's are untouched
    assert (root / "scratch/data/processed/churn_scores.parquet").is_file()
    assert not (root / "data/processed/churn_scores.parquet").exists()
