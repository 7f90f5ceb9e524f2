"""The Excel workbook of one audience's pack: Summary, What changed, Forecast, Accuracy, Churn risk, Data quality, About.

`build(pack) -> bytes` is pure (no clock, no paths, no randomness: the same pack gives the same bytes);
`save(pack, path)` is the I/O edge. Every string from data is a string cell, never a formula.
The Summary's KPI tiles are the report's and the email's numbers (`present.story.headline_change`);
red-list rows on the Churn risk sheet are filled with RED_FILL_RGB (read back: fgColor.rgb ends with it).
The Churn risk rows are not written cell by cell through openpyxl but spliced in as XML built a column at
a time (`_fastrows`, applied in `_cells.package`): 100,000 styled rows in a couple of seconds.
"""

from __future__ import annotations

import io as _io
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from .. import io, schema
from ..errors import DataError
from ..present import Pack, require_pack
from . import _cells, _churn
from ._about import write_about, write_data_quality
from ._cells import RED_FILL_RGB
from ._change import write_change
from ._churn import write_churn
from ._forecast import write_accuracy, write_forecast
from ._summary import kpi_tiles, summary_figures, write_summary

__all__ = ["SHEETS", "RED_FILL_RGB", "build", "save", "validate", "kpi_tiles"]

SHEETS = ["Summary", "What changed", "Forecast", "Accuracy", "Churn risk", "Data quality", "About"]

_FRAMES = {"kpis": schema.KPIS, "forecast": schema.FORECAST, "churn_scores": schema.CHURN_SCORES}


def validate(pack: Any) -> None:
    """Raise DataError naming the first problem that would stop the workbook from being built."""
    require_pack(pack)
    for name, contract in _FRAMES.items():
        frame = getattr(pack, name)
        cols = getattr(frame, "columns", None)
        if cols is None:
            raise DataError(f"pack.{name} is not a data frame ({type(frame).__name__})",
                            fix="build the pack with datastory.pack.load or pack.select")
        missing = [col for col in contract if col not in cols]
        if missing:
            raise DataError(f"pack.{name} is missing column(s) {', '.join(missing)}", column=missing[0],
                            fix=f"the {name} artifact must follow datastory.schema; re-run its stage")
    _churn.check_fits(pack.churn_scores)


def build(pack: Pack, params: dict[str, Any] | None = None) -> bytes:
    """The .xlsx bytes of `pack`; `params` (e.g. config.pack_params) are listed on the About sheet."""
    validate(pack)
    figures = summary_figures(pack)  # before any sheet exists: a broken pack fails without a half-built workbook
    wb = Workbook(write_only=True)
    sheets = {name: wb.create_sheet(name) for name in SHEETS}
    for ws in sheets.values():
        _cells.print_setup(ws)
    with warnings.catch_warnings():
        # write-only add_table warns that columns must be set by hand; _churn sets them.
        warnings.filterwarnings("ignore", message="In write-only mode you must add table columns manually")
        blocks = write_forecast(sheets["Forecast"], pack)
        write_accuracy(sheets["Accuracy"], pack)
        headline = blocks.get(pack.headline_region) or next(iter(blocks.values()), None)
        write_summary(sheets["Summary"], pack, figures, headline)
        write_change(sheets["What changed"], pack)
        churn_rows = write_churn(sheets["Churn risk"], pack.churn_scores, pack.currency)
    write_data_quality(sheets["Data quality"], pack)
    write_about(sheets["About"], pack, params)
    stamp = _cells.period_end(pack.provenance.period_end)
    props = wb.properties
    props.creator = "datastory"
    props.lastModifiedBy = "datastory"
    props.title = _cells.clean_text(f"{pack.title}: {pack.label}")
    props.created = props.modified = stamp
    raw = _io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:  # compressed once, in package()
        ExcelWriter(wb, archive).save()  # unlike wb.save(), it does not stamp `modified` with the clock
    churn_xml = f"xl/worksheets/sheet{SHEETS.index('Churn risk') + 1}.xml"  # openpyxl numbers sheets in order
    return _cells.package(raw.getvalue(), {churn_xml: churn_rows} if churn_rows else None)


def save(pack: Pack, path: str | os.PathLike, params: dict[str, Any] | None = None) -> Path:
    """Build the workbook and write it atomically to `path`."""
    return io.write_bytes(build(pack, params), path)
