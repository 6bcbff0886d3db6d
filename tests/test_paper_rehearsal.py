"""The paper rehearsal (config/paper-rehearsal.yaml over config/paper.yaml): what the overlay may
change, and the rehearsal itself, run end to end with Snakemake (main target, then `ablations`).

The end-to-end test takes ~15 minutes on 2 cores (each training job on 2 processes) and is marked
`rehearsal`: `make test` and CI run it, `make test-fast` skips it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from helpers import DATA, PAPER, REPO, allowed_by, leaves, pattern_of, snakemake
from snakemake.utils import update_config

from lens.config import DatasetConfig, load_run_config, workflow_config_from_dict
from lens.data import load_problems, training_problems
from lens.objective import compute_advantages
from lens.rollout import rollout_seed

OVERLAY = REPO / "config" / "paper-rehearsal.yaml"

# Every key the overlay may change, with the reason; anything else stays the paper's.
ALLOWED = {
    "results_dir": "rehearsal outputs apart from a real paper run",
    "models.*.model.path": "the hub checkpoint is replaced by a stand-in built here (rule standin)",
    "models.*.kind": "a stand-in of the model's architecture family, built here, instead of the hub model",
    "models.*.model.tiny.*": "the stand-in: the model's architecture family and tokenizer conventions, tiny sizes",
    "models.*.gpus": "no GPU: lens.train runs on CPU processes",
    "models.*.processes": "2 CPU processes (torchrun, gloo) for the paper's 8 GPU processes: groups straddle them",
    "data.train[*].path": "hub id -> the local copy in ../shared/data",
    "training.prompts_per_rollout": "size: 3 prompts per rollout instead of 128 (an odd number: on 2 processes "
                                    "one group straddles them)",
    "training.updates_per_rollout": "3 updates per rollout instead of 4: the 3 prompts, one each (several "
                                    "updates, TRL's pi_old, gradient accumulation as in the paper)",
    "training.prompts_per_update": "size: 3 updates of 1 prompt (16 completions: 8 per process, 2 micro-batches of 4)",
    "training.rollout_steps": "size: 2 rollout steps instead of ~1,600",
    "training.max_new_tokens": "size: 24 tokens instead of 4,096",
    "training.save_every": "size: a checkpoint every step, so MATH-500 is evaluated every N = 1 steps",
    "training.rollout_records_every": "size: the paper records every 10th of 1,600 steps, the rehearsal both of its 2",
    "training.engine": "vLLM is GPU-only: transformers' generate",
    "training.torch_threads": "one thread per process: a training job's two processes on two cores",
    "evaluation.benchmarks[*].path": "hub id -> the local copy in ../shared/data",
    "evaluation.benchmarks[*].limit": "size: 10 MATH-500 problems",
    "evaluation.final_benchmarks[*].path": "hub id -> the local copy in ../shared/data",
    "evaluation.final_benchmarks[*].limit_per_level_subject": "size: one MATH test problem per level x subject",
    "evaluation.final_benchmarks[*].limit": "size: 2 problems of each of AIME 2024/2025, AMC 2023, Minerva and "
                                            "OlympiadBench",
    "evaluation.final_benchmarks[*].n_samples": "size: AIME's and AMC's 32 samples scaled to 8, as the other sets' 16 "
                                                "to 4 (still their own number, above the others')",
    "evaluation.n_samples": "size: 4 samples per problem instead of 16",
    "evaluation.pass_k": "Pass@k up to the 4 samples",
    "evaluation.max_new_tokens": "size: 24 tokens instead of 4,096",
    "evaluation.engine": "vLLM is GPU-only: transformers' generate",
    "evaluation.batch_size": "size: a chunk holds every problem of a benchmark subset",
    "evaluation.every": "MATH-500 every rollout step (the paper: every 100 of 1,600)",
    "evaluation.torch_threads": "one thread per job, two jobs on two cores",
    "tracking.experiment": "its own MLflow experiment",
    "ablation_models": "size: the ablation arms on the Llama stand-in only (both stand-ins run the main arms)",
    "ablation_seeds": "size: the ablation arms on seed 0 only (8 runs instead of 32; both seeds run the main arms)",
    "sweeps[*].values": "size: one swept value (alpha = 1.0) instead of two, 4 runs at the rehearsal's sizes",
}


def merged() -> dict:
    """What Snakemake builds from `--configfile config/paper.yaml config/paper-rehearsal.yaml`."""
    config = {}
    for path in (PAPER, OVERLAY):
        update_config(config, yaml.safe_load(path.read_text()))
    return config


def changed_keys() -> set[str]:
    paper, rehearsal = leaves(yaml.safe_load(PAPER.read_text())), leaves(merged())
    return {k for k in paper.keys() | rehearsal.keys() if paper.get(k, "<absent>") != rehearsal.get(k, "<absent>")}


def test_overlay_changes_only_allowed_keys():
    changed = changed_keys()
    for key in changed:
        assert any(allowed_by(key, allowed) for allowed in ALLOWED), (
            f"config/paper-rehearsal.yaml changes {key!r}, which is not on the allow-list: rehearse the paper's "
            "value, or add the key to ALLOWED with the reason it cannot run on a CPU")
    # the allow-list does not rot: every entry is used
    unused = [a for a in ALLOWED if not any(allowed_by(k, a) for k in changed)]
    assert not unused, f"allow-list entries the overlay no longer uses: {unused}"


def test_pattern_of():
    assert pattern_of("models.qwen25_3b.model.tiny.arch") == "models.*.model.tiny.arch"
    assert pattern_of("data.train[1].path") == "data.train[*].path"
    assert allowed_by("models.x.model.tiny.arch", "models.*.model.tiny.*")
    assert allowed_by("data.train[3].path", "data.train[*].path")
    assert not allowed_by("data.train[3].split", "data.train[*].path")
    assert not allowed_by("training.learning_rate", "training.rollout_steps")


def test_overlay_keeps_the_papers_structure():
    paper, rehearsal = yaml.safe_load(PAPER.read_text()), merged()
    cfg = workflow_config_from_dict(rehearsal, source="paper.yaml + paper-rehearsal.yaml")
    for key in ("algorithms", "ablation_algorithms", "seeds", "algorithm"):
        assert rehearsal[key] == paper[key]
    assert set(cfg.models) == set(paper["models"])
    for name, entry in cfg.models.items():
        assert entry.model["prompt"] == paper["models"][name]["model"]["prompt"]
        assert entry.training == paper["models"][name].get("training", {})  # learning rates
        assert entry.model["tiny"]["arch"] == {"llama31_8b_instruct": "llama", "qwen25_3b": "qwen2"}[name]
    t = cfg.training
    processes = {entry.training_processes() for entry in cfg.models.values()}
    assert processes == {2} and all(entry.training_gpus() == 0 for entry in cfg.models.values())
    per_process = t.prompts_per_update * t.num_generations // 2
    assert t.updates_per_rollout > 1 and t.micro_batch_size < per_process  # several updates, accumulation
    # each process generates half of the rollout: not whole groups, so one group straddles the two
    assert (t.prompts_per_rollout * t.num_generations // 2) % t.num_generations != 0
    assert t.gradient_checkpointing and cfg.data.decontaminate and t.num_generations == 16
    # dataset kinds and splits are the paper's; only where they are read from changes
    for section, key in (("data", "train"), ("evaluation", "benchmarks"), ("evaluation", "final_benchmarks")):
        ours = [(d["name"], d.get("split", "test")) for d in rehearsal[section][key]]
        assert ours == [(d["name"], d.get("split", "test")) for d in paper[section][key]]
    assert cfg.evaluation.every < cfg.training.rollout_steps  # curves: MATH-500 at several steps


@pytest.mark.skipif(not (DATA / "math" / "test.jsonl").exists(), reason=f"shared data not found at {DATA}")
def test_final_subset_has_every_level_and_subject():
    cfg = workflow_config_from_dict(merged(), source="rehearsal")
    ds = cfg.evaluation.final_benchmarks[0]
    full = load_problems(DatasetConfig(name=ds.name, path=ds.path, split=ds.split))
    subset = load_problems(ds, seed=0)
    assert {(p["level"], p["subject"]) for p in subset} == {(p["level"], p["subject"]) for p in full}


# --------------------------------------------------------------------------------------------
# The rehearsal, end to end
# --------------------------------------------------------------------------------------------
def rehearse(results: Path, *targets: str) -> subprocess.CompletedProcess:
    return snakemake(REPO, *targets, "--cores", "2", "--profile", "profiles/default", "--configfile",
                     "config/paper.yaml", "config/paper-rehearsal.yaml", "--config", f"results_dir={results}",
                     timeout=3600)


@pytest.mark.rehearsal
@pytest.mark.skipif(not (DATA / "math" / "test.jsonl").exists(), reason=f"shared data not found at {DATA}")
def test_rehearsal_end_to_end(tmp_path):
    results = tmp_path / "paper-rehearsal"
    main = rehearse(results)
    assert main.returncode == 0, (main.stdout + main.stderr)[-4000:]
    report = (results / "REPORT.md").read_text()
    # accuracy by level on the MATH test subset, for both stand-ins
    by_level = pd.read_csv(results / "tables" / "tab_accuracy_by_level.csv", dtype={"level": str})
    assert set(by_level["model"]) == {"llama31_8b_instruct", "qwen25_3b"}
    assert {"1", "2", "3", "4", "5", "4-5"} <= set(by_level["level"])
    assert "MATH test" in report and "fig_accuracy_by_level.png" in report and "fig_training_curves.png" in report
    assert "stand-ins: ['llama31_8b_instruct', 'qwen25_3b']" in report and "paper-rehearsal.yaml" in report
    assert "None: every figure, table and tidy table was found." in report
    # MATH-500 training curves: steps 0, 1, 2 for every run
    samples = pd.read_parquet(results / "tidy" / "eval_samples.parquet")
    curve = samples[samples["benchmark"] == "math500"].groupby(["model", "algo", "seed"])["step"].unique()
    assert len(curve) == 8 and all(sorted(steps) == [0, 1, 2] for steps in curve)
    final = samples[samples["benchmark"] == "math_test"]
    assert set(final["step"]) == {2} and final["problem_id"].nunique() == 35
    curves = pd.read_csv(results / "figures" / "fig_training_curves.csv")
    assert set(curves["model"]) == {"llama31_8b_instruct", "qwen25_3b"}
    # gradient accumulation really happened: 3 updates per rollout step, 2 steps
    for done in results.glob("runs/*/*/seed*/done"):
        assert json.loads(done.read_text())["global_step"] == 6
        # rollout records: both steps, 3 prompts x G = 16 each; the advantages are the rule's, group by group
        rollouts = pd.read_parquet(done.parent / "rollouts.parquet")
        assert sorted(rollouts["step"].unique()) == [1, 2] and len(rollouts) == 2 * 3 * 16
        # every step recorded: the generated tokens the run reports (summed over both processes) are the records'
        cost = pd.read_parquet(done.parent / "train_metrics.parquet").pivot(index="step", columns="metric",
                                                                            values="value")
        assert cost["cost/completion_tokens"].tolist() == rollouts.groupby("step")["completion_tokens"].sum().tolist()
        assert (cost["cost/completions"] == 48).all() and (cost["cost/processes"] == 2).all()
        # two processes, gathered by rank 0: each generated 24 of a step's 48 samples, so the middle
        # group of every step straddles them (its advantages exist only once both halves are gathered)
        ranks_per_group = rollouts.groupby(["step", "group"])["rank"].agg(lambda r: tuple(sorted(set(r))))
        assert ranks_per_group.tolist() == [(0,), (0, 1), (1,)] * 2, ranks_per_group
        run_cfg = load_run_config(done.parent / "config.yaml")
        assert not rollouts["confidence"].isna().any()  # several updates per rollout: TRL's pi_old for every arm
        for (step, _), group in rollouts.groupby(["step", "group"]):
            rewards = torch.tensor(group["reward"].to_numpy()).view(1, 16)
            confidence = torch.tensor(group["confidence"].to_numpy()).view(1, 16)
            expected = compute_advantages(run_cfg.algorithm.name, rewards, confidence,
                                          seed=rollout_seed(run_cfg.seed, (int(step) - 1) * 3),
                                          **run_cfg.algorithm.params())
            torch.testing.assert_close(torch.tensor(group["advantage"].to_numpy()).view(1, 16), expected,
                                       rtol=1e-5, atol=1e-6)
    assert "fig_confident_mistakes.png" in report and (results / "tables" / "tab_confident_mistakes.md").exists()
    # decontamination: no training problem equals a MATH test or MATH-500 problem (whitespace-normalised)
    run = load_run_config(results / "runs" / "llama31_8b_instruct" / "lens" / "seed0" / "config.yaml")
    problems, report_data = training_problems(run)
    norm = lambda text: " ".join(text.split())  # noqa: E731
    held_out = {norm(p["problem"]) for ds in (DatasetConfig(name="math", path=str(DATA / "math"), split="test"),
                                              DatasetConfig(name="math500", path=str(DATA / "math")))
                for p in load_problems(ds)}
    assert not [p["id"] for p in problems if norm(p["problem"]) in held_out]
    written = json.loads((results / "runs" / "llama31_8b_instruct" / "lens" / "seed0" / "data_report.json").read_text())
    assert written["dropped_by_benchmark"] == report_data["dropped_by_benchmark"]
    assert written["dropped_by_benchmark"]["math_test"] > 900 and written["dropped_by_benchmark"]["math500"] > 0
    # ... and against the five sets beside MATH, by exact and prefix match (docs/evaluation.md)
    assert written["dropped_by_rule"]["amc23_test"] == {"exact": 7, "prefix": 27}
    assert written["dropped_by_rule"]["olympiadbench_test"] == {"exact": 9, "prefix": 46}
    assert written["dropped_by_benchmark"]["aime24_test"] == written["dropped_by_benchmark"]["minerva_test"] == 0
    # the final evaluation on every set, each at its own samples per problem (8 for AIME and AMC, the
    # overlay's 4 for the others), graded by each set's format, and its table and figure
    new_sets = {"aime24_test": 8, "aime25_test": 8, "amc23_test": 8, "minerva_test": 4, "olympiadbench_test": 4}
    for bench, n in new_sets.items():
        rows = samples[samples["benchmark"] == bench]
        assert set(rows["step"]) == {2} and rows["problem_id"].nunique() == 2, bench
        assert rows.groupby(["model", "algo", "seed", "problem_id"]).size().eq(n).all(), bench
    benchmarks = pd.read_csv(results / "tables" / "tab_benchmarks.csv")
    assert set(benchmarks["benchmark"]) == {"math_test", "math500", *new_sets}
    assert set(benchmarks["model"]) == {"llama31_8b_instruct", "qwen25_3b"}
    lens_rows = benchmarks[(benchmarks["algo"] == "lens") & (benchmarks["metric"] == "pass@1")]
    assert len(lens_rows) == 2 * 7 and lens_rows["p_holm"].notna().all() and "mdd" in lens_rows
    assert benchmarks.loc[benchmarks["metric"] == "pass@k"].set_index(["model", "benchmark", "algo"])["k"] \
        .xs("aime24_test", level="benchmark").eq(8).all()
    assert "fig_benchmarks.png" in report and "AIME 2024 (30 × 32)" in report
    assert (results / "figures" / "fig_benchmarks.png").exists()

    ablations = rehearse(results, "ablations")
    assert ablations.returncode == 0, (ablations.stdout + ablations.stderr)[-4000:]
    table = pd.read_csv(results / "tables" / "ablations" / "tab_ablation.csv")
    arms = {"grpo", "lens", "lens_mixed_only", "lens_negative_only", "nsr", "w_reinforce", "dr_grpo", "ngrpo",
            "uniform_negative", "reinforce_rej", "grpo_dynamic"}
    assert set(table["algo"]) == arms
    # Dynamic sampling on 2 processes with a straddling group: it trained only on mixed groups, counted
    # every generated batch (48 completions each) and stayed within the paper's cap of 3 batches.
    dynamic = results / "runs" / "llama31_8b_instruct" / "grpo_dynamic" / "seed0"
    records = pd.read_parquet(dynamic / "rollouts.parquet")
    assert (records.loc[~records["dropped"], "group_type"] == "mixed").all()
    batches = records.groupby("step")["gen_batch"].nunique()
    cost = pd.read_parquet(dynamic / "train_metrics.parquet").pivot(index="step", columns="metric", values="value")
    assert cost["dynamic/gen_batches"].tolist() == batches.tolist() and batches.max() <= 3
    assert cost["cost/completions"].tolist() == (48 * batches).tolist()
    board = pd.read_csv(results / "tables" / "ablations" / "tab_leaderboard.csv")
    # ablation_models/ablation_seeds: the extra arms trained on the Llama stand-in's seed 0 only, and the
    # ablations' tables compare them with the main arms' runs of that model and seed only
    assert set(board["algo"]) == arms and set(board["model"]) == {"llama31_8b_instruct"}
    assert {"p_value", "p_holm", "diff_hard_equal_tokens", "diff_hard_equal_tokens_low",
            "diff_hard_equal_tokens_high"} <= set(board.columns)
    assert (board["p_holm"].dropna() >= board["p_value"].dropna()).all()
    trained = {(p.parts[-4], p.parts[-3], p.parts[-2]) for p in results.glob("runs/*/*/seed*/done")}
    assert trained == {(m, a, s) for m in ("llama31_8b_instruct", "qwen25_3b") for a in ("grpo", "lens")
                       for s in ("seed0", "seed1")} | {("llama31_8b_instruct", a, "seed0") for a in arms}
    ablation_tidy = pd.read_parquet(results / "tidy" / "ablations" / "eval_samples.parquet")
    assert set(zip(ablation_tidy["model"], ablation_tidy["seed"], strict=True)) == {("llama31_8b_instruct", 0)}
    for records in results.glob("runs/*/*/seed*/rollouts.parquet"):  # every arm's runs on both processes
        assert set(pd.read_parquet(records, columns=["rank"])["rank"]) == {0, 1}, records
    report = (results / "REPORT.md").read_text()
    assert "## Leaderboard" in report and "## What the runs cost" in report and "## Training dynamics" in report
    assert "None: every figure, table and tidy table was found." in report
    assert set(table["model"]) == {"llama31_8b_instruct"}
    md = (results / "tables" / "ablations" / "tab_ablation.md").read_text()
    assert "Not run" not in md
