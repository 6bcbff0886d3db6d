"""GPU jobs of the real workflow on the SLURM test cluster, whose node offers 4 stand-in GPUs as GRES
(tests/cluster/slurm_cluster.sh): each GPU job is submitted with --gpus=N --nodes=1 (profiles/slurm-local)
and holds the devices SLURM gave it (CUDA_VISIBLE_DEVICES, logged by lens.devices); jobs running at once
hold disjoint devices, all on the one node. The SLURM counterpart of tests/test_workflow.py's
test_concurrent_gpu_jobs_of_the_workflow_hold_disjoint_devices.

    make test-cluster        (or: python -m pytest -m cluster tests/cluster/test_slurm_gpus.py)
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

import pytest
import yaml
from engines import ARTIFACTS
from helpers import REPO, subprocess_env

pytestmark = pytest.mark.cluster
PROFILE = "profiles/slurm-local"
ARMS = ("grpo", "lens")
SEEDS = (0,)  # 2 training jobs and 1 step-0 evaluation, at most 2 at once on the 2-CPU node
GPU_RULES = {"train", "evaluate", "evaluate_final", "evaluate_start"}
NODE_GPUS = {"0", "1", "2", "3"}  # gres.conf of slurm_cluster.sh: gpu:4
# lens.devices' lines in a job's log (its stderr goes to the rule's log file).
SLURM_LINE = re.compile(r"lens\.devices: SLURM job (\d+) on (\S+):")
HOLD = re.compile(r"lens\.devices: pid (\d+) (holds|released) CUDA_VISIBLE_DEVICES=([\d,]*) at ([\d.]+)")
SBATCH = re.compile(r"sbatch call: (sbatch .*)")


def _config() -> dict:
    """The embedded config shrunk to 2 arms x 1 seed of a few steps, its model asking for 1 GPU (it still
    computes on the CPU: the GPUs are stand-ins) so that training and step-0 evaluations are GPU jobs;
    tracking on the default SQLite store (results/mlflow.db), no server."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["tiny_llama"]["model"]["tiny"].update(hidden_size=16, num_layers=1, num_heads=2,
                                                        intermediate_size=32)
    cfg["models"]["tiny_llama"]["gpus"] = 1
    cfg["algorithms"], cfg["seeds"] = list(ARMS), list(SEEDS)
    cfg["training"].update(prompts_per_rollout=2, num_generations=4, updates_per_rollout=1, prompts_per_update=2,
                           rollout_steps=3, save_every=3, max_new_tokens=16)
    cfg["evaluation"].update(every=3, n_samples=2, intermediate_n_samples=None, pass_k=[1, 2], max_new_tokens=8)
    cfg["synthetic"].update(train_per_level=20, test_per_level=2, rl_per_level=[2, 2, 2, 2, 2])
    cfg["warmup"].update(steps=4, batch_size=4, warmup_steps=1, torch_threads=1)
    return cfg


@pytest.fixture(scope="module")
def gpu_run(slurm, tmp_path_factory):
    """The 4 training runs and the 2 step-0 evaluations through SLURM (--verbose: the plugin logs each
    sbatch call). Returns the workdir and snakemake's output."""
    workdir = tmp_path_factory.mktemp("slurm-gpus")
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / name
        (shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy(src, workdir / name))
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(_config(), sort_keys=False))
    targets = [f"results/runs/tiny_llama/{a}/seed{s}/done" for a in ARMS for s in SEEDS]
    targets += [f"results/start/tiny_llama/seed{s}/eval/synthetic_test/step0/samples.parquet" for s in SEEDS]
    env = subprocess_env(SLURM_CONF=str(slurm), PYTHONPATH=str(REPO))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", PROFILE, "--verbose", *targets],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "snakemake-gpus.log").write_text(out)
    assert proc.returncode == 0, out[-5000:]
    return {"workdir": workdir, "out": out, "seconds": time.monotonic() - started}


def _spans(workdir) -> dict[str, dict]:
    """Per GPU job log: its SLURM job id, node, devices and the span it held them."""
    spans = {}
    for log in sorted((workdir / "results" / "logs").rglob("*.log")):
        text = log.read_text(errors="replace")
        holds = HOLD.findall(text)
        if not holds:
            continue
        name = str(log.relative_to(workdir / "results" / "logs"))
        (job, node), = SLURM_LINE.findall(text)  # one try per job: no restart happened
        assert len({pid for pid, *_ in holds}) == 1, f"{name}: several lens.devices processes {holds}"
        span = spans[name] = {"job": job, "node": node}
        for _pid, event, ids, when in holds:
            span["devices" if event == "holds" else "released"] = ids
            span["start" if event == "holds" else "end"] = float(when)
    return spans


def test_concurrent_gpu_jobs_hold_disjoint_slurm_devices_on_one_node(gpu_run):
    spans = _spans(gpu_run["workdir"])
    expected = {f"train/tiny_llama/{a}/seed{s}.log" for a in ARMS for s in SEEDS}
    expected |= {f"evaluate/tiny_llama/start/seed{s}/synthetic_test.log" for s in SEEDS}
    assert set(spans) == expected, spans  # every GPU job logged its devices, and only those
    for name, span in spans.items():
        assert {"start", "end"} <= set(span) and span["released"] == span["devices"], (name, span)
        devices = span["devices"].split(",")
        assert len(devices) == 1 and set(devices) <= NODE_GPUS, (name, span)
    assert len({s["job"] for s in spans.values()}) == len(spans)
    assert {s["node"] for s in spans.values()} == {socket.gethostname().split(".")[0]}
    overlapping = [(a, b) for a in spans for b in spans if a < b
                   and spans[a]["start"] < spans[b]["end"] and spans[b]["start"] < spans[a]["end"]]
    for name, span in sorted(spans.items(), key=lambda kv: kv[1]["start"]):
        print(f"{name}: SLURM job {span['job']} on {span['node']}, CUDA_VISIBLE_DEVICES={span['devices']} "
              f"for {span['end'] - span['start']:.1f} s")
    print(f"{len(overlapping)} overlapping pairs of GPU jobs; the workflow took {gpu_run['seconds']:.0f} s")
    assert overlapping, "no two GPU jobs ran at once: the test proved nothing"
    for a, b in overlapping:
        assert not set(spans[a]["devices"].split(",")) & set(spans[b]["devices"].split(",")), (a, spans[a], b, spans[b])


def test_gpu_jobs_are_sbatch_jobs_on_one_node(gpu_run):
    """The plugin's sbatch calls: --gpus=N and --nodes=1 (profiles/slurm-local's set-resources) for
    exactly the GPU rules' jobs, in the gpu partition."""
    calls = SBATCH.findall(gpu_run["out"])
    rules = {}
    for call in calls:
        args = shlex.split(call.split(" --wrap=", 1)[0])
        rule = args[args.index("--comment") + 1].removeprefix("rule_").split("_wildcards_")[0]
        rules.setdefault(rule, []).append(args)
    assert set(rules) >= {"train", "evaluate_start", "synthetic", "warmup"}, sorted(rules)
    assert len(rules["train"]) == len(ARMS) * len(SEEDS) and len(rules["evaluate_start"]) == len(SEEDS)
    for rule, submitted in rules.items():
        for args in submitted:
            if rule in GPU_RULES:
                assert "--gpus=1" in args and "--nodes=1" in args, args
                assert args[args.index("-p") + 1] == "gpu", args
            else:
                assert not any(a.startswith(("--gpus", "--gres")) for a in args), args
    print(f"{len(calls)} sbatch calls: " + ", ".join(f"{r} x{len(a)}" for r, a in sorted(rules.items())))
