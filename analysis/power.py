"""Power: what Level 4-5 difference could a run's design, and the paper's, detect? (imported, never run)

`run_power` is the minimum detectable LENS - GRPO difference (80 % power, two-sided 5 %) of the
runs in a tidy sample table, for the design they used (paired by seed when both arms ran the same
seeds, independent otherwise); `paper_power` is the same for the paper's design at its reported
accuracies. The statistics are analysis.stats's; REPORT.md's power section prints both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from analysis import paper_numbers, stats
from analysis.summary import advantage_change
from lens import algorithms
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


# --------------------------------------------------------------------------------------------
# What a run resolves for an arm that changes training
# --------------------------------------------------------------------------------------------
CONTROLS = ("grpo_shuffled",)  # broken on purpose: their effects say nothing about a real arm's spread
MOVES_TRAINING = 0.05  # an arm whose advantages differ from GRPO's by at least this share of |A_GRPO| on average
RESOLUTIONS = (0.025, 0.05)  # the differences (fractions) the report says how many seeds need


def seed_differences(samples: pd.DataFrame, model: str, treatment: str, baseline: str) -> np.ndarray | None:
    """Per-seed Level 4-5 accuracy of `treatment` minus `baseline` at the final step, over the seeds both
    ran and the problems both answered (a fraction per seed), or None."""
    tables = []
    for algo in (treatment, baseline):
        found = _hard_final(samples, model, algo)
        if found is None:
            return None
        tables.append(found[0].groupby(["seed", "problem_id"])["correct"].mean().unstack())
    seeds = tables[0].index.intersection(tables[1].index)
    problems = tables[0].columns.intersection(tables[1].columns)
    if len(seeds) == 0 or len(problems) == 0:
        return None
    return (tables[0].loc[seeds, problems] - tables[1].loc[seeds, problems]).mean(axis=1).to_numpy()


def training_change(metrics: pd.DataFrame) -> pd.Series:
    """(model, algo) -> mean |A - A_GRPO| over all groups as a share of mean |A_GRPO| (advantage_change)."""
    changes = advantage_change(metrics)
    weight = changes["share_of_groups"].fillna(1.0)
    delta = (changes["delta_abs_mean"] * weight).groupby([changes["model"], changes["algo"]]).sum()
    base = (changes["grpo_abs_mean"] * weight).groupby([changes["model"], changes["algo"]]).sum()
    return (delta / base.where(base > 0)).dropna()


def t_mdd(sd: float, n_seeds: int, df: int, *, power: float = 0.8, alpha: float = 0.05) -> float:
    """Minimum detectable mean of n_seeds per-seed differences of SD `sd`, with t quantiles at `df` degrees
    of freedom (the SD's own): (t_{1-alpha/2} + t_{power}) sd / sqrt(n_seeds)."""
    return float((student_t.ppf(1 - alpha / 2, df) + student_t.ppf(power, df)) * sd / np.sqrt(n_seeds))


def seeds_for(sd: float, resolution: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Seeds per arm for a minimum detectable difference of `resolution` when per-seed differences have
    SD `sd` (normal quantiles, for planning; at least 2)."""
    z = stats.Z_CRIT[alpha] + stats.Z_POWER[power]
    return max(2, int(np.ceil((z * sd / resolution) ** 2)))


def divergent_power(samples: pd.DataFrame, metrics: pd.DataFrame, model: str, baseline: str,
                    n_seeds: int) -> dict | None:
    """What a run of `n_seeds` seeds per arm resolves for an arm that changes training.

    From data that contain such divergence: every arm (controls aside) whose advantages move by at
    least MOVES_TRAINING of GRPO's, and dynamic sampling (GRPO's advantages on other batches), each with its
    per-seed differences to the baseline. Their seed-to-seed variance is pooled over the arms ((S_a - 1)
    degrees of freedom each; one arm's 2 seeds alone give 1, which is no estimate), and the MDD uses t
    quantiles at the pooled degrees of freedom. The per-seed difference holds the problems' sampling noise
    too, so nothing else is added. None without such arms."""
    change = training_change(metrics)
    arms, squares, df = [], 0.0, 0
    for algo in sorted(samples.loc[samples["model"] == model, "algo"].unique()):
        base = algo.split("/")[0]
        # Dynamic sampling keeps GRPO's rule but changes the batches it applies to: it always leaves the path.
        moves = change.get((model, algo), 0.0) >= MOVES_TRAINING or bool(algorithms.get(base).gen_batches)
        if algo == baseline or base in CONTROLS or not moves:
            continue
        d = seed_differences(samples, model, algo, baseline)
        if d is None or len(d) < 2:
            continue
        arms.append({"algo": algo, "diffs": d.tolist(), "change": float(change.get((model, algo), 0.0))})
        squares += float(((d - d.mean()) ** 2).sum())
        df += len(d) - 1
    if df == 0:
        return None
    sd = float(np.sqrt(squares / df))
    return {"arms": arms, "sd": sd, "df": df, "n_seeds": n_seeds, "mdd": t_mdd(sd, n_seeds, df),
            "seeds_for": {r: seeds_for(sd, r) for r in RESOLUTIONS}}


def paper_seeds_for(resolutions=RESOLUTIONS, seed_sds=PAPER_SEED_SDS[1:]) -> list[dict]:
    """Seeds per arm the paper's design (262 Level 4-5 problems, 16 samples) needs for each resolution, at
    each model's Table 1 accuracies and a run-to-run SD of each arm (binomial_design), up to 200."""
    rows = []
    table = paper_numbers.PASS_AT_K["table1"]
    design = {k: v for k, v in PAPER_DESIGN.items() if k != "n_seeds"}
    for model in sorted({m for m, _ in table}):
        if (model, "grpo") not in table or (model, "lens") not in table:
            continue
        acc = [table[(model, "lens")][1] / 100, table[(model, "grpo")][1] / 100]
        for sd in seed_sds:
            for r in resolutions:
                n = next((s for s in range(2, 201) if stats.binomial_design(acc, s, seed_sd=sd, **design)["mdd"] <= r),
                         None)
                rows.append({"model": model, "seed_sd": sd, "resolution": r, "n_seeds": n})
    return rows


# --------------------------------------------------------------------------------------------
# What each benchmark can resolve at the paper's design
# --------------------------------------------------------------------------------------------
# Problems and samples per problem of config/paper.yaml's final evaluation (the sets' full sizes).
PAPER_BENCHMARKS = {"math": (5000, 16), "math500": (500, 16), "aime24": (30, 32), "aime25": (30, 32),
                    "amc23": (40, 32), "minerva": (272, 16), "olympiadbench": (675, 16)}


def benchmark_mdds(accuracy: float = 0.5, seed_sds=PAPER_SEED_SDS[::2],
                   n_seeds: int = PAPER_DESIGN["n_seeds"]) -> list[dict]:
    """Minimum detectable Pass@1 difference on each benchmark of PAPER_BENCHMARKS for two arms at
    `accuracy` (0.5: the largest sampling noise, so an upper bound for seed_sd = 0) with `n_seeds` seeds
    each, at a few run-to-run SDs: the most 30 AIME problems can resolve, whatever the runs."""
    return [{"benchmark": name, "n_problems": n_problems, "n_samples": n_samples, "seed_sd": sd,
             "mdd": stats.binomial_design([accuracy, accuracy], n_seeds, n_problems, n_samples, seed_sd=sd)["mdd"]}
            for name, (n_problems, n_samples) in PAPER_BENCHMARKS.items() for sd in seed_sds]
