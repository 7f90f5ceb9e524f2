"""The Excel workbook: read back with openpyxl and by unzipping its XML."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import html
import io
import re
import shutil
import subprocess
import time
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import HOSTILE, make_pack

from datastory import config, kpis, schema, workbook
from datastory.errors import DataError
from datastory.present import story, words
from datastory.workbook import _cells, _churn, _fastrows, _forecast, _summary


@pytest.fixture
def churn_pack(tiny_pack):
    """tiny_pack with the churn stage's "churn_rate" (conftest's churn metrics lack it)."""
    return dataclasses.replace(tiny_pack, churn_metrics={**tiny_pack.churn_metrics, "churn_rate": 0.2})


def is_red(cell) -> bool:
    return cell.fill.fill_type == "solid" and str(cell.fill.fgColor.rgb).upper().endswith(workbook.RED_FILL_RGB)


def summary_rows(data: bytes) -> dict:
    ws = load(data)["Summary"]
    return {r[0].value: r for r in ws.iter_rows() if isinstance(r[0].value, str)}


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def xml(data: bytes, name: str) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read(name).decode("utf-8")


def sheet_xml(data: bytes) -> dict[str, str]:
    z = zipfile.ZipFile(io.BytesIO(data))
    return {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


def churn_rows(wb: openpyxl.Workbook) -> list[tuple]:
    ws = wb["Churn risk"]
    return [r for r in ws.iter_rows(min_row=2) if r[0].value is not None]


def test_sheets_in_order(churn_pack):
    assert load(workbook.build(churn_pack)).sheetnames == workbook.SHEETS


def test_build_rejects_non_pack_and_missing_column(tiny_pack):
    with pytest.raises(DataError, match="Pack"):
        workbook.build({"kpis": None})
    broken = dataclasses.replace(tiny_pack, churn_scores=tiny_pack.churn_scores.drop(columns="revenue_at_risk"))
    with pytest.raises(DataError, match="churn_scores.*revenue_at_risk") as err:
        workbook.build(broken)
    assert err.value.column == "revenue_at_risk"
    with pytest.raises(DataError, match="forecast is not a data frame"):
        workbook.build(dataclasses.replace(tiny_pack, forecast=None))


def test_kpi_tiles_are_the_reports_numbers(churn_pack):
    ch = story.headline_change(churn_pack)
    own = story.churn_rate(churn_pack.churn_scores)
    tiles = {t["key"]: t for t in workbook.kpi_tiles(ch, churn_pack.churn_metrics, own)}
    assert list(tiles) == list(_summary.LABELS)
    assert set(_summary.KPI_FORMATS) == set(words.KPI_LABELS)  # a format for every KPI the report shows
    # the data ends 2025-05-31, so June is incomplete: May is compared with April
    k = churn_pack.kpis
    may = k[(k.region == "All") & (k.period == "2025-05-01")].iloc[0]
    apr = k[(k.region == "All") & (k.period == "2025-04-01")].iloc[0]
    assert tiles["revenue"]["value"] == may.revenue and tiles["revenue"]["previous"] == apr.revenue
    assert tiles["revenue"]["change"] == pytest.approx(may.revenue / apr.revenue - 1)
    assert tiles["revenue"]["trend"] == "up" and tiles["revenue"]["good"] is True
    assert tiles["active_customers"]["trend"] == "flat" and tiles["active_customers"]["good"] is None
    for key in words.KPI_LABELS:
        item = ch["kpis"][key]
        assert {f: tiles[key][f] for f in ("value", "previous")} == {f: item[f] for f in ("value", "previous")}
        assert tiles[key]["words"] == words.kpi_delta(key, item)  # the report's and the email's words
        if key in words.RATE_KPIS:  # a rate moves in percentage points, never by a relative %
            assert tiles[key]["change"] == words.rate_points(item["value"], item["previous"])[0]
            assert tiles[key]["change_fmt"].endswith('" pt"')
        else:
            assert tiles[key]["change"] == item["change"]
    churn = tiles["churn_rate"]
    assert churn["value"] == pytest.approx(churn_pack.churn_scores["probability"].mean())  # its own customers
    assert churn["previous"] is None and churn["change"] is None
    assert workbook.kpi_tiles(ch, churn_pack.churn_metrics)[-1]["value"] == 0.2  # without own scores: the metrics
    assert churn["good"] is None and "2025-05-31" in churn["note"]
    # the Summary sheet carries exactly these numbers, in the tiles' order
    rows = summary_rows(workbook.build(churn_pack))
    for t in tiles.values():
        row = rows[t["label"]]
        assert row[1].value == pytest.approx(t["value"])
        assert row[3].value == (pytest.approx(t["change"]) if t["change"] is not None else None)
    assert "Whole company: May 2025 vs April 2025" in next(k for k in rows if k.startswith("Key figures"))


def test_kpi_tiles_reject_bad_input(churn_pack):
    ch = story.headline_change(churn_pack)
    broken = {**ch, "kpis": {k: v for k, v in ch["kpis"].items() if k != "orders"}}
    with pytest.raises(DataError, match="lacks orders") as err:
        workbook.kpi_tiles(broken)
    assert err.value.column == "orders"
    with pytest.raises(DataError, match="lacks"):
        workbook.kpi_tiles({"period": "2025-05-01"})
    with pytest.raises(DataError, match="churn_rate is not a number") as err:
        workbook.kpi_tiles(ch, {"churn_rate": "high"})
    assert err.value.file == config.where("churn_metrics")  # the record it came from, as paths.yaml declares it
    with pytest.raises(DataError, match="churn_rate"):
        workbook.kpi_tiles(None, {"churn_rate": True})
    with pytest.raises(DataError, match="churn_rate"):  # and build stops before writing any sheet
        workbook.build(dataclasses.replace(churn_pack, churn_metrics={"churn_rate": [0.2]}))
    assert workbook.kpi_tiles(None, {"churn_rate": float("nan")}) == []  # nobody scored: no churn tile
    assert workbook.kpi_tiles(None, None) == []


def test_summary_arrows_and_colours(churn_pack):
    k = churn_pack.kpis.copy()
    k.loc[(k.region == "All") & (k.period == "2025-05-01"), "return_rate"] = 0.03  # more returns: bad
    rows = summary_rows(workbook.build(dataclasses.replace(churn_pack, kpis=k)))
    assert rows["Revenue"][4].value == "▲" and rows["Revenue"][4].font.color.rgb == _cells.GREEN
    assert rows["Return rate"][4].value == "▲" and rows["Return rate"][4].font.color.rgb == _cells.RED
    assert rows["Return rate"][3].value == pytest.approx(1.0)  # 2% -> 3%: +1.0 pt, never "+50%"
    assert rows["Return rate"][3].number_format == _summary.FMT_POINTS
    assert rows["Active customers"][4].value is None  # flat: no arrow
    assert rows["Revenue"][3].number_format == _cells.FMT_CHANGE
    assert rows["Revenue"][1].number_format == _cells.FMT_MONEY and rows["Revenue"][5].value == "EUR"
    assert rows["Return rate"][1].number_format == _cells.FMT_PCT and rows["Return rate"][5].value is None
    churn = rows["Churn rate"]
    assert churn[1].value == pytest.approx(churn_pack.churn_scores["probability"].mean())
    assert churn[1].number_format == _cells.FMT_PCT
    assert churn[2].value is None and churn[3].value is None and churn[4].value is None
    assert "no earlier score" in churn[6].value


def test_summary_with_too_few_periods_says_so(churn_pack):
    prov = dataclasses.replace(churn_pack.provenance, period_end="2025-01-31")  # only January is complete
    short = dataclasses.replace(churn_pack, provenance=prov)
    assert story.headline_change(short) is None
    rows = summary_rows(workbook.build(short))
    assert words.NO_EARLIER_PERIOD in rows
    assert "Revenue" not in rows
    assert rows["Churn rate"][1].value == pytest.approx(short.churn_scores["probability"].mean())
    assert "Key figures, Whole company" in rows


def test_summary_without_kpis_or_headline_region(churn_pack):
    rows = summary_rows(workbook.build(dataclasses.replace(churn_pack, kpis=churn_pack.kpis.iloc[0:0])))
    assert "No KPI data for this audience." in rows and "Revenue" not in rows
    regional = churn_pack.kpis[churn_pack.kpis.region != "All"].reset_index(drop=True)
    with pytest.raises(DataError, match="no KPIs for region 'All'"):
        workbook.build(dataclasses.replace(churn_pack, kpis=regional))


def test_north_summary_is_norths_change(north_pack):
    rows = summary_rows(workbook.build(north_pack))
    ch = kpis.latest_change(north_pack.kpis, "North", "2025-05-31")
    assert rows["Revenue"][1].value == ch["kpis"]["revenue"]["value"]
    assert "Key figures, North: May 2025 vs April 2025" in rows


def test_summary_chart_references_headline_rows_forecast_focused(tiny_pack):
    data = workbook.build(tiny_pack)
    ws = load(data)["Forecast"]
    col_a = [c.value for c in ws["A"]]
    assert col_a[0] == "Series"
    first = col_a.index("Whole company") + 1  # the headline's rows come first
    n = int((tiny_pack.forecast.series_id == "All").sum())
    assert col_a[first - 1:first - 1 + n] == ["Whole company"] * n and col_a[first - 1 + n] != "Whole company"
    n_hist = int((~tiny_pack.forecast.loc[tiny_pack.forecast.series_id == "All", "is_forecast"]).sum())
    start = max(first, first + n_hist - _forecast.CHART_HISTORY)
    chart = xml(data, "xl/charts/chart1.xml")
    assert "chart1.xml" in xml(data, "xl/drawings/_rels/drawing1.xml.rels")
    assert f"'Forecast'!$D${start}:$D${first + n - 1}" in chart  # dates of the last actuals and the forecast
    for col in "FGHI":
        assert f"'Forecast'!${col}${start}:${col}${first + n - 1}" in chart
    assert "<dateAx>" in chart and _forecast.FMT_AXIS_DATE in chart  # a date axis, labelled by month
    charts = [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.startswith("xl/charts/chart")]
    on_forecast = [n for n in charts if "'Forecast'!" in xml(data, n)]
    assert len(on_forecast) == 1  # the long table has no per-block charts (the other is What changed's)


def test_forecast_sheet_is_one_filterable_long_table(tiny_pack):
    data = workbook.build(tiny_pack)
    ws = load(data)["Forecast"]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == [h for h, _ in _forecast.COLUMNS]
    assert len(rows) == len(tiny_pack.forecast) + 1
    assert ws.freeze_panes == "A2" and ws.print_title_rows == "$1:$1"
    table = ws.tables[_forecast.TABLE_NAME]
    assert table.ref == f"A1:J{len(rows)}" and table.autoFilter is not None
    series = list(dict.fromkeys(r[0] for r in rows[1:]))
    assert series == ["Whole company", "North", "South", "North / Hardware", "South / Hardware"]
    kinds = {r[4] for r in rows[1:]}
    assert kinds == {"actual", "forecast"}
    assert sum(r[4] == "forecast" for r in rows[1:]) == int(tiny_pack.forecast["is_forecast"].sum())
    dates = [c for c in ws["D"] if isinstance(c.value, dt.datetime)]
    assert len(dates) == len(tiny_pack.forecast) and all(c.number_format == _cells.FMT_DATE for c in dates)
    assert {r[9] for r in rows[1:]} == {"Prophet", "seasonal naive"}


def test_accuracy_sheet_is_the_reports_table_with_mase(tiny_pack):
    from datastory.report import sections

    ws = load(workbook.build(tiny_pack))["Accuracy"]
    rows = [r for r in ws.iter_rows(values_only=True) if r[0]]
    header = next(i for i, r in enumerate(rows) if r[0] == "Segment")
    head, body = rows[header], rows[header + 1:]
    want_head, want_rows = story.accuracy_rows(tiny_pack)
    assert list(head[:6]) == want_head and list(head[6:]) == ["MASE", "Baseline MASE", "Verdict"]
    assert [list(r[:6]) for r in body] == want_rows
    html_table = sections.accuracy_table(tiny_pack)
    for row in want_rows:  # word for word the PDF's table
        assert "".join(f"<td>{html.escape(v)}</td>" for v in row) in html_table
    m = tiny_pack.forecast_metrics["series"]["North"]
    north = next(r for r in body if r[0] == "North")
    assert north[6] == m["mase"] and north[7] == m["naive_mase"] and north[8] == "beats seasonal naive"


def test_accuracy_sheet_range_is_the_recorded_range_of_the_total(tiny_pack):
    from datastory.report import sections

    fm = {**tiny_pack.forecast_metrics}
    fm["series"] = {**fm["series"], "North": {**fm["series"]["North"], "total_periods": 4, "total": 5000.0,
                                              "total_lower": 4200.0, "total_upper": 6100.0,
                                              "total_range": "backtested"}}
    p = dataclasses.replace(tiny_pack, forecast_metrics=fm)
    ws = load(workbook.build(p))["Accuracy"]
    north = next(r for r in ws.iter_rows(values_only=True) if r[0] == "North")
    assert north[1:3] == ("5.0 k", "4.2 k to 6.1 k")   # not the per-period bounds summed
    assert "<td>4.2 k to 6.1 k</td>" in sections.accuracy_table(p)


def test_accuracy_sheet_says_when_a_series_is_not_backtested(tiny_pack):
    fm = {**tiny_pack.forecast_metrics}
    fm["series"] = {**fm["series"], "North": {**fm["series"]["North"], "folds": 0, "smape": None, "mase": None}}
    ws = load(workbook.build(dataclasses.replace(tiny_pack, forecast_metrics=fm)))["Accuracy"]
    north = next(r for r in ws.iter_rows(values_only=True) if r[0] == "North")
    assert north[3] == "not backtested" and north[8] == "no backtest"


def test_churn_sheet_order_fill_formats_table(tiny_pack):
    wb = load(workbook.build(tiny_pack))
    ws = wb["Churn risk"]
    rows = churn_rows(wb)
    scores = tiny_pack.churn_scores
    assert len(rows) == len(scores)
    risk = [r[5].value for r in rows]
    assert risk == sorted(risk, reverse=True)
    filled = {r[0].value for r in rows if is_red(r[0])}
    assert filled == set(scores.loc[scores.red, "customer_id"])
    assert {r[11].value for r in rows if is_red(r[0])} == {"yes"}  # "Call this week"
    assert {r[11].value for r in rows if not is_red(r[0])} == {"no"}
    assert {r[10].value for r in rows if is_red(r[0])} == {"call"}  # "Call or watch"
    assert {r[9].value for r in rows} == set(scores["list"])  # "List": win back / second purchase
    new = {r[0].value for r in rows if r[12].value == "yes"}  # "New on the list"
    assert new == set(scores.loc[scores.newly_red, "customer_id"]) and new <= filled
    for r in rows:  # the whole row is filled, or none of it
        assert len({c.fill.fgColor.rgb for c in r}) == 1
    first = rows[0]
    assert first[3].number_format == _cells.FMT_PCT
    assert first[4].number_format == first[5].number_format == "#,##0"
    assert first[6].number_format == "#,##0"
    assert isinstance(first[7].value, dt.datetime) and first[7].number_format == _cells.FMT_DATE
    assert ws.freeze_panes == "A2"
    assert not ws.auto_filter.ref  # the table's own autoFilter, not a sheet one
    table = ws.tables[_churn.TABLE_NAME]
    assert table.ref == f"A1:M{len(scores) + 1}" and table.autoFilter.ref == table.ref
    headers = [c.value for c in ws[1]]
    assert table.column_names == headers and len(set(headers)) == len(headers)
    assert ws.column_dimensions["B"].width >= 20


def test_north_pack_only_north(north_pack):
    north_pack = dataclasses.replace(north_pack, churn_metrics={**north_pack.churn_metrics, "churn_rate": 0.3})
    wb = load(workbook.build(north_pack))
    rows = churn_rows(wb)
    assert rows and {r[2].value for r in rows} == {"North"}
    ws = wb["Forecast"]
    assert list(dict.fromkeys(r[0] for r in ws.iter_rows(min_row=2, values_only=True))) == ["North", "North / Hardware"]
    summary = [c.value for r in wb["Summary"].iter_rows() for c in r if isinstance(c.value, str)]
    assert not any("South" in v for v in summary)


def test_empty_churn_and_forecast_still_build(tiny_pack):
    empty = dataclasses.replace(tiny_pack, churn_scores=tiny_pack.churn_scores.iloc[0:0],
                                forecast=tiny_pack.forecast.iloc[0:0])
    data = workbook.build(empty)
    wb = load(data)
    ws = wb["Churn risk"]
    assert "No customers" in ws["A2"].value and not ws.tables
    assert any("No forecast" in str(c.value) for r in wb["Summary"].iter_rows() for c in r)
    charts = [n for n in zipfile.ZipFile(io.BytesIO(data)).namelist() if n.startswith("xl/charts/chart")]
    assert not [n for n in charts if "'Forecast'!" in xml(data, n)]  # What changed keeps its own chart


HOSTILE_NAMES = [HOSTILE, "=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=tab", "\r=cr", "\n=lf", "=a\r\nb", "  lead", "#N/A", "#REF!"]


def hostile_pack(names: list[str]):
    p = make_pack()
    scores = p.churn_scores.copy()
    scores = pd.concat([scores] * (len(names) // len(scores) + 1), ignore_index=True).iloc[:len(names)]
    scores["customer_id"] = [f"=ID{i}" for i in range(len(names))]
    scores["customer_name"] = pd.array(names, dtype="string")
    scores["reasons"] = pd.array(["@reason", *names[1:]], dtype="string")
    scores["region"] = pd.array(["North"] * len(names), dtype="string")
    return dataclasses.replace(p, churn_scores=scores, label="=Exec", title="+Title", company="-Co")


def test_strings_never_become_formulas():
    data = workbook.build(hostile_pack(HOSTILE_NAMES))
    for name, text in sheet_xml(data).items():
        assert "<f>" not in text and "<f " not in text, name
    wb = load(data)
    cells = {r[1].value: r[1] for r in churn_rows(wb)}
    assert set(cells) == set(HOSTILE_NAMES)
    for name in HOSTILE_NAMES:
        assert cells[name].data_type == "s"
    assert all(r[0].value.startswith("=ID") and r[0].data_type == "s" for r in churn_rows(wb))
    summary = wb["Summary"]
    assert summary["A1"].value == "+Title" and summary["A1"].data_type == "s"
    assert summary["A2"].value == "-Co · =Exec"


def test_hostile_fixture_round_trips(hostile_pack):
    wb = load(workbook.build(hostile_pack))
    names = [r[1] for r in churn_rows(wb)]
    hit = [c for c in names if c.value == HOSTILE]
    assert len(hit) == 1 and hit[0].data_type == "s"


def test_control_characters_replaced():
    data = workbook.build(hostile_pack(["bad\x00name\x08", "ok\x1fend", "tab\tkept"]))
    got = {r[1].value for r in churn_rows(load(data))}
    assert got == {"bad\ufffdname\ufffd", "ok\ufffdend", "tab\tkept"}
    assert _cells.clean_text("a\x0bb\x0cc\x0e") == "a\ufffdb\ufffdc\ufffd"


class _FakeDatetime(dt.datetime):
    offset = dt.timedelta(0)

    @classmethod
    def now(cls, tz=None):
        return dt.datetime.now(tz) + cls.offset

    @classmethod
    def utcnow(cls):
        return dt.datetime.utcnow() + cls.offset


def _build_at(monkeypatch, pack, shift_days: int, tz: str) -> bytes:
    import openpyxl.packaging.core as core
    import openpyxl.writer.excel as excel

    fake = type("FakeDatetime", (_FakeDatetime,), {"offset": dt.timedelta(days=shift_days)})
    fake_mod = type("m", (), {"datetime": fake, "timezone": dt.timezone, "timedelta": dt.timedelta})
    monkeypatch.setattr(core, "datetime", fake_mod, raising=False)
    monkeypatch.setattr(excel, "datetime", fake_mod, raising=False)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + shift_days * 86400)
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        return workbook.build(pack)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_deterministic_bytes(monkeypatch, hostile_pack):
    a = _build_at(monkeypatch, hostile_pack, 0, "UTC")
    b = _build_at(monkeypatch, hostile_pack, 400, "Pacific/Kiritimati")
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    core = xml(a, "docProps/core.xml")
    assert "2025-05-31T00:00:00Z" in core and "datastory" in core
    infos = zipfile.ZipFile(io.BytesIO(a)).infolist()
    assert infos[0].filename == "[Content_Types].xml"
    assert {i.date_time for i in infos} == {_cells.FIXED_ZIP_TIME}


def test_data_quality_sheet(tiny_pack):
    dq = {**tiny_pack.data_quality, "rejected": {"amount not a number": 4, "unparseable date": 2},
          "excluded": {"=non-product line": 9}, "empty_periods": ["2025-02"], "source": "csv",
          "on_bad_rows": "quarantine"}
    ws = load(workbook.build(dataclasses.replace(tiny_pack, data_quality=dq)))["Data quality"]
    kv = {r[0]: r[1] for r in ws.iter_rows(values_only=True) if r[0]}
    assert kv["Excluded by rule: =non-product line"] == 9  # a reason from data stays text, never a formula
    assert kv["Months without any row"] == "2025-02" and kv["Source"] == "csv (bad rows: quarantine)"
    assert kv["Rows read"] == dq["rows_read"] and kv["Rows kept"] == dq["rows_kept"]
    assert kv["Duplicates removed"] == dq["duplicates_removed"]
    assert kv["Missing regions filled"] == dq["missing_region_filled"]
    assert kv["Rejected (unusable, set aside): amount not a number"] == 4
    assert kv["Rejected (unusable, set aside): unparseable date"] == 2
    assert kv["Period covered"] == f"{dq['period_start']} to {dq['period_end']}"


def test_about_sheet_params_and_provenance(tiny_pack):
    params = {"churn": {"capacity": 7, "second_purchase_capacity": 4, "window_days": 60},
              "report": {"audiences": {"executive": {"label": "Exec", "to": ["secret.boss@example.com"]}}}}
    data = workbook.build(tiny_pack, params=params)
    ws = load(data)["About"]
    kv = {r[0]: r[1] for r in ws.iter_rows(values_only=True) if r[0]}
    pairs = [(r[0], r[1]) for r in ws.iter_rows(values_only=True) if r[0]]
    assert ("churn.capacity", 7) in pairs and ("churn.second_purchase_capacity", 4) in pairs
    assert "the 7 win-back and 4 second-purchase customers" in kv["Red label"] and "60 days" in kv["Red label"]
    assert kv["Git commit"] == tiny_pack.provenance.commit
    assert kv["Parameters hash"] == tiny_pack.provenance.params_hash
    for key in ("Revenue", "Orders", "Active customers", "Average order value", "Churn rate"):
        assert kv[key]
    assert not any("secret.boss" in t for t in sheet_xml(data).values())
    no_params = {r[0]: r[1] for r in load(workbook.build(tiny_pack))["About"].iter_rows(values_only=True) if r[0]}
    assert "Not supplied" in str(no_params["Parameters used"] or "") or any(
        "Not supplied" in str(k) for k in no_params)


def test_long_and_empty_text():
    long = "x" * 40_000
    data = workbook.build(hostile_pack([long, "short"]))
    got = {r[1].value for r in churn_rows(load(data))}
    assert got == {"x" * _cells.MAX_TEXT, "short"}
    # empty reasons become empty cells, never an inline string without text (Excel would repair it)
    assert all(not re.search(r't="inlineStr"\s*/>', text) for text in sheet_xml(workbook.build(make_pack())).values())


def test_carriage_return_survives():
    names = ["\rcr", "a\r\nb", "x\ry"]
    got = {r[1].value for r in churn_rows(load(workbook.build(hostile_pack(names))))}
    assert got == set(names)


def test_save_writes_atomically(tmp_path, tiny_pack):
    out = workbook.save(tiny_pack, tmp_path / "r" / "report.xlsx")
    assert out.read_bytes() == workbook.build(tiny_pack)
    assert [p.name for p in out.parent.iterdir()] == ["report.xlsx"]
    with pytest.raises(DataError):
        workbook.save("not a pack", tmp_path / "bad.xlsx")
    assert not (tmp_path / "bad.xlsx").exists()


@pytest.mark.slow  # ~5 s: starts LibreOffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
@pytest.mark.parametrize("which", ["hostile_pack", "north_pack"])  # the company's workbook and a region's
def test_libreoffice_round_trip(tmp_path, request, which):
    """LibreOffice opens the file and saves it again with the same values, strings still strings."""
    pk = request.getfixturevalue(which)
    src = workbook.save(pk, tmp_path / "in" / "report.xlsx")
    out = tmp_path / "out"
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
                    "--convert-to", "xlsx", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=180)
    ours, theirs = load(src.read_bytes()), openpyxl.load_workbook(out / "report.xlsx")
    assert theirs.sheetnames == workbook.SHEETS
    for name in ("Churn risk", "Forecast", "Data quality"):
        # LibreOffice keeps 15 significant digits, so compare floats rounded
        a = [[round(c, 6) if isinstance(c, float) else c for c in r if c is not None]
             for r in ours[name].iter_rows(values_only=True)]
        b = [[round(c, 6) if isinstance(c, float) else c for c in r if c is not None]
             for r in theirs[name].iter_rows(values_only=True)]
        assert [r for r in a if r] == [r for r in b if r], name
    names = {r[1].value: r[1] for r in churn_rows(theirs)}
    assert set(names) == set(pk.churn_scores["customer_name"])
    assert all(cell.data_type == "s" for cell in names.values())  # HOSTILE included, still text
    assert "ChurnRisk" in theirs["Churn risk"].tables
    assert not re.search(r"<f[ >]", xml((out / "report.xlsx").read_bytes(), f"xl/worksheets/sheet{workbook.SHEETS.index('Churn risk') + 1}.xml"))


ODD_TEXT = [*HOSTILE_NAMES, "", None, "a & b <c> >d", "&amp; literal", "trail  ", "   ", "ctl\x00\x1f\x0b",
            "Müller – 東京 🚀", "x" * 33_000]


def big_churn_pack(n: int = 2_000):
    """n scored customers with hostile and odd text, NaN/inf numbers, NaT, a time of day and a 1900 date."""
    rng = np.random.default_rng(11)
    prob = rng.random(n)
    prob[::97] = np.nan
    value = rng.gamma(2.0, 800.0, n)
    value[5::89] = np.nan
    value[7::401] = np.inf
    last = pd.Timestamp("2025-05-31") - pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    last = pd.Series(last).mask(np.arange(n) % 53 == 0)  # NaT
    last[1] = pd.Timestamp("2025-03-04 13:30")
    last[2] = pd.Timestamp("1900-01-15")
    scores = pd.DataFrame({
        "customer_id": [f"=C{i:05d}" if i % 2 else f"C{i:05d}" for i in range(n)],
        "customer_name": [ODD_TEXT[i % len(ODD_TEXT)] for i in range(n)],
        "region": rng.choice(["North", "South", "+East"], n),
        "probability": prob, "red": np.nan_to_num(prob) >= 0.7, "annual_value": value,
        "revenue_at_risk": prob * value, "recency_days": rng.integers(0, 400, n),
        "frequency": rng.integers(1, 40, n), "last_order": last,
        "reasons": [None if i % 4 == 0 else ODD_TEXT[(3 * i) % len(ODD_TEXT)] for i in range(n)],
        "rank_in_region": np.arange(1, n + 1), "newly_red": np.arange(n) % 7 == 0,
        "list": np.where(np.arange(n) % 3 == 0, "second purchase", "win back"),
        "status": np.where(np.nan_to_num(prob) >= 0.7, "call", np.where(np.nan_to_num(prob) >= 0.5, "watch", "")),
    })
    scores = schema.conform(scores, schema.CHURN_SCORES, "churn_scores")
    return dataclasses.replace(make_pack(), churn_scores=scores)


def expected_text(v):
    if v is None or v is pd.NA or v == "":
        return None
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd", v)[:32_767]


def expected_number(v):
    return None if pd.isna(v) or np.isinf(v) else pytest.approx(float(v), rel=1e-15)


def test_large_churn_list_reads_back_cell_for_cell():
    pack = big_churn_pack()
    data = workbook.build(pack)
    assert not re.search(r"<f[ >]", xml(data, f"xl/worksheets/sheet{workbook.SHEETS.index('Churn risk') + 1}.xml"))
    df = pack.churn_scores
    risk = df["revenue_at_risk"].tolist()
    order = sorted(range(len(df)), key=lambda i: (pd.isna(risk[i]), 0 if pd.isna(risk[i]) else -risk[i],
                                                  df["customer_id"].iloc[i]))
    wb = load(data)
    ws = wb["Churn risk"]
    assert ws.max_row == len(df) + 1 and ws.tables[_churn.TABLE_NAME].ref == f"A1:M{len(df) + 1}"
    formats = {3: _cells.FMT_PCT, 4: "#,##0", 5: "#,##0", 6: "#,##0", 7: _cells.FMT_DATE}
    for r, i in zip(ws.iter_rows(min_row=2, max_col=12), order, strict=True):
        row = df.iloc[i]
        want = [expected_text(row[k]) for k in ("customer_id", "customer_name", "region")]
        want += [expected_number(row[k]) for k in ("probability", "annual_value", "revenue_at_risk")]
        want += [int(row["recency_days"])]
        want += [None if pd.isna(row["last_order"]) else row["last_order"].to_pydatetime()]
        want += [expected_text(row["reasons"]), row["list"], expected_text(row["status"]),
                 "yes" if row["red"] else "no"]
        assert [c.value for c in r] == want, f"row {r[0].row}"
        for j, c in enumerate(r):
            assert is_red(c) == bool(row["red"]), c.coordinate  # empty cells of a red row are red too
            if c.value is not None and j in formats:
                assert c.number_format == formats[j], c.coordinate
            if isinstance(c.value, str):
                assert c.data_type == "s", c.coordinate


def test_fast_rows_escape_like_openpyxl():
    bodies = _fastrows.escape_text(pd.Series(["a&<b>\r", "  lead", "   ", "", None, "ok\x00"], dtype="string"))
    assert bodies == ["<t>a&amp;&lt;b&gt;&#13;</t>", '<t xml:space="preserve">  lead</t>', "<t>   </t>",
                      None, None, "<t>ok\ufffd</t>"]
    serial = _fastrows.excel_serial(pd.Series([pd.Timestamp("1900-01-01"), pd.Timestamp("1900-03-01"),
                                                   pd.Timestamp("2025-05-31 12:00")]))
    assert serial.tolist() == [1.0, 61.0, 45808.5]  # Excel's serials, with its phantom 1900-02-29
    assert [_fastrows.letter(i) for i in (0, 9, 25, 26, 701)] == ["A", "J", "Z", "AA", "ZZ"]
    aware = pd.Series(pd.to_datetime(["2025-05-31 12:00"]).tz_localize("Europe/Berlin"))
    assert _fastrows.excel_serial(aware).tolist() == [45808.5]  # the wall-clock time, as plain() keeps it


def test_layout_prints_one_page_wide_and_long_text_rows_are_tall(tiny_pack):
    wb = load(workbook.build(tiny_pack))
    for ws in wb.worksheets:
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1, ws.title
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToHeight == 0, ws.title
    about = wb["About"]
    rows = {r[0].value: r[0].row for r in about.iter_rows(max_col=1) if r[0].value}
    assert about.row_dimensions[rows["Change"]].height >= 30  # ~250 characters in a 90-wide column
    assert about.row_dimensions[rows["Revenue"]].height is None  # one line: default height
    churn = wb["Churn risk"]
    assert churn["D1"].alignment.wrap_text and churn.row_dimensions[1].height == _churn.HEADER_HEIGHT
    assert {c.font.name for c in churn[1]} == {_cells.FONT_NAME}  # no serif fallback for a nameless font


def test_fast_rows_refuse_a_sheet_without_template_rows():
    sheet = b'<worksheet><sheetData><row r="1"><c r="A1" s="6"/></row></sheetData></worksheet>'
    with pytest.raises(ValueError, match="template row 2 missing"):
        _fastrows.template_styles(sheet, 2, 2)
    with pytest.raises(ValueError, match="row 2 or </sheetData> not found"):
        _fastrows.splice(sheet, 2, b"")


@pytest.mark.slow  # starts LibreOffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_reads_large_churn_list(tmp_path):
    """LibreOffice converts the 2,000-row list and the values come back as written."""
    src = workbook.save(big_churn_pack(), tmp_path / "in" / "big.xlsx")
    out = tmp_path / "out"
    subprocess.run(["soffice", "--headless", "--norestore", f"-env:UserInstallation=file://{tmp_path}/lo",
                    "--convert-to", "xlsx", "--outdir", str(out), str(src)],
                   check=True, capture_output=True, timeout=300)
    ours, theirs = load(src.read_bytes())["Churn risk"], openpyxl.load_workbook(out / "big.xlsx")["Churn risk"]

    def same(c):  # LibreOffice keeps 15 significant digits and saves a CR as LF (its own normalisation)
        return round(c, 6) if isinstance(c, float) else c.replace("\r\n", "\n").replace("\r", "\n") \
            if isinstance(c, str) else c

    def values(ws):
        return [[same(c) for c in r] for r in ws.iter_rows(min_row=1, max_col=12, values_only=True)]

    a, b = values(ours), values(theirs)
    assert len(a) == 2_001 and a == b[:len(a)] and not any(any(r) for r in b[len(a):])
    red = [is_red(r[0]) for r in theirs.iter_rows(min_row=2, max_col=1)]
    assert red == [v == "yes" for v in (r[11] for r in a[1:])]


def test_churn_list_longer_than_an_excel_sheet_is_refused(monkeypatch, tiny_pack):
    monkeypatch.setattr(_churn, "MAX_ROWS", len(tiny_pack.churn_scores))  # header + all rows would not fit
    with pytest.raises(DataError, match="do not fit on one Excel sheet") as err:
        workbook.build(tiny_pack)
    assert err.value.fix


def test_reasons_wrap_and_headers_repeat_on_printed_pages(tiny_pack):
    wb = load(workbook.build(tiny_pack))
    ws = wb["Churn risk"]
    reasons = [c.value for c in ws[1]].index("Reasons")
    rows = churn_rows(wb)
    assert rows and all(r[reasons].alignment.wrap_text for r in rows)
    others = [r[0] for r in rows]
    assert not any(c.alignment.wrap_text for c in others)  # only the long text wraps
    assert ws.print_title_rows == "$1:$1" and wb["Forecast"].print_title_rows == "$1:$1"
    assert wb["Accuracy"].print_title_rows == "$6:$6" and wb["Accuracy"]["A6"].value == "Segment"
