"""The kpis stage: the tables read from the file in bounded memory are the in-memory ones, byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from customer_logs import customer_log
from e2e import streaming_project

from datastory import bridge, config, ingest, io, kpis, kpis_stage, schema
from datastory.errors import DataError

NAMES = ("kpis", "active", "bridge", "movers")


def awkward_tx(seed: int = 3, end: str = "2025-11-14") -> pd.DataFrame:
    """Transactions as ingest writes them (time order), with: one-time buyers and a dominant customer (about a
    quarter of revenue); returns and cancellations (negative lines, some by customers with no sale in that
    period); quantities 1-6; a shared guest account whose lines carry no name; non-ASCII customer ids, names
    and product lines; customers who moved region (bought before in another one); names that change, or are
    blank or spaces only in the last months (the latest non-empty one is older); two months with no line
    at all, one region silent for months; ties in change between customers; data ending mid-period."""
    rng = np.random.default_rng(seed)
    tx = customer_log(n_customers=260, seed=seed, start="2023-01-01", end=end, one_time_share=0.4,
                      whale_share=0.25)
    n = len(tx)
    tx["quantity"] = rng.integers(1, 7, n).astype("float64")
    tx["product_line"] = np.where(rng.random(n) < 0.2, "Dienstleistungen-ß", tx["product_line"].astype(str))
    ids = tx["customer_id"].astype(str).to_numpy(dtype=object)
    names = tx["customer_name"].astype(str).to_numpy(dtype=object)
    odd = np.isin(ids, [f"C{i:05d}" for i in range(0, 260, 7)])
    ids[odd] = [f"Kunde-{i}-ß" for i in ids[odd]]
    names[odd] = [f"Zoë Ørsted {i}" for i in ids[odd]]
    tx["customer_id"], tx["customer_name"] = ids, names
    ts = tx["timestamp"]
    late = ts >= pd.Timestamp(end) - pd.DateOffset(months=7)
    regulars = tx.loc[late, "customer_id"].value_counts()
    regulars = regulars[regulars > 2].index
    # some of the late buyers: a blank name from 7 months before the end, so their name is an older one
    blank = tx["customer_id"].isin(regulars[::3]) & late
    tx.loc[blank, "customer_name"] = np.where(rng.random(int(blank.sum())) < 0.5, "", "   ")
    # others renamed lately (the latest name wins)
    renamed = tx["customer_id"].isin(regulars[1::5]) & late
    tx.loc[renamed, "customer_name"] = tx.loc[renamed, "customer_name"] + " GmbH"
    # moved region: a customer's lines of the last six weeks in the next region (new there, not to the company)
    moved = tx["customer_id"].isin(regulars[2::4]) & (ts >= pd.Timestamp(end) - pd.Timedelta(days=42))
    regions = ["North", "South", "East"]
    tx.loc[moved, "region"] = [regions[(regions.index(r) + 1) % 3] for r in tx.loc[moved, "region"]]
    # returns: a line given back a few weeks later (in a later period, now and then by a lapsed customer)
    back = tx[rng.random(n) < 0.07].copy()
    back["timestamp"] = back["timestamp"] + pd.to_timedelta(rng.integers(3, 70, len(back)), unit="D")
    back["amount"] = -(back["amount"] * rng.uniform(0.2, 1.0, len(back))).round(2)
    back["quantity"] = -back["quantity"]
    back["order_id"] = "R" + back["order_id"].astype(str)
    # a guest account: many people, no name
    days = pd.date_range("2023-01-05", end, freq="9D")
    guest = pd.DataFrame({"order_id": [f"G{i}" for i in range(len(days))], "customer_id": "GUEST",
                          "customer_name": "", "timestamp": days + pd.Timedelta(hours=11),
                          "region": [regions[i % 3] for i in range(len(days))], "product_line": "Hardware",
                          "quantity": 1.0, "amount": 25.0, "discount": 0.0})
    # ties: two customers with the very same change, non-ASCII keys
    t0 = pd.Timestamp(end) - pd.DateOffset(months=2)
    tie = pd.DataFrame({"order_id": ["T1", "T2", "T3", "T4"], "customer_id": ["Ärger", "Zorn", "Ärger", "Zorn"],
                        "customer_name": ["Ärger AG", "Zorn KG", "Ärger AG", "Zorn KG"],
                        "timestamp": [t0 - pd.DateOffset(months=1), t0 - pd.DateOffset(months=1), t0, t0],
                        "region": "South", "product_line": "Software", "quantity": 1.0,
                        "amount": [100.0, 100.0, 5000.0, 5000.0], "discount": 0.0})
    out = pd.concat([tx, back, guest, tie], ignore_index=True)
    out = out[out["timestamp"].between(pd.Timestamp("2023-01-01"), pd.Timestamp(end) + pd.Timedelta(hours=20))]
    month = out["timestamp"].dt.to_period("M")
    gap = month.isin([pd.Period("2024-03", "M"), pd.Period("2024-04", "M")])             # two empty months
    quiet = (out["region"] == "East") & month.between(pd.Period("2024-07", "M"), pd.Period("2024-11", "M"))
    out = out[~gap & ~quiet]
    out = out.assign(is_return=out["amount"] < 0)
    out = out.sort_values(ingest.SORT_KEYS, kind="stable").reset_index(drop=True)
    return schema.conform(out, schema.TRANSACTIONS, "transactions")


def both_ways(tx: pd.DataFrame, tmp_path: Path, period: str, end, rows: int, quantities: bool = True):
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    cfg = config.KpisParams(period=period, movers=4)
    memory = kpis_stage.in_memory(io.read_parquet(path), cfg, end, quantities)
    stream = kpis_stage.from_file(path, cfg, end, quantities, rows=rows)
    return memory, stream


def assert_same(memory: kpis_stage.Tables, stream: kpis_stage.Tables, tmp_path: Path) -> None:
    assert stream.streamed and not memory.streamed
    for name in NAMES:
        a, b = getattr(memory, name), getattr(stream, name)
        pd.testing.assert_frame_equal(b, a, obj=name)
        assert io.write_parquet(b, tmp_path / f"s_{name}.parquet").read_bytes() == \
            io.write_parquet(a, tmp_path / f"m_{name}.parquet").read_bytes(), name


@pytest.mark.parametrize("period, end", [("M", "2025-11-14"), ("M", "2025-10-31"), ("Q", "2025-11-14"),
                                         ("Q", None)])
def test_the_file_path_gives_the_in_memory_tables(tmp_path, period, end):
    tx = awkward_tx()
    memory, stream = both_ways(tx, tmp_path, period, end, rows=97)   # about 200 reads of the file
    assert_same(memory, stream, tmp_path)
    b = memory.bridge
    assert not b.empty and (b.loc[b["part"] == "reactivated", "customers"] > 0).any()
    assert (b["region"] == "East").any()


def test_the_history_before_the_previous_period_matters_and_is_read(tmp_path):
    """The file path gets it right only by reading what came before the two periods: the customers who
    bought before (reactivated, not new), in their own region, and the names given only before."""
    tx = awkward_tx(seed=4)
    memory, stream = both_ways(tx, tmp_path, "M", "2025-11-14", rows=131)
    assert_same(memory, stream, tmp_path)
    since = memory.bridge["previous_period"].iloc[0]
    recent = tx[tx["timestamp"] >= since]
    alone = bridge.compute(recent, "M", "2025-11-14")   # the recent lines without their history
    steps = memory.bridge.set_index(["region", "part"])["customers"]
    naive = alone.set_index(["region", "part"])["customers"]
    assert naive[(schema.ALL, "new")] > steps[(schema.ALL, "new")]
    movers = memory.movers[memory.movers["kind"] == "customer"]
    recent_names = bridge.names(recent)
    old_named = movers[~movers["key"].isin(recent_names.index) & (movers["name"] != movers["key"])]
    assert len(old_named) > 0          # a name only the lines before `since` carry reached the table
    # a customer new to a region in the latest period who had bought before, in another region
    sales = tx[tx["amount"] > 0]
    earlier = sales[sales["timestamp"] < since]
    latest = sales[sales["timestamp"].dt.to_period("M").dt.start_time == memory.bridge["period"].iloc[0]]
    here = latest.set_index(["region", "customer_id"]).index
    new_here = latest[~here.isin(earlier.set_index(["region", "customer_id"]).index)]
    assert new_here["customer_id"].isin(earlier["customer_id"]).any()


def test_a_name_given_only_after_the_two_periods_is_the_latest_either_way(tmp_path):
    """The bridge reads only the two periods' lines; a customer's latest name can be in the partial period
    after them (a rename), and it is the name both ways."""
    tx = awkward_tx(seed=7)
    memory, _ = both_ways(tx, tmp_path, "M", "2025-11-14", rows=131)
    top = memory.movers[(memory.movers["kind"] == "customer") & (memory.movers["region"] == schema.ALL)]
    key = top["key"].iloc[0]
    extra = tx[tx["customer_id"] == key].iloc[[-1]].assign(
        timestamp=pd.Timestamp("2025-11-13 10:00"), order_id="RENAME", customer_name="Renamed Ltd")
    tx = pd.concat([tx, extra], ignore_index=True).sort_values(ingest.SORT_KEYS, kind="stable") \
        .reset_index(drop=True)
    assert (memory.movers.loc[memory.movers["key"] == key, "name"] != "Renamed Ltd").all()   # not before
    memory, stream = both_ways(tx, tmp_path, "M", "2025-11-14", rows=131)
    assert_same(memory, stream, tmp_path)
    names = memory.movers.loc[memory.movers["key"] == key, "name"]
    assert len(names) and (names == "Renamed Ltd").all()


def test_a_region_silent_in_both_periods_keeps_its_segment(tmp_path):
    tx = awkward_tx(seed=6)
    tx = tx[~((tx["region"] == "East") & (tx["timestamp"] >= pd.Timestamp("2025-08-01")))].reset_index(drop=True)
    memory, stream = both_ways(tx, tmp_path, "M", "2025-11-14", rows=400)
    east = memory.bridge[memory.bridge["region"] == "East"]
    assert len(east) and (east["amount"] == 0).all()      # a segment of zeros, known only from older lines
    assert_same(memory, stream, tmp_path)


def test_from_an_invoice_log_through_ingest(tmp_path):
    """Cancellations, guest lines set aside, postage and fees, non-ASCII ids and countries: the transactions
    ingest writes from the invoice log give the same tables both ways, monthly and quarterly."""
    from test_ingest_stream import awkward_log, make_project

    root = make_project(tmp_path / "p", awkward_log(seed=6), "memory")
    quality = ingest.run(root)
    path = config.paths(root).transactions
    for period in ("M", "Q"):
        cfg = config.KpisParams(period=period, movers=3)
        memory = kpis_stage.in_memory(io.read_parquet(path), cfg, quality["period_end"], True)
        stream = kpis_stage.from_file(path, cfg, quality["period_end"], True, rows=53)
        assert_same(memory, stream, tmp_path)


def test_one_complete_period_gives_no_bridge_either_way(tmp_path):
    tx = awkward_tx(end="2023-02-15")
    memory, stream = both_ways(tx, tmp_path, "M", "2023-02-15", rows=11)
    assert memory.bridge.empty and memory.movers.empty
    assert_same(memory, stream, tmp_path)


def test_without_quantities_the_change_is_unsplit_either_way(tmp_path):
    memory, stream = both_ways(awkward_tx(seed=5), tmp_path, "M", "2025-11-14", rows=500, quantities=False)
    assert (memory.bridge["part"] == bridge.UNSPLIT).any()
    assert_same(memory, stream, tmp_path)


def test_history_given_with_lines_before_it_is_refused():
    tx = awkward_tx()
    before = bridge.Before(since=pd.Timestamp("2025-09-01"), first=pd.Timestamp("2023-01-01"), regions=("North",))
    with pytest.raises(DataError, match="lines before 2025-09-01"):
        bridge.compute(tx, "M", "2025-11-14", before=before)


def test_a_file_out_of_time_order_is_refused(tmp_path):
    path = io.write_parquet(awkward_tx().iloc[::-1], tmp_path / "t.parquet")
    with pytest.raises(DataError, match="not in time order"):
        kpis_stage.from_file(path, config.KpisParams(), None, True, rows=100)



def test_the_one_pass_history_counts_as_the_in_memory_code(tmp_path):
    """kpis.file_history's grouped pass: at every grain the active customers are kpis.active's (lines without a
    customer, returns and missing amounts count not at all, a customer in two regions once for ALL; lines without
    a region, which ingest never writes, for ALL only); the new customers per period are kpis.compute's, and each
    customer's first sale per region is theirs."""
    tx = awkward_tx()
    extra = tx[tx["amount"] > 0].iloc[[5, 40, 41, 300]].copy()
    extra["region"] = [None, None, "South", "North"]
    extra["customer_id"] = [extra["customer_id"].iloc[0], None, None, extra["customer_id"].iloc[0]]
    extra["amount"] = [10.0, 20.0, 30.0, float("nan")]
    tx = schema.conform(pd.concat([tx, extra]).sort_values("timestamp", kind="stable").reset_index(drop=True),
                        schema.TRANSACTIONS, "transactions")
    known = tx.dropna(subset=["region"]).reset_index(drop=True)     # ingest fills every region; kpis.active needs it
    history = kpis.file_history(io.write_parquet(known, tmp_path / "known.parquet"))
    got = kpis.active_table(history.active, known["region"].unique(), history.first_ts, history.last_ts)
    pd.testing.assert_frame_equal(got, kpis.active(known))
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    history = kpis.file_history(path)
    alone = tx["region"].isna() & (tx["amount"] > 0) & tx["customer_id"].notna()     # a region-less sale: ALL only
    month = pd.Timestamp(tx.loc[alone, "timestamp"].iloc[0]).to_period("M").start_time
    assert history.active["M"][(schema.ALL, month)] == \
        tx.loc[(tx["amount"] > 0) & (tx["timestamp"].dt.to_period("M").dt.start_time == month), "customer_id"].nunique()
    sales = tx[tx["amount"] > 0].dropna(subset=["customer_id"])
    for grain in kpis.PERIODS:      # the new customers: as the in-memory table counts those with an id
        table = kpis.compute(tx[tx["customer_id"].notna()], grain).set_index(["region", "period"])["new_customers"]
        assert history.new[grain].sort_index().to_dict() == table[table > 0].sort_index().to_dict()
    def keyed(frame: pd.DataFrame) -> dict:
        return {(None if pd.isna(r) else str(r), str(c)): pd.Timestamp(t)
                for r, c, t in zip(frame["region"], frame["customer_id"], frame["first"], strict=True)}

    want = sales.groupby(["region", "customer_id"], dropna=False)["timestamp"].min().rename("first").reset_index()
    got = keyed(history.pairs.to_pandas())
    assert got == keyed(want) and (None, str(extra["customer_id"].iloc[0])) in got
    since = pd.Timestamp("2025-09-01")
    early = kpis_stage._buyers(history.pairs, since)
    assert set(keyed(early.assign(first=since))) == {k for k, t in keyed(want).items() if t < since}


# ---------------------------------------------------------------- build and run: which way, real files
def write_project(project: Path, tx: pd.DataFrame, engine: str) -> None:
    paths = streaming_project(project, tx, engine)
    io.write_json({"period_end": "2025-11-14", "rows_kept": len(tx)}, paths.data_quality)


@pytest.mark.parametrize("engine, streamed", [("stream", True), ("memory", False), ("auto", False)])
def test_build_follows_the_ingest_engine(project, engine, streamed, monkeypatch):
    write_project(project, awkward_tx(), engine)
    monkeypatch.setenv("DATASTORY_STREAM_BATCH", "300")
    tables = kpis_stage.build(config.paths(project), config.load("kpis", project),
                              io.read_json(config.paths(project).data_quality), config.load("data", project), project)
    assert tables.streamed is streamed
    assert ("batches" in tables.how) is streamed


def test_run_reads_and_writes_real_files(project):
    with pytest.raises(DataError, match="ingest stage first"):
        kpis_stage.run(project)
    write_project(project, awkward_tx(), "memory")
    assert not kpis_stage.run(project).streamed
    memory = {n: getattr(config.paths(project), n).read_bytes() for n in NAMES}
    write_project(project, awkward_tx(), "stream")
    tables = kpis_stage.run(project)
    assert tables.streamed
    paths = config.paths(project)
    assert {n: getattr(paths, n).read_bytes() for n in NAMES} == memory
    pd.testing.assert_frame_equal(io.read_parquet(paths.kpis), tables.kpis)


# the real pipeline (dvc repro) streaming: tests/test_pipeline_sources_e2e.py, every output byte for byte
