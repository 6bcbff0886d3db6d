"""Tracking-server mode: `mlflow server` started and stopped by lens.tracking, parallel jobs logging
through it over HTTP, each (run, step, metric) row stored exactly once, on SQLite and on PostgreSQL.

    make test-cluster        (or: python -m pytest -m cluster tests/cluster/test_tracking_server.py)
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from engines import new_database, stored_metrics
from helpers import REPO, free_port, subprocess_env

from lens.mlflow_server import answers, start_server, stop_server
from lens.tracking import RUN_ID_FILE, metric_name

pytestmark = pytest.mark.cluster
WORKER = REPO / "tests" / "cluster" / "log_worker.py"


def _run_workers(calls: list[list[str]]) -> None:
    procs = [subprocess.Popen([sys.executable, str(WORKER), *args], env=subprocess_env(PYTHONPATH=str(REPO)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for args in calls]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]


def assert_rows_stored_once(store: str, run_dirs: list[Path]) -> int:
    """Every finite (step, metric, value) row of each run's train_metrics.parquet is in the store exactly
    once, with that value; returns the number of rows checked."""
    stored = stored_metrics(store)
    checked = 0
    for run_dir in run_dirs:
        run_id = (run_dir / RUN_ID_FILE).read_text().strip()
        frame = pd.read_parquet(run_dir / "train_metrics.parquet")
        assert not frame.duplicated(["step", "metric"]).any()
        for step, metric, value in frame.itertuples(index=False):
            if not math.isfinite(value):
                continue
            values = stored.get((run_id, metric_name(metric), int(step)), [])
            assert len(values) == 1, f"{run_dir.name} step {step} {metric}: stored {len(values)} times {values}"
            assert values[0] == pytest.approx(value, rel=1e-9, abs=1e-12)
            checked += 1
    return checked


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_jobs_log_each_row_once_through_the_server(backend, tmp_path, request):
    store = (f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}" if backend == "sqlite"
             else new_database(request.getfixturevalue("postgres"), "server_test"))
    uri = f"http://127.0.0.1:{free_port()}"
    state = tmp_path / "server"
    pid = start_server(uri, store, tmp_path / "artifacts", state)
    assert pid is not None and answers(uri)
    try:
        # A second start finds it answering and leaves it alone (nothing to stop for that caller).
        assert start_server(uri, store, tmp_path / "artifacts", tmp_path / "other") is None
        assert not stop_server(tmp_path / "other")
        runs = [tmp_path / "runs" / f"job{i}" for i in range(3)]
        # Three jobs at once, the first resumed from a checkpoint at step 8 while the others still run:
        # it recomputes steps 9-12, which must not be stored twice.
        _run_workers([["--run-dir", str(r), "--uri", uri, "--seed", str(i), "--to-step", "12"]
                      for i, r in enumerate(runs)])
        _run_workers([["--run-dir", str(runs[0]), "--uri", uri, "--from-step", "9", "--to-step", "20"]])
    finally:
        assert stop_server(state)
    assert not answers(uri)
    assert not (state / "server.pid").exists()
    checked = assert_rows_stored_once(store, runs)
    assert checked == (20 + 12 + 12) * 6
    print(f"{backend}: {checked} metric rows, each stored exactly once")


def test_server_mode_needs_an_http_uri_with_a_port(tmp_path):
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        start_server("sqlite:///x.db", "sqlite:///y.db", tmp_path, tmp_path / "s")
