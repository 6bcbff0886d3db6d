"""Summaries over seeds shared by the figure and table scripts (imported, never run).

`seed_summary` turns one arm's (seeds, problems) score matrix into the mean over seeds, the spread
of the per-seed means and a 95 % bootstrap interval over seeds and problems (analysis.stats), in %;
`headline_subsets` splits per-problem rows into the whole set and the Level 4-5 subset
(lens.metrics); `accuracy_curves` is the accuracy at every evaluated step that analysis.fig_training_curves
and fig_accuracy_vs_compute plot; `pass_at_k_summary` is the Pass@k table that analysis.fig_pass_at_k plots and
analysis.tab_pass_at_k, tab_ablation and tab_leaderboard print; `advantage_change` is the
share-weighted mean |A - A_GRPO| per group type from the training metrics (REPORT.md, the
sensitivity table); `sensitivity_summary` is what analysis.tab_sensitivity prints and
analysis.fig_sensitivity draws; `with_paper` and `paper_table_for` put the paper's Pass@k beside
ours where the training data match (tab_pass_at_k, tab_ablation); `leaderboard` is the rows
analysis.tab_leaderboard prints and analysis.fig_leaderboard draws; `diff_id` names a difference
row. Scripts share code only through this module, analysis.style and analysis.stats: no script
imports another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import paper_numbers, stats, style, training_data
from analysis.collect import (
    TidyError,
    final_step_samples,
    per_problem,
    pick_benchmark,
    seed_problem_matrix,
    shared_columns,
)
from lens.algorithms import GROUP_TYPES
from lens.config import parse_sweep_arm
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


CURVE_COLUMNS = ["model", "benchmark", "subset", "algo", "step", "n_seeds", "n_problems", "mean", "ci_low",
                 "ci_high"]


def accuracy_curves(samples: pd.DataFrame, benchmark: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    """One row per (subset, model, algo, evaluated step): accuracy in % (per problem the share of its samples
    correct; mean over seeds) and its 95 % bootstrap interval over seeds and problems (CURVE_COLUMNS)."""
    benchmark, rows = pick_benchmark(samples, benchmark)
    problems = per_problem(rows)
    problems["accuracy"] = problems["c"] / problems["n"]
    records = []
    for subset, part in headline_subsets(problems):
        for (model, algo, step), group in part.groupby(["model", "algo", "step"], sort=True):
            matrix, _, _ = seed_problem_matrix(group, "accuracy")
            records.append({"model": model, "benchmark": benchmark, "subset": subset, "algo": algo,
                            "step": int(step), **seed_summary(matrix, n_boot, seed)})
    return pd.DataFrame(records).reindex(columns=CURVE_COLUMNS)


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


def advantage_change(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (model, algo, group type): mean |A_GRPO| and mean |A - A_GRPO| over all groups of that type.

    The per-step metrics are means within the step's groups of a type; weighting each step by its
    share of such groups (groups/{type}_frac) turns them into a mean over groups. Steps without a
    share are weighted equally. `share_of_groups` is the type's mean share over the steps that report
    one, so delta_abs_mean x share_of_groups summed over the types is the mean |A - A_GRPO| over all
    groups (`_training_summary`).
    """
    wide = metrics.pivot_table(index=["model", "algo", "seed", "step"], columns="metric", values="value",
                               aggfunc="mean")
    records = []
    for (model, algo), group in wide.groupby(level=["model", "algo"], sort=True):
        for gtype in GROUP_TYPES:
            base_col, delta_col = f"adv/grpo_abs_mean/{gtype}", f"adv/delta_vs_grpo/{gtype}"
            if base_col not in group or delta_col not in group:
                continue
            frac_col = f"groups/{gtype}_frac"
            weight = group[frac_col] if frac_col in group else pd.Series(1.0, index=group.index)
            ok = group[base_col].notna() & group[delta_col].notna() & weight.notna()
            w = weight[ok].to_numpy(dtype=float)
            if not ok.any() or w.sum() <= 0:
                continue
            base = float(np.average(group.loc[ok, base_col], weights=w))
            delta = float(np.average(group.loc[ok, delta_col], weights=w))
            records.append({"model": model, "algo": algo, "group_type": gtype, "grpo_abs_mean": base,
                            "delta_abs_mean": delta,
                            "share_of_groups": float(weight.mean()) if frac_col in group else np.nan,
                            "relative": delta / base if base > 0 else np.nan})
    return pd.DataFrame(records, columns=["model", "algo", "group_type", "grpo_abs_mean", "delta_abs_mean",
                                          "share_of_groups", "relative"])


# --------------------------------------------------------------------------------------------
# Sensitivity sweeps (target `sweeps`): one row per swept value, next to the main GRPO runs
# --------------------------------------------------------------------------------------------
SENSITIVITY_COLUMNS = [
    "model", "benchmark", "arm", "algo", "param", "value", "step", "n_seeds", "n_problems", "n_problems_hard",
    "acc", "acc_low", "acc_high", "hard", "hard_low", "hard_high",
    "diff", "diff_low", "diff_high", "p_value", "diff_hard", "diff_hard_low", "diff_hard_high", "p_value_hard",
    "p_holm", "p_holm_hard",
    "first_value", "vs_first_hard", "vs_first_hard_low", "vs_first_hard_high", "p_value_vs_first",
    "delta_mixed", "delta_all_wrong"]


def _value_order(values) -> list[str]:
    """Swept values (folder texts) in ascending numeric order when they are all numbers, else as text."""
    numbers = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    if numbers.notna().all():
        return [v for _, v in sorted(zip(numbers, values, strict=True))]
    return sorted(values)


def _paired(treat, base, prefix: str, n_boot: int, seed: int) -> dict:
    """Paired bootstrap of two arms' (matrix, problem ids, seeds), in points, as `{prefix}`, `{prefix}_low`, ..."""
    (t, t_pids, t_seeds), (b, b_pids, b_seeds) = treat, base
    t, b, _ = shared_columns(t, t_pids, b, b_pids)
    # runs of one seed share their random numbers: pair them (analysis.stats.same_seed_rows)
    res = stats.paired_bootstrap(t, b, n_boot=n_boot, seed=seed, same_seeds=stats.same_seed_rows(t_seeds, b_seeds))
    return {prefix: style.percent(res["diff"]), f"{prefix}_low": style.percent(res["ci_low"]),
            f"{prefix}_high": style.percent(res["ci_high"]), "p": res["p_value"]}


def sensitivity_summary(samples: pd.DataFrame, metrics: pd.DataFrame, benchmark: str | None, baseline: str,
                        arms, n_boot: int, seed: int) -> pd.DataFrame:
    """Per model: the baseline's main runs, then one row per swept value (arm `{algo}/{param}-{value}`,
    analysis.collect --sweeps), at each arm's final step.

    acc / hard: accuracy (%) on all problems / Levels 4-5, mean over seeds with the 95 % bootstrap
    interval over problems and seeds; diff / diff_hard: minus the baseline's main runs in points,
    paired bootstrap over the problems both answered (and over seeds when both ran the same ones);
    vs_first_hard: Levels 4-5 minus the sweep's first (smallest) value's, paired the same way;
    delta_mixed / delta_all_wrong: mean |A - A_GRPO| over the mixed / all-wrong groups of every
    step and seed (`advantage_change`). `arms` (None: every sweep arm found) picks the rows.
    """
    benchmark, rows = pick_benchmark(samples, benchmark)
    found = sorted(a for a in rows["algo"].unique() if parse_sweep_arm(a) is not None)
    arms = found if arms is None else list(arms)
    missing = [a for a in arms if a not in found]
    if missing or not arms:
        raise TidyError(f"no evaluation samples on {benchmark!r} of the sweep run(s) {missing or '(none found)'}: "
                        "run the `sweeps` target and collect with `analysis.collect --sweeps`")
    problems = per_problem(final_step_samples(rows[rows["algo"].isin([baseline, *arms])]))
    problems = problems.assign(accuracy=problems["c"] / problems["n"])
    changes = advantage_change(metrics).set_index(["model", "algo", "group_type"])["delta_abs_mean"]
    records = []
    for model, part in problems.groupby("model", sort=True):
        arms_by_sweep: dict[tuple[str, str], dict[str, str]] = {}
        for arm in part["algo"].unique():
            if arm in arms:
                algo, param, value = parse_sweep_arm(arm)
                arms_by_sweep.setdefault((algo, param), {})[value] = arm
        cells = {}  # (arm, subset) -> (matrix, problem ids, seeds)
        for subset, sub in headline_subsets(part):
            for arm, group in sub.groupby("algo", sort=True):
                matrix, seeds, pids = seed_problem_matrix(group, "accuracy")
                cells[arm, subset] = (matrix, pids, seeds)
        if not arms_by_sweep:
            continue
        ordered = [(baseline, None, None, None)] if (baseline, "all") in cells else []
        for (algo, param), by_value in sorted(arms_by_sweep.items()):
            ordered += [(by_value[v], algo, param, v) for v in _value_order(by_value)]
        firsts = {(algo, param): by_value[_value_order(by_value)[0]]
                  for (algo, param), by_value in arms_by_sweep.items()}
        for arm, algo, param, value in ordered:
            group = part[part["algo"] == arm]
            first = firsts.get((algo, param))
            record = {"model": model, "benchmark": benchmark, "arm": arm, "algo": algo or arm, "param": param,
                      "value": value, "step": int(group["step"].iloc[0]), "n_seeds": group["seed"].nunique(),
                      "first_value": parse_sweep_arm(first)[2] if first else None}
            for subset, prefix in (("all", "acc"), (HARD_SUBSET, "hard")):
                if (arm, subset) not in cells:
                    continue
                matrix, pids, _ = cells[arm, subset]
                summary = seed_summary(matrix, n_boot, seed)
                record.update({"n_problems" if subset == "all" else "n_problems_hard": len(pids),
                               prefix: summary["mean"], f"{prefix}_low": summary["ci_low"],
                               f"{prefix}_high": summary["ci_high"]})
                if arm != baseline and (baseline, subset) in cells:
                    diff = "diff" if subset == "all" else "diff_hard"
                    res = _paired(cells[arm, subset], cells[baseline, subset], diff, n_boot, seed)
                    record.update({"p_value" if subset == "all" else "p_value_hard": res.pop("p"), **res})
                if subset == HARD_SUBSET and first not in (None, arm) and (first, subset) in cells:
                    res = _paired(cells[arm, subset], cells[first, subset], "vs_first_hard", n_boot, seed)
                    record.update({"p_value_vs_first": res.pop("p"), **res})
            for gtype in ("mixed", "all_wrong"):
                record[f"delta_{gtype}"] = changes.get((model, arm, gtype), np.nan)
            records.append(record)
    data = pd.DataFrame(records).reindex(columns=SENSITIVITY_COLUMNS)
    # One family per sweep (model, algorithm, parameter): its values' comparisons with GRPO, Holm-adjusted.
    for raw, adjusted in (("p_value", "p_holm"), ("p_value_hard", "p_holm_hard")):
        data[adjusted] = data.groupby(["model", "algo", "param"], dropna=False)[raw].transform(
            lambda p: pd.Series(stats.holm(p.to_numpy(dtype=float)), index=p.index))
    return data


# --------------------------------------------------------------------------------------------
# The Pass@k tables (Table 1/3 layout: analysis.tab_pass_at_k; Table 2's: analysis.tab_ablation)
# --------------------------------------------------------------------------------------------
PASS_AT_K_TABLE_COLUMNS = ["model", "benchmark", "subset", "algo", "step", "n_seeds", "n_samples", "k", "mean",
                           "std_seeds", "ci_low", "ci_high", "paper", "delta"]
# The paper tables in the Table 1/3 layout, for `--paper-table auto`, in the order they are tried.
PAPER_TABLES = ("table1", "table3")


def with_paper(summary: pd.DataFrame, paper_table: str | None) -> pd.DataFrame:
    """Add the paper's Pass@k (and ours minus paper) to the whole-set rows of matching models;
    `paper_table` None (training data unlike any paper table's): no paper numbers."""
    def lookup(row) -> float:
        if row["subset"] != "all" or paper_table is None:
            return np.nan
        ref = paper_numbers.paper_pass_at_k(paper_table, row["model"], row["algo"], row["benchmark"])
        return ref.get(int(row["k"]), np.nan) if ref else np.nan

    data = summary.copy()
    data["paper"] = data.apply(lookup, axis=1) if len(data) else pd.Series(dtype=float)
    data["delta"] = data["mean"] - data["paper"]
    return data[PASS_AT_K_TABLE_COLUMNS]


def paper_table_for(trained: training_data.TrainingData, requested: str) -> tuple[str | None, str]:
    """(the paper table to print beside ours, or None; the note when there is none).

    `requested` is a table name or `auto` (the one of PAPER_TABLES whose training data are these runs')."""
    if requested != "auto":
        ok, why = training_data.paper_comparable(trained, requested)
        return (requested, "") if ok else (None, why)
    table = training_data.matching_paper_table(trained, PAPER_TABLES)
    if table is not None:
        return table, ""
    kinds = " and ".join(f"{style.paper_label(t)} on {style.training_data_label(paper_numbers.TRAINING_DATA[t])}"
                         for t in PAPER_TABLES)
    return None, f"No comparison with the paper: it trained {kinds}; these runs on {trained.label}."


# --------------------------------------------------------------------------------------------
# The leaderboard (analysis.tab_leaderboard, analysis.fig_leaderboard)
# --------------------------------------------------------------------------------------------
LEADERBOARD_COLUMNS = ["rank", "model", "benchmark", "algo", "step", "n_seeds", "n_problems_hard",
           "pass1", "pass1_low", "pass1_high", "k", "passk", "passk_low", "passk_high",
           "hard", "hard_low", "hard_high", "diff_hard", "diff_low", "diff_high", "p_value", "p_holm",
           "curve_benchmark", "equal_tokens", "diff_hard_equal_tokens", "diff_hard_equal_tokens_low",
           "diff_hard_equal_tokens_high", "all_wrong_frac", "delta_vs_grpo"]


def _hard_matrices(samples: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, list[str], int, list[int]]]:
    """(model, algo) -> (seeds x problems accuracy matrix on Level 4-5, problem ids, step, seeds)."""
    problems = per_problem(final_step_samples(samples))
    problems = problems[in_subset(problems["level"]).to_numpy()]
    out = {}
    for (model, algo), group in problems.groupby(["model", "algo"], sort=True):
        matrix, seeds, pids = seed_problem_matrix(group.assign(accuracy=group["c"] / group["n"]), "accuracy")
        out[model, algo] = (matrix, pids, int(group["step"].iloc[0]), seeds)
    return out


def _training_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (model, algo): mean all-wrong share, and mean |A - A_GRPO| over all groups (every group has G
    samples: over all samples), over steps and seeds: advantage_change's types weighted by their shares."""
    all_wrong = metrics[metrics["metric"] == "groups/all_wrong_frac"].groupby(["model", "algo"])["value"].mean()
    changes = advantage_change(metrics)
    weighted = changes["delta_abs_mean"] * changes["share_of_groups"]
    delta = weighted.groupby([changes["model"], changes["algo"]]).sum(min_count=1)
    out = pd.DataFrame({"all_wrong_frac": all_wrong, "delta_vs_grpo": delta})
    out.index.names = ["model", "algo"]
    return out.reset_index()


def leaderboard(samples: pd.DataFrame, metrics: pd.DataFrame, benchmark: str | None, baseline: str, k_max: int,
                n_boot: int, seed: int, curve_benchmark: str | None = None) -> pd.DataFrame:
    """The leaderboard's rows (analysis.tab_leaderboard prints them, analysis.fig_leaderboard draws them)."""
    benchmark, rows = pick_benchmark(samples, benchmark)
    n_min = int(per_problem(final_step_samples(rows))["n"].min())
    k = 1 << int(np.log2(max(1, min(k_max, n_min))))  # largest power of two every run sampled
    passes = pass_at_k_summary(rows, benchmark, sorted({1, k}), n_boot, seed)
    passes = passes[passes["subset"] == "all"].set_index(["model", "algo", "k"])
    hard = _hard_matrices(rows)
    train = _training_summary(metrics).set_index(["model", "algo"]) if not metrics.empty else pd.DataFrame()
    # Equal generated tokens: along the checkpoints of the set evaluated every N steps (the final set is
    # evaluated once), so it is another benchmark than the columns at equal steps.
    curve_benchmark, _ = pick_benchmark(samples, curve_benchmark)
    curves = hard_at_tokens(samples, metrics, curve_benchmark) if not metrics.empty else {}
    records = []
    for (model, algo), (matrix, pids, step, seeds) in hard.items():
        hard_summary = seed_summary(matrix, n_boot, seed)
        record = {"model": model, "benchmark": benchmark, "algo": algo, "step": step, "n_seeds": len(matrix),
                  "n_problems_hard": len(pids), "k": k, "hard": hard_summary["mean"],
                  "hard_low": hard_summary["ci_low"], "hard_high": hard_summary["ci_high"]}
        for prefix, kk in (("pass1", 1), ("passk", k)):
            row = passes.loc[(model, algo, kk)]
            record.update({prefix: row["mean"], f"{prefix}_low": row["ci_low"], f"{prefix}_high": row["ci_high"]})
        if algo != baseline and (model, baseline) in hard:
            base, base_pids, _, base_seeds = hard[model, baseline]
            treat, base, _ = shared_columns(matrix, pids, base, base_pids)
            # runs of one seed share their random numbers: pair them (analysis.stats.same_seed_rows)
            res = stats.paired_bootstrap(treat, base, n_boot=n_boot, seed=seed,
                                         same_seeds=stats.same_seed_rows(seeds, base_seeds))
            record.update({"diff_hard": style.percent(res["diff"]), "diff_low": style.percent(res["ci_low"]),
                           "diff_high": style.percent(res["ci_high"]), "p_value": res["p_value"],
                           "curve_benchmark": curve_benchmark})
            record.update(equal_token_difference(curves, model, algo, baseline, n_boot, seed) or {})
        if (model, algo) in train.index:
            record.update(train.loc[(model, algo)].to_dict())
        records.append(record)
    if not records:
        raise TidyError(f"no run has Level 4-5 problems ({style.HARD_SUBSET_LABEL}) on {benchmark!r}")
    data = pd.DataFrame(records).reindex(columns=LEADERBOARD_COLUMNS)
    # One family per table: every arm's comparison with the baseline, all models (Holm), raw p beside it.
    data["p_holm"] = stats.holm(data["p_value"].to_numpy(dtype=float))
    data = data.sort_values(["model", "hard", "algo"], ascending=[True, False, True], kind="stable")
    data["rank"] = data.groupby("model").cumcount() + 1
    return data.reset_index(drop=True)


def diff_id(treatment: str, baseline: str) -> str:
    """The `algo` of a difference row (tab_accuracy_by_level's CSV, REPORT.md's lookups)."""
    return f"{treatment}_minus_{baseline}"


# --------------------------------------------------------------------------------------------
# What the runs cost (analysis.tab_cost, analysis.fig_accuracy_vs_compute, the leaderboard's equal-token column)
# --------------------------------------------------------------------------------------------
# Per-rollout metrics (lens.trainer.COST_METRICS, lens.train's time/step_s) -> the run's column, summed.
COST_SUMS = {"cost/completions": "completions", "cost/completion_tokens": "completion_tokens",
             "cost/prompt_tokens": "prompt_tokens", "cost/trained_tokens": "trained_tokens",
             "time/generation_s": "generation_s", "time/scoring_s": "scoring_s", "time/step_s": "wall_s"}
COST_COLUMNS = ["model", "algo", "seed", "steps", "completions", "completion_tokens", "prompt_tokens",
                "trained_tokens", "generation_s", "scoring_s", "other_s", "wall_s", "processes", "gpu_hours"]


def run_costs(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its rollout steps' cost metrics summed (every rollout is logged, recorded or not),
    other_s = wall_s - generation_s - scoring_s (old log-probs, advantages, the updates, checkpoints),
    processes, and GPU-hours (step seconds x GPUs; 0 on the CPU). Empty where no run logged costs."""
    rows = metrics[metrics["metric"].isin([*COST_SUMS, "cost/processes", "cost/gpus"])]
    if rows.empty:
        return pd.DataFrame(columns=COST_COLUMNS)
    wide = rows.pivot_table(index=["model", "algo", "seed", "step"], columns="metric", values="value",
                            aggfunc="first").reindex(columns=[*COST_SUMS, "cost/processes", "cost/gpus"])
    runs = wide.groupby(level=["model", "algo", "seed"])
    out = runs[list(COST_SUMS)].sum(min_count=1).rename(columns=COST_SUMS)
    out["steps"] = runs.size()
    out["other_s"] = out["wall_s"] - out["generation_s"] - out["scoring_s"]
    out["processes"] = runs["cost/processes"].max()
    out["gpu_hours"] = (wide["time/step_s"] * wide["cost/gpus"]).groupby(level=["model", "algo", "seed"]).sum(
        min_count=1) / 3600
    return out.reset_index().reindex(columns=COST_COLUMNS).rename_axis(columns=None)


def cumulative_tokens(metrics: pd.DataFrame) -> pd.DataFrame:
    """(model, algo, seed, step, tokens): completion tokens generated up to the end of each rollout step,
    with step 0 (the start, nothing generated) for every run that logged them."""
    rows = metrics[metrics["metric"] == "cost/completion_tokens"].sort_values(["model", "algo", "seed", "step"])
    rows = rows.assign(tokens=rows.groupby(["model", "algo", "seed"])["value"].cumsum())
    starts = rows.drop_duplicates(["model", "algo", "seed"]).assign(step=0, tokens=0.0)
    return (pd.concat([starts, rows])[["model", "algo", "seed", "step", "tokens"]]
            .sort_values(["model", "algo", "seed", "step"]).reset_index(drop=True))


def interpolate_at_tokens(steps: np.ndarray, tokens: np.ndarray, values: np.ndarray, target: float) -> np.ndarray:
    """Per-problem values (checkpoints, problems) of one seed at `target` cumulative tokens: linear in
    tokens between the two evaluated checkpoints around it (the checkpoint itself where one sits there),
    clamped to the last checkpoint where this seed generated less than `target` in all."""
    order = np.argsort(tokens, kind="stable")
    tokens, values = tokens[order], values[order]
    if target >= tokens[-1]:
        return values[-1]
    i = int(np.searchsorted(tokens, target, side="right")) - 1  # tokens[i] <= target < tokens[i + 1]
    w = (target - tokens[i]) / (tokens[i + 1] - tokens[i])
    return (1 - w) * values[i] + w * values[i + 1]


def hard_at_tokens(samples: pd.DataFrame, metrics: pd.DataFrame, benchmark: str | None) -> dict:
    """(model, algo) -> (seeds, problem ids, {seed: (steps, tokens, (checkpoints, problems) Level 4-5
    accuracies)}) over every evaluated checkpoint of the curve benchmark with a cumulative token count."""
    tokens = cumulative_tokens(metrics).set_index(["model", "algo", "seed", "step"])["tokens"]
    _, rows = pick_benchmark(samples, benchmark)
    problems = per_problem(rows)
    problems = problems[in_subset(problems["level"]).to_numpy()].assign(accuracy=lambda p: p["c"] / p["n"])
    out = {}
    for (model, algo), group in problems.groupby(["model", "algo"], sort=True):
        table = group.pivot_table(index=["seed", "step"], columns="problem_id", values="accuracy").dropna(axis=1)
        keys = [k for k in table.index if (model, algo, *k) in tokens.index]
        if not keys or table.shape[1] == 0:
            continue
        per_seed = {}
        for seed_value in sorted({s for s, _ in keys}):
            steps = np.array([st for s, st in keys if s == seed_value])
            per_seed[seed_value] = (steps, tokens.loc[[(model, algo, seed_value, st) for st in steps]].to_numpy(),
                                    table.loc[[(seed_value, st) for st in steps]].to_numpy())
        out[model, algo] = (sorted(per_seed), table.columns.tolist(), per_seed)
    return out


def equal_token_difference(curves: dict, model: str, treatment: str, baseline: str, n_boot: int,
                           seed: int) -> dict | None:
    """Level 4-5 accuracy of `treatment` minus `baseline` (points, paired bootstrap as at equal steps) at
    equal generated tokens: at T, the smaller of the two arms' mean totals, each seed's per-problem
    accuracy interpolated in tokens (interpolate_at_tokens). None where an arm has no token counts."""
    if (model, treatment) not in curves or (model, baseline) not in curves:
        return None
    arms = [curves[model, treatment], curves[model, baseline]]
    target = min(np.mean([tok.max() for _, tok, _ in arm[2].values()]) for arm in arms)
    matrices = [np.stack([interpolate_at_tokens(*arm[2][s], target) for s in arm[0]]) for arm in arms]
    treat, base, _ = shared_columns(matrices[0], arms[0][1], matrices[1], arms[1][1])
    res = stats.paired_bootstrap(treat, base, n_boot=n_boot, seed=seed,
                                 same_seeds=stats.same_seed_rows(arms[0][0], arms[1][0]))
    return {"equal_tokens": target, "diff_hard_equal_tokens": style.percent(res["diff"]),
            "diff_hard_equal_tokens_low": style.percent(res["ci_low"]),
            "diff_hard_equal_tokens_high": style.percent(res["ci_high"])}


# --------------------------------------------------------------------------------------------
# Every benchmark of the final step (tab_benchmarks, fig_benchmarks)
# --------------------------------------------------------------------------------------------
BENCHMARK_COLUMNS = ["model", "benchmark", "algo", "step", "n_seeds", "n_problems", "n_samples", "metric", "k",
                     "mean", "std_seeds", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "p_value", "p_holm",
                     "mdd"]


def _mdd(treat: np.ndarray, base: np.ndarray, t_seeds, b_seeds, n_samples: int) -> float:
    """Minimum detectable difference (points, 80 % power, two-sided 5 %) of this design on these problems:
    paired by seed when both arms ran the same seeds (>= 2), else independent arms, whose seed-to-seed
    variance one seed cannot estimate (then the sampling noise alone: a lower bound). NaN where the
    scores do not vary (a zero standard error would claim every difference detectable)."""
    try:
        if stats.same_seed_rows(t_seeds, b_seeds) and treat.shape[1] >= 2:
            se = stats.paired_difference_se(treat, base)["se"]
        else:
            comps = [stats.variance_components(m, n_samples=n_samples) for m in (treat, base)]
            se = stats.difference_se(comps, [treat.shape[0], base.shape[0]], treat.shape[1])
    except ValueError:  # one seed and one sample per problem: nothing estimates the noise
        return float("nan")
    if se == 0:  # every answer of both arms wrong (or right): no variation to estimate the noise from
        return float("nan")
    return style.percent(stats.minimum_detectable_difference(se))


def benchmark_summary(samples: pd.DataFrame, baseline: str, n_boot: int, seed: int,
                      benchmarks=None) -> pd.DataFrame:
    """Pass@1 and Pass@k (k = the set's samples per problem) of every (model, benchmark, arm) at the final
    step, in %, and for every arm but `baseline` its paired Pass@1 difference, the p-value Holm-adjusted
    across the benchmarks of that (model, arm), and the minimum detectable difference of the design
    (`_mdd`). One row per (model, benchmark, algo, metric); the difference columns sit on the Pass@1 row.
    """
    rows = samples if benchmarks is None else samples[samples["benchmark"].isin(benchmarks)]
    if rows.empty:
        raise TidyError(f"no evaluation samples on the benchmarks {list(benchmarks)}")
    problems = per_problem(final_step_samples(rows))
    records = []
    for (model, bench), part in problems.groupby(["model", "benchmark"], sort=True):
        n_samples = int(part["n"].min())
        arms = {}
        for algo, group in part.groupby("algo", sort=True):
            for metric, k in (("pass@1", 1), ("pass@k", n_samples)):
                scored = group.assign(score=stats.pass_at_k(group["n"].to_numpy(), group["c"].to_numpy(), k))
                matrix, seeds, pids = seed_problem_matrix(scored, "score")
                if k == 1:
                    arms[algo] = (matrix, seeds, pids)
                records.append({"model": model, "benchmark": bench, "algo": algo, "step": int(group["step"].iloc[0]),
                                "n_samples": n_samples, "metric": metric, "k": k,
                                **seed_summary(matrix, n_boot, seed)})
        if baseline not in arms:
            continue
        b_mat, b_seeds, b_pids = arms[baseline]
        for algo, (t_mat, t_seeds, t_pids) in arms.items():
            if algo == baseline:
                continue
            t, b, _ = shared_columns(t_mat, t_pids, b_mat, b_pids)
            res = stats.paired_bootstrap(t, b, n_boot=n_boot, seed=seed,
                                         same_seeds=stats.same_seed_rows(t_seeds, b_seeds))
            row = next(r for r in records if (r["model"], r["benchmark"], r["algo"], r["metric"])
                       == (model, bench, algo, "pass@1"))
            row.update({"diff": style.percent(res["diff"]), "diff_low": style.percent(res["ci_low"]),
                        "diff_high": style.percent(res["ci_high"]), "p_value": res["p_value"],
                        "mdd": _mdd(t, b, t_seeds, b_seeds, n_samples)})
    data = pd.DataFrame(records, columns=BENCHMARK_COLUMNS)
    if benchmarks is not None:  # rows in the order asked for (the workflow's: MATH test, AIME, ..., MATH-500)
        order = {b: i for i, b in enumerate(benchmarks)}
        data = data.sort_values(["model", "benchmark"], key=lambda col: col.map(order) if col.name == "benchmark"
                                else col, kind="mergesort").reset_index(drop=True)
    # Holm across the benchmarks of one (model, arm): "better on one of five sets" is one family
    for _, idx in data[data["metric"] == "pass@1"].groupby(["model", "algo"]).groups.items():
        data.loc[idx, "p_holm"] = stats.holm(data.loc[idx, "p_value"].to_numpy(dtype=float))
    return data
