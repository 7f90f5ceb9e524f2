"""Typed parameters, validated before any kernel starts, and the project's paths.

Each stage has one `params/<stage>.yaml`; its keys are that stage notebook's parameters.
A bad value gets one message naming the file, the key, the value and what is allowed.

Read from a file (`load`, `paths`, `from_namespace`), the values meet the file rules as well: every path
stays inside the project, email header text holds no line break and recipients are addresses. `checks`
adds the rules that span files (a file source of the declared kind, audiences' regions the data can have);
`datastory check-params` and every pipeline stage run them before anything is written.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import os
import posixpath
import typing
import unicodedata
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ParamsError

STAGES = ("data", "kpis", "forecast", "churn", "report", "deliver")
FROM_FILE = {"from_file": True}  # validation context of values read from a params file: the file rules apply

# Regions ingest gives rows, besides the source's own (see rules.segment_by)
UNKNOWN_REGION = "Unknown"   # a customer whose region is never given
OTHER_REGION = "Other"       # a country that rules.country_regions does not list
ONE_SEGMENT = "Company"      # the one region when rules.segment_by is none

# The file a file source reads, by extension (compressed CSV: the same plus .gz)
FILE_EXTENSIONS = {"csv": (".csv", ".tsv", ".tab", ".txt"), "excel": (".xlsx", ".xlsm"),
                   "parquet": (".parquet", ".pq", ".parq")}

# The longest horizon per frequency: 2 years of periods. One backtest fold of h periods trains on at least h/2
# periods before it, so a 2-year horizon needs 3 years of history to be checked even once, and the seasonal
# models repeat at most a yearly pattern.
MAX_HORIZON = {"D": 730, "W": 104, "M": 24, "Q": 8}

# Top-level folders that hold the project's sources, never a stage's output
_NOT_OUTPUTS = (".git", ".dvc", "params", "src", "notebooks", "tests")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Bad(ValueError):
    """A broken rule, with the key it concerns (dotted, relative to the model that raised it), its value and
    the fix; `_explain` turns it into the one message."""

    def __init__(self, problem: str, *, key: str | None = None, value: Any = None, fix: str | None = None):
        # a key's problem reads on from its name, unless it names the key itself
        super().__init__(f"{key} {problem}" if key and not problem.startswith(key) else problem)
        self.problem, self.key, self.value, self.fix = problem, key, value, fix


def _from_file(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("from_file"))


def _breaks(text: str) -> list[str]:
    """The line breaks and control characters in `text`, as shown in messages ('\\r', '\\n', ...)."""
    bad = [c for c in dict.fromkeys(text) if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
    return [repr(c)[1:-1] for c in bad]


def _header_text(value: str, info: ValidationInfo) -> str:
    """Text that goes into an email header (subject, sender, recipients): no CR, LF or other control character."""
    if _from_file(info):
        bad = _breaks(value)
        if bad:
            raise _Bad(f"holds {', '.join(bad)}: this text goes into the email's headers, where a line break "
                       "would start a header of its own", fix="write it on one line, without control characters")
    return value


def _mailbox(value: str, info: ValidationInfo) -> str:
    """One email address ("a@example.com" or "Name <a@example.com>"), on one line."""
    if not _from_file(info):
        return value
    from email.errors import HeaderParseError
    from email.headerregistry import Address
    from email.policy import default as default_policy

    _header_text(value, info)
    fix = "write one address per list item, like name@example.com or 'Name <name@example.com>'"
    try:
        header = default_policy.header_factory("To", value)
        groups = header.groups
        ok = (len(groups) == 1 and groups[0].display_name is None and len(groups[0].addresses) == 1
              and not header.defects)
        addr = Address(display_name=groups[0].addresses[0].display_name,
                       addr_spec=groups[0].addresses[0].addr_spec) if ok else None
    except (ValueError, TypeError, IndexError, HeaderParseError):
        addr = None
    if addr is None:
        raise _Bad("is not one email address", fix=fix)
    if not addr.username or not addr.domain or ("." not in addr.domain.strip(".") and addr.domain != "localhost"):
        raise _Bad("is not an email address: it needs a user and a domain, like name@example.com", fix=fix)
    if not addr.addr_spec.isascii():
        raise _Bad("has non-ASCII characters in the address itself",
                   fix="use the ASCII form of the address (the display name may be non-ASCII)")
    return value


HeaderText = Annotated[str, AfterValidator(_header_text)]
Mailbox = Annotated[str, AfterValidator(_mailbox)]


def inside_project(value: Any, output: bool = False, example: str = "data/raw/sales.csv") -> str:
    """`value` unchanged when it is a path relative to the project that stays inside it, else _Bad.

    Checked on the text, before any file is touched: no absolute path, no `~`, no `..` that leads out, not
    the project folder itself; `output`: not inside the folders that hold the project's sources either.
    A symbolic link inside the project is followed as it is (it is the project's own choice)."""
    fix = f"write a path relative to the project folder that stays inside it, e.g. {example}"
    if not isinstance(value, str | os.PathLike):
        raise _Bad("is not a path", fix=fix)
    text = os.fspath(value)
    if not text.strip():
        raise _Bad("is empty", fix=fix)
    bad = _breaks(text)
    if bad:
        raise _Bad(f"holds {', '.join(bad)}", fix=fix)
    posix = text.replace("\\", "/")
    if posix.startswith(("/", "~")) or PureWindowsPath(text).drive:
        raise _Bad("is not relative to the project: every path must stay inside the project folder", fix=fix)
    norm = posixpath.normpath(posix)
    if norm == ".." or norm.startswith("../"):
        raise _Bad("leads out of the project folder ('..')", fix=fix)
    if norm == ".":
        raise _Bad("is the project folder itself", fix=fix)
    if output and norm.split("/")[0] in _NOT_OUTPUTS:
        raise _Bad(f"is inside {norm.split('/')[0]}/, which holds the project's sources, not outputs",
                   fix="write outputs under data/, metrics/ or reports/")
    return text


def file_kind(source: str, path: str) -> tuple[str, str] | None:
    """(problem, fix) when `path`'s extension is not the kind `source` reads; None when it is (or the source
    reads no file). The file is only opened when its name says it is of the declared kind."""
    if source not in FILE_EXTENSIONS:
        return None
    name = PureWindowsPath(path).name.lower()
    stem, gz = (name[:-3], True) if name.endswith(".gz") else (name, False)
    suffix = posixpath.splitext(stem)[1]
    if suffix in FILE_EXTENSIONS[source] and (not gz or source == "csv"):
        return None
    shown = suffix + (".gz" if gz else "") or "(none)"
    other = next((s for s, exts in FILE_EXTENSIONS.items() if suffix in exts and (not gz or s == "csv")), None)
    allowed = ", ".join(FILE_EXTENSIONS[source]) + (" (or the same with .gz)" if source == "csv" else "")
    problem = f"source is {source} but the file's extension is {shown!r}; a {source} source reads {allowed} files"
    if other:
        return problem, f"set source: {other} in params/data.yaml, or point file.path at the {source} export"
    if source == "excel" and suffix in (".xls", ".ods"):
        return problem, "open it in Excel and save it as .xlsx (File > Save As > Excel Workbook)"
    return problem, (f"point file.path at the {source} export, or rename the file to {FILE_EXTENSIONS[source][0]} "
                     "if that is what it holds")


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
            raise _Bad(f"must be at least 180 days after start_date ({self.start_date})", key="end_date",
                       value=str(self.end_date), fix="set sample.end_date later, or sample.start_date earlier")
        return self


class FileParams(_Strict):
    """A CSV (optionally .gz), Excel or Parquet export, by path relative to the project."""
    path: str = "data/raw/transactions.csv"
    delimiter: str = Field(",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ",", ".", " ", "'"] = ""
    sheet: str = ""  # Excel: the sheet's name; empty = the first sheet

    @field_validator("path")
    @classmethod
    def _inside(cls, v: str) -> str:
        return inside_project(v)

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
            raise _Bad("must differ from the decimal mark", key="thousands", value=self.thousands,
                       fix=f"set file.thousands to another mark than file.decimal ({self.decimal!r}), or \"\"")
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
                raise _Bad("is required", key=key, value="", fix="name the source column that holds it")
        if not self.amount and not (self.quantity and self.unit_price):
            raise _Bad("is empty, and columns.quantity and columns.unit_price are not both mapped", key="amount",
                       value="", fix="map either columns.amount, or both columns.quantity and columns.unit_price")
        used = [v for v in self.model_dump().values() if v]
        dup = sorted({v for v in used if used.count(v) > 1})
        if dup:
            fields = [k for k, v in self.model_dump().items() if v == dup[0]]
            raise _Bad(f"names a source column mapped to more than one field (also to "
                       f"{', '.join('columns.' + f for f in fields[1:])})", key=fields[0], value=dup[0],
                       fix="map each source column to one field only")
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
    currency: HeaderText = Field("EUR", min_length=1, max_length=8)
    on_bad_rows: Literal["fail", "quarantine"] = "fail"
    engine: Literal["auto", "memory", "stream"] = "auto"   # ingest: in memory, or a CSV streamed in batches
    sample: SampleParams = Field(default_factory=SampleParams)
    file: FileParams = Field(default_factory=FileParams)
    sql: SqlParams = Field(default_factory=SqlParams)
    columns: ColumnsParams = Field(default_factory=ColumnsParams)
    rules: RulesParams = Field(default_factory=RulesParams)

    @model_validator(mode="after")
    def _source(self) -> DataParams:
        if self.source == "sql":
            if not self.sql.url:
                raise _Bad("is empty, but source is sql", key="sql.url", value="",
                           fix="set sql.url to the database's SQLAlchemy URL, e.g. sqlite:///data/raw/shop.db")
            if bool(self.sql.table) == bool(self.sql.query):
                raise _Bad("sql.table and sql.query are both set, or both empty: source sql needs exactly one",
                           key="sql.table", value=self.sql.table,
                           fix="set sql.table to a table name, or sql.query to a SELECT")
        if self.rules.segment_by == "region" and not self.columns.region:
            raise _Bad("is region, but columns.region is empty", key="rules.segment_by", value="region",
                       fix="map the region column, or segment by country (map columns.country) or none")
        if self.rules.segment_by == "country" and not self.columns.country:
            raise _Bad("is country, but columns.country is empty", key="rules.segment_by", value="country",
                       fix="map columns.country, or segment by region or none")
        if self.rules.cancelled_prefix and not self.columns.order_id:
            raise _Bad("marks cancellations on the order id, but columns.order_id is empty",
                       key="rules.cancelled_prefix", value=self.rules.cancelled_prefix,
                       fix="map the order id column, or set rules.cancelled_prefix: \"\"")
        if self.rules.non_product_codes and not (self.columns.product or self.columns.product_line):
            raise _Bad("needs columns.product (or columns.product_line)", key="rules.non_product_codes",
                       value=self.rules.non_product_codes, fix="map the product column, or set rules.non_product_codes: []")
        return self


# ---------------------------------------------------------------- kpis
class KpisParams(_Strict):
    period: Literal["M", "Q"] = "M"
    movers: int = Field(5, ge=1, le=50)  # customers and product lines listed per segment, each way


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
    horizon: int = Field(13, ge=1)     # at most MAX_HORIZON[freq]
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
    reconcile: Literal["auto", "none", "bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink"] = "auto"
    prophet: ProphetParams = Field(default_factory=ProphetParams)

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: int, info: ValidationInfo) -> int:
        freq = info.data.get("freq")
        if freq in MAX_HORIZON and v > MAX_HORIZON[freq]:
            most, fit = MAX_HORIZON[freq], max(4, v // 2)
            years = (v + fit) * {"D": 1, "W": 7, "M": 30.44, "Q": 91.31}[freq] / 365.25
            limits = ", ".join(f"{f} {n}" for f, n in MAX_HORIZON.items())
            raise _Bad(f"with freq {freq} the horizon is at most {most} periods, 2 years ahead (the limits: {limits}): "
                       f"one backtest of {v} periods needs {v + fit:,} periods of data ({fit:,} to fit on, {v:,} to "
                       f"check), about {years:.0f} years, before its accuracy can be checked even once, and the "
                       "seasonal models repeat at most a yearly pattern",
                       fix=f"set horizon to at most {most}, or use a coarser freq for a longer outlook")
        return v

    @field_validator("models")
    @classmethod
    def _has_naive(cls, v: list[str]) -> list[str]:
        if "seasonal_naive" not in v:
            raise ValueError("models must include seasonal_naive: every forecast is judged against it")
        return v

    @field_validator("closures")
    @classmethod
    def _closures(cls, v: list[str]) -> list[str]:
        from .closures import check

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
    max_train_customers: int = Field(50_000, ge=0, le=1_000_000_000)  # the model learns from a seeded sample past it

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
    label: HeaderText = Field(min_length=1)
    regions: Literal["all"] | list[str] = "all"
    to: list[Mailbox] = Field(default_factory=list)
    cc: list[Mailbox] = Field(default_factory=list)
    bcc: list[Mailbox] = Field(default_factory=list)


class ReportParams(_Strict):
    title: HeaderText = "Customer & Revenue Review"
    company: HeaderText = "Northwind Supplies"
    page_size: Literal["A4", "Letter"] = "A4"
    audiences: dict[str, Audience]

    def audience(self, key: str) -> Audience:
        """Audience `key`, or a clear refusal that names the ones defined."""
        if key not in self.audiences:
            raise ParamsError(f"unknown audience {key!r}; defined: {', '.join(self.audiences)}",
                              file="params/report.yaml", fix="add it under 'audiences:' or fix the name")
        return self.audiences[key]

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
    from_addr: Mailbox = "reports@example.com"
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
    quality_headline: Path
    kpis: Path
    bridge: Path
    movers: Path
    active: Path
    forecast: Path
    forecast_metrics: Path
    forecast_series: Path
    forecast_headline: Path
    forecast_backtest: Path
    forecast_backtest_plot: Path
    churn_scores: Path
    churn_metrics: Path
    churn_headline: Path
    runs_dir: Path
    reports_dir: Path
    outbox_dir: Path

    @field_validator("*", mode="before")
    @classmethod
    def _inside(cls, v: Any, info: ValidationInfo) -> Any:
        if not _from_file(info):
            return v
        example = {"raw_dir": "data/raw", "outbox_dir": "reports/outbox", "runs_dir": "reports/runs",
                   "reports_dir": "reports"}.get(info.field_name or "", "data/processed/kpis.parquet")
        return inside_project(v, output=info.field_name != "raw_dir", example=example)

    def report(self, audience: str, ext: str) -> Path:
        return self.reports_dir / audience / f"report.{ext}"

    def dashboard(self, audience: str) -> Path:
        return self.reports_dir / audience / "dashboard.html"

    def email_chart(self, audience: str) -> Path:
        """The revenue chart the audience's email shows inline (PNG; empty: none), from the report stage."""
        return self.reports_dir / audience / "revenue.png"

    def email_facts(self, audience: str) -> Path:
        """The email's words from the audience's pack (JSON, present.email.facts), from the report stage."""
        return self.reports_dir / audience / "email.json"

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


def refusal(file: str, key: str, value: Any, problem: str, fix: str | None = None) -> ParamsError:
    """The one message for a bad value: the file, the key, the value (secrets hidden), what is wrong, the fix."""
    shown = _redact(key, value)
    head = f"key '{key}'" if isinstance(shown, dict) else f"key '{key}' has value {shown!r}"
    return ParamsError(f"{head}: {problem}", file=file, fix=fix or f"set '{key}' to an allowed value")


def _field_at(model: Any, loc: list[str]) -> set[str]:
    """The keys allowed where `loc` points (its last part is the unknown key) in `model`'s tree of models."""
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", {})
        if part in fields:
            model = fields[part].annotation
        else:   # a dict's value: a key of ours, not a field
            args = [a for a in typing.get_args(model) if hasattr(a, "model_fields")]
            model = args[-1] if args else None
        while model is not None and not hasattr(model, "model_fields") and typing.get_args(model):
            inner = [a for a in typing.get_args(model) if hasattr(a, "model_fields") or typing.get_args(a)]
            model = inner[-1] if inner else None
    return set(getattr(model, "model_fields", {}))


def did_you_mean(key: str, allowed: set[str]) -> str:
    """' (did you mean horizon?)' for the nearest allowed key, else ''."""
    near = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _explain(exc: ValidationError, rel: str, data: dict[str, Any], prefix: str = "",
             model: Any = None) -> ParamsError:
    err = exc.errors()[0]
    ctx = err.get("ctx") or {}
    bad = ctx.get("error")
    loc = [str(p) for p in err["loc"]]
    if isinstance(bad, _Bad) and bad.key:   # a rule across keys, raised by the model that holds them
        loc += bad.key.split(".")
    key = ".".join(([prefix] if prefix else []) + loc)
    if err["type"] == "extra_forbidden":
        hint = did_you_mean(loc[-1], _field_at(model, loc)) if model is not None and loc else ""
        return ParamsError(f"unknown key '{key}'{hint}", file=rel,
                           fix="remove it, or check its spelling against the file's comments")
    if err["type"] == "missing":
        return ParamsError(f"required key '{key}' is missing", file=rel, fix=f"add '{key}:'")
    if isinstance(bad, _Bad):
        value = bad.value if bad.key else err.get("input")
        return refusal(rel, key or "(file)", value, bad.problem, bad.fix)
    allowed = f"; allowed: {ctx['expected']}" if "expected" in ctx else ""
    msg = err["msg"].removeprefix("Value error, ")
    fix = getattr(bad, "fix", None)   # a validator's own fix
    return refusal(rel, key or "(file)", err.get("input"), f"{msg}{allowed}", fix)


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
        return MODELS[stage].model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        raise _explain(exc, rel, data, model=MODELS[stage]) from None


def from_namespace(stage: str, namespace: dict[str, Any]) -> Any:
    """Validate a notebook's parameter variables (taken from its namespace) as `stage` params."""
    fields = MODELS[stage].model_fields
    data = {k: namespace[k] for k in fields if k in namespace}
    try:
        return MODELS[stage].model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        raise _explain(exc, f"notebook parameters of {stage}", data, model=MODELS[stage]) from None


def paths(root: str | os.PathLike | None = None) -> Paths:
    """Absolute artifact paths, declared once in params/paths.yaml; each one relative and inside the project."""
    base = project_root(root)
    rel_file = "params/paths.yaml"
    top = _read_yaml(base / rel_file)
    for key in top:
        if key != "paths":
            raise ParamsError(f"unknown key '{key}'", file=rel_file, fix="declare every path under 'paths:'")
    data = top.get("paths", {})
    if not isinstance(data, dict):
        raise refusal(rel_file, "paths", data, "must be a mapping of name: path", fix="restore it from git")
    try:
        rel = Paths.model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        raise _explain(exc, rel_file, data, prefix="paths", model=Paths) from None
    return Paths.model_validate({k: base / v for k, v in rel.model_dump().items()})


def where(key: str, root: str | os.PathLike | None = None) -> str:
    """Where artifact `key` lives, for a message: its path relative to the project as params/paths.yaml
    declares it; outside a readable project, the declaration itself ("params/paths.yaml: churn_metrics")."""
    if key not in Paths.model_fields:
        raise KeyError(key)
    try:
        base = project_root(root)
        return getattr(paths(base), key).relative_to(base).as_posix()
    except (ParamsError, ValueError):
        return f"params/paths.yaml: {key}"


# ---------------------------------------------------------------- rules across files
def checks(root: str | os.PathLike | None = None, data: bool = True) -> Iterator[str]:
    """Validate every params file, params/paths.yaml and the rules across files; yield a line per check.

    Raises the first ParamsError. `data`: also check audiences' regions against the ingested transactions
    when the data's regions are only known from the data (False for the stages that make that data).
    Reads the transactions' region column at most; writes nothing."""
    base = project_root(root)
    loaded = {}
    for stage in STAGES:
        loaded[stage] = load(stage, base)
        yield f"params/{stage}.yaml: ok"
    p = paths(base)
    yield "params/paths.yaml: ok (every path relative and inside the project)"
    cfg: DataParams = loaded["data"]
    kind = file_kind(cfg.source, cfg.file.path)
    if kind:
        raise refusal("params/data.yaml", "file.path", cfg.file.path, kind[0], kind[1])
    yield from _check_audiences(loaded["report"], cfg, p, base, data)


def settings_lines(params: dict[str, Any]) -> list[str]:
    """'params/forecast.yaml  horizon = 13' per key (nested keys dotted), defaults included, secrets hidden."""
    out = []
    for stage, model in params.items():
        def walk(prefix: str, value: Any, stage: str = stage) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                shown = _redact(prefix, value)
                out.append(f"params/{stage}.yaml  {prefix} = {json.dumps(shown, ensure_ascii=False)}")
        walk("", model.model_dump(mode="json"))
    return out


def settings(root: str | os.PathLike | None = None) -> list[str]:
    """The effective settings of every params file: what each stage will run with, defaults filled in."""
    base = project_root(root)
    return settings_lines({stage: load(stage, base) for stage in STAGES})


def possible_regions(cfg: DataParams) -> tuple[set[str] | None, str]:
    """The regions the ingested data can hold as far as params/data.yaml says, and how it says so;
    (None, why) when only the data can tell."""
    r = cfg.rules
    if r.segment_by == "none":
        return {ONE_SEGMENT}, f"with rules.segment_by: none in params/data.yaml the one region is {ONE_SEGMENT}"
    if r.segment_by == "country" and r.country_regions:
        values = sorted(set(r.country_regions.values()))
        return set(values) | {OTHER_REGION, UNKNOWN_REGION}, (
            f"rules.country_regions in params/data.yaml maps countries to {', '.join(values)}, and a country it "
            f"does not list goes to {OTHER_REGION}")
    if r.segment_by == "region" and cfg.source == "sample":
        return set(cfg.sample.regions) | {UNKNOWN_REGION}, (
            f"the sample company's regions (sample.regions in params/data.yaml) are {', '.join(cfg.sample.regions)}")
    if r.segment_by == "country":
        return None, "with rules.segment_by: country and no rules.country_regions each country is a region"
    return None, f"the regions are the values of the source's {cfg.columns.region!r} column"


def _stale(base: Path) -> bool:
    """True when dvc.lock shows that the ingested data was made with other params/data.yaml values."""
    lock = base / "dvc.lock"
    if not lock.is_file():
        return False
    try:
        recorded = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {})["stages"]["ingest"]["params"][
            "params/data.yaml"]
    except (yaml.YAMLError, OSError, KeyError, TypeError):
        return False
    return recorded != _read_yaml(base / "params/data.yaml")


def ingested_regions(p: Paths, base: Path) -> tuple[set[str] | None, str]:
    """The regions of the ingested transactions, and where they come from; (None, why) when there are none
    (not ingested yet, unreadable, or made with other params/data.yaml values)."""
    rel = p.transactions.relative_to(base) if p.transactions.is_relative_to(base) else p.transactions
    if not p.transactions.is_file():
        return None, f"no data is ingested yet ({rel})"
    if _stale(base):
        return None, f"the ingested data ({rel}) was made with other params/data.yaml values"
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        column = pq.read_table(p.transactions, columns=["region"], read_dictionary=["region"]).column("region")
    except (pa.ArrowException, OSError, KeyError):
        return None, f"the ingested data ({rel}) cannot be read"
    values = set()
    for chunk in column.chunks:
        values.update(v for v in chunk.dictionary.to_pylist() if v is not None)
    return values, f"the ingested data ({rel}) has the regions {', '.join(sorted(values))}"


def _check_audiences(report: ReportParams, cfg: DataParams, p: Paths, base: Path, data: bool) -> Iterator[str]:
    """Every audience's regions are regions the data can have (see possible_regions); with the ingested data at
    hand, an audience sees all regions or exactly one (as the report stage requires)."""
    regional = {k: a for k, a in report.audiences.items() if a.regions != "all"}
    if not regional:
        yield "audiences: ok (every audience sees all regions)"
        return
    known, how = possible_regions(cfg)
    exact = False
    if known is None:
        why = how
        if data:
            known, how = ingested_regions(p, base)
            exact = known is not None
        if known is None:
            yield (f"audiences: regions cannot be checked yet: {why}, and {how if data else 'the data is not read'}; "
                   "every stage after ingest checks them before it writes")
            return
    fix = "use region names exactly as they are written there, or regions: all"
    for key, aud in regional.items():
        unknown = [r for r in aud.regions if r not in known]
        if unknown:
            raise refusal("params/report.yaml", f"audiences.{key}.regions", aud.regions,
                          f"{unknown[0]!r} is not a region the data can have: {how}", fix)
        regions = set(aud.regions)
        if exact and len(regions) > 1 and not regions >= known:
            raise refusal("params/report.yaml", f"audiences.{key}.regions", aud.regions,
                          "an audience sees either all regions or exactly one",
                          "use `regions: all`, or one audience per region")
    yield f"audiences: ok (regions checked: {how})"


def pack_params(audience: str, root: str | os.PathLike | None = None,
                report: ReportParams | None = None) -> dict[str, Any]:
    """The parameters that shape one audience's pack: the analysis stages plus that audience's entry.

    Delivery settings and other audiences are left out, so changing them does not change this pack; so is the
    data's `engine`, which changes how the transactions are read, never a number (the pipeline writes the same
    bytes either way), so a pack shows the same params hash for the same figures.
    """
    out = {s: load(s, root).model_dump(mode="json") for s in ("data", "kpis", "forecast", "churn")}
    out["data"].pop("engine", None)
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
