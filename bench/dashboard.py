"""Benchmark: the executive dashboard in headless Chromium: file size, load-to-interactive, filter update.

Run: .venv/bin/python bench/dashboard.py [audience]. Builds the audience's dashboard (default executive) from
the project's artifacts when `dvc repro` has made them, else from the tests' tiny pack, writes it to a temporary
file and opens it from file:// through Selenium and Debian's chromium-driver (nothing is downloaded).
Prints the file size; the load-to-interactive time (navigation start to the page's `data-ready`, median of 5
loads); and the time from a filter click to the next painted frame after the page says it updated
(`data-updates`), median over 12 clicks on periods and regions. Each is compared with the target
(3 MB, 1.5 s, 100 ms). Not a test: timings depend on the machine.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import make_pack  # noqa: E402

from datastory import dashboard, pack  # noqa: E402
from datastory.errors import DatastoryError  # noqa: E402

TARGETS = {"size_mb": 3.0, "load_s": 1.5, "update_ms": 100.0}
CHROMIUM = "/usr/bin/chromium"
LOADS, CLICKS = 5, 12
NAMES = {"grain": "period", "scope": "region"}

CLICK = """
var done = arguments[arguments.length - 1], root = document.documentElement, sel = arguments[0];
var n = Number(root.getAttribute('data-updates')), t0 = performance.now();
var el = document.querySelector(sel);
if (el.tagName === 'OPTION') { el.parentNode.value = el.value; el.parentNode.dispatchEvent(new Event('change')); }
else { el.click(); }
(function poll() {
  if (Number(root.getAttribute('data-updates')) > n) {
    requestAnimationFrame(function () { done(performance.now() - t0); });
  } else { setTimeout(poll, 0); }
})();
"""


def the_pack(audience: str) -> tuple[pack.Pack, str]:
    try:
        return pack.load(audience), "the project's artifacts"
    except (DatastoryError, OSError) as err:
        print(f"(no built project here: {str(err).splitlines()[0]}; using the tests' tiny pack)")
        return make_pack(audience if audience in ("executive", "north") else "executive"), "the tests' tiny pack"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,1000",
                 "--host-resolver-rules=MAP * ~NOTFOUND"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)


def load(driver, url: str) -> float:
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get("about:blank")
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return document.documentElement.getAttribute('data-ready')"))
    return float(driver.execute_script("return document.documentElement.getAttribute('data-ready-ms')")) / 1000


def main(audience: str = "executive") -> None:
    if not shutil.which("chromedriver") or not Path(CHROMIUM).exists():
        sys.exit("needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
    p, source = the_pack(audience)
    html = dashboard.build(p)
    size_mb = len(html.encode("utf-8")) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dashboard.html"
        path.write_text(html, encoding="utf-8")
        driver = browser()
        try:
            loads = [load(driver, path.as_uri()) for _ in range(LOADS)]
            sels = ['#grain button[data-grain="Q"]', '#grain button[data-grain="M"]']
            sels += [f'#scope option[value="{r}"]' for r in (["North", "All"] if p.is_company else [])]
            timed = [(sels[i % len(sels)], driver.execute_async_script(CLICK, sels[i % len(sels)]))
                     for i in range(CLICKS)]
            clicks = [ms for _, ms in timed]
            by_kind = {kind: statistics.median(ms for sel, ms in timed if sel.startswith(f"#{kind}"))
                       for kind in ("grain", "scope") if any(sel.startswith(f"#{kind}") for sel, _ in timed)}
        finally:
            driver.quit()
    load_s, update_ms = statistics.median(loads), statistics.median(clicks)
    print(f"dashboard of {audience} from {source}")
    for name, value, unit in (("size_mb", size_mb, "MB"), ("load_s", load_s, "s"), ("update_ms", update_ms, "ms")):
        ok = "meets" if value <= TARGETS[name] else "MISSES"
        print(f"  {name:10s} {value:8.2f} {unit:2s}  target <= {TARGETS[name]:g} {unit}: {ok}")
    print(f"  (load: median of {LOADS}, {min(loads):.2f}-{max(loads):.2f} s; "
          f"update: median of {CLICKS}, {min(clicks):.0f}-{max(clicks):.0f} ms)")
    print("  update median by choice: " + ", ".join(f"{NAMES[k]} {v:.0f} ms" for k, v in by_kind.items()))


if __name__ == "__main__":
    main(*sys.argv[1:2])
