"""dashboard.page: one self-contained file whose data stays inert text, whatever the names hold."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from conftest import make_pack

from datastory import dashboard
from datastory.dashboard import data, page

# The hostile corpus of the reports' tests, and what breaks out of a <script> element.
HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", '" onmouseover="alert(3)',
           "</script><script>alert(4)</script>", "<!-- <script>", "شركة النور \u202eexe.fdp",
           "line\u2028separator\u2029paragraph", "Rocket 🚀 GmbH 👩\u200d💻", "'single' & \"double\""]
BUNDLE = "window.vegaEmbed = function () {}; var s = '</script><!--';"   # a stand-in library with the traps


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in = dict(attrs)
            self.scripts.append("")

    def handle_data(self, text):
        if self._in is not None:
            self.scripts[-1] += text

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None


def parse(html: str) -> Elements:
    e = Elements()
    e.feed(html)
    return e


@pytest.mark.parametrize("text", HOSTILE)
def test_json_script_cannot_leave_its_element_and_reads_back(text):
    obj = {"name": text, "list": [text, 1.5, None]}
    out = page.json_script(obj)
    assert "<" not in out and ">" not in out and "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == obj


def test_json_script_refuses_nan():
    with pytest.raises(ValueError):
        page.json_script({"x": float("nan")})


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_stay_data(name):
    p = make_pack(hostile=name)
    html = dashboard.build(p, bundle=BUNDLE)
    doc = parse(html)
    assert [t for t, _ in doc.tags].count("script") == 3
    assert not [(t, a) for t, a in doc.tags if any(k.lower().startswith("on") for k in a)]
    assert not [t for t, _ in doc.tags if t == "img"]
    assert "alert(" not in html.replace(page.json_script(name), "")   # only inside the JSON, escaped
    embedded = json.loads(doc.scripts[0])
    assert name in {c["name"] for c in embedded["calls"]}


def test_the_page_holds_one_data_island_the_library_and_the_app():
    p = make_pack()
    html = dashboard.build(p, bundle=BUNDLE)
    doc = parse(html)
    kinds = [a.get("type") for t, a in doc.tags if t == "script"]
    assert kinds == ["application/json", None, None]
    assert json.loads(doc.scripts[0]) == json.loads(page.json_script(data.extract(p)))
    assert "<\\/script><\\!--" in doc.scripts[1]
    csp = next(a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_a_regional_file_holds_no_other_regions_customers():
    north, company = (dashboard.build(make_pack(a), bundle=BUNDLE) for a in ("north", "executive"))
    cs = make_pack().churn_scores
    south = [f'"{c}"' for c in cs.loc[cs["region"] == "South", "customer_id"]]
    at_risk = [f'"{c}"' for c in cs.loc[(cs["region"] == "South") & (cs["status"] != ""), "customer_id"]]
    assert at_risk and all(c in company for c in at_risk)
    assert not any(c in north for c in south)
    south_names = cs.loc[cs["region"] == "South", "customer_name"]
    assert not any(n in north for n in south_names)


def test_same_pack_same_bytes_and_freshness_shown():
    p = make_pack("north")
    one, two = dashboard.build(p, bundle=BUNDLE), dashboard.build(p, bundle=BUNDLE)
    assert one == two
    assert f"Last day of data: {p.provenance.period_end}" in one and p.provenance.params_hash in one


def test_with_the_real_bundle_the_file_is_small_and_offline():
    html = dashboard.build(make_pack())
    assert len(html.encode("utf-8")) < 3_000_000
    library = parse(html).scripts[1]
    assert "window.vegaEmbed" in library
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=""", html.replace(library, ""))


def test_the_bundle_is_made_once_per_wheel_version_then_read_from_the_cache(tmp_path):
    made = page.bundle()
    cache = tmp_path / "cache"
    assert page.bundle(cache) == made                      # made, and kept
    kept = list(cache.iterdir())
    assert len(kept) == 1 and page.VEGA_LITE in kept[0].name and kept[0].read_text(encoding="utf-8") == made
    kept[0].write_text("window.vegaEmbed = 'from the cache';", encoding="utf-8")
    assert page.bundle(cache) == "window.vegaEmbed = 'from the cache';"   # read, not made again
    assert page.bundle() == made                           # without a cache: always made


def test_a_cache_that_cannot_be_written_still_gives_the_bundle(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go", encoding="utf-8")
    assert "window.vegaEmbed" in page.bundle(blocker / "cache")
    assert blocker.read_text(encoding="utf-8") == "a file where the cache folder would go"
