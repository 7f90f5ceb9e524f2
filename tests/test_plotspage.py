"""`dvc plots show` draws offline: its page template carries Vega, Vega-Lite and vega-embed inline."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datastory import plotspage

REPO = Path(__file__).resolve().parents[1]


def test_page_inlines_the_bundle_and_keeps_dvcs_placeholder():
    html = plotspage.page("window.vegaEmbed=function(){}; var s='</script>';")
    assert html.count("{plot_divs}") == 1 and "{scripts}" not in html
    assert "<\\/script>" in html and "window.vegaEmbed" in html
    assert not re.search(r"<script[^>]+src=", html)


def test_page_refuses_a_bundle_holding_the_placeholder():
    with pytest.raises(ValueError, match="plot_divs"):
        plotspage.page("var x = '{plot_divs}';")


def test_dvc_config_points_at_the_template():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / ".dvc" / "config")
    assert (REPO / ".dvc" / cfg["plots"]["html_template"]).resolve() == (REPO / plotspage.TEMPLATE).resolve()


@pytest.mark.slow
def test_dvc_plots_show_writes_a_page_with_no_network_script(tmp_path):
    pytest.importorskip("vl_convert")
    root = tmp_path / "p"
    (root / "metrics").mkdir(parents=True)
    (root / "params").mkdir()
    shutil.copytree(REPO / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    (root / "params" / "paths.yaml").write_text("paths: {}\n")
    (root / "metrics" / "s.csv").write_text("series_id,mase\nAll,0.5\nNorth,0.8\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    out = plotspage.write(root)
    assert out == root / plotspage.TEMPLATE
    bin_dir = Path(sys.executable).parent
    res = subprocess.run([str(bin_dir / "dvc"), "plots", "show", "metrics/s.csv", "-x", "series_id", "-y", "mase"],
                         cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    html = (root / "dvc_plots" / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and not re.search(r"<script[^>]+src=", html)
    assert "window.vegaEmbed" in html and "vegaEmbed('#" in html


def test_the_command_also_makes_the_dashboards_bundle_once(tmp_path, capsys):
    """`datastory plots-page` (run by `make setup`) leaves the dashboards' Vega bundle in the project's cache, so a
    report stage reads it instead of making it (seconds of CPU beside its notebook)."""
    from datastory import cli
    from datastory.dashboard import page

    root = tmp_path / "p"
    (root / "params").mkdir(parents=True)
    (root / "params" / "paths.yaml").write_text("paths: {}\n")
    assert cli.main(["--root", str(root), "plots-page"]) == 0
    cached = page.bundle_path(root / page.BUNDLE_CACHE)
    assert cached.is_file() and str(cached) in capsys.readouterr().out
    assert page.bundle(root / page.BUNDLE_CACHE) == cached.read_text(encoding="utf-8")
    assert "vegaEmbed" in cached.read_text(encoding="utf-8")
    assert (root / plotspage.TEMPLATE).is_file()
