"""Execute a stage notebook with papermill: params validated first, the executed copy kept as the audit trail.

The notebook runs with the project root as working directory and the stage's params file injected.
A failure inside the notebook comes back as one clear message, not a kernel traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from . import config, kernel
from .errors import DatastoryError
from .io import atomic_path, stale_temps

# stage -> (notebook name without .ipynb, params file stage)
NOTEBOOKS: dict[str, tuple[str, str]] = {
    "ingest": ("01_ingest", "data"),
    "kpis": ("02_kpis", "kpis"),
    "forecast": ("03_forecast", "forecast"),
    "churn": ("04_churn", "churn"),
    "report": ("05_report", "report"),
}

# Exceptions raised inside a notebook whose message is already written for the user.
_USER_ERRORS = {"DatastoryError", "DataError", "ParamsError", "ModelError", "DeliveryError", "ReportError",
                "ClusterError"}


class StageError(DatastoryError):
    """A stage notebook failed."""


def executed_path(stage: str, root: Path, suffix: str | None = None) -> Path:
    name = NOTEBOOKS[stage][0] + (f"_{suffix}" if suffix else "")
    return config.paths(root).runs_dir / f"{name}.ipynb"


def execute(stage: str, root: str | os.PathLike | None = None, extra: dict[str, Any] | None = None,
            suffix: str | None = None) -> Path:
    """Validate `stage`'s params, run its notebook, and return the executed copy's path."""
    if stage not in NOTEBOOKS:
        raise StageError(f"unknown notebook stage {stage!r}; stages are {', '.join(NOTEBOOKS)}")
    base = config.project_root(root)
    nb_name, params_stage = NOTEBOOKS[stage]
    source = base / "notebooks" / f"{nb_name}.ipynb"
    if not source.is_file():
        raise StageError("stage notebook is missing", file=str(source.relative_to(base)),
                         fix="restore it from git: git checkout -- notebooks/")
    # write_outputs: the pipeline's paths (a notebook run by hand writes under scratch/, see outputs.py)
    parameters = config.load(params_stage, base).model_dump(mode="json") | {"write_outputs": True} | (extra or {})
    target = executed_path(stage, base, suffix)
    for stale in stale_temps(target):  # a killed earlier run of this stage; one stage writes one record
        stale.unlink(missing_ok=True)
    for name in ("papermill", "traitlets", "nbclient"):
        logging.getLogger(name).setLevel(logging.WARNING)
    created = [d for d in (target.parent, *target.parent.parents) if d.is_relative_to(base) and not d.exists()]
    skip_iri_grammar()
    imports = kernel.notebook_imports(json.loads(source.read_text(encoding="utf-8")))
    try:
        # the kernel starts once the params are valid, and boots (and imports what the notebook imports) while
        # papermill is imported and the notebook read
        with timed(stage, "papermill", suffix) as extra_figures, kernel.started(base, imports) as km, \
                atomic_path(target) as tmp:
            import papermill

            papermill.execute_notebook(
                str(source), str(tmp), parameters=parameters, cwd=str(base), kernel_name=kernel.KERNEL_NAME,
                engine_name=kernel.ENGINE, km=km,
                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
            )
            if timings_path() is not None:  # read before normalise strips them from the record
                extra_figures["cells"] = cell_durations(tmp)
            normalise(tmp, str(source.relative_to(base)), str(target.relative_to(base)))
    except BaseException as exc:
        _remove_empty(created)
        if not kernel.cell_error(exc):
            raise
        if exc.ename in _USER_ERRORS:
            raise StageError(f"stage '{stage}' stopped: {exc.evalue}") from None
        raise StageError(
            f"stage '{stage}' failed in notebooks/{nb_name}.ipynb cell {exc.exec_count}: {exc.ename}: {exc.evalue}",
            fix="open the notebook in Jupyter to explore, or re-run with `datastory --debug` for the traceback",
        ) from exc
    return target


def skip_iri_grammar() -> None:
    """Keep jsonschema from compiling an IRI grammar that nothing here uses (about 1 s per process).

    papermill reads notebooks with nbformat, which imports jsonschema; jsonschema registers an optional
    `iri` format check when the rfc3987_syntax package is importable, and importing that package builds a
    Lark parser from its grammar. Notebook validation never checks that format. Marking the module as
    absent (None in sys.modules) is the import system's own way to make `import rfc3987_syntax` fail, which
    jsonschema expects and handles by leaving the `iri` check out. Done only when jsonschema's format
    module is not loaded yet: a process that already has it keeps what it has.
    """
    import sys

    if "jsonschema._format" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


TIMINGS_ENV = "DATASTORY_TIMINGS"


def timings_path() -> Path | None:
    """The side file that `DATASTORY_TIMINGS` names, or None: timings never go into an artifact."""
    value = os.environ.get(TIMINGS_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def timed(stage: str, step: str, suffix: str | None = None, since_start: bool = False):
    """Append {stage, step, seconds, ...} as one JSON line to the timings file when one is named.

    Yields a dict the caller may fill with more figures (the notebook's cell durations, say). Without
    `DATASTORY_TIMINGS` it only runs the block: no clock reaches an output. `since_start`: count from the
    process's start (interpreter start and imports included) where the system says when that was (Linux).
    """
    figures: dict[str, Any] = {}
    path = timings_path()
    start = time.perf_counter() - (_process_age() if since_start else 0.0)
    yield figures
    if path is None:
        return
    record = {"stage": stage, "suffix": suffix, "step": step, "seconds": round(time.perf_counter() - start, 3),
              **figures}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _process_age() -> float:
    """Seconds since this process started, from /proc (0.0 where there is none)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        return max(0.0, float(Path("/proc/uptime").read_text().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return 0.0


def cell_durations(nb_path: Path) -> list[dict[str, Any]]:
    """Each code cell's papermill duration (seconds) and first source line, from a notebook not yet normalised."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    return [{"index": i, "seconds": cell["metadata"].get("papermill", {}).get("duration"),
             "source": "".join(cell["source"]).split("\n", 1)[0][:80]}
            for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "code"]


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this run created (deepest first) if they stayed empty: a failed stage leaves nothing."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


_TIMING_KEYS = ("start_time", "end_time", "duration")
_RANDOM_ID = re.compile(r"[0-9a-f]{8}")
_STYLER_ID = re.compile(r'<table id="T_([0-9a-f]{5})"')
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def _stable_styler_ids(html: str, cell_index: int) -> str:
    """pandas Styler tables carry a random uuid (`T_1a2b3`) in their ids and CSS; number them instead."""
    for n, uid in enumerate(dict.fromkeys(_STYLER_ID.findall(html))):
        html = html.replace(f"T_{uid}", f"T_c{cell_index:02d}t{n}")
    return html


def normalise(nb_path: Path, source: str, target: str) -> None:
    """Make an executed notebook a stable audit record: no timings, repo-relative paths.

    Papermill stamps wall-clock times on the notebook and every cell, gives the injected cell a
    random id and records absolute paths; those would make the record differ on every run and
    leak this machine's folders.
    """
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in _TIMING_KEYS:
        meta.pop(key, None)
    meta.update(input_path=source, output_path=target)
    meta.pop("environment_variables", None)
    for index, cell in enumerate(nb.cells):
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell["id"] = "injected-parameters"  # papermill gives it a random id
        elif _RANDOM_ID.fullmatch(cell.get("id", "")):
            cell["id"] = f"cell-{index:02d}"  # nbformat < 4.5 sources get random ids on upgrade
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/html"), str):
                data["text/html"] = _stable_styler_ids(data["text/html"], index)
            if isinstance(data.get("text/plain"), str):  # "<Styler at 0x7f24e301bd90>": a memory address
                data["text/plain"] = _ADDRESS.sub(">", data["text/plain"])
        cell.metadata.pop("execution", None)
        for key in _TIMING_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)
    nbformat.write(nb, nb_path)
