"""Leaderboard figure: Level 4-5 accuracy of every arm trained, and its difference to GRPO, best first.

    python -m analysis.fig_leaderboard --tidy results/tidy/ablations --out results/figures/ablations \
        [--benchmark math500] [--baseline grpo] [--bootstrap-samples 2000] [--formats png pdf] [--dpi 200]

The rows of analysis.tab_leaderboard (same computation, same CSV columns): left, Level 4-5
accuracy at the final step, mean over seeds with its 95 % bootstrap interval over problems and
seeds; right, the paired difference to the baseline in points with its 95 % interval (the
baseline's own row is empty), next to the share of all-wrong training groups. One row of panels
per model. Writes fig_leaderboard.{png,pdf} and fig_leaderboard.csv.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import read_eval_samples, read_train_metrics
from analysis.summary import leaderboard

NAME = "fig_leaderboard"


def plot(data: pd.DataFrame, baseline: str):
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique())
    n_rows = max(len(part) for _, part in data.groupby("model"))
    height = 0.9 + (0.35 + 0.25 * n_rows) * len(models)
    fig, axes = plt.subplots(len(models), 2, figsize=(style.DOUBLE_COLUMN_IN, height),
                             squeeze=False, sharey="row")
    for r, model in enumerate(models):
        part = data[data["model"] == model].iloc[::-1]  # best at the top
        y = range(len(part))
        acc_ax, diff_ax = axes[r]
        for yi, row in zip(y, part.itertuples(index=False), strict=True):
            color, marker = style.algo_color(row.algo), style.algo_marker(row.algo)
            acc_ax.errorbar(row.hard, yi, xerr=[[row.hard - row.hard_low], [row.hard_high - row.hard]], fmt=marker,
                            color=color, ms=4, capsize=2)
            if not pd.isna(row.diff_hard):
                diff_ax.errorbar(row.diff_hard, yi,
                                 xerr=[[row.diff_hard - row.diff_low], [row.diff_high - row.diff_hard]],
                                 fmt=marker, color=color, ms=4, capsize=2)
        labels = [style.algo_label(a) + ("" if pd.isna(w) else f" ({100 * w:.0f} % all-wrong)")
                  for a, w in zip(part["algo"], part["all_wrong_frac"], strict=True)]
        acc_ax.set_yticks(list(y), labels)
        diff_ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        bench = style.benchmark_label(part["benchmark"].iloc[0])
        # Two short lines per panel: one long line each ran into the neighbouring panel's title.
        acc_ax.set_title(f"{style.model_label(model)}\n{bench}, {style.HARD_SUBSET_LABEL}, step {part['step'].max()}")
        acc_ax.set_xlabel(f"{style.HARD_SUBSET_LABEL} accuracy (%)")
        diff_ax.set_title(f"difference to {style.algo_label(baseline)}\n(paired, 95 % interval)")
        diff_ax.set_xlabel("points")
    return fig


def build(args) -> list:
    data = leaderboard(read_eval_samples(args.tidy), read_train_metrics(args.tidy), args.benchmark,
                       args.baseline, args.k_max, args.bootstrap_samples, args.bootstrap_seed, args.curve_benchmark)
    return style.write_figure(data, lambda: plot(data, args.baseline), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures")
    parser.add_argument("--baseline", default="grpo", help="algorithm the difference is taken against")
    parser.add_argument("--k-max", type=int, default=16, help="as analysis.tab_leaderboard (the CSV's Pass@k)")
    parser.add_argument("--curve-benchmark", default=None, help="as analysis.tab_leaderboard (the CSV's equal-token "
                        "difference)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
