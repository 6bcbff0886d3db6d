"""MLflow tracking of training and evaluation runs; the only module that imports mlflow.

Files under results/ are the record, MLflow is a window onto them: nothing here may stop a job. A store
that is unreachable or broken is reported once with a warning and then left alone; the run goes on.

- `RunTracker(cfg, run_dir)`: one MLflow run per run directory. Params are the flattened resolved
  config, tags `model, algo, seed, git_sha`, the resolved config is an artifact; the run id is kept
  in `<run_dir>/mlflow_run_id`, so a resumed training job logs into the same run. A sweep run
  (results/runs/{model}/{algo}/{param}-{value}/seed{s}, target `sweeps`) is also tagged
  `sweep_param` and `sweep_value` (the value its resolved config holds).
- Without `tracking.uri` the store is `sqlite:///<results_root>/mlflow.db` with artifacts in
  `<results_root>/mlartifacts`, where `results_root` is the folder holding `runs/` above the run dir.
- `ensure_experiment(uri, name)`: create the experiment once before many jobs share one SQLite file
  (concurrent creation races); SQLite "database is locked" errors are retried with backoff. The
  experiment is tagged as MLflow 3's model-training kind; `ui_url` is the link that opens it on its
  runs table in the UI's "Model training" mode (MLflow 3.17 chooses the mode from the URL, not the tag).
- A run records its training and evaluation datasets as inputs (name, digest of the files, source),
  and a resumed job does not log a (metric, step) the store already holds: each is stored once.
- `log_summary`: one `summary` run per results folder holding REPORT.md, the figures and tables.
- Tracking-server mode (`tracking.uri: http://HOST:PORT` with `tracking.server_store`): jobs on any
  node log to the server over HTTP, and only it touches the store; starting and stopping that
  server is lens.mlflow_server's job.

CLI (called by the workflow; the logging commands exit 0 even when MLflow is broken):
    python -m lens.tracking ensure-experiment --results-dir RESULTS --experiment NAME [--uri URI] [--id-file F]
creates the experiment before jobs fan out;
    python -m lens.tracking log-eval --run-dir DIR --eval-dir EVAL_DIR --benchmark ID --step S
logs EVAL_DIR/summary.json's numbers as `eval/{benchmark}/{metric}` at rollout step S, and the
files of EVAL_DIR as artifacts under `eval/{benchmark}/step{S}`;
    python -m lens.tracking log-evals --run-dir DIR --eval BENCHMARK:STEP [...]
does that for every evaluation of one run (DIR/eval/BENCHMARK/stepSTEP) in one process;
    python -m lens.tracking log-summary --results-dir RESULTS --experiment NAME [--uri URI]
logs RESULTS/REPORT.md, figures/ and tables/ to the folder's summary run;
    python -m lens.tracking ui-url --results-dir RESULTS [--base http://127.0.0.1:5000]
prints the UI link of RESULTS' experiment (its runs table, "Model training" mode).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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

from lens import layout
from lens.config import RunConfig, dump_yaml, flatten, load_run_config, parse_sweep_arm
from lens.layout import RUN_CONFIG_FILE, RUN_ID_FILE, SUMMARY_FILE, SUMMARY_RUN_ID_FILE, results_root

log = logging.getLogger(__name__)

EXPERIMENT_ID_FILE = "mlflow_experiment_id"  # in the results folder, written by the workflow
# MLflow 3's experiment kind for model training (the kind selector on the experiment page shows it).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# The tag does not decide where MLflow 3.17's UI opens an experiment: its "GenAI | Model training"
# switch does, read from the URL's `workflowType` parameter, else from the browser's localStorage
# (`mlflow.workflowType_v1`), else GenAI (its "Overview / Traces" page). Links to the UI therefore
# carry the parameter: `ui_url` (printed by `make mlflow-ui` and at the end of a workflow run).
UI_WORKFLOW_PARAM = "workflowType=machine_learning"
RUN_KIND_TAG = "lens.run_kind"  # "training" (one per model x algo x seed) or "summary" (one per results folder)
_LOCK_RETRIES = 8
_PROBE_TIMEOUT_S = 5.0
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Where the store lives
# --------------------------------------------------------------------------------------------
def store_uri(results_dir: str | Path) -> str:
    """The default tracking store of a results folder: one SQLite file beside runs/ (every job's)."""
    return f"sqlite:///{Path(results_dir) / 'mlflow.db'}"


def default_tracking_uri(run_dir: str | Path) -> str:
    return store_uri(results_root(run_dir))


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


def _is_concurrent_insert(err: BaseException) -> bool:
    """A row another job inserted first (SQLite's "UNIQUE constraint failed", PostgreSQL's "duplicate key")."""
    text = str(err)
    return "UNIQUE constraint failed" in text or "duplicate key value violates unique constraint" in text


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
            if experiment.tags.get(EXPERIMENT_KIND_TAG) is None:  # made before the kind was set
                _with_lock_retry(client.set_experiment_tag, experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                 EXPERIMENT_KIND)
            return experiment.experiment_id
        try:
            return _with_lock_retry(client.create_experiment, name, artifact_location=_artifact_location(uri),
                                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
        except Exception as err:
            if "already exists" not in str(err).lower() and "unique constraint" not in str(err).lower():
                raise
            # Another job created it between our read and our write: read it again.
    raise RuntimeError(f"could not create or read MLflow experiment {name!r} at {uri}")


def cluster_store_warning(uri: str | None, results_dir: str | Path) -> str | None:
    """What a run whose jobs go to other machines (SLURM) is told at start when its store is a SQLite
    file: every job of every node writes into one file on the shared file system, whose locks NFS and
    Lustre do not honour (docs/cluster.md, "Tracking"). None for a tracking server."""
    if uri is not None and not uri.startswith("sqlite:"):
        return None
    store = uri or store_uri(results_dir)
    return (f"WARNING: the MLflow store is a SQLite file ({store}) and jobs run on cluster nodes: parallel "
            "writers on a shared file system can lock or corrupt it. Set tracking.uri to a tracking server "
            "(tracking.server_store starts one for the workflow; docs/cluster.md, \"Tracking\").")


def ui_url(base: str, experiment_id: str | None = None) -> str:
    """The MLflow UI link of an experiment's runs table in the UI's "Model training" mode (or of the
    experiments list, in that mode, without an id); `base` is the UI's http://HOST:PORT."""
    base = base.rstrip("/")
    if not experiment_id:
        return f"{base}/#/experiments?{UI_WORKFLOW_PARAM}"
    return f"{base}/#/experiments/{experiment_id}/runs?{UI_WORKFLOW_PARAM}"


def results_ui_url(results_dir: str | Path, base: str) -> str:
    """`ui_url` of the experiment recorded in RESULTS/mlflow_experiment_id (written by the workflow)."""
    id_file = Path(results_dir) / EXPERIMENT_ID_FILE
    experiment_id = id_file.read_text().strip() if id_file.exists() else ""
    return ui_url(base, experiment_id or None)


def where_to_browse(results_dir: str | Path, uri: str | None = None, server_store: str | None = None) -> str:
    """Where a workflow's results are and how to browse them in the MLflow UI (printed when it succeeds).

    `uri`, `server_store`: the config's tracking.uri and tracking.server_store."""
    root = Path(results_dir).resolve()
    store = server_store or uri or store_uri(root)
    local = "--host 127.0.0.1 --port 5000"
    if uri and uri.startswith("http") and not server_store:
        ui, base = "the tracking server's UI", uri  # a server the workflow did not start: it is still up
    elif server_store:  # the workflow's server has stopped: browse its store locally
        ui = (f".venv/bin/mlflow server --backend-store-uri {store} --artifacts-destination {root / 'mlartifacts'} "
              f"{local}")
        base = "http://127.0.0.1:5000"
    else:
        ui = ("make mlflow-ui" if root == Path("results").resolve() and not uri else
              f".venv/bin/mlflow ui --backend-store-uri {store} {local}")
        base = "http://127.0.0.1:5000"
    return "\n".join([
        "",
        f"Report:        {root / 'REPORT.md'}",
        f"Figures:       {root / 'figures'}",
        f"Tables:        {root / 'tables'}",
        f"MLflow store:  {store}",
        f"MLflow UI:     {ui}",
        f"               then open {results_ui_url(root, base)}",  # the experiment's "Model training" view
        "",
    ])


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
# Datasets as run inputs
# --------------------------------------------------------------------------------------------
def _dataset_files(path: Path, split: str) -> list[Path]:
    """The local files a dataset is read from: the file itself, `{split}.jsonl` in a folder, else its JSONL files."""
    if path.is_file():
        return [path]
    named = path / f"{split}.jsonl"
    return [named] if named.is_file() else sorted(path.rglob("*.jsonl"))


def dataset_entity(ds: Any, seed: int = 0):
    """An MLflow Dataset for a configured dataset: name = its benchmark id, digest = sha256 of the files
    read and the subset settings (first 16 hex digits), source = the local path or the hub id."""
    import hashlib

    from mlflow.entities import Dataset

    settings = {"name": ds.name, "split": ds.split, "limit": ds.limit, "levels": list(ds.levels or []) or None,
                "limit_per_level_subject": ds.limit_per_level_subject,
                "seed": seed if ds.limit is not None or ds.limit_per_level_subject is not None else None}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    path = Path(ds.path).expanduser()
    if path.exists():
        files = _dataset_files(path, ds.split)
        for file in files:
            with file.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        source_type = "local"
        source = {"uri": path.resolve().as_uri(), "files": [f.name for f in files]}
    else:  # a hub id: the id and split name it; the local copy is the hub's business
        source_type = "hugging_face"
        source = {"path": ds.path, "split": ds.split}
    profile = {k: v for k, v in settings.items() if v is not None and k not in ("name",)}
    return Dataset(name=ds.id, digest=digest.hexdigest()[:16], source_type=source_type,
                   source=json.dumps(source), profile=json.dumps(profile))


def run_datasets(cfg: RunConfig) -> list[tuple[Any, str]]:
    """(DatasetConfig, context) of every dataset a run reads: "training", then "evaluation" (no repeats)."""
    out, seen = [], set()
    for context, group in (("training", cfg.data.train),
                           ("evaluation", (*cfg.evaluation.benchmarks, *cfg.evaluation.final_benchmarks))):
        for ds in group:
            if (ds.id, context) not in seen:
                seen.add((ds.id, context))
                out.append((ds, context))
    return out


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------
def sweep_tags(cfg: RunConfig, run_dir: str | Path) -> dict[str, str]:
    """`sweep_param`, `sweep_value` of a sweep run ({algo}/{param}-{value}/seed{s}), else {}.

    The folder says which parameter is swept; the value is the one the resolved config holds."""
    run_dir = Path(run_dir)
    parsed = parse_sweep_arm(f"{run_dir.parent.parent.name}/{run_dir.parent.name}")
    if parsed is None or parsed[0] != cfg.algorithm.name:
        return {}
    return {"sweep_param": parsed[1], "sweep_value": str(getattr(cfg.algorithm, parsed[1]))}


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
        # (metric, step) pairs the store already holds for a re-attached run: a resumed job
        # recomputes the steps after its checkpoint, and each is stored once (the first value).
        self._logged: set[tuple[str, int]] = set()

    # Every public method goes through _guard: the first failure warns and disables.
    def _guard(self, what: str, fn: Callable[[], T]) -> T | None:
        if not self.enabled:
            return None
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - any store error: the run must go on without MLflow
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
            sweep = sweep_tags(self.cfg, self.run_dir)
            tags = {"model": self.cfg.model.name, "algo": self.cfg.algorithm.name, "seed": str(self.cfg.seed),
                    "git_sha": git_sha(), "run_dir": str(self.run_dir.resolve()), RUN_KIND_TAG: "training", **sweep}
            variant = f"/{self.run_dir.parent.name}" if sweep else ""
            run_name = f"{self.cfg.model.name}/{self.cfg.algorithm.name}{variant}/seed{self.cfg.seed}"
            run = _with_lock_retry(self._client.create_run, experiment_id, tags=tags, run_name=run_name)
            run_id = run.info.run_id
            self.run_id = run_id
            self._log_params()
            self._log_datasets()
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
        self._load_logged(run_id)
        return True

    def _load_logged(self, run_id: str) -> None:
        """Remember which (metric, step) pairs the run already holds."""
        run = _with_lock_retry(self._client.get_run, run_id)
        for key in run.data.metrics:
            for m in _with_lock_retry(self._client.get_metric_history, run_id, key):
                self._logged.add((key, int(m.step)))

    def _log_datasets(self) -> None:
        from mlflow.entities import DatasetInput, InputTag

        inputs = []
        for ds, context in run_datasets(self.cfg):
            try:
                entity = dataset_entity(ds, self.cfg.seed)
            except OSError as err:  # an unreadable file is the data loader's error to report, not ours
                log.warning("dataset %s not recorded in MLflow: %s", ds.id, err)
                continue
            inputs.append(DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)]))
        if not inputs:
            return
        # Parallel jobs of one experiment record the same datasets, and MLflow's get-or-create of a dataset row
        # is not atomic: the job that loses the race fails on the unique constraint (two training jobs started
        # together did, in CI). Asked again, the store finds the row the other job wrote.
        for attempt in range(_LOCK_RETRIES):
            try:
                _with_lock_retry(self._client.log_inputs, self.run_id, datasets=inputs)
                return
            except Exception as err:  # noqa: BLE001 - MlflowException wraps sqlalchemy's IntegrityError
                if not _is_concurrent_insert(err) or attempt == _LOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt * (1 + random.random()))

    def attach(self) -> str | None:
        """Attach to an existing run (run_dir/mlflow_run_id) without creating one."""
        def _attach() -> str | None:
            id_file = self.run_dir / RUN_ID_FILE
            if not id_file.exists():
                raise FileNotFoundError(f"{id_file} (no MLflow run was recorded for this run directory)")
            _probe(self.uri)
            self._client = _client(self.uri)
            self.run_id = id_file.read_text().strip()
            self._load_logged(self.run_id)
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
                     if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                     and (metric_name(k), int(step)) not in self._logged]
            if batch:
                _with_lock_retry(self._client.log_batch, self.run_id, metrics=batch)
                self._logged.update((m.key, m.step) for m in batch)
        if self.run_id is not None:
            self._guard("log_metrics", _log)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.run_id is not None:
            self._guard("log_artifact",
                        lambda: _with_lock_retry(self._client.log_artifact, self.run_id, str(path), artifact_path))

    def log_table(self, frame, artifact_file: str) -> None:
        """A table artifact (MLflow's log_table: JSON the UI shows as a table, in the Evaluation view)."""
        if self.run_id is not None:
            self._guard("log_table",
                        lambda: _with_lock_retry(self._client.log_table, self.run_id, frame, artifact_file))

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
        cfg = load_run_config(run_dir / RUN_CONFIG_FILE)
        summary = json.loads((eval_dir / SUMMARY_FILE).read_text())
    except Exception as err:  # noqa: BLE001 - a missing/garbled file must not fail the evaluation job either
        log.warning("not logging %s to MLflow: %s: %s", eval_dir, type(err).__name__, err)
        return False
    tracker = RunTracker(cfg, run_dir)
    if tracker.attach() is None:
        return False
    tracker.log_metrics(summary_metrics(summary, f"eval/{benchmark}"), step)
    for path in sorted(p for p in eval_dir.iterdir() if p.is_file()):
        tracker.log_artifact(path, f"eval/{benchmark}/step{step}")
    return tracker.enabled


def log_evals(run_dir: str | Path, evals: list[tuple[str, int]]) -> int:
    """log_eval for each (benchmark, step) of one run, in one process; returns how many were logged."""
    return sum(log_eval(run_dir, layout.eval_dir(run_dir, b, s), b, s) for b, s in evals)


# --------------------------------------------------------------------------------------------
# The results folder's summary run: report, figures and tables as artifacts
# --------------------------------------------------------------------------------------------
def log_summary(results_dir: str | Path, experiment: str, uri: str | None = None) -> str | None:
    """Log REPORT.md, figures/ and tables/ of a results folder to its `summary` run (created once, its id
    kept in RESULTS/mlflow_summary_run_id); returns the run id, or None after a warning."""
    results_dir = Path(results_dir)
    uri = uri or store_uri(results_dir.resolve())
    try:
        _probe(uri)
        experiment_id = ensure_experiment(uri, experiment)
        client = _client(uri)
        id_file = results_dir / SUMMARY_RUN_ID_FILE
        run_id = id_file.read_text().strip() if id_file.exists() else ""
        if run_id:
            try:
                _with_lock_retry(client.update_run, run_id, status="RUNNING")
            except Exception as err:
                if "RESOURCE_DOES_NOT_EXIST" not in str(err) and "not found" not in str(err).lower():
                    raise
                run_id = ""
        if not run_id:
            run = _with_lock_retry(client.create_run, experiment_id, run_name="summary",
                                   tags={RUN_KIND_TAG: "summary", "git_sha": git_sha(),
                                         "results_dir": str(results_dir.resolve())})
            run_id = run.info.run_id
            id_file.write_text(run_id + "\n")
        report = results_dir / "REPORT.md"
        if report.exists():
            _with_lock_retry(client.log_artifact, run_id, str(report))
        for folder in ("figures", "tables"):
            for path in sorted(p for p in (results_dir / folder).rglob("*") if p.is_file()):
                sub = path.parent.relative_to(results_dir).as_posix()
                _with_lock_retry(client.log_artifact, run_id, str(path), sub)
        _with_lock_retry(client.set_terminated, run_id, "FINISHED")
        return run_id
    except Exception as err:  # noqa: BLE001 - tracking never fails a job
        log.warning("summary of %s not logged to MLflow at %s: %s: %s", results_dir, uri, type(err).__name__, err)
        return None


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
    ex.add_argument("--id-file", type=Path, default=None, help="write the experiment id (empty if MLflow failed) here")
    evs = sub.add_parser("log-evals", help="log every evaluation of one run to its MLflow run, in one process")
    evs.add_argument("--run-dir", required=True, type=Path)
    evs.add_argument("--eval", dest="evals", action="append", default=[], metavar="BENCHMARK:STEP",
                     help="an evaluation in RUN_DIR/eval/BENCHMARK/stepSTEP (repeat for each)")
    sm = sub.add_parser("log-summary", help="log REPORT.md, figures and tables to the results folder's summary run")
    sm.add_argument("--results-dir", required=True, type=Path)
    sm.add_argument("--experiment", required=True)
    sm.add_argument("--uri", default=None, help="tracking URI; default sqlite:///<results-dir>/mlflow.db")
    ui = sub.add_parser("ui-url", help="print the UI link of a results folder's experiment (its runs table)")
    ui.add_argument("--results-dir", required=True, type=Path)
    ui.add_argument("--base", default="http://127.0.0.1:5000", help="the UI's http://HOST:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "ui-url":
        print(results_ui_url(args.results_dir, args.base))
        return 0
    if args.command == "ensure-experiment":
        uri = args.uri or store_uri(Path(args.results_dir).resolve())
        experiment_id = ""
        try:
            experiment_id = ensure_experiment(uri, args.experiment)
            print(f"experiment {args.experiment!r}: id {experiment_id} at {uri}")
        except Exception as err:  # noqa: BLE001 - tracking never fails a job
            log.warning("could not create MLflow experiment %r at %s: %s: %s", args.experiment, uri,
                        type(err).__name__, err)
        if args.id_file is not None:
            args.id_file.write_text(f"{experiment_id}\n")
        return 0
    if args.command == "log-evals":
        try:
            evals = [(b, int(s)) for b, s in (e.rsplit(":", 1) for e in args.evals)]
        except ValueError:
            parser.error(f"--eval takes BENCHMARK:STEP, got {args.evals}")
        logged = log_evals(args.run_dir, evals)
        print(f"log-evals {args.run_dir}: {logged} of {len(evals)} evaluations logged")
        return 0  # tracking never fails the job
    if args.command == "log-summary":
        run_id = log_summary(args.results_dir, args.experiment, args.uri)
        print(f"log-summary {args.results_dir}: " + (f"run {run_id}" if run_id else "not logged (see warning)"))
        return 0
    logged = log_eval(args.run_dir, args.eval_dir, args.benchmark, args.step)
    print(f"log-eval {args.benchmark} step {args.step}: {'logged' if logged else 'not logged (see warning)'}")
    return 0  # tracking never fails the job


if __name__ == "__main__":
    sys.exit(main())
