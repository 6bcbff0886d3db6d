"""Evaluation statistics: bootstrap confidence intervals, paired comparisons, power; the metrics re-exported.

Pure numpy + pandas (no torch), so figure and table scripts import it cheaply. Pass@k, accuracies,
the level subsets and `summarize` are lens.metrics' (re-exported here: evaluation writes them, so
they live in `lens`). Inputs are per-sample tables with the columns of
``eval/{benchmark}/step{S}/samples.parquet`` (``problem_id, level, subject, sample_idx, correct``;
tidy tables add ``model, algo, seed, step, benchmark``).

Conventions:
- accuracy, Pass@k and the Level 4-5 subset: see lens.metrics;
- bootstrap intervals are percentile intervals; over problems they resample problems, over seeds
  they resample per-seed values, and over a (seeds, problems) matrix both (seeds, then the same
  problem indices for every drawn seed, since all seeds are evaluated on the same problems).

What the analysis scripts call: pass_at_k, problem_table, mean_accuracy, accuracy_by_level,
accuracy_by_subject, mean_pass_at_k, summarize, seed_problem_scores (the (seeds, problems) matrix),
bootstrap_ci (the one resampler: over problems, or seeds x problems), paired_bootstrap (two arms),
variance_components, difference_se, minimum_detectable_difference (power), binomial_design, holm
(multiplicity within a table),
level_subsets, change_from_start (final step minus step 0, per level).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lens.metrics import (  # noqa: F401
    HARD_SUBSET,
    LEVEL_SUBSETS,
    accuracy_by_level,
    accuracy_by_subject,
    in_subset,
    mean_accuracy,
    mean_pass_at_k,
    pass_at_k,
    problem_table,
    subset_key,
    summarize,
)

LEVEL_4_5 = LEVEL_SUBSETS[HARD_SUBSET]  # the name older code imports


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------
def bootstrap_ci(values, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """(low, high) percentile interval of the mean of `values` (the point estimate is values.mean()).

    1-D `values` (P,): one score per problem, problems are resampled. 2-D (S, P): one row per seed
    over the same problems, seeds are resampled and then problems (the same problem indices for
    every drawn seed, since all seeds answer the same problems); with S = 1 this is the 1-D case.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty (P,) or (S, P) array, got shape {values.shape}")
    n_seeds, n_problems = values.shape
    rng = np.random.default_rng(seed)
    p_idx = rng.integers(0, n_problems, size=(n_boot, n_problems))  # (B, P)
    if n_seeds == 1:
        boots = values[0][p_idx].mean(axis=1)  # (B,)
    else:
        s_idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # (B, S)
        # mean over drawn seeds of each seed's mean over drawn problems
        boots = np.array([values[s_idx[b]][:, p_idx[b]].mean() for b in range(n_boot)])
    lo, hi = np.quantile(boots, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def _problem_scores(samples: pd.DataFrame, metric: str) -> pd.Series:
    """Per-problem score: metric "accuracy" (fraction correct) or "pass@k"."""
    table = problem_table(samples).set_index("problem_id")
    if metric == "accuracy":
        return table["accuracy"]
    if metric.startswith("pass@"):
        k = int(metric.split("@", 1)[1])
        return pd.Series(pass_at_k(table["n"].to_numpy(), table["c"].to_numpy(), k), index=table.index)
    raise ValueError(f"unknown metric {metric!r}; use 'accuracy' or 'pass@k'")


def seed_problem_scores(samples: pd.DataFrame, metric: str = "accuracy", seed_col: str = "seed") -> np.ndarray:
    """(S, P) matrix of per-problem scores, one row per seed, over the problems every seed answered."""
    scores = {s: _problem_scores(g, metric) for s, g in samples.groupby(seed_col, sort=True)}
    if not scores:
        raise ValueError("no samples")
    problems = sorted(set.intersection(*(set(v.index) for v in scores.values())))
    if not problems:
        raise ValueError("no problem is shared by all seeds")
    return np.stack([scores[s].loc[problems].to_numpy() for s in scores])  # (S, P)


# --------------------------------------------------------------------------------------------
# Paired comparison of two algorithms and smoothing of training curves (used by the analysis
# tables, figures and report)
# --------------------------------------------------------------------------------------------
def paired_bootstrap(treatment, baseline, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0,
                     same_seeds: bool = False) -> dict:
    """Difference of mean scores, treatment minus baseline, on the same problems, with a bootstrap test.

    treatment: (S_t, P) and baseline: (S_b, P) per-seed, per-problem scores (accuracy or Pass@k) on
    the same P problems in the same column order. The statistic is mean(treatment) - mean(baseline),
    means over seeds and problems. Each replicate draws one set of problem indices for both arms
    (the pairing: a hard problem is hard for both) and, independently per arm, a set of seeds.
    same_seeds: row i of both arms is the same seed, and runs of one seed share their random numbers
    (start, data order, sampling seeds: common random numbers); then a replicate draws one set of
    seeds for both arms, so what the seed does to both cancels in the difference
    (`same_seed_rows` says whether two arms' seed lists allow it).
    Returns {"diff", "ci_low", "ci_high", "p_value"}: a percentile interval of coverage `ci`, and the
    two-sided p-value of "no difference" from the replicates centred on 0 (Efron & Tibshirani 1993,
    Sec. 16.4): p = (1 + #{|d* - d| >= |d|}) / (n_boot + 1), so p is never 0.
    """
    t = np.asarray(treatment, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if t.ndim != 2 or b.ndim != 2 or t.shape[1] != b.shape[1] or t.shape[1] == 0 or 0 in (len(t), len(b)):
        raise ValueError(f"need (seeds, problems) arrays over the same problems, got {t.shape} and {b.shape}")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if same_seeds and len(t) != len(b):
        raise ValueError(f"same_seeds needs the same seeds in both arms, got {len(t)} and {len(b)} rows")
    rng = np.random.default_rng(seed)
    diff = float(t.mean() - b.mean())
    n_problems = t.shape[1]
    reps = np.empty(n_boot)
    # chunks keep the (chunk, seeds, problems) index arrays small for MATH-sized inputs
    for start in range(0, n_boot, 256):
        m = min(256, n_boot - start)
        problems = rng.integers(0, n_problems, size=(m, 1, n_problems))
        t_seeds = rng.integers(0, len(t), size=(m, len(t), 1))
        b_seeds = t_seeds if same_seeds else rng.integers(0, len(b), size=(m, len(b), 1))
        reps[start:start + m] = t[t_seeds, problems].mean(axis=(1, 2)) - b[b_seeds, problems].mean(axis=(1, 2))
    alpha = (1.0 - ci) / 2
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    if diff == 0:
        p_value = 1.0
    else:
        # ties with |d| up to rounding count as extreme: the conservative side
        extreme = np.abs(reps - diff) >= abs(diff) - 1e-12
        p_value = float((1 + extreme.sum()) / (n_boot + 1))
    return {"diff": diff, "ci_low": float(low), "ci_high": float(high), "p_value": p_value}


def moving_average(values, window: int) -> np.ndarray:
    """Centred moving average over `window` consecutive points, shortened at both ends.

    Point i averages values[i - window//2 : i + (window-1)//2 + 1] clipped to the array, so the
    curve keeps its length and its ends are not pulled towards 0. window=1 returns the values.
    """
    x = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError("window must be >= 1")
    if x.size == 0:
        return x.copy()
    before, after = window // 2, (window - 1) // 2
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(x.size)
    lo = np.clip(idx - before, 0, x.size)
    hi = np.clip(idx + after + 1, 0, x.size)
    return (csum[hi] - csum[lo]) / (hi - lo)


# --------------------------------------------------------------------------------------------
# Did RL move the model? The final step against the starting model (step 0)
# --------------------------------------------------------------------------------------------
CHANGE_COLUMNS = ["model", "algo", "subset", "step0", "final", "final_step", "diff", "ci_low", "ci_high",
                  "n_problems", "n_seeds"]


def level_subsets(samples: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(label, row mask) for "all", each level present ("1".."5") and each level subset of
    lens.metrics.LEVEL_SUBSETS ("4-5") that holds a level present."""
    subsets = [("all", pd.Series(True, index=samples.index))]
    levels = sorted(int(v) for v in samples["level"].dropna().unique())
    subsets += [(str(lv), samples["level"] == lv) for lv in levels]
    subsets += [(subset, in_subset(samples["level"], subset)) for subset, members in LEVEL_SUBSETS.items()
                if any(lv in members for lv in levels)]
    return [(label, mask.fillna(False).astype(bool)) for label, mask in subsets]


def _start_end_scores(samples: pd.DataFrame, final_step: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(S, P) per-problem accuracies at step 0 and at `final_step`, rows the seeds evaluated at both,
    columns the problems every one of them answered at both (sorted ids); None when nothing pairs."""
    by_step = {step: {s: _problem_scores(g, "accuracy") for s, g in samples[samples["step"] == step]
                      .groupby("seed", sort=True)} for step in (0, final_step)}
    seeds = sorted(set(by_step[0]) & set(by_step[final_step]))
    if not seeds:
        return None
    problems = sorted(set.intersection(*(set(by_step[0][s].index) & set(by_step[final_step][s].index)
                                         for s in seeds)))
    if not problems:
        return None
    start, end = (np.stack([by_step[step][s].loc[problems].to_numpy() for s in seeds])
                  for step in (0, final_step))
    return start, end


def _change_subset_name(label: str) -> str:
    """level_subsets' label ("all", "1", "4-5") as a summary.json-style key
    ("all", "level_1", "level_4_5"), as benchmarks/check_learning.py prints them."""
    if label == "all":
        return label
    return subset_key(label) if label in LEVEL_SUBSETS else f"level_{label}"


def change_from_start(samples: pd.DataFrame, n_boot: int = 2000, *, ci: float = 0.95,
                      seed: int = 0) -> pd.DataFrame:
    """Accuracy at the final step minus step 0, per (model, algo) and subset, with a bootstrap interval.

    samples: tidy eval samples of ONE benchmark, the one evaluated at step 0. A run's final step is
    the last step any of its seeds was evaluated at; each seed evaluated at both step 0 and that step
    is compared with itself, problem by problem, so the (seeds, problems) matrix of differences
    final - step 0 goes to `bootstrap_ci` (seeds resampled, then problems). Runs without a step 0,
    or evaluated only at step 0, have nothing to compare and are left out.
    Returns one row per (model, algo, subset) in CHANGE_COLUMNS: subset "all", "level_1".."level_5",
    "level_4_5" (level_subsets: those that hold a level present); step0 and final
    in %, diff, ci_low, ci_high in points; final_step, and the problems and seeds compared.
    """
    if samples["benchmark"].nunique() > 1:
        raise ValueError(f"change_from_start compares one benchmark, got {sorted(samples['benchmark'].unique())}")
    records = []
    for (model, algo), run in samples.groupby(["model", "algo"], sort=True):
        final_step = int(run["step"].max())
        if final_step == 0 or not (run["step"] == 0).any():
            continue
        for label, mask in level_subsets(run):
            paired = _start_end_scores(run[mask.to_numpy()], final_step)
            if paired is None:
                continue
            start, end = paired
            diff = end - start  # (S, P)
            low, high = bootstrap_ci(diff, n_boot=n_boot, ci=ci, seed=seed)
            records.append({"model": model, "algo": algo, "subset": _change_subset_name(label),
                            "step0": 100 * start.mean(), "final": 100 * end.mean(), "final_step": final_step,
                            "diff": 100 * diff.mean(), "ci_low": 100 * low, "ci_high": 100 * high,
                            "n_problems": diff.shape[1], "n_seeds": diff.shape[0]})
    return pd.DataFrame(records, columns=CHANGE_COLUMNS)


# --------------------------------------------------------------------------------------------
# Power: the smallest difference between two arms a design detects (normal approximation)
# --------------------------------------------------------------------------------------------
def same_seed_rows(treatment_seeds: Sequence, baseline_seeds: Sequence) -> bool:
    """Whether two arms' (seeds, problems) rows are the same seeds in the same order (and more than one):
    the condition for pairing by seed (paired_bootstrap's same_seeds, paired_difference_se)."""
    return len(treatment_seeds) > 1 and list(treatment_seeds) == list(baseline_seeds)


Z_CRIT = {0.05: 1.959963984540054}  # two-sided critical value of N(0, 1) at alpha
Z_POWER = {0.8: 0.8416212335729143, 0.9: 1.2815515655446004}  # N(0, 1) quantile at the power


def variance_components(scores, n_samples: int | None = None) -> dict:
    """Seed-to-seed and per-problem variance of one arm's (S, P) per-seed, per-problem scores.

    Model: score[s, j] = mu + problem_j + seed_s + e_sj. The problem effect cancels in a comparison
    on the same problems; what remains is the variance of a run's mean over problems,
    seed_var + resid_var / P. With S >= 2, resid_var is the residual mean square of the two-way
    table (seeds x problems, df (S-1)(P-1)): sampling noise of the n answers per problem plus
    run-to-run variation in which problems are solved; seed_var = max(0, var(seed means) - resid_var/P).
    With one seed only the sampling noise can be estimated, and needs `n_samples`: resid_var is the
    mean over problems of the unbiased binomial variance of a problem's accuracy, a(1-a)/(n-1),
    and seed_var is 0 (unknown, not zero: say so where it is shown).
    Returns {"seed_var", "resid_var", "n_seeds", "n_problems", "mean"}.
    """
    y = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.size == 0:
        raise ValueError(f"need a non-empty (seeds, problems) array, got shape {y.shape}")
    n_seeds, n_problems = y.shape
    if n_seeds >= 2 and n_problems >= 2:
        resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
        resid_var = float((resid ** 2).sum() / ((n_seeds - 1) * (n_problems - 1)))
        seed_var = max(0.0, float(y.mean(axis=1).var(ddof=1)) - resid_var / n_problems)
    else:
        if not n_samples or n_samples < 2:
            raise ValueError("one seed: the sampling noise needs n_samples >= 2")
        resid_var = float(np.mean(y * (1 - y)) / (n_samples - 1))
        seed_var = 0.0
    return {"seed_var": seed_var, "resid_var": resid_var, "n_seeds": n_seeds, "n_problems": n_problems,
            "mean": float(y.mean())}


def difference_se(arms: Sequence[dict], n_seeds: Sequence[int], n_problems: int) -> float:
    """Standard error of mean(arm 1) - mean(arm 2) on the same `n_problems` problems.

    arms: the two arms' variance components (`variance_components`, or {"seed_var", "resid_var"}
    set by hand), n_seeds: seeds per arm. The arms' runs are independent:
    SE^2 = sum over arms of seed_var / S + resid_var / (S * P).
    """
    if len(arms) != 2 or len(n_seeds) != 2:
        raise ValueError("difference_se compares exactly two arms")
    if n_problems < 1 or min(n_seeds) < 1:
        raise ValueError("need at least one seed per arm and one problem")
    return float(np.sqrt(sum(a["seed_var"] / s + a["resid_var"] / (s * n_problems)
                             for a, s in zip(arms, n_seeds, strict=True))))


def paired_difference_se(treatment, baseline) -> dict:
    """Standard error of mean(treatment) - mean(baseline) when row s of both arms is the same seed and
    runs of one seed share their random numbers (common random numbers), so the difference is taken
    seed by seed: d[s, j] = treatment[s, j] - baseline[s, j], (S, P) with S >= 2.

    Model: d[s, j] = delta + problem_j + seed_s + e_sj. Over problems and seeds, as paired_bootstrap
    with same_seeds resamples them, Var(mean d) = problem_var / P + seed_var / S with
      problem_var = variance over problems of the seed-mean difference (its problem effect plus e / S),
      seed_var    = max(0, var(seed means of d) - resid_var / P), resid_var the two-way residual mean
                    square (variance_components): how much the treatment's effect differs by seed.
    seed_var has S - 1 degrees of freedom (`seed_df`): with few seeds it is a rough estimate, and a 0
    means the seed means of d spread no more than the problems' noise predicts, not that it is 0.
    Returns {"se", "diff", "problem_var", "seed_var", "resid_var", "seed_df", "n_seeds", "n_problems"}.
    """
    t = np.asarray(treatment, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if t.ndim != 2 or t.shape != b.shape or t.shape[0] < 2 or t.shape[1] < 2:
        raise ValueError(f"need two (seeds, problems) arrays of one shape with >= 2 seeds and problems, "
                         f"got {t.shape} and {b.shape}")
    d = t - b  # (S, P)
    n_seeds, n_problems = d.shape
    components = variance_components(d)
    problem_var = float(d.mean(axis=0).var(ddof=1))
    se = float(np.sqrt(problem_var / n_problems + components["seed_var"] / n_seeds))
    return {"se": se, "diff": float(d.mean()), "problem_var": problem_var, "seed_var": components["seed_var"],
            "resid_var": components["resid_var"], "seed_df": n_seeds - 1, "n_seeds": n_seeds,
            "n_problems": n_problems}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of one family of p-values (a table's comparisons): the i-th smallest
    of m is multiplied by m - i + 1, kept monotone and capped at 1; NaN (no comparison) stays NaN and
    is not counted in m. It controls the family-wise error rate under any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def minimum_detectable_difference(se: float, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """Smallest true difference a two-sided level-`alpha` test detects with probability `power`.

    Normal approximation: (z_{1-alpha/2} + z_{power}) * se, 2.80 se at 80 % power and alpha 0.05
    (the far tail's rejections, under 1e-6 here, are left out).
    """
    if alpha not in Z_CRIT or power not in Z_POWER:
        raise ValueError(f"tabulated: alpha in {sorted(Z_CRIT)}, power in {sorted(Z_POWER)}")
    return (Z_CRIT[alpha] + Z_POWER[power]) * float(se)


def binomial_design(accuracies: Sequence[float], n_seeds: int, n_problems: int, n_samples: int,
                    seed_sd: float = 0.0, *, power: float = 0.8, alpha: float = 0.05) -> dict:
    """Minimum detectable difference of a planned design from its arms' accuracies alone.

    Each problem's accuracy is the mean of `n_samples` Bernoulli draws; with every problem at its
    arm's accuracy a, resid_var = a(1-a)/n, the largest it can be for that mean (a spread of
    difficulties across problems lowers it), so the result is an upper bound for seed_sd = 0 runs.
    seed_sd: run-to-run standard deviation of an arm's mean accuracy (a fraction, not points).
    """
    arms = [{"seed_var": seed_sd ** 2, "resid_var": a * (1 - a) / n_samples} for a in accuracies]
    se = difference_se(arms, [n_seeds, n_seeds], n_problems)
    return {"se": se, "mdd": minimum_detectable_difference(se, power=power, alpha=alpha),
            "n_seeds": n_seeds, "n_problems": n_problems, "n_samples": n_samples, "seed_sd": seed_sd}
