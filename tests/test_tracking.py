"""lens.tracking against a real SQLite MLflow store, an unreachable server and a broken database.

    python -m pytest tests/test_tracking.py -q
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import socket
from pathlib import Path

import pytest
from helpers import mlflow_template

from lens import tracking
from lens.config import DataConfig, RunConfig, parse, write_run_config
from lens.tracking import (
    RUN_ID_FILE,
    RunTracker,
    default_tracking_uri,
    ensure_experiment,
    metric_name,
    results_root,
    summary_metrics,
)


@pytest.fixture
def results(tmp_path, tmp_path_factory) -> Path:
    """A results folder holding a fresh copy of the initialised store."""
    root = tmp_path / "results"
    root.mkdir()
    shutil.copy(mlflow_template(tmp_path_factory), root / "mlflow.db")
    return root


def _cfg(**tracking_cfg) -> RunConfig:
    return parse(RunConfig, {"model": {"name": "tiny", "tiny": {}}, "algorithm": {"name": "lens"}, "seed": 3,
                             "training": {"learning_rate": 3e-7}, "tracking": {"experiment": "t", **tracking_cfg}})


def _run_dir(root: Path) -> Path:
    run_dir = root / "runs" / "tiny" / "lens" / "seed3"
    run_dir.mkdir(parents=True)
    return run_dir


def test_store_lives_in_the_folder_holding_runs(tmp_path):
    run_dir = tmp_path / "res" / "runs" / "m" / "lens" / "seed0"
    assert results_root(run_dir) == (tmp_path / "res").resolve()
    assert default_tracking_uri(run_dir) == f"sqlite:///{(tmp_path / 'res').resolve() / 'mlflow.db'}"
    elsewhere = tmp_path / "scratch" / "run"
    assert results_root(elsewhere) == elsewhere.resolve()  # fallback: the run dir itself


def test_a_cluster_run_on_a_sqlite_store_is_warned(tmp_path):
    from lens.tracking import cluster_store_warning

    warning = cluster_store_warning(None, tmp_path)
    assert f"sqlite:///{tmp_path / 'mlflow.db'}" in warning and "tracking.uri" in warning
    assert "sqlite:////shared/x.db" in cluster_store_warning("sqlite:////shared/x.db", tmp_path)
    assert cluster_store_warning("http://10.0.0.5:5000", tmp_path) is None
    assert cluster_store_warning("postgresql://u@h/db", tmp_path) is None


def test_metric_names_are_made_valid_for_mlflow():
    assert metric_name("eval/math500/pass@1") == "eval/math500/pass_at_1"
    assert metric_name("adv/abs_mean/all_wrong") == "adv/abs_mean/all_wrong"
    assert metric_name("a(b)%") == "a_b__"


def test_summary_metrics_flattens_numbers_only():
    summary = {"pass@1": 0.5, "n": 10, "benchmark": "math500", "ok": True,
               "by_level": {"4": {"pass@1": 0.25}, "note": None}}
    assert summary_metrics(summary, "eval/math500") == {
        "eval/math500/pass_at_1": 0.5, "eval/math500/n": 10.0, "eval/math500/by_level/4/pass_at_1": 0.25}


def test_run_is_logged_and_reattached(results):
    from mlflow.tracking import MlflowClient

    cfg = _cfg()
    run_dir = _run_dir(results)
    tracker = RunTracker(cfg, run_dir)
    run_id = tracker.start()
    assert run_id and (run_dir / RUN_ID_FILE).read_text().strip() == run_id
    tracker.log_metrics({"reward": 0.25, "adv/abs_mean/all_wrong": 0.01, "skip_nan": float("nan"), "none": None}, 1)
    tracker.log_metrics({"reward": 0.5}, 2)

    # A restarted job re-attaches to the same run and keeps logging into it.
    again = RunTracker(cfg, run_dir)
    assert again.start() == run_id
    again.log_metrics({"reward": 0.75}, 3)
    again.finish()

    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["model"] == "tiny" and run.data.tags["algo"] == "lens" and run.data.tags["seed"] == "3"
    assert len(run.data.tags["git_sha"]) in (40, len("unknown"))
    assert run.data.params["training.learning_rate"] == "3e-07"
    assert run.data.params["algorithm.alpha"] == "0.25"
    assert run.data.params["model.tiny.hidden_size"] == "64"
    history = client.get_metric_history(run_id, "reward")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.25), (2, 0.5), (3, 0.75)]
    assert [m.value for m in client.get_metric_history(run_id, "adv/abs_mean/all_wrong")] == [0.01]
    assert "skip_nan" not in run.data.metrics and "none" not in run.data.metrics
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    assert "config.yaml" in artifacts
    # Artifacts sit next to the SQLite database, not in the working directory.
    assert run.info.artifact_uri.startswith((results / "mlartifacts").resolve().as_uri())
    config_text = Path(client.download_artifacts(run_id, "config.yaml", str(results))).read_text()
    assert "learning_rate: 3.0e-07" in config_text


def test_sweep_run_is_tagged_with_its_parameter_and_value(results):
    from mlflow.tracking import MlflowClient

    cfg = parse(RunConfig, {"model": {"name": "tiny", "tiny": {}}, "algorithm": {"name": "lens", "alpha": 4},
                            "seed": 3, "tracking": {"experiment": "t"}})
    sweep_dir = results / "runs" / "tiny" / "lens" / "alpha-4" / "seed3"
    main_dir = _run_dir(results)
    assert tracking.sweep_tags(cfg, sweep_dir) == {"sweep_param": "alpha", "sweep_value": "4.0"}
    assert tracking.sweep_tags(cfg, main_dir) == {}  # a main run: {model}/{algo}/seed{s}
    assert tracking.sweep_tags(_cfg(), results / "runs" / "tiny" / "grpo" / "alpha-4" / "seed3") == {}
    run_id = RunTracker(cfg, sweep_dir).start()
    run = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}").get_run(run_id)
    assert run.data.tags["sweep_param"] == "alpha" and run.data.tags["sweep_value"] == "4.0"
    assert (run.data.tags["algo"], run.data.tags["seed"]) == ("lens", "3")
    assert run.data.tags["mlflow.runName"] == "tiny/lens/alpha-4/seed3"
    assert run.data.params["algorithm.alpha"] == "4.0"
    # the store is the one of the results folder that holds runs/, as for the main runs
    assert results_root(sweep_dir) == results.resolve()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server_warns_once_and_training_goes_on(tmp_path, monkeypatch, caplog):
    # Keep MLflow's own HTTP retries short in case anything gets past the connection probe.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    cfg = _cfg(uri=f"http://127.0.0.1:{_closed_port()}")
    tracker = RunTracker(cfg, _run_dir(tmp_path))
    with caplog.at_level(logging.WARNING, logger="lens.tracking"):
        assert tracker.start() is None
        for step in range(5):
            tracker.log_metrics({"reward": 0.5}, step)
        tracker.log_artifact(__file__)
        tracker.finish()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MLflow tracking disabled" in warnings[0].getMessage()
    assert not tracker.enabled
    assert not (tracker.run_dir / RUN_ID_FILE).exists()


def test_broken_database_warns_once(tmp_path, caplog):
    root = tmp_path / "results"
    run_dir = _run_dir(root)
    (root / "mlflow.db").write_bytes(b"this is not a sqlite database" * 100)
    tracker = RunTracker(_cfg(), run_dir)
    with caplog.at_level(logging.WARNING, logger="lens.tracking"):
        assert tracker.start() is None
        tracker.log_metrics({"reward": 1.0}, 1)
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 1


def test_a_dataset_row_inserted_first_by_a_parallel_job_is_found_on_retry(tmp_path, monkeypatch):
    """Two jobs of one experiment started together record the same dataset; MLflow's get-or-create of its row
    is not atomic and the loser's insert fails on the unique constraint (seen in CI: the run then went
    untracked). The retry finds the row: the run starts, with its training set as an input."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"id": "a", "problem": "1+1", "answer": "2"}\n')
    cfg = dataclasses.replace(_cfg(), data=parse(DataConfig, {"train": [
        {"name": "synthetic", "path": str(data), "split": "train"}]}))
    real, calls = MlflowClient.log_inputs, []

    def racing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                               "datasets.name, datasets.digest")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_inputs", racing)
    tracker = RunTracker(cfg, _run_dir(tmp_path))
    run_id = tracker.start()
    assert run_id is not None and len(calls) == 2
    inputs = MlflowClient(tracker.uri).get_run(run_id).inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["synthetic_train"]
    # Any other error is not retried: tracking is disabled for the job, as before.
    calls.clear()
    monkeypatch.setattr(MlflowClient, "log_inputs", lambda self, *a, **k: (calls.append(1), 1 / 0))
    assert RunTracker(cfg, _run_dir(tmp_path / "other")).start() is None and len(calls) == 1


def test_database_locked_is_retried_and_other_errors_are_not(monkeypatch):
    monkeypatch.setattr(tracking.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking._with_lock_retry(flaky) == "ok" and len(calls) == 3

    def broken():
        calls.append(1)
        raise RuntimeError("no such table: experiments")

    calls.clear()
    with pytest.raises(RuntimeError, match="no such table"):
        tracking._with_lock_retry(broken)
    assert len(calls) == 1

    def always_locked():
        raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="locked"):
        tracking._with_lock_retry(always_locked)


def test_ensure_experiment_is_idempotent_and_survives_a_concurrent_creation(results, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{results / 'mlflow.db'}"
    first = ensure_experiment(uri, "shared")
    assert ensure_experiment(uri, "shared") == first
    experiment = MlflowClient(tracking_uri=uri).get_experiment(first)
    assert experiment.artifact_location == (results / "mlartifacts").resolve().as_uri()

    # Another job creates "raced" between our lookup and our create: we must read its id back.
    real_create = MlflowClient.create_experiment

    def create_then_lose_the_race(self, name, artifact_location=None, tags=None):
        real_create(self, name, artifact_location=artifact_location)
        raise RuntimeError(f"Experiment(name={name}) already exists")

    monkeypatch.setattr(MlflowClient, "create_experiment", create_then_lose_the_race)
    raced = ensure_experiment(uri, "raced")
    monkeypatch.undo()
    assert MlflowClient(tracking_uri=uri).get_experiment_by_name("raced").experiment_id == raced


def _eval_dir(tmp_path: Path) -> Path:
    import pandas as pd

    eval_dir = tmp_path / "eval" / "math500" / "step100"
    eval_dir.mkdir(parents=True)
    (eval_dir / "summary.json").write_text(json.dumps({"pass@1": 0.5, "pass@16": 0.75, "benchmark": "math500",
                                                       "by_level": {"5": {"pass@1": 0.125}}}))
    pd.DataFrame({"problem_id": ["a"], "correct": [True]}).to_parquet(eval_dir / "samples.parquet")
    return eval_dir


def test_log_eval_cli_logs_to_the_training_run(results, tmp_path):
    from mlflow.tracking import MlflowClient

    cfg = _cfg()
    run_dir = _run_dir(results)
    write_run_config(cfg, run_dir / "config.yaml")
    run_id = RunTracker(cfg, run_dir).start()
    eval_dir = _eval_dir(tmp_path)
    code = tracking.main(["log-eval", "--run-dir", str(run_dir), "--eval-dir", str(eval_dir),
                          "--benchmark", "math500", "--step", "100"])
    assert code == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    history = client.get_metric_history(run_id, "eval/math500/pass_at_1")
    assert [(m.step, m.value) for m in history] == [(100, 0.5)]
    assert client.get_metric_history(run_id, "eval/math500/by_level/5/pass_at_1")[0].value == 0.125
    logged = {a.path for a in client.list_artifacts(run_id, "eval/math500/step100")}
    assert logged == {"eval/math500/step100/summary.json", "eval/math500/step100/samples.parquet"}


def test_log_eval_never_fails_the_job(tmp_path, capsys):
    eval_dir = _eval_dir(tmp_path)
    run_dir = _run_dir(tmp_path / "results")
    write_run_config(_cfg(), run_dir / "config.yaml")
    (tmp_path / "results" / "mlflow.db").write_bytes(b"garbage" * 100)  # broken store
    (run_dir / RUN_ID_FILE).write_text("0123456789abcdef\n")
    args = ["log-eval", "--run-dir", str(run_dir), "--eval-dir", str(eval_dir), "--benchmark", "math500",
            "--step", "100"]
    assert tracking.main(args) == 0
    assert "not logged" in capsys.readouterr().out
    # No summary.json at all: still exit 0.
    (eval_dir / "summary.json").unlink()
    assert tracking.main(args) == 0


def test_run_id_unknown_to_the_store_starts_a_new_run(results, caplog):
    cfg = _cfg()
    run_dir = _run_dir(results)
    (run_dir / RUN_ID_FILE).write_text("ffffffffffffffffffffffffffffffff\n")  # from a deleted database
    with caplog.at_level(logging.WARNING, logger="lens.tracking"):
        run_id = RunTracker(cfg, run_dir).start()
    assert run_id and run_id != "f" * 32
    assert (run_dir / RUN_ID_FILE).read_text().strip() == run_id
    assert "starting a new run" in caplog.text


def test_ensure_experiment_cli(results, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    assert tracking.main(["ensure-experiment", "--results-dir", str(results), "--experiment", "fan-out"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    assert client.get_experiment_by_name("fan-out") is not None
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "mlflow.db").write_bytes(b"garbage" * 100)
    assert tracking.main(["ensure-experiment", "--results-dir", str(broken), "--experiment", "x"]) == 0


def test_ui_url_opens_the_runs_table_in_model_training_mode(tmp_path, capsys):
    # MLflow 3.17's UI picks GenAI or Model training from the URL's workflowType, not the kind tag.
    assert tracking.ui_url("http://h:5000/", "7") == "http://h:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert tracking.ui_url("http://h:5000") == "http://h:5000/#/experiments?workflowType=machine_learning"
    assert tracking.main(["ui-url", "--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    (tmp_path / tracking.EXPERIMENT_ID_FILE).write_text("3\n")
    assert tracking.main(["ui-url", "--results-dir", str(tmp_path), "--base", "http://127.0.0.1:5123"]) == 0
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:5123/#/experiments/3/runs?workflowType=machine_learning"
