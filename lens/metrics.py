"""Evaluation metrics: unbiased Pass@k, accuracy by level/subject, the level subsets, the summary.

Pure numpy + pandas (no torch). lens.evaluate writes `summarize`'s dict to summary.json;
analysis.stats re-exports these functions next to its bootstrap statistics. Inputs are per-sample
tables with the columns of ``eval/{benchmark}/step{S}/samples.parquet`` (``problem_id, level,
subject, sample_idx, correct``; tidy tables add ``model, algo, seed, step, benchmark``).

Conventions:
- accuracy is the mean over problems of each problem's fraction of correct samples (the paper's
  "mean accuracy over the 16 samples"); with the same n for every problem it equals the sample mean;
- level subsets are declared once, in LEVEL_SUBSETS: the paper's "Level 4-5" (`HARD_SUBSET`) is the
  problems with level in {4, 5} (262 of MATH-500);
- Pass@k is Chen et al. (2021)'s unbiased estimator 1 - C(n-c, k) / C(n, k), averaged over problems.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Level subsets: id (as in the tidy tables' `level` and `subset` columns) -> the levels it holds.
LEVEL_SUBSETS = {"4-5": (4, 5)}
HARD_SUBSET = "4-5"  # the paper's headline subset, MATH's two highest difficulty levels


def subset_key(subset: str) -> str:
    """Key of a level subset in summary.json (``accuracy/level_4_5``): ``level_`` + its levels."""
    return "level_" + "_".join(str(level) for level in LEVEL_SUBSETS[subset])


def in_subset(levels, subset: str = HARD_SUBSET) -> pd.Series:
    """Boolean mask of the rows whose level (numbers, strings or missing) lies in the subset."""
    return pd.to_numeric(pd.Series(levels), errors="coerce").isin(LEVEL_SUBSETS[subset])


# --------------------------------------------------------------------------------------------
# Pass@k
# --------------------------------------------------------------------------------------------
def pass_at_k(n, c, k):
    """Unbiased Pass@k of Chen et al. (2021): P(at least one of k draws without replacement is correct).

    ``1 - C(n-c, k) / C(n, k)``, computed as ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` to stay exact in
    floating point. `n`, `c`, `k` broadcast against each other (scalars in, float out; arrays in,
    array out). Raises ValueError unless 0 <= c <= n and 1 <= k <= n.
    """
    n_arr, c_arr, k_arr = np.broadcast_arrays(np.asarray(n), np.asarray(c), np.asarray(k))
    if np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("pass_at_k needs 0 <= c <= n")
    if np.any(k_arr < 1) or np.any(k_arr > n_arr):
        raise ValueError("pass_at_k needs 1 <= k <= n")
    if n_arr.size == 0:
        return np.zeros(n_arr.shape, dtype=float)
    n_max = int(n_arr.max())
    i = np.arange(1, n_max + 1, dtype=float)  # (N,)
    n_e, c_e, k_e = (a[..., None].astype(float) for a in (n_arr, c_arr, k_arr))
    # Only i in (n-c, n] enters the product; elsewhere the factor is 1.
    inside = (i > n_e - c_e) & (i <= n_e)
    factors = np.where(inside, 1.0 - k_e / i, 1.0)
    result = 1.0 - np.prod(factors, axis=-1)
    # n - c < k: every k-subset holds a correct sample (the product has a zero factor; clip rounding).
    result = np.where(n_arr - c_arr < k_arr, 1.0, np.clip(result, 0.0, 1.0))
    return float(result) if result.ndim == 0 else result


# --------------------------------------------------------------------------------------------
# Per-problem table and accuracies
# --------------------------------------------------------------------------------------------
def problem_table(samples: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """One row per problem (per group in `by`): columns n, c, accuracy, level, subject (when present)."""
    keys = [*by, "problem_id"]
    missing = [col for col in [*keys, "correct"] if col not in samples.columns]
    if missing:
        raise KeyError(f"samples lack column(s) {missing}")
    agg = {"n": ("correct", "size"), "c": ("correct", "sum")}
    for col in ("level", "subject"):
        if col in samples.columns:
            agg[col] = (col, "first")
    table = samples.groupby(keys, sort=True, dropna=False).agg(**agg).reset_index()
    table["c"] = table["c"].astype(int)
    table["accuracy"] = table["c"] / table["n"]
    return table


def mean_accuracy(samples: pd.DataFrame) -> float:
    """Mean over problems of the per-problem fraction correct (nan for an empty table)."""
    if len(samples) == 0:
        return float("nan")
    return float(problem_table(samples)["accuracy"].mean())


def accuracy_by_level(samples: pd.DataFrame) -> dict[str, float]:
    """``{"level_1": acc, ..., "level_4_5": acc}`` for the levels present (problems without a level skipped)."""
    table = problem_table(samples)
    out: dict[str, float] = {}
    levels = pd.to_numeric(table["level"], errors="coerce")
    for level in sorted(levels.dropna().unique()):
        out[f"level_{int(level)}"] = float(table.loc[levels == level, "accuracy"].mean())
    for subset, levels_in in LEVEL_SUBSETS.items():
        inside = levels.isin(levels_in)
        if inside.any():
            out[subset_key(subset)] = float(table.loc[inside, "accuracy"].mean())
    return out


def accuracy_by_subject(samples: pd.DataFrame) -> dict[str, float]:
    table = problem_table(samples)
    table = table[table["subject"].notna()]
    return {str(s): float(g["accuracy"].mean()) for s, g in table.groupby("subject", sort=True)}


def mean_pass_at_k(samples: pd.DataFrame, k: int) -> float:
    """Pass@k averaged over problems; problems with fewer than k samples raise ValueError."""
    table = problem_table(samples)
    return float(np.mean(pass_at_k(table["n"].to_numpy(), table["c"].to_numpy(), k)))


def summarize(samples: pd.DataFrame, pass_k: Sequence[int] = (1, 2, 4, 8, 16)) -> dict[str, float | int]:
    """The flat dict evaluate.py writes to summary.json.

    Keys: accuracy, accuracy/level_{1..5}, accuracy/level_4_5, accuracy/subject/{subject},
    pass@{k} (k larger than the smallest per-problem n are skipped), n_problems, n_samples,
    n_problems_level_4_5.
    """
    table = problem_table(samples)
    out: dict[str, float | int] = {
        "accuracy": float(table["accuracy"].mean()) if len(table) else float("nan"),
        "n_problems": int(len(table)),
        "n_samples": int(len(samples)),
    }
    for key, value in accuracy_by_level(samples).items():
        out[f"accuracy/{key}"] = value
    for key, value in accuracy_by_subject(samples).items():
        out[f"accuracy/subject/{key}"] = value
    levels = pd.to_numeric(table["level"], errors="coerce") if "level" in table else pd.Series(dtype=float)
    for subset, levels_in in LEVEL_SUBSETS.items():
        out[f"n_problems_{subset_key(subset)}"] = int(levels.isin(levels_in).sum())
    n_min = int(table["n"].min()) if len(table) else 0
    for k in pass_k:
        if 1 <= k <= n_min:
            out[f"pass@{k}"] = float(np.mean(pass_at_k(table["n"].to_numpy(), table["c"].to_numpy(), k)))
    return out
