"""analysis.stats: Pass@k pinned by hand, accuracies by level/subject, bootstrap intervals."""

from math import comb

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import stats


# ---------------------------------------------------------------------------------------------
# pass_at_k
# ---------------------------------------------------------------------------------------------
def test_pass_at_k_hand_values():
    # 1 - C(12, 2) / C(16, 2) = 1 - 66/120 = 0.45
    assert stats.pass_at_k(16, 4, 2) == pytest.approx(0.45, abs=1e-12)
    # 1 - C(3, 3) / C(5, 3) = 1 - 1/10
    assert stats.pass_at_k(5, 2, 3) == pytest.approx(0.9, abs=1e-12)
    # k = 1 is the fraction correct
    assert stats.pass_at_k(16, 5, 1) == pytest.approx(5 / 16, abs=1e-12)
    # 1 - C(8, 8) / C(16, 8) = 1 - 1/12870
    assert stats.pass_at_k(16, 8, 8) == pytest.approx(1 - 1 / 12870, abs=1e-12)


def test_pass_at_k_edges():
    assert stats.pass_at_k(16, 0, 16) == 0.0
    assert stats.pass_at_k(16, 16, 1) == 1.0
    assert stats.pass_at_k(16, 15, 2) == 1.0  # n - c < k: every pair holds a correct sample
    assert isinstance(stats.pass_at_k(16, 4, 2), float)


def test_pass_at_k_vectorised_matches_scalar():
    n = np.array([16, 16, 8, 4])
    c = np.array([4, 0, 8, 1])
    out = stats.pass_at_k(n, c, 2)
    assert out.shape == (4,)
    assert out == pytest.approx([stats.pass_at_k(int(a), int(b), 2) for a, b in zip(n, c, strict=True)])
    grid = stats.pass_at_k(16, np.arange(17)[:, None], np.array([1, 2, 4, 8, 16])[None, :])  # (17, 5)
    assert grid.shape == (17, 5)
    assert np.all(np.diff(grid, axis=0) >= -1e-12)  # more correct samples never lowers Pass@k
    assert np.all(np.diff(grid, axis=1) >= -1e-12)  # nor does a larger k


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_combinatorial_definition(nck):
    n, c, k = nck
    assert stats.pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-9)


@pytest.mark.parametrize("n,c,k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_invalid(n, c, k):
    with pytest.raises(ValueError):
        stats.pass_at_k(n, c, k)


# ---------------------------------------------------------------------------------------------
# accuracy tables
# ---------------------------------------------------------------------------------------------
def _samples(spec):
    """spec: list of (problem_id, level, subject, [correct per sample])."""
    rows = [{"problem_id": pid, "level": level, "subject": subject, "sample_idx": j, "correct": c}
            for pid, level, subject, cs in spec for j, c in enumerate(cs)]
    return pd.DataFrame(rows)


SPEC = [
    ("p1", 4, "Algebra", [1, 0, 1, 0]),
    ("p2", 5, "Geometry", [1, 1, 1, 1]),
    ("p3", 1, "Algebra", [0, 0, 0, 0]),
]


def test_summarize_hand_values():
    s = stats.summarize(_samples(SPEC), pass_k=(1, 2, 4, 8))
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["accuracy/level_1"] == 0.0
    assert s["accuracy/level_4"] == 0.5
    assert s["accuracy/level_5"] == 1.0
    assert s["accuracy/level_4_5"] == pytest.approx(0.75)
    assert s["accuracy/subject/Algebra"] == pytest.approx(0.25)
    assert s["accuracy/subject/Geometry"] == 1.0
    assert s["pass@1"] == pytest.approx(0.5)
    # p1: 1 - C(2,2)/C(4,2) = 5/6; p2: 1; p3: 0
    assert s["pass@2"] == pytest.approx((5 / 6 + 1) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3)
    assert "pass@8" not in s  # more than the 4 samples per problem
    assert s["n_problems"] == 3 and s["n_samples"] == 12 and s["n_problems_level_4_5"] == 2
    assert "accuracy/level_2" not in s


def test_accuracy_weights_problems_not_samples():
    samples = _samples([("a", 1, None, [1]), ("b", 2, None, [0, 0, 0])])
    assert stats.mean_accuracy(samples) == pytest.approx(0.5)  # sample mean would be 0.25
    assert stats.accuracy_by_subject(samples) == {}


def test_levels_missing_are_skipped():
    samples = _samples([("a", None, "X", [1, 1]), ("b", 4, "X", [0, 1])])
    assert stats.accuracy_by_level(samples) == {"level_4": 0.5, "level_4_5": 0.5}


def test_level_subsets_are_declared_once_in_lens_metrics():
    from lens import metrics

    assert metrics.LEVEL_SUBSETS == {"4-5": (4, 5)} and metrics.HARD_SUBSET == "4-5"
    assert metrics.subset_key("4-5") == "level_4_5"
    mask = metrics.in_subset(pd.Series([1, 4, "5", None, 3.0, 5.0], index=list("abcdef")))
    assert mask.tolist() == [False, True, True, False, False, True] and list(mask.index) == list("abcdef")
    assert stats.LEVEL_4_5 == (4, 5)


def test_metrics_live_in_lens_and_stats_reexports_them():
    import ast
    from pathlib import Path

    from lens import metrics

    for name in ("pass_at_k", "problem_table", "mean_accuracy", "accuracy_by_level", "accuracy_by_subject",
                 "mean_pass_at_k", "summarize"):
        assert getattr(stats, name) is getattr(metrics, name)
    root = Path(__file__).resolve().parents[1]

    def imported(path):
        tree = ast.parse(path.read_text())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}

    # Layers point down: lens never imports analysis; tables never import figure scripts.
    for path in sorted((root / "lens").glob("*.py")):
        assert not any(m.split(".")[0] == "analysis" for m in imported(path)), path.name
    for path in sorted((root / "analysis").glob("tab_*.py")):
        assert not any(m.startswith("analysis.fig_") for m in imported(path)), path.name


def test_problem_table_needs_columns():
    with pytest.raises(KeyError):
        stats.problem_table(pd.DataFrame({"problem_id": ["a"]}))


# ---------------------------------------------------------------------------------------------
# bootstrap
# ---------------------------------------------------------------------------------------------
def test_bootstrap_constant_values_give_a_point_interval():
    assert stats.bootstrap_ci(np.full(10, 0.3), n_boot=100) == pytest.approx((0.3, 0.3))


def test_bootstrap_interval_brackets_mean_and_is_reproducible():
    values = np.random.default_rng(1).random(200)
    lo, hi = stats.bootstrap_ci(values, n_boot=500, seed=7)
    assert lo < values.mean() < hi
    assert (lo, hi) == stats.bootstrap_ci(values, n_boot=500, seed=7)
    # a 95 % interval of the mean is about +-1.96 standard errors wide
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bootstrap_over_identical_seeds_equals_problem_bootstrap():
    row = np.random.default_rng(2).random(50)
    assert stats.bootstrap_ci(np.stack([row, row, row]), n_boot=300, seed=3) == \
        pytest.approx(stats.bootstrap_ci(row, n_boot=300, seed=3))


def test_bootstrap_seed_variation_widens_interval():
    row = np.random.default_rng(4).random(100)
    lo1, hi1 = stats.bootstrap_ci(np.stack([row, row]), n_boot=500)
    lo2, hi2 = stats.bootstrap_ci(np.stack([row - 0.2, row + 0.2]), n_boot=500)
    assert hi2 - lo2 > hi1 - lo1


def test_seed_problem_scores_and_its_interval():
    a = _samples(SPEC).assign(seed=0)
    b = _samples([(p, lv, s, [1 - c for c in cs]) for p, lv, s, cs in SPEC]).assign(seed=1)
    both = pd.concat([a, b])
    matrix = stats.seed_problem_scores(both)
    assert matrix.shape == (2, 3) and matrix.mean() == pytest.approx(0.5)
    lo, hi = stats.bootstrap_ci(matrix, n_boot=200)
    assert lo <= 0.5 <= hi
    assert stats.seed_problem_scores(both, "pass@2").mean() == pytest.approx(np.mean([5 / 6, 1, 0, 5 / 6, 0, 1]))
    lo, hi = stats.bootstrap_ci(stats.seed_problem_scores(a)[0], n_boot=200)
    assert 0 <= lo <= 0.5 <= hi <= 1
    with pytest.raises(ValueError, match="unknown metric 'median'"):
        stats.seed_problem_scores(a, "median")
    with pytest.raises(ValueError):
        stats.bootstrap_ci([])


# ---------------------------------------------------------------------------------------------
# change from step 0
# ---------------------------------------------------------------------------------------------
LEVELS = {"p1": 1, "p2": 4, "p3": 5}


def _eval_rows(algo, seed, step, accuracy, benchmark="b"):
    """Tidy eval rows of one (algo, seed, step): 2 samples per problem, accuracy in {0, 0.5, 1}."""
    return [{"model": "m", "algo": algo, "seed": seed, "step": step, "benchmark": benchmark, "problem_id": pid,
             "level": LEVELS[pid], "subject": "Algebra", "sample_idx": j, "correct": j < round(2 * acc),
             "completion_tokens": 10} for pid, acc in accuracy.items() for j in range(2)]


def test_change_from_start_by_hand():
    rows = []
    # grpo: every problem of every seed gains exactly 0.5, so the interval is the point [50, 50];
    # step 2 is not the final step and seed 2 has no final step: both ignored
    for seed, start in ((0, [0, 0.5, 0]), (1, [0.5, 0, 0])):
        rows += _eval_rows("grpo", seed, 0, dict(zip(LEVELS, start, strict=True)))
        rows += _eval_rows("grpo", seed, 2, dict(zip(LEVELS, [1, 1, 1], strict=True)))
        rows += _eval_rows("grpo", seed, 5, dict(zip(LEVELS, [a + 0.5 for a in start], strict=True)))
    rows += _eval_rows("grpo", 2, 0, dict(zip(LEVELS, [1, 1, 1], strict=True)))
    # lens: from 0 everywhere to seed 0 [1, 0, 0.5] and seed 1 [1, 0.5, 0]: unequal differences
    for seed, end in ((0, [1, 0, 0.5]), (1, [1, 0.5, 0])):
        rows += _eval_rows("lens", seed, 0, dict(zip(LEVELS, [0, 0, 0], strict=True)))
        rows += _eval_rows("lens", seed, 5, dict(zip(LEVELS, end, strict=True)))
    rows += _eval_rows("no_start", 0, 5, dict(zip(LEVELS, [1, 1, 1], strict=True)))  # no step 0: skipped
    rows += _eval_rows("only_start", 0, 0, dict(zip(LEVELS, [1, 1, 1], strict=True)))  # nothing after step 0: skipped
    out = stats.change_from_start(pd.DataFrame(rows), n_boot=500)

    assert list(out.columns) == stats.CHANGE_COLUMNS
    assert sorted(out["algo"].unique()) == ["grpo", "lens"]
    grpo = out[out["algo"] == "grpo"].set_index("subset")
    assert list(grpo.index) == ["all", "level_1", "level_4", "level_5", "level_4_5"]
    whole = grpo.loc["all"]
    assert whole["step0"] == pytest.approx(100 / 6) and whole["final"] == pytest.approx(400 / 6)
    assert whole["diff"] == pytest.approx(50.0)
    assert (whole["ci_low"], whole["ci_high"]) == pytest.approx((50.0, 50.0))
    assert (whole["final_step"], whole["n_problems"], whole["n_seeds"]) == (5, 3, 2)
    assert grpo.loc["level_4_5", "n_problems"] == 2 and grpo.loc["level_1", "n_problems"] == 1

    lens = out[out["algo"] == "lens"].set_index("subset")
    assert lens.loc["all", "diff"] == pytest.approx(50.0)  # (1 + 0 + 0.5 + 1 + 0.5 + 0) / 6
    assert lens.loc["all", "ci_low"] < 50.0 < lens.loc["all", "ci_high"]
    assert lens.loc["level_1", "diff"] == pytest.approx(100.0)
    assert (lens.loc["level_1", "ci_low"], lens.loc["level_1", "ci_high"]) == pytest.approx((100.0, 100.0))
    assert lens.loc["level_4_5", "diff"] == pytest.approx(25.0)
    assert lens.loc["level_4_5", "ci_low"] <= 25.0 <= lens.loc["level_4_5", "ci_high"]


def test_change_from_start_compares_one_benchmark():
    rows = _eval_rows("grpo", 0, 0, {"p1": 0}) + _eval_rows("grpo", 0, 5, {"p1": 1}, benchmark="other")
    with pytest.raises(ValueError, match="one benchmark"):
        stats.change_from_start(pd.DataFrame(rows))
    empty = stats.change_from_start(pd.DataFrame(_eval_rows("grpo", 0, 0, {"p1": 0})))
    assert empty.empty and list(empty.columns) == stats.CHANGE_COLUMNS


# ---------------------------------------------------------------------------------------------
# power: minimum detectable difference
# ---------------------------------------------------------------------------------------------
def test_binomial_design_closed_form():
    # two arms at 50 %, 1 seed, 100 problems, 16 samples: SE^2 = 2 * 0.25 / 16 / 100
    out = stats.binomial_design([0.5, 0.5], n_seeds=1, n_problems=100, n_samples=16)
    assert out["se"] == pytest.approx(np.sqrt(2 * 0.25 / 1600), rel=1e-12)
    assert out["mdd"] == pytest.approx((1.959963984540054 + 0.8416212335729143) * out["se"], rel=1e-12)
    assert out["mdd"] == pytest.approx(0.0495, abs=5e-4)
    # the seed term adds 2 * seed_sd^2 / S
    with_seeds = stats.binomial_design([0.5, 0.5], n_seeds=2, n_problems=100, n_samples=16, seed_sd=0.01)
    assert with_seeds["se"] ** 2 == pytest.approx(2 * 0.25 / 16 / 200 + 2 * 0.01 ** 2 / 2, rel=1e-12)
    # the paper's design (2 seeds, 262 Level 4-5 problems, 16 samples) at ~55 %: about 2.15 points
    paper = stats.binomial_design([0.5409, 0.5663], n_seeds=2, n_problems=262, n_samples=16)
    assert 0.020 < paper["mdd"] < 0.023


def test_minimum_detectable_difference_only_tabulated_levels():
    assert stats.minimum_detectable_difference(1.0) == pytest.approx(2.8016, abs=1e-4)
    assert stats.minimum_detectable_difference(1.0, power=0.9) == pytest.approx(3.2415, abs=1e-4)
    with pytest.raises(ValueError):
        stats.minimum_detectable_difference(1.0, power=0.5)


def _simulate(rng, reps, n_seeds, p, n_samples, seed_sd, shift=0.0):
    """(reps, S, P) per-problem accuracies: binomial answers around p_j + shift + a seed offset."""
    offsets = rng.normal(0.0, seed_sd, size=(reps, n_seeds, 1))
    prob = np.clip(p[None, None, :] + shift + offsets, 0.0, 1.0)
    return rng.binomial(n_samples, prob) / n_samples


def test_variance_components_recover_the_simulated_ones():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 0.8, size=60)
    n, seed_sd = 16, 0.03
    sims = _simulate(rng, 3000, 3, p, n, seed_sd)
    est = [stats.variance_components(s) for s in sims]
    true_resid = float(np.mean(p * (1 - p)) / n)
    assert np.mean([e["resid_var"] for e in est]) == pytest.approx(true_resid, rel=0.03)
    # seed_var is clipped at 0, so its mean is biased up a little; still close to seed_sd^2
    assert np.mean([e["seed_var"] for e in est]) == pytest.approx(seed_sd ** 2, rel=0.1)
    # one seed: the binomial estimate of the sampling noise, unbiased
    one = [stats.variance_components(s[:1], n_samples=n)["resid_var"] for s in sims[:1000]]
    assert np.mean(one) == pytest.approx(true_resid, rel=0.03)
    with pytest.raises(ValueError):
        stats.variance_components(sims[0][:1])


def test_power_at_the_minimum_detectable_difference_is_80_percent_by_simulation():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.25, 0.75, size=80)
    n, seeds, seed_sd, reps = 16, 3, 0.01, 4000
    arm = {"seed_var": seed_sd ** 2, "resid_var": float(np.mean(p * (1 - p)) / n)}
    se = stats.difference_se([arm, arm], [seeds, seeds], len(p))
    mdd = stats.minimum_detectable_difference(se)
    treated = _simulate(rng, reps, seeds, p, n, seed_sd, shift=mdd).mean(axis=(1, 2))
    baseline = _simulate(rng, reps, seeds, p, n, seed_sd).mean(axis=(1, 2))
    power = np.mean(np.abs(treated - baseline) / se > 1.959963984540054)
    assert power == pytest.approx(0.80, abs=0.025)  # binomial SE of the estimate: 0.006
    # and at no difference the test keeps its 5 % level
    null = _simulate(rng, reps, seeds, p, n, seed_sd).mean(axis=(1, 2)) - baseline
    assert np.mean(np.abs(null) / se > 1.959963984540054) == pytest.approx(0.05, abs=0.015)


def test_paired_bootstrap_by_seed_cancels_what_a_seed_does_to_both_arms():
    # Seed 1 lifts both arms by 0.5 on every problem; the treatment is 0.1 better everywhere. Paired by
    # seed, every replicate's difference is exactly 0.1; with independent seed draws it is not.
    base = np.array([[0.1, 0.2, 0.3, 0.2], [0.6, 0.7, 0.8, 0.7]])
    treat = base + 0.1
    paired = stats.paired_bootstrap(treat, base, n_boot=500, same_seeds=True)
    assert paired["ci_low"] == pytest.approx(0.1) and paired["ci_high"] == pytest.approx(0.1)
    unpaired = stats.paired_bootstrap(treat, base, n_boot=500)
    assert unpaired["ci_low"] < 0 < unpaired["ci_high"]
    with pytest.raises(ValueError, match="same seeds in both arms"):
        stats.paired_bootstrap(treat, base[:1], same_seeds=True)


def test_same_seed_rows_needs_the_same_seeds_in_order_and_more_than_one():
    assert stats.same_seed_rows([0, 1], [0, 1])
    assert not stats.same_seed_rows([0, 1], [1, 0]) and not stats.same_seed_rows([0, 1], [0, 2])
    assert not stats.same_seed_rows([0], [0])


def test_paired_difference_se_by_hand():
    # d = t - b = [[0.2, 0.0, 0.4], [0.0, 0.0, 0.2]], grand mean 2/15. Problem means [0.1, 0.0, 0.3]:
    # variance ((-1/30)^2 + (-4/30)^2 + (5/30)^2) / 2 = 7/300. Seed means 1/5 and 1/15: var (ddof 1) 4/450.
    # Two-way residuals d - seed mean - problem mean + 2/15 = [[1, -2, 1], [-1, 2, -1]] / 30: resid_var
    # = (12/900) / ((2-1)(3-1)) = 1/150, seed_var = 4/450 - (1/150) / 3 = 1/150.
    # SE^2 = (7/300) / 3 + (1/150) / 2 = 10/900.
    b = np.array([[0.3, 0.5, 0.1], [0.4, 0.5, 0.2]])
    t = b + np.array([[0.2, 0.0, 0.4], [0.0, 0.0, 0.2]])
    out = stats.paired_difference_se(t, b)
    assert out["problem_var"] == pytest.approx(7 / 300) and out["resid_var"] == pytest.approx(1 / 150)
    assert out["seed_var"] == pytest.approx(1 / 150) and out["seed_df"] == 1
    assert out["se"] == pytest.approx(np.sqrt(10 / 900))
    assert out["diff"] == pytest.approx(2 / 15)
    with pytest.raises(ValueError, match=">= 2 seeds"):
        stats.paired_difference_se(t[:1], b[:1])


def test_holm_by_hand():
    # m = 4, sorted 0.005, 0.01, 0.03, 0.04: x4 = 0.02, x3 = 0.03, x2 = 0.06, x1 = 0.04 -> monotone 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # NaN is no comparison: m = 2; capped at 1; ties keep their order
    np.testing.assert_allclose(stats.holm([np.nan, 0.2, 0.6, np.nan]), [np.nan, 0.4, 0.6, np.nan])
    np.testing.assert_allclose(stats.holm([0.5, 0.5, 0.9]), [1.0, 1.0, 1.0])
    assert stats.holm([]).shape == (0,)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_their_order(ps):
    adjusted = stats.holm(ps)
    assert np.all(adjusted >= np.asarray(ps) - 1e-12) and np.all(adjusted <= 1)
    order = np.argsort(ps, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-12)
