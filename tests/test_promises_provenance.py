"""Promises 4 and 5 on the session's `built` project (read only, no extra pipeline run).

4: with the default params nothing is sent: every audience gets an .eml in the outbox and no delivery
   ledger exists (the ledger is written only after a successful send).
5: every report artifact carries its provenance: data period, git commit and parameters hash.
"""

from __future__ import annotations

import email
import json
import re
from email import policy

import openpyxl
import pytest
import yaml
from e2e import REPO, sh
from pypdf import PdfReader

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AUDIENCES = list(yaml.safe_load((REPO / "params/report.yaml").read_text())["audiences"])


def test_default_run_sends_nothing(built):
    assert yaml.safe_load((built / "params/deliver.yaml").read_text())["send"] is False
    assert sorted(p.stem for p in (built / "reports/outbox").glob("*.eml")) == sorted(AUDIENCES)
    assert not (built / ".datastory" / "ledger.json").exists()


def test_every_report_artifact_carries_period_commit_and_params_hash(built):
    commit = sh(built, "git", "rev-parse", "HEAD").stdout.strip()[:12]
    quality = json.loads((built / "data/interim/data_quality.json").read_text())
    period = (quality["period_start"], quality["period_end"])
    for key in AUDIENCES:
        folder = built / "reports" / key
        html = (folder / "report.html").read_text(encoding="utf-8")
        footer = re.search(r'<footer class="provenance">(.*?)</footer>', html, re.S)
        assert footer, key
        assert commit in footer.group(1) and all(d in footer.group(1) for d in period), key
        params_hash = re.search(r"params ([0-9a-f]{8,})", footer.group(1))
        assert params_hash, footer.group(1)
        pdf = " ".join(p.extract_text() or "" for p in PdfReader(folder / "report.pdf").pages)
        assert commit in pdf and params_hash.group(1) in pdf, key
        wb = openpyxl.load_workbook(folder / "report.xlsx", read_only=True)
        about = " ".join(str(v) for row in wb["About"].iter_rows(values_only=True) for v in row if v is not None)
        wb.close()
        assert commit in about and params_hash.group(1) in about and period[1] in about, key
        msg = email.message_from_bytes((built / "reports/outbox" / f"{key}.eml").read_bytes(),
                                       policy=policy.default)
        body = msg.get_body(preferencelist=("plain",)).get_content()
        assert commit in body, key
