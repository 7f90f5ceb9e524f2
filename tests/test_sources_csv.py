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


# ---------------------------------------------------------------- quoted values that run over lines
def _records(n: int, multiline: set[int], pad: int = 0, near: tuple[int, ...] = (), width: int = 0
             ) -> tuple[str, list[dict], list[int]]:
    """A CSV of `n` records (the `multiline` ones, and those starting within `width` bytes of an offset in
    `near`, with line breaks inside quoted values, mapped and not, some of them CRLF or an empty line), with
    empty lines between some records; its rows and start lines."""
    text, rows, lines, line, offset = [HEADER], [], [], 2, len(HEADER)
    for i in range(n):
        if any(abs(offset - at) <= width for at in near):
            multiline = multiline | {i}
        desc = f'"first {i}\r\nsecond, line\n\nthird"' if i in multiline else ("x" * pad if i == 0 else f"plain {i}")
        country = '"Nor\r\nway"' if i in multiline and i % 2 else "France"
        text.append(f"{i},C{i},2025-12-01 08:{i % 60:02d},1,2.50,{country},{desc}" + ("\r\n" if i % 3 else "\n"))
        rows.append({"order_id": str(i), "country": country.strip('"')})
        lines.append(line)
        line += text[-1].count("\n")
        offset += len(text[-1])
        if i % 17 == 5:
            text.append("\n")
            line += 1
            offset += 1
    return "".join(text), rows, lines


@pytest.mark.parametrize("block", [97, 128, 181, 256, 379, 512, 1000])
def test_multiline_values_read_the_same_wherever_a_block_ends(tmp_path, monkeypatch, block):
    text, rows, lines = _records(120, multiline=set(range(0, 120, 3)) | {119})
    put(tmp_path, text.encode())
    monkeypatch.setattr(csv, "BLOCK", 1 << 24)
    whole = csv.read(cfg(), tmp_path)
    monkeypatch.setattr(csv, "BLOCK", block)
    for shift in range(0, 60, 7):   # move every value across the block ends
        moved = text.replace("plain 1,", "plain 1" + "y" * shift + ",", 1)
        put(tmp_path, moved.encode())
        raw = csv.read(cfg(), tmp_path)
        assert raw.frame.drop(columns="order_id").equals(whole.frame.drop(columns="order_id"))
        assert raw.frame["country"].tolist() == [r["country"] for r in rows]
        assert raw.rows(raw.frame.index.to_numpy()).tolist() == lines
        assert raw.rows(raw.frame.index.to_numpy()).tolist() == whole.rows(whole.frame.index.to_numpy()).tolist()


def test_a_crlf_inside_a_value_survives_a_read_that_ends_between_cr_and_lf(tmp_path, monkeypatch):
    text = HEADER + "".join(f'{i},C{i},2025-12-01,1,2.5,"Nor\r\nway",x\n' for i in range(200))
    put(tmp_path, text.encode())
    for block in range(len(HEADER) + 1, len(HEADER) + 90):
        monkeypatch.setattr(csv, "BLOCK", block)
        assert set(csv.read(cfg(), tmp_path).frame["country"]) == {"Nor\r\nway"}


def test_an_error_after_a_multiline_value_names_line_and_record(tmp_path):
    text, _, lines = _records(30, multiline={3, 8})
    bad = text.replace("2025-12-01 08:20", "not a date", 1)
    put(tmp_path, bad.encode())
    raw = csv.read(cfg(), tmp_path)
    assert raw.row(20) == lines[20] and raw.record(20) == 22 and lines[20] > 22
    extra = text.replace("plain 20", "plain 20,extra", 1)
    put(tmp_path, extra.encode())
    with pytest.raises(DataError) as err:
        csv.read(cfg(), tmp_path)
    assert err.value.row == lines[20] and err.value.record == 22
    assert f"data/raw/t.csv, line {lines[20]} (record 22): line {lines[20]} has 8 fields" in str(err.value)


def test_an_unclosed_quote_is_found_where_it_opens(tmp_path):
    text, _, lines = _records(30, multiline={3, 8})
    put(tmp_path, text.replace("plain 12", '"plain 12', 1).encode())
    with pytest.raises(DataError) as err:
        csv.read(cfg(), tmp_path)
    msg = str(err.value)
    assert err.value.row == lines[12] and "unclosed quote" in msg and f"runs over lines {lines[12]} to" in msg


def test_a_quote_left_open_at_the_end_is_not_a_value(tmp_path):
    text, _, lines = _records(30, multiline={3, 8})
    put(tmp_path, (text + '30,C30,2025-12-01 09:00,1,2.50,France,"open\nto the end\n').encode())
    with pytest.raises(DataError, match="the end of the file") as err:
        csv.read(cfg(), tmp_path)
    assert err.value.row == lines[-1] + 1 + (29 % 17 == 5)


def test_literal_quotes_beside_multiline_values_are_read(tmp_path):
    text = HEADER + '1,C1,2025-12-01,1,2.5,France,24" screen\n2,C2,2025-12-01,1,2.5,"Nor\nway",x\n'
    put(tmp_path, text.encode())
    raw = csv.read(cfg(), tmp_path)
    assert raw.frame["country"].tolist() == ["France", "Nor\nway"] and raw.rows([0, 1]).tolist() == [2, 3]


def test_a_file_of_another_kind_shows_nothing_of_its_content(tmp_path):
    put(tmp_path, b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(DataError) as err:
        csv.read(cfg(), tmp_path)
    assert "root" not in str(err.value) and "holds no ','" in str(err.value) and "row 1" in str(err.value)
    put(tmp_path, b"\x7fELF\x02\x01\x01\x00,\x00\x00\x00\x00\n" + b"\x00" * 64)
    with pytest.raises(DataError) as err:
        csv.read(cfg(encoding="latin-1"), tmp_path)
    assert "ELF" not in str(err.value) and "control characters" in str(err.value)


@pytest.mark.parametrize(("path", "fragment"), [("data/raw/t.md", "extension is '.md'"),
                                                ("data/raw/t.xlsx", "source: excel")])
def test_a_file_that_is_not_csv_by_name_is_not_opened(tmp_path, path, fragment):
    put(tmp_path, (HEADER + ROWS).encode(), Path(path).name)
    with pytest.raises(DataError, match=fragment):
        csv.read(cfg(path), tmp_path)


def test_a_path_out_of_the_project_is_refused_before_reading(tmp_path):
    put(tmp_path, (HEADER + ROWS).encode())
    escaping = cfg().model_copy(update={"file": config.FileParams.model_construct(
        **{**config.FileParams().model_dump(), "path": "../t.csv"})})
    with pytest.raises(DataError, match="leads out of the project"):
        csv.read(escaping, tmp_path)


@pytest.mark.slow
def test_multiline_values_at_every_16_mib_block_boundary(tmp_path, monkeypatch):
    """Multi-line values (CRLF and empty lines inside, in mapped and other columns) on every record within
    1 KiB of each 16 MiB block end, moved byte by byte across it: read in 16 MiB blocks, the file reads as it
    does in one piece, with every record at its own line."""
    assert csv.BLOCK == 1 << 24
    n = 2 * (1 << 24) // 56 + 2000   # records of about 56 bytes: two block ends and more than 1 KiB after
    base, _, lines = _records(n, multiline=set(), near=(1 << 24, 2 << 24), width=1024 + 2 * 96)
    assert len(base) > (2 << 24) + 2048 and base.count("first") > 2 * 2048 // 96
    whole = None
    for pad in range(96):   # a multi-line record is shorter than 96 bytes: the block end falls on each of its bytes
        put(tmp_path, base.replace(",France,\n", ",France," + "x" * pad + "\n", 1).encode())
        if pad % 16 == 0:
            monkeypatch.setattr(csv, "BLOCK", 1 << 26)
            whole = csv.read(cfg(), tmp_path)
            assert whole.rows(whole.frame.index.to_numpy()).tolist() == lines
        monkeypatch.setattr(csv, "BLOCK", 1 << 24)
        blocks = csv.read(cfg(), tmp_path)
        assert blocks.frame.equals(whole.frame), pad
        assert blocks.rows(blocks.frame.index.to_numpy()).tolist() == lines, pad
