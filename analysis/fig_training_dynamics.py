"""Training dynamics per arm: entropy, completion length, clip ratios, gradient norm and group shares
against the rollout step.

    python -m analysis.fig_training_dynamics --tidy results/tidy --out results/figures \
        [--smoothing-window 5] [--formats png pdf] [--dpi 200]

From the metrics every run already logs (TRL's and lens.trainer's, the tidy train_metrics): the
policy's token entropy, the mean completion length, the share of tokens whose PPO ratio was clipped
(clip_ratio/region_mean), the gradient norm, and the shares of all-wrong and all-correct groups.
Line: the mean over seeds at each step, smoothed by a centred moving average (--smoothing-window);
band: the smallest and largest seed at each step. One row of six panels per model. Writes
fig_training_dynamics.{png,pdf} and fig_training_dynamics.csv (every plotted value).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import stats, style
from analysis.collect import TidyError, read_train_metrics

NAME = "fig_training_dynamics"
# metric -> panel title; the order of the panels
PANELS = {"entropy": "token entropy", "completions/mean_length": "completion length (tokens)",
          "clip_ratio/region_mean": "clipped tokens (share)", "grad_norm": "gradient norm",
          "groups/all_wrong_frac": "all-wrong groups (share)", "groups/all_correct_frac": "all-correct groups (share)"}
COLUMNS = ["model", "algo", "metric", "step", "n_seeds", "mean", "low", "high", "smoothed"]


def compute(metrics: pd.DataFrame, window: int) -> pd.DataFrame:
    rows = metrics[metrics["metric"].isin(PANELS)]
    if rows.empty:
        raise TidyError(f"none of the training metrics {list(PANELS)} in the tidy table")
    records = []
    for (model, algo, metric), group in rows.groupby(["model", "algo", "metric"], sort=True):
        by_step = group.groupby("step", sort=True)["value"].agg(["mean", "min", "max", "size"])
        smoothed = stats.moving_average(by_step["mean"].to_numpy(), window)
        records += [{"model": model, "algo": algo, "metric": metric, "step": int(step), "n_seeds": int(r["size"]),
                     "mean": r["mean"], "low": r["min"], "high": r["max"], "smoothed": smooth}
                    for (step, r), smooth in zip(by_step.iterrows(), smoothed, strict=True)]
    return pd.DataFrame(records, columns=COLUMNS)


def plot(data: pd.DataFrame, window: int):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    models = sorted(data["model"].unique())
    metrics = [m for m in PANELS if m in set(data["metric"])]
    algos = style.sort_algos(data["algo"].unique())
    fig, axes = plt.subplots(len(models), len(metrics), figsize=(style.DOUBLE_COLUMN_IN * 1.4, 2.0 * len(models)),
                             squeeze=False, sharex=True)
    for r, model in enumerate(models):
        for c, metric in enumerate(metrics):
            ax = axes[r][c]
            for algo in algos:
                rows = data[(data["model"] == model) & (data["algo"] == algo) & (data["metric"] == metric)]
                if rows.empty:
                    continue
                color = style.algo_color(algo)
                ax.plot(rows["step"], rows["smoothed"], color=color, lw=1, label=style.algo_label(algo))
                ax.fill_between(rows["step"], rows["low"], rows["high"], color=color, alpha=0.12, lw=0)
            ax.set_title(PANELS[metric] if r == 0 else "", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.ticklabel_format(axis="y", useOffset=False)  # an offset label would sit on the panel's title
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
            if r == len(models) - 1:
                ax.set_xlabel("rollout step", fontsize=7)
        axes[r][0].set_ylabel(style.model_label(model), fontsize=7)
    handles = {}
    for ax in axes.flat:  # every arm once, from whichever panel drew it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncols=min(len(handles), 6),
               title=f"lines: mean over seeds, {window}-step moving average; bands: smallest to largest seed",
               title_fontsize=7, fontsize=7)
    return fig


def build(args) -> list:
    if args.smoothing_window < 1:
        raise TidyError("--smoothing-window must be >= 1")
    data = compute(read_train_metrics(args.tidy), args.smoothing_window)
    return style.write_figure(data, lambda: plot(data, args.smoothing_window), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures", bootstrap=False, smoothing=True, benchmark=False)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
