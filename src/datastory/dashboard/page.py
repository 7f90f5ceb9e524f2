"""The dashboard as one self-contained HTML file: styles, scripts and data inline, nothing fetched.

Charting library: Vega-Lite 6 with Vega and vega-embed, from the `vl-convert-python` wheel the project already
depends on (the `dvc plots` page inlines the same bundle, see `plotspage`). Why this one:
- size: the three libraries are about 0.9 MB of JavaScript, so the whole file stays far below 3 MB; Plotly's
  bundle alone is 3.5 MB or more;
- offline: the bundle comes from an installed wheel, so building the file downloads nothing, and opening it
  (from file://, an email attachment or a static host) requests nothing;
- accessibility: charts are drawn as SVG with ARIA roles and a description, and every figure a chart shows is
  also in a table or tile as text.

`json_script` and `page` are pure; `bundle` reads the wheel (or the project's copy of what it made).
A Content-Security-Policy meta tag forbids every fetch (default-src 'none') but the page's own origin's
(connect-src 'self': a served page asks its own URL whether a newer build is there, see `app.LIVE_JS`), so a
regression that would load something fails loudly in the browser instead of leaking a request. Vega's
expressions run through its own interpreter (vega-embed's `ast: true`; `vega.expressionInterpreter` ships in the
same bundle), so script-src allows inline scripts only, never eval or `new Function`.
"""

from __future__ import annotations

import contextlib
import json
import os
from html import escape
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .. import io
from . import app

VEGA_LITE = "6.4"  # the newest the wheel ships; it compiles to the Vega (v6) of the same bundle
BUNDLE_CACHE = ".datastory/vega"  # relative to the project; git-ignored: the bundle once made, per wheel version
DATA_ID = "dashboard-data"
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data:; font-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'")
POLL = 10         # seconds between a served dashboard's checks for a newer build (`?poll=S` in its URL overrides)
STALE_DAYS = 45   # the data's last day this many days before the build: the page warns "data may be stale"
# Inside <script type="application/json"> the HTML parser only looks for "</script" (and "<!--" can change
# its state); U+2028/2029 are escaped too so the text is also safe as a JavaScript literal.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_script(obj: Any) -> str:
    """`obj` as JSON that can sit inside a <script> element whatever its strings hold."""
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text)


def inline_script(js: str) -> str:
    """A library's source made safe to sit inside a <script> element."""
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


def page(data: dict[str, Any], bundle: str) -> str:
    """The whole file: the data as inert JSON, the charting bundle, then the app that reads the JSON."""
    title = f"{data['title']}: {data['label']}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>\n{app.CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{escape(data['title'])}</h1>\n"
        f"<p class=\"who\">{escape(data['company'])} · {escape(data['label'])}</p>\n"
        f"<p class=\"fresh\" id=\"freshness\" data-last-day=\"{escape(data['periodEnd'])}\" "
        f"data-stale-days=\"{STALE_DAYS}\" data-poll=\"{POLL}\">Last day of data: {escape(data['periodEnd'])} "
        f"(from {escape(data['periodStart'])}) · build: {escape(data['built'])}<span id=\"built-at\"></span></p>\n"
        "<p class=\"stale\" id=\"stale\" role=\"alert\" hidden></p>"
        "<p class=\"reload-note\" id=\"reload-note\" role=\"status\" hidden></p>"
        "\n</header>\n"
        f"{app.BODY}"
        f"<script type=\"application/json\" id=\"{DATA_ID}\">{json_script(data)}</script>\n"
        f"<script>\n{inline_script(bundle)}\n</script>\n"
        f"<script>\n{app.JS}</script>\n</body>\n</html>\n"
    )


def bundle_path(cache: str | os.PathLike) -> Path:
    """The file in the folder `cache` that keeps the bundle of this vl-convert wheel and Vega-Lite version."""
    return Path(cache) / f"bundle-{version('vl-convert-python')}-vl{VEGA_LITE}.js"


def bundle(cache: str | os.PathLike | None = None) -> str:
    """Vega, Vega-Lite and vega-embed as one script that sets window.vega, vegaLite and vegaEmbed.

    Making it takes vl-convert about 2 s of CPU, and every audience's report needs the same text. With
    `cache` (a folder, e.g. the project's BUNDLE_CACHE) it is made once per version of the wheel and of
    Vega-Lite, kept in a file named after both, and read from there afterwards. The file is written
    atomically; a folder that cannot be written only means it is made again next time.
    """
    import vl_convert

    if cache is None:
        return vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    path = bundle_path(cache)
    with contextlib.suppress(OSError, UnicodeDecodeError):  # not made yet (or unreadable): make it
        return path.read_text(encoding="utf-8")
    text = vl_convert.javascript_bundle(vl_version=VEGA_LITE)
    with contextlib.suppress(OSError):
        io.write_text(text, path)
    return text
