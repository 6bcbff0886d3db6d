"""Power: what Level 4-5 difference could a run's design, and the paper's, detect? (imported, never run)

`run_power` is the minimum detectable LENS - GRPO difference (80 % power, two-sided 5 %) of the
runs in a tidy sample table, for the design they used (paired by seed when both arms ran the same
seeds, independent otherwise); `paper_power` is the same for the paper's design at its reported
accuracies. The statistics are analysis.stats's; REPORT.md's power section prints both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import paper_numbers, stats
from lens.metrics import in_subset

# The paper's design for the power statement (Appendix D.1 and Table 1 of the paper): seeds, the Level 4-5 problems of
# MATH-500, samples per problem; accuracies are Table 1's Pass@1 (the paper has no per-level table).
PAPER_DESIGN = {"n_seeds": 2, "n_problems": 262, "n_samples": 16}
PAPER_SEED_SDS = (0.0, 0.01, 0.02)  # run-to-run SDs of an arm's mean accuracy to show it under


def _hard_final(samples: pd.DataFrame, model: str, algo: str) -> tuple[pd.DataFrame, int] | None:
    """The arm's Level 4-5 samples at its final step and that step, on the benchmark with the most
    Level 4-5 problems (the final set when there is one, as in the accuracy-by-level table)."""
    sub = samples[(samples["model"] == model) & (samples["algo"] == algo)
                  & in_subset(samples["level"]).to_numpy()]
    if sub.empty:
        return None
    sizes = sub.groupby("benchmark")["problem_id"].nunique()
    sub = sub[sub["benchmark"] == sizes.sort_index().idxmax()]
    step = int(sub["step"].max())
    return sub[sub["step"] == step], step


def run_power(samples: pd.DataFrame, model: str, treatment: str, baseline: str) -> dict | None:
    """Minimum detectable Level 4-5 difference (80 % power, two-sided 5 %) of this run's design and the
    observed difference; None when an arm has no Level 4-5 samples.

    When both arms ran the same seeds (>= 2), runs of one seed share their random numbers (the same
    start, data order and sampling seeds), and the tables pair them by seed: the design is paired
    (analysis.stats.paired_difference_se). Otherwise the arms are independent runs, each with its own
    seed-to-seed and per-problem variance (analysis.stats.variance_components)."""
    arms = {}
    for algo in (treatment, baseline):
        found = _hard_final(samples, model, algo)
        if found is None:
            return None
        sub, step = found
        matrix = stats.seed_problem_scores(sub)  # (S, P)
        n = int(sub.groupby(["seed", "problem_id"]).size().min())
        arms[algo] = {"matrix": matrix, "step": step, "n_samples": n, "seeds": sorted(sub["seed"].unique()),
                      "components": stats.variance_components(matrix, n_samples=n)}
    t, b = arms[treatment], arms[baseline]
    if t["matrix"].shape[1] != b["matrix"].shape[1]:
        return None
    seeds = [t["matrix"].shape[0], b["matrix"].shape[0]]
    out = {"n_seeds": seeds, "n_problems": t["matrix"].shape[1], "n_samples": min(t["n_samples"], b["n_samples"]),
           "diff": float(t["matrix"].mean() - b["matrix"].mean()), "step": t["step"],
           "seed_sd": [float(np.sqrt(a["components"]["seed_var"])) for a in (t, b)],
           "resid_sd": [float(np.sqrt(a["components"]["resid_var"])) for a in (t, b)]}
    if stats.same_seed_rows(t["seeds"], b["seeds"]):
        paired = stats.paired_difference_se(t["matrix"], b["matrix"])
        out.update(design="paired", se=paired["se"], seed_df=paired["seed_df"],
                   paired_seed_sd=float(np.sqrt(paired["seed_var"])),
                   paired_problem_sd=float(np.sqrt(paired["problem_var"])))
        # what the same runs could detect if each arm's seeds were independent of the other's
        out["independent_mdd"] = stats.minimum_detectable_difference(
            stats.difference_se([t["components"], b["components"]], seeds, t["matrix"].shape[1]))
    else:
        out.update(design="independent",
                   se=stats.difference_se([t["components"], b["components"]], seeds, t["matrix"].shape[1]))
    out["mdd"] = stats.minimum_detectable_difference(out["se"])
    return out


def paper_power(seed_sds=PAPER_SEED_SDS) -> list[dict]:
    """The paper's design (2 seeds, 262 Level 4-5 problems, 16 samples) at each paper model's Table 1
    Pass@1 for GRPO and LENS, for a few run-to-run SDs."""
    rows = []
    table = paper_numbers.PASS_AT_K["table1"]
    for model in sorted({m for m, _ in table}):
        if (model, "grpo") not in table or (model, "lens") not in table:
            continue
        acc = [table[(model, "lens")][1] / 100, table[(model, "grpo")][1] / 100]
        for sd in seed_sds:
            out = stats.binomial_design(acc, seed_sd=sd, **PAPER_DESIGN)
            rows.append({"model": model, "grpo": acc[1], "lens": acc[0], "seed_sd": sd, "mdd": out["mdd"]})
    return rows
