"""Where the embedded reproduction's time goes: job start-up, one RL step, one evaluation, the DAG.

    python benchmarks/bench_embedded.py startup [--reps 3]
    python benchmarks/bench_embedded.py rl-step --config RESULTS/runs/tiny_llama/grpo/seed0/config.yaml [--steps 10]
    python benchmarks/bench_embedded.py eval --config RESULTS/runs/tiny_llama/grpo/seed0/config.yaml \
        --checkpoint RESULTS/models/tiny_llama/warmup [--n-samples 16]
    python benchmarks/bench_embedded.py timeline [.snakemake/log/LATEST.snakemake.log]

- `startup`: wall seconds of a fresh interpreter importing what each kind of job imports
  (`python -c pass`, torch, transformers, TRL, MLflow, the evaluation and analysis modules): the
  fixed price of one Snakemake job before it does any work.
- `rl-step`: runs lens.train on a copy of a resolved run config (in a temporary run directory,
  `rollout_steps` replaced by `--steps`) with timers wrapped around the trainer's parts: sampling
  (`_generate`), grading (`_calculate_rewards`), log-probs without gradient (the old policy's,
  before the updates) and with gradient (the loss's forward pass), backward, checkpoint saving and
  MLflow logging; "TRL/Trainer rest" is the training loop's time minus all of these (optimizer
  step, batching, LENS's advantage code, bookkeeping). Per rollout step, the first one excluded.
- `eval`: lens.evaluate on one checkpoint with timers on model loading, sampling, grading and
  writing the result files.
- `timeline`: per rule, jobs, summed and mean wall seconds from a Snakemake log, and the DAG's
  elapsed time (first job start to last job end).
Times are wall seconds on whatever else the machine is doing: the load average is printed with
every result; measure on an idle machine.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]

IMPORTS = {  # what a job of each kind imports before it works
    "python -c pass": "pass",
    "numpy + pandas + pyarrow": "import numpy, pandas, pyarrow.parquet",
    "torch": "import torch",
    "transformers (model classes)": "import torch, transformers; from transformers import AutoModelForCausalLM",
    "math_verify": "import math_verify",
    "mlflow": "import mlflow",
    "lens.evaluate job": "import lens.evaluate, lens.rewards, analysis.stats, transformers; "
                         "from transformers import AutoModelForCausalLM",
    "lens.train job (trl, datasets, mlflow)": "import lens.train, lens.trainer, lens.tracking, trl, datasets, mlflow; "
                                              "from trl import GRPOConfig, GRPOTrainer",
    "analysis figure job (matplotlib)": "import analysis.fig_training_curves",
}


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


# --------------------------------------------------------------------------------------------
# Job start-up
# --------------------------------------------------------------------------------------------
def startup(reps: int) -> dict:
    out = {}
    for name, code in IMPORTS.items():
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times), 2)
        print(f"{name:45s} {out[name]:6.2f} s (median of {reps})", flush=True)
    return out


# --------------------------------------------------------------------------------------------
# Timers wrapped around methods
# --------------------------------------------------------------------------------------------
class Timers:
    def __init__(self):
        self.total = collections.defaultdict(float)
        self.cpu = collections.defaultdict(float)  # this process's CPU seconds (all its threads)
        self.calls = collections.Counter()
        self._depth = 0

    def wrap(self, owner, name: str, label, *, method: bool = True):
        """Replace owner.name by a timed version; `label` is a string or a function of the call."""
        original = getattr(owner, name)
        timers = self

        def timed(*args, **kwargs):
            key = label(*args, **kwargs) if callable(label) else label
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                timers.total[key] += time.perf_counter() - t0
                timers.cpu[key] += time.process_time() - c0
                timers.calls[key] += 1

        setattr(owner, name, timed)
        return original


def rl_step(config: Path, steps: int) -> dict:
    import torch

    import lens.train as lt
    from lens import tracking
    from lens.config import load_run_config
    from lens.trainer import LensGRPOTrainer

    cfg = load_run_config(config)
    t = cfg.training
    cfg = dataclasses.replace(cfg, training=dataclasses.replace(t, rollout_steps=steps, save_every=steps))
    timers = Timers()
    timers.wrap(LensGRPOTrainer, "_generate", "sampling")
    timers.wrap(LensGRPOTrainer, "_calculate_rewards", "grading")
    timers.wrap(LensGRPOTrainer, "_get_per_token_logps_and_entropies",
                lambda *a, **k: ("log-probs, loss forward" if torch.is_grad_enabled()
                                 else "log-probs, old policy (no grad)"))
    import accelerate

    timers.wrap(accelerate.Accelerator, "backward", "backward")
    timers.wrap(LensGRPOTrainer, "_save_checkpoint", "checkpoint save")
    timers.wrap(tracking.RunTracker, "log_metrics", "MLflow per-step logging")
    timers.wrap(tracking.RunTracker, "start", "MLflow run start")
    timers.wrap(LensGRPOTrainer, "train", "training loop (trainer.train)")
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        lt.train(cfg, tmp)
        job, cpu = time.perf_counter() - t0, time.process_time() - c0
    loop = timers.total["training loop (trainer.train)"]
    parts = ["sampling", "grading", "log-probs, old policy (no grad)", "log-probs, loss forward", "backward",
             "checkpoint save", "MLflow per-step logging"]
    rest = loop - sum(timers.total[p] for p in parts)
    per_step = {p: timers.total[p] / steps for p in parts}
    per_step["TRL/Trainer rest (optimizer, batching, advantages, bookkeeping)"] = rest / steps
    cpu_loop = timers.cpu["training loop (trainer.train)"]
    cpu_per_step = {p: timers.cpu[p] / steps for p in parts}
    cpu_per_step["TRL/Trainer rest (optimizer, batching, advantages, bookkeeping)"] = \
        (cpu_loop - sum(timers.cpu[p] for p in parts)) / steps
    result = {
        "config": str(config), "rollout_steps": steps,
        "completions_per_step": t.prompts_per_rollout * t.num_generations,
        "seconds_per_rollout_step": {k: round(v, 3) for k, v in per_step.items()},
        "rollout_step_total_s": round(loop / steps, 3),
        "cpu_seconds_per_rollout_step": {k: round(v, 3) for k, v in cpu_per_step.items()},
        "rollout_step_cpu_s": round(cpu_loop / steps, 3),
        "setup_outside_loop_s": round(job - loop, 2),
        "job_cpu_s": round(cpu, 1), "job_wall_s": round(job, 1),
        "mlflow_run_start_s": round(timers.total["MLflow run start"], 2),
        "calls": dict(timers.calls), "load": load_average(),
    }
    return result


def evaluation(config: Path, checkpoint: str, n_samples: int | None) -> dict:
    import lens.evaluate as le
    import lens.rewards as lr
    from lens.config import load_run_config

    cfg = load_run_config(config)
    if n_samples:
        cfg = dataclasses.replace(cfg, evaluation=dataclasses.replace(cfg.evaluation, n_samples=n_samples))
    timers = Timers()
    timers.wrap(le.TransformersSampler, "__init__", "model load")
    timers.wrap(le.TransformersSampler, "sample", "sampling")
    timers.wrap(lr, "grade_batch", "grading")
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        summaries = le.run(cfg, Path(tmp), checkpoint=checkpoint)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    parts = {k: round(v, 2) for k, v in timers.total.items()}
    parts["writing, summaries, rest"] = round(total - sum(timers.total.values()), 2)
    return {"checkpoint": checkpoint, "n_samples": cfg.evaluation.n_samples,
            "problems": {b: s["n_problems"] for b, s in summaries.items()},
            "tokens_mean": {b: s.get("completion_tokens/mean") for b, s in summaries.items()},
            "seconds": parts, "total_s": round(total, 2), "cpu_s_main_process": round(cpu, 1), "load": load_average()}


# --------------------------------------------------------------------------------------------
# Snakemake log
# --------------------------------------------------------------------------------------------
_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_START = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_DONE = re.compile(r"^Finished jobid: (\d+)(?: \(Rule: (\w+)\))?")


def timeline(log: Path) -> dict:
    stamp = None
    starts, rules, ends = {}, {}, {}
    pending_rule = None
    for line in log.read_text().splitlines():
        if m := _STAMP.match(line.strip()):
            stamp = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := _START.match(line.strip()):
            pending_rule = (m.group(1), stamp)
        elif (m := _JOBID.match(line)) and pending_rule:
            rules[m.group(1)], starts[m.group(1)] = pending_rule
            pending_rule = None
        elif m := _DONE.match(line.strip()):
            ends[m.group(1)] = stamp
    per_rule = collections.defaultdict(list)
    for job, start in starts.items():
        if job in ends:
            per_rule[rules[job]].append((ends[job] - start).total_seconds())
    elapsed = (max(ends.values()) - min(starts.values())).total_seconds() if ends else 0.0
    table = {r: {"jobs": len(v), "sum_s": sum(v), "mean_s": round(sum(v) / len(v), 1)}
             for r, v in sorted(per_rule.items(), key=lambda kv: -sum(kv[1]))}
    for r, v in table.items():
        print(f"{r:20s} {v['jobs']:3d} jobs  {v['sum_s']:7.0f} s  mean {v['mean_s']:6.1f} s")
    print(f"elapsed (first start to last end): {elapsed:.0f} s; jobs {sum(len(v) for v in per_rule.values())}")
    return {"per_rule": table, "elapsed_s": elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("startup")
    p.add_argument("--reps", type=int, default=3)
    p = sub.add_parser("rl-step")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--steps", type=int, default=10)
    p = sub.add_parser("eval")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--n-samples", type=int, default=None)
    p = sub.add_parser("timeline")
    p.add_argument("log", type=Path, nargs="?")
    for p in sub.choices.values():
        p.add_argument("--threads", type=int, default=1, help="torch threads (the jobs use 1)")
        p.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.cmd in ("rl-step", "eval"):
        import torch

        torch.set_num_threads(args.threads)
    print(load_average(), flush=True)
    if args.cmd == "startup":
        result = startup(args.reps)
    elif args.cmd == "rl-step":
        result = rl_step(args.config, args.steps)
    elif args.cmd == "eval":
        result = evaluation(args.config, args.checkpoint, args.n_samples)
    else:
        log = args.log or max((ROOT / ".snakemake" / "log").glob("*.snakemake.log"), key=os.path.getmtime)
        result = timeline(log)
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
