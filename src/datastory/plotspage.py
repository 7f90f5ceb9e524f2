"""An HTML page template for `dvc plots show` with Vega, Vega-Lite and vega-embed inlined, so plots draw offline.

DVC's default page loads those three scripts from a CDN: without a network the page is blank. The JavaScript
comes from the `vl-convert-python` wheel (its `javascript_bundle`), so nothing is downloaded when the page is
made or opened. `.dvc/config` points `plots.html_template` at the file `write` makes (`make setup` runs
`datastory plots-page`); DVC fills `{plot_divs}`.

`page` is pure; `write` is the I/O edge.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config, io

TEMPLATE = ".datastory/plots.html"   # relative to the project; git-ignored; .dvc/config names it
VEGA_LITE = "5.21"                    # DVC's templates are Vega-Lite v5 specs
PLACEHOLDER = "{plot_divs}"


def page(bundle: str) -> str:
    """The page: the bundle in one inline script, then DVC's plot divs (each calls vegaEmbed)."""
    if PLACEHOLDER in bundle:
        raise ValueError(f"the JavaScript bundle contains {PLACEHOLDER}, which DVC would replace")
    script = bundle.replace("</script", "<\\/script")
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>DVC plots</title>\n"
            f"<script type=\"text/javascript\">\n{script}\n</script>\n"
            "<style>table { border-spacing: 15px; } body { font-family: sans-serif; }</style>\n"
            f"</head>\n<body>\n{PLACEHOLDER}\n</body>\n</html>\n")


def bundle() -> str:
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=VEGA_LITE)


def write(root: str | os.PathLike | None = None) -> Path:
    return io.write_text(page(bundle()), config.project_root(root) / TEMPLATE)
