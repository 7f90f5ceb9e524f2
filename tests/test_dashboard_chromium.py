"""The dashboards in real headless Chromium, driven by Selenium through Debian's chromium-driver.

Selenium gets the chromedriver the `chromium-driver` package installs (`shutil.which`), so its driver manager
downloads nothing. Each dashboard of the tiny project (company, one region, hostile names, nobody to call and
no forecast) is written to a file and opened from file://. The tests read what a manager sees: the tiles after
a click, the call count after the slider moves, the rows after a search or a sort, and the browser's own
record of every request (DevTools performance log) and console message.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_pack

from datastory import dashboard, kpis, schema
from datastory.dashboard import data
from datastory.present import story, words

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
WAIT = 20  # seconds a page may take to become interactive before the test fails (not a timing assertion)
HOSTILE_NAME = '<img src=x onerror="document.title=\'owned\'">\u202eexe.fdp </script><!--'


def start_driver(resolver: str = "MAP * ~NOTFOUND"):
    """Headless Chromium through Debian's chromedriver (skips when absent); `resolver`: its host resolver rules,
    by default every name unresolvable, so nothing can reach a network."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    path = shutil.which("chromedriver")
    if not path or not Path(CHROMIUM).exists():
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--host-resolver-rules={resolver}",
                 "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=path), options=opts)


@pytest.fixture(scope="module")
def driver():
    d = start_driver()
    yield d
    d.quit()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The dashboards, built as the report stage builds them, each in its own file."""
    out = tmp_path_factory.mktemp("dash")
    company = make_pack()
    north = make_pack("north")
    packs = {
        "executive": dataclasses.replace(company, provenance=dataclasses.replace(company.provenance,
                                                                                 period_end="2025-06-30")),
        "north": north,
        "hostile": make_pack(hostile=HOSTILE_NAME),
        "empty": dataclasses.replace(north, churn_scores=north.churn_scores.iloc[0:0],
                                     forecast=north.forecast.iloc[0:0]),
    }
    many = north.churn_scores.iloc[[0] * 120].reset_index(drop=True)
    many["customer_id"] = [f"N{i:04d}" for i in range(120)]
    many["revenue_at_risk"] = [1000.0 - i for i in range(120)]
    many["status"] = "watch"
    packs["long"] = dataclasses.replace(north, churn_scores=many)
    packs["weeks"] = dataclasses.replace(company, forecast=half_year_of_weeks(company))
    packs["calm"] = dataclasses.replace(north, churn_scores=north.churn_scores.assign(status="", red=False))
    for key, p in packs.items():
        (out / f"{key}.html").write_text(dashboard.build(p), encoding="utf-8")
    return out, packs


def half_year_of_weeks(p):
    """The company series as 26 Monday-labelled weeks from 30 Dec 2024, the last 13 forecast (April to June)."""
    fc = p.forecast[p.forecast["series_id"] == schema.ALL].iloc[[0] * 26].reset_index(drop=True)
    fc["ds"] = pd.date_range("2024-12-30", periods=26, freq="W-MON")
    ahead = fc.index >= 13
    fc["is_forecast"] = ahead
    fc["y"] = np.where(ahead, np.nan, 700.0 + 7 * fc.index)
    fc["yhat"] = np.where(ahead, 700.0 + 7 * fc.index, np.nan)
    fc["yhat_lower"], fc["yhat_upper"] = fc["yhat"] - 70, fc["yhat"] + 70
    return schema.conform(fc, schema.FORECAST, "forecast")


def open_page(driver, path: Path) -> None:
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(path.as_uri())
    ready = "return document.documentElement.getAttribute('data-ready')"
    waiter(driver).until(lambda d: d.execute_script(ready))
    assert driver.execute_script(ready) == "1"


def waiter(driver):
    """Selenium's polling wait of up to WAIT seconds (imported late: selenium is a dev extra)."""
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(driver, WAIT)


def wait_update(driver, before: int) -> None:
    """Wait (up to WAIT seconds, never a fixed sleep) until the page says it finished the next update."""
    waiter(driver).until(lambda d: updates(d) > before)


def updates(driver) -> int:
    return int(driver.execute_script("return document.documentElement.getAttribute('data-updates') || 0"))


def tile_text(driver, kpi: str) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    t = driver.find_element(By.CSS_SELECTOR, f'#tiles [data-kpi="{kpi}"]')
    return t.find_element(By.CLASS_NAME, "value").text, t.find_element(By.CLASS_NAME, "delta").text


def requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("key", ["executive", "north", "hostile", "empty"])
def test_opens_without_errors_or_requests(driver, files, key):
    out, _ = files
    path = out / f"{key}.html"
    open_page(driver, path)
    assert [u for u in requests(driver) if u != path.as_uri()] == []
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0
    problems = [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")]
    assert problems == []
    assert driver.execute_script("return document.querySelectorAll('svg').length") >= (0 if key == "empty" else 2)


def test_region_and_period_choices_show_their_kpis(driver, files):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    out, packs = files
    p = packs["executive"]
    open_page(driver, out / "executive.html")
    end = p.provenance.period_end
    company = kpis.latest_change(p.kpis, schema.ALL, end)["kpis"]["revenue"]
    assert tile_text(driver, "revenue") == (words.fmt_money(company["value"]), "\u25B2 " + words.kpi_delta(
        "revenue", company))

    assert driver.find_element(By.ID, "line").get_attribute("disabled") == "true"   # no company series per line
    n = updates(driver)
    Select(driver.find_element(By.ID, "scope")).select_by_value("North")
    wait_update(driver, n)
    line = Select(driver.find_element(By.ID, "line"))
    assert [o.get_attribute("value") for o in line.options] == ["All", "Hardware"]
    n = updates(driver)
    line.select_by_value("Hardware")
    wait_update(driver, n)
    assert driver.find_element(By.ID, "fc-msg").text.startswith(
        "North / Hardware: " + story.forecast_sentence(p, "North / Hardware"))
    north = kpis.latest_change(p.kpis, "North", end)["kpis"]
    assert tile_text(driver, "orders")[0] == words.fmt_count(north["orders"]["value"])
    assert tile_text(driver, "revenue")[0] == words.fmt_money(north["revenue"]["value"])

    n = updates(driver)
    driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').click()
    wait_update(driver, n)
    k = p.kpis[p.kpis["region"] == "North"].set_index("period")
    q2, q1 = k.loc["2025-04-01":"2025-06-01", "revenue"].sum(), k.loc["2025-01-01":"2025-03-01", "revenue"].sum()
    assert tile_text(driver, "revenue")[0] == words.fmt_money(q2)
    assert driver.find_element(By.ID, "tiles-h").text == "Key figures: Q2 2025 vs Q1 2025"
    assert f"Q1 2025: {words.fmt_money(q1)}" in driver.find_element(By.ID, "tiles").text
    assert driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').get_attribute("aria-pressed") == "true"

    n = updates(driver)
    driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Y"]').click()
    wait_update(driver, n)
    assert driver.find_element(By.ID, "tiles-msg").text == words.NO_EARLIER_PERIOD


def test_capacity_slider_sets_the_calls(driver, files):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out, packs = files
    p = packs["executive"]
    open_page(driver, out / "executive.html")
    rows = data.calls(p)
    calls = p.call_counts["call"]
    slider = driver.find_element(By.ID, "capacity")
    assert int(slider.get_attribute("value")) == calls
    assert len(driver.find_elements(By.CSS_SELECTOR, "#calls tr.in-plan")) == calls
    slider.send_keys(Keys.ARROW_RIGHT)
    k = calls + 1
    covered = words.fmt_money(sum(r["risk"] for r in rows[:k]))
    text = driver.find_element(By.ID, "capacity-out").text
    assert text.startswith(f"{k} of {len(rows)} customers at risk called, covering {covered} of ")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#calls tr.in-plan")) == k
    slider.send_keys(Keys.HOME)
    assert driver.find_element(By.ID, "capacity-out").text.startswith(f"0 of {len(rows)} customers")
    assert driver.find_elements(By.CSS_SELECTOR, "#calls tr.in-plan") == []


def test_call_list_sorts_and_searches(driver, files):
    from selenium.webdriver.common.by import By

    out, packs = files
    open_page(driver, out / "executive.html")
    ids = lambda: [tr.get_attribute("data-id") for tr in driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr")]  # noqa: E731
    plan = data.calls(packs["executive"])   # the call list first, then watch: the slider's order
    by_risk = [r["id"] for r in sorted(plan, key=lambda r: -r["risk"])]   # the table opens by revenue at risk
    assert ids() == by_risk
    driver.find_element(By.CSS_SELECTOR, '#calls th[data-key="name"] button').click()
    names = {r["id"]: r["name"] for r in data.calls(packs["executive"])}
    assert ids() == sorted(by_risk, key=lambda i: names[i])
    assert driver.find_element(By.CSS_SELECTOR, '#calls th[data-key="name"]').get_attribute("aria-sort") == "ascending"
    driver.find_element(By.ID, "search").send_keys("bolt")
    assert [names[i] for i in ids()] == ["Bolt GmbH"]


def test_hostile_names_show_as_text(driver, files):
    from selenium.webdriver.common.by import By

    out, _ = files
    open_page(driver, out / "hostile.html")
    assert driver.title != "owned"
    cells = [b.get_attribute("textContent") for b in driver.find_elements(By.CSS_SELECTOR, "#calls tbody bdi")]
    assert HOSTILE_NAME in cells
    assert driver.find_elements(By.CSS_SELECTOR, "#calls img") == []


def test_regional_dashboard_embeds_no_other_region(driver, files):
    out, packs = files
    open_page(driver, out / "north.html")
    embedded = driver.execute_script("return document.getElementById('dashboard-data').textContent")
    everyone = make_pack().churn_scores
    others = everyone.loc[everyone["region"] != "North", "customer_id"].tolist()
    assert others and not any(c in embedded for c in others)
    page = driver.execute_script("return document.documentElement.outerHTML")
    assert not any(f'"{c}"' in page for c in others)
    mine = packs["north"].churn_scores
    assert json.loads(embedded)["calls"][0]["id"] in set(mine["customer_id"])


def test_nobody_to_call_and_no_forecast_say_so(driver, files):
    from selenium.webdriver.common.by import By

    out, _ = files
    open_page(driver, out / "empty.html")
    assert driver.find_element(By.ID, "fc-msg").text == data.NO_FORECAST
    assert driver.find_element(By.ID, "calls-msg").text == data.NO_SCORED   # nobody scored at all
    assert driver.find_element(By.ID, "capacity").get_attribute("disabled") == "true"
    open_page(driver, out / "calm.html")                                          # scored, nobody at risk
    assert driver.find_element(By.ID, "calls-msg").text == data.NO_CUSTOMERS
    assert driver.find_element(By.ID, "churn-sentence").text.startswith("No customer needs a call")


def test_a_long_call_list_shows_a_page_then_more(driver, files):
    from selenium.webdriver.common.by import By

    out, _ = files
    open_page(driver, out / "long.html")
    rows = lambda: driver.find_elements(By.CSS_SELECTOR, "#calls tbody tr")  # noqa: E731
    assert len(rows()) == 50
    assert driver.find_element(By.ID, "calls-shown").text.startswith("Showing the first 50 of 120 customers")
    driver.find_element(By.ID, "more").click()
    assert len(rows()) == 120 and not driver.find_element(By.ID, "more").is_displayed()
    assert [r.get_attribute("data-id") for r in rows()] == [f"N{i:04d}" for i in range(120)]


def hover_tooltip(driver, css: str) -> str:
    """Move the mouse onto the first mark matching `css` and return the tooltip's text once it shows."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    mark = driver.find_elements(By.CSS_SELECTOR, css)[0]
    ActionChains(driver).move_to_element(mark).perform()
    tip = "var t = document.getElementById('vg-tooltip-element'); return t && t.classList.contains('visible') ? t.textContent : ''"
    waiter(driver).until(lambda d: d.execute_script(tip))
    return driver.execute_script(tip)


def test_charts_draw_and_tooltips_work_without_unsafe_eval(driver, files):
    """Vega evaluates its expressions with its own interpreter (vega-embed's `ast: true`), so the page's policy
    forbids eval and the charts still draw and answer the mouse."""
    out, packs = files
    open_page(driver, out / "executive.html")
    csp = driver.execute_script("return document.querySelector('meta[http-equiv=Content-Security-Policy]').content")
    assert "'unsafe-eval'" not in csp and "script-src 'unsafe-inline'" in csp
    assert driver.execute_script("return document.querySelectorAll('#fc-chart svg path, #rev-chart svg path').length") > 10
    revenue = data.revenue(packs["executive"])["M"][schema.ALL][0]
    assert f"Period{revenue[0]}Revenue{revenue[2]}" in hover_tooltip(driver, "#rev-chart .mark-rect path")
    assert "Actual" in hover_tooltip(driver, "#fc-chart .mark-symbol path")
    assert [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")] == []


def test_without_the_interpreter_the_policy_stops_the_charts(driver, files, tmp_path):
    """The check above can fail: the same page compiling expressions with Function is refused by its own policy."""
    out, _ = files
    html = (out / "executive.html").read_text(encoding="utf-8")
    assert html.count(", ast: true}") == 1
    evil = tmp_path / "eval.html"
    evil.write_text(html.replace(", ast: true}", "}"), encoding="utf-8")
    driver.get_log("browser")
    driver.get(evil.as_uri())
    ready = "return document.documentElement.getAttribute('data-ready')"
    waiter(driver).until(lambda d: d.execute_script(ready))
    logs = " ".join(m["message"] for m in driver.get_log("browser"))
    assert driver.execute_script(ready) == "error" or "unsafe-eval" in logs


def test_the_forecast_follows_the_chosen_period_as_totals_without_a_range(driver, files):
    from selenium.webdriver.common.by import By

    out, packs = files
    open_page(driver, out / "weeks.html")
    d = data.extract(packs["weeks"])
    own = driver.find_element(By.ID, "fc-own")
    symbols = "return document.querySelectorAll('#fc-chart .mark-symbol path').length"
    bands = "return document.querySelectorAll('#fc-chart .mark-area path').length"
    assert own.text == "Weeks, with range" and own.get_attribute("aria-pressed") == "true"
    assert driver.find_element(By.ID, "fc-note").text == d["fcNotes"]["own"]
    assert driver.execute_script(symbols) == 26 and driver.execute_script(bands) == 1

    n = updates(driver)
    driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="M"]').click()
    wait_update(driver, n)
    months = next(s for s in d["series"] if s["id"] == schema.ALL)["grains"]["M"]
    shown = [m for m in months if m[1] is not None] + [m for m in months if m[2] is not None]
    assert len(shown) == 4 and own.get_attribute("aria-pressed") == "false"   # Jan, Feb; then Apr, May
    assert driver.find_element(By.ID, "fc-note").text == d["fcNotes"]["M"]
    assert driver.execute_script(symbols) == len(shown)
    assert driver.execute_script(bands) == 0                                    # no range drawn for totals
    may = f"{months[-1][2]:,.0f}"
    assert may in hover_tooltip(driver, "#fc-chart .mark-symbol:last-of-type path:last-child")

    n = updates(driver)
    driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Y"]').click()
    wait_update(driver, n)
    assert driver.find_element(By.ID, "fc-note").text == d["fcNotes"]["noneY"]

    n = updates(driver)
    own.click()
    wait_update(driver, n)
    assert own.get_attribute("aria-pressed") == "true" and driver.execute_script(symbols) == 26
    assert driver.find_element(By.ID, "fc-note").text == d["fcNotes"]["own"]
    assert driver.execute_script(bands) == 1
    assert [m for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")] == []


def test_the_view_survives_a_reload_and_a_foreign_fragment_is_ignored(driver, files):
    """A newer build reloads the page: the reader's region, product line and period come back from the address's
    #fragment. A fragment naming what the dashboard does not offer leaves the defaults."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    out, packs = files
    p = packs["executive"]
    open_page(driver, out / "executive.html")
    for act in (lambda: Select(driver.find_element(By.ID, "scope")).select_by_value("North"),
                lambda: Select(driver.find_element(By.ID, "line")).select_by_value("Hardware"),
                lambda: driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').click()):
        n = updates(driver)
        act()
        wait_update(driver, n)
    assert driver.execute_script("return location.hash") == "#grain=Q&scope=North&line=Hardware&own=0"

    driver.refresh()
    waiter(driver).until(lambda d: d.execute_script("return document.documentElement.getAttribute('data-ready')"))
    assert driver.find_element(By.ID, "scope").get_attribute("value") == "North"
    assert driver.find_element(By.ID, "line").get_attribute("value") == "Hardware"
    assert driver.find_element(By.CSS_SELECTOR, '#grain button[data-grain="Q"]').get_attribute("aria-pressed") == "true"
    k = p.kpis[p.kpis["region"] == "North"].set_index("period")
    assert tile_text(driver, "revenue")[0] == words.fmt_money(k.loc["2025-04-01":"2025-06-01", "revenue"].sum())
    assert driver.find_element(By.ID, "fc-msg").text.startswith("North / Hardware: ")

    defaults = {}
    for key, fragment in (("executive", ""), ("executive", "#grain=Z&scope=%3Cimg%20src%3Dx%3E&line=%E0%A4%A&own=7"),
                          ("north", "#scope=South&line=Hardware")):
        open_page(driver, out / f"{key}.html")   # the page's own defaults first
        defaults[key] = (driver.find_element(By.ID, "scope").get_attribute("value"),
                         driver.find_element(By.CSS_SELECTOR, '#grain button[aria-pressed="true"]').text)
        driver.get((out / f"{key}.html").as_uri() + fragment)
        driver.refresh()
        waiter(driver).until(lambda d: d.execute_script(
            "return document.documentElement.getAttribute('data-ready')"))
        assert (driver.find_element(By.ID, "scope").get_attribute("value"),
                driver.find_element(By.CSS_SELECTOR, '#grain button[aria-pressed="true"]').text) == defaults[key]
        assert driver.find_elements(By.CSS_SELECTOR, "#tiles img") == []
        assert [m for m in driver.get_log("browser") if m["level"] == "SEVERE"] == []
    assert defaults["north"][0] == "North"
