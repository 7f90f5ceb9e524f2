"""What changed: each part of the bridge on hand-checked rows, exact sums on generated logs, movers, edges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from customer_logs import customer_log

from datastory import bridge, config, ingest, io, kpis, kpis_stage, sample, schema
from datastory.errors import DataError


def lines(rows: list[tuple]) -> pd.DataFrame:
    """schema.TRANSACTIONS from (customer, day, region, product line, quantity, amount) rows."""
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "region", "product_line", "quantity", "amount"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["order_id"] = [f"O{i}" for i in range(len(df))]
    df["customer_name"] = "Name of " + df["customer_id"]
    df["discount"] = 0.0
    df["is_return"] = df["amount"] < 0
    return schema.conform(df, schema.TRANSACTIONS, "transactions")


def hand_rows() -> pd.DataFrame:
    """March 2025 vs February 2025 (data to 31 March); every kind of customer once."""
    return lines([
        ("A", "2025-02-03", "North", "Hardware", 2, 200.0),   # returning, grew: +130, dearer (100 -> 110)
        ("A", "2025-03-04", "North", "Hardware", 3, 330.0),
        ("B", "2025-02-05", "North", "Software", 1, 400.0),   # returning, declined: -250
        ("B", "2025-03-05", "North", "Software", 1, 150.0),
        ("C", "2025-01-10", "North", "Hardware", 1, 50.0),    # reactivated: bought in January, not February
        ("C", "2025-03-10", "North", "Hardware", 2, 120.0),
        ("D", "2025-03-12", "North", "Services", 1, 80.0),    # new
        ("E", "2025-02-14", "North", "Services", 2, 90.0),    # lost
        ("F", "2025-02-15", "South", "Hardware", 1, 60.0),    # lost; only a return in March
        ("F", "2025-03-16", "South", "Hardware", -1, -20.0),
        ("G", "2025-02-17", "North", "Hardware", 1, 100.0),   # returning, grew +50 with a new product line
        ("G", "2025-02-18", "North", "Hardware", -1, -10.0),
        ("G", "2025-03-18", "North", "Hardware", 1, 100.0),
        ("G", "2025-03-31", "North", "Software", 1, 50.0),
    ])


def parts(b: pd.DataFrame, region: str = schema.ALL) -> dict[str, float]:
    rows = b[b["region"] == region]
    return dict(zip(rows["part"], rows["amount"], strict=True))


def cents(x) -> int:
    return int(np.rint(float(x) * 100))


# ---------------------------------------------------------------- each part on hand-checked rows
def test_each_part_on_hand_checked_rows():
    b = bridge.compute(hand_rows(), "M", "2025-03-31")
    assert list(b.columns) == list(schema.BRIDGE) and [str(t) for t in b.dtypes] == list(schema.BRIDGE.values())
    assert list(dict.fromkeys(b["region"])) == [schema.ALL, "North", "South"]
    assert (b["period"] == pd.Timestamp("2025-03-01")).all() and (b["previous_period"] == pd.Timestamp("2025-02-01")).all()
    p = parts(b)
    assert p["previous"] == 840.0 and p["current"] == 810.0      # 200+400+90+60+100-10; 330+150+120+80+150-20
    assert (p["new"], p["reactivated"], p["lost"]) == (80.0, 120.0, -150.0)
    assert (p["growth"], p["decline"], p["returns"]) == (180.0, -250.0, -10.0)
    counts = bridge.segment(b, schema.ALL)["customers"]
    assert [counts[k] for k in ("previous", "new", "reactivated", "lost", "growth", "decline", "returns", "current")] \
        == [5, 1, 1, 2, 2, 1, 1, 5]
    south = parts(b, "South")
    assert (south["previous"], south["lost"], south["returns"], south["current"]) == (60.0, -60.0, -20.0, -20.0)
    north = parts(b, "North")
    assert (north["previous"], north["current"], north["lost"]) == (780.0, 830.0, -90.0)


def test_price_volume_mix_on_hand_checked_rows():
    """Returning A, B, G. Previous cells: A/Hardware 2 for 200, B/Software 1 for 400, G/Hardware 1 for 100, so
    Q0 = 4 units at P0 = 175. Current: 3 for 330, 1 for 150, 1 for 100 and G's new Software line 1 for 50."""
    p = parts(bridge.compute(hand_rows(), "M", "2025-03-31"))
    price = 3 * (110 - 100) + 1 * (150 - 400) + 1 * (100 - 100)
    volume = (6 - 4) * 175
    mix = (3 * 100 + 1 * 400 + 1 * 100) + 50 - 6 * 175   # current units at previous prices, new line, less Q1 x P0
    assert (p["price"], p["volume"], p["mix"]) == (price, volume, mix) == (-220, 350, -200)
    assert p["price"] + p["volume"] + p["mix"] == p["growth"] + p["decline"]


def test_segment_view_for_renderers():
    view = bridge.segment(bridge.compute(hand_rows(), "M", "2025-03-31"), "North")
    assert (view["period"], view["previous_period"]) == ("2025-03-01", "2025-02-01")
    assert view["change"] == 50.0 and sum(view["steps"].values()) == pytest.approx(50.0)
    assert set(view["pvm"]) == set(bridge.PVM) and view["note"] == ""
    assert view["customers"]["lost"] == 1 and view["customers"]["price"] == 3     # A, B and G bought in both
    assert bridge.segment(bridge.compute(hand_rows(), "M", "2025-03-31"), "Mars") is None


def test_a_customer_who_spent_the_same_is_returning_but_neither_growth_nor_decline():
    tx = pd.concat([hand_rows(), lines([("K", "2025-02-09", "North", "Services", 1, 75.0),
                                        ("K", "2025-03-09", "North", "Services", 1, 75.0)])], ignore_index=True)
    b = bridge.compute(tx, "M", "2025-03-31")
    view, before = bridge.segment(b, schema.ALL), bridge.segment(bridge.compute(hand_rows(), "M", "2025-03-31"), schema.ALL)
    assert view["steps"] == before["steps"] and view["change"] == before["change"]
    assert (view["customers"]["growth"], view["customers"]["decline"], view["customers"]["mix"]) == (2, 1, 4)
    assert sum(view["pvm"].values()) == pytest.approx(-70.0) and view["pvm"] != before["pvm"]


# ---------------------------------------------------------------- complete periods
def test_a_partial_last_period_is_not_compared():
    tx = pd.concat([hand_rows(), lines([("A", "2025-04-02", "North", "Hardware", 9, 9000.0)])], ignore_index=True)
    b = bridge.compute(tx, "M", "2025-04-02")
    assert (b["period"] == pd.Timestamp("2025-03-01")).all() and parts(b)["current"] == 810.0
    early = bridge.compute(hand_rows(), "M", "2025-03-30")        # March is not complete either
    assert (early["period"] == pd.Timestamp("2025-02-01")).all()
    assert (early["previous_period"] == pd.Timestamp("2025-01-01")).all()
    assert (bridge.compute(tx, "M")["period"] == pd.Timestamp("2025-03-01")).all()  # default end: the last line
    assert bridge.compute(tx, "M", "1990-01-31").empty                 # an end before the data: nothing complete
    assert bridge.periods(pd.Series([], dtype="datetime64[ns]"), "M", "2025-03-31") == ()


def test_totals_equal_the_kpi_tiles_on_the_sample():
    tx = ingest.clean(sample.generate(config.SampleParams(n_customers=300)), "sample")[0]
    end = tx["timestamp"].max().date().isoformat()
    for period in ("M", "Q"):
        b = bridge.compute(tx, period, end)
        k = kpis.compute(tx, period)
        for region in b["region"].unique():
            tile = kpis.latest_change(k, region, end)
            view = bridge.segment(b, region)
            assert view["period"] == tile["period"] and view["previous_period"] == tile["previous_period"]
            assert cents(view["current"]) == cents(tile["kpis"]["revenue"]["value"])
            assert cents(view["previous"]) == cents(tile["kpis"]["revenue"]["previous"])
            assert view["customers"]["current"] == tile["kpis"]["active_customers"]["value"]


# ---------------------------------------------------------------- exact sums on generated logs
def shaped(seed: int) -> pd.DataFrame:
    """customer_log with what it lacks: quantities of 1-6 units, amounts with odd cents, return lines (some
    customers return more than they buy in a month), and customers who only ever return."""
    rng = np.random.default_rng(seed)
    tx = customer_log(n_customers=250, seed=seed, start="2024-01-01", end="2024-12-31", whale_share=0.2 * (seed % 2))
    tx = tx.assign(quantity=rng.integers(1, 7, len(tx)).astype(float),
                   amount=(tx["amount"] * rng.uniform(0.5, 1.5, len(tx))).round(2))
    back = tx.sample(frac=0.15, random_state=seed)
    back = back.assign(order_id="R" + back["order_id"], quantity=-1.0, is_return=True,
                       timestamp=back["timestamp"] + pd.Timedelta(days=int(rng.integers(1, 40))),
                       amount=-(back["amount"] * rng.uniform(0.1, 1.2, len(back))).round(2))
    only = back.head(5).assign(customer_id="RET" + back["customer_id"].head(5))
    out = pd.concat([tx, back, only], ignore_index=True)
    out = out[out["timestamp"] <= pd.Timestamp("2024-12-31 23:00")]
    return schema.conform(out.sort_values("timestamp", kind="stable"), schema.TRANSACTIONS, "log")


def independent_totals(tx: pd.DataFrame, region: str, period: pd.Timestamp, freq: str) -> int:
    seg = tx if region == schema.ALL else tx[tx["region"] == region]
    starts = seg["timestamp"].dt.to_period(freq).dt.start_time
    return sum(int(np.rint(a * 100)) for a in seg.loc[starts == period, "amount"])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("freq", ["M", "Q"])
def test_bridge_sums_exactly_to_the_cent_on_generated_logs(seed, freq):
    tx = shaped(seed)
    b = bridge.compute(tx, freq, "2024-12-31")
    assert len(b) == 4 * 11
    for region, rows in b.groupby("region", sort=False):
        c = {p: cents(a) for p, a in zip(rows["part"], rows["amount"], strict=True)}
        assert all(math.isclose(a * 100, round(a * 100), abs_tol=1e-6) for a in rows["amount"])  # whole cents
        assert sum(c[k] for k in bridge.STEPS) == c["current"] - c["previous"]
        assert c["price"] + c["volume"] + c["mix"] == c["growth"] + c["decline"]
        cur, prev = rows["period"].iloc[0], rows["previous_period"].iloc[0]
        assert c["current"] == independent_totals(tx, region, cur, freq)
        assert c["previous"] == independent_totals(tx, region, prev, freq)
        assert c["growth"] >= 0 >= c["decline"] and c["new"] >= 0 and c["reactivated"] >= 0 >= c["lost"]
    # customers stay in their region, so each step of the regions adds up to the company's (not price, volume
    # and mix: volume is valued at each segment's own average price)
    steps = b[b["kind"] != "pvm"]
    regions = steps[steps["region"] != schema.ALL].groupby("part")["amount"].sum().map(cents)
    company = steps[steps["region"] == schema.ALL].set_index("part")["amount"].map(cents)
    assert regions.sort_index().equals(company.sort_index())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bridge_sums_exactly_on_the_sample_company(seed):
    tx = ingest.clean(sample.generate(config.SampleParams(n_customers=200, seed=seed)), "sample")[0]
    b = bridge.compute(tx, "M", tx["timestamp"].max())
    for _, rows in b.groupby("region"):
        c = {p: cents(a) for p, a in zip(rows["part"], rows["amount"], strict=True)}
        assert sum(c[k] for k in bridge.STEPS) == c["current"] - c["previous"]
        assert sum(c[k] for k in bridge.PVM) == c["growth"] + c["decline"]


def test_fractions_of_a_cent_are_rounded_per_line_and_still_sum():
    tx = hand_rows().assign(amount=lambda d: d["amount"] + 0.004999)
    b = bridge.compute(tx, "M", "2025-03-31")
    c = {p: cents(a) for p, a in zip(parts(b), parts(b).values(), strict=True)}
    assert sum(c[k] for k in bridge.STEPS) == c["current"] - c["previous"] == -3000


# ---------------------------------------------------------------- edge cases
def test_one_period_of_data_has_no_bridge_and_no_movers():
    tx = hand_rows()
    tx = tx[tx["timestamp"] >= "2025-03-01"]
    b, m = bridge.compute(tx, "M", "2025-03-31"), bridge.movers(tx, "M", "2025-03-31")
    assert b.empty and list(b.columns) == list(schema.BRIDGE) and [str(t) for t in b.dtypes] == list(schema.BRIDGE.values())
    assert m.empty and list(m.columns) == list(schema.MOVERS)
    assert bridge.segment(b, schema.ALL) is None
    assert bridge.compute(hand_rows(), "Q", "2025-03-31").empty      # one quarter only


def test_a_segment_without_revenue_in_one_period():
    tx = pd.concat([hand_rows(), lines([("H", "2025-03-02", "East", "Hardware", 1, 70.0),
                                        ("I", "2025-01-02", "West", "Hardware", 1, 30.0)])], ignore_index=True)
    b = bridge.compute(tx, "M", "2025-03-31")
    east = parts(b, "East")
    assert (east["previous"], east["new"], east["current"]) == (0.0, 70.0, 70.0)
    assert east["price"] == east["volume"] == east["mix"] == 0.0
    west = parts(b, "West")                                        # nothing in either period: all zero
    assert set(west.values()) == {0.0} and len(west) == 11


def test_customers_with_only_returns_count_in_returns_only():
    tx = pd.concat([hand_rows(), lines([("R", "2025-03-20", "North", "Hardware", -1, -35.0)])], ignore_index=True)
    before, after = parts(bridge.compute(hand_rows(), "M", "2025-03-31")), parts(bridge.compute(tx, "M", "2025-03-31"))
    assert after["returns"] == before["returns"] - 35 and after["current"] == before["current"] - 35
    assert all(after[k] == before[k] for k in ("new", "reactivated", "lost", "growth", "decline"))


@pytest.mark.parametrize("quantity", [np.nan, 0.0])
def test_missing_quantities_leave_the_returning_change_unsplit_and_say_why(quantity):
    tx = hand_rows()
    tx.loc[(tx["customer_id"] == "B") & (tx["amount"] > 0), "quantity"] = quantity  # 2 of A, B and G's 7 sales lines
    b = bridge.compute(tx, "M", "2025-03-31")
    rows = b[(b["region"] == schema.ALL) & (b["kind"] == "pvm")]
    assert list(rows["part"]) == [bridge.UNSPLIT] and rows["amount"].iloc[0] == -70.0
    assert "2 of 7 order lines" in rows["note"].iloc[0]
    assert parts(b, "South")["price"] == 0.0                       # South has no returning customer to split
    none = bridge.compute(hand_rows(), "M", "2025-03-31", quantities=False)
    assert set(none.loc[none["kind"] == "pvm", "part"]) == {bridge.UNSPLIT}
    assert "no quantities" in bridge.segment(none, schema.ALL)["note"]
    assert bridge.segment(none, schema.ALL)["pvm"] == {}


def test_source_quantities_are_known_from_the_data_params():
    assert bridge.has_quantities(config.DataParams())               # the sample
    csv = config.DataParams(source="csv", columns=config.ColumnsParams(quantity=""))
    assert not bridge.has_quantities(csv)
    assert bridge.has_quantities(config.DataParams(source="csv"))


def test_one_dominant_customer():
    whale = lines([("W", "2025-02-01", "North", "Hardware", 10, 50_000.0),
                   ("W", "2025-03-01", "North", "Hardware", 30, 120_000.0)])
    tx = pd.concat([hand_rows(), whale], ignore_index=True)
    b, m = bridge.compute(tx, "M", "2025-03-31"), bridge.movers(tx, "M", "2025-03-31")
    p = parts(b)
    assert p["growth"] == 180 + 70_000 and p["current"] - p["previous"] == pytest.approx(-30 + 70_000)
    top = m[(m["region"] == schema.ALL) & (m["kind"] == "customer") & (m["direction"] == "rise")]
    assert top.iloc[0]["key"] == "W" and top.iloc[0]["change"] == 70_000.0


# ---------------------------------------------------------------- movers
def test_movers_order_amounts_and_names():
    tx = hand_rows()
    tx.loc[tx["customer_id"] == "C", "customer_name"] = "Łukasik Ærø 株式会社"
    m = bridge.movers(tx, "M", "2025-03-31", top=2)
    assert list(m.columns) == list(schema.MOVERS) and [str(t) for t in m.dtypes] == list(schema.MOVERS.values())
    company = m[m["region"] == schema.ALL]
    cust = company[company["kind"] == "customer"]
    rise, fall = cust[cust["direction"] == "rise"], cust[cust["direction"] == "fall"]
    assert list(rise["key"]) == ["A", "C"] and list(rise["rank"]) == [1, 2]
    assert list(rise["name"]) == ["Name of A", "Łukasik Ærø 株式会社"]
    assert list(fall["key"]) == ["B", "E"] and list(fall["change"]) == [-250.0, -90.0]
    a = rise.iloc[0]
    assert (a["previous"], a["current"], a["change"]) == (200.0, 330.0, 130.0)
    lines_ = company[company["kind"] == "product_line"]
    assert list(lines_.loc[lines_["direction"] == "rise", "key"]) == ["Hardware"]         # 350 -> 530
    assert list(lines_.loc[lines_["direction"] == "fall", "key"]) == ["Software", "Services"]
    assert list(lines_.loc[lines_["direction"] == "fall", "change"]) == [-200.0, -10.0]
    assert set(m["region"]) == {schema.ALL, "North", "South"}
    south = m[(m["region"] == "South") & (m["kind"] == "customer")]
    assert list(south["key"]) == ["F"] and south.iloc[0]["change"] == -80.0   # net revenue: 60 -> -20


def test_movers_ties_are_broken_by_key_and_flat_ones_left_out():
    tx = lines([(c, "2025-02-01", "North", "Hardware", 1, 100.0) for c in "ZYXQ"]
               + [(c, "2025-03-01", "North", "Hardware", 1, 150.0) for c in "ZYX"]
               + [("Q", "2025-03-01", "North", "Hardware", 1, 100.0)])
    m = bridge.movers(tx, "M", "2025-03-31", top=5)
    cust = m[(m["region"] == schema.ALL) & (m["kind"] == "customer")]
    assert list(cust["key"]) == ["X", "Y", "Z"] and set(cust["direction"]) == {"rise"}


def test_movers_top_is_respected_on_generated_logs():
    m = bridge.movers(shaped(4), "M", "2024-12-31", top=3)
    counts = m.groupby(["region", "kind", "direction"]).size()
    assert counts.max() == 3 and set(m["kind"]) == {"customer", "product_line"}
    for _, g in m.groupby(["region", "kind", "direction"]):
        change = g["change"].to_numpy()
        assert list(g["rank"]) == list(range(1, len(g) + 1))
        assert (np.diff(np.abs(change)) <= 0).all()
        assert np.allclose(g["current"] - g["previous"], change)


# ---------------------------------------------------------------- bad input
def test_bad_input_gets_a_clear_message():
    with pytest.raises(DataError, match="unknown period 'W'"):
        bridge.compute(hand_rows(), "W")
    with pytest.raises(DataError, match="no transactions"):
        bridge.compute(hand_rows().iloc[:0], "M")
    with pytest.raises(DataError, match="missing column"):
        bridge.movers(hand_rows().drop(columns="amount"), "M")
    with pytest.raises(DataError, match="amount is missing or not a number in 1 line"):
        bridge.compute(hand_rows().assign(amount=lambda d: d["amount"].where(d.index != 3)), "M")
    with pytest.raises(DataError, match="movers must be at least 1"):
        bridge.movers(hand_rows(), "M", top=0)


# ---------------------------------------------------------------- the stage writes them
def test_kpis_stage_writes_bridge_and_movers(project):
    paths = config.paths(project)
    tx = pd.concat([hand_rows(), lines([("A", "2025-04-02", "North", "Hardware", 1, 5.0)])], ignore_index=True)
    io.write_parquet(tx, paths.transactions)
    io.write_json({"period_end": "2025-04-02"}, paths.data_quality)   # April is partial: March vs February
    (project / "params/kpis.yaml").write_text("period: M\nmovers: 2\n", encoding="utf-8")
    kpis_stage.run(project)
    b, m = io.read_parquet(paths.bridge), io.read_parquet(paths.movers)
    pd.testing.assert_frame_equal(b, bridge.compute(tx, "M", "2025-04-02"))
    pd.testing.assert_frame_equal(m, bridge.movers(tx, "M", "2025-04-02", top=2))
    assert (b["period"] == pd.Timestamp("2025-03-01")).all() and m.groupby(["region", "kind", "direction"]).size().max() == 2
    first = paths.bridge.read_bytes()
    kpis_stage.run(project)
    assert paths.bridge.read_bytes() == first                       # same inputs, same bytes


def test_movers_parameter_is_validated(project):
    (project / "params/kpis.yaml").write_text("period: M\nmovers: 0\n", encoding="utf-8")
    with pytest.raises(Exception, match="movers"):
        config.load("kpis", project)


def test_prepared_lines_give_what_the_transactions_give():
    tx = hand_rows()
    for period in ("M", "Q"):
        prepared = bridge.prepare(tx, period)
        pd.testing.assert_frame_equal(bridge.compute(prepared, period), bridge.compute(tx, period))
        without_names = bridge.movers(tx.drop(columns="customer_name"), period)
        pd.testing.assert_frame_equal(bridge.movers(prepared, period), without_names)
        # given the names of the same transactions, the prepared lines name the movers as the frame does
        pd.testing.assert_frame_equal(bridge.movers(prepared, period, named=bridge.names(tx)),
                                      bridge.movers(tx, period))
    assert (bridge.movers(bridge.prepare(tx, "M"), "M")["name"] != bridge.movers(tx, "M")["name"]).any()
    with pytest.raises(DataError, match="lines prepared for period 'M', asked for 'Q'"):
        bridge.compute(bridge.prepare(tx, "M"), "Q")


def test_category_of_codes_is_the_category_of_the_text():
    """Read as codes (a dictionary with values unused, unsorted, missing ones): the same categorical as from text."""
    text = pd.Series(["Zoë", "b", None, "b", "Ärger", "a"], dtype="string[pyarrow]")
    coded = pd.Series(pd.Categorical(["x", *text], categories=["x", "b", "Zoë", "unused", "a", "Ärger"])).iloc[1:]
    got, want = bridge.category(coded.reset_index(drop=True)), pd.Categorical(text)
    assert got.dtype == want.dtype and got.codes.tolist() == want.codes.tolist()
    assert bridge.category(pd.Series(pd.Categorical([None, None], categories=["q"]))).codes.tolist() == [-1, -1]
    # more categories than category() looks for one by one: counted instead, the same categorical
    names = [f"line {k:03d}" for k in range(bridge.FEW * 3, 0, -1)]
    values = pd.Series([names[k] if k % 7 else None for k in range(0, len(names), 2)] * 2, dtype="string[pyarrow]")
    coded = pd.Series(pd.Categorical(values, categories=names))
    got, want = bridge.category(coded), pd.Categorical(values)
    assert len(coded.cat.categories) > bridge.FEW and got.dtype == want.dtype
    assert got.codes.tolist() == want.codes.tolist() and -1 in got.codes.tolist()


def test_top_movers_are_the_largest_changes_ties_by_key():
    t = pd.DataFrame({"key": [3.0, 0.0, 1.0, 2.0, 4.0], "previous": 0, "current": [5, 9, 5, 5, -4],
                      "change": [5, 9, 5, 5, -4]})
    ids = pd.Index(["c", "z", "b", "a", "d"])     # number -> id (3: a, 0: c, 1: z, 2: b): ties go by the id
    rise = bridge._top(t, 1, 3, ids)
    assert rise["key"].tolist() == ["c", "a", "b"] and rise["change"].tolist() == [9, 5, 5]
    assert bridge._top(t, -1, 3, ids)["key"].tolist() == ["d"]
    lines = t.assign(key=["x", "y", "w", "v", "u"])
    assert bridge._top(lines, 1, 2, None)["key"].tolist() == ["y", "v"]
    assert bridge._top(t, 1, 10, ids)["key"].tolist() == ["c", "a", "b", "z"]


def test_movers_get_names_for_the_customers_they_list_only():
    table = pd.DataFrame({"kind": ["customer", "product_line", "customer", "customer"],
                          "key": ["C2", "Hardware", "C1", "C2"], "name": ["C2", "Hardware", "C1", "C2"]})
    table = schema.conform(table.assign(region=schema.ALL, period=pd.Timestamp("2025-02-01"),
                                        previous_period=pd.Timestamp("2025-01-01"), direction="rise", rank=1,
                                        previous=0.0, current=1.0, change=1.0), schema.MOVERS, "movers")
    assert bridge.customer_keys(table) == ["C2", "C1"]
    named = pd.Series(["Old Ltd", "New Ltd", "Hardware Inc"], index=["C2", "C2", "Hardware"])
    assert bridge.with_names(table, named)["name"].tolist() == ["New Ltd", "Hardware", "C1", "New Ltd"]
    assert bridge.with_names(table, named.iloc[:0]).equals(table)


@pytest.mark.parametrize("lines", [3, 400])
def test_pvm_cells_counted_in_arrays_or_numbered_by_hashing_give_the_definition(lines):
    """Few product lines (cells as (customer, line) numbers) or many (cells numbered by hashing): price, volume
    and mix are the definition's, computed here with a pandas groupby."""
    rng = np.random.default_rng(lines)
    n = 3_000
    customer = rng.integers(0, 200, n).astype("float64")
    line = rng.integers(-1, lines, n)
    current = rng.random(n) < 0.5
    cents = rng.integers(100, 10_000, n)
    quantity = rng.integers(1, 5, n).astype("float64")
    got, note = bridge.pvm(customer, line, current, cents, quantity)
    f = pd.DataFrame({"c": customer, "l": line, "cur": current, "a": cents, "q": quantity})
    cells = f[f["l"] >= 0].groupby(["c", "l", "cur"])[["a", "q"]].sum().unstack("cur")
    a0, q0 = cells[("a", False)].sum(), math.fsum(cells[("q", False)].dropna())
    both = cells.dropna()
    price = math.fsum(both[("a", True)] - both[("q", True)] * both[("a", False)] / both[("q", False)])
    volume = (math.fsum(cells[("q", True)].dropna()) - q0) * a0 / q0
    total = int(cents[current].sum()) - int(cents[~current].sum())
    assert note == "" and got == {"price": round(price), "volume": round(volume),
                                  "mix": total - round(price) - round(volume)}
