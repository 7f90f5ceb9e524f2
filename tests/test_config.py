from pathlib import Path

import pytest
import yaml

from datastory import config
from datastory.errors import ParamsError


def _edit(project: Path, stage: str, **changes) -> None:
    f = project / "params" / f"{stage}.yaml"
    data = yaml.safe_load(f.read_text())
    data.update(changes)
    f.write_text(yaml.safe_dump(data))


def test_every_shipped_params_file_validates(project):
    for stage in config.STAGES:
        assert isinstance(config.load(stage, project), config.MODELS[stage])


def test_bad_value_names_file_key_value_and_allowed(project):
    _edit(project, "forecast", freq="hourly")
    with pytest.raises(ParamsError) as exc:
        config.load("forecast", project)
    msg = str(exc.value)
    assert "params/forecast.yaml" in msg and "'freq'" in msg and "hourly" in msg
    assert "'D'" in msg and "'W'" in msg and "'M'" in msg


def test_unknown_key_is_refused(project):
    _edit(project, "churn", windw_days=30)
    with pytest.raises(ParamsError, match="unknown key 'windw_days'"):
        config.load("churn", project)


def test_out_of_range_value_is_refused(project):
    _edit(project, "forecast", horizon=0)
    with pytest.raises(ParamsError, match="'horizon' has value 0"):
        config.load("forecast", project)


def test_seasonal_naive_is_mandatory(project):
    _edit(project, "forecast", models=["prophet"])
    with pytest.raises(ParamsError, match="seasonal_naive"):
        config.load("forecast", project)


def test_broken_yaml_names_the_line(project):
    (project / "params" / "kpis.yaml").write_text("period: M\n  bad: [\n")
    with pytest.raises(ParamsError) as exc:
        config.load("kpis", project)
    assert "params/kpis.yaml" in str(exc.value) and "row" in str(exc.value)


def test_missing_params_file(project):
    (project / "params" / "deliver.yaml").unlink()
    with pytest.raises(ParamsError, match="missing"):
        config.load("deliver", project)


def test_unknown_stage():
    with pytest.raises(ParamsError, match="unknown stage"):
        config.load("nope")


def test_audience_names_must_be_safe(project):
    f = project / "params" / "report.yaml"
    data = yaml.safe_load(f.read_text())
    data["audiences"]["../etc"] = {"label": "x", "regions": "all"}
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match="audience name"):
        config.load("report", project)


def test_paths_are_absolute_under_the_root(project):
    p = config.paths(project)
    assert p.kpis == project / "data/processed/kpis.parquet"
    assert p.report("north", "pdf") == project / "reports/north/report.pdf"
    assert p.eml("north") == project / "reports/outbox/north.eml"


def test_where_names_an_artifact_as_paths_yaml_declares_it(project, tmp_path_factory, monkeypatch):
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    assert config.where("churn_metrics", project) == "data/processed/churn_metrics.json"
    f = project / "params" / "paths.yaml"
    f.write_text(f.read_text().replace("data/processed/churn_metrics.json", "data/out/churn.json"))
    assert config.where("churn_metrics", project) == "data/out/churn.json"   # moved: messages follow
    nowhere = tmp_path_factory.mktemp("not_a_project")
    assert config.where("churn_metrics", nowhere) == "params/paths.yaml: churn_metrics"
    with pytest.raises(KeyError):
        config.where("no_such_artifact", project)


def test_project_root_found_from_a_subfolder(project):
    sub = project / "notebooks"
    sub.mkdir()
    assert config.project_root(sub) == project


def test_project_root_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("DATASTORY_ROOT", raising=False)
    with pytest.raises(ParamsError, match="no datastory project"):
        config.project_root(tmp_path)


def test_from_namespace_takes_only_the_stage_keys():
    ns = {"period": "Q", "unrelated": 1, "__name__": "x"}
    assert config.from_namespace("kpis", ns).period == "Q"
    with pytest.raises(ParamsError, match="period"):
        config.from_namespace("kpis", {"period": "Y"})


def test_pack_params_hold_only_that_audience_and_no_delivery(project):
    pp = config.pack_params("north", project)
    assert set(pp) == {"data", "kpis", "forecast", "churn", "report"}
    assert list(pp["report"]["audiences"]) == ["north"]
    assert "engine" not in pp["data"] and "currency" in pp["data"]


def test_params_hash_does_not_change_with_how_the_data_is_read(project):
    before = config.params_hash(config.pack_params("north", project))
    _edit(project, "data", engine="stream")
    assert config.load("data", project).engine == "stream"
    assert config.params_hash(config.pack_params("north", project)) == before
    _edit(project, "data", currency="USD")
    assert config.params_hash(config.pack_params("north", project)) != before


def test_params_hash_changes_with_a_value_and_not_with_other_audiences(project):
    before = config.params_hash(config.pack_params("north", project))
    f = project / "params" / "report.yaml"
    data = yaml.safe_load(f.read_text())
    data["audiences"]["south"]["to"] = ["someone.else@example.com"]
    f.write_text(yaml.safe_dump(data))
    assert config.params_hash(config.pack_params("north", project)) == before
    _edit(project, "forecast", horizon=26)
    assert config.params_hash(config.pack_params("north", project)) != before


def test_dotenv_sets_missing_variables_and_never_overrides(project):
    (project / ".env").write_text('# secrets\nDATASTORY_SMTP_USER=bot\nexport DATASTORY_SMTP_PASSWORD="s3 cr=t"\n'
                                  "\nALREADY=from-file\n")
    env = {"ALREADY": "from-env"}
    assert config.load_dotenv(project, env) == ["DATASTORY_SMTP_USER", "DATASTORY_SMTP_PASSWORD"]
    assert env == {"ALREADY": "from-env", "DATASTORY_SMTP_USER": "bot", "DATASTORY_SMTP_PASSWORD": "s3 cr=t"}


def test_dotenv_absent_is_fine_and_a_bad_line_is_named(project):
    assert config.load_dotenv(project, {}) == []
    (project / ".env").write_text("GOOD=1\nthis is not an assignment\n")
    with pytest.raises(ParamsError, match=r"\.env, row 2"):
        config.load_dotenv(project, {})


def test_a_password_in_the_sql_url_is_refused_and_never_echoed(project):
    secret = "Sup3r-S3cret"
    with pytest.raises(ParamsError) as err:
        config.load("data", project, {"source": "sql",
                                      "sql": {"url": f"postgresql://bob:{secret}@db.example.com/x", "table": "t"}})
    msg = str(err.value)
    assert "holds a password" in msg and "sql.url" in msg and secret not in msg and "bob:***@" in msg


def test_a_sql_query_that_is_not_one_read_only_select_is_refused_with_its_own_fix(project):
    url = "postgresql+psycopg://admin@127.0.0.1:5433/sales?options=-csearch_path%3Dpublic"
    query = "DROP TABLE victim; COMMIT; SELECT * FROM transactions"
    with pytest.raises(ParamsError) as err:
        config.load("data", project, {"source": "sql", "sql": {"url": url, "query": query}})
    e = err.value
    assert e.file == "params/data.yaml"
    assert e.problem == (f"key 'sql.query' has value {query!r}: holds 3 statements (DROP, COMMIT, SELECT); "
                         "exactly one SELECT is allowed")
    assert "one SELECT" in e.fix and "sql.table" in e.fix and "allowed value" not in e.fix
    ok = config.load("data", project, {"source": "sql", "sql": {"url": url, "query": "SELECT * FROM transactions"}})
    assert ok.sql.query == "SELECT * FROM transactions"


def test_a_validator_without_its_own_fix_keeps_the_generic_one(project):
    with pytest.raises(ParamsError) as err:
        config.load("data", project, {"file": {"encoding": "no-such-codec"}})
    assert err.value.fix == "set 'file.encoding' to an allowed value"


@pytest.mark.parametrize("bad", [1.5, -0.1, "half"])
def test_max_excluded_share_is_a_share(project, bad):
    _edit(project, "deliver", max_excluded_share=bad)
    with pytest.raises(ParamsError, match="'max_excluded_share' has value") as exc:
        config.load("deliver", project)
    assert "params/deliver.yaml" in str(exc.value)


def test_max_excluded_share_default_is_half(project):
    assert config.load("deliver", project).max_excluded_share == 0.5
    data = yaml.safe_load((project / "params" / "deliver.yaml").read_text())
    data.pop("max_excluded_share")
    (project / "params" / "deliver.yaml").write_text(yaml.safe_dump(data))
    assert config.load("deliver", project).max_excluded_share == 0.5


# ---------------------------------------------------------------- file rules: paths, headers, horizon
def _edit_paths(project: Path, **changes) -> None:
    f = project / "params" / "paths.yaml"
    data = yaml.safe_load(f.read_text())
    data["paths"].update(changes)
    f.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("outbox_dir", "../escape_outbox", "leads out of the project"),
    ("kpis", "/tmp/kpis.parquet", "not relative to the project"),
    ("kpis", "~/kpis.parquet", "not relative to the project"),
    ("kpis", "C:\\data\\kpis.parquet", "not relative to the project"),
    ("reports_dir", "reports/../..", "leads out of the project"),
    ("reports_dir", ".", "the project folder itself"),
    ("reports_dir", "", "is empty"),
    ("runs_dir", "src/datastory", "holds the project's sources"),
    ("transactions", "params/data.yaml", "holds the project's sources"),
    ("rejected", "data/interim/re\njected.parquet", "\\n"),
])
def test_paths_yaml_keeps_every_path_inside_the_project(project, key, value, problem):
    _edit_paths(project, **{key: value})
    with pytest.raises(ParamsError) as err:
        config.paths(project)
    msg = str(err.value)
    assert msg.startswith("params/paths.yaml: ") and f"key 'paths.{key}' has value {value!r}" in msg
    assert problem in msg and "fix:" in msg


def test_paths_yaml_inside_paths_are_fine_and_unknown_top_keys_are_refused(project):
    _edit_paths(project, outbox_dir="reports/../reports/mail")
    assert config.paths(project).outbox_dir == project / "reports/../reports/mail"
    f = project / "params" / "paths.yaml"
    f.write_text(f.read_text() + "extra: 1\n")
    with pytest.raises(ParamsError, match="unknown key 'extra'"):
        config.paths(project)


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "data/../../x.csv", "~/x.csv"])
def test_the_data_file_stays_inside_the_project(project, path):
    _edit(project, "data", source="csv", file={"path": path})
    with pytest.raises(ParamsError) as err:
        config.load("data", project)
    assert f"key 'file.path' has value {path!r}" in str(err.value) and "fix:" in str(err.value)


@pytest.mark.parametrize(("stage", "change", "key"), [
    ("data", {"currency": "EU\r\nR"}, "currency"),
    ("report", {"title": "Review\nBcc: x@evil.example"}, "title"),
    ("report", {"company": "Northwind\r"}, "company"),
    ("deliver", {"from_addr": "reports@example.com\r\nBcc: x@evil.example"}, "from_addr"),
    ("deliver", {"from_addr": "Reports\u2028<reports@example.com>"}, "from_addr"),
])
def test_email_header_text_holds_no_line_break(project, stage, change, key):
    _edit(project, stage, **change)
    with pytest.raises(ParamsError) as err:
        config.load(stage, project)
    msg = str(err.value)
    assert f"key '{key}' has value {change[key]!r}" in msg and "email's headers" in msg and "fix:" in msg


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("label", "North\r\nBcc: x@evil.example", "email's headers"),
    ("to", ["north@example.com\nBcc: x@evil.example"], "email's headers"),
    ("to", ["not-an-address"], "not one email address"),
    ("cc", ["a@b.c, d@e.f"], "not one email address"),
    ("bcc", ["north@"], "not one email address"),
    ("to", ["north@localdomain"], "needs a user and a domain"),
    ("to", ["nörth@example.com"], "not one email address"),
])
def test_audience_headers_and_recipients(project, field, value, problem):
    f = project / "params" / "report.yaml"
    data = yaml.safe_load(f.read_text())
    data["audiences"]["north"][field] = value
    f.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError) as err:
        config.load("report", project)
    msg = str(err.value)
    key = f"audiences.north.{field}" + (".0" if isinstance(value, list) else "")
    shown = value[0] if isinstance(value, list) else value
    assert f"key '{key}' has value {shown!r}" in msg and problem in msg and "fix:" in msg


def test_good_addresses_pass_and_objects_built_in_code_are_not_file_checked(project):
    f = project / "params" / "report.yaml"
    data = yaml.safe_load(f.read_text())
    data["audiences"]["north"]["to"] = ["Nörth Manager <north@example.com>", "ops@localhost"]
    f.write_text(yaml.safe_dump(data))
    assert config.load("report", project).audiences["north"].to[0].startswith("Nörth")
    # the delivery stage guards what it is given (its own refusals are tested there)
    assert config.Audience(label="x\ny", to=["not-an-address"]).label == "x\ny"


@pytest.mark.parametrize(("freq", "most"), [("D", 730), ("W", 104), ("M", 24), ("Q", 8)])
def test_horizon_is_at_most_two_years_of_periods(project, freq, most):
    _edit(project, "forecast", freq=freq, horizon=most)
    assert config.load("forecast", project).horizon == most
    _edit(project, "forecast", freq=freq, horizon=most + 1)
    with pytest.raises(ParamsError) as err:
        config.load("forecast", project)
    msg = str(err.value)
    assert f"key 'horizon' has value {most + 1}" in msg and f"with freq {freq}" in msg and "2 years" in msg
    assert "backtest" in msg and f"at most {most}" in err.value.fix


def test_a_rule_across_keys_names_its_key_not_the_whole_file(project):
    _edit(project, "data", columns={**yaml.safe_load((project / "params/data.yaml").read_text())["columns"],
                                    "region": ""})
    with pytest.raises(ParamsError) as err:
        config.load("data", project)
    msg = str(err.value)
    assert "key 'rules.segment_by' has value 'region'" in msg and "columns.region" in msg
    assert "'sample'" not in msg    # no dump of the whole file


# ---------------------------------------------------------------- rules across files
def _audience_regions(project: Path, **regions) -> None:
    f = project / "params" / "report.yaml"
    data = yaml.safe_load(f.read_text())
    for key, value in regions.items():
        data["audiences"][key]["regions"] = value
    f.write_text(yaml.safe_dump(data))


def _checks(project: Path, data: bool = True) -> list[str]:
    return list(config.checks(project, data=data))


def test_checks_cover_every_file_and_the_audiences(project):
    lines = _checks(project)
    assert [f"params/{s}.yaml: ok" for s in config.STAGES] == lines[:6]
    assert lines[6].startswith("params/paths.yaml: ok")
    assert lines[7].startswith("audiences: ok") and "sample.regions" in lines[7]


def test_regions_of_the_sample_company(project):
    _audience_regions(project, north=["Nrth"])
    with pytest.raises(ParamsError) as err:
        _checks(project, data=False)
    msg = str(err.value)
    assert msg.startswith("params/report.yaml: key 'audiences.north.regions' has value ['Nrth']")
    assert "'Nrth' is not a region" in msg and "North, South, East, West" in msg and "fix:" in msg


def test_regions_of_a_country_mapping(project):
    _edit(project, "data", source="csv", columns={**yaml.safe_load((project / "params/data.yaml").read_text())[
        "columns"], "region": "", "country": "Country"},
        rules={"segment_by": "country", "country_regions": {"Norway": "North", "Spain": "South"}})
    _audience_regions(project, east="all", west="all", south=["Other"])
    assert _checks(project)[-1].startswith("audiences: ok")
    _audience_regions(project, south=["Iberia"])
    with pytest.raises(ParamsError, match=r"'Iberia' is not a region .* North, South, and a country it does not "
                                          r"list goes to Other"):
        _checks(project)


def test_one_segment_has_no_regional_audience(project):
    _edit(project, "data", rules={"segment_by": "none"})
    with pytest.raises(ParamsError, match="segment_by: none .* Company"):
        _checks(project, data=False)


def _own_regions(project: Path) -> None:
    _edit(project, "data", source="csv", file={"path": "data/raw/tx.csv"})


def test_regions_of_a_source_column_wait_for_the_ingested_data(project):
    _own_regions(project)
    _audience_regions(project, north=["Nrth"])
    line = _checks(project)[-1]
    assert "cannot be checked yet" in line and "no data is ingested yet" in line and "every stage after ingest" in line


def test_regions_of_a_source_column_are_checked_against_the_ingested_data(project):
    import pandas as pd

    _own_regions(project)
    tx = config.paths(project).transactions
    tx.parent.mkdir(parents=True)
    pd.DataFrame({"region": ["North", "South", "East", "West", None]}).to_parquet(tx)
    assert "ingested data" in _checks(project)[-1]
    _audience_regions(project, north=["Nrth"])
    with pytest.raises(ParamsError, match=r"'Nrth' is not a region .* the ingested data \(data/interim/"):
        _checks(project)
    assert "cannot be checked yet" in _checks(project, data=False)[-1]   # the stages that make the data
    _audience_regions(project, north=["North", "South"])
    with pytest.raises(ParamsError, match="all regions or exactly one"):
        _checks(project)
    # params/data.yaml changed since the data was ingested (dvc.lock says so): the data cannot tell yet
    (project / "dvc.lock").write_text(yaml.safe_dump({"stages": {"ingest": {"params": {
        "params/data.yaml": {"source": "excel"}}}}}))
    assert "made with other params/data.yaml values" in _checks(project)[-1]


@pytest.mark.parametrize(("source", "path", "fragments"), [
    ("csv", "data/raw/notes.md", ["extension is '.md'", "rename the file"]),
    ("csv", "data/raw/t.xlsx", ["extension is '.xlsx'", "source: excel"]),
    ("excel", "data/raw/t.csv", ["extension is '.csv'", "source: csv"]),
    ("parquet", "data/raw/t.csv.gz", ["extension is '.csv.gz'", "source: csv"]),
])
def test_a_file_source_reads_its_own_kind(project, source, path, fragments):
    _edit(project, "data", source=source, file={"path": path})
    with pytest.raises(ParamsError) as err:
        _checks(project)
    msg = str(err.value)
    assert f"key 'file.path' has value {path!r}" in msg
    for fragment in fragments:
        assert fragment in msg


@pytest.mark.parametrize("path", ["data/raw/t.csv", "data/raw/T.TSV", "data/raw/t.txt.gz", "data/raw/t.CSV.gz"])
def test_csv_extensions(project, path):
    _edit(project, "data", source="csv", file={"path": path})
    assert _checks(project)


def test_did_you_mean_names_the_nearest_key_or_nothing():
    assert config.did_you_mean("horizn", {"horizon", "folds"}) == " (did you mean horizon?)"
    assert config.did_you_mean("zzz", {"horizon", "folds"}) == ""


def test_misspelt_nested_key_suggests_the_key_of_that_level(project):
    (project / "params" / "data.yaml").write_text("rules:\n  date_formt: '%d/%m/%Y'\n")
    with pytest.raises(ParamsError, match=r"unknown key 'rules.date_formt' \(did you mean date_format\?\)"):
        config.load("data", project)
