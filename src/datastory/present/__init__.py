"""The presentation layer shared by every renderer (report, workbook, deliver, and a dashboard later).

- the pack: one audience's share of the results (`datastory.pack`, re-exported here);
- `words`: money, percentages, percentage points, dates and names;
- `story`: the headline sentences, the accuracy table and the data-quality counts, from a pack;
- `theme`: one seaborn theme and colour palette;
- `figures`: the figures, drawn in that theme (imported on demand: matplotlib and seaborn take a while).
- `change`: the What changed section (revenue bridge and top movers) as rows and sentences; `waterfall`:
  its figure (imported on demand, like `figures`).

The renderers import this package and never each other, so a value reads the same in the PDF, the
workbook and the email, and a change here re-runs every renderer.
"""

from __future__ import annotations

from ..pack import Pack, Provenance
from . import story, words
from .words import require_pack

__all__ = ["Pack", "Provenance", "require_pack", "story", "words"]
