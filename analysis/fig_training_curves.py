"""Figures 5-6 of the paper: evaluation accuracy against rollout step, full set and Level 4-5 subset.

    python -m analysis.fig_training_curves --tidy results/tidy --out results/figures \
        [--benchmark math500] [--bootstrap-samples 2000] [--formats png pdf] [--dpi 200]

One row of panels per model; left column the whole evaluation set, right column its Level 4-5
subset (dropped when the benchmark has no levels). Accuracy of a run at a step = mean over problems
of the fraction of its n samples that are correct; the line is the mean over seeds, the band a 95 %
bootstrap interval over problems and seeds (analysis.stats).
Writes fig_training_curves.{png,pdf} and fig_training_curves.csv (every plotted value, in %).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import stats, style
from analysis.collect import per_problem, pick_benchmark, read_eval_samples, seed_problem_matrix

NAME = "fig_training_curves"
COLUMNS = ["model", "benchmark", "subset", "algo", "step", "n_seeds", "n_problems", "mean", "ci_low", "ci_high"]
SUBSETS = {"all": None, "4-5": style.HARD_LEVELS}


def compute(samples: pd.DataFrame, benchmark: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    benchmark, rows = pick_benchmark(samples, benchmark)
    problems = per_problem(rows)
    problems["accuracy"] = problems["c"] / problems["n"]
    records = []
    for subset, levels in SUBSETS.items():
        part = problems if levels is None else problems[problems["level"].isin(levels).fillna(False).astype(bool)]
        for (model, algo, step), group in part.groupby(["model", "algo", "step"], sort=True):
            matrix, seeds, pids = seed_problem_matrix(group, "accuracy")
            low, high = stats.bootstrap_ci(matrix, n_boot=n_boot, seed=seed)
            records.append({"model": model, "benchmark": benchmark, "subset": subset, "algo": algo,
                            "step": int(step), "n_seeds": len(seeds), "n_problems": len(pids),
                            "mean": style.percent(matrix.mean(axis=1).mean()),
                            "ci_low": style.percent(low), "ci_high": style.percent(high)})
    return pd.DataFrame(records, columns=COLUMNS)


def plot(data: pd.DataFrame):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    models = sorted(data["model"].unique())
    subsets = [s for s in SUBSETS if s in set(data["subset"])]
    algos = style.sort_algos(data["algo"].unique())
    bench = style.benchmark_label(data["benchmark"].iloc[0])
    width_in = style.DOUBLE_COLUMN_IN if len(subsets) > 1 else style.SINGLE_COLUMN_IN
    fig, axes = plt.subplots(len(models), len(subsets), figsize=(width_in, 2.2 * len(models)),
                             squeeze=False, sharex="row")
    for r, model in enumerate(models):
        for c, subset in enumerate(subsets):
            ax = axes[r][c]
            for algo in algos:
                rows = data[(data["model"] == model) & (data["subset"] == subset) & (data["algo"] == algo)]
                if rows.empty:
                    continue
                color = style.algo_color(algo)
                ax.plot(rows["step"], rows["mean"], color=color, marker=style.algo_marker(algo), ms=3,
                        label=style.algo_label(algo))
                ax.fill_between(rows["step"], rows["ci_low"], rows["ci_high"], color=color, alpha=0.12, lw=0)
            what = bench if subset == "all" else f"{bench}, {style.HARD_SUBSET_LABEL}"
            ax.set_title(f"{style.model_label(model)}: {what}")
            ax.set_xlabel("training step (rollout batches)")
            ax.set_ylabel("accuracy (%)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    # One legend above all panels: inside a panel it hides the curves it names.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(algos), 4 if len(subsets) > 1 else 2),
               title="lines: mean over seeds; bands: 95% bootstrap interval", title_fontsize=7)
    return fig


def build(args) -> list:
    data = compute(read_eval_samples(args.tidy), args.benchmark, args.bootstrap_samples, args.bootstrap_seed)
    return style.write_figure(data, lambda: plot(data), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
