"""MLflow tracking of training and evaluation runs; the only module that imports mlflow.

Files are the record, MLflow is the window (docs/design.md): nothing here may stop a job. A store
that is unreachable or broken is reported once with a warning and then left alone; the run goes on.

- `RunTracker(cfg, run_dir)`: one MLflow run per run directory. Params are the flattened resolved
  config, tags `model, algo, seed, git_sha`, the resolved config is an artifact; the run id is kept
  in `<run_dir>/mlflow_run_id`, so a resumed training job logs into the same run.
- Without `tracking.uri` the store is `sqlite:///<results_root>/mlflow.db` with artifacts in
  `<results_root>/mlartifacts`, where `results_root` is the folder holding `runs/` above the run dir.
- `ensure_experiment(uri, name)`: create the experiment once before many jobs share one SQLite file
  (concurrent creation races); SQLite "database is locked" errors are retried with backoff.

CLI (called by the workflow; both exit 0 even when MLflow is broken):
    python -m lens.tracking ensure-experiment --results-dir RESULTS --experiment NAME [--uri URI]
creates the experiment before jobs fan out, and
    python -m lens.tracking log-eval --run-dir DIR --eval-dir EVAL_DIR --benchmark ID --step S
logs EVAL_DIR/summary.json's numbers as `eval/{benchmark}/{metric}` at rollout step S, and the
files of EVAL_DIR as artifacts under `eval/{benchmark}/step{S}`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from lens.config import RunConfig, dump_yaml, flatten, load_run_config

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"
_LOCK_RETRIES = 8
_PROBE_TIMEOUT_S = 5.0
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Where the store lives
# --------------------------------------------------------------------------------------------
def results_root(run_dir: str | Path) -> Path:
    """The folder that holds `runs/` above `run_dir` (results/runs/{model}/{algo}/seed{s}); else run_dir."""
    run_dir = Path(run_dir).resolve()
    for parent in (run_dir, *run_dir.parents):
        if parent.name == "runs" and parent.parent != parent:
            return parent.parent
    return run_dir


def default_tracking_uri(run_dir: str | Path) -> str:
    return f"sqlite:///{results_root(run_dir) / 'mlflow.db'}"


def tracking_uri(uri: str | None, run_dir: str | Path) -> str:
    return uri if uri else default_tracking_uri(run_dir)


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite store go next to the database; a server decides for itself."""
    if uri.startswith("sqlite:///"):
        db_path = Path(uri[len("sqlite:///"):])
        return (db_path.parent / "mlartifacts").resolve().as_uri()
    return None


def _is_locked(err: BaseException) -> bool:
    return "database is locked" in str(err).lower()


def _with_lock_retry(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call fn, retrying SQLite "database is locked" with jittered exponential backoff."""
    for attempt in range(_LOCK_RETRIES):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # MlflowException wraps sqlalchemy's OperationalError
            if not _is_locked(err) or attempt == _LOCK_RETRIES - 1:
                raise
            time.sleep(0.05 * 2**attempt * (1 + random.random()))
    raise AssertionError("unreachable")


def _probe(uri: str) -> None:
    """Fail fast on an HTTP store that does not answer: MLflow's own retries take minutes."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https"):
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with socket.create_connection((parsed.hostname, port), timeout=_PROBE_TIMEOUT_S):
        pass


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def ensure_experiment(uri: str, name: str) -> str:
    """The id of experiment `name`, created (with artifacts next to a SQLite store) if missing.

    Safe to call from many processes at once: a concurrent creation is detected and re-read.
    """
    _probe(uri)
    client = _client(uri)
    for _ in range(_LOCK_RETRIES):
        experiment = _with_lock_retry(client.get_experiment_by_name, name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return _with_lock_retry(client.create_experiment, name, artifact_location=_artifact_location(uri))
        except Exception as err:
            if "already exists" not in str(err).lower() and "unique constraint" not in str(err).lower():
                raise
            # Another job created it between our read and our write: read it again.
    raise RuntimeError(f"could not create or read MLflow experiment {name!r} at {uri}")


def git_sha() -> str:
    """Commit of the checkout holding this package ("unknown" outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
            timeout=10, check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_BAD_NAME_CHARS = re.compile(r"[^/\w.\- ]")


def metric_name(name: str) -> str:
    """A key MLflow accepts: `pass@k` -> `pass_at_k`; any other character outside [/\\w.- ] -> `_`."""
    return _BAD_NAME_CHARS.sub("_", name.replace("@", "_at_"))


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
class RunTracker:
    """Logs one run directory's params, tags, metrics and artifacts; never raises after a failure.

    The first MLflow error (unreachable server, broken database) is logged once as a warning and
    disables the tracker for the rest of the job, so training is never slowed by repeated retries.
    """

    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, uri: str | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.uri = uri or tracking_uri(cfg.tracking.uri, self.run_dir)
        self.run_id: str | None = None
        self.enabled = True
        self._client = None

    # Every public method goes through _guard: the first failure warns and disables.
    def _guard(self, what: str, fn: Callable[[], T]) -> T | None:
        if not self.enabled:
            return None
        try:
            return fn()
        except Exception as err:  # any store error: the run must go on without MLflow
            self.enabled = False
            log.warning("MLflow tracking disabled for this job (%s failed against %s): %s: %s",
                        what, self.uri, type(err).__name__, err)
            return None

    def start(self) -> str | None:
        """Attach to the run recorded in run_dir/mlflow_run_id, or create one; returns the run id."""
        return self._guard("start", self._start)

    def _start(self) -> str:
        experiment_id = ensure_experiment(self.uri, self.cfg.tracking.experiment)
        self._client = _client(self.uri)
        id_file = self.run_dir / RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.exists() else ""
        if run_id and not self._reattach(run_id):
            log.warning("MLflow run %s of %s is not in %s: starting a new run", run_id, self.run_dir, self.uri)
            run_id = ""
        if not run_id:
            tags = {"model": self.cfg.model.name, "algo": self.cfg.algorithm.name, "seed": str(self.cfg.seed),
                    "git_sha": git_sha(), "run_dir": str(self.run_dir.resolve())}
            run_name = f"{self.cfg.model.name}/{self.cfg.algorithm.name}/seed{self.cfg.seed}"
            run = _with_lock_retry(self._client.create_run, experiment_id, tags=tags, run_name=run_name)
            run_id = run.info.run_id
            self.run_id = run_id
            self._log_params()
            _with_lock_retry(self._client.log_text, run_id, dump_yaml(self.cfg), "config.yaml")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tmp = id_file.with_suffix(".tmp")
            tmp.write_text(run_id + "\n")
            tmp.replace(id_file)
        self.run_id = run_id
        return run_id

    def _reattach(self, run_id: str) -> bool:
        """Mark a recorded run RUNNING again; False if the store does not know it (a new database)."""
        try:
            _with_lock_retry(self._client.get_run, run_id)
        except Exception as err:
            if "RESOURCE_DOES_NOT_EXIST" in str(err) or "not found" in str(err).lower():
                return False
            raise
        _with_lock_retry(self._client.update_run, run_id, status="RUNNING")
        return True

    def attach(self) -> str | None:
        """Attach to an existing run (run_dir/mlflow_run_id) without creating one."""
        def _attach() -> str | None:
            id_file = self.run_dir / RUN_ID_FILE
            if not id_file.exists():
                raise FileNotFoundError(f"{id_file} (no MLflow run was recorded for this run directory)")
            _probe(self.uri)
            self._client = _client(self.uri)
            self.run_id = id_file.read_text().strip()
            return self.run_id
        return self._guard("attach", _attach)

    def _log_params(self) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        params = [Param(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v)[:MAX_PARAM_VAL_LENGTH])
                  for k, v in sorted(flatten(self.cfg).items())]
        for start in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            _with_lock_retry(self._client.log_batch, self.run_id,
                             params=params[start:start + MAX_PARAMS_TAGS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log finite numbers at `step` (rollout step); None/NaN/inf values are skipped."""
        def _log() -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            batch = [Metric(metric_name(k), float(v), now, int(step)) for k, v in metrics.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
            if batch:
                _with_lock_retry(self._client.log_batch, self.run_id, metrics=batch)
        if self.run_id is not None:
            self._guard("log_metrics", _log)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.run_id is not None:
            self._guard("log_artifact",
                        lambda: _with_lock_retry(self._client.log_artifact, self.run_id, str(path), artifact_path))

    def finish(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self._guard("finish", lambda: _with_lock_retry(self._client.set_terminated, self.run_id, status))


# --------------------------------------------------------------------------------------------
# Evaluation results -> the training run
# --------------------------------------------------------------------------------------------
def summary_metrics(summary: Any, prefix: str) -> dict[str, float]:
    """Flatten the numbers of a summary.json into `{prefix}/{key}/{subkey}`; other leaves are dropped."""
    out: dict[str, float] = {}
    if isinstance(summary, Mapping):
        for key, value in summary.items():
            out.update(summary_metrics(value, f"{prefix}/{key}"))
    elif isinstance(summary, (int, float)) and not isinstance(summary, bool):
        out[metric_name(prefix)] = float(summary)
    return out


def log_eval(run_dir: str | Path, eval_dir: str | Path, benchmark: str, step: int) -> bool:
    """Log one evaluation to its training run's MLflow run; True if it was logged, never raises."""
    run_dir, eval_dir = Path(run_dir), Path(eval_dir)
    try:
        cfg = load_run_config(run_dir / "config.yaml")
        summary = json.loads((eval_dir / "summary.json").read_text())
    except Exception as err:  # a missing/garbled file must not fail the evaluation job either
        log.warning("not logging %s to MLflow: %s: %s", eval_dir, type(err).__name__, err)
        return False
    tracker = RunTracker(cfg, run_dir)
    if tracker.attach() is None:
        return False
    tracker.log_metrics(summary_metrics(summary, f"eval/{benchmark}"), step)
    for path in sorted(p for p in eval_dir.iterdir() if p.is_file()):
        tracker.log_artifact(path, f"eval/{benchmark}/step{step}")
    return tracker.enabled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lens.tracking", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("log-eval", help="log an evaluation's summary.json to the training run")
    ev.add_argument("--run-dir", required=True, type=Path)
    ev.add_argument("--eval-dir", required=True, type=Path)
    ev.add_argument("--benchmark", required=True)
    ev.add_argument("--step", required=True, type=int)
    ex = sub.add_parser("ensure-experiment", help="create the experiment once, before many jobs share the store")
    ex.add_argument("--results-dir", required=True, type=Path, help="folder holding runs/ (the SQLite store's home)")
    ex.add_argument("--experiment", required=True)
    ex.add_argument("--uri", default=None, help="tracking URI; default sqlite:///<results-dir>/mlflow.db")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "ensure-experiment":
        uri = args.uri or f"sqlite:///{Path(args.results_dir).resolve() / 'mlflow.db'}"
        try:
            print(f"experiment {args.experiment!r}: id {ensure_experiment(uri, args.experiment)} at {uri}")
        except Exception as err:  # tracking never fails a job
            log.warning("could not create MLflow experiment %r at %s: %s: %s", args.experiment, uri,
                        type(err).__name__, err)
        return 0
    logged = log_eval(args.run_dir, args.eval_dir, args.benchmark, args.step)
    print(f"log-eval {args.benchmark} step {args.step}: {'logged' if logged else 'not logged (see warning)'}")
    return 0  # tracking never fails the job


if __name__ == "__main__":
    sys.exit(main())
