"""Where a stage notebook writes: the pipeline's outputs when the stage runs it, a scratch folder by hand.

Opening `notebooks/03_forecast.ipynb` in Jupyter and running it must not overwrite what `dvc repro` built
(`dvc status` would go dirty, and the reports would no longer match their inputs). So a notebook run by hand
(`write_outputs = False`, its default) writes its outputs under `scratch/` (git-ignored), keeping their
layout, and reads its inputs from `scratch/` when an earlier notebook run by hand wrote them there, else
from the pipeline. The stage (`runner.execute`) injects `write_outputs = True`.

`scratch_paths` is pure; `paths` reads params/paths.yaml.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config

SCRATCH = "scratch"
# the paths each stage notebook writes
OUTPUTS: dict[str, tuple[str, ...]] = {
    "ingest": ("transactions", "rejected", "data_quality", "quality_headline"),
    "kpis": ("kpis", "bridge", "movers", "active"),
    "forecast": ("forecast", "forecast_metrics", "forecast_series", "forecast_headline", "forecast_backtest",
                 "forecast_backtest_plot"),
    "churn": ("churn_scores", "churn_metrics", "churn_headline"),
    "report": (),
}


def scratch_paths(stage: str, real: config.Paths, root: Path) -> config.Paths:
    """`real` with `stage`'s outputs moved under root/scratch/, and every other file read from there if it exists."""
    if stage not in OUTPUTS:
        raise KeyError(f"unknown stage {stage!r}; stages with notebooks: {', '.join(OUTPUTS)}")
    scratch = root / SCRATCH
    moved = {}
    for name, path in real.model_dump().items():
        candidate = scratch / Path(path).relative_to(root)
        if name in OUTPUTS[stage] or candidate.exists():
            moved[name] = candidate
    return real.model_copy(update=moved)


def paths(stage: str, write_outputs: bool, root: str | os.PathLike | None = None) -> config.Paths:
    """The paths a stage notebook uses: the pipeline's when `write_outputs`, else scratch for what it writes."""
    real = config.paths(root)
    return real if write_outputs else scratch_paths(stage, real, config.project_root(root))
