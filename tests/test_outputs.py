"""A notebook run by hand writes under scratch/; the stage writes the pipeline's outputs."""

from __future__ import annotations

import pytest

from datastory import config, outputs


def test_by_hand_the_stage_outputs_go_to_scratch_and_inputs_stay(project):
    real = config.paths(project)
    p = outputs.paths("forecast", False, project)
    assert p.forecast == project / "scratch" / real.forecast.relative_to(project)
    assert p.forecast_series == project / "scratch" / real.forecast_series.relative_to(project)
    assert p.transactions == real.transactions   # nothing in scratch yet: the pipeline's input


def test_inputs_come_from_scratch_once_a_notebook_by_hand_wrote_them(project):
    real = config.paths(project)
    scratch_tx = project / "scratch" / real.transactions.relative_to(project)
    scratch_tx.parent.mkdir(parents=True)
    scratch_tx.write_bytes(b"x")
    p = outputs.paths("kpis", False, project)
    assert p.transactions == scratch_tx and p.kpis == project / "scratch" / real.kpis.relative_to(project)
    assert p.forecast == real.forecast


def test_the_stage_writes_the_pipelines_outputs(project):
    assert outputs.paths("churn", True, project) == config.paths(project)


def test_every_stage_output_is_a_declared_path():
    for names in outputs.OUTPUTS.values():
        assert set(names) <= set(config.Paths.model_fields)


def test_unknown_stage_is_refused(project):
    with pytest.raises(KeyError, match="unknown stage"):
        outputs.scratch_paths("deliver", config.paths(project), project)
