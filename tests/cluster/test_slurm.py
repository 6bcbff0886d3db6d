"""The workflow on a real SLURM cluster through Snakemake's SLURM executor plugin, logging to a tracking
server on PostgreSQL that the workflow starts; a training job cancelled with scancel resumes from its
checkpoint when the same command runs again; then the MLflow UI in headless Chromium.

    make test-cluster        (or: python -m pytest -m cluster tests/cluster/test_slurm.py)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from engines import ARTIFACTS, stored_metrics
from helpers import REPO, free_port, subprocess_env

pytestmark = pytest.mark.cluster
PROFILE = "profiles/slurm-local"
# The values in which profiles/slurm-local differs from profiles/slurm, and why (docs/cluster.md).
MUST_DIFFER = {
    "default-resources.mem_mb": "the node has ~21 GB for all jobs at once",
    "default-resources.cpus_per_task": "the node has 2 CPUs",
    "set-resources.train.cpus_per_task": "the node has 2 CPUs",
    "set-resources.train.mem_mb": "the node has ~21 GB",
    "set-resources.evaluate.cpus_per_task": "the node has 2 CPUs",
    "set-resources.evaluate.mem_mb": "the node has ~21 GB",
    "set-resources.evaluate_final.cpus_per_task": "the node has 2 CPUs",
    "set-resources.evaluate_final.mem_mb": "the node has ~21 GB",
    "set-resources.evaluate_start.cpus_per_task": "the node has 2 CPUs",
    "set-resources.evaluate_start.mem_mb": "the node has ~21 GB",
    "slurm-status-command": "no accounting database: sacct knows no jobs, squeue does",
    "slurm-init-seconds-before-status-checks": "jobs of seconds: 5 s instead of 40 s before the first check",
}
ARMS = ("grpo", "lens")
CANCELLED_ARM = "grpo"


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_test_profile_differs_from_the_cluster_profile_only_where_it_must():
    slurm = _flat(yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text()))
    local = _flat(yaml.safe_load((REPO / PROFILE / "config.yaml").read_text()))
    differ = {k for k in slurm.keys() | local.keys() if slurm.get(k, "<unset>") != local.get(k, "<unset>")}
    assert differ == set(MUST_DIFFER)


def _config(port: int, store: str) -> dict:
    """The embedded config shrunk to two arms, one seed and a training run long enough to cancel."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["models"]["tiny_llama"]["model"]["tiny"].update(hidden_size=16, num_layers=1, num_heads=2,
                                                        intermediate_size=32)
    cfg["algorithms"] = list(ARMS)
    cfg["seeds"] = [0]
    cfg["training"].update(prompts_per_rollout=2, num_generations=4, updates_per_rollout=1, prompts_per_update=2,
                           rollout_steps=40, save_every=4, max_new_tokens=24)
    cfg["evaluation"].update(every=40, n_samples=2, intermediate_n_samples=None, pass_k=[1, 2], max_new_tokens=24,
                             batch_size=8)
    cfg["synthetic"].update(train_per_level=20, test_per_level=2, rl_per_level=[2, 2, 2, 2, 2])
    cfg["warmup"].update(steps=4, batch_size=4, warmup_steps=1, torch_threads=1)
    cfg["figures"].update(bootstrap_samples=50, formats=["png"], dpi=50)
    cfg["tracking"] = {"uri": f"http://127.0.0.1:{port}", "experiment": "lens-cluster-test", "server_store": store}
    return cfg


def _squeue(env) -> list[tuple[str, str, str]]:
    """(job id, comment, state) of the cluster's jobs; the plugin's comment names the rule."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%k|%T"], env=env, capture_output=True, text=True).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.count("|") == 2]


def _train_job(env, arm: str) -> str | None:
    for job_id, comment, state in _squeue(env):
        if comment.startswith("rule_train_") and f"_{arm}_" in comment and state == "RUNNING":
            return job_id
    return None


def _wait(predicate, what: str, timeout: float, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake ended (code {proc.returncode}) while waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _checkpoints(run: Path) -> list[int]:
    return sorted(int(p.parent.name.split("-")[1])
                  for p in (run / "checkpoints").glob("checkpoint-*/trainer_state.json"))


@pytest.fixture(scope="module")
def cluster_run(slurm, postgres, tmp_path_factory):
    """The workflow through SLURM: run 1 with the training job of one arm cancelled twice (its first try
    and Snakemake's restart), then the same command again. Returns what the checks below need."""
    workdir = tmp_path_factory.mktemp("slurm-workflow")
    for name in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / name
        (shutil.copytree(src, workdir / name, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy(src, workdir / name))
    port = free_port()
    cfg = _config(port, postgres)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = subprocess_env(SLURM_CONF=str(slurm), PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "snakemake", "--profile", PROFILE]
    run = workdir / "results" / "runs" / "tiny_llama" / CANCELLED_ARM / "seed0"
    started = time.monotonic()

    first = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cancelled = []
    try:
        # Try 1: cancel once a checkpoint is on disk, mid-run.
        _wait(lambda: _checkpoints(run) and _checkpoints(run)[-1] >= 4, "a first checkpoint", 600, first)
        job = _wait(lambda: _train_job(env, CANCELLED_ARM), "the running training job", 60, first)
        subprocess.run(["scancel", job], env=env, check=True)
        cancelled.append((job, _checkpoints(run)[-1]))
        # Try 2 (restart-times: 1): cancel Snakemake's resubmission once it has resumed.
        job2 = _wait(lambda: (j := _train_job(env, CANCELLED_ARM)) and j != job and j, "the resubmitted job", 300,
                     first)
        log = workdir / "results" / "logs" / "train" / "tiny_llama" / CANCELLED_ARM / "seed0.log"
        _wait(lambda: log.exists() and "resuming from" in log.read_text(errors="replace"), "the resume", 300, first)
        subprocess.run(["scancel", job2], env=env, check=True)
        cancelled.append((job2, _checkpoints(run)[-1]))
        out1, _ = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0, "the run with a cancelled training job should fail (after its one restart)"
    assert not (run / "done").exists()
    resume_from = _checkpoints(run)[-1]

    second = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    out2 = second.stdout + second.stderr
    (ARTIFACTS).mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "snakemake-run1.log").write_text(out1)
    (ARTIFACTS / "snakemake-run2.log").write_text(out2)
    assert second.returncode == 0, out2[-5000:]
    return {"workdir": workdir, "cfg": cfg, "out": (out1, out2), "cancelled": cancelled, "resume_from": resume_from,
            "run": run, "store": postgres, "env": env, "seconds": time.monotonic() - started}


def _submitted(out: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", out)


def test_every_rule_job_is_an_sbatch_job(cluster_run):
    out1, out2 = cluster_run["out"]
    for out in (out1, out2):
        # the only local jobs: writing the resolved config files (rule config_file, a file's text each)
        local = {r for r in re.findall(r"^localrule (\w+):", out, re.M) if r != "all"}
        assert local <= {"config_file"}, f"jobs run on the submitting host: {local}"
        executed = len(re.findall(r"^rule \w+:", out, re.M))
        assert len(_submitted(out)) == executed
    jobs = _submitted(out1) + _submitted(out2)
    # run 1: everything but the cancelled arm's train/evaluate/log_evals and what needs both arms;
    # run 2: those. Train of the cancelled arm: 2 tries in run 1 (cancelled) + 1 in run 2.
    print(f"{len(jobs)} sbatch jobs ({len(_submitted(out1))} in run 1, {len(_submitted(out2))} in run 2); "
          f"{cluster_run['seconds']:.0f} s")
    assert len(set(jobs)) == len(jobs)


def test_cancelled_training_resumed_from_its_checkpoint(cluster_run):
    run = cluster_run["run"]
    done = json.loads((run / "done").read_text())
    assert done["rollout_steps"] == cluster_run["cfg"]["training"]["rollout_steps"]
    assert done["resumed_from"] == cluster_run["resume_from"] > 0
    (first_job, at1), (second_job, at2) = cluster_run["cancelled"]
    print(f"scancel {first_job} at checkpoint {at1}, scancel {second_job} (its restart) at checkpoint {at2}; "
          f"the rerun resumed from optimizer step {done['resumed_from']} of {done['global_step']}")
    out2 = cluster_run["out"][1]
    assert f"algo={CANCELLED_ARM}" in out2 and "rule train:" in out2
    import pandas as pd

    metrics = pd.read_parquet(run / "train_metrics.parquet")
    assert sorted(set(metrics["step"])) == list(range(1, done["rollout_steps"] + 1))
    assert not metrics.duplicated(["step", "metric"]).any()


def test_one_mlflow_run_per_arm_and_every_metric_row_once_in_the_server_store(cluster_run):
    import mlflow

    from lens.tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, RUN_ID_FILE, metric_name

    store = cluster_run["store"]
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name(cluster_run["cfg"]["tracking"]["experiment"])
    assert experiment.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    runs = client.search_runs([experiment.experiment_id])
    training = [r for r in runs if r.data.tags.get("lens.run_kind") == "training"]
    assert sorted(r.data.tags["algo"] for r in training) == sorted(ARMS)
    assert all(r.info.status == "FINISHED" for r in runs)
    for r in training:
        inputs = {(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"])
                  for d in r.inputs.dataset_inputs}
        assert inputs == {("synthetic_rl", "training"), ("synthetic_test", "evaluation")}
        assert all(len(d.dataset.digest) == 16 and d.dataset.source for d in r.inputs.dataset_inputs)
        assert any(k.startswith("eval/") for k in r.data.metrics)
    (summary,) = [r for r in runs if r.data.tags.get("lens.run_kind") == "summary"]
    artifacts = Path(cluster_run["workdir"]) / "results" / "mlartifacts"
    logged = {p.relative_to(artifacts).parts[-2:] for p in artifacts.rglob("*") if p.is_file()
              and summary.info.run_id in p.parts}
    assert ("artifacts", "REPORT.md") in logged and ("figures", "fig_training_curves.png") in logged

    stored = stored_metrics(store)
    checked = 0
    import pandas as pd

    for arm in ARMS:
        run_dir = cluster_run["workdir"] / "results" / "runs" / "tiny_llama" / arm / "seed0"
        run_id = (run_dir / RUN_ID_FILE).read_text().strip()
        for step, metric, value in pd.read_parquet(run_dir / "train_metrics.parquet").itertuples(index=False):
            if value != value or value in (float("inf"), float("-inf")):
                continue
            values = stored.get((run_id, metric_name(metric), int(step)), [])
            assert len(values) == 1, f"{arm} step {step} {metric}: {values}"
            checked += 1
    print(f"{checked} train_metrics rows of {len(ARMS)} runs, each exactly once in the PostgreSQL store")
    assert checked > 0


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"lens-chromium-{os.getpid()}"
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=25000"]
    try:
        return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _current_page_link(dom: str) -> tuple[str, str] | None:
    """(href, text) of the side bar's link to the page shown (aria-current="page")."""
    for link in re.finditer(r"<a\b([^>]*)>(.*?)</a>", dom, re.S):
        if 'aria-current="page"' in link.group(1):
            href = re.search(r'href="([^"]*)"', link.group(1))
            return (href.group(1).replace("&amp;", "&") if href else "", re.sub(r"<[^>]+>", "", link.group(2)).strip())
    return None


def test_mlflow_ui_in_headless_chromium(cluster_run):
    """The UI as a user opens it after the run: the link `make mlflow-ui` and the workflow print (the
    experiment's runs table in "Model training" mode), the experiment page in that mode, and one run's
    reward chart. MLflow 3.17 chooses GenAI or Model training from the URL's `workflowType` (else the
    browser's stored choice, else GenAI), not from the experiment's kind tag."""
    import mlflow

    from lens.mlflow_server import start_server, stop_server
    from lens.tracking import UI_WORKFLOW_PARAM, ui_url

    workdir = cluster_run["workdir"]
    uri = f"http://127.0.0.1:{free_port()}"
    state = workdir / "ui-server"
    start_server(uri, cluster_run["store"], workdir / "results" / "mlartifacts", state)
    try:
        client = mlflow.MlflowClient(uri)
        experiment = client.get_experiment_by_name(cluster_run["cfg"]["tracking"]["experiment"])
        eid = experiment.experiment_id
        run = next(r for r in client.search_runs([eid]) if r.data.tags.get("algo") == "lens")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pages = {
            "runs-table": ui_url(uri, eid),  # the link users are given
            "experiment": f"{uri}/#/experiments/{eid}?{UI_WORKFLOW_PARAM}",  # lands on the runs table
            "reward-chart": (f"{uri}/#/metric?runs=[%22{run.info.run_id}%22]&metric=%22reward%22"
                             f"&experiments=[%22{eid}%22]&plot_metric_keys=[%22reward%22]&x_axis=step"
                             f"&{UI_WORKFLOW_PARAM}"),
            "run-model-metrics": f"{uri}/#/experiments/{eid}/runs/{run.info.run_id}/model-metrics?{UI_WORKFLOW_PARAM}",
        }
        for name, url in pages.items():
            shot = ARTIFACTS / f"mlflow-{name}.png"
            shot.unlink(missing_ok=True)
            proc = _chromium(f"--screenshot={shot}", url)
            assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-2000:]
        for name in ("runs-table", "experiment"):
            dom = _chromium("--dump-dom", pages[name]).stdout
            (ARTIFACTS / f"mlflow-{name}.html").write_text(dom)
            # What the user sees: the runs table, its side-bar link current, in Model-training mode
            # (the GenAI mode's pages would be "Overview" and "Traces"), listing the runs.
            current = _current_page_link(dom)
            assert current is not None, dom[-3000:]
            href, text = current
            assert (text == "Runs" and href.startswith(f"#/experiments/{eid}/runs")
                    and UI_WORKFLOW_PARAM in href), current
            assert re.search(r"<h2[^>]*>\s*Runs\s*<", dom), "the page title is not Runs"
            for run_name in ("tiny_llama/lens/seed0", "tiny_llama/grpo/seed0", "summary"):
                assert f">{run_name}<" in dom, f"{run_name} not in the runs table of {name}"
            assert ">Overview<" not in dom and ">Judges<" not in dom, "GenAI side bar shown"
        print(f"screenshots in {ARTIFACTS}")
    finally:
        stop_server(state)
