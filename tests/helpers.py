"""What several test modules share (fixtures live in conftest.py): paths, the offline environment of the
subprocesses tests start, Snakemake runs, tiny `lens.train` runs, the hand-chosen result sets the analysis
tests read, and the allow-list matching of the config overlays.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis import collect
from lens.config import RunConfig, parse, write_run_config

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PAPER = REPO / "config" / "paper.yaml"
# Nothing reaches the network: each hub miss would otherwise wait ~34 s. conftest.py sets these for the pytest
# process, before transformers, datasets or huggingface_hub is imported; subprocess_env passes them on.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess: this one's, offline, with this interpreter's bin directory first on PATH
    (Snakemake's jobs run `python`, `lens-*`), plus `extra`."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, **OFFLINE, "PATH": path, **extra}


def load_script(path: Path) -> types.ModuleType:
    """A script that is not part of an installed package (benchmarks/), imported from its file."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def snakemake(cwd: Path, *args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m snakemake ARGS` in `cwd` (REPO, or a copy of the workflow), output captured."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=subprocess_env(**(env or {})),
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# Tiny `lens.train` runs in subprocesses (test_train, test_multiprocess, test_dynamic, test_engine)
# --------------------------------------------------------------------------------------------
PROBLEMS = [{"id": f"s{i}", "problem": f"What is {a} + {b}?", "answer": str(a + b), "level": 1 + i % 5,
             "subject": "addition", "source": "test"} for i, (a, b) in enumerate((i % 7, i % 5) for i in range(12))]


def tiny_cfg(tmp_path: Path, problems: list[dict] | None = None, **training) -> RunConfig:
    """A tiny LENS run on `problems` (default PROBLEMS), written to tmp_path/data/train.jsonl."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    (data_dir / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems or PROBLEMS))
    return parse(RunConfig, {
        "model": {"name": "tiny", "prompt": "chat",
                  "tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
        "algorithm": {"name": "lens"},
        "seed": 0,
        "data": {"train": [{"name": "synthetic", "path": str(data_dir), "split": "train"}]},
        "training": {"prompts_per_rollout": 2, "num_generations": 4, "updates_per_rollout": 2,
                     "prompts_per_update": 1, "rollout_steps": 8, "save_every": 2, "max_new_tokens": 8,
                     "max_prompt_tokens": 256, "learning_rate": 1e-3, "torch_threads": 1, **training},
        "tracking": {"experiment": "resume-test"},
    })


def mlflow_template(tmp_path_factory) -> Path:
    """An initialised empty MLflow SQLite database, built once per session (its migrations take ~10-20 s);
    tests copy it rather than migrate a new store each."""
    template = tmp_path_factory.getbasetemp() / "mlflow-template" / "mlflow.db"
    if not template.exists():
        from mlflow.tracking import MlflowClient

        template.parent.mkdir(parents=True, exist_ok=True)
        MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    return template


@dataclass(frozen=True)
class TinyRun:
    """A run directory laid out as the workflow lays it out (results/runs/...), ready for lens.train."""

    results: Path  # holds mlflow.db
    run_dir: Path
    env: dict[str, str]

    def train_args(self, target: str = "lens.train") -> list[str]:
        """`-m MODULE --config ... --out ...` (or `SCRIPT.py --config ...`), for `python` or a launcher."""
        program = [target] if target.endswith(".py") else ["-m", target]
        return [*program, "--config", str(self.run_dir / "config.yaml"), "--out", str(self.run_dir)]

    def python(self, target: str = "lens.train") -> list[str]:
        """One process: `python -m lens.train ...`."""
        return [sys.executable, *self.train_args(target)]

    def torchrun(self, nproc: int = 2, target: str = "lens.train") -> list[str]:
        """`nproc` processes on this machine (gloo on a CPU), rendezvous on a free port."""
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
                str(free_port()), *self.train_args(target)]


def tiny_run(tmp_path: Path, tmp_path_factory, cfg: RunConfig, name: str = "results") -> TinyRun:
    """tmp_path/NAME/runs/tiny/lens/seed0 with its config, and NAME/mlflow.db copied from the template."""
    results = tmp_path / name
    run_dir = results / "runs" / "tiny" / "lens" / "seed0"
    run_dir.mkdir(parents=True)
    shutil.copy(mlflow_template(tmp_path_factory), results / "mlflow.db")
    write_run_config(cfg, run_dir / "config.yaml")
    # One thread per process (2 shared cores), quiet logs.
    return TinyRun(results, run_dir, subprocess_env(OMP_NUM_THREADS="1", LOGLEVEL="WARNING"))


def free_port() -> int:
    """A port free now, for a rendezvous (torchrun does not accept port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# The known result set: run directories with hand-chosen values, which the collect, figure, table
# and report tests read
# --------------------------------------------------------------------------------------------
MODEL = "llama31_8b_instruct"  # a model the paper reports, so tables print its numbers beside ours
BENCH = "math500"
# problem id -> (level, subject)
KNOWN_PROBLEMS = {"p1": (1, "Algebra"), "p2": (4, "Geometry"), "p3": (5, "Number Theory")}
# Correctness of the 4 samples per problem at the final step 10: algo -> seed -> problem -> samples.
FINAL = {
    "grpo": {0: {"p1": [1, 1, 1, 1], "p2": [1, 0, 0, 0], "p3": [0, 0, 0, 0]},
             1: {"p1": [1, 1, 1, 0], "p2": [0, 0, 0, 0], "p3": [0, 0, 0, 0]}},
    "lens": {0: {"p1": [1, 1, 1, 1], "p2": [1, 1, 0, 0], "p3": [1, 0, 0, 0]},
             1: {"p1": [1, 1, 1, 1], "p2": [1, 0, 0, 0], "p3": [0, 0, 0, 0]}},
}
# Step 0 is the shared starting model: 2 of 4 right on p1, nothing on p2 and p3.
START = {"p1": [1, 0, 1, 0], "p2": [0, 0, 0, 0], "p3": [0, 0, 0, 0]}
# groups/all_wrong_frac at rollout steps 1..4: algo -> seed -> values.
ALL_WRONG = {"grpo": {0: [0.5, 0.4, 0.3, 0.2], 1: [0.7, 0.6, 0.5, 0.4]},
             "lens": {0: [0.5, 0.5, 0.5, 0.5], 1: [0.3, 0.3, 0.3, 0.3]}}
# Per-step advantage metrics of LENS (constant over steps and seeds); GRPO's delta is 0 by definition.
LENS_ADV = {"adv/grpo_abs_mean/mixed": 0.8, "adv/delta_vs_grpo/mixed": 0.04,
            "adv/grpo_abs_mean/all_wrong": 0.0, "adv/delta_vs_grpo/all_wrong": 0.02,
            "adv/grpo_abs_mean/all_correct": 0.0, "adv/delta_vs_grpo/all_correct": 0.0}


def _samples(correct: dict[str, list[int]]) -> pd.DataFrame:
    rows = []
    for pid, flags in correct.items():
        level, subject = KNOWN_PROBLEMS[pid]
        for i, c in enumerate(flags):
            rows.append({"problem_id": pid, "level": level, "subject": subject, "sample_idx": i,
                         "completion_tokens": 10 + i, "finish_reason": "stop", "correct": bool(c)})
    return pd.DataFrame(rows)


def write_known_runs(runs: Path, algos=("grpo", "lens")) -> Path:
    """results/runs/{MODEL}/{algo}/seed{s}/ with the hand-chosen values above."""
    for algo in algos:
        for seed in (0, 1):
            run = runs / MODEL / algo / f"seed{seed}"
            for step, correct in ((0, START), (10, FINAL[algo][seed])):
                d = run / "eval" / BENCH / f"step{step}"
                d.mkdir(parents=True)
                _samples(correct).to_parquet(d / "samples.parquet")
            rows = [{"step": i + 1, "metric": "groups/all_wrong_frac", "value": v}
                    for i, v in enumerate(ALL_WRONG[algo][seed])]
            for metric, value in LENS_ADV.items():
                if algo == "grpo" and "delta_vs_grpo" in metric:
                    value = 0.0
                rows += [{"step": s, "metric": metric, "value": value} for s in (1, 2, 3, 4)]
            pd.DataFrame(rows).to_parquet(run / "train_metrics.parquet")
    return runs


def write_known_tidy(tmp_path: Path, algos=("grpo", "lens")) -> Path:
    """The known runs under tmp_path/runs, collected into tmp_path/tidy."""
    runs = write_known_runs(tmp_path / "runs", algos)
    collect.collect(runs, tmp_path / "tidy")
    return tmp_path / "tidy"


MATH_DAPO = [{"name": "math", "path": "EleutherAI/hendrycks_math", "split": "train"},
             {"name": "dapo", "path": "BytedTsinghua-SIA/DAPO-Math-17k", "split": "train"}]
MATH_NUMINA = [{"name": "math", "path": "../shared/data/math", "split": "train"},
               {"name": "numina", "path": "AI-MO/NuminaMath-1.5", "split": "train"}]


def run_figure(module, tidy: Path, out: Path, *args: str) -> pd.DataFrame:
    """A figure script's main() on `tidy`: its PNG, PDF and CSV written, the CSV read back."""
    return _run_analysis(module, tidy, out, args, ("png", "pdf", "csv"))


def run_table(module, tidy: Path, out: Path, *args: str) -> pd.DataFrame:
    """A table script's main() on `tidy` (300 bootstrap samples): its Markdown, LaTeX and CSV written, the CSV
    read back."""
    return _run_analysis(module, tidy, out, ("--bootstrap-samples", "300", *args), ("md", "tex", "csv"))


def _run_analysis(module, tidy: Path, out: Path, args, formats) -> pd.DataFrame:
    assert module.main(["--tidy", str(tidy), "--out", str(out), *args]) == 0
    for ext in formats:
        assert (out / f"{module.NAME}.{ext}").stat().st_size > 0
    return pd.read_csv(out / f"{module.NAME}.csv", dtype={"level": str, "subset": str})


def write_run_configs(runs: Path, tidy: Path, train: list[dict]) -> Path:
    """A resolved run config (its `data` section is all the tables read) for every run of the tidy tables."""
    samples = pd.read_parquet(tidy / "eval_samples.parquet")
    for model, algo, seed in samples[["model", "algo", "seed"]].drop_duplicates().itertuples(index=False):
        run = runs / model / algo / f"seed{seed}"
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": model, "path": "x"},
                                                         "algorithm": {"name": algo},
                                                         "seed": int(seed), "data": {"train": train}}))
    return runs


# --------------------------------------------------------------------------------------------
# Sensitivity (target `sweeps`): hand-made tidy tables of GRPO's main runs and two alpha values
# --------------------------------------------------------------------------------------------
# Correct answers of the 2 samples per problem at the final step 10: arm -> seed -> problem -> samples.
SWEPT = {
    "grpo": {0: {"p1": [1, 1], "p2": [0, 0], "p3": [0, 0]}, 1: {"p1": [1, 0], "p2": [0, 0], "p3": [0, 0]}},
    "lens/alpha-1": {0: {"p1": [1, 1], "p2": [1, 0], "p3": [0, 0]}, 1: {"p1": [1, 1], "p2": [0, 0], "p3": [0, 0]}},
    "lens/alpha-4": {0: {"p1": [1, 1], "p2": [1, 1], "p3": [1, 0]}, 1: {"p1": [1, 1], "p2": [1, 0], "p3": [0, 0]}},
}
LEVELS = {"p1": 1, "p2": 4, "p3": 5}
# (arm, seed) -> per step 1, 2: (mixed share, mean |A - A_GRPO| over mixed groups); all-wrong groups
# are half of every step with a change of 0.2 (alpha 4), 0.05 (alpha 1), 0 (GRPO).
MIXED = {("lens/alpha-4", 0): ((0.5, 0.10), (0.25, 0.04)), ("lens/alpha-4", 1): ((0.25, 0.02), (0.0, 0.5)),
         ("lens/alpha-1", 0): ((0.5, 0.01), (0.5, 0.01)), ("lens/alpha-1", 1): ((0.5, 0.01), (0.5, 0.01)),
         ("grpo", 0): ((0.5, 0.0), (0.5, 0.0)), ("grpo", 1): ((0.5, 0.0), (0.5, 0.0))}
ALL_WRONG_DELTA = {"grpo": 0.0, "lens/alpha-1": 0.05, "lens/alpha-4": 0.2}


def write_sweep_tidy(tidy: Path) -> Path:
    evals, train = [], []
    for arm, seeds in SWEPT.items():
        for seed, problems in seeds.items():
            for pid, flags in problems.items():
                evals += [{"model": MODEL, "algo": arm, "seed": seed, "step": 10, "benchmark": "math500",
                           "problem_id": pid, "level": LEVELS[pid], "subject": "Algebra", "sample_idx": i,
                           "correct": bool(c), "completion_tokens": 5} for i, c in enumerate(flags)]
            for step, (share, delta) in enumerate(MIXED[arm, seed], start=1):
                for metric, value in (("groups/mixed_frac", share), ("adv/grpo_abs_mean/mixed", 1.0),
                                      ("adv/delta_vs_grpo/mixed", delta), ("groups/all_wrong_frac", 0.5),
                                      ("adv/grpo_abs_mean/all_wrong", 0.0),
                                      ("adv/delta_vs_grpo/all_wrong", ALL_WRONG_DELTA[arm])):
                    train.append({"model": MODEL, "algo": arm, "seed": seed, "step": step, "metric": metric,
                                  "value": value})
    tidy.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(evals).to_parquet(tidy / collect.EVAL_FILE)
    pd.DataFrame(train).to_parquet(tidy / collect.TRAIN_FILE)
    return tidy


# --------------------------------------------------------------------------------------------
# Config overlays (paper-rehearsal.yaml, paper-numina.yaml): which keys they change
# --------------------------------------------------------------------------------------------
def leaves(node, prefix=""):
    """{dotted.path[i]: value} of every scalar (or empty container) in a YAML tree."""
    if isinstance(node, dict) and node:
        out = {}
        for key, value in node.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(node, list) and node and any(isinstance(v, (dict, list)) for v in node):
        out = {}
        for i, value in enumerate(node):
            out.update(leaves(value, f"{prefix}[{i}]"))
        return out
    return {prefix: node}


def pattern_of(path: str) -> str:
    """models.qwen25_3b.model.path -> models.*.model.path; data.train[1].path -> data.train[*].path."""
    parts = path.replace("[", ".[").split(".")
    if parts[0] == "models" and len(parts) > 1:
        parts[1] = "*"
    return ".".join(p if not p.startswith("[") else "[*]" for p in parts).replace(".[", "[")


def allowed_by(key: str, allowed: str) -> bool:
    """Shell-style match of a key's pattern against an allow-list entry (`[*]`: any list index)."""
    return fnmatch.fnmatchcase(pattern_of(key).replace("[*]", "<i>"), allowed.replace("[*]", "<i>"))
