"""Figure 2 of the paper: share of all-wrong ("negative") groups against training step.

    python -m analysis.fig_negative_group_ratio --tidy results/tidy --out results/figures \
        [--algos grpo lens] [--smoothing-window 5] [--formats png pdf] [--dpi 200]

Reads the training metric `groups/all_wrong_frac` (share of the step's prompts whose G samples
are all wrong). Points: mean over seeds at each rollout step; line: its centred moving average
(analysis.stats.moving_average). These groups give GRPO no gradient; LENS learns from them.
Writes fig_negative_group_ratio.{png,pdf} and fig_negative_group_ratio.csv (in %).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import stats, style
from analysis.collect import TidyError, read_train_metrics

NAME = "fig_negative_group_ratio"
METRIC = "groups/all_wrong_frac"
COLUMNS = ["model", "algo", "step", "n_seeds", "mean", "smoothed"]


def compute(metrics: pd.DataFrame, algos, window: int) -> pd.DataFrame:
    rows = metrics[metrics["metric"] == METRIC]
    if rows.empty:
        raise TidyError(f"no training metric {METRIC!r} in the tidy table")
    if algos:
        rows = rows[rows["algo"].isin(algos)]
        if rows.empty:
            raise TidyError(f"no {METRIC!r} rows for algorithms {list(algos)}")
    records = []
    for (model, algo), group in rows.groupby(["model", "algo"], sort=True):
        by_step = group.groupby("step", sort=True)["value"].agg(["mean", "size"])
        smoothed = stats.moving_average(by_step["mean"].to_numpy(), window)
        for (step, row), smooth in zip(by_step.iterrows(), smoothed, strict=True):
            records.append({"model": model, "algo": algo, "step": int(step), "n_seeds": int(row["size"]),
                            "mean": style.percent(row["mean"]), "smoothed": style.percent(smooth)})
    return pd.DataFrame(records, columns=COLUMNS)


def plot(data: pd.DataFrame, window: int):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    models = sorted(data["model"].unique())
    algos = style.sort_algos(data["algo"].unique())
    width_in = style.SINGLE_COLUMN_IN if len(models) == 1 else style.DOUBLE_COLUMN_IN
    fig, axes = plt.subplots(1, len(models), figsize=(width_in, 2.3), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models, strict=True):
        for algo in algos:
            rows = data[(data["model"] == model) & (data["algo"] == algo)]
            if rows.empty:
                continue
            color = style.algo_color(algo)
            ax.scatter(rows["step"], rows["mean"], s=6, color=color, alpha=0.45, lw=0)
            ax.plot(rows["step"], rows["smoothed"], color=color, label=style.algo_label(algo))
        ax.set_title(style.model_label(model))
        ax.set_xlabel("training step (rollout batches)")
        ax.set_ylim(0, 100)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    axes[0][0].set_ylabel("all-wrong groups (%)")
    # Above the panels: at single-column width an inside legend covers the early steps.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(algos), 4),
               title=f"dots: each step (mean over seeds); lines: {window}-step moving average", title_fontsize=7)
    return fig


def build(args) -> list:
    if args.smoothing_window < 1:
        raise TidyError("--smoothing-window must be >= 1")
    data = compute(read_train_metrics(args.tidy), args.algos, args.smoothing_window)
    return style.write_figure(data, lambda: plot(data, args.smoothing_window), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures", bootstrap=False, smoothing=True, benchmark=False)
    parser.add_argument("--algos", nargs="+", default=["grpo", "lens"],
                        help="algorithms to draw (default: grpo lens, as in the paper's Figure 2)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
