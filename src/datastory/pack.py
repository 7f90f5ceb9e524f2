"""One audience's share of the results: what its workbook, report and email are built from.

`select` is the pure core (frames in, filtered frames out); `load` is the I/O edge.
A regional audience gets only its own regions' customers and series, never the company total.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import config, io, metrics, schema
from .errors import ParamsError
from .schema import ALL


@dataclass(frozen=True)
class Provenance:
    period_start: str
    period_end: str
    commit: str
    params_hash: str

    def footer(self) -> str:
        return (f"Data {self.period_start} to {self.period_end} · commit {self.commit} · "
                f"params {self.params_hash}")


@dataclass(frozen=True)
class Pack:
    audience: str
    label: str
    regions: tuple[str, ...]       # the regions this audience sees
    is_company: bool               # True when it sees every region (company totals included)
    title: str
    company: str
    currency: str
    page_size: str
    kpis: pd.DataFrame             # schema.KPIS rows of its regions (plus ALL when is_company)
    bridge: pd.DataFrame           # schema.BRIDGE rows of its segments; no rows: no previous period to compare
    movers: pd.DataFrame           # schema.MOVERS rows of its segments
    forecast: pd.DataFrame         # schema.FORECAST rows of its series
    forecast_metrics: dict[str, Any]  # the forecast stage's metrics, "series" narrowed to its series
    churn_scores: pd.DataFrame     # schema.CHURN_SCORES rows of its customers
    churn_metrics: dict[str, Any]
    data_quality: dict[str, Any]
    provenance: Provenance
    # schema.ACTIVE rows of its segments: distinct customers per month, quarter and year (none: not computed)
    active: pd.DataFrame = field(default_factory=lambda: schema.conform(pd.DataFrame(columns=list(schema.ACTIVE)),
                                                                        schema.ACTIVE, "active"))

    @property
    def headline_region(self) -> str:
        """The KPI segment and series this audience leads with: ALL for the company, else its region."""
        return ALL if self.is_company else self.regions[0]

    @property
    def red_list(self) -> pd.DataFrame:
        return self.churn_scores[self.churn_scores["red"]]

    @property
    def call_counts(self) -> dict[str, int]:
        """How many customers are to call (in all, to win back, for a second purchase) and on watch."""
        cs = self.churn_scores
        red = cs["red"].astype(bool)
        lists = cs["list"].astype(str)
        return {"call": int(red.sum()), "win_back": int((red & (lists == "win back")).sum()),
                "second_purchase": int((red & (lists == "second purchase")).sum()),
                "watch": int((cs["status"].astype(str) == "watch").sum())}


def audience_regions(audience: config.Audience, known: list[str]) -> tuple[tuple[str, ...], bool]:
    if audience.regions == "all":
        return tuple(sorted(known)), True
    unknown = sorted(set(audience.regions) - set(known))
    if unknown:
        raise ParamsError(f"audience regions {unknown} do not occur in the data; regions are {sorted(known)}",
                          file="params/report.yaml", fix="use region names exactly as in the data")
    regions = tuple(dict.fromkeys(audience.regions))
    if set(regions) >= set(known):
        return tuple(sorted(known)), True
    if len(regions) != 1:
        raise ParamsError(f"audience regions {list(regions)}: an audience sees either all regions or exactly one",
                          file="params/report.yaml",
                          fix="use `regions: all`, or one audience per region (combined regions are not supported yet)")
    return regions, False


RECONCILIATION_SHARED = ("method", "chosen_by", "intervals")  # how it was done: the same words for every audience


def regional_reconciliation(record: dict[str, Any], regions: Sequence[str]) -> dict[str, Any]:
    """The reconciliation record a regional pack may hold: how the forecasts were made to add up, and which of
    its own regions' series ("North", "North / Hardware") were left out; not the company's backtest errors,
    per-method scores or gaps."""
    families = record.get("families") or {}
    return {**{k: record[k] for k in RECONCILIATION_SHARED if k in record},
            "families": {"reconciled": families.get("reconciled", 0),
                         "left_out": {sid: why for sid, why in (families.get("left_out") or {}).items()
                                      if sid.split(" / ")[0] in regions}}}


def select(key: str, report: config.ReportParams, currency: str, kpis: pd.DataFrame,
           forecast: pd.DataFrame, forecast_metrics: dict[str, Any], churn_scores: pd.DataFrame,
           churn_metrics: dict[str, Any], data_quality: dict[str, Any], provenance: Provenance, *,
           bridge: pd.DataFrame, movers: pd.DataFrame, active: pd.DataFrame | None = None) -> Pack:
    """Narrow every result to audience `key` of `report`."""
    aud = report.audience(key)
    known = sorted(set(kpis.loc[kpis["region"] != ALL, "region"]))
    regions, is_company = audience_regions(aud, known)
    keep = set(regions) | ({ALL} if is_company else set())
    fc = forecast[forecast["region"].isin(keep)].reset_index(drop=True)
    series = {sid: m for sid, m in forecast_metrics.get("series", {}).items()
              if sid in set(fc["series_id"])}
    fm = {**forecast_metrics, "series": series}
    if not is_company and "reconciliation" in fm:
        fm["reconciliation"] = regional_reconciliation(fm["reconciliation"], regions)
    return Pack(
        audience=key, label=aud.label, regions=regions, is_company=is_company,
        title=report.title, company=report.company, currency=currency, page_size=report.page_size,
        kpis=kpis[kpis["region"].isin(keep)].reset_index(drop=True),
        bridge=bridge[bridge["region"].isin(keep)].reset_index(drop=True),
        movers=movers[movers["region"].isin(keep)].reset_index(drop=True),
        forecast=fc,
        forecast_metrics=fm,
        churn_scores=churn_scores[churn_scores["region"].isin(regions)].reset_index(drop=True),
        churn_metrics=churn_metrics, data_quality=data_quality, provenance=provenance,
        **({} if active is None else {"active": active[active["region"].isin(keep)].reset_index(drop=True)}),
    )


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True)
        return out.stdout.strip() or "unversioned"
    except (OSError, subprocess.SubprocessError):
        return "unversioned"


def load(key: str, root: str | Path | None = None, report: config.ReportParams | None = None,
         paths: config.Paths | None = None) -> Pack:
    """Read the processed artifacts and narrow them to audience `key` (of `report`, default the file's).

    The forecast metrics are put back together from their record and per-series table (`metrics.read_forecast`),
    so the renderers see the dict the forecast stage computed. `paths` (default params/paths.yaml's) lets a
    notebook run by hand read what other notebooks run by hand wrote (`outputs.paths`)."""
    base = config.project_root(root)
    p = paths or config.paths(base)
    report = report or config.load("report", base)
    dq = io.read_json(p.data_quality)
    prov = Provenance(period_start=str(dq.get("period_start", "?")), period_end=str(dq.get("period_end", "?")),
                      commit=git_commit(base),
                      params_hash=config.params_hash(config.pack_params(key, base, report)))
    return select(key, report, config.load("data", base).currency,
                  io.read_parquet(p.kpis), io.read_parquet(p.forecast), metrics.read_forecast(p),
                  io.read_parquet(p.churn_scores), io.read_json(p.churn_metrics), dq, prov,
                  bridge=io.read_parquet(p.bridge), movers=io.read_parquet(p.movers),
                  active=io.read_parquet(p.active))
