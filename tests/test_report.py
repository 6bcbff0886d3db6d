"""analysis.report: provenance, verdict wording derived from the numbers, training-metric summaries,
embedded figures, and a report (not a crash) when inputs are missing."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import MATH_DAPO, REPO, write_known_tidy, write_run_configs

from analysis import (
    fig_accuracy_by_level,
    fig_accuracy_vs_compute,
    fig_benchmarks,
    fig_confident_mistakes,
    fig_negative_group_ratio,
    fig_pass_at_k,
    fig_training_curves,
    fig_training_dynamics,
    fig_weight_function,
    power,
    report,
    style,
    tab_ablation,
    tab_accuracy_by_level,
    tab_benchmarks,
    tab_confident_mistakes,
    tab_cost,
    tab_pass_at_k,
)
from analysis.summary import SENSITIVITY_COLUMNS


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """results/-like folder: tidy tables, every figure (PNG only, low dpi) and every table."""
    root = tmp_path_factory.mktemp("results")
    tidy = write_known_tidy(root)
    write_run_configs(root / "runs", tidy, MATH_DAPO)  # Table 1's training data: its rows go beside ours
    metrics = pd.read_parquet(tidy / "train_metrics.parquet")  # and what each step cost
    cost = metrics[metrics["metric"] == "groups/all_wrong_frac"]
    pd.concat([metrics, *(cost.assign(metric=m, value=v) for m, v in (
        ("cost/completion_tokens", 100.0), ("cost/completions", 8.0), ("cost/prompt_tokens", 40.0),
        ("cost/trained_tokens", 140.0), ("cost/processes", 1.0), ("cost/gpus", 0.0), ("time/generation_s", 1.0),
        ("time/scoring_s", 0.5), ("time/step_s", 3.0)))], ignore_index=True).to_parquet(tidy / "train_metrics.parquet")
    fig_args = ["--tidy", str(tidy), "--out", str(root / "figures"), "--formats", "png", "--dpi", "40"]
    for module in (fig_accuracy_by_level, fig_training_curves, fig_pass_at_k, fig_accuracy_vs_compute, fig_benchmarks):
        assert module.main([*fig_args, "--bootstrap-samples", "200"]) == 0
    assert fig_negative_group_ratio.main(fig_args) == 0
    assert fig_weight_function.main(fig_args) == 0
    assert fig_confident_mistakes.main(fig_args) == 0
    assert fig_training_dynamics.main(fig_args) == 0
    for module in (tab_pass_at_k, tab_ablation, tab_accuracy_by_level, tab_benchmarks):
        assert module.main(["--tidy", str(tidy), "--out", str(root / "tables"), "--bootstrap-samples", "200"]) == 0
    assert tab_confident_mistakes.main(["--tidy", str(tidy), "--out", str(root / "tables")]) == 0
    assert tab_cost.main(["--tidy", str(tidy), "--out", str(root / "tables")]) == 0
    config = root / "config.yaml"
    config.write_text("algorithms: [grpo, lens]\nseeds: [0, 1]\nmodels:\n  llama31_8b_instruct: {}\n")
    assert report.main(["--tidy", str(tidy), "--figures", str(root / "figures"), "--tables", str(root / "tables"),
                        "--out", str(root / "REPORT.md"), "--config", str(config)]) == 0
    return root


def test_report_states_provenance(results):
    text = (results / "REPORT.md").read_text()
    assert f"- config: `{results / 'config.yaml'}`" in text and "- config seeds: [0, 1]" in text
    assert "GRPO seeds [0, 1]; LENS seeds [0, 1]" in text
    assert f"pandas {importlib.metadata.version('pandas')}" in text
    assert "- git commit: `" in text and "None: every figure, table and tidy table was found." in text


def test_cost_and_training_dynamics_sections(results):
    text = (results / "REPORT.md").read_text()
    cost = text[text.index("## What the runs cost"):text.index("## Ablation")]
    # 4 steps x 100 tokens = 0.4 thousand per run, 12 s of which 4 s generation, 2 s scoring: 33 / 17 / 50 %
    assert "| GRPO | 2 | 4 | 32 [32, 32] | 0.4 [0.4, 0.4] |" in cost and "| 33 / 17 / 50 |" in cost
    assert "fig_accuracy_vs_compute.png" in cost
    assert "fig_training_dynamics.png" in text[text.index("## Training dynamics"):]


def test_verdict_follows_the_table(results):
    text = (results / "REPORT.md").read_text()
    table = pd.read_csv(results / "tables" / "tab_accuracy_by_level.csv", dtype={"level": str})
    hard = table[(table.level == "4-5") & (table.algo == "lens_minus_grpo")].iloc[0]
    expected = report.verdict(hard["mean"], hard["ci_low"], hard["ci_high"], hard["p_value"], "lens", "grpo",
                              "Levels 4-5")
    assert expected in text
    assert "LENS − GRPO = +18.8 points" in text  # 25.0 % - 6.25 % (tests/test_collect.py FINAL)
    assert "Accuracy GRPO 6.2 % vs LENS 25.0 % at step 10, 2 seed(s) each." in text


def test_change_from_step_0(results):
    text = (results / "REPORT.md").read_text()
    section = text[text.index("## Accuracy during training"):text.index("## Pass@k")]
    assert "### Change from step 0 to the final step" in section
    # GRPO, tests/test_collect.py: step 0 [0.5, 0, 0] on p1-p3 for both seeds; step 10 seed 0
    # [1, 0.25, 0], seed 1 [0.75, 0, 0]: 16.7 % -> 33.3 %, a mean per-problem gain of 1/6
    assert "| Llama-3.1-8B-Instruct | GRPO | all levels | 3 | 16.7 | 33.3 | +16.7 [" in section
    assert "|  |  | Level 4-5 | 2 | 0.0 | 6.2 | +6.2 [" in section
    assert "- **GRPO** (Llama-3.1-8B-Instruct, 2 seed(s), step 0 → step 10)" in section


def test_change_reading_follows_the_interval():
    def rows(diff, low, high, level_high=1.0):
        return pd.DataFrame([
            {"model": "m", "algo": "grpo", "subset": "all", "diff": diff, "ci_low": low, "ci_high": high,
             "final_step": 60, "n_seeds": 2},
            {"model": "m", "algo": "grpo", "subset": "level_1", "diff": -2.0, "ci_low": -4.0,
             "ci_high": level_high, "final_step": 60, "n_seeds": 2}])

    assert "GRPO** (m, 2 seed(s), step 0 → step 60) improved on the whole set: +2.7 points [+0.2, +5.3]." \
        in report.change_reading(rows(2.7, 0.2, 5.3))
    assert "got worse on the whole set: −2.7 points [−5.3, −0.2]." in report.change_reading(rows(-2.7, -5.3, -0.2))
    text = report.change_reading(rows(2.2, -0.1, 4.7, level_high=-0.5))
    assert "no significant change on the whole set: +2.2 points [−0.1, +4.7]." in text
    assert text.endswith("Worse on Level 1 (−2.0 [−4.0, −0.5]).")
    assert report.change_reading(rows(2.2, -0.1, 4.7)).endswith("No level's interval lies wholly below 0.")


def test_the_change_table_uses_the_bootstrap_samples_it_is_given(results, tmp_path):
    """--bootstrap-samples (the workflow passes figures.bootstrap_samples, as to every figure and
    table) sets the change table's resamples; without it lens.config's default applies."""
    from lens.config import FiguresConfig

    out = tmp_path / "REPORT.md"
    assert report.main(["--tidy", str(results / "tidy"), "--figures", str(results / "figures"),
                        "--tables", str(tmp_path / "tables"), "--out", str(out), "--bootstrap-samples", "300"]) == 0
    assert "(300 resamples; `analysis.stats.change_from_start`)" in out.read_text()
    report.build_report(results / "tidy", results / "figures", tmp_path / "tables", out, None)
    assert f"({FiguresConfig().bootstrap_samples} resamples; `analysis.stats.change_from_start`)" in out.read_text()
    assert FiguresConfig().bootstrap_samples != 300


@pytest.mark.parametrize("diff, low, high, phrase", [
    (3.0, 0.5, 5.5, "**LENS beats GRPO on Levels 4-5** by 3.0 points"),
    (-3.0, -5.5, -0.5, "**LENS is worse than GRPO on Levels 4-5** by 3.0 points"),
    (1.0, -1.0, 3.0, "**No significant difference on Levels 4-5 at this scale**: the interval covers 0"),
    (0.0, 0.0, 0.0, "**No significant difference on Levels 4-5 at this scale**"),
])
def test_verdict_wording(diff, low, high, phrase):
    text = report.verdict(diff, low, high, 0.04, "lens", "grpo", "Levels 4-5")
    assert text.startswith(phrase)
    assert "p = 0.040" in text and "95 % CI" in text


def test_training_metric_summaries(results):
    text = (results / "REPORT.md").read_text()
    # GRPO's all-wrong share per step, mean over seeds: 60, 50, 40, 30 %; first/last 10 % of 4 steps = 1 step
    assert "| Llama-3.1-8B-Instruct | GRPO | 4 | 60.0 % | 30.0 % | 45.0 % | ~45 % → ~35 % |" in text
    # LENS in mixed groups: |A - A_GRPO| = 0.04 against |A_GRPO| = 0.8 -> 5 %
    assert "| Llama-3.1-8B-Instruct | LENS | mixed |  | 0.8000 | 0.0400 | 5.0 % |" in text
    assert "| Llama-3.1-8B-Instruct | LENS | all wrong | 40.0 % | 0.0000 | 0.0200 | — (GRPO gives 0) |" in text


def test_advantage_change_weights_steps_by_group_share():
    rows = []
    for step, frac, delta in ((1, 0.75, 0.1), (2, 0.25, 0.5)):
        rows += [{"model": "m", "algo": "lens", "seed": 0, "step": step, "metric": m, "value": v} for m, v in
                 (("groups/mixed_frac", frac), ("adv/grpo_abs_mean/mixed", 1.0), ("adv/delta_vs_grpo/mixed", delta))]
    out = report.advantage_change(pd.DataFrame(rows)).iloc[0]
    # over groups: (0.75 * 0.1 + 0.25 * 0.5) / (0.75 + 0.25) = 0.2, not the per-step mean 0.3
    assert out["delta_abs_mean"] == pytest.approx(0.2) and out["relative"] == pytest.approx(0.2)


def test_ablation_table_from_the_optional_target(results, tmp_path):
    tables = tmp_path / "tables"
    (tables / "ablations").mkdir(parents=True)
    (tables / "ablations" / "tab_ablation.md").write_text("ABLATION TABLE MARKER\n")
    report.build_report(results / "tidy", results / "figures", tables, tmp_path / "REPORT.md", None)
    assert "ABLATION TABLE MARKER" in (tmp_path / "REPORT.md").read_text()


def test_leaderboard_section_when_the_ablations_target_ran(results, tmp_path):
    tables = tmp_path / "tables"
    (tables / "ablations").mkdir(parents=True)
    out = tmp_path / "REPORT.md"
    report.build_report(results / "tidy", results / "figures", tables, out, None)
    assert "## Leaderboard" not in out.read_text()
    (tables / "ablations" / "tab_leaderboard.md").write_text("LEADERBOARD MARKER\n")
    report.build_report(results / "tidy", results / "figures", tables, out, None)
    text = out.read_text()
    assert "## Leaderboard" in text and "LEADERBOARD MARKER" in text
    assert "fig_leaderboard.png` is missing" in text  # the figure is named even when absent


def test_figures_are_embedded_by_relative_path(results):
    text = (results / "REPORT.md").read_text()
    for stem in ("fig_accuracy_by_level", "fig_training_curves", "fig_pass_at_k", "fig_negative_group_ratio",
                 "fig_weight_function"):
        assert f"](figures/{stem}.png)" in text
        assert (results / "figures" / f"{stem}.png").exists()
    assert "| GRPO (paper, Table 1) |" in text  # the Pass@k table is included


def test_report_with_missing_inputs_lists_them(tmp_path):
    out = tmp_path / "REPORT.md"
    assert report.main(["--tidy", str(tmp_path / "tidy"), "--figures", str(tmp_path / "f"), "--tables",
                        str(tmp_path / "t"), "--out", str(out)]) == 0
    text = out.read_text()
    missing = text[text.index("## Missing inputs"):]
    for what in ("evaluation samples", "training metrics", "tab_accuracy_by_level.md", "fig_pass_at_k.png",
                 "config file (pass `--config`)"):
        assert what in missing
    assert "The verdict needs `tab_accuracy_by_level.csv`, which is missing." in text
    assert "### Change from step 0 to the final step\n\n(Needs the evaluation samples, which are missing.)" in text
    assert "(Not built: the ablation arms" in text  # an optional target, not a missing input
    assert "tab_ablation" not in missing
    assert "- git commit: `" in text and str(REPO) not in missing


def test_report_survives_a_malformed_table(results, tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "tab_accuracy_by_level.csv").write_text("model,level\nm,4-5\n")
    out = tmp_path / "REPORT.md"
    report.build_report(results / "tidy", results / "figures", tables, out, None)
    text = out.read_text()
    assert "The verdict could not be derived from `tab_accuracy_by_level.csv`" in text
    assert "tab_accuracy_by_level.csv (malformed)" in text[text.index("## Missing inputs"):]


def test_power_section_of_the_run_and_the_paper(results):
    text = (results / "REPORT.md").read_text()
    assert "## Power: could this run tell?" in text
    # the paper's design at Table 1's Pass@1, no seed variance: stats.binomial_design's number
    llama = report.paper_numbers.PASS_AT_K["table1"]
    acc = [llama[("llama31_8b_instruct", a)][1] / 100 for a in ("lens", "grpo")]
    mdd = report.stats.binomial_design(acc, n_seeds=2, n_problems=262, n_samples=16)["mdd"]
    assert f"| Llama-3.1-8B-Instruct | 54.1 % | 56.6 % | +2.5 | {100 * mdd:.1f} |" in text
    assert "LENS vs GRPO, Llama-3.1-8B-Instruct** (2 + 2 seeds, 2 Level 4-5 problems" in text
    # no `ablations` target here: what the run resolves for an arm that changes training is not estimated
    assert "**An arm that changes training**: not estimated." in text
    assert "Seeds per arm the paper's design needs" in text and "seed SD 2 point(s), 2.5 points: 12" in text


def test_run_power_uses_the_final_step_level_4_5_and_both_arms_variance():
    rows = []
    # 2 seeds x 3 Level 4-5 problems x 4 samples per arm at the final step 5 (and a step-0 row and a
    # Level 1 problem that must be ignored)
    correct = {("grpo", 0): [1, 0, 0], ("grpo", 1): [0, 0, 1], ("lens", 0): [1, 1, 0], ("lens", 1): [1, 0, 1]}
    for (algo, seed), per_problem in correct.items():
        for j, c in enumerate(per_problem):
            for k in range(4):
                rows.append({"model": "m", "algo": algo, "seed": seed, "step": 5, "benchmark": "b",
                             "problem_id": f"p{j}", "level": 4 + j % 2, "sample_idx": k, "correct": bool(c and k < 2)})
            rows.append({"model": "m", "algo": algo, "seed": seed, "step": 0, "benchmark": "b",
                         "problem_id": f"p{j}", "level": 4, "sample_idx": 0, "correct": True})
        rows.append({"model": "m", "algo": algo, "seed": seed, "step": 5, "benchmark": "b", "problem_id": "easy",
                     "level": 1, "sample_idx": 0, "correct": True})
    samples = pd.DataFrame(rows)
    out = power.run_power(samples, "m", "lens", "grpo")
    scores = {a: np.array([[0.5 * c for c in correct[(a, s)]] for s in (0, 1)]) for a in ("lens", "grpo")}
    comps = [report.stats.variance_components(scores[a]) for a in ("lens", "grpo")]
    se = report.stats.difference_se(comps, [2, 2], 3)
    assert out["n_problems"] == 3 and out["n_seeds"] == [2, 2] and out["n_samples"] == 4 and out["step"] == 5
    assert out["diff"] == pytest.approx(scores["lens"].mean() - scores["grpo"].mean())
    # Same seeds in both arms: paired by seed. d = lens - grpo = [[0, .5, 0], [.5, 0, 0]]; seed means of d
    # 1/6 and 1/6 (no seed spread: seed_var 0); problem means [1/4, 1/4, 0], variance 1/48, so
    # SE = sqrt(1/48 / 3) = 1/12, against the unpaired design's SE of the same runs.
    assert out["design"] == "paired" and out["seed_df"] == 1 and out["paired_seed_sd"] == 0
    assert out["se"] == pytest.approx(1 / 12) and out["mdd"] == pytest.approx(2.8015852 / 12, rel=1e-6)
    assert out["independent_mdd"] == pytest.approx(2.8015852 * se, rel=1e-6)
    # Other seeds for LENS: independent runs, each arm's own variance components
    relabelled = samples.assign(seed=np.where(samples["algo"] == "lens", samples["seed"] + 2, samples["seed"]))
    out = power.run_power(relabelled, "m", "lens", "grpo")
    assert out["design"] == "independent" and "independent_mdd" not in out
    assert out["se"] == pytest.approx(se) and out["mdd"] == pytest.approx(2.8015852 * se, rel=1e-6)


def test_config_summary_names_overlays_and_stand_ins(tmp_path):
    from analysis.report import config_summary

    path = tmp_path / "config.yaml"
    path.write_text("# merged from: config/paper.yaml, config/paper-rehearsal.yaml\n"
                    "models:\n  llama31_8b_instruct: {model: {path: null, tiny: {arch: llama}}, kind: standin}\n"
                    "  tiny_llama: {model: {tiny: {arch: llama}}, kind: tiny}\n"
                    "  qwen25_3b: {model: {path: Qwen/Qwen2.5-3B}}\n")
    lines, missing = config_summary(str(path))
    assert not missing
    assert lines[0].endswith(", merged from: config/paper.yaml, config/paper-rehearsal.yaml")
    # a warmed-up tiny model is the embedded run's own model, not a stand-in; a hub model is neither
    assert "- stand-ins: ['llama31_8b_instruct'] are tiny models" in "\n".join(lines)


def _sweep_rows(vs_first, against):
    """tab_sensitivity.csv rows of one alpha sweep: GRPO, alpha 1, alpha 4; intervals as (diff, low, high)."""
    base = {"model": "m", "benchmark": "math500", "step": 10, "n_seeds": 2, "n_problems": 3, "n_problems_hard": 2,
            "acc": 40.0, "acc_low": 30.0, "acc_high": 50.0, "hard": 20.0, "hard_low": 10.0, "hard_high": 30.0}
    rows = [{**base, "arm": "grpo", "algo": "grpo", "param": None, "value": None}]
    for value, (d, lo, hi) in zip(("1", "4"), against, strict=True):
        rows.append({**base, "arm": f"lens/alpha-{value}", "algo": "lens", "param": "alpha", "value": value,
                     "first_value": "1", "diff_hard": d, "diff_hard_low": lo, "diff_hard_high": hi,
                     "p_value_hard": 0.04})
    rows[2].update(zip(("vs_first_hard", "vs_first_hard_low", "vs_first_hard_high"), vs_first, strict=True),
                   p_value_vs_first=0.01)
    return pd.DataFrame(rows).reindex(columns=SENSITIVITY_COLUMNS)


@pytest.mark.parametrize("vs_first, against, phrase, versus", [
    ((5.0, 1.0, 9.0), [(1.0, -2.0, 4.0), (6.0, 2.0, 10.0)], "signal helps at this scale",
     "Better than GRPO at alpha = 4."),
    ((-5.0, -9.0, -1.0), [(1.0, -2.0, 4.0), (-4.0, -8.0, -0.5)], "signal hurts at this scale",
     "Worse than GRPO at alpha = 4."),
    ((0.5, -3.0, 4.0), [(1.0, -2.0, 4.0), (1.5, -1.0, 4.0)], "signal does nothing detectable at this scale",
     "none differs detectably from GRPO"),
], ids=["helps", "hurts", "nothing"])
def test_sensitivity_reading_follows_the_intervals(vs_first, against, phrase, versus):
    (line,) = report.sensitivity_lines(_sweep_rows(vs_first, against), "grpo")
    assert phrase in line and versus in line, line
    assert f"alpha 1 → 4 changes Level 4-5 accuracy by {style.fmt_signed(vs_first[0])} points" in line
    assert f"95 % CI [{style.fmt_signed(vs_first[1])}, {style.fmt_signed(vs_first[2])}]" in line
    assert "alpha = 1: " in line and "one seed" not in line


def test_sensitivity_section_when_the_sweeps_target_ran(results, tmp_path):
    tables = tmp_path / "tables"
    (tables / "sweeps").mkdir(parents=True)
    out = tmp_path / "REPORT.md"
    report.build_report(results / "tidy", results / "figures", tables, out, None)
    assert "## Sensitivity" not in out.read_text()
    _sweep_rows((5.0, 1.0, 9.0), [(1.0, -2.0, 4.0), (6.0, 2.0, 10.0)]).to_csv(tables / "sweeps" / "tab_sensitivity.csv",
                                                                              index=False)
    (tables / "sweeps" / "tab_sensitivity.md").write_text("SENSITIVITY MARKER\n")
    report.build_report(results / "tidy", results / "figures", tables, out, None)
    text = out.read_text()
    section = text.split("## Sensitivity", 1)[1].split("\n## ", 1)[0]
    assert "A stronger negative-group signal helps at this scale" in section and "SENSITIVITY MARKER" in section
    assert "fig_sensitivity.png` is missing" in section  # the figure is named even when absent


def test_power_section_says_whether_seeds_were_shown_to_share_random_numbers():
    from analysis.report import pairing_reading

    pairing = pd.DataFrame({"model": ["m", "m", "other"], "seed": [0, 1, 0], "arms": ["grpo lens"] * 3,
                            "compared": [2, 2, 1], "shared": [True, True, None]})
    assert pairing_reading(pairing, "m").startswith("(shown: every arm's first rollout is the same")
    assert "for 2 seed(s)" in pairing_reading(pairing, "m")
    pairing.loc[1, "shared"] = False
    assert pairing_reading(pairing, "m").startswith("(NOT shown for seed(s) 1:")
    assert pairing_reading(pairing, "other").startswith("(assumed, not checked")  # one arm: nothing compared
    assert pairing_reading(None, "m").startswith("(assumed, not checked")


def test_graded_control_effect_against_q_and_the_smallest_q_detected(tmp_path):
    board = tmp_path / "ablations" / "tab_leaderboard.csv"
    board.parent.mkdir()
    rows = [("grpo", None, None, None), ("grpo_shuffled", -43.0, -50.0, -36.0),
            ("grpo_shuffled/shuffle_frac-0.5", -20.0, -28.0, -12.0),
            ("grpo_shuffled/shuffle_frac-0.25", -9.0, -15.0, -1.0),
            ("grpo_shuffled/shuffle_frac-0.1", -2.0, -8.0, 4.0), ("lens", 1.0, -2.0, 4.0)]
    pd.DataFrame([{"model": "tiny", "algo": a, "diff_hard": d, "diff_low": lo, "diff_high": hi, "p_holm": 0.01}
                  for a, d, lo, hi in rows]).to_csv(board, index=False)
    graded = report.graded_control(pd.read_csv(board))
    assert graded["q"].tolist() == [0.1, 0.25, 0.5, 1.0] and graded["detected"].tolist() == [False, True, True, True]
    text = "\n".join(report.graded_control_lines(tmp_path))
    assert "| tiny | 0.25 | −9.0 [−15.0, −1.0] | 0.010 | yes |" in text and "| tiny | 0.1 | −2.0 [−8.0, +4.0]" in text
    assert "tiny: the smallest q detected is 0.25 (−9.0 points)" in text
    # without graded arms (the control alone, or none) there is no section
    pd.DataFrame([{"model": "tiny", "algo": "grpo_shuffled", "diff_hard": -43.0, "diff_low": -50.0, "diff_high": -36.0,
                   "p_holm": 0.01}]).to_csv(board, index=False)
    assert report.graded_control_lines(tmp_path) == []


def _arm_samples(correct: dict) -> pd.DataFrame:
    """Level 4-5 samples at the final step 10: {(algo, seed): (right of 4 on p1, right of 4 on p2)}."""
    return pd.DataFrame([{"model": "m", "algo": algo, "seed": seed, "step": 10, "benchmark": "math500",
                          "problem_id": pid, "level": level, "subject": "Algebra", "sample_idx": i,
                          "correct": i < right, "completion_tokens": 5}
                         for (algo, seed), rights in correct.items()
                         for (pid, level), right in zip((("p1", 4), ("p2", 5)), rights, strict=True) for i in range(4)])


def test_what_a_run_resolves_for_an_arm_that_changes_training(tmp_path):
    # per-seed Level 4-5 differences to GRPO (0.5 on both seeds): NSR -0.25, +0.25; W-REINFORCE 0, +0.5;
    # LENS moves the advantages by 0.3 % (shared path) and the control is broken on purpose: neither counts
    samples = _arm_samples({("grpo", 0): (2, 2), ("grpo", 1): (2, 2), ("nsr", 0): (1, 1), ("nsr", 1): (3, 3),
                            ("w_reinforce", 0): (2, 2), ("w_reinforce", 1): (4, 4), ("lens", 0): (4, 4),
                            ("lens", 1): (0, 0), ("grpo_shuffled", 0): (0, 0), ("grpo_shuffled", 1): (4, 4)})
    change = {"grpo": 0.0, "nsr": 0.5, "w_reinforce": 0.2, "lens": 0.003, "grpo_shuffled": 0.9}
    metrics = pd.DataFrame([{"model": "m", "algo": a, "seed": s, "step": 1, "metric": name, "value": v}
                            for a, delta in change.items() for s in (0, 1) for name, v in (
                                ("groups/mixed_frac", 1.0), ("adv/grpo_abs_mean/mixed", 1.0),
                                ("adv/delta_vs_grpo/mixed", delta))])
    p = power.divergent_power(samples, metrics, "m", "grpo", n_seeds=2)
    assert [a["algo"] for a in p["arms"]] == ["nsr", "w_reinforce"]
    assert p["arms"][0]["diffs"] == pytest.approx([-0.25, 0.25]) and p["arms"][1]["diffs"] == pytest.approx([0, 0.5])
    # pooled: ((0.25^2 + 0.25^2) + (0.25^2 + 0.25^2)) / (1 + 1) = 0.125 on 2 degrees of freedom
    assert p["df"] == 2 and p["sd"] == pytest.approx(np.sqrt(0.125))
    # t quantiles at 2 df: t_0.975 = 4.3027, t_0.8 = 1.0607; MDD = 5.3634 x 0.35355 / sqrt(2) = 1.3408
    assert p["mdd"] == pytest.approx((4.302653 + 1.060660) * np.sqrt(0.125) / np.sqrt(2), rel=1e-5)
    # planning (normal): (2.8016 x 0.35355 / 0.025)^2 = 1569.8 -> 1570 seeds for 2.5 points
    assert p["seeds_for"][0.025] == 1570 and p["seeds_for"][0.05] == 393
    # in REPORT.md, from the ablations target's tidy tables; without them it says what is missing
    tidy = tmp_path / "ablations"
    tidy.mkdir()
    samples.to_parquet(tidy / "eval_samples.parquet")
    metrics.to_parquet(tidy / "train_metrics.parquet")
    text = " ".join(report.divergent_power_lines(tidy, "grpo"))
    assert "minimum detectable difference **134.1 points** with 2 seeds per arm" in text
    assert "NSR (−25.0 / +25.0), W-REINFORCE (+0.0 / +50.0)" in text and "35.4 points on 2 degrees" in text
    assert "2.5 points: 1570 seeds" in text
    assert "not estimated" in " ".join(report.divergent_power_lines(tmp_path / "none", "grpo"))


def test_dynamic_sampling_leaves_the_shared_path_and_is_read_in_the_report(tmp_path):
    # grpo_dynamic's advantages are GRPO's on its own batches (delta 0), yet its batches differ: it counts as an
    # arm that changes training. Per-seed differences -0.25, +0.25: SD 0.354 on 1 degree of freedom.
    samples = _arm_samples({("grpo", 0): (2, 2), ("grpo", 1): (2, 2), ("grpo_dynamic", 0): (1, 1),
                            ("grpo_dynamic", 1): (3, 3)})
    steps = {("grpo", 1): (1, 0.0, 100), ("grpo", 2): (1, 0.0, 100),
             ("grpo_dynamic", 1): (1, 0.0, 100), ("grpo_dynamic", 2): (3, 0.5, 300)}
    metrics = pd.DataFrame([{"model": "m", "algo": a, "seed": s, "step": step, "metric": name, "value": v}
                            for (a, step), (batches, filled, tokens) in steps.items() for s in (0, 1)
                            for name, v in (("groups/mixed_frac", 1.0), ("adv/grpo_abs_mean/mixed", 1.0),
                                            ("adv/delta_vs_grpo/mixed", 0.0), ("cost/completion_tokens", tokens),
                                            *((("dynamic/gen_batches", batches), ("dynamic/filled_frac", filled))
                                              if a == "grpo_dynamic" else ()))])
    p = power.divergent_power(samples, metrics, "m", "grpo", n_seeds=2)
    assert [a["algo"] for a in p["arms"]] == ["grpo_dynamic"] and p["df"] == 1
    assert p["sd"] == pytest.approx(np.sqrt(0.125))
    tidy = tmp_path / "ablations"
    tidy.mkdir()
    metrics.to_parquet(tidy / "train_metrics.parquet")
    text = "\n".join(report.dynamic_sampling_lines(tidy))
    # batches (1 + 3) / 2 = 2.00, max 3; half the rollouts filled, 25 % of the slots; tokens 400 / 200 = 2.00x
    assert ("GRPO + dynamic sampling: 2.00 generation batches per rollout (at most 3); 50 % of rollouts reached "
            "the cap short of informative groups, leaving 25.0 % of all slots unused; 2.00x GRPO's generated "
            "tokens.") in text
    metrics[metrics["algo"] == "grpo"].to_parquet(tidy / "train_metrics.parquet")
    assert report.dynamic_sampling_lines(tidy) == []


def test_report_has_every_benchmark_and_what_each_resolves(results):
    text = (results / "REPORT.md").read_text()
    section = text.split("## Every benchmark of the final step")[1].split("\n## ")[0]
    assert "fig_benchmarks.png" in section and "Pass@1 −" in section and "p (Holm)" in section
    # the paper design's MDD per set (analysis.power.benchmark_mdds): AIME's 30 x 32 at seed SD 0 and 2 points
    assert "AIME 2024 (30 × 32) 4.5 / 7.2" in section and "OlympiadBench (675 × 16) 1.3 / 5.8" in section
