"""The dashboard's freshness line and self-reload in real headless Chromium (Selenium, Debian's chromium-driver).

The browser runs in New York time while the expected texts are UTC, so a page that showed local time, or
read the file's mtime in the wrong zone, would fail. The reload test serves a reports folder with the real
`datastory serve` server on a free loopback port, rewrites the dashboard as a rebuild would (a temp file moved
into place) and waits for the open page to notice and show the new build.
"""

from __future__ import annotations

import calendar
import dataclasses
import os
from pathlib import Path

import pytest
from conftest import make_pack
from test_dashboard_chromium import open_page, requests, start_driver, waiter

from datastory import dashboard
from datastory.live import serve

pytestmark = pytest.mark.slow

BUILT = calendar.timegm((2025, 7, 10, 12, 34, 56))   # 2025-07-10 12:34:56 UTC, 10 days after the data ends
LATE = calendar.timegm((2025, 9, 30, 23, 59, 0))     # 92 days after it


@pytest.fixture(scope="module", autouse=True)
def new_york():
    """Chromium (started by the module's driver fixture) inherits this zone: UTC-4 in July, UTC-4 in September."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    yield
    if before is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = before


@pytest.fixture(scope="module")
def driver(new_york):
    """The dashboard tests' browser, allowed to reach this machine's loopback address (and no other host)."""
    d = start_driver("MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
    yield d
    d.quit()


@pytest.fixture(scope="module")
def page_text() -> str:
    p = make_pack()
    return dashboard.build(dataclasses.replace(p, provenance=dataclasses.replace(p.provenance,
                                                                                 period_end="2025-06-30")))


def write(path: Path, text: str, mtime: int) -> None:
    """As the report stage writes: a temp file beside, moved into place; then the mtime we want."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def visible(driver, element_id: str) -> bool:
    return driver.execute_script(f"return !document.getElementById('{element_id}').hidden")


def test_from_a_file_it_shows_the_files_time_in_utc(driver, page_text, tmp_path):
    f = tmp_path / "dashboard.html"
    write(f, page_text, BUILT)
    open_page(driver, f)
    assert text(driver, "freshness").endswith(" · built 2025-07-10 12:34 UTC")
    assert text(driver, "freshness").startswith("Last day of data: 2025-06-30")
    assert driver.execute_script("return document.documentElement.getAttribute('data-live')") == "off"
    assert not visible(driver, "stale") and not visible(driver, "reload-note")
    assert [u for u in requests(driver) if u != f.as_uri()] == []


def test_data_much_older_than_the_build_is_flagged(driver, page_text, tmp_path):
    f = tmp_path / "dashboard.html"
    write(f, page_text, LATE)
    open_page(driver, f)
    assert text(driver, "freshness").endswith(" · built 2025-09-30 23:59 UTC")
    assert visible(driver, "stale")
    assert text(driver, "stale") == "Data may be stale: its last day, 2025-06-30, is 92 days before this build."


@pytest.fixture
def served(tmp_path, page_text):
    reports = tmp_path / "reports"
    write(reports / "executive" / "dashboard.html", page_text, BUILT)
    srv = serve.bind(reports, "127.0.0.1", 0)
    serve.start(srv)
    yield reports, f"http://127.0.0.1:{srv.server_address[1]}/executive/dashboard.html"
    srv.shutdown()
    srv.server_close()


def live(driver) -> str | None:
    return driver.execute_script("return document.documentElement.getAttribute('data-live')")


def test_served_it_reloads_itself_after_a_rebuild(driver, page_text, served):
    reports, url = served
    driver.get_log("performance")
    driver.get(url + "?poll=0.2")
    waiter(driver).until(lambda d: live(d) == "on")
    assert text(driver, "freshness").endswith(" · built 2025-07-10 12:34 UTC")   # from Last-Modified
    assert driver.execute_script("return document.documentElement.getAttribute('data-ready')") == "1"
    assert "commit NEW" not in text(driver, "freshness")

    rebuilt = page_text.replace("build: commit ", "build: commit NEW", 1)
    assert rebuilt != page_text
    write(reports / "executive" / "dashboard.html", rebuilt, LATE)
    waiter(driver).until(lambda d: live(d) == "reloading" or "commit NEW" in text(d, "freshness"))
    if live(driver) == "reloading":   # the note shows for 1.5 s before the reload
        assert visible(driver, "reload-note")
        assert text(driver, "reload-note") == "Newer build available \u2014 reloading\u2026"
    waiter(driver).until(lambda d: "commit NEW" in text(d, "freshness") and live(d) == "on")
    assert text(driver, "freshness").endswith(" · built 2025-09-30 23:59 UTC")
    assert visible(driver, "stale") and not visible(driver, "reload-note")
    assert {u.split("?")[0] for u in requests(driver)} == {url}   # it asked its own URL and nothing else


def test_served_it_does_not_reload_for_the_same_bytes(driver, page_text, served):
    reports, url = served
    driver.get(url + "?poll=0.2")
    waiter(driver).until(lambda d: live(d) == "on")
    driver.execute_script("window.sameDocument = 1")
    write(reports / "executive" / "dashboard.html", page_text, LATE)   # rewritten, not changed: same ETag
    requests(driver)
    seen: list[str] = []

    def asked_five_times(d) -> bool:
        seen.extend(u for u in requests(d) if u.startswith(url))
        return len(seen) >= 5

    waiter(driver).until(asked_five_times)   # five checks after the rewrite, each answered with the same ETag
    assert live(driver) == "on" and driver.execute_script("return window.sameDocument") == 1
