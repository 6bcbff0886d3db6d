"""The Snakemake workflow: dry runs of both configs, config errors at `snakemake -n`, rerun semantics,
and a miniature end-to-end run of the real workflow (tiny model, two RL steps)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import OFFLINE, REPO, snakemake

from lens.devices import acquire

# analysis/ too: the analysis rules take their scripts as inputs, found through `import analysis`,
# which from the workflow's directory (the jobs' cwd) is this copy.
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "analysis")


def _copy_workflow(dest: Path) -> Path:
    """The workflow files in a fresh directory: results land there, never in the checkout."""
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    return dest


def planned_jobs(output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs: list[tuple[str, dict]] = []
    for line in output.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line.strip()):
            jobs.append((m.group(1), {}))
        elif line.strip().startswith("wildcards:") and jobs:
            jobs[-1][1].update(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))
    return jobs


def job_counts(output: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule, _ in planned_jobs(output):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return _copy_workflow(tmp_path_factory.mktemp("workflow"))


# --------------------------------------------------------------------------------------------
# Dry runs
# --------------------------------------------------------------------------------------------
def test_embedded_dry_run_plans_the_whole_dag(workdir):
    proc = snakemake(workdir, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    runs = len(cfg["algorithms"]) * len(cfg["seeds"])
    counts = job_counts(proc.stdout)
    assert counts["synthetic"] == 1 and counts["warmup"] == 1 and counts["mlflow_experiment"] == 1
    assert counts["train"] == runs
    assert counts["evaluate_start"] == len(cfg["seeds"])  # step 0 once per seed, not per algorithm
    assert counts["share_start"] == runs
    # The embedded tiny model: one evaluation job per run for all its steps after 0 (rule evaluate_run).
    assert counts["evaluate_run"] == runs and "evaluate" not in counts
    assert counts["log_evals"] == runs
    # Table 2 (tab_ablation) is a main table only when its arms are in `algorithms`.
    ablation_table = {"lens_mixed_only", "lens_negative_only"} <= set(cfg["algorithms"])
    assert counts["figure"] == 9 and counts["table"] == 5 + ablation_table and counts["report"] == 1
    assert counts["mlflow_summary"] == 1
    # One config_file job per resolved config: runs, starts, the warm-up and synthetic sections, the merged one.
    assert counts["config_file"] == runs + len(cfg["seeds"]) + 3
    assert not (workdir / "results").exists()  # a dry run writes nothing
    # The rule writes a run's resolved config, which starts from the warm-up checkpoint.
    path = "results/runs/tiny_llama/lens/seed1/config.yaml"
    assert snakemake(workdir, "--cores", "1", path).returncode == 0
    run_cfg = yaml.safe_load((workdir / path).read_text())
    assert run_cfg["model"]["path"] == "results/models/tiny_llama/warmup" and run_cfg["model"]["tiny"] is None
    assert run_cfg["algorithm"]["name"] == "lens" and run_cfg["seed"] == 1
    shutil.rmtree(workdir / "results")


def test_embedded_ablations_train_the_graded_control_as_arms(workdir):
    """`grpo_shuffled/shuffle_frac-{q}` in ablation_algorithms: runs in arm folders, read by the ablations
    scope's collect (--sweeps) and by nothing else (--algos)."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    arms = [a for a in cfg["ablation_algorithms"] if "/" in a]
    assert arms == [f"grpo_shuffled/shuffle_frac-{q}" for q in ("0.1", "0.25", "0.5")]
    proc = snakemake(workdir, "-n", "-p", "ablations")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = {(w["algo"], w["seed"]) for r, w in planned_jobs(proc.stdout) if r == "train"}
    assert {(a, s) for a in arms for s in ("0", "1")} <= trained
    assert "--out results/tidy/ablations/  --sweeps --algos grpo lens " in proc.stdout
    assert "grpo_shuffled/shuffle_frac-0.5 > results/logs/analysis/ablations/collect.log" in proc.stdout
    assert not (workdir / "results").exists()
    path = "results/runs/tiny_llama/grpo_shuffled/shuffle_frac-0.25/seed0/config.yaml"
    assert snakemake(workdir, "--cores", "1", path).returncode == 0
    run_cfg = yaml.safe_load((workdir / path).read_text())
    assert run_cfg["algorithm"]["name"] == "grpo_shuffled" and run_cfg["algorithm"]["shuffle_frac"] == 0.25
    shutil.rmtree(workdir / "results")


def test_paper_dry_run_alone_without_the_embedded_keys(workdir):
    proc = snakemake(workdir, "-n", "--configfile", "config/paper.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    counts = job_counts(proc.stdout)
    runs = len(cfg["models"]) * len(cfg["algorithms"]) * len(cfg["seeds"])
    assert counts["train"] == runs
    assert "synthetic" not in counts and "warmup" not in counts  # not merged with config/config.yaml
    assert counts["evaluate_start"] == len(cfg["models"]) * len(cfg["seeds"])
    steps = cfg["training"]["rollout_steps"] // cfg["evaluation"]["every"]
    # MATH-500 every N steps; at the last step MATH-500 and the full MATH test in one job (one model load)
    assert counts["evaluate"] == runs * (steps - 1) and counts["evaluate_final"] == runs
    train = [w for r, w in planned_jobs(proc.stdout) if r == "train"]
    assert {w["model"] for w in train} == set(cfg["models"])
    assert not (workdir / "results").exists()  # a dry run writes nothing
    # The README's GPU command plans the same DAG (a dry run ignores the GPU count; the run checks it).
    with_gpus = snakemake(workdir, "-n", "--configfile", "config/paper.yaml", "--resources", "gpu=8",
                          env={"LENS_DEVICES": ""})
    assert with_gpus.returncode == 0 and job_counts(with_gpus.stdout) == counts, with_gpus.stderr[-3000:]
    path = "results/paper/runs/qwen25_3b/lens/seed0/config.yaml"
    assert snakemake(workdir, path, "--cores", "1", "--configfile", "config/paper.yaml").returncode == 0
    resolved = yaml.safe_load((workdir / path).read_text())
    assert resolved["model"]["path"] == "Qwen/Qwen2.5-3B" and resolved["training"]["learning_rate"] == 1e-6
    shutil.rmtree(workdir / "results")


def test_paper_ablations_target(workdir):
    # --configfile takes several files
    proc = snakemake(workdir, "-n", "ablations", "--configfile", "config/paper.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = planned_jobs(proc.stdout)
    algos = {w["algo"] for r, w in jobs if r == "train"}
    assert {"lens_mixed_only", "lens_negative_only", "nsr"} <= algos
    # the `ablations` scope's tidy tables, Table 2 and the leaderboard, and the report that waits for them
    assert {w["name"] for r, w in jobs if r == "table" and w["scope"] == "ablations/"} == {
        "tab_ablation", "tab_leaderboard", "tab_cost"}
    assert {w["scope"] for r, w in jobs if r == "collect"} == {"", "ablations/"}
    assert job_counts(proc.stdout)["report"] == 1
    assert {(w["model"], w["seed"]) for r, w in jobs if r == "train"} == {
        (m, s) for m in ("llama31_8b_instruct", "qwen25_3b") for s in ("0", "1")}
    # ablation_models/ablation_seeds: the extra arms train there only; the scope's tidy tables read only those
    (workdir / "ablations-overlay.yaml").write_text("ablation_models: [qwen25_3b]\nablation_seeds: [1]\n")
    proc = snakemake(workdir, "-n", "-p", "ablations", "--configfile", "config/paper.yaml", "ablations-overlay.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = {(w["model"], w["algo"], w["seed"]) for r, w in planned_jobs(proc.stdout) if r == "train"}
    assert {(m, s) for m, a, s in trained if a not in ("grpo", "lens")} == {("qwen25_3b", "1")}
    assert {a for m, a, s in trained} == algos
    assert "--out results/paper/tidy/ablations/  --models qwen25_3b --seeds 1" in proc.stdout
    assert not (workdir / "results").exists()
    (workdir / "ablations-overlay.yaml").unlink()


def test_the_report_waits_for_the_optional_targets_sections_only_when_asked(workdir):
    # REPORT.md's leaderboard section follows from the DAG: `snakemake ablations` puts its tables and
    # figure among the report's inputs; the main target does not wait for them.
    for target, in_report in (("ablations", True), ("all", False)):
        proc = snakemake(workdir, "-n", target, "--configfile", "config/paper.yaml")
        assert proc.returncode == 0, proc.stderr[-3000:]
        block = proc.stdout.split("rule report:", 1)[1].split("\n\n", 1)[0]
        assert ("tab_leaderboard.md" in block) is in_report, block


# --------------------------------------------------------------------------------------------
# Config errors fail at `snakemake -n`, naming key and file
# --------------------------------------------------------------------------------------------
def _broken(workdir: Path, edit) -> tuple[subprocess.CompletedProcess, str]:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    edit(cfg)
    path = workdir / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return snakemake(workdir, "-n", "--configfile", "broken.yaml"), "broken.yaml"


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["training"].update(learning_rat=1e-5), "training.learning_rat"),
    (lambda c: c["training"].update(rollout_steps="forty"), "training.rollout_steps"),
    (lambda c: c.update(algorithms=["grpo", "lenz"]), "lenz"),
    (lambda c: c["models"]["tiny_llama"]["model"]["tiny"].update(arch="mamba"), "tiny.arch"),
    (lambda c: c["models"].update(other={"model": {"prompt": "plain"}}), "models.other"),
], ids=["unknown-key", "wrong-type", "unknown-algorithm", "unknown-architecture", "model-without-path-or-tiny"])
def test_config_errors_fail_the_dry_run(workdir, edit, key):
    proc, source = _broken(workdir, edit)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "invalid config" in message and key in message and source in message, message[-2000:]


def test_evaluation_steps_must_have_checkpoints(workdir):
    proc, source = _broken(workdir, lambda c: c["evaluation"].update(every=15))
    assert proc.returncode != 0
    assert "evaluation.every" in proc.stderr + proc.stdout and source in proc.stderr + proc.stdout


def test_rules_run_snakemakes_own_python_without_an_activated_environment(tmp_path):
    # `.venv/bin/snakemake ablations` as the README writes it, from a shell whose PATH does not hold
    # the virtual environment: the rules' `python -m ...` must still be the environment's python.
    workdir = _copy_workflow(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), **OFFLINE}
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "results/data/synthetic/test.jsonl"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert (workdir / "results" / "data" / "synthetic" / "test.jsonl").stat().st_size > 0


def test_lint_is_clean(workdir):
    proc = snakemake(workdir, "--lint")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------
# A miniature end-to-end run of the real workflow, then its rerun semantics
# --------------------------------------------------------------------------------------------
def _miniature(cfg: dict) -> dict:
    cfg["models"]["tiny_llama"]["model"]["tiny"].update(hidden_size=16, num_layers=1, num_heads=2,
                                                        intermediate_size=32)
    cfg["algorithms"] = ["grpo", "lens"]
    cfg["seeds"] = [0]
    cfg["training"].update(prompts_per_rollout=2, num_generations=4, updates_per_rollout=1, prompts_per_update=2,
                           rollout_steps=2, save_every=1, max_new_tokens=24)
    cfg["evaluation"].update(every=1, n_samples=2, intermediate_n_samples=None, pass_k=[1, 2], max_new_tokens=24,
                             batch_size=8)
    cfg["synthetic"].update(train_per_level=20, test_per_level=2, rl_per_level=[2, 2, 2, 2, 2])
    cfg["warmup"].update(steps=4, batch_size=4, warmup_steps=1, torch_threads=1)
    cfg["figures"].update(bootstrap_samples=50, formats=["png"], dpi=50)
    return cfg


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The real workflow, run to the end on the miniature config (the embedded DAG, shrunk)."""
    workdir = _copy_workflow(tmp_path_factory.mktemp("e2e"))
    cfg = _miniature(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(workdir, "--cores", "2", timeout=900)
    logs = "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in (workdir / "results/logs").rglob("*.log")) \
        if proc.returncode else ""
    assert proc.returncode == 0, proc.stderr[-4000:] + logs
    return workdir, cfg, proc


FIGURES = ("fig_accuracy_by_level", "fig_training_curves", "fig_pass_at_k", "fig_benchmarks",
           "fig_negative_group_ratio", "fig_weight_function", "fig_confident_mistakes", "fig_accuracy_vs_compute",
           "fig_training_dynamics")


@pytest.mark.dag
def test_end_to_end_writes_every_output_and_says_where(finished):
    workdir, cfg, proc = finished
    results = workdir / "results"
    assert (results / "REPORT.md").read_text().strip()
    for fig in FIGURES:
        assert (results / "figures" / f"{fig}.png").stat().st_size > 0
    for tab in ("tab_pass_at_k", "tab_accuracy_by_level", "tab_benchmarks", "tab_confident_mistakes", "tab_cost"):
        assert (results / "tables" / f"{tab}.md").exists()
    import pandas as pd

    # Every run recorded both rollouts (2 prompts x G = 4); LENS's all-wrong groups reach the figure.
    for algo in ("grpo", "lens"):
        rollouts = pd.read_parquet(results / "runs" / "tiny_llama" / algo / "seed0" / "rollouts.parquet")
        assert sorted(rollouts["step"].unique()) == [1, 2] and len(rollouts) == 2 * 2 * 4
    negatives = pd.read_parquet(results / "tidy" / "negative_samples.parquet")
    assert set(negatives["algo"]) <= {"lens"}  # GRPO with one update per rollout computes no confidence
    assert len(pd.read_csv(results / "figures" / "fig_confident_mistakes.csv")) == len(negatives)

    samples = pd.read_parquet(results / "tidy" / "eval_samples.parquet")
    assert set(samples["algo"]) == {"grpo", "lens"} and set(samples["step"]) == {0, 1, 2}
    # Step 0 is the shared start: the same samples in both runs.
    start = samples[samples["step"] == 0].sort_values(["algo", "problem_id", "sample_idx"])
    grpo, lens = (start[start["algo"] == a][["problem_id", "sample_idx", "correct"]].reset_index(drop=True)
                  for a in ("grpo", "lens"))
    assert grpo.equals(lens)
    metrics = pd.read_parquet(results / "tidy" / "train_metrics.parquet")
    assert {"groups/all_wrong_frac", "reward"} <= set(metrics["metric"])
    assert (results / "mlflow.db").exists() and (results / "mlflow_experiment_id").read_text().strip()
    out = proc.stdout + proc.stderr
    assert "Report:" in out and "MLflow UI:" in out and "127.0.0.1" in out


@pytest.mark.dag
def test_end_to_end_runs_are_logged_to_one_mlflow_store(finished):
    import mlflow

    workdir, cfg, _ = finished
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(cfg["tracking"]["experiment"])
    runs = client.search_runs([experiment.experiment_id])
    training = [r for r in runs if r.data.tags.get("lens.run_kind") == "training"]
    assert sorted(r.data.tags["algo"] for r in training) == ["grpo", "lens"]
    for run in training:
        assert any(k.startswith("eval/") for k in run.data.metrics), run.data.metrics.keys()
    # The results folder's summary run (rule mlflow_summary) holds REPORT.md, the figures and tables.
    (summary,) = [r for r in runs if r.data.tags.get("lens.run_kind") == "summary"]
    assert len(runs) == len(training) + 1
    assert "REPORT.md" in {a.path for a in client.list_artifacts(summary.info.run_id)}


@pytest.mark.dag
def test_second_run_does_nothing(finished):
    workdir, _, _ = finished
    proc = snakemake(workdir, "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert planned_jobs(proc.stdout) == []
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.dag
def test_figure_setting_reruns_only_figures(finished):
    workdir, cfg, _ = finished
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    changed["figures"]["dpi"] = 60
    path = workdir / "figures_changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    proc = snakemake(workdir, "-n", "--configfile", str(path.name))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the figures, and the report through the merged config it summarises (results/config.yaml)
    assert set(job_counts(proc.stdout)) == {"config_file", "figure", "report", "mlflow_summary", "all"}
    assert {w["path"] for r, w in planned_jobs(proc.stdout) if r == "config_file"} == {"config.yaml"}


@pytest.mark.dag
def test_editing_an_analysis_script_reruns_exactly_what_runs_it(finished):
    # The analysis rules take their code as inputs (analysis.code_files): an edited figure
    # script reruns that figure alone under `snakemake figures`; an edited analysis/style.py, every
    # figure. Dry runs on the workflow's copy of analysis/, each edit undone after.
    workdir, _, _ = finished
    for name, expected in (("fig_pass_at_k", {"fig_pass_at_k"}), ("style", set(FIGURES))):
        script = workdir / "analysis" / f"{name}.py"
        text = script.read_text()
        try:
            script.write_text(text + "\n# an edit\n")
            proc = snakemake(workdir, "-n", "figures")
        finally:
            script.write_text(text)
        assert proc.returncode == 0, proc.stderr[-2000:]
        jobs = planned_jobs(proc.stdout)
        assert {rule for rule, _ in jobs} == {"figure", "figures"}, jobs
        assert {wildcards["name"] for rule, wildcards in jobs if rule == "figure"} == expected
    assert planned_jobs(snakemake(workdir, "-n").stdout) == []  # the edits undone: nothing to do


@pytest.mark.dag
def test_alpha_reruns_only_the_lens_family(finished):
    workdir, cfg, _ = finished
    before = {p: p.read_text() for p in (workdir / "results").rglob("config.yaml")}
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    changed["algorithm"]["alpha"] = 0.5
    path = workdir / "alpha_changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    proc = snakemake(workdir, "-n", "--configfile", str(path.name))
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = planned_jobs(proc.stdout)
    per_run = [(r, w) for r, w in jobs if "algo" in w]
    assert {r for r, _ in per_run} == {"train", "evaluate_run", "log_evals"}  # one evaluation job per tiny run
    assert {w["algo"] for _, w in per_run} == {"lens"}
    assert "synthetic" not in job_counts(proc.stdout) and "warmup" not in job_counts(proc.stdout)
    assert "evaluate_start" not in job_counts(proc.stdout)  # step 0 does not depend on alpha
    # the LENS runs' configs are rewritten (and the merged one), by jobs: the dry run wrote nothing
    rewritten = {w["path"] for r, w in jobs if r == "config_file"}
    assert rewritten == {"config.yaml"} | {f"runs/tiny_llama/lens/seed{s}/config.yaml" for s in cfg["seeds"]}
    assert {p: p.read_text() for p in (workdir / "results").rglob("config.yaml")} == before
    assert planned_jobs(snakemake(workdir, "-n").stdout) == []  # the config it ran with: nothing to do


# --------------------------------------------------------------------------------------------
# The `sweeps` target, run for real on the miniature config: LENS's alpha at two values
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """`snakemake sweeps` on the miniature config with GRPO as the only main arm and alpha in {1, 4}."""
    workdir = _copy_workflow(tmp_path_factory.mktemp("sweeps"))
    cfg = _miniature(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    cfg["algorithms"] = ["grpo"]
    cfg["ablation_algorithms"] = []
    cfg["sweeps"] = [{"algorithm": "lens", "parameter": "alpha", "values": [1, 4]}]
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = snakemake(workdir, "sweeps", "--cores", "2", timeout=900)
    logs = "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in (workdir / "results/logs").rglob("*.log")) \
        if proc.returncode else ""
    assert proc.returncode == 0, proc.stderr[-4000:] + logs
    return workdir, cfg


@pytest.mark.dag
def test_sweep_values_get_their_own_runs_and_configs(swept):
    workdir, _ = swept
    runs = workdir / "results" / "runs" / "tiny_llama"
    for value in (1, 4):
        run = runs / "lens" / f"alpha-{value}" / "seed0"
        assert (run / "done").exists() and (run / "train_metrics.parquet").exists()
        resolved = yaml.safe_load((run / "config.yaml").read_text())
        assert resolved["algorithm"]["name"] == "lens" and resolved["algorithm"]["alpha"] == float(value)
        assert resolved["seed"] == 0
    assert (runs / "grpo" / "seed0" / "done").exists()
    assert not (runs / "lens" / "seed0").exists()  # lens is no main arm here: only its sweep runs exist
    # the main tidy tables hold the main runs only; the sweep ones every arm
    import pandas as pd

    assert set(pd.read_parquet(workdir / "results/tidy/eval_samples.parquet")["algo"]) == {"grpo"}
    assert set(pd.read_parquet(workdir / "results/tidy/sweeps/eval_samples.parquet")["algo"]) == \
        {"grpo", "lens/alpha-1", "lens/alpha-4"}


@pytest.mark.dag
def test_sweep_runs_are_tagged_in_mlflow(swept):
    import mlflow

    workdir, cfg = swept
    client = mlflow.MlflowClient(f"sqlite:///{workdir / 'results' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(cfg["tracking"]["experiment"])
    training = [r for r in client.search_runs([experiment.experiment_id])
                if r.data.tags.get("lens.run_kind") == "training"]
    tags = sorted((r.data.tags["algo"], r.data.tags.get("sweep_param"), r.data.tags.get("sweep_value"),
                   r.data.tags["model"], r.data.tags["seed"]) for r in training)
    assert tags == [("grpo", None, None, "tiny_llama", "0"), ("lens", "alpha", "1.0", "tiny_llama", "0"),
                    ("lens", "alpha", "4.0", "tiny_llama", "0")]
    for run in training:  # the evaluations reached every run, the sweep runs included
        assert any(k.startswith("eval/") for k in run.data.metrics), run.data.tags


@pytest.mark.dag
def test_sensitivity_table_figure_and_report_section(swept):
    import pandas as pd

    from analysis.summary import SENSITIVITY_COLUMNS

    workdir, _ = swept
    results = workdir / "results"
    table = pd.read_csv(results / "tables/sweeps/tab_sensitivity.csv", dtype={"value": str})
    assert list(table.columns) == SENSITIVITY_COLUMNS
    assert table["arm"].tolist() == ["grpo", "lens/alpha-1", "lens/alpha-4"]
    assert table["value"].tolist()[1:] == ["1", "4"] and table["param"].tolist()[1:] == ["alpha", "alpha"]
    sweep_rows = table.iloc[1:]
    for column in ("acc", "hard", "diff", "diff_hard", "delta_all_wrong"):
        assert sweep_rows[column].notna().all(), column
    metrics = pd.read_parquet(results / "tidy/sweeps/train_metrics.parquet")
    mixed = metrics[metrics["metric"] == "groups/mixed_frac"].groupby("algo")["value"].sum()
    # no mixed group in any step, no mean over mixed groups
    assert (sweep_rows["delta_mixed"].isna() == (mixed[sweep_rows["arm"]] == 0).to_numpy()).all()
    # step 1 samples the same batch from the same start in both runs, and LENS's all-wrong advantages
    # are linear in alpha (GRPO's are 0): alpha 4 moves them 4 times as far as alpha 1
    first = metrics[(metrics["metric"] == "adv/delta_vs_grpo/all_wrong") & (metrics["step"] == 1)].set_index("algo")
    assert first.loc["lens/alpha-4", "value"] == pytest.approx(4 * first.loc["lens/alpha-1", "value"], rel=1e-3)
    assert ((sweep_rows["diff_low"] <= sweep_rows["diff"]).all()
            and (sweep_rows["diff"] <= sweep_rows["diff_high"]).all())
    assert table["diff"].iloc[0] != table["diff"].iloc[0]  # GRPO's own row has no difference
    assert table["vs_first_hard"].iloc[2] == pytest.approx(table["hard"].iloc[2] - table["hard"].iloc[1])
    assert (results / "tables/sweeps/tab_sensitivity.md").read_text().count("LENS, alpha = ") == 2
    assert (results / "figures/sweeps/fig_sensitivity.png").stat().st_size > 0
    pd.testing.assert_frame_equal(pd.read_csv(results / "figures/sweeps/fig_sensitivity.csv", dtype={"value": str}),
                                  table)
    report = (results / "REPORT.md").read_text()
    section = report.split("## Sensitivity", 1)[1].split("\n## ", 1)[0]
    assert "alpha 1 → 4 changes Level 4-5 accuracy by" in section
    assert re.search(r"negative-group signal (helps|hurts|does nothing detectable) at this scale", section)
    assert "figures/sweeps/fig_sensitivity.png" in section and "one seed per value" in section


@pytest.mark.dag
def test_a_new_sweep_value_trains_only_its_own_runs(swept):
    workdir, cfg = swept
    changed = yaml.safe_load(yaml.safe_dump(cfg))
    changed["sweeps"][0]["values"] = [1, 2]
    path = workdir / "sweep_changed.yaml"
    path.write_text(yaml.safe_dump(changed))
    proc = snakemake(workdir, "-n", "sweeps", "--configfile", path.name)
    assert proc.returncode == 0, proc.stderr[-2000:]
    per_run = [(r, w) for r, w in planned_jobs(proc.stdout) if "algo" in w]
    assert {w["algo"] for _, w in per_run} == {"lens/alpha-2"}
    assert {r for r, _ in per_run} == {"train", "evaluate_run", "share_start", "log_evals"}
    counts = job_counts(proc.stdout)
    assert "synthetic" not in counts and "warmup" not in counts and "evaluate_start" not in counts
    # the sweep scope's tidy tables are collected again; the main ones (and so the main figures) stay
    assert {w["scope"] for r, w in planned_jobs(proc.stdout) if r == "collect"} == {"sweeps/"}
    # the main target retrains and re-evaluates nothing either (its report and MLflow summary remain to do)
    main = snakemake(workdir, "-n", "--configfile", path.name)
    assert main.returncode == 0, main.stderr[-2000:]
    assert not [r for r, w in planned_jobs(main.stdout) if "algo" in w or r in ("evaluate_start", "collect")]


# --------------------------------------------------------------------------------------------
# GPU jobs under lens.devices
# --------------------------------------------------------------------------------------------
HOLD = re.compile(r"pid (\d+) (holds|released) CUDA_VISIBLE_DEVICES=([\d,]*) at ([\d.]+)")


def _gpu_config(workdir: Path) -> None:
    """The embedded config shrunk to 2 arms x 2 seeds of a few steps, its model asking for 1 GPU (it still
    computes on the CPU: no CUDA here) so that its training and step-0 evaluation jobs are GPU jobs."""
    path = workdir / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["models"]["tiny_llama"]["model"]["tiny"].update(hidden_size=16, num_layers=1, num_heads=2,
                                                        intermediate_size=32)
    cfg["models"]["tiny_llama"]["gpus"] = 1
    cfg["algorithms"], cfg["seeds"] = ["grpo", "lens"], [0, 1]
    cfg["training"].update(prompts_per_rollout=2, num_generations=4, updates_per_rollout=1, prompts_per_update=2,
                           rollout_steps=3, save_every=3, max_new_tokens=16)
    cfg["evaluation"].update(every=3, n_samples=2, intermediate_n_samples=None, pass_k=[1, 2], max_new_tokens=8)
    cfg["synthetic"].update(train_per_level=20, test_per_level=2, rl_per_level=[2, 2, 2, 2, 2])
    cfg["warmup"].update(steps=4, batch_size=4, warmup_steps=1, torch_threads=1)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


@pytest.mark.dag
def test_concurrent_gpu_jobs_of_the_workflow_hold_disjoint_devices(tmp_path_factory):
    workdir = _copy_workflow(tmp_path_factory.mktemp("gpu-workflow"))
    _gpu_config(workdir)
    locks = workdir / "locks"
    env = {"LENS_DEVICES": "0,1", "LENS_DEVICE_LOCKS": str(locks)}
    targets = [f"results/runs/tiny_llama/{a}/seed{s}/done" for a in ("grpo", "lens") for s in (0, 1)]
    targets += [f"results/start/tiny_llama/seed{s}/eval/synthetic_test/step0/samples.parquet" for s in (0, 1)]

    # Without a GPU count Snakemake can see, on a machine without GPUs: an error naming the flag, no job run.
    bare = snakemake(workdir, "--cores", "2", *targets, env={"LENS_DEVICES": ""})
    assert bare.returncode != 0 and "--resources gpu=N" in bare.stdout + bare.stderr
    assert not (workdir / "results" / "logs").exists() or not list((workdir / "results" / "logs").rglob("*.log"))
    # A dry run plans without the flag.
    assert snakemake(workdir, "-n", "--cores", "2", *targets, env={"LENS_DEVICES": ""}).returncode == 0

    proc = snakemake(workdir, *targets, "--cores", "2", "--resources", "gpu=2", env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    spans = {}
    for log in (workdir / "results" / "logs").rglob("*.log"):
        for pid, event, ids, when in HOLD.findall(log.read_text()):
            span = spans.setdefault((log.name, pid), {"devices": set(ids.split(","))})
            span["start" if event == "holds" else "end"] = float(when)
    assert len(spans) == 6, spans  # 4 training jobs, 2 step-0 evaluations: each took 1 device and gave it back
    assert all({"start", "end"} <= set(s) and len(s["devices"]) == 1 for s in spans.values()), spans
    overlapping = [(a, b) for a in spans.values() for b in spans.values() if a is not b
                   and a["start"] < b["end"] and b["start"] < a["end"]]
    assert overlapping, "no two GPU jobs ran at once: the test proved nothing"
    assert all(not (a["devices"] & b["devices"]) for a, b in overlapping)
    # Every device back: the next job of any workflow gets both.
    acquire(2, ["0", "1"], locks).release()
