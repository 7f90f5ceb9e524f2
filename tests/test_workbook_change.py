"""The What changed sheet, read back with openpyxl: the bridge as exact numbers beside the report's words,
the movers, a native chart of the parts, and names from data that stay text."""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile

import openpyxl
import pytest
from conftest import make_pack

from datastory import config, workbook
from datastory.deliver import compose
from datastory.present.change import what_changed
from datastory.present.email import facts
from datastory.report import sections

SHEET = "What changed"


def sheet(p):
    data = workbook.build(p)
    return data, openpyxl.load_workbook(io.BytesIO(data))[SHEET]


def rows_of(ws) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows()]


@pytest.mark.parametrize("audience", ["executive", "north"])
def test_bridge_rows_read_back_exactly(audience):
    p = make_pack(audience)
    ch = what_changed(p)
    data, ws = sheet(p)
    assert workbook.SHEETS.index(SHEET) == 1
    rows = rows_of(ws)
    assert rows[0][0] == ch.title and rows[2][0] == ch.sentence
    by_label = {r[0]: r for r in rows if r and r[0]}
    for row in ch.rows + ch.split:
        label, amount, customers, text = by_label[row.label][:4]
        assert amount == pytest.approx(row.amount, abs=0.001) and customers == row.customers and text == row.text
    steps = [by_label[r.label][1] for r in ch.steps]
    assert round(sum(steps) * 100) == round((by_label[ch.rows[-1].label][1] - by_label[ch.rows[0].label][1]) * 100)
    for m in ch.movers:
        assert [m.name, m.previous, m.current, m.change, m.change_text] in [r[:5] for r in rows]


def test_the_chart_plots_the_six_parts():
    p = make_pack()
    data, ws = sheet(p)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    charts = [n for n in names if n.startswith("xl/charts/chart")]
    xml = {n: zipfile.ZipFile(io.BytesIO(data)).read(n).decode() for n in charts}
    mine = [x for x in xml.values() if "'What changed'!" in x]
    assert len(mine) == 1 and "<barChart>" in mine[0] and mine[0].count("<dPt>") == 6
    ref = re.search(r"'What changed'!\$B\$(\d+):\$B\$(\d+)", mine[0])
    first, last = int(ref.group(1)), int(ref.group(2))
    labels = [ws.cell(row=i, column=1).value for i in range(first, last + 1)]
    assert labels == [r.label for r in what_changed(p).steps]


def test_no_previous_period_is_a_sentence_on_the_sheet(tiny_pack):
    import dataclasses

    p = dataclasses.replace(tiny_pack, bridge=tiny_pack.bridge.iloc[0:0], movers=tiny_pack.movers.iloc[0:0])
    data, ws = sheet(p)
    assert rows_of(ws)[2][0] == what_changed(p).message
    assert not [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.startswith("xl/charts/")
                and "'What changed'!" in zipfile.ZipFile(io.BytesIO(data)).read(n).decode()]


@pytest.mark.parametrize("name", ["<script>alert(1)</script>", "=cmd|' /C calc'!A0",
                                  "\u202eevil\u200f Ltd \u05e9\u05dc\u05d5\u05dd"])
def test_hostile_names_stay_text_in_workbook_report_and_email(name):
    p = make_pack(hostile=name)
    ch = what_changed(p)
    assert name in {m.name for m in ch.movers}  # the hostile customer is a mover
    data, ws = sheet(p)
    cells = [c for row in ws.iter_rows() for c in row if c.value == name]
    assert cells and all(c.data_type == "s" for c in cells)
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read(f"xl/worksheets/sheet{workbook.SHEETS.index(SHEET) + 1}.xml")
    assert b"<f>" not in sheet_xml and b"<f " not in sheet_xml
    html = sections.what_changed(p)
    assert sections.e(name) in html and "<script>" not in html
    aud = config.Audience(label=p.label, regions="all", to=["r@example.com"])
    msg = email.message_from_bytes(compose.to_bytes(compose.compose(facts(p), b"%PDF-1.7", b"PK", aud,
                                                                    config.DeliverParams())),
                                   policy=email.policy.default)
    assert "<script>alert" not in msg.get_body(("html",)).get_content()
