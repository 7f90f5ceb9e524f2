"""cluster.py, and the forecast and churn stages on a real Dask cluster: a `dask scheduler` and two `dask worker`
processes started here on 127.0.0.1, as an operator would start them. Their outputs must be the bytes a local
run writes, and the work must really have run on those workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datastory import churn, cluster, config, forecast, ingest, io, sample
from datastory.errors import ClusterError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_address_prefers_the_parameter_then_the_environment(monkeypatch):
    monkeypatch.delenv(cluster.ENV, raising=False)
    assert cluster.address("") == ""
    monkeypatch.setenv(cluster.ENV, " tcp://10.0.0.5:8786 ")
    assert cluster.address("") == "tcp://10.0.0.5:8786"
    assert cluster.address("tcp://10.0.0.6:8786") == "tcp://10.0.0.6:8786"


def test_batches_deal_every_item_once_in_a_fixed_order():
    items = [f"s{i}" for i in range(20)]
    got = cluster.batches(items, n_workers=2, per_worker=3, max_size=8)
    assert len(got) == 6 and all(got) and got[0] == ["s0", "s6", "s12", "s18"]
    assert sorted(x for b in got for x in b) == sorted(items)
    assert got == cluster.batches(items, n_workers=2, per_worker=3, max_size=8)
    many = cluster.batches([f"s{i}" for i in range(100)], n_workers=2, per_worker=3, max_size=8)
    assert len(many) == 13 and max(map(len, many)) <= 8 and sum(map(len, many)) == 100
    assert cluster.batches(items[:4], n_workers=2, per_worker=3) == [["s0"], ["s1"], ["s2"], ["s3"]]
    assert cluster.batches([], n_workers=2) == []


def test_no_scheduler_at_the_address_is_a_clear_error(monkeypatch):
    import socket

    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"tcp://127.0.0.1:{port}"
    with pytest.raises(ClusterError) as err, cluster.connect(addr, timeout=2):
        pass
    msg = str(err.value)
    assert addr in msg and "no Dask scheduler answered" in msg
    assert cluster.ENV in msg and "fix:" in msg


def test_churn_on_an_unreachable_scheduler_stops_before_training(monkeypatch):
    from test_churn_model import synth_tx

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    monkeypatch.setenv(cluster.ENV, "tcp://127.0.0.1:9")   # discard port: nothing answers
    trained = []
    monkeypatch.setattr(churn, "fit_scorer", lambda *a: trained.append(a))
    with pytest.raises(ClusterError, match="tcp://127.0.0.1:9"):
        churn.run(synth_tx(120, seed=1), config.ChurnParams())
    assert trained == []


def test_churn_from_the_file_on_an_unreachable_scheduler_stops_before_training(monkeypatch, tmp_path):
    from test_churn_model import synth_tx

    path = io.write_parquet(synth_tx(120, seed=1), tmp_path / "t.parquet")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    monkeypatch.setenv(cluster.ENV, "tcp://127.0.0.1:9")
    trained = []
    monkeypatch.setattr(churn, "fit_scorer", lambda *a: trained.append(a))
    with pytest.raises(ClusterError, match="tcp://127.0.0.1:9"):
        churn.run_file(path, config.ChurnParams())
    assert trained == []


@pytest.mark.slow
def test_a_command_pointed_at_no_scheduler_exits_2_with_the_address_and_the_fix(tmp_path):
    from test_cli import _long_csv

    _long_csv(tmp_path / "sales.csv")
    env = {**os.environ, cluster.ENV: "tcp://127.0.0.1:9"}   # discard port: nothing answers
    res = subprocess.run([str(BIN / "datastory"), "forecast-file", "sales.csv", "--freq", "MS", "--horizon", "3",
                          "--out", "fc.csv"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "no Dask scheduler answered at 'tcp://127.0.0.1:9'" in res.stderr and cluster.ENV in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "fc.csv").exists()


# ------------------------------------------------------------------ a real cluster
def _dask(*args: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop(cluster.ENV, None)
    with open(log, "wb") as out:
        return subprocess.Popen([str(BIN / "dask"), *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):        # workers first, then the scheduler
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a scheduler with two single-threaded workers, each its own `dask worker` process."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("cluster")
    file = tmp / "scheduler.json"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(file), log=tmp / "scheduler.log")]
    try:
        deadline = time.monotonic() + 120
        while not file.exists() or not file.read_text().strip():
            assert procs[0].poll() is None, (tmp / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(_dask("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                               "--host", "127.0.0.1",
                               log=tmp / f"worker{i}.log"))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=180)
        yield address
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def tx():
    return ingest.clean(sample.generate(config.SampleParams(n_customers=300)), "sample")[0]


def _outputs(root: Path) -> dict[str, bytes]:
    """Every file the stage wrote under the project folder (params/ aside), by relative path."""
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*"))
            if f.is_file() and f.relative_to(root).parts[0] != "params"}


def _on_workers(address: str, fn) -> list:
    from distributed import Client

    with Client(address, timeout=30) as client:
        return list(client.run(fn).values())


def _tasks_done(address: str, prefix: str) -> int:
    """How many tasks named `prefix` the scheduler has seen finish since it started."""
    from distributed import Client

    def count(dask_scheduler, prefix=prefix):
        tp = dask_scheduler.task_prefixes.get(prefix)
        return int(tp.state_counts["memory"]) if tp is not None else 0

    with Client(address, timeout=30) as client:
        return client.run_on_scheduler(count)


def _project(root: Path) -> config.Paths:
    import shutil

    shutil.copytree(REPO / "params", root / "params")
    return config.paths(root)


@pytest.mark.slow
def test_forecast_on_the_cluster_writes_the_bytes_of_a_local_run(scheduler, tx, tmp_path, monkeypatch):
    cfg = config.load("forecast", REPO).model_copy(update={"freq": "M", "horizon": 3})
    series = forecast.build_series(tx, cfg.freq, cfg.fill)

    monkeypatch.setenv(cluster.ENV, scheduler)
    remote = forecast.run(series, cfg, progress=False)
    forecast.save(remote, _project(tmp_path / "cluster"))
    monkeypatch.delenv(cluster.ENV)
    local = forecast.run(series, cfg.model_copy(update={"engine": "local"}), progress=False)
    forecast.save(local, _project(tmp_path / "local"))

    written = _outputs(tmp_path / "cluster")
    assert {"data/processed/forecast.parquet", "metrics/forecast.json"} <= set(written)
    assert written == _outputs(tmp_path / "local")
    workers = set(_on_workers(scheduler, os.getpid))
    assert len(workers) == 2 and os.getpid() not in workers
    assert set(remote.workers.values()) <= workers
    # the engine warmed every worker (they were started without --preload)
    assert _on_workers(scheduler, lambda: "datastory.forecast.warm" in sys.modules) == [True, True]
    assert set(local.workers.values()) == {os.getpid()}
    assert _tasks_done(scheduler, "forecast-batch") >= 1


@pytest.mark.slow
def test_churn_on_the_cluster_writes_the_bytes_of_a_local_run(scheduler, tx, tmp_path, monkeypatch):
    cfg = config.load("churn", REPO)
    before = _tasks_done(scheduler, "churn-score")

    # the transactions as the stage reads them (io.read_parquet), and from the file when ingest streams
    path = io.write_parquet(tx, tmp_path / "transactions.parquet")
    tx = io.read_parquet(path)
    monkeypatch.setenv(cluster.ENV, scheduler)
    remote = churn.run(tx, cfg)
    churn.save(remote, _project(tmp_path / "cluster"))
    scored = _tasks_done(scheduler, "churn-score")
    from_file = churn.run_file(path, cfg, per_shard=5000)
    churn.save(from_file, _project(tmp_path / "file"))
    monkeypatch.delenv(cluster.ENV)
    local = churn.run(tx, cfg)
    churn.save(local, _project(tmp_path / "local"))

    written = _outputs(tmp_path / "cluster")
    assert {"data/processed/churn_scores.parquet", "metrics/churn.json"} <= set(written)
    assert written == _outputs(tmp_path / "local") == _outputs(tmp_path / "file")
    assert len(remote.scores) > 0
    # the scores at the data end and at the comparison date, each in chunks of CHUNK_ROWS customers
    assert scored - before >= 2
    assert _tasks_done(scheduler, "churn-score") - scored >= 2


@pytest.mark.slow
def test_dvc_repro_on_the_cluster_writes_the_bytes_of_a_local_dvc_repro(scheduler, tmp_path):
    """The whole project, as a user runs it: `dvc repro` of the forecast and churn stages in a project copy, once on
    this machine and once with DASK_SCHEDULER_ADDRESS pointing at the cluster, in a clone of that copy (the same
    commit, no outputs, no DVC cache). Every output and the dvc.lock that records their md5s must be the same bytes."""
    from e2e import artifacts, clone, copy_repo, sh

    local = copy_repo(tmp_path / "local")
    sh(local, "dvc", "repro", "forecast", "churn", timeout=1200, **{cluster.ENV: ""})
    remote = clone(local, tmp_path / "remote")
    before = {p: _tasks_done(scheduler, p) for p in ("forecast-batch", "churn-score")}
    res = sh(remote, "dvc", "repro", "forecast", "churn", timeout=1200, **{cluster.ENV: scheduler})
    assert "Running stage 'forecast'" in res.stdout and "Running stage 'churn'" in res.stdout

    def files(root: Path) -> dict[str, bytes]:
        return {f.relative_to(root).as_posix(): f.read_bytes() for f in [*artifacts(root), root / "dvc.lock"]}

    got, want = files(remote), files(local)
    assert {"data/processed/forecast.parquet", "data/processed/churn_scores.parquet",
            "reports/runs/03_forecast.ipynb", "reports/runs/04_churn.ipynb", "dvc.lock"} <= set(want)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
    # the work ran on the cluster's workers, not in a LocalCluster of the stage's own
    assert _tasks_done(scheduler, "forecast-batch") > before["forecast-batch"]
    assert _tasks_done(scheduler, "churn-score") > before["churn-score"]
