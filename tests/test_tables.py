"""Table scripts on the small tidy result set of tests/test_collect.py: values, paper numbers, files, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MATH_DAPO, MATH_NUMINA, MODEL, run_table, write_run_configs, write_sweep_tidy

from analysis import (
    paper_numbers,
    stats,
    tab_ablation,
    tab_accuracy_by_level,
    tab_leaderboard,
    tab_pass_at_k,
    training_data,
)

FAST = ["--bootstrap-samples", "300"]


def test_pass_at_k_table_values_and_paper_numbers(known_tidy, tmp_path):
    runs = write_run_configs(tmp_path / "runs", known_tidy, MATH_DAPO)
    data = run_table(tab_pass_at_k, known_tidy, tmp_path, "--runs", str(runs))
    # default k = 1, 2, 4, 8, 16; only k <= n = 4 exist
    assert sorted(data["k"].unique()) == [1, 2, 4]
    row = data[(data.subset == "all") & (data.algo == "grpo") & (data.k == 1)].iloc[0]
    # GRPO seeds: (1 + .25 + 0)/3 and (.75 + 0 + 0)/3
    assert row["mean"] == pytest.approx(100 / 3, abs=1e-4)
    assert row["std_seeds"] == pytest.approx(100 * (0.5 / 3) / np.sqrt(2), abs=1e-4)
    assert row["paper"] == 54.09 and row["delta"] == pytest.approx(100 / 3 - 54.09, abs=1e-4)
    lens4 = data[(data.subset == "all") & (data.algo == "lens") & (data.k == 4)].iloc[0]
    assert lens4["mean"] == pytest.approx(250 / 3, abs=1e-4) and lens4["paper"] == 68.36
    # the paper has no Level 4-5 numbers
    assert data.loc[data.subset == "4-5", "paper"].isna().all()
    md = (tmp_path / "tab_pass_at_k.md").read_text()
    assert "| Llama-3.1-8B-Instruct | GRPO (ours, 2 seeds) | all | 33.3 ± 11.8 |" in md
    assert "| GRPO (paper, Table 1) | all | 54.09 | 61.09 | 67.05 |" in md
    assert "| Δ ours − paper |  | −20.8 |" in md
    assert "Training data: MATH train + DAPO-Math-17k. Pass@k" in md
    tex = (tmp_path / "tab_pass_at_k.tex").read_text()
    assert r"33.3 $\pm$ 11.8" in tex and r"Pass@k (\%)" in tex and r"\begin{tabular}{lllrrr}" in tex


def test_paper_numbers_only_for_matching_model_and_benchmark():
    summary = pd.DataFrame({"model": [MODEL, "tiny", MODEL], "benchmark": ["math500", "math500", "synthetic_test"],
                            "subset": ["all"] * 3, "algo": ["lens"] * 3, "step": [5] * 3, "n_seeds": [1] * 3,
                            "n_samples": [16] * 3, "k": [16] * 3, "mean": [80.0] * 3, "std_seeds": [np.nan] * 3,
                            "ci_low": [70.0] * 3, "ci_high": [90.0] * 3})
    out = tab_pass_at_k.with_paper(summary, "table3")
    assert out["paper"].iloc[0] == 83.40 and out["delta"].iloc[0] == pytest.approx(80 - 83.40)
    assert out["paper"].iloc[1:].isna().all()
    assert paper_numbers.paper_pass_at_k("table1", "qwen25_3b", "grpo", "math500")[16] == 82.67
    with pytest.raises(ValueError, match="unknown paper table"):
        paper_numbers.paper_pass_at_k("table9", MODEL, "grpo", "math500")


def test_ablation_table_lists_missing_arms(known_tidy, tmp_path):
    runs = write_run_configs(tmp_path / "runs", known_tidy, MATH_NUMINA)
    data = run_table(tab_ablation, known_tidy, tmp_path, "--runs", str(runs))
    assert set(data["algo"]) == {"grpo", "lens"}
    # Table 2 compares with the MATH + Numina runs (Table 3's GRPO and LENS rows)
    assert data[(data.algo == "grpo") & (data.k == 1) & (data.subset == "all")]["paper"].iloc[0] == 56.88
    md = (tmp_path / "tab_ablation.md").read_text()
    assert "Not run" in md and "LENS (mixed only), LENS (negative only)" in md
    assert md.index("GRPO (ours") < md.index("LENS (ours")  # the paper's row order
    assert "Training data: MATH train + NuminaMath-1.5." in md and "| Δ ours − paper |" in md


def test_pass_at_k_compares_like_with_like(known_tidy, tmp_path):
    """auto: MATH + NuminaMath-1.5 runs are set beside Table 3; asked for Table 1, they get no paper rows."""
    runs = write_run_configs(tmp_path / "runs", known_tidy, MATH_NUMINA)
    data = run_table(tab_pass_at_k, known_tidy, tmp_path / "auto", "--runs", str(runs))
    row = data[(data.subset == "all") & (data.algo == "grpo") & (data.k == 1)].iloc[0]
    assert row["paper"] == 56.88 and row["delta"] == pytest.approx(100 / 3 - 56.88, abs=1e-4)
    assert "| GRPO (paper, Table 3) |" in (tmp_path / "auto" / "tab_pass_at_k.md").read_text()
    data = run_table(tab_pass_at_k, known_tidy, tmp_path / "t1", "--runs", str(runs), "--paper-table", "table1")
    assert data["paper"].isna().all() and data["delta"].isna().all()
    md = (tmp_path / "t1" / "tab_pass_at_k.md").read_text()
    assert "Δ ours − paper" not in md and "(paper," not in md
    assert ("No comparison with the paper's Table 1: it trained on MATH train + DAPO-Math-17k, these runs on "
            "MATH train + NuminaMath-1.5.") in md
    # data like neither paper table (a subset of MATH train alone): no paper rows under auto
    runs = write_run_configs(tmp_path / "runs2", known_tidy, [{**MATH_DAPO[0], "limit": 100}])
    data = run_table(tab_pass_at_k, known_tidy, tmp_path / "sub", "--runs", str(runs))
    md = (tmp_path / "sub" / "tab_pass_at_k.md").read_text()
    assert data["paper"].isna().all() and "Δ ours − paper" not in md
    assert "Training data: MATH train (subsets)." in md and "these runs on MATH train (subsets)." in md


def test_ablation_table_without_the_papers_data_has_no_delta(known_tidy, tmp_path):
    runs = write_run_configs(tmp_path / "runs", known_tidy, MATH_DAPO)
    data = run_table(tab_ablation, known_tidy, tmp_path, "--runs", str(runs))
    assert data["paper"].isna().all()
    md = (tmp_path / "tab_ablation.md").read_text()
    assert "Δ ours − paper" not in md and "(paper, Table 2)" not in md
    assert md.splitlines()[2].startswith("Training data: MATH train + DAPO-Math-17k.")
    assert ("No comparison with the paper's Table 2: it trained on MATH train + NuminaMath-1.5, these runs on "
            "MATH train + DAPO-Math-17k.") in md


def test_training_data_unknown_or_mixed_means_no_paper_rows(known_tidy, tmp_path):
    # no run configs at all (the default: `runs` beside the tidy folder has none)
    data = run_table(tab_ablation, known_tidy, tmp_path / "none", "--runs", str(tmp_path / "nothing"))
    md = (tmp_path / "none" / "tab_ablation.md").read_text()
    assert data["paper"].isna().all() and "Training data: unknown (run config not found" in md
    # one run trained on other data than the rest
    runs = write_run_configs(tmp_path / "runs", known_tidy, MATH_NUMINA)
    seed1 = runs / MODEL / "lens" / "seed1" / "config.yaml"
    seed1.write_text(seed1.read_text().replace("numina", "dapo").replace("AI-MO/NuminaMath-1.5", "x/y"))
    samples = pd.read_parquet(known_tidy / "eval_samples.parquet")
    got = training_data.training_data(samples, runs)
    assert got.datasets is None and "different data" in got.unknown and f"{MODEL}/lens/seed1" in got.unknown
    assert not training_data.paper_comparable(got, "table2")[0]
    # the default runs folder: beside the nearest `tidy` folder (results/tidy/ablations -> results/runs)
    assert training_data.runs_folder(tmp_path / "r" / "tidy" / "ablations") == (tmp_path / "r" / "runs").resolve()
    assert training_data.runs_folder(tmp_path / "tidy", tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_ablation_table_shows_every_trained_arm(known_tidy, tmp_path):
    """The `ablations` target's baselines get rows after the paper's four, in the style order."""
    extra = tmp_path / "tidy"
    extra.mkdir()
    for name in ("eval_samples.parquet", "train_metrics.parquet"):
        frame = pd.read_parquet(known_tidy / name)
        copies = [frame]
        for algo in ("w_reinforce", "nsr", "dr_grpo", "lens_mixed_only"):
            copy = frame[frame["algo"] == "grpo"].copy()
            copy["algo"] = algo
            copies.append(copy)
        pd.concat(copies, ignore_index=True).to_parquet(extra / name, index=False)
    data = run_table(tab_ablation, extra, tmp_path / "out")
    assert set(data["algo"]) == {"grpo", "lens", "lens_mixed_only", "dr_grpo", "nsr", "w_reinforce"}
    # a copy of GRPO's samples gives GRPO's numbers
    nsr = data[(data.algo == "nsr") & (data.k == 1) & (data.subset == "all")]["mean"].iloc[0]
    assert nsr == pytest.approx(100 / 3, abs=1e-4)
    md = (tmp_path / "out" / "tab_ablation.md").read_text()
    order = [md.index(f"{label} (ours") for label in ("GRPO", "LENS (mixed only)", "LENS", "Dr. GRPO", "NSR",
                                                       "W-REINFORCE")]
    assert order == sorted(order)
    assert "Not run" in md and "LENS (negative only)" in md.split("Not run")[1]


def test_accuracy_by_level_table_values(known_tidy, tmp_path):
    data = run_table(tab_accuracy_by_level, known_tidy, tmp_path)
    means = {(r.level, r.algo): r.mean for r in data.itertuples()}
    assert means == pytest.approx({
        ("1", "grpo"): 87.5, ("1", "lens"): 100.0, ("1", "lens_minus_grpo"): 12.5,
        ("4", "grpo"): 12.5, ("4", "lens"): 37.5, ("4", "lens_minus_grpo"): 25.0,
        ("5", "grpo"): 0.0, ("5", "lens"): 12.5, ("5", "lens_minus_grpo"): 12.5,
        ("4-5", "grpo"): 6.25, ("4-5", "lens"): 25.0, ("4-5", "lens_minus_grpo"): 18.75,
        ("all", "grpo"): 100 / 3, ("all", "lens"): 50.0, ("all", "lens_minus_grpo"): 50 / 3,
    })
    assert data["level"].drop_duplicates().tolist() == ["1", "4", "5", "4-5", "all"]
    assert (data["ci_low"] <= data["mean"] + 1e-9).all() and (data["mean"] <= data["ci_high"] + 1e-9).all()
    diff = data[data.algo == "lens_minus_grpo"]
    assert diff["p_value"].between(0, 1, inclusive="right").all()
    assert data.loc[data.algo != "lens_minus_grpo", "p_value"].isna().all()
    # GRPO level 1: seeds at 100 % and 75 % -> sample std 17.68
    grpo1 = data[(data.level == "1") & (data.algo == "grpo")].iloc[0]
    assert grpo1["std_seeds"] == pytest.approx(100 * 0.25 / np.sqrt(2), abs=1e-3)
    # hard subset: no resample can make LENS worse than GRPO here (every per-seed LENS value >= GRPO's)
    hard = diff[diff.level == "4-5"].iloc[0]
    assert hard["ci_low"] >= 0
    md = (tmp_path / "tab_accuracy_by_level.md").read_text()
    assert "| Level 4-5 | 2 | 6.2 ± 8.8 [" in md and "LENS − GRPO" in md
    assert "Training data: " in md  # named in every table (here: unknown, no run configs)
    tex = (tmp_path / "tab_accuracy_by_level.tex").read_text()
    assert r"LENS $-$ GRPO" in tex and r"\midrule" in tex


def test_paired_bootstrap_hand_cases():
    rng = np.random.default_rng(1)
    base = rng.random((2, 30))
    same = stats.paired_bootstrap(base, base, n_boot=500, seed=0)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    one_seed = base[:1]
    shifted = stats.paired_bootstrap(one_seed + 0.1, one_seed, n_boot=500, seed=0)
    # one seed per arm and a constant shift on every problem: paired resamples all differ by exactly 0.1
    assert shifted["diff"] == pytest.approx(0.1)
    assert shifted["ci_low"] == pytest.approx(0.1) and shifted["ci_high"] == pytest.approx(0.1)
    assert shifted["p_value"] == pytest.approx(1 / 501)
    flipped = stats.paired_bootstrap(one_seed, one_seed + 0.1, n_boot=500, seed=0)
    assert flipped["diff"] == pytest.approx(-0.1) and flipped["p_value"] == shifted["p_value"]
    noisy = stats.paired_bootstrap(base + rng.normal(0, 0.2, (2, 30)), base, n_boot=500, seed=0)
    assert noisy["ci_low"] <= noisy["diff"] <= noisy["ci_high"] and 0 < noisy["p_value"] <= 1
    assert stats.paired_bootstrap(one_seed, one_seed + 0.1, n_boot=500, seed=0) == flipped  # seeded: reproducible
    # with two seeds per arm, resampling seeds independently in each arm widens the interval around 0.1
    two = stats.paired_bootstrap(base + 0.1, base, n_boot=500, seed=0)
    assert two["diff"] == pytest.approx(0.1) and two["ci_low"] < 0.1 < two["ci_high"]
    with pytest.raises(ValueError):
        stats.paired_bootstrap(base, base[:, :5], n_boot=10)


def test_empty_tidy_dir_is_a_clear_error(tmp_path, capsys):
    for module in (tab_pass_at_k, tab_ablation, tab_accuracy_by_level):
        assert module.main(["--tidy", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
        assert "eval_samples.parquet: not found" in capsys.readouterr().err


def test_latex_escape_and_table_shape():
    from analysis import style

    assert style.latex_escape("p < 0.001 & 50% ± Δ − x_1") == r"p $<$ 0.001 \& 50\% $\pm$ $\Delta$ $-$ x\_1"
    tex = style.latex_table(["A", "B"], [["1", "2"], ["3", "4"]], "cap", "tab:x", rules_before={1})
    body = tex.splitlines()
    assert body[body.index(r"1 & 2 \\") + 1] == r"\midrule" and tex.count(r"\midrule") == 2
    md = style.markdown_table(["A", "B"], [["x|y", "2"]])
    assert md.splitlines() == ["| A | B |", "| --- | ---: |", "| x\\|y | 2 |"]


def _with_group_shares(tidy: Path, out: Path) -> Path:
    """The known tidy tables plus groups/{mixed,all_correct}_frac = 0.5, 0.1 at every step."""
    out.mkdir()
    (out / "eval_samples.parquet").write_bytes((tidy / "eval_samples.parquet").read_bytes())
    metrics = pd.read_parquet(tidy / "train_metrics.parquet")
    steps = metrics[metrics.metric == "groups/all_wrong_frac"]
    extra = [steps.assign(metric=name, value=value) for name, value in
             (("groups/mixed_frac", 0.5), ("groups/all_correct_frac", 0.1))]
    pd.concat([metrics, *extra], ignore_index=True).to_parquet(out / "train_metrics.parquet")
    return out


def _with_costs(tidy: Path) -> Path:
    """The tidy tables plus cost metrics at the 10 rollout steps up to the final step 10: GRPO generates
    100 completion tokens per step, LENS 80 (seed 1: 90); 8 completions, 40 prompt tokens, 1 s of
    generation, 0.25 s of scoring and 2 s in all per step, on 2 processes, no GPU."""
    metrics = pd.read_parquet(tidy / "train_metrics.parquet")
    per_step = {("grpo", 0): 100.0, ("grpo", 1): 100.0, ("lens", 0): 80.0, ("lens", 1): 90.0}
    extra = [{"model": MODEL, "algo": algo, "seed": seed, "step": step, "metric": name, "value": value}
             for (algo, seed), tokens in per_step.items() for step in range(1, 11) for name, value in (
                 ("cost/completion_tokens", tokens), ("cost/completions", 8.0), ("cost/prompt_tokens", 40.0),
                 ("cost/trained_tokens", tokens + 40), ("cost/processes", 2.0), ("cost/gpus", 0.0),
                 ("time/generation_s", 1.0), ("time/scoring_s", 0.25), ("time/step_s", 2.0))]
    pd.concat([metrics, pd.DataFrame(extra)], ignore_index=True).to_parquet(tidy / "train_metrics.parquet")
    return tidy


def test_leaderboard_difference_at_equal_generated_tokens_by_hand(known_tidy, tmp_path):
    data = run_table(tab_leaderboard, _with_costs(_with_group_shares(known_tidy, tmp_path / "tidy")), tmp_path / "out")
    lens, grpo = data.iloc[0], data.iloc[1]
    # T = min(mean totals) = min((800 + 900) / 2, 1000) = 850 tokens. LENS seed 0 (800 in all) stays at its
    # last checkpoint: Level 4-5 (2/4 + 1/4) / 2 = 0.375; seed 1 reaches 850 at step 850/90 = 9.44, between
    # step 0 (900 tokens later: w = 850/900) and step 10: (1/4 + 0) / 2 x 850/900 = 0.1181. GRPO at 850 of
    # 1000: 0.85 x its step-10 value (step 0 is 0): seed 0 0.85 x 0.125, seed 1 0.
    lens_hard = (0.375 + 0.125 * 850 / 900) / 2
    grpo_hard = (0.85 * 0.125 + 0) / 2
    assert lens["equal_tokens"] == pytest.approx(850)
    assert lens["diff_hard_equal_tokens"] == pytest.approx(100 * (lens_hard - grpo_hard))
    assert lens["diff_hard_equal_tokens_low"] <= lens["diff_hard_equal_tokens"] <= lens["diff_hard_equal_tokens_high"]
    assert lens["curve_benchmark"] == "math500" and np.isnan(grpo["diff_hard_equal_tokens"])
    # the equal-step difference is unchanged by the costs
    assert lens["diff_hard"] == pytest.approx(18.75)


def test_interpolation_in_tokens():
    from analysis.summary import interpolate_at_tokens

    steps, tokens = np.array([0, 5, 10]), np.array([0.0, 400.0, 1000.0])
    values = np.array([[0.0, 1.0], [0.5, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(interpolate_at_tokens(steps, tokens, values, 400.0), [0.5, 1.0])  # a checkpoint
    np.testing.assert_allclose(interpolate_at_tokens(steps, tokens, values, 700.0), [0.75, 0.5])  # halfway
    np.testing.assert_allclose(interpolate_at_tokens(steps, tokens, values, 1500.0), [1.0, 0.0])  # clamped
    np.testing.assert_allclose(interpolate_at_tokens(steps[::-1], tokens[::-1], values[::-1], 200.0), [0.25, 1.0])


def test_cost_table_by_hand(known_tidy, tmp_path):
    from analysis import tab_cost

    known_tidy = _with_costs(_with_group_shares(known_tidy, tmp_path / "tidy"))
    assert tab_cost.main(["--tidy", str(known_tidy), "--out", str(tmp_path / "out")]) == 0
    data = pd.read_csv(tmp_path / "out" / "tab_cost.csv")
    runs = data.set_index(["algo", "seed"])
    # 10 steps: 800 / 900 / 1,000 completion tokens, 80 completions, 400 prompt tokens, 20 s in all of
    # which 10 s generation and 2.5 s scoring, so 7.5 s the rest; no GPU-hours on the CPU
    assert runs.loc[("lens", 0), "completion_tokens"] == 800 and runs.loc[("lens", 1), "completion_tokens"] == 900
    assert runs.loc[("grpo", 0), "trained_tokens"] == 1400 and (data["completions"] == 80).all()
    assert (data["prompt_tokens"] == 400).all() and (data["steps"] == 10).all() and (data["processes"] == 2).all()
    assert (data["wall_s"] == 20).all() and (data["other_s"] == 7.5).all() and (data["gpu_hours"] == 0).all()
    md = (tmp_path / "out" / "tab_cost.md").read_text()
    # thousands of tokens: LENS's mean with its smallest and largest run
    assert "| LENS | 2 | 10 | 80 [80, 80] |" in md and " [0.8, 0.9] | 0.4 [0.4, 0.4] |" in md
    assert "| 50 / 12 / 38 |" in md


def test_leaderboard_values_by_hand(known_tidy, tmp_path):
    data = run_table(tab_leaderboard, _with_group_shares(known_tidy, tmp_path / "tidy"), tmp_path / "out")
    assert data["algo"].tolist() == ["lens", "grpo"] and data["rank"].tolist() == [1, 2]  # by Level 4-5
    lens, grpo = data.iloc[0], data.iloc[1]
    # Level 4-5 = p2 (level 4), p3 (level 5). LENS seed 0: 2/4, 1/4; seed 1: 1/4, 0 -> (3/8 + 1/8) / 2 = 25 %.
    # GRPO seed 0: 1/4, 0; seed 1: 0, 0 -> 6.25 %.
    assert lens["hard"] == pytest.approx(25.0) and grpo["hard"] == pytest.approx(6.25)
    assert lens["diff_hard"] == pytest.approx(18.75) and np.isnan(grpo["diff_hard"])
    # one comparison in the table: Holm's adjustment leaves its p-value; the baseline has none
    assert lens["p_holm"] == lens["p_value"] and np.isnan(grpo["p_holm"])
    assert lens["hard_low"] <= lens["hard"] <= lens["hard_high"]
    # Pass@1 = the tab_pass_at_k numbers; the largest k with n = 4 samples is 4.
    assert grpo["pass1"] == pytest.approx(100 / 3) and lens["k"] == 4 and lens["passk"] == pytest.approx(250 / 3)
    # all-wrong share: mean over steps and seeds; LENS (0.5 + 0.3) / 2, GRPO (0.35 + 0.55) / 2.
    assert lens["all_wrong_frac"] == pytest.approx(0.4) and grpo["all_wrong_frac"] == pytest.approx(0.45)
    # mean |A - A_GRPO| = sum over group types of share x delta: LENS seed 0 0.5*0.04 + 0.5*0.02 = 0.03,
    # seed 1 0.5*0.04 + 0.3*0.02 = 0.026 -> 0.028; GRPO 0.
    assert lens["delta_vs_grpo"] == pytest.approx(0.028) and grpo["delta_vs_grpo"] == 0
    md = (tmp_path / "out" / "tab_leaderboard.md").read_text()
    assert "| 1 | Llama-3.1-8B-Instruct | LENS |" in md and "| 2 |  | GRPO |" in md and "| +18.8 [" in md
    assert "Training data: " in md


# --------------------------------------------------------------------------------------------
# Sensitivity (target `sweeps`): hand-made tidy tables of GRPO's main runs and two alpha values
# --------------------------------------------------------------------------------------------
def test_sensitivity_table_values_by_hand(tmp_path):
    from analysis import tab_sensitivity
    from analysis.summary import SENSITIVITY_COLUMNS

    data = run_table(tab_sensitivity, write_sweep_tidy(tmp_path / "tidy"), tmp_path / "out")
    assert list(data.columns) == SENSITIVITY_COLUMNS
    assert data["arm"].tolist() == ["grpo", "lens/alpha-1", "lens/alpha-4"]
    assert data["algo"].tolist() == ["grpo", "lens", "lens"] and data["value"].tolist()[1:] == [1, 4]
    grpo, one, four = (data.iloc[i] for i in range(3))
    # all problems: GRPO seeds 1/3 and 1/6 -> 25 %; alpha 1: 1/2 and 1/3 -> 41.7 %; alpha 4: 5/6 and 1/2 -> 66.7 %
    assert grpo["acc"] == pytest.approx(25.0) and one["acc"] == pytest.approx(125 / 3)
    assert four["acc"] == pytest.approx(200 / 3)
    # Levels 4-5 (p2, p3): GRPO 0; alpha 1: 1/4 and 0 -> 12.5 %; alpha 4: 3/4 and 1/4 -> 50 %
    assert grpo["hard"] == 0 and one["hard"] == pytest.approx(12.5) and four["hard"] == pytest.approx(50.0)
    assert one["diff"] == pytest.approx(50 / 3) and four["diff"] == pytest.approx(125 / 3)
    assert one["diff_hard"] == pytest.approx(12.5) and four["diff_hard"] == pytest.approx(50.0)
    assert np.isnan(grpo["diff"]) and np.isnan(grpo["diff_hard"]) and np.isnan(one["vs_first_hard"])
    # Holm across the sweep's two values, per subset; GRPO's row compares with nothing
    from analysis.stats import holm

    for raw, adjusted in (("p_value", "p_holm"), ("p_value_hard", "p_holm_hard")):
        np.testing.assert_allclose([one[adjusted], four[adjusted]], holm([one[raw], four[raw]]))
        assert np.isnan(grpo[adjusted])
    assert four["vs_first_hard"] == pytest.approx(37.5) and four["first_value"] == 1
    for r in (one, four):
        assert (r["diff_low"] <= r["diff"] <= r["diff_high"]
                and r["diff_hard_low"] <= r["diff_hard"] <= r["diff_hard_high"])
        assert r["hard_low"] <= r["hard"] <= r["hard_high"] and 0 < r["p_value"] <= 1
    # mean |A - A_GRPO| over mixed groups, weighted by their share: (0.5 x 0.10 + 0.25 x 0.04 + 0.25 x 0.02
    # + 0 x 0.5) / 1.0 = 0.065 (the per-step mean would be 0.165); all-wrong 0.2 at every step
    assert four["delta_mixed"] == pytest.approx(0.065) and four["delta_all_wrong"] == pytest.approx(0.2)
    assert one["delta_mixed"] == pytest.approx(0.01) and grpo["delta_all_wrong"] == 0
    assert (grpo["n_seeds"], grpo["n_problems"], grpo["n_problems_hard"], grpo["step"]) == (2, 3, 2, 10)
    md = (tmp_path / "out" / "tab_sensitivity.md").read_text()
    assert "| Llama-3.1-8B-Instruct | GRPO | 25.0 [" in md and "|  | LENS, alpha = 4 | 66.7 [" in md
    assert "+50.0 [" in md and "+37.5 [" in md and "| 0.065 | 0.200 |" in md
    assert r"\midrule" in (tmp_path / "out" / "tab_sensitivity.tex").read_text()


def test_sensitivity_table_picks_the_configured_arms_and_orders_values(tmp_path):
    from analysis import summary, tab_sensitivity

    tidy = write_sweep_tidy(tmp_path / "tidy")
    data = run_table(tab_sensitivity, tidy, tmp_path / "out", "--arms", "lens/alpha-4")
    assert data["arm"].tolist() == ["grpo", "lens/alpha-4"]  # a value no longer configured is left out
    assert np.isnan(data["vs_first_hard"].iloc[1])  # the only value is its sweep's first
    assert summary._value_order(["16", "4", "0.25"]) == ["0.25", "4", "16"]  # numbers, not text order
    assert summary._value_order(["standardize", "demean"]) == ["demean", "standardize"]
    assert tab_sensitivity.main(["--tidy", str(tidy), "--out", str(tmp_path / "x"), *FAST,
                                 "--arms", "lens/alpha-16"]) == 1  # an arm without runs is an error


def test_sensitivity_table_without_sweep_runs_is_a_clear_error(known_tidy, tmp_path, capsys):
    from analysis import tab_sensitivity

    assert tab_sensitivity.main(["--tidy", str(known_tidy), "--out", str(tmp_path), *FAST]) == 1
    assert "sweeps" in capsys.readouterr().err
