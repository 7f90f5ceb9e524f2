"""The sample company: deterministic bytes, and the statistical properties later stages rely on."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from datastory import config, io, sample
from datastory.errors import ParamsError

SMALL = config.SampleParams(n_customers=1500)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return sample.generate(SMALL)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_frame_different_seed_differs():
    p = config.SampleParams(n_customers=200)
    a, b = sample.generate(p), sample.generate(p)
    pd.testing.assert_frame_equal(a, b)
    c = sample.generate(p.model_copy(update={"seed": p.seed + 1}))
    assert len(a) != len(c) or not a.equals(c)


def test_run_writes_byte_identical_parquet(project):
    (project / "params/data.yaml").write_text(
        "source: sample\ncurrency: EUR\nsample:\n  seed: 3\n  n_customers: 150\n", encoding="utf-8")
    first = sample.run(project)
    digest = _sha(first)
    first.unlink()
    second = sample.run(project)
    assert second == config.paths(project).sample
    assert _sha(second) == digest
    back = io.read_parquet(second)
    assert list(back.columns) == sample.RAW_COLUMNS
    assert len(back) > 1000


def test_run_without_project_is_a_params_error(tmp_path):
    with pytest.raises(ParamsError, match="no datastory project"):
        sample.run(tmp_path)


def test_duplicate_region_names_are_refused():
    p = config.SampleParams(n_customers=50, regions=["North", "North", "South"])
    with pytest.raises(ParamsError, match="sample.regions"):
        sample.generate(p)


def test_columns_and_amount_arithmetic(raw):
    assert list(raw.columns) == sample.RAW_COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(raw["timestamp"])
    assert (raw["timestamp"].dt.hour != 0).mean() > 0.9          # time of day is present
    expected = (raw["quantity"] * raw["unit_price"] * (1 - raw["discount"])).round(2)
    np.testing.assert_allclose(raw["amount"], expected, atol=0.011)
    assert raw["discount"].between(0, 1).all()
    assert raw["timestamp"].min() >= pd.Timestamp(SMALL.start_date)
    assert raw["timestamp"].max() < pd.Timestamp(SMALL.end_date) + pd.Timedelta(days=1)
    lines_per_order = raw[raw["amount"] > 0].drop_duplicates().groupby("order_id").size()
    assert set(lines_per_order.unique()) == {1, 2, 3}


def test_size_and_customers(raw):
    n = raw["customer_id"].nunique()
    assert 0.9 * SMALL.n_customers <= n <= SMALL.n_customers
    assert 20 * n < len(raw) < 80 * n                             # ~100k-250k lines at 5000 customers


def test_regions_are_the_configured_four_with_unequal_sizes(raw):
    sizes = raw.drop_duplicates("customer_id")["region"].dropna().value_counts()
    assert set(sizes.index) == set(SMALL.regions)
    assert sizes.max() > 1.8 * sizes.min()
    assert set(raw["product_line"]) == set(SMALL.product_lines)


def test_weekdays_are_busier_than_weekends(raw):
    by_day = raw.groupby(raw["timestamp"].dt.dayofweek)["amount"].sum()
    assert by_day.loc[[0, 1, 2, 3, 4]].min() > 3 * by_day.loc[[5, 6]].max()


def test_december_peak_and_growth(raw):
    monthly = raw.set_index("timestamp")["amount"].resample("MS").sum()
    for year in (2024, 2025):
        dec = monthly[pd.Timestamp(year, 12, 1)]
        autumn = monthly[pd.Timestamp(year, 9, 1):pd.Timestamp(year, 11, 1)].mean()
        assert dec > 1.15 * autumn
        assert dec > monthly[pd.Timestamp(year + 1, 1, 1)]
    assert monthly.iloc[-12:].sum() > 1.5 * monthly.iloc[:12].sum()
    first = raw.groupby("customer_id")["timestamp"].min()
    assert (first.dt.year == 2026).sum() > (first.dt.year == 2024).sum() * 0.5   # still acquiring


def test_mess_is_present_but_small(raw):
    dups = raw.duplicated().sum()
    assert 0 < dups < 0.005 * len(raw)
    missing = raw["region"].isna().sum()
    assert 0 < missing < 0.01 * len(raw)
    # every customer with a missing region has that region known on another line
    known = raw.dropna(subset=["region"])["customer_id"]
    assert raw.loc[raw["region"].isna(), "customer_id"].isin(known).all()
    assert any(not name.isascii() for name in raw["customer_name"].unique())


def test_returns_are_negative_and_reference_bought_lines(raw):
    ret = raw[raw["amount"] < 0]
    assert 0.005 * len(raw) < len(ret) < 0.1 * len(raw)
    assert (ret["quantity"] < 0).all()
    sales = raw[raw["amount"] > 0]
    first_sale = sales.groupby(["customer_id", "product_line"])["timestamp"].min()
    ref = first_sale.reindex(pd.MultiIndex.from_frame(ret[["customer_id", "product_line"]]))
    assert ref.notna().all()
    assert (ref.to_numpy() < ret["timestamp"].to_numpy()).all()


def _churn_table(raw: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Customers active in the year before `cutoff`: recency, discount, and churned-in-90-days."""
    sales = raw[raw["amount"] > 0]
    before = sales[(sales["timestamp"] < cutoff) & (sales["timestamp"] >= cutoff - pd.Timedelta(days=365))]
    after = sales[(sales["timestamp"] >= cutoff) & (sales["timestamp"] < cutoff + pd.Timedelta(days=90))]
    g = before.groupby("customer_id")
    table = pd.DataFrame({"recency": (cutoff - g["timestamp"].max()).dt.days,
                          "discount": g["discount"].mean()})
    table["churned"] = ~table.index.isin(after["customer_id"])
    return table


def test_churners_exist_and_hazard_rises_with_recency_and_discount(raw):
    table = _churn_table(raw, pd.Timestamp("2025-10-01"))
    assert 0.1 < table["churned"].mean() < 0.6
    terciles = pd.qcut(table["recency"].rank(method="first"), 3, labels=False)
    rate = table.groupby(terciles)["churned"].mean()
    assert rate[2] > 2 * rate[0]
    # among recent buyers (recency alone cannot tell them apart) heavy discounters churn more
    recent = table[table["recency"] <= 30]
    heavy = recent["discount"] >= recent["discount"].quantile(0.9)
    assert recent.loc[heavy, "churned"].mean() > 1.5 * recent.loc[~heavy, "churned"].mean()


def test_some_customers_are_drifting_at_the_end(raw):
    end = raw["timestamp"].max().normalize() + pd.Timedelta(days=1)
    sales = raw[raw["amount"] > 0]
    g = sales.groupby("customer_id")["timestamp"]
    recency = (end - g.max()).dt.days
    gap = (g.max() - g.min()).dt.days / (g.count() - 1).clip(lower=1)
    at_risk = (recency > 3 * gap) & (recency.between(30, 180)) & (g.count() >= 4)
    assert at_risk.sum() >= 10


def test_default_company_size():
    raw = sample.generate(config.SampleParams())
    assert 100_000 <= len(raw) <= 250_000
    assert raw["customer_id"].nunique() > 4500


def test_another_source_gets_an_empty_placeholder_not_the_company(project):
    (project / "params/data.yaml").write_text("source: parquet\nsample:\n  n_customers: 150\n", encoding="utf-8")
    path = sample.run(project)
    frame = io.read_parquet(path)
    assert frame.empty and list(frame.columns) == sample.RAW_COLUMNS
    assert [str(t) for t in frame.dtypes] == [str(t) for t in sample.placeholder().dtypes]
    assert str(frame["timestamp"].dtype) == "datetime64[ns]" and str(frame["amount"].dtype) == "float64"
    digest = _sha(path)
    assert _sha(sample.run(project)) == digest   # stable bytes: `dvc status` stays clean
