"""Summaries over seeds shared by the figure and table scripts (imported, never run).

`seed_summary` turns one arm's (seeds, problems) score matrix into the mean over seeds, the spread
of the per-seed means and a 95 % bootstrap interval over seeds and problems (analysis.stats), in %;
`headline_subsets` splits per-problem rows into the whole set and the Level 4-5 subset
(lens.metrics); `pass_at_k_summary` is the Pass@k table that analysis.fig_pass_at_k plots and
analysis.tab_pass_at_k, tab_ablation and tab_leaderboard print.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import stats, style
from analysis.collect import TidyError, final_step_samples, per_problem, pick_benchmark, seed_problem_matrix
from lens.metrics import HARD_SUBSET, in_subset

# The subsets every headline figure and table shows, in their order.
HEADLINE_SUBSETS = ("all", HARD_SUBSET)
PASS_AT_K_COLUMNS = ["model", "benchmark", "subset", "algo", "step", "k", "n_seeds", "n_problems", "n_samples",
                     "mean", "std_seeds", "ci_low", "ci_high"]


def seed_summary(matrix: np.ndarray, n_boot: int, seed: int) -> dict:
    """n_seeds, n_problems, mean (over seeds), std_seeds (sample std of the per-seed means; NaN with one
    seed) and the 95 % bootstrap interval ci_low/ci_high of a (seeds, problems) matrix, in %."""
    per_seed = matrix.mean(axis=1)  # (S,)
    low, high = stats.bootstrap_ci(matrix, n_boot=n_boot, seed=seed)
    return {"n_seeds": matrix.shape[0], "n_problems": matrix.shape[1], "mean": style.percent(per_seed.mean()),
            "std_seeds": style.percent(per_seed.std(ddof=1)) if matrix.shape[0] > 1 else np.nan,
            "ci_low": style.percent(low), "ci_high": style.percent(high)}


def headline_subsets(problems: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(subset, rows) for the whole set and the Level 4-5 subset of per-problem (or per-sample) rows."""
    return [("all", problems), (HARD_SUBSET, problems[in_subset(problems["level"]).to_numpy()])]


def pass_at_k_summary(samples: pd.DataFrame, benchmark: str | None, ks, n_boot: int, seed: int,
                      algos=None) -> pd.DataFrame:
    """One row per (model, subset, algo, k): Pass@k in % at the final step, mean/std over seeds, 95 % CI.

    k larger than the number of samples per problem is skipped (the estimator is undefined there).
    """
    benchmark, rows = pick_benchmark(samples, benchmark)
    if algos is not None:
        rows = rows[rows["algo"].isin(algos)]
        if rows.empty:
            raise TidyError(f"none of the algorithms {list(algos)} has evaluation samples on {benchmark!r}")
    problems = per_problem(final_step_samples(rows))
    records = []
    for subset, part in headline_subsets(problems):
        for (model, algo), group in part.groupby(["model", "algo"], sort=True):
            n_min = int(group["n"].min())
            for k in ks:
                if k > n_min:
                    continue
                scored = group.assign(score=stats.pass_at_k(group["n"].to_numpy(), group["c"].to_numpy(), k))
                matrix, _, _ = seed_problem_matrix(scored, "score")
                records.append({"model": model, "benchmark": benchmark, "subset": subset, "algo": algo,
                                "step": int(group["step"].iloc[0]), "k": int(k), "n_samples": n_min,
                                **seed_summary(matrix, n_boot, seed)})
    return pd.DataFrame(records, columns=PASS_AT_K_COLUMNS)
