"""The interactive dashboard: one self-contained HTML file per audience, a sibling of the report, the workbook
and the email.

`data.extract` (pure) takes what an audience may see from its pack and words every figure through the
presentation layer; `page.page` (pure) assembles the file; `build` joins them with the charting bundle.
Like every renderer it imports `datastory.present` and the pack, never another renderer.
"""

from __future__ import annotations

from ..present import Pack, require_pack
from . import data, page


def build(p: Pack, bundle: str | None = None) -> str:
    """The dashboard of pack `p` as HTML text; `bundle` (default: vl-convert's) is the charting JavaScript."""
    require_pack(p)
    return page.page(data.extract(p), page.bundle() if bundle is None else bundle)


__all__ = ["build", "data", "page"]
