"""Headline figure: accuracy at difficulty Levels 1-5 per algorithm at the final step, one panel per model.

    python -m analysis.fig_accuracy_by_level --tidy results/tidy --out results/figures \
        [--benchmark math500] [--bootstrap-samples 2000] [--formats png pdf] [--dpi 200]

Accuracy of a run at a level = mean over that level's problems of the fraction of correct samples;
the bar is the mean over seeds, the error bar a 95 % bootstrap interval over problems and seeds
(analysis.stats). Each (model, algo) is read at the last step all its seeds evaluated.
Writes fig_accuracy_by_level.{png,pdf} and fig_accuracy_by_level.csv (every plotted value, in %).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import style
from analysis.collect import TidyError, final_step_samples, per_problem, pick_benchmark, seed_problem_matrix
from analysis.summary import seed_summary

NAME = "fig_accuracy_by_level"
COLUMNS = ["model", "benchmark", "step", "level", "algo", "n_seeds", "n_problems", "mean", "ci_low", "ci_high"]


def compute(samples: pd.DataFrame, benchmark: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    """One row per (model, level, algo): mean accuracy over seeds and its 95 % interval, in %."""
    benchmark, rows = pick_benchmark(samples, benchmark)
    rows = rows[rows["level"].notna()]
    if rows.empty:
        raise TidyError(f"benchmark {benchmark!r} has no difficulty levels to plot")
    problems = per_problem(final_step_samples(rows))
    problems["accuracy"] = problems["c"] / problems["n"]
    records = []
    for (model, algo), group in problems.groupby(["model", "algo"], sort=True):
        for level in sorted(int(v) for v in group["level"].unique()):
            matrix, _, _ = seed_problem_matrix(group[group["level"] == level], "accuracy")
            records.append({"model": model, "benchmark": benchmark, "step": int(group["step"].iloc[0]),
                            "level": level, "algo": algo, **seed_summary(matrix, n_boot, seed)})
    data = pd.DataFrame(records, columns=COLUMNS)
    order = {a: i for i, a in enumerate(style.sort_algos(data["algo"].unique()))}
    return data.sort_values(["model", "level", "algo"], key=lambda c: c.map(order) if c.name == "algo" else c,
                            kind="mergesort").reset_index(drop=True)


def plot(data: pd.DataFrame):
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique())
    algos = style.sort_algos(data["algo"].unique())
    width_in = style.SINGLE_COLUMN_IN if len(models) == 1 else style.DOUBLE_COLUMN_IN
    fig, axes = plt.subplots(1, len(models), figsize=(width_in, 2.6), sharey=True, squeeze=False)
    bar_w = 0.8 / len(algos)
    for ax, model in zip(axes[0], models, strict=True):
        sub = data[data["model"] == model]
        levels = sorted(sub["level"].unique())
        for i, algo in enumerate(algos):
            rows = sub[sub["algo"] == algo].set_index("level").reindex(levels)
            x = np.arange(len(levels)) + (i - (len(algos) - 1) / 2) * bar_w
            err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
            ax.bar(x, rows["mean"], bar_w, yerr=err, color=style.algo_color(algo), label=style.algo_label(algo),
                   error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "black"})
        ax.set_xticks(np.arange(len(levels)), [str(lv) for lv in levels])
        ax.set_xlabel("difficulty level")
        step = sub["step"].max()
        ax.set_title(f"{style.model_label(model)}, step {step}")
        ax.set_ylim(0, 100)
        ax.grid(axis="x", visible=False)
    axes[0][0].set_ylabel(f"accuracy on {style.benchmark_label(data['benchmark'].iloc[0])} (%)")
    # Above the panels: inside, the legend would cover the bars of the easy levels.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(algos), 4 if len(models) > 1 else 2))
    return fig


def main(argv: list[str] | None = None) -> int:
    return style.figure_main(NAME, __doc__, compute, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
