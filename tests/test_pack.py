import pandas as pd
import pytest
from conftest import make_pack, tiny_frames, write_artifacts

from datastory import bridge, config, pack, schema
from datastory.errors import ParamsError


def test_company_pack_sees_everything(tiny_pack):
    assert tiny_pack.is_company and tiny_pack.headline_region == schema.ALL
    assert set(tiny_pack.kpis["region"]) == {schema.ALL, "North", "South"}
    assert set(tiny_pack.churn_scores["region"]) == {"North", "South"}
    assert "All" in tiny_pack.forecast_metrics["series"]


def test_regional_pack_sees_only_its_region(north_pack):
    assert north_pack.regions == ("North",) and not north_pack.is_company
    assert north_pack.headline_region == "North"
    assert set(north_pack.kpis["region"]) == {"North"}
    assert set(north_pack.forecast["region"]) == {"North"}
    assert set(north_pack.churn_scores["region"]) == {"North"}
    assert set(north_pack.forecast_metrics["series"]) == {"North", "North / Hardware"}


def test_red_list_is_the_red_rows(tiny_pack):
    assert tiny_pack.red_list["red"].all()
    assert len(tiny_pack.red_list) == int(tiny_pack.churn_scores["red"].sum())


def test_unknown_audience_is_refused():
    with pytest.raises(ParamsError, match="unknown audience 'nobody'"):
        make_pack("nobody")


def test_audience_region_not_in_data_is_refused():
    report = config.ReportParams(audiences={"x": config.Audience(label="X", regions=["Atlantis"])})
    prov = pack.Provenance("a", "b", "c", "d")
    with pytest.raises(ParamsError, match="Atlantis"):
        pack.select("x", report, "EUR", provenance=prov, **tiny_frames())


def test_footer_names_period_commit_and_hash(tiny_pack):
    footer = tiny_pack.provenance.footer()
    assert "2025-01-01" in footer and "abc123def456" in footer and "0123456789ab" in footer


def test_git_commit_outside_a_repo(tmp_path):
    assert pack.git_commit(tmp_path) == "unversioned"


def test_audience_listing_every_region_is_the_company_and_repeats_collapse():
    report = config.ReportParams(audiences={"x": config.Audience(label="X", regions=["North", "South", "North"])})
    prov = pack.Provenance("a", "b", "c", "d")
    assert pack.select("x", report, "EUR", provenance=prov, **tiny_frames()).is_company
    report = config.ReportParams(audiences={"y": config.Audience(label="Y", regions=["North", "North"])})
    assert pack.select("y", report, "EUR", provenance=prov, **tiny_frames()).regions == ("North",)


def test_audience_of_some_but_not_all_regions_is_refused_clearly():
    frames = tiny_frames()
    east = frames["kpis"][frames["kpis"]["region"] == "North"].assign(region="East")
    frames["kpis"] = pd.concat([frames["kpis"], east], ignore_index=True)
    report = config.ReportParams(audiences={"x": config.Audience(label="X", regions=["North", "South"])})
    with pytest.raises(ParamsError, match="all regions or exactly one"):
        pack.select("x", report, "EUR", provenance=pack.Provenance("a", "b", "c", "d"), **frames)


def test_company_pack_carries_the_whole_bridge_and_movers(tiny_pack):
    assert list(dict.fromkeys(tiny_pack.bridge["region"])) == [schema.ALL, "North", "South"]
    assert list(tiny_pack.bridge.columns) == list(schema.BRIDGE) and list(tiny_pack.movers.columns) == list(schema.MOVERS)
    assert set(tiny_pack.movers["region"]) == {schema.ALL, "North", "South"}
    view = bridge.segment(tiny_pack.bridge, tiny_pack.headline_region)
    assert (view["period"], view["previous_period"]) == ("2025-05-01", "2025-04-01")


def test_regional_pack_carries_only_its_region_of_the_bridge_and_movers(north_pack):
    assert set(north_pack.bridge["region"]) == {"North"} and set(north_pack.movers["region"]) == {"North"}
    assert bridge.segment(north_pack.bridge, schema.ALL) is None
    south_names = set(tiny_frames()["churn_scores"].query("region == 'South'")["customer_name"])
    assert not south_names & set(north_pack.movers["name"])
    view = bridge.segment(north_pack.bridge, "North")
    assert view["current"] == 330 + 150 + 480 and view["previous"] == 200 + 400


def test_load_reads_the_bridge_and_movers_from_their_files(project):
    frames = tiny_frames()
    write_artifacts(project, frames)
    company = pack.load("executive", project)
    pd.testing.assert_frame_equal(company.bridge, frames["bridge"])
    pd.testing.assert_frame_equal(company.movers, frames["movers"])
    north = next(k for k, a in config.load("report", project).audiences.items() if a.regions == ["North"])
    assert set(pack.load(north, project).bridge["region"]) == {"North"}


def test_a_pack_without_a_previous_period_has_an_empty_bridge():
    frames = tiny_frames()
    frames["bridge"], frames["movers"] = frames["bridge"].iloc[:0], frames["movers"].iloc[:0]
    report = config.ReportParams(audiences={"x": config.Audience(label="X", regions="all")})
    p = pack.select("x", report, "EUR", provenance=pack.Provenance("a", "b", "c", "d"), **frames)
    assert p.bridge.empty and p.movers.empty and bridge.segment(p.bridge, p.headline_region) is None


def test_load_gives_the_renderers_the_dicts_the_stages_computed(project):
    from conftest import write_artifacts

    frames = tiny_frames()
    write_artifacts(project, frames)
    p = pack.load("executive", project)
    assert p.forecast_metrics == frames["forecast_metrics"]
    assert p.churn_metrics == frames["churn_metrics"] and p.data_quality == frames["data_quality"]
    north = pack.load("north", project)
    assert set(north.forecast_metrics["series"]) == {"North", "North / Hardware"}


def test_regional_pack_holds_no_company_reconciliation_figure():
    frames = tiny_frames()
    frames["forecast_metrics"] = {**frames["forecast_metrics"], "reconciliation": {
        "method": "bottom_up", "chosen_by": "lowest backtest MASE", "intervals": "per series",
        "backtest_mase": {"company": {"base": 0.25, "reconciled": 0.19}}, "by_method": {"ols": 0.31},
        "gap_before": 0.24, "gap_after": 0.0,
        "families": {"reconciled": 3, "structural": [], "left_out": {"South": "no forecast", "North": "short"}}}}
    report = config.ReportParams(audiences={"north": config.Audience(label="N", regions=["North"]),
                                            "all": config.Audience(label="All", regions="all")})
    prov = pack.Provenance("a", "b", "c", "d")
    north = pack.select("north", report, "EUR", provenance=prov, **frames).forecast_metrics["reconciliation"]
    assert north == {"method": "bottom_up", "chosen_by": "lowest backtest MASE", "intervals": "per series",
                     "families": {"reconciled": 3, "left_out": {"North": "short"}}}
    company = pack.select("all", report, "EUR", provenance=prov, **frames).forecast_metrics["reconciliation"]
    assert company == frames["forecast_metrics"]["reconciliation"]   # the company keeps the whole record
