"""The results folder's layout, in one place (documented for users in results/README.md).

    {results}/runs/{model}/{algo}/seed{seed}/     one training run; `algo` is an algorithm id, or a sweep
                                                  arm `{algo}/{param}-{value}` (lens.config.sweep_arm)
        config.yaml, done, train_metrics.parquet, rollouts.parquet, checkpoints/ (lens.train)
        eval/{benchmark}/step{step}/             samples.parquet, summary.json (lens.evaluate)
    {results}/start/{model}/seed{seed}/           the starting model, evaluated once per model x seed
    {results}/models/{model}/warmup|standin/      starting checkpoints built by the workflow
    {results}/tidy|tables|figures/{scope}         the analysis; scope "" (main), "ablations/", "sweeps/"
    {results}/mlflow.db, mlartifacts/             the default MLflow store (lens.tracking.store_uri)

The patterns below are both `str.format` templates and Snakemake wildcard patterns: the workflow
names its files with them (workflow/rules/common.smk), and the modules that read results back
(analysis.collect, lens.tracking) scan with the functions below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lens.config import RunConfig

RUN = "runs/{model}/{algo}/seed{seed}"
START = "start/{model}/seed{seed}"
EVAL = "eval/{benchmark}/step{step}"  # below a run's or a start's directory
MODEL = "models/{model}"

# File names: a run directory's (lens.train; RUN_ID_FILE lens.tracking's), an evaluation directory's
# (lens.evaluate), the results folder's own, and the tidy tables' (analysis.collect).
RUN_CONFIG_FILE = "config.yaml"
DONE_FILE = "done"
CHECKPOINTS = "checkpoints"
INPUTS_STAMP = "inputs.sha256"  # in CHECKPOINTS: the hashes of the inputs they were trained from (train.smk)
METRICS_FILE = "train_metrics.parquet"
ROLLOUTS_FILE = "rollouts.parquet"
ROLLOUT_PARTS = "rollouts"  # per-step parts of ROLLOUTS_FILE while a run trains
DATA_REPORT_FILE = "data_report.json"
RUN_ID_FILE = "mlflow_run_id"
SAMPLES_FILE = "samples.parquet"
SUMMARY_FILE = "summary.json"
SUMMARY_RUN_ID_FILE = "mlflow_summary_run_id"
TRAIN_FILE = "train_metrics.parquet"
EVAL_FILE = "eval_samples.parquet"
NEGATIVE_FILE = "negative_samples.parquet"
PAIRING_FILE = "seed_pairing.csv"
# Markers of the workflow: a run's evaluations logged to its MLflow run, the results folder's summary run logged.
EVALS_LOGGED = "eval/mlflow_logged"
SUMMARY_LOGGED = "mlflow_summary_logged"

_SEED_DIR = re.compile(r"^seed(\d+)$")
_STEP_DIR = re.compile(r"^step(\d+)$")


def run_dir(results: str | Path, model: str, algo: str, seed: int | str) -> str:
    return f"{results}/{RUN.format(model=model, algo=algo, seed=seed)}"


def start_dir(results: str | Path, model: str, seed: int | str) -> str:
    return f"{results}/{START.format(model=model, seed=seed)}"


def eval_dir(run: str | Path, benchmark: str, step: int | str) -> str:
    return f"{run}/{EVAL.format(benchmark=benchmark, step=step)}"


def results_root(run: str | Path) -> Path:
    """The results folder above a run directory (the one holding `runs/`); else the run directory."""
    run = Path(run).resolve()
    for parent in (run, *run.parents):
        if parent.name == "runs" and parent.parent != parent:
            return parent.parent
    return run


def runs_of_tidy(tidy: str | Path) -> Path:
    """The `runs` folder beside the `tidy` folder at or above `tidy` (tidy/ablations -> runs)."""
    tidy = Path(tidy).resolve()
    for folder in (tidy, *tidy.parents):
        if folder.name == "tidy":
            return folder.parent / "runs"
    return tidy.parent / "runs"


def run_dirs(runs: str | Path, sweeps: bool = False) -> list[tuple[str, str, int, Path]]:
    """(model, algo, seed, path) of every run under `runs`, sorted; with `sweeps` also the sweep runs
    ({model}/{algo}/{param}-{value}/seed{seed}), their algo being the arm `{algo}/{param}-{value}`."""
    from lens.config import parse_sweep_arm

    runs, found = Path(runs), []
    for seed_dir in runs.glob("*/*/seed*"):
        match = _SEED_DIR.match(seed_dir.name)
        if match and seed_dir.is_dir():
            found.append((seed_dir.parent.parent.name, seed_dir.parent.name, int(match.group(1)), seed_dir))
    for seed_dir in runs.glob("*/*/*/seed*") if sweeps else ():
        match = _SEED_DIR.match(seed_dir.name)
        arm = f"{seed_dir.parent.parent.name}/{seed_dir.parent.name}"
        if match and seed_dir.is_dir() and parse_sweep_arm(arm) is not None:
            found.append((seed_dir.parent.parent.parent.name, arm, int(match.group(1)), seed_dir))
    return sorted(found, key=lambda r: r[:3])


def eval_files(run: str | Path, name: str = SAMPLES_FILE) -> list[tuple[str, int, Path]]:
    """(benchmark, step, path) of every evaluation file `name` of one run, sorted."""
    found = []
    for path in sorted((Path(run) / "eval").glob(f"*/step*/{name}")):
        match = _STEP_DIR.match(path.parent.name)
        if match:
            found.append((path.parent.parent.name, int(match.group(1)), path))
    return found


def checkpoint_path(run_dir: str | Path, step: int, cfg: "RunConfig") -> Path:
    """Hugging Face model directory of rollout step `step` (0: the starting model).

    Rollout step S > 0 lives in `checkpoints/checkpoint-{S * updates_per_rollout}` (TRL counts
    optimizer updates). Only steps that are saved are valid: multiples of training.save_every and
    the final step; anything else raises ValueError.
    """
    t = cfg.training
    if step == 0:
        if cfg.model.path is not None:
            return Path(cfg.model.path)
        return Path(run_dir) / CHECKPOINTS / "checkpoint-0"
    if not 0 < step <= t.rollout_steps or (step % t.save_every and step != t.rollout_steps):
        raise ValueError(f"rollout step {step} has no checkpoint: saved are multiples of training.save_every "
                         f"({t.save_every}) up to {t.rollout_steps}, and {t.rollout_steps}")
    return Path(run_dir) / CHECKPOINTS / f"checkpoint-{step * t.updates_per_rollout}"
