"""Leaderboard of every arm trained: how each answer to all-wrong groups ends up, sorted by Level 4-5 accuracy.

    python -m analysis.tab_leaderboard --tidy results/tidy/ablations --out results/tables/ablations \
        [--benchmark math500] [--baseline grpo] [--k-max 16] [--bootstrap-samples 2000]

One row per (model, algorithm) at the final step: Pass@1 and Pass@k (k the largest power of two up
to --k-max that every run sampled), each with a 95 % bootstrap interval over problems and seeds;
Level 4-5 accuracy with its interval; Level 4-5 accuracy minus the baseline's (GRPO) in points with
a paired bootstrap interval and p-value over the problems both answered, paired by seed too when
both arms ran the same seeds (analysis.stats.paired_bootstrap); from the training metrics, the
share of all-wrong groups (groups/all_wrong_frac) and the mean |A - A_GRPO| over all samples
(adv/delta_vs_grpo/{type} weighted by groups/{type}_frac), each averaged over rollout steps and
seeds. Rows are sorted by Level 4-5 accuracy, best first. Writes tab_leaderboard.{md,tex,csv};
analysis.fig_leaderboard draws the same CSV.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import stats, style, training_data
from analysis.collect import (
    TidyError,
    final_step_samples,
    per_problem,
    pick_benchmark,
    read_eval_samples,
    read_train_metrics,
    seed_problem_matrix,
    shared_columns,
)
from analysis.summary import pass_at_k_summary, seed_summary
from lens.algorithms import GROUP_TYPES
from lens.metrics import in_subset

NAME = "tab_leaderboard"
COLUMNS = ["rank", "model", "benchmark", "algo", "step", "n_seeds", "n_problems_hard",
           "pass1", "pass1_low", "pass1_high", "k", "passk", "passk_low", "passk_high",
           "hard", "hard_low", "hard_high", "diff_hard", "diff_low", "diff_high", "p_value",
           "all_wrong_frac", "delta_vs_grpo"]


def hard_matrices(samples: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, list[str], int, list[int]]]:
    """(model, algo) -> (seeds x problems accuracy matrix on Level 4-5, problem ids, step, seeds)."""
    problems = per_problem(final_step_samples(samples))
    problems = problems[in_subset(problems["level"]).to_numpy()]
    out = {}
    for (model, algo), group in problems.groupby(["model", "algo"], sort=True):
        matrix, seeds, pids = seed_problem_matrix(group.assign(accuracy=group["c"] / group["n"]), "accuracy")
        out[model, algo] = (matrix, pids, int(group["step"].iloc[0]), seeds)
    return out


def training_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per (model, algo): mean all-wrong share and mean |A - A_GRPO| over all samples, over steps and seeds."""
    wide = metrics.pivot_table(index=["model", "algo", "seed", "step"], columns="metric", values="value",
                               aggfunc="mean")
    delta = pd.Series(0.0, index=wide.index)
    for gtype in GROUP_TYPES:  # every group has G samples: a group-share-weighted mean is a sample mean
        frac, change = f"groups/{gtype}_frac", f"adv/delta_vs_grpo/{gtype}"
        delta = delta + (wide[frac] * wide[change] if frac in wide and change in wide else np.nan)
    per_step = pd.DataFrame({"all_wrong_frac": wide.get("groups/all_wrong_frac", np.nan), "delta_vs_grpo": delta})
    return per_step.groupby(level=["model", "algo"]).mean().reset_index()


def compute(samples: pd.DataFrame, metrics: pd.DataFrame, benchmark: str | None, baseline: str, k_max: int,
            n_boot: int, seed: int) -> pd.DataFrame:
    benchmark, rows = pick_benchmark(samples, benchmark)
    n_min = int(per_problem(final_step_samples(rows))["n"].min())
    k = 1 << int(np.log2(max(1, min(k_max, n_min))))  # largest power of two every run sampled
    passes = pass_at_k_summary(rows, benchmark, sorted({1, k}), n_boot, seed)
    passes = passes[passes["subset"] == "all"].set_index(["model", "algo", "k"])
    hard = hard_matrices(rows)
    train = training_summary(metrics).set_index(["model", "algo"]) if not metrics.empty else pd.DataFrame()
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
                           "diff_high": style.percent(res["ci_high"]), "p_value": res["p_value"]})
        if (model, algo) in train.index:
            record.update(train.loc[(model, algo)].to_dict())
        records.append(record)
    if not records:
        raise TidyError(f"no run has Level 4-5 problems ({style.HARD_SUBSET_LABEL}) on {benchmark!r}")
    data = pd.DataFrame(records).reindex(columns=COLUMNS)
    data = data.sort_values(["model", "hard", "algo"], ascending=[True, False, True], kind="stable")
    data["rank"] = data.groupby("model").cumcount() + 1
    return data.reset_index(drop=True)


def _interval(mean: float, low: float, high: float) -> str:
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def display_rows(data: pd.DataFrame, baseline: str) -> tuple[list[str], list[list[str]], list[int]]:
    k = int(data["k"].iloc[0])
    header = ["#", "Model", "Algorithm", "Pass@1", f"Pass@{k}", style.HARD_SUBSET_LABEL,
              f"Δ {style.HARD_SUBSET_LABEL} vs {style.algo_label(baseline)}", "p", "all-wrong groups",
              "mean abs(A − A_GRPO)"]
    rows, blocks = [], []
    for model, part in data.groupby("model", sort=True):
        blocks.append(len(rows))
        for i, r in enumerate(part.itertuples(index=False)):
            diff = "" if pd.isna(r.diff_hard) else (f"{style.fmt_signed(r.diff_hard)} "
                                                    f"[{style.fmt_signed(r.diff_low)}, "
                                                    f"{style.fmt_signed(r.diff_high)}]")
            rows.append([str(r.rank), style.model_label(model) if i == 0 else "", style.algo_label(r.algo),
                         _interval(r.pass1, r.pass1_low, r.pass1_high), _interval(r.passk, r.passk_low, r.passk_high),
                         _interval(r.hard, r.hard_low, r.hard_high), diff,
                         "" if pd.isna(r.p_value) else style.fmt_p(r.p_value),
                         "" if pd.isna(r.all_wrong_frac) else f"{100 * r.all_wrong_frac:.0f} %",
                         "" if pd.isna(r.delta_vs_grpo) else f"{r.delta_vs_grpo:.3f}"])
    return header, rows, blocks


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    metrics = read_train_metrics(args.tidy)
    data = compute(samples, metrics, args.benchmark, args.baseline, args.k_max, args.bootstrap_samples,
                   args.bootstrap_seed)
    header, rows, blocks = display_rows(data, args.baseline)
    trained = training_data.of_table(samples, data, args)
    caption = (f"Leaderboard on {style.benchmark_label(data['benchmark'].iloc[0])} at the final step, sorted by "
               f"{style.HARD_SUBSET_LABEL} accuracy: Pass@k and accuracy (%) as mean over seeds [95 % bootstrap "
               "interval over problems and seeds].")
    note = (f"{trained.sentence()} Δ: {style.HARD_SUBSET_LABEL} accuracy minus {style.algo_label(args.baseline)}'s "
            "in points, paired bootstrap over problems, and over seeds when both arms ran the same ones (two-sided p). "
            "All-wrong groups: share of training groups with no correct "
            "answer; mean abs(A − A_GRPO): mean change of the advantage against GRPO's on the same batch; both "
            "averaged over rollout steps and seeds.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "rll" + "r" * (len(header) - 3),
                             blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False)
    parser.add_argument("--baseline", default="grpo", help="algorithm the Level 4-5 difference is taken against")
    parser.add_argument("--k-max", type=int, default=16, help="Pass@k column: the largest power of two <= this")
    training_data.add_runs_option(parser)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
