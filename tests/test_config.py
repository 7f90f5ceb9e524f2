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
