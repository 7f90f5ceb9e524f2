"""CSV source: real files in several dialects read back as the mapped columns; unreadable ones explained."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from datastory import config
from datastory.errors import DataError
from datastory.sources import csv

HEADER = "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice,Country,Description\n"
ROWS = ("536365,17850,2025-12-01 08:26,6,2.55,Österreich,Tür ø\n"
        "536366,17851,2025-12-01 08:28,2,10.00,France,\"Chaise, bois\"\n")
COLUMNS = config.ColumnsParams(order_id="InvoiceNo", customer_id="CustomerID", timestamp="InvoiceDate",
                               amount="", quantity="Quantity", unit_price="UnitPrice", discount="", region="",
                               country="Country", product_line="", customer_name="")


def cfg(path: str = "data/raw/t.csv", **file) -> config.DataParams:
    return config.DataParams(source="csv", file=config.FileParams(path=path, **file), columns=COLUMNS,
                             rules=config.RulesParams(segment_by="country"))


def put(root: Path, data: bytes, name: str = "t.csv") -> Path:
    path = root / "data/raw" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_reads_mapped_columns_as_text_with_row_numbers(tmp_path):
    put(tmp_path, (HEADER + ROWS).encode())
    raw = csv.read(cfg(), tmp_path)
    assert list(raw.frame.columns) == ["order_id", "customer_id", "timestamp", "quantity", "unit_price", "country"]
    assert raw.frame["country"].tolist() == ["Österreich", "France"]
    assert all(str(t) == "string" for t in raw.frame.dtypes)
    assert raw.name == "data/raw/t.csv" and raw.row(0) == 2 and raw.column("quantity") == "Quantity"


@pytest.mark.parametrize(("data", "name", "file"), [
    (b"\xef\xbb\xbf" + (HEADER + ROWS).encode(), "t.csv", {}),
    ((HEADER + ROWS).encode("latin-1", errors="replace"), "t.csv", {"encoding": "latin-1"}),
    (gzip.compress((HEADER + ROWS).encode(), mtime=0), "t.csv.gz", {}),
    ((HEADER + ROWS).replace(",", ";").replace("Chaise; bois", "Chaise, bois").encode(), "t.csv",
     {"delimiter": ";"}),
])
def test_dialects(tmp_path, data, name, file):
    put(tmp_path, data, name)
    raw = csv.read(cfg(f"data/raw/{name}", **file), tmp_path)
    assert raw.frame["order_id"].tolist() == ["536365", "536366"]
    assert raw.frame["unit_price"].tolist() == ["2.55", "10.00"]


def test_empty_cells_are_missing_but_na_text_is_kept(tmp_path):
    put(tmp_path, (HEADER + "536365,,2025-12-01,6,2.55,NA,x\n").encode())
    raw = csv.read(cfg(), tmp_path)
    assert raw.frame["customer_id"].isna().all() and raw.frame["country"].tolist() == ["NA"]  # Namibia


@pytest.mark.parametrize(("data", "file", "fragments"), [
    (b"", {}, ["empty (0 bytes)"]),
    (HEADER.encode(), {}, ["no data rows"]),
    ((HEADER + ROWS).replace(",", ";").encode(), {}, ["not in the header", "delimiter: \";\""]),
    ((HEADER.replace("Country", "CustomerID") + ROWS).encode(), {}, ["repeats", "CustomerID", "row 1"]),
    ((HEADER.replace("Quantity", "Qty") + ROWS).encode(), {}, ["'Quantity'", "columns.quantity"]),
    ((HEADER + ROWS + "536367,1,2025-12-02,1,1.0,France,x,extra\n").encode(), {}, ["line 4", "8 fields"]),
    ((HEADER + ROWS).encode() + "536367,1,2025-12-02,1,1.0,Espa\xf1a,x\n".encode("latin-1"), {},
     ["line 4", "not valid utf-8", "file.encoding"]),
    (b"\xef\xbb\xbf" + (HEADER + ROWS).encode(), {"encoding": "latin-1"}, ["byte-order mark", "utf-8"]),
    (b"\n" + (HEADER + ROWS).encode(), {}, ["no header", "row 1"]),
])
def test_unreadable_files_are_explained(tmp_path, data, file, fragments):
    put(tmp_path, data)
    with pytest.raises(DataError) as err:
        csv.read(cfg(**file), tmp_path)
    msg = str(err.value)
    assert msg.startswith("data/raw/t.csv") and "fix:" in msg
    for fragment in fragments:
        assert fragment in msg


def test_truncated_gzip_is_explained(tmp_path):
    data = gzip.compress((HEADER + ROWS * 200).encode(), mtime=0)
    put(tmp_path, data[: len(data) // 2], "t.csv.gz")
    with pytest.raises(DataError, match="t.csv.gz") as err:
        csv.read(cfg("data/raw/t.csv.gz"), tmp_path)
    assert "fix:" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        csv.read(cfg(), tmp_path)


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_blank_lines_keep_file_line_numbers_across_chunks(tmp_path, monkeypatch, block):
    monkeypatch.setattr(csv, "SCAN_BLOCK", block)
    text = HEADER + "\n" + ROWS + "\r\n\n" + "536367,1,2025-12-02 09:00,1,1.0,France,x\n"
    put(tmp_path, text.encode())
    assert csv.blank_lines(tmp_path / "data/raw/t.csv", "utf-8").tolist() == [2, 5, 6]
    raw = csv.read(cfg(), tmp_path)
    assert raw.rows(raw.frame.index.to_numpy()).tolist() == [3, 4, 7]
    assert raw.frame["order_id"].tolist() == ["536365", "536366", "536367"]
