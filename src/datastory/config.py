"""Typed parameters, validated before any kernel starts, and the project's paths.

Each stage has one `params/<stage>.yaml`; its keys are that stage notebook's parameters.
A bad value gets one message naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core.core_schema import ValidationInfo

from .errors import ParamsError

STAGES = ("data", "kpis", "forecast", "churn", "report", "deliver")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- data
class SampleParams(_Strict):
    seed: int = 7
    n_customers: int = Field(5000, ge=20, le=2_000_000)
    start_date: dt.date = dt.date(2023, 10, 1)
    end_date: dt.date = dt.date(2026, 9, 30)
    regions: list[str] = Field(default_factory=lambda: ["North", "South", "East", "West"], min_length=1)
    product_lines: list[str] = Field(default_factory=lambda: ["Hardware", "Software", "Services"],
                                     min_length=1)

    @model_validator(mode="after")
    def _period(self) -> SampleParams:
        if (self.end_date - self.start_date).days < 180:
            raise ValueError("end_date must be at least 180 days after start_date")
        return self


class FileParams(_Strict):
    """A CSV (optionally .gz), Excel or Parquet export, by path relative to the project."""
    path: str = "data/raw/transactions.csv"
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'"] = ""
    sheet: str = ""  # Excel: the sheet's name; empty = the first sheet

    @field_validator("encoding")
    @classmethod
    def _codec(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError("not an encoding Python knows; e.g. utf-8, latin-1, cp1252") from None
        return v

    @model_validator(mode="after")
    def _marks(self) -> FileParams:
        if self.thousands and self.thousands == self.decimal:
            raise ValueError("thousands and decimal marks must differ")
        return self


class SqlParams(_Strict):
    """A table or query of a database. The password is read from the environment, never from here."""
    url: str = ""  # SQLAlchemy URL without a password, e.g. postgresql+psycopg://shop@db.example.com/sales
    password_env: str = "DATASTORY_DB_PASSWORD"
    table: str = ""
    query: str = ""  # one SELECT (or WITH … SELECT) that only reads; anything else is refused

    @field_validator("url")
    @classmethod
    def _no_password(cls, v: str) -> str:
        if v:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                url = make_url(v)
            except ArgumentError:
                raise ValueError("not a SQLAlchemy URL, e.g. sqlite:///data/raw/shop.db or "
                                 "postgresql+psycopg://user@host/db") from None
            if url.password:
                raise ValueError("holds a password: remove it from the URL and put it in the environment "
                                 "variable named by sql.password_env (or in .env)")
        return v

    @field_validator("query")
    @classmethod
    def _one_select(cls, v: str, info: ValidationInfo) -> str:
        """One SELECT that only reads, checked by a SQL parser in the URL's dialect (sources/sqlcheck.py)."""
        if v:
            from .sources import sqlcheck

            sqlcheck.check(v, sqlcheck.dialect(info.data.get("url", "")))
        return v


class ColumnsParams(_Strict):
    """Canonical field -> the source's column name; empty = the source has no such column.

    Without an order id (one row per purchase), each customer's lines at one timestamp are one order."""
    order_id: str = "order_id"
    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    quantity: str = "quantity"
    unit_price: str = ""
    discount: str = "discount"
    region: str = "region"
    country: str = ""
    product: str = ""
    product_line: str = "product_line"
    customer_name: str = "customer_name"

    @model_validator(mode="after")
    def _required(self) -> ColumnsParams:
        for key in ("customer_id", "timestamp"):
            if not getattr(self, key):
                raise ValueError(f"columns.{key} is required: name the source column that holds it")
        if not self.amount and not (self.quantity and self.unit_price):
            raise ValueError("map either columns.amount, or both columns.quantity and columns.unit_price")
        used = [v for v in self.model_dump().values() if v]
        dup = sorted({v for v in used if used.count(v) > 1})
        if dup:
            raise ValueError(f"source column(s) {', '.join(dup)} mapped to more than one field")
        return self

    def mapped(self) -> dict[str, str]:
        """Canonical field -> source column, for the mapped fields only."""
        return {k: v for k, v in self.model_dump().items() if v}


class RulesParams(_Strict):
    """How to read the source's conventions: dates, cancellations, returns, non-product lines, segments."""
    date_format: str = ""        # strftime format, e.g. "%d/%m/%Y %H:%M"; empty: ISO 8601, else inferred
    dayfirst: bool = False       # when inferring: 01/02/2025 is 1 February
    timezone: str = ""           # zone of the source's clock times, e.g. Europe/London; empty = UTC
    cancelled_prefix: str = ""   # e.g. "C": an order id starting with it is a cancellation
    cancellations: Literal["return", "exclude"] = "return"  # return: negative revenue, like a return
    missing_customer: Literal["exclude", "invalid"] = "exclude"  # rows without customer id
    non_product_codes: list[str] = Field(default_factory=list)  # e.g. [POST, DOT, M, BANK CHARGES]
    segment_by: Literal["region", "country", "none"] = "region"
    country_regions: dict[str, str] = Field(default_factory=dict)  # country -> region (segment_by: country);
    # a country it does not list goes to the region "Other" (empty mapping: each country is its own segment)
    max_timestamp: str = ""      # later rows are "future" (invalid); empty = now
    empty_periods: Literal["warn", "fail"] = "warn"  # a calendar month without any row inside the period

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError("not a time zone name, e.g. Europe/London or UTC") from None
        return v

    @field_validator("max_timestamp")
    @classmethod
    def _iso(cls, v: str) -> str:
        if v:
            try:
                dt.datetime.fromisoformat(v)
            except ValueError:
                raise ValueError("must be an ISO date or time, e.g. 2026-09-30, or empty for now") from None
        return v


class DataParams(_Strict):
    source: Literal["sample", "csv", "excel", "parquet", "sql"] = "sample"
    currency: str = Field("EUR", min_length=1, max_length=8)
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    sample: SampleParams = Field(default_factory=SampleParams)
    file: FileParams = Field(default_factory=FileParams)
    sql: SqlParams = Field(default_factory=SqlParams)
    columns: ColumnsParams = Field(default_factory=ColumnsParams)
    rules: RulesParams = Field(default_factory=RulesParams)

    @model_validator(mode="after")
    def _source(self) -> DataParams:
        if self.source == "sql":
            if not self.sql.url:
                raise ValueError("source is sql: set sql.url")
            if bool(self.sql.table) == bool(self.sql.query):
                raise ValueError("source is sql: set exactly one of sql.table and sql.query")
        if self.rules.segment_by == "region" and not self.columns.region:
            raise ValueError("rules.segment_by is region but columns.region is empty: map the region "
                             "column, or segment by country (map columns.country) or none")
        if self.rules.segment_by == "country" and not self.columns.country:
            raise ValueError("rules.segment_by is country: map columns.country")
        if self.rules.cancelled_prefix and not self.columns.order_id:
            raise ValueError("rules.cancelled_prefix marks cancellations on the order id, but columns.order_id is "
                             "empty: map the order id column, or set rules.cancelled_prefix: \"\"")
        if self.rules.non_product_codes and not (self.columns.product or self.columns.product_line):
            raise ValueError("rules.non_product_codes needs columns.product (or columns.product_line)")
        return self


# ---------------------------------------------------------------- kpis
class KpisParams(_Strict):
    period: Literal["M", "Q"] = "M"


# ---------------------------------------------------------------- forecast
class ProphetParams(_Strict):
    growth: Literal["linear", "flat"] = "linear"
    seasonality_mode: Literal["additive", "multiplicative"] = "multiplicative"
    changepoint_prior_scale: float = Field(0.05, gt=0, le=10)
    country_holidays: str = ""

    @field_validator("country_holidays")
    @classmethod
    def _country(cls, v: str) -> str:
        if v:
            from holidays.utils import list_supported_countries

            if v not in list_supported_countries():
                raise ValueError("must be a country code the holidays package knows (ISO 3166, e.g. US, DE, GB, NZ), "
                                 "or empty")
        return v


class ForecastParams(_Strict):
    freq: Literal["D", "W", "M", "Q"] = "W"
    horizon: int = Field(13, ge=1, le=1000)
    folds: int = Field(3, ge=1, le=20)
    interval_width: float = Field(0.8, gt=0, lt=1)
    models: list[Literal["prophet", "seasonal_naive", "ets", "theta", "ces", "combination"]] = Field(
        default_factory=lambda: ["seasonal_naive", "theta", "ets", "ces", "prophet", "combination"], min_length=1)
    fill: Literal["zero", "interpolate", "none"] = "zero"
    closures: list[str] = Field(default_factory=list)
    seed: int = 0
    engine: Literal["dask", "local"] = "dask"
    n_workers: int = Field(0, ge=0, le=256)  # 0: one per CPU core
    scheduler_address: str = ""
    outliers: Literal["none", "clip"] = "none"
    outlier_threshold: float = Field(5.0, gt=0, le=100)
    prophet: ProphetParams = Field(default_factory=ProphetParams)

    @field_validator("models")
    @classmethod
    def _has_naive(cls, v: list[str]) -> list[str]:
        if "seasonal_naive" not in v:
            raise ValueError("models must include seasonal_naive: every forecast is judged against it")
        return v

    @field_validator("closures")
    @classmethod
    def _closures(cls, v: list[str]) -> list[str]:
        from .forecast.calendar import check

        try:
            return check(v)
        except ParamsError as exc:
            raise ValueError(f"{exc.problem}; {exc.fix}") from None


# ---------------------------------------------------------------- churn
class ChurnParams(_Strict):
    window_days: int = Field(90, ge=7, le=730)
    lookback_days: int = Field(365, ge=30, le=3650)
    n_train_cutoffs: int = Field(4, ge=1, le=36)
    cutoff_step_days: int = Field(30, ge=1, le=365)
    capacity: int = Field(30, ge=0, le=100_000)              # win-back calls per region
    second_purchase_capacity: int = Field(20, ge=0, le=100_000)  # second-purchase calls per region
    seed: int = 0
    cutoff: str = ""          # validation cutoff (YYYY-MM-DD); "" = the data's end minus window_days
    compare_days: int = Field(30, ge=1, le=365)  # newly red / cleared vs the red list this many days earlier

    @field_validator("cutoff")
    @classmethod
    def _iso_date(cls, v: str) -> str:
        if v:
            try:
                dt.date.fromisoformat(v)
            except ValueError:
                raise ValueError("must be a date written YYYY-MM-DD, or empty for the data's end minus "
                                 "window_days") from None
        return v


# ---------------------------------------------------------------- report
class Audience(_Strict):
    label: str = Field(min_length=1)
    regions: Literal["all"] | list[str] = "all"
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)


class ReportParams(_Strict):
    title: str = "Customer & Revenue Review"
    company: str = "Northwind Supplies"
    page_size: Literal["A4", "Letter"] = "A4"
    audiences: dict[str, Audience]

    @field_validator("audiences")
    @classmethod
    def _keys(cls, v: dict[str, Audience]) -> dict[str, Audience]:
        if not v:
            raise ValueError("define at least one audience")
        for key in v:
            if not key.replace("_", "").replace("-", "").isalnum() or not key.isascii():
                raise ValueError(f"audience name {key!r} must be ASCII letters, digits, '-' or '_'")
        return v


# ---------------------------------------------------------------- deliver
class DeliverParams(_Strict):
    send: bool = False
    from_addr: str = "reports@example.com"
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout_s: float = Field(30, gt=0, le=600)
    max_size_mb: float = Field(10, gt=0, le=1000)
    max_excluded_share: float = Field(0.5, ge=0, le=1)  # gate: hold when more rows were excluded by the rules


MODELS: dict[str, type[_Strict]] = {
    "data": DataParams, "kpis": KpisParams, "forecast": ForecastParams,
    "churn": ChurnParams, "report": ReportParams, "deliver": DeliverParams,
}


class Paths(_Strict):
    raw_dir: Path
    sample: Path
    transactions: Path
    rejected: Path
    data_quality: Path
    kpis: Path
    forecast: Path
    forecast_metrics: Path
    forecast_backtest: Path
    forecast_backtest_plot: Path
    churn_scores: Path
    churn_metrics: Path
    runs_dir: Path
    reports_dir: Path
    outbox_dir: Path

    def report(self, audience: str, ext: str) -> Path:
        return self.reports_dir / audience / f"report.{ext}"

    def eml(self, audience: str) -> Path:
        return self.outbox_dir / f"{audience}.eml"


# ---------------------------------------------------------------- loading
def project_root(start: str | os.PathLike | None = None) -> Path:
    """The folder holding dvc.yaml and params/, found from `start` (default: cwd) upwards."""
    env = os.environ.get("DATASTORY_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params" / "paths.yaml").is_file():
            return folder
    raise ParamsError("no datastory project found here or in any parent folder",
                      file=str(here), fix="run from the project folder (the one with dvc.yaml)")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError("parameter file is missing", file=str(path),
                          fix="restore it from git (git checkout -- params/)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ParamsError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                          row=(mark.line + 1) if mark else None,
                          fix="correct the YAML syntax at that line") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError("must be a mapping of key: value", file=str(path))
    return data


def _redact(key: str, value: Any) -> Any:
    """A value fit for a message: a URL's password hidden, a secret-looking key's value withheld."""
    if any(word in key.lower() for word in ("password", "secret", "token")) and key != "sql.password_env":
        return "***"
    if "url" in key.lower() and isinstance(value, str):
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(value).render_as_string(hide_password=True)
        except ArgumentError:
            return value
    if isinstance(value, dict):
        return {k: _redact(f"{key}.{k}", v) for k, v in value.items()}
    return value


def _explain(exc: ValidationError, rel: str, data: dict[str, Any]) -> ParamsError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(file)"
    value = _redact(key, err.get("input"))
    if err["type"] == "extra_forbidden":
        return ParamsError(f"unknown key '{key}'", file=rel,
                           fix="remove it, or check its spelling against the file's comments")
    if err["type"] == "missing":
        return ParamsError(f"required key '{key}' is missing", file=rel, fix=f"add '{key}:'")
    ctx = err.get("ctx") or {}
    allowed = ""
    if "expected" in ctx:
        allowed = f"; allowed: {ctx['expected']}"
    msg = err["msg"].removeprefix("Value error, ")
    fix = getattr(ctx.get("error"), "fix", None) or f"set '{key}' to an allowed value"   # a validator's own fix
    return ParamsError(f"key '{key}' has value {value!r}: {msg}{allowed}", file=rel, fix=fix)


def load(stage: str, root: str | os.PathLike | None = None,
         overrides: dict[str, Any] | None = None) -> Any:
    """Validated parameters of `stage` (see STAGES), from params/<stage>.yaml."""
    if stage not in MODELS:
        raise ParamsError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    base = project_root(root)
    rel = f"params/{stage}.yaml"
    data = _read_yaml(base / rel)
    if overrides:
        data = {**data, **overrides}
    try:
        return MODELS[stage].model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, rel, data) from None


def from_namespace(stage: str, namespace: dict[str, Any]) -> Any:
    """Validate a notebook's parameter variables (taken from its namespace) as `stage` params."""
    fields = MODELS[stage].model_fields
    data = {k: namespace[k] for k in fields if k in namespace}
    try:
        return MODELS[stage].model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, f"notebook parameters of {stage}", data) from None


def paths(root: str | os.PathLike | None = None) -> Paths:
    """Absolute artifact paths, declared once in params/paths.yaml."""
    base = project_root(root)
    data = _read_yaml(base / "params/paths.yaml").get("paths", {})
    try:
        rel = Paths.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, "params/paths.yaml", data) from None
    return Paths.model_validate({k: base / v for k, v in rel.model_dump().items()})


def pack_params(audience: str, root: str | os.PathLike | None = None,
                report: ReportParams | None = None) -> dict[str, Any]:
    """The parameters that shape one audience's pack: the analysis stages plus that audience's entry.

    Delivery settings and other audiences are left out, so changing them does not change this pack.
    """
    out = {s: load(s, root).model_dump(mode="json") for s in ("data", "kpis", "forecast", "churn")}
    rep = (report or load("report", root)).model_dump(mode="json")
    rep["audiences"] = {audience: rep["audiences"][audience]} if audience in rep["audiences"] else {}
    out["report"] = rep
    return out


def params_hash(params: dict[str, Any]) -> str:
    """Short sha256 of a parameter set: the footer's proof of which settings made a pack."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_dotenv(root: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> list[str]:
    """Put KEY=VALUE lines of the project's git-ignored `.env` into the environment.

    Secrets (SMTP and database credentials) live there or in the real environment, never in params.
    A variable already set in the environment wins. Returns the names it set, never the values.
    """
    env = os.environ if environ is None else environ
    path = project_root(root) / ".env"
    if not path.is_file():
        return []
    names = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            raise ParamsError("expected KEY=VALUE", file=".env", row=n,
                              fix="write one variable per line, e.g. DATASTORY_SMTP_PASSWORD=...")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if key not in env:
            env[key] = value
            names.append(key)
    return names
