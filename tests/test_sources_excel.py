"""Excel reader: real workbooks written by openpyxl, read back by datastory.sources.excel."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import random
import struct
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from datastory.config import ColumnsParams, DataParams, FileParams, RulesParams
from datastory.errors import DataError
from datastory.sources import excel

MALFORMED = Path(__file__).parent / "fixtures" / "malformed"
_spec = importlib.util.spec_from_file_location("make_excel", MALFORMED / "make_excel.py")
make_excel = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_excel)

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
          "Country"]
ROWS = [
    ["536365", "85123A", "WHITE HANGING HEART", 6, dt.datetime(2010, 12, 1, 8, 26), 2.55, 17850.0,
     "United Kingdom"],
    [536366, 22633, "Crème brûlée dish — ☕ 日本", 2, dt.datetime(2010, 12, 1, 8, 28), 1.85, None, "France"],
    ["C536379", "D", "Discount", -1, dt.datetime(2010, 12, 1, 9, 41), 27.5, 14527.5, "Österreich"],
]


def cfg(path: str = "tx.xlsx", sheet: str = "", **columns: str) -> DataParams:
    mapping = dict(order_id="InvoiceNo", customer_id="CustomerID", timestamp="InvoiceDate", amount="",
                   quantity="Quantity", unit_price="UnitPrice", discount="", region="", country="Country",
                   product="Description", product_line="", customer_name="")
    mapping.update(columns)
    return DataParams(source="excel", file=FileParams(path=path, sheet=sheet), columns=ColumnsParams(**mapping),
                      rules=RulesParams(segment_by="none"))


def write(tmp_path: Path, sheets: dict[str, list[list]], name: str = "tx.xlsx", **extra: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(make_excel.workbook(sheets, extra=extra or None))
    return path


def fails(params: DataParams, root: Path, *needles: str) -> DataError:
    with pytest.raises(DataError) as info:
        excel.read(params, root)
    text = str(info.value)
    for needle in needles:
        assert needle in text, text
    return info.value


# ---------------------------------------------------------------- reading values
def test_reads_mapped_columns_renamed_with_native_values(tmp_path):
    write(tmp_path, {"Online Retail": [HEADER, *ROWS]})
    raw = excel.read(cfg(), tmp_path)
    frame = raw.frame
    assert list(frame.columns) == list(cfg().columns.mapped())
    assert isinstance(frame.index, pd.RangeIndex) and len(frame) == 3
    assert frame["order_id"].tolist() == ["536365", "536366", "C536379"]
    assert frame["customer_id"].tolist() == ["17850", None, "14527.5"]
    assert frame["product"][1] == "Crème brûlée dish — ☕ 日本"
    assert frame["country"].tolist() == ["United Kingdom", "France", "Österreich"]
    assert frame["timestamp"][0] == dt.datetime(2010, 12, 1, 8, 26)
    assert frame["quantity"].tolist() == [6, 2, -1] and isinstance(frame["quantity"][0], float)
    assert frame["unit_price"].tolist() == [2.55, 1.85, 27.5]
    assert raw.name == "tx.xlsx" and raw.first_row == 2 and raw.row(2) == 4
    assert raw.column("customer_id") == "CustomerID" and raw.source_columns == cfg().columns.mapped()


def test_identifier_text():
    assert excel.identifier(17850.0) == "17850"
    assert excel.identifier(2.5) == "2.5"
    assert excel.identifier(" A1 ") == " A1 "
    assert excel.identifier("") is None and excel.identifier(None) is None


def test_xlsm_is_read(tmp_path):
    write(tmp_path, {"S": [HEADER, ROWS[0]]}, name="tx.xlsm")
    assert excel.read(cfg("tx.xlsm"), tmp_path).frame["order_id"].tolist() == ["536365"]


def test_sheet_choice_by_name_else_first(tmp_path):
    other = [HEADER, ROWS[2]]
    write(tmp_path, {"Summary": [HEADER, ROWS[0]], "Returns": other})
    assert excel.read(cfg(), tmp_path).frame["order_id"].tolist() == ["536365"]
    assert excel.read(cfg(sheet="Returns"), tmp_path).frame["order_id"].tolist() == ["C536379"]
    assert excel.read(cfg(sheet="returns"), tmp_path).frame["order_id"].tolist() == ["C536379"]


def test_unknown_sheet_lists_the_sheets(tmp_path):
    write(tmp_path, {"Summary": [HEADER, ROWS[0]], "Returns": [HEADER, ROWS[2]]})
    err = fails(cfg(sheet="Sales"), tmp_path, "'Sales'", "'Summary', 'Returns'")
    assert "file.sheet" in err.fix


def test_empty_middle_row_kept_trailing_empty_rows_dropped(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    for row in [HEADER, ROWS[0], [None] * 8, ROWS[2]]:
        book.active.append(row)
    for r in (6, 9):  # blank (whitespace) cells after the data: the sheet's range reaches row 9
        book.active.cell(row=r, column=2).value = " "
    buf = io.BytesIO()
    book.save(buf)
    (tmp_path / "tx.xlsx").write_bytes(make_excel.restamp(buf.getvalue()))
    assert len(excel._cells(tmp_path / "tx.xlsx", book.active.title, "tx.xlsx")) == 9
    frame = excel.read(cfg(), tmp_path).frame
    assert frame["order_id"].tolist() == ["536365", None, "C536379"]
    assert frame.iloc[1].isna().all()


def test_to_raw_drops_only_trailing_blank_rows():
    rows = [HEADER, ROWS[0], [""] * 8, ROWS[1], [""] * 8, [None, " ", "\t"] + [""] * 5]
    raw = excel.to_raw(rows, cfg(), "x.xlsx", "S")
    assert len(raw.frame) == 3 and raw.frame.iloc[1].isna().all()
    assert raw.frame["order_id"].iloc[2] == "536366"


def test_to_raw_refuses_an_empty_sheet():
    with pytest.raises(DataError, match="sheet 'S' is empty"):
        excel.to_raw([], cfg(), "x.xlsx", "S")


def test_dispatch_through_sources_read(project):
    from datastory import config, sources

    (project / "data" / "raw").mkdir(parents=True)
    write(project / "data" / "raw", {"S": [HEADER, *ROWS]})
    raw = sources.read(cfg("data/raw/tx.xlsx"), config.paths(project), project)
    assert raw.name == "data/raw/tx.xlsx" and len(raw.frame) == 3


def test_header_only_sheet_has_no_rows(tmp_path):
    write(tmp_path, {"S": [HEADER]})
    fails(cfg(), tmp_path, "no data rows")


def test_header_must_be_row_1(tmp_path):
    write(tmp_path, {"S": [[None], ["Sales export"], HEADER, ROWS[0]]})
    err = fails(cfg(), tmp_path, "row 1", "empty")
    assert err.row == 1


def test_duplicate_header_names(tmp_path):
    write(tmp_path, {"S": [[*HEADER, "Country"], [*ROWS[0], "UK"]]})
    err = fails(cfg(), tmp_path, "repeats", "'Country'")
    assert err.row == 1


def test_missing_mapped_column(tmp_path):
    write(tmp_path, {"S": [HEADER, ROWS[0]]})
    err = fails(cfg(unit_price="Price"), tmp_path, "'Price'", "unit_price")
    assert err.column == "Price" and "columns.unit_price" in err.fix


# ---------------------------------------------------------------- files that are not workbooks
def test_missing_and_empty_files(tmp_path):
    fails(cfg(), tmp_path, "not found")
    (tmp_path / "tx.xlsx").write_bytes(b"")
    fails(cfg(), tmp_path, "empty (0 bytes)")


@pytest.mark.parametrize("suffix, fix", [(".xls", "save it as .xlsx"), (".ods", "save it as .xlsx"),
                                         (".csv", "source: csv")])
def test_wrong_extension(tmp_path, suffix, fix):
    (tmp_path / f"tx{suffix}").write_bytes(b"a,b\n1,2\n")
    err = fails(cfg(f"tx{suffix}"), tmp_path, repr(suffix), ".xlsx")
    assert fix in err.fix


def test_random_bytes_truncated_and_ole_files_are_corrupt(tmp_path):
    path = tmp_path / "tx.xlsx"
    path.write_bytes(random.Random(3).randbytes(5000))
    err = fails(cfg(), tmp_path, excel.CORRUPT)
    assert "save it as .xlsx" in err.fix and err.file == "tx.xlsx"
    good = make_excel.workbook({"S": [HEADER, *ROWS]})
    path.write_bytes(good[: len(good) * 2 // 3])
    fails(cfg(), tmp_path, excel.CORRUPT)
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4000))
    err = fails(cfg(), tmp_path, excel.CORRUPT, "password")


def test_zip_without_a_workbook_is_corrupt(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "not a workbook")
    (tmp_path / "tx.xlsx").write_bytes(buf.getvalue())
    fails(cfg(), tmp_path, excel.CORRUPT, "missing")


def test_dtd_in_a_part_is_refused(tmp_path):
    data = make_excel.workbook({"S": [HEADER, ROWS[0]]})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/workbook.xml":
                body = b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>' + body
            dst.writestr(info.filename, body)
    (tmp_path / "tx.xlsx").write_bytes(out.getvalue())
    fails(cfg(), tmp_path, excel.CORRUPT, "DTD", "xl/workbook.xml")


# ---------------------------------------------------------------- zip bombs
def test_zip_bomb_member_refused(tmp_path):
    write(tmp_path, {"S": [HEADER, ROWS[0]]}, **{"xl/media/huge.bin": bytes(excel.RATIO_MIN_SIZE + 4096)})
    err = fails(cfg(), tmp_path, "zip bomb", "'xl/media/huge.bin'", f"limit {excel.MAX_RATIO}:1")
    assert "re-export" in err.fix


def test_small_highly_compressible_members_pass(tmp_path):
    write(tmp_path, {"S": [HEADER, ROWS[0]]}, **{"xl/media/pad.bin": bytes(excel.RATIO_MIN_SIZE // 2)})
    assert len(excel.read(cfg(), tmp_path).frame) == 1


def test_total_uncompressed_size_refused(tmp_path, monkeypatch):
    payload = random.Random(5).randbytes(300_000)  # incompressible: ratio ~1, only the total trips
    write(tmp_path, {"S": [HEADER, ROWS[0]]}, **{"xl/media/photo.bin": payload})
    assert len(excel.read(cfg(), tmp_path).frame) == 1
    monkeypatch.setattr(excel, "MAX_UNCOMPRESSED", 256_000)
    fails(cfg(), tmp_path, "refused", "over the limit")


def _understate(data: bytes, member: str, size: int) -> bytes:
    """The zip `data` with `member`'s declared uncompressed size set to `size` (central and local header)."""
    blob = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        offset = zf.getinfo(member).header_offset
    struct.pack_into("<I", blob, offset + 22, size)
    at = blob.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", blob, at + 28)[0]
        if bytes(blob[at + 46: at + 46 + name_len]) == member.encode():
            struct.pack_into("<I", blob, at + 24, size)
        at = blob.find(b"PK\x01\x02", at + 4)
    return bytes(blob)


def test_lying_zip_header_refused(tmp_path):
    data = make_excel.workbook({"S": [HEADER, ROWS[0]]}, extra={"xl/media/x.bin": bytes(3 << 20)})
    (tmp_path / "tx.xlsx").write_bytes(_understate(data, "xl/media/x.bin", 1000))
    fails(cfg(), tmp_path, "holds more than", "'xl/media/x.bin'")


# ---------------------------------------------------------------- formulas
def test_formulas_refused_naming_the_first_cell(tmp_path):
    write(tmp_path, {"S": [HEADER, ROWS[0], [*ROWS[1][:3], "=A1*2", *ROWS[1][4:]]]})
    err = fails(cfg(), tmp_path, "formulas", "cell D3", "values, not formulas")
    assert err.row == 3 and err.column == "D" and "Paste Special > Values" in err.fix


def test_formulas_on_another_sheet_are_not_read(tmp_path):
    write(tmp_path, {"Data": [HEADER, ROWS[0]], "Calc": [["x"], ["=A1*2"]]})
    assert len(excel.read(cfg(sheet="Data"), tmp_path).frame) == 1
    fails(cfg(sheet="Calc"), tmp_path, "formulas", "cell A2")


def test_first_formula_across_chunks_and_outside_sheetdata():
    xml = (b'<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="7">'
           b'<x:c r="AB7" s="2"><x:f t="shared" si="0"/><x:v>4</x:v></x:c></row></sheetData></worksheet>')
    for cut in range(1, len(xml)):
        assert excel.first_formula(iter([xml[:cut], xml[cut:]])) == ("AB", 7)
    plain = (b'<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData><extLst><ext>'
             b'<x14:dataValidation><x14:formula1><xm:f>Lists!$A$1:$A$5</xm:f></x14:formula1>'
             b'</x14:dataValidation></ext></extLst></worksheet>')
    assert excel.first_formula(iter([plain])) is None
    assert excel.first_formula(iter([b"<sheetData><row><c><f>1+1</f></c></row></sheetData>"])) == ("", None)


# ---------------------------------------------------------------- committed fixtures
@pytest.mark.parametrize("fname, needle", [("empty.xlsx", "empty (0 bytes)"), ("corrupt.xlsx", excel.CORRUPT),
                                           ("formulas.xlsx", "holds formulas (first in cell D2)"),
                                           ("zipbomb.xlsx", "zip bomb")])
def test_committed_malformed_fixtures(fname, needle):
    assert (MALFORMED / fname).stat().st_size < 20_000
    params = cfg(fname, product="", country="Country")
    fails(params, MALFORMED, needle)


def test_fixture_generator_is_deterministic(tmp_path):
    built = make_excel.build(tmp_path)
    for fname, data in built.items():
        assert (MALFORMED / fname).read_bytes() == data, fname
    ok = tmp_path / "ok.xlsx"
    ok.write_bytes(make_excel.workbook({"Transactions": make_excel.rows()}))
    raw = excel.read(cfg("ok.xlsx", product=""), tmp_path)
    assert raw.frame["customer_id"].tolist() == ["17850", "17850", "13047"]
