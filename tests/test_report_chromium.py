"""The report HTML in headless Chromium: every image loads, nothing overflows the page, no requests.

The executive report of the hostile tiny project is built once per module, the way the pipeline
builds it (papermill runs notebooks/05_report.ipynb, report.build renders it). Our HTML has no
JavaScript, so a TEST COPY gets a small probe <script> that measures the page on `load` and writes
the facts as JSON into the DOM; `chromium --dump-dom` hands them back. One launch measures every
viewport width: each copy sits in a srcdoc iframe of that width (same origin as the parent, whose
own `load` waits for every frame's, so the parent then collects all probes deterministically); a
second launch takes a screenshot of the untouched report. A deliberately spoiled copy (broken image,
external image, over-wide block) is measured in the same launch to prove the probe can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import HOSTILE, REPO, tiny_frames, write_artifacts

from datastory import config, report, runner

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--force-color-profile=srgb", "--host-resolver-rules=MAP * ~NOTFOUND")
WIDTHS = (1280, 800, 794, 360)  # desktop, narrow, A4 at 96 dpi (794 x 1123), the common small phone
PAGE_HEIGHT = 1123
SHOT_SIZE = (1280, 900)
BRAND_BLUE = (0x00, 0x72, 0xB2)  # report.css: h1 colour and the cover's bottom border
PROBE_ID = "datastory-probe"
URL_ATTRS = {"src", "href", "srcset", "action", "formaction", "poster", "background", "data", "xlink:href"}

# Runs on `load`: measures the document and writes the facts as JSON into <pre id="probe">.
PROBE_JS = """
window.addEventListener("load", function () {
  var de = document.documentElement, cw = de.clientWidth, over = [], urls = [];
  var all = Array.prototype.slice.call(document.querySelectorAll("*"));
  all.forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > cw + 0.5 || r.left < -0.5) {
      over.push({tag: el.tagName.toLowerCase(), cls: String(el.className), left: r.left, right: r.right});
    }
    Array.prototype.forEach.call(el.attributes, function (a) {
      if (URL_ATTRS.indexOf(a.name) >= 0) { urls.push(a.value.slice(0, 40)); }
    });
  });
  var facts = {
    innerWidth: window.innerWidth, clientWidth: cw, scrollWidth: de.scrollWidth,
    images: Array.prototype.map.call(document.images, function (i) {
      return {complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
              width: i.getBoundingClientRect().width, src: i.getAttribute("src").slice(0, 30)};
    }),
    overflowing: over.slice(0, 10), nOverflowing: over.length,
    scripts: Array.prototype.map.call(document.scripts, function (s) { return s.id; }),
    onHandlers: all.filter(function (el) {
      return Array.prototype.some.call(el.attributes, function (a) { return /^on/i.test(a.name); });
    }).length,
    urls: urls,
    stylesheetHrefs: Array.prototype.map.call(document.styleSheets, function (s) { return s.href; }),
    resources: performance.getEntriesByType("resource").map(function (e) { return e.name; }),
    text: document.body.innerText
  };
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(facts);
  document.body.appendChild(pre);
});
"""

# Runs in the parent page on its `load`, i.e. after every iframe (and so every probe) has loaded.
COLLECT_JS = """
window.addEventListener("load", function () {
  var out = Array.prototype.map.call(document.querySelectorAll("iframe"), function (f) {
    var pre = f.contentDocument && f.contentDocument.getElementById("probe");
    var facts = pre ? JSON.parse(pre.textContent) : {};
    facts.label = f.getAttribute("data-label");
    return facts;
  });
  document.getElementById("facts").textContent = JSON.stringify(out);
});
"""

SPOIL = ('<img src="data:image/png;base64,AAAA" alt="broken">'
         '<img src="http://evil.example/x.png" alt="external">'
         '<div style="width:3000px">too wide</div>')


def with_probe(html: str) -> str:
    """A test copy of the report with the probe script in <head> (the report itself has none)."""
    script = (f'<script id="{PROBE_ID}">var URL_ATTRS = {json.dumps(sorted(URL_ATTRS))};'
              f"{PROBE_JS}</script>\n</head>")
    assert html.count("</head>") == 1
    return html.replace("</head>", script, 1)


def run_chromium(binary: str, url: str, *flags: str) -> str:
    """One headless Chromium run on `url` with a fresh profile; its stdout (the DOM for --dump-dom)."""
    with tempfile.TemporaryDirectory(prefix="datastory-chromium-") as profile:
        proc = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *flags, url],
                              capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def measure_in_frames(binary: str, folder: Path, frames: list[tuple[str, str, int]]) -> dict[str, dict]:
    """Probe facts per label of (label, probed html, viewport width) frames, from ONE Chromium launch."""
    iframes = "".join(f'<iframe data-label="{label}" srcdoc="{escape(doc, quote=True)}" '
                      f'style="display:block;border:0;width:{w}px;height:{PAGE_HEIGHT}px"></iframe>'
                      for label, doc, w in frames)
    page = folder / "frames.html"
    page.write_text(f'<!DOCTYPE html><html><body><pre id="facts">[]</pre>{iframes}'
                    f"<script>{COLLECT_JS}</script></body></html>", encoding="utf-8")
    dom = run_chromium(binary, page.as_uri(), "--window-size=1400,1000", "--virtual-time-budget=5000",
                       "--dump-dom")
    m = re.search(r'<pre id="facts">(.*?)</pre>', dom, flags=re.DOTALL)
    assert m, f"no probe output in the dumped DOM: {dom[:500]}"
    facts = {f["label"]: f for f in json.loads(unescape(m.group(1)))}
    missing = [label for label, _, _ in frames if not facts.get(label, {}).get("innerWidth")]
    assert not missing, f"frames that never reported: {missing}"
    return facts


def write_hostile_project(root: Path) -> None:
    """The hostile tiny pack's frames as the artifacts the earlier stages write, plus params/ and notebooks/."""
    shutil.copytree(REPO / "params", root / "params")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    write_artifacts(root, tiny_frames(HOSTILE))


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    return binary


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """report.html of the hostile project's executive audience, as report.build renders it (papermill + nbconvert)."""
    root = tmp_path_factory.mktemp("chromium_project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DATASTORY_ROOT", raising=False)
        write_hostile_project(root)
        executed = runner.execute("report", root, extra={"audience": "executive"}, suffix="executive")
        html, _ = report.build(executed, config.load("report", root).page_size)
    out = root / "html"
    out.mkdir()
    (out / "report.html").write_text(html, encoding="utf-8")
    return out / "report.html"


@pytest.fixture(scope="module")
def probes(chromium, rendered) -> dict[str, dict]:
    """Probe facts per frame label ('w794', ..., 'spoiled'), all from ONE Chromium launch."""
    html = rendered.read_text(encoding="utf-8")
    probe, spoiled = with_probe(html), with_probe(html.replace("</main>", SPOIL + "</main>", 1))
    frames = [(f"w{w}", probe, w) for w in WIDTHS] + [("spoiled", spoiled, 794)]
    return measure_in_frames(chromium, rendered.parent, frames)


@pytest.fixture(scope="module")
def screenshot(chromium, rendered) -> Path:
    """A PNG of the first screen of the untouched executive report."""
    png = rendered.parent / "report.png"
    run_chromium(chromium, rendered.as_uri(), f"--window-size={SHOT_SIZE[0]},{SHOT_SIZE[1]}",
                 "--hide-scrollbars", f"--screenshot={png}")
    return png


class _Refs(HTMLParser):
    """Every tag, URL-bearing attribute value and <style> text of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.style: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.urls += [value or "" for name, value in attrs if name in URL_ATTRS]

    def handle_endtag(self, tag):
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data):
        if self._in_style:
            self.style.append(data)


def test_html_references_nothing_outside_the_page(rendered):
    html = rendered.read_text(encoding="utf-8")
    refs = _Refs()
    refs.feed(html)
    assert "script" not in refs.tags and "link" not in refs.tags and "iframe" not in refs.tags
    assert refs.urls and all(u.startswith(("data:image/png;base64,", "#")) for u in refs.urls), refs.urls
    css = "".join(refs.style)
    assert "http" not in css and "@import" not in css and "url(" not in css
    # the only http(s) text is the hostile customer name, shown escaped as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert len(re.findall(r"https?://", html)) == html.count('"http://evil.example/"')


@pytest.mark.parametrize("width", WIDTHS)
def test_every_image_loads(probes, rendered, width):
    facts = probes[f"w{width}"]
    n_img = rendered.read_text(encoding="utf-8").count("<img ")
    assert n_img >= 3  # revenue, forecast, segments, churn charts of the executive pack
    assert len(facts["images"]) == n_img
    for img in facts["images"]:
        assert img["src"].startswith("data:image/png;base64,")
        assert img["complete"] and img["naturalWidth"] > 0 and img["naturalHeight"] > 0, img
        assert 0 < img["width"] <= facts["clientWidth"]


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_overflows_the_page_width(probes, width):
    facts = probes[f"w{width}"]
    assert facts["innerWidth"] == width
    assert facts["scrollWidth"] <= facts["clientWidth"] <= width, facts
    assert facts["nOverflowing"] == 0, facts["overflowing"]


def test_no_request_leaves_the_page(probes):
    for width in WIDTHS:
        facts = probes[f"w{width}"]
        assert facts["resources"] == []  # resource timing lists every fetch, failed ones too (see spoiled)
        assert facts["stylesheetHrefs"] == [None]  # one inline <style>
        assert all(u.startswith(("data:", "#")) for u in facts["urls"]), facts["urls"]


def test_hostile_name_is_text_and_no_script_comes_from_data(probes):
    facts = probes["w794"]
    assert HOSTILE in facts["text"]
    assert facts["scripts"] == [PROBE_ID]  # only the test's own probe
    assert facts["onHandlers"] == 0


def test_the_probe_detects_broken_images_overflow_and_requests(probes):
    """Control: a spoiled copy must fail every check above, or the checks prove nothing."""
    bad = probes["spoiled"]
    assert bad["scrollWidth"] > bad["clientWidth"] and bad["nOverflowing"] >= 1
    assert any(o["tag"] == "div" and o["right"] > 3000 for o in bad["overflowing"])
    assert [i["naturalWidth"] for i in bad["images"]][-2:] == [0, 0]  # broken data: URI, blocked http
    assert bad["resources"] == ["http://evil.example/x.png"]
    assert any(u.startswith("http") for u in bad["urls"])


def test_screenshot_of_the_first_screen_is_not_blank(screenshot):
    pil = pytest.importorskip("PIL.Image")
    with pil.open(screenshot) as img:
        rgb = img.convert("RGB")
    assert rgb.size == SHOT_SIZE
    colours = rgb.getcolors(maxcolors=SHOT_SIZE[0] * SHOT_SIZE[1])
    assert len(colours) > 50  # text anti-aliasing, brand blue, greys: not a blank page
    assert max(colours)[1] == (255, 255, 255)  # white page background dominates
    assert any(c == BRAND_BLUE for _, c in colours), "cover title/border colour missing: CSS not applied?"
