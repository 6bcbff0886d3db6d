"""Setup shared by the tests that run `lens.train` in subprocesses (tests/test_train.py,
tests/test_multiprocess.py; tests/test_engine.py through test_train): a tiny run config, a run
directory with its MLflow database, the subprocess environment, and torchrun commands on a free port.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from lens.config import RunConfig, parse, write_run_config

REPO = Path(__file__).resolve().parents[1]
PROBLEMS = [{"id": f"s{i}", "problem": f"What is {a} + {b}?", "answer": str(a + b), "level": 1 + i % 5,
             "subject": "addition", "source": "test"} for i, (a, b) in enumerate((i % 7, i % 5) for i in range(12))]
# Offline (each hub miss would wait ~34 s), one thread per process (2 shared cores), quiet logs.
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "LOGLEVEL": "WARNING"}


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
    return TinyRun(results, run_dir, {**os.environ, **ENV})


def free_port() -> int:
    """A port free now, for a rendezvous (torchrun does not accept port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
