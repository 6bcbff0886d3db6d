"""Figure scripts on a small tidy result set with hand-chosen values (tests/test_collect.py).

Every CSV must carry exactly the values worked out by hand below; PNG and PDF must exist; an
empty tidy directory must give one clear error; no figure script may import torch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import MODEL, REPO, run_figure, write_sweep_tidy

from analysis import (
    fig_accuracy_by_level,
    fig_leaderboard,
    fig_negative_group_ratio,
    fig_pass_at_k,
    fig_training_curves,
    fig_weight_function,
    stats,
)

FAST = ["--formats", "png", "pdf", "--dpi", "60", "--bootstrap-samples", "300"]


def _check_intervals(data: pd.DataFrame) -> None:
    assert (data["ci_low"] <= data["mean"] + 1e-9).all() and (data["mean"] <= data["ci_high"] + 1e-9).all()
    assert data["ci_low"].between(0, 100).all() and data["ci_high"].between(0, 100).all()


def test_accuracy_by_level_values(known_tidy, tmp_path):
    data = run_figure(fig_accuracy_by_level, known_tidy, tmp_path, *FAST)
    got = {(r.algo, int(r.level)): r.mean for r in data.itertuples()}
    # per-seed accuracy at step 10, averaged over the 2 seeds (tests/test_collect.py FINAL)
    assert got == pytest.approx({("grpo", 1): 87.5, ("grpo", 4): 12.5, ("grpo", 5): 0.0,
                                 ("lens", 1): 100.0, ("lens", 4): 37.5, ("lens", 5): 12.5})
    assert set(data["step"]) == {10} and set(data["n_seeds"]) == {2} and set(data["n_problems"]) == {1}
    assert set(data["model"]) == {MODEL} and set(data["benchmark"]) == {"math500"}
    _check_intervals(data)
    # every sample right (LENS, level 1) or wrong (GRPO, level 5): the interval collapses onto the mean
    lens1 = data[(data.algo == "lens") & (data.level == "1")].iloc[0]
    grpo5 = data[(data.algo == "grpo") & (data.level == "5")].iloc[0]
    assert (lens1.ci_low, lens1.ci_high) == (100.0, 100.0) and (grpo5.ci_low, grpo5.ci_high) == (0.0, 0.0)
    # GRPO level 1: seeds at 100 % and 75 %, one problem: resampling seeds gives 75, 87.5 or 100
    grpo1 = data[(data.algo == "grpo") & (data.level == "1")].iloc[0]
    assert grpo1.ci_low >= 75.0 and grpo1.ci_high <= 100.0 and grpo1.ci_low < grpo1.ci_high


def test_accuracy_by_level_is_deterministic(known_tidy):
    samples = pd.read_parquet(known_tidy / "eval_samples.parquet")
    first = fig_accuracy_by_level.compute(samples, None, n_boot=300, seed=0)
    assert first.equals(fig_accuracy_by_level.compute(samples, None, n_boot=300, seed=0))
    other_seed = fig_accuracy_by_level.compute(samples, None, n_boot=300, seed=1)
    assert other_seed["mean"].equals(first["mean"])  # only the intervals depend on the bootstrap seed


def test_training_curves_values(known_tidy, tmp_path):
    data = run_figure(fig_training_curves, known_tidy, tmp_path, *FAST)
    got = {(r.subset, r.algo, r.step): r.mean for r in data.itertuples()}
    assert got == pytest.approx({
        # step 0, the shared start: p1 2/4 right, p2 and p3 none -> (0.5 + 0 + 0) / 3
        ("all", "grpo", 0): 100 / 6, ("all", "lens", 0): 100 / 6,
        ("4-5", "grpo", 0): 0.0, ("4-5", "lens", 0): 0.0,
        # step 10: GRPO seeds (1 + .25 + 0)/3 and (.75 + 0 + 0)/3; LENS (1 + .5 + .25)/3 and (1 + .25 + 0)/3
        ("all", "grpo", 10): 100 / 3, ("all", "lens", 10): 50.0,
        ("4-5", "grpo", 10): 6.25, ("4-5", "lens", 10): 25.0,
    })
    assert set(data.loc[data.subset == "all", "n_problems"]) == {3}
    assert set(data.loc[data.subset == "4-5", "n_problems"]) == {2}
    _check_intervals(data)


def test_pass_at_k_values(known_tidy, tmp_path):
    data = run_figure(fig_pass_at_k, known_tidy, tmp_path, *FAST)
    # n = 4 samples per problem, so k stops at 4 although --k-max is 16
    assert sorted(data["k"].unique()) == [1, 2, 3, 4]
    got = {(r.subset, r.algo, r.k): r.mean for r in data.itertuples()}
    # pass@k(n=4, c, k) = 1 - C(4-c, k)/C(4, k): c=1 -> .25, .5, .75, 1; c=2 -> .5, 5/6, 1, 1; c=3 -> .75, 1, 1, 1
    # GRPO seeds: c = (4, 1, 0) and (3, 0, 0); LENS seeds: c = (4, 2, 1) and (4, 1, 0)
    expected = {
        ("all", "grpo", 1): (1.25 / 3 + 0.75 / 3) / 2, ("all", "grpo", 2): (1.5 / 3 + 1 / 3) / 2,
        ("all", "grpo", 3): (1.75 / 3 + 1 / 3) / 2, ("all", "grpo", 4): (2 / 3 + 1 / 3) / 2,
        ("all", "lens", 1): (1.75 / 3 + 1.25 / 3) / 2, ("all", "lens", 2): ((1 + 5 / 6 + .5) / 3 + 1.5 / 3) / 2,
        ("all", "lens", 3): (2.75 / 3 + 1.75 / 3) / 2, ("all", "lens", 4): (3 / 3 + 2 / 3) / 2,
        ("4-5", "grpo", 1): .125 / 2, ("4-5", "grpo", 2): .25 / 2, ("4-5", "grpo", 3): .375 / 2,
        ("4-5", "grpo", 4): .5 / 2,
        ("4-5", "lens", 1): (.375 + .125) / 2, ("4-5", "lens", 2): ((5 / 6 + .5) / 2 + .25) / 2,
        ("4-5", "lens", 3): (1.75 / 2 + .375) / 2, ("4-5", "lens", 4): (1 + .5) / 2,
    }
    assert got == pytest.approx({key: 100 * v for key, v in expected.items()})
    grpo1 = data[(data.subset == "all") & (data.algo == "grpo") & (data.k == 1)].iloc[0]
    assert grpo1.std_seeds == pytest.approx(100 * (1.25 / 3 - 0.75 / 3) / np.sqrt(2), abs=1e-3)
    assert set(data["n_samples"]) == {4} and set(data["step"]) == {10}
    _check_intervals(data)
    for _, group in data.groupby(["subset", "algo"]):  # Pass@k never decreases with k
        assert np.all(np.diff(group.sort_values("k")["mean"]) >= -1e-9)


def test_negative_group_ratio_values(known_tidy, tmp_path):
    data = run_figure(fig_negative_group_ratio, known_tidy, tmp_path, "--formats", "png", "pdf", "--dpi", "60",
                "--smoothing-window", "3")
    grpo = data[data.algo == "grpo"].sort_values("step")
    lens = data[data.algo == "lens"].sort_values("step")
    # mean over the two seeds of [.5, .4, .3, .2] and [.7, .6, .5, .4]
    assert grpo["mean"].tolist() == pytest.approx([60, 50, 40, 30])
    # centred 3-step mean, shortened at the ends: (60+50)/2, (60+50+40)/3, (50+40+30)/3, (40+30)/2
    assert grpo["smoothed"].tolist() == pytest.approx([55, 50, 40, 35])
    assert lens["mean"].tolist() == pytest.approx([40] * 4) and lens["smoothed"].tolist() == pytest.approx([40] * 4)
    assert set(data["n_seeds"]) == {2} and grpo["step"].tolist() == [1, 2, 3, 4]


def test_moving_average_properties():
    x = np.array([1.0, 5.0, 2.0, 8.0, 3.0])
    assert np.allclose(stats.moving_average(x, 1), x)  # window 1: the data itself
    assert np.allclose(stats.moving_average(np.full(6, 2.5), 5), 2.5)  # constants stay constant
    assert np.allclose(stats.moving_average(x, 3), [3.0, 8 / 3, 5.0, 13 / 3, 5.5])
    assert stats.moving_average(np.array([]), 3).shape == (0,)
    with pytest.raises(ValueError):
        stats.moving_average(x, 0)


def test_weight_function_matches_paper(tmp_path):
    w = fig_weight_function.weight_function
    assert round(float(w(0.5)), 3) == 0.386 and round(float(w(0.9)), 2) == 1.56  # Eq. 13 values quoted in the paper
    assert float(w(0.5)) == pytest.approx(2 * np.log(2) - 1)
    assert float(w(0.0)) == 0.0
    # the series used below z = 1e-4 meets the closed form without a jump
    z = 1e-4
    assert float(w(z * (1 - 1e-9))) == pytest.approx(-np.log1p(-z) / z - 1, rel=1e-6)
    with pytest.raises(ValueError):
        w(1.0)
    assert fig_weight_function.main(["--out", str(tmp_path), "--formats", "png", "pdf", "--dpi", "60"]) == 0
    data = pd.read_csv(tmp_path / "fig_weight_function.csv")
    assert (tmp_path / "fig_weight_function.pdf").exists() and (tmp_path / "fig_weight_function.png").exists()
    assert data["z"].iloc[0] == 0 and data["z"].iloc[-1] == pytest.approx(0.99)
    assert np.all(np.diff(data["w"]) > 0)  # w increases: the more likely the mistake, the larger the penalty


def test_empty_tidy_dir_is_a_clear_error(tmp_path, capsys):
    for module in (fig_accuracy_by_level, fig_training_curves, fig_pass_at_k):
        assert module.main(["--tidy", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
        assert "eval_samples.parquet: not found; run `python -m analysis.collect" in capsys.readouterr().err
    assert fig_negative_group_ratio.main(["--tidy", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "train_metrics.parquet: not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_benchmark_and_missing_metric(known_tidy, tmp_path, capsys):
    assert fig_accuracy_by_level.main(["--tidy", str(known_tidy), "--out", str(tmp_path), "--benchmark", "aime"]) == 1
    assert "benchmark 'aime' not in the evaluation samples; found ['math500']" in capsys.readouterr().err
    assert fig_negative_group_ratio.main(["--tidy", str(known_tidy), "--out", str(tmp_path), "--algos", "nsr"]) == 1
    assert "no 'groups/all_wrong_frac' rows for algorithms ['nsr']" in capsys.readouterr().err


def test_figure_scripts_do_not_import_torch(known_tidy, tmp_path):
    code = (
        "import sys\n"
        "from analysis import fig_accuracy_by_level, fig_training_curves, fig_pass_at_k, "
        "fig_negative_group_ratio, fig_weight_function, stats, report, tab_pass_at_k, tab_ablation, "
        "tab_accuracy_by_level\n"
        f"rc = fig_accuracy_by_level.main(['--tidy', {str(known_tidy)!r}, '--out', {str(tmp_path)!r}, "
        "'--formats', 'png', '--dpi', '40', '--bootstrap-samples', '50'])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["0", "False"]


def test_leaderboard_figure_writes_what_the_table_computes(known_tidy, tmp_path):
    from analysis import tab_leaderboard

    assert fig_leaderboard.main(["--tidy", str(known_tidy), "--out", str(tmp_path), "--formats", "png", "--dpi", "40",
                                 "--bootstrap-samples", "50"]) == 0
    plotted = pd.read_csv(tmp_path / "fig_leaderboard.csv")
    assert (tmp_path / "fig_leaderboard.png").stat().st_size > 0
    assert tab_leaderboard.main(["--tidy", str(known_tidy), "--out", str(tmp_path / "t"),
                                 "--bootstrap-samples", "50"]) == 0
    pd.testing.assert_frame_equal(plotted, pd.read_csv(tmp_path / "t" / "tab_leaderboard.csv"))


def test_sensitivity_figure_writes_what_the_table_computes(tmp_path):

    from analysis import fig_sensitivity, tab_sensitivity

    tidy = write_sweep_tidy(tmp_path / "tidy")
    assert fig_sensitivity.main(["--tidy", str(tidy), "--out", str(tmp_path / "f"), "--formats", "png", "pdf",
                                 "--dpi", "40", "--bootstrap-samples", "50"]) == 0
    for ext in ("png", "pdf"):
        assert (tmp_path / "f" / f"fig_sensitivity.{ext}").stat().st_size > 0
    assert tab_sensitivity.main(["--tidy", str(tidy), "--out", str(tmp_path / "t"), "--bootstrap-samples", "50"]) == 0
    plotted = pd.read_csv(tmp_path / "f" / "fig_sensitivity.csv")
    pd.testing.assert_frame_equal(plotted, pd.read_csv(tmp_path / "t" / "tab_sensitivity.csv"))
    assert plotted["hard"].tolist() == pytest.approx([0.0, 12.5, 50.0])


def test_sensitivity_axis_is_logarithmic_only_for_spread_numbers():
    from analysis.fig_sensitivity import x_positions

    x, log = x_positions(pd.Series(["0.25", "1", "4", "16"]))
    assert x.tolist() == [0.25, 1.0, 4.0, 16.0] and log
    assert not x_positions(pd.Series(["1", "2"]))[1]  # less than a factor of 4: linear
    x, log = x_positions(pd.Series(["demean", "standardize"]))
    assert x.tolist() == [0.0, 1.0] and not log


def test_training_dynamics_values(known_tidy, tmp_path):
    from analysis import fig_training_dynamics

    assert fig_training_dynamics.main(["--tidy", str(known_tidy), "--out", str(tmp_path), "--formats", "png", "--dpi",
                                       "40", "--smoothing-window", "1"]) == 0
    data = pd.read_csv(tmp_path / "fig_training_dynamics.csv")
    # the known tidy tables log only groups/all_wrong_frac of the six panels: GRPO's seeds [.5, .4, .3, .2]
    # and [.7, .6, .5, .4] -> mean, smallest and largest seed per step (window 1: no smoothing)
    assert set(data["metric"]) == {"groups/all_wrong_frac"}
    grpo = data[data.algo == "grpo"].sort_values("step")
    assert grpo["mean"].tolist() == pytest.approx([0.6, 0.5, 0.4, 0.3]) and grpo["smoothed"].tolist() == pytest.approx(
        [0.6, 0.5, 0.4, 0.3])
    assert grpo["low"].tolist() == pytest.approx([0.5, 0.4, 0.3, 0.2]) and grpo["high"].tolist() == pytest.approx(
        [0.7, 0.6, 0.5, 0.4])
    assert (tmp_path / "fig_training_dynamics.png").stat().st_size > 0
    assert fig_training_dynamics.main(["--tidy", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 1


def test_accuracy_vs_compute_puts_each_checkpoint_at_its_generated_tokens(known_tidy, tmp_path, capsys):
    from analysis import fig_accuracy_vs_compute

    args = ["--tidy", str(known_tidy), "--out", str(tmp_path), "--formats", "png", "--dpi", "40", "--bootstrap-samples",
            "300"]  # as _run's, so the intervals are the curves' own
    assert fig_accuracy_vs_compute.main(args) == 1  # the known runs logged no cost: said, not drawn
    assert "no run logged cost/completion_tokens" in capsys.readouterr().err
    metrics = pd.read_parquet(known_tidy / "train_metrics.parquet")
    costed = tmp_path / "tidy"
    costed.mkdir()
    (costed / "eval_samples.parquet").write_bytes((known_tidy / "eval_samples.parquet").read_bytes())
    tokens = [{"model": MODEL, "algo": a, "seed": s, "step": step, "metric": "cost/completion_tokens",
               "value": 100.0 * (1 + s)} for a in ("grpo", "lens") for s in (0, 1) for step in range(1, 11)]
    pd.concat([metrics, pd.DataFrame(tokens)], ignore_index=True).to_parquet(costed / "train_metrics.parquet")
    assert fig_accuracy_vs_compute.main([*args[:1], str(costed), *args[2:]]) == 0
    data = pd.read_csv(tmp_path / "fig_accuracy_vs_compute.csv")
    # step 0 at 0 tokens; step 10 at the mean over seeds of 1,000 and 2,000 tokens; accuracies as the curves'
    assert sorted(zip(data["step"], data["tokens"], strict=True))[0] == (0, 0.0)
    assert set(data["tokens"]) == {0.0, 1500.0}
    curves = run_figure(fig_training_curves, known_tidy, tmp_path / "curves", *FAST)
    key = ["model", "subset", "algo", "step"]
    pd.testing.assert_frame_equal(data.sort_values(key)[["mean", "ci_low", "ci_high"]].reset_index(drop=True),
                                  curves.sort_values(key)[["mean", "ci_low", "ci_high"]].reset_index(drop=True))
