"""Pass@k for k = 1..16 per model and algorithm at the final step, whole set and Level 4-5 subset.

    python -m analysis.fig_pass_at_k --tidy results/tidy --out results/figures \
        [--benchmark math500] [--k-max 16] [--bootstrap-samples 2000] [--formats png pdf] [--dpi 200]

Pass@k of a run = mean over problems of the unbiased estimator 1 - C(n-c, k)/C(n, k) (c of n
samples correct; analysis.stats.pass_at_k); the line is the mean over seeds, the band a 95 %
bootstrap interval over problems and seeds. Each (model, algo) is read at the last step all its
seeds evaluated. Writes fig_pass_at_k.{png,pdf} and fig_pass_at_k.csv (every plotted value, in %,
plus the standard deviation over seeds that the Pass@k tables print).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import stats, style
from analysis.collect import (TidyError, final_step_samples, per_problem, pick_benchmark,
                              read_eval_samples, seed_problem_matrix)

NAME = "fig_pass_at_k"
COLUMNS = ["model", "benchmark", "subset", "algo", "step", "k", "n_seeds", "n_problems", "n_samples",
           "mean", "std_seeds", "ci_low", "ci_high"]
SUBSETS = {"all": None, "4-5": style.HARD_LEVELS}


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
    for subset, levels in SUBSETS.items():
        part = problems if levels is None else problems[problems["level"].isin(levels).fillna(False).astype(bool)]
        for (model, algo), group in part.groupby(["model", "algo"], sort=True):
            n_min = int(group["n"].min())
            for k in ks:
                if k > n_min:
                    continue
                scored = group.assign(score=stats.pass_at_k(group["n"].to_numpy(), group["c"].to_numpy(), k))
                matrix, seeds, pids = seed_problem_matrix(scored, "score")
                per_seed = matrix.mean(axis=1)
                low, high = stats.bootstrap_ci(matrix, n_boot=n_boot, seed=seed)
                records.append({
                    "model": model, "benchmark": benchmark, "subset": subset, "algo": algo,
                    "step": int(group["step"].iloc[0]), "k": int(k), "n_seeds": len(seeds),
                    "n_problems": len(pids), "n_samples": n_min, "mean": style.percent(per_seed.mean()),
                    # sample std over seeds; undefined (NaN) with a single seed
                    "std_seeds": style.percent(per_seed.std(ddof=1)) if len(seeds) > 1 else np.nan,
                    "ci_low": style.percent(low), "ci_high": style.percent(high)})
    return pd.DataFrame(records, columns=COLUMNS)


def plot(data: pd.DataFrame):
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique())
    subsets = [s for s in SUBSETS if s in set(data["subset"])]
    algos = style.sort_algos(data["algo"].unique())
    bench = style.benchmark_label(data["benchmark"].iloc[0])
    width_in = style.DOUBLE_COLUMN_IN if len(subsets) > 1 else style.SINGLE_COLUMN_IN
    fig, axes = plt.subplots(len(models), len(subsets), figsize=(width_in, 2.2 * len(models)), squeeze=False)
    for r, model in enumerate(models):
        for c, subset in enumerate(subsets):
            ax = axes[r][c]
            for algo in algos:
                rows = data[(data["model"] == model) & (data["subset"] == subset) & (data["algo"] == algo)]
                if rows.empty:
                    continue
                color = style.algo_color(algo)
                # markers only at k = 1, 2, 4, 8, 16 (the tables' columns): 16 markers per line crowd the top
                marks = [i for i, k in enumerate(rows["k"]) if k & (k - 1) == 0]
                ax.plot(rows["k"], rows["mean"], color=color, marker=style.algo_marker(algo), ms=3,
                        markevery=marks, label=style.algo_label(algo))
                ax.fill_between(rows["k"], rows["ci_low"], rows["ci_high"], color=color, alpha=0.12, lw=0)
            ks = sorted(data["k"].unique())
            ax.set_xscale("log", base=2)
            ax.set_xticks([k for k in ks if k & (k - 1) == 0], [str(k) for k in ks if k & (k - 1) == 0])
            ax.minorticks_off()
            what = bench if subset == "all" else f"{bench}, {style.HARD_SUBSET_LABEL}"
            step = data[data["model"] == model]["step"].max()
            ax.set_title(f"{style.model_label(model)}: {what}, step {step}")
            ax.set_xlabel("k (samples per problem)")
            ax.set_ylabel("Pass@k (%)")
    # One legend above all panels: inside a panel it hides the curves it names.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(algos), 4 if len(subsets) > 1 else 2),
               title="lines: mean over seeds; bands: 95% bootstrap interval", title_fontsize=7)
    return fig


def build(args) -> list:
    ks = range(1, args.k_max + 1)
    data = pass_at_k_summary(read_eval_samples(args.tidy), args.benchmark, ks, args.bootstrap_samples,
                             args.bootstrap_seed)
    return style.write_figure(data, lambda: plot(data), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures")
    parser.add_argument("--k-max", type=int, default=16, help="plot k = 1..K (capped at the samples per problem)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
