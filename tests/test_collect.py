"""analysis.collect: run directories -> tidy tables (types, sorting, determinism, error paths).

The small result set with hand-chosen values (`write_known_runs`) lives in tests/helpers.py: the figure,
table and report tests read it too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import BENCH, MODEL, REPO, write_known_runs, write_known_tidy

from analysis import collect


def test_collect_writes_typed_sorted_tables(tmp_path):
    tidy = write_known_tidy(tmp_path)
    samples = pd.read_parquet(tidy / "eval_samples.parquet")
    assert list(samples.columns) == ["model", "algo", "seed", "step", "benchmark", "problem_id", "level",
                                     "subject", "sample_idx", "correct", "completion_tokens"]
    # 2 algos x 2 seeds x 2 steps x 3 problems x 4 samples
    assert len(samples) == 96
    assert str(samples["correct"].dtype) == "bool"
    assert str(samples["level"].dtype) == "Int64" and str(samples["seed"].dtype) == "Int64"
    assert samples["model"].unique().tolist() == [MODEL]
    assert samples["benchmark"].unique().tolist() == [BENCH]
    # the hand-chosen correctness survives: LENS seed 0 at step 10 got 4 + 2 + 1 right
    sel = samples[(samples.algo == "lens") & (samples.seed == 0) & (samples.step == 10)]
    assert sel.groupby("problem_id")["correct"].sum().to_dict() == {"p1": 4, "p2": 2, "p3": 1}
    assert sel.set_index("problem_id")["level"].groupby(level=0).first().to_dict() == {"p1": 1, "p2": 4, "p3": 5}
    keys = ["model", "algo", "seed", "benchmark", "step", "problem_id", "sample_idx"]
    assert samples.equals(samples.sort_values(keys).reset_index(drop=True))

    metrics = pd.read_parquet(tidy / "train_metrics.parquet")
    assert list(metrics.columns) == ["model", "algo", "seed", "step", "metric", "value"]
    got = metrics[(metrics.metric == "groups/all_wrong_frac") & (metrics.algo == "grpo") & (metrics.seed == 1)]
    assert got["value"].tolist() == [0.7, 0.6, 0.5, 0.4] and got["step"].tolist() == [1, 2, 3, 4]


def test_collect_is_deterministic(tmp_path):
    runs = write_known_runs(tmp_path / "runs")
    collect.collect(runs, tmp_path / "a")
    collect.collect(runs, tmp_path / "b")
    for name in ("eval_samples.parquet", "train_metrics.parquet"):
        assert pd.read_parquet(tmp_path / "a" / name).equals(pd.read_parquet(tmp_path / "b" / name))


def test_collect_keeps_missing_levels_as_null(tmp_path):
    d = tmp_path / "runs" / "tiny" / "grpo" / "seed3" / "eval" / "synthetic_test" / "step5"
    d.mkdir(parents=True)
    pd.DataFrame({"problem_id": ["a"], "level": [None], "subject": [None], "sample_idx": [0],
                  "completion_tokens": [7], "finish_reason": ["length"], "correct": [0.0]}).to_parquet(
        d / "samples.parquet")
    counts = collect.collect(tmp_path / "runs", tmp_path / "tidy")
    assert counts == {"runs": 1, "train_rows": 0, "eval_rows": 1, "eval_files": 1, "negative_rows": 0}
    row = pd.read_parquet(tmp_path / "tidy" / "eval_samples.parquet").iloc[0]
    assert pd.isna(row["level"]) and pd.isna(row["subject"])
    assert (row["model"], row["algo"], row["seed"], row["step"]) == ("tiny", "grpo", 3, 5)
    assert not row["correct"]


def test_collect_errors_are_clear(tmp_path):
    with pytest.raises(collect.TidyError, match="no such directory"):
        collect.collect(tmp_path / "nothing", tmp_path / "tidy")
    (tmp_path / "runs").mkdir()
    with pytest.raises(collect.TidyError, match="no run directories"):
        collect.collect(tmp_path / "runs", tmp_path / "tidy")
    (tmp_path / "runs" / "m" / "grpo" / "seed0").mkdir(parents=True)
    with pytest.raises(collect.TidyError, match="no train_metrics.parquet"):
        collect.collect(tmp_path / "runs", tmp_path / "tidy")
    bad = tmp_path / "runs" / "m" / "grpo" / "seed0" / "eval" / "math500" / "step0"
    bad.mkdir(parents=True)
    pd.DataFrame({"problem_id": ["a"], "level": [1], "subject": ["x"], "sample_idx": [0],
                  "completion_tokens": [3], "correct": [0.5]}).to_parquet(bad / "samples.parquet")
    with pytest.raises(collect.TidyError, match="only 0/1"):
        collect.collect(tmp_path / "runs", tmp_path / "tidy")
    pd.DataFrame({"problem_id": ["a"], "correct": [1]}).to_parquet(bad / "samples.parquet")
    with pytest.raises(collect.TidyError, match=r"missing column\(s\)"):
        collect.collect(tmp_path / "runs", tmp_path / "tidy")
    assert not (tmp_path / "tidy" / "eval_samples.parquet").exists()


def test_readers_explain_missing_and_empty_tables(tmp_path):
    with pytest.raises(collect.TidyError, match="run `python -m analysis.collect"):
        collect.read_eval_samples(tmp_path)
    d = tmp_path / "runs" / "m" / "grpo" / "seed0" / "eval" / "b" / "step0"
    d.mkdir(parents=True)
    pd.DataFrame({"problem_id": ["a"], "level": [1], "subject": ["x"], "sample_idx": [0],
                  "completion_tokens": [3], "correct": [True]}).to_parquet(d / "samples.parquet")
    collect.collect(tmp_path / "runs", tmp_path / "tidy")
    with pytest.raises(collect.TidyError, match="empty"):
        collect.read_train_metrics(tmp_path / "tidy")


def test_cli_writes_tables(tmp_path):
    runs = write_known_runs(tmp_path / "runs")
    ok = subprocess.run([sys.executable, "-m", "analysis.collect", "--runs", str(runs), "--out",
                         str(tmp_path / "tidy")], cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "4 runs" in ok.stdout and "96 evaluation samples" in ok.stdout



def test_cli_error_exit_code(tmp_path, capsys):
    assert collect.main(["--runs", str(tmp_path / "none"), "--out", str(tmp_path / "t2")]) == 1
    assert "analysis.collect: error:" in capsys.readouterr().err and not (tmp_path / "t2").exists()


def test_seed_problem_matrix_keeps_problems_every_seed_answered(capsys):
    rows = pd.DataFrame({"seed": [0, 0, 1, 1, 1], "problem_id": ["a", "b", "a", "b", "c"],
                         "accuracy": [0.5, 1.0, 0.25, 0.0, 1.0]})
    matrix, seeds, pids = collect.seed_problem_matrix(rows, "accuracy")
    assert seeds == [0, 1] and pids == ["a", "b"]
    assert matrix.tolist() == [[0.5, 1.0], [0.25, 0.0]]
    assert "1 of 3 problems were not evaluated by every seed" in capsys.readouterr().err
    disjoint = pd.DataFrame({"seed": [0, 1], "problem_id": ["a", "b"], "accuracy": [1.0, 0.0]})
    with pytest.raises(collect.TidyError, match="share no evaluated problem"):
        collect.seed_problem_matrix(disjoint, "accuracy")
    a, b, common = collect.shared_columns(matrix, pids, matrix[:, ::-1], ["b", "a"])
    assert common == ["a", "b"] and a.tolist() == b.tolist()  # columns realigned by problem id


def test_sweep_runs_are_read_only_with_sweeps(tmp_path):
    import shutil

    runs = write_known_runs(tmp_path / "runs")
    for seed in (0, 1):  # a sweep run beside the main runs, and a folder that names no sweep arm
        shutil.copytree(runs / MODEL / "lens" / f"seed{seed}", runs / MODEL / "lens" / "alpha-4" / f"seed{seed}")
    shutil.copytree(runs / MODEL / "lens" / "seed0", runs / MODEL / "lens" / "backup" / "seed0")
    collect.collect(runs, tmp_path / "main")
    assert set(pd.read_parquet(tmp_path / "main" / "eval_samples.parquet")["algo"]) == {"grpo", "lens"}
    assert collect.main(["--runs", str(runs), "--out", str(tmp_path / "sweeps"), "--sweeps"]) == 0
    swept = pd.read_parquet(tmp_path / "sweeps" / "eval_samples.parquet")
    assert set(swept["algo"]) == {"grpo", "lens", "lens/alpha-4"}
    assert set(swept.loc[swept["algo"] == "lens/alpha-4", "seed"]) == {0, 1}
    metrics = pd.read_parquet(tmp_path / "sweeps" / "train_metrics.parquet")
    assert set(metrics["algo"]) == {"grpo", "lens", "lens/alpha-4"} and set(metrics["model"]) == {MODEL}


def _first_rollout_records(run: Path, completions: list[str], steps=(1, 2)) -> None:
    rows = [{"step": step, "group": i // 2, "sample_idx": i % 2, "problem_id": f"p{i // 2}",
             "completion": text if step == 1 else f"later {text}", "completion_tokens": 3, "reward": float(i % 2),
             "confidence": 0.5, "group_type": "mixed", "advantage": 0.0, "grpo_advantage": 0.0}
            for step in steps for i, text in enumerate(completions)]
    pd.DataFrame(rows).to_parquet(run / "rollouts.parquet", index=False)


def test_seed_pairing_compares_every_arms_first_rollout(tmp_path):
    runs = write_known_runs(tmp_path / "runs")
    same = ["a", "b", "c", "d"]
    for algo in ("grpo", "lens"):
        _first_rollout_records(runs / MODEL / algo / "seed0", same)
    # seed 1: lens sampled one completion differently at step 1 (later steps always differ: they are not read)
    _first_rollout_records(runs / MODEL / "grpo" / "seed1", same)
    _first_rollout_records(runs / MODEL / "lens" / "seed1", ["a", "b", "c", "x"])
    collect.collect(runs, tmp_path / "tidy")
    pairing = collect.read_seed_pairing(tmp_path / "tidy")
    assert pairing.to_dict("records") == [
        {"model": MODEL, "seed": 0, "arms": "grpo lens", "compared": 2, "shared": True},
        {"model": MODEL, "seed": 1, "arms": "grpo lens", "compared": 2, "shared": False},
    ]
    # Dynamic sampling's records: step 1's refill batch holds other prompts; its first batch is what compares.
    lens0 = runs / MODEL / "lens" / "seed0" / "rollouts.parquet"
    first = pd.read_parquet(lens0).assign(gen_batch=0, dropped=False)
    refill = first[first["step"] == 1].assign(gen_batch=1, group=lambda f: f["group"] + 2, problem_id="p9")
    pd.concat([first, refill]).to_parquet(lens0, index=False)
    collect.collect(runs, tmp_path / "tidy1")
    assert collect.read_seed_pairing(tmp_path / "tidy1")["shared"].tolist() == [True, False]
    pd.concat([first, refill.assign(gen_batch=0)]).to_parquet(lens0, index=False)  # were it the first batch
    collect.collect(runs, tmp_path / "tidy1b")
    assert collect.read_seed_pairing(tmp_path / "tidy1b")["shared"].tolist() == [False, False]
    # One arm with records: nothing to compare.
    (runs / MODEL / "lens" / "seed0" / "rollouts.parquet").unlink()
    collect.collect(runs, tmp_path / "tidy2")
    first = collect.read_seed_pairing(tmp_path / "tidy2").iloc[0]
    assert first["compared"] == 1 and pd.isna(first["shared"])


def test_collect_reads_only_the_models_and_seeds_asked(tmp_path, capsys):
    """The `ablations` scope under ablation_models/ablation_seeds: the runs folder holds every model's runs."""
    runs = write_known_runs(tmp_path / "runs")
    other = runs / "other_model" / "grpo" / "seed0"
    shutil.copytree(runs / MODEL / "grpo" / "seed0", other)
    assert collect.main(["--runs", str(runs), "--out", str(tmp_path / "all")]) == 0
    assert set(pd.read_parquet(tmp_path / "all" / "eval_samples.parquet")["model"]) == {MODEL, "other_model"}
    assert collect.main(["--runs", str(runs), "--out", str(tmp_path / "one"), "--models", MODEL,
                         "--seeds", "1"]) == 0
    for name in ("eval_samples.parquet", "train_metrics.parquet"):
        table = pd.read_parquet(tmp_path / "one" / name)
        assert set(zip(table["model"], table["seed"], strict=True)) == {(MODEL, 1)}, name
    with pytest.raises(collect.TidyError, match=r"no run directories .* of models \['gpt'\]"):
        collect.collect(runs, tmp_path / "none", models=["gpt"])
    # arms: with --sweeps an arm folder is read, and --algos keeps only the arms asked for
    shutil.copytree(runs / MODEL / "grpo" / "seed0", runs / MODEL / "grpo_shuffled" / "shuffle_frac-0.5" / "seed0")
    shutil.copytree(runs / MODEL / "grpo" / "seed0", runs / MODEL / "lens" / "alpha-4" / "seed0")
    collect.collect(runs, tmp_path / "arms", sweeps=True, algos=["grpo", "grpo_shuffled/shuffle_frac-0.5"])
    table = pd.read_parquet(tmp_path / "arms" / "eval_samples.parquet")
    assert set(table["algo"]) == {"grpo", "grpo_shuffled/shuffle_frac-0.5"}
