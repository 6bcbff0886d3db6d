"""Sensitivity figure: accuracy, difference to GRPO and change of the advantages against each swept value.

    python -m analysis.fig_sensitivity --tidy results/tidy/sweeps --out results/figures/sweeps \
        [--benchmark math500] [--baseline grpo] [--arms lens/alpha-0.25 ...] [--bootstrap-samples 2000] \
        [--formats png pdf] [--dpi 200]

The rows of analysis.tab_sensitivity (analysis.summary.sensitivity_summary: same computation, same
CSV columns), one row of three panels per model and swept parameter: left, accuracy at the final
step on all problems and on Levels 4-5 against the value (mean over seeds, 95 % bootstrap
interval), the baseline's main runs as dashed lines with their bands; middle, the paired
difference to the baseline in points with its 95 % interval; right, mean |A - A_GRPO| over the
mixed and the all-wrong training groups. A numeric parameter whose values span a factor of 4 or
more gets a log axis. Writes fig_sensitivity.{png,pdf} and fig_sensitivity.csv.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import style
from analysis.collect import read_eval_samples, read_train_metrics
from analysis.summary import sensitivity_summary

NAME = "fig_sensitivity"
# (column prefix, label, colour, marker) of the two subsets; Okabe-Ito blue and vermillion.
SUBSETS = (("acc", "all problems", "#0072B2", "o"), ("hard", style.HARD_SUBSET_LABEL, "#D55E00", "s"))
DIFFS = (("diff", "all problems", "#0072B2", "o"), ("diff_hard", style.HARD_SUBSET_LABEL, "#D55E00", "s"))
GROUPS = (("delta_mixed", "mixed groups", "#009E73", "D"), ("delta_all_wrong", "all-wrong groups", "#CC79A7", "v"))


def x_positions(values: pd.Series) -> tuple[np.ndarray, bool]:
    """Numeric values where they all are numbers (log axis when they span >= 4x), else 0, 1, 2, ..."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().all():
        x = numbers.to_numpy(dtype=float)
        return x, bool((x > 0).all() and x.max() >= 4 * x.min())
    return np.arange(len(values), dtype=float), False


def _errorbars(ax, x, part, prefix, label, color, marker) -> None:
    mean = part[prefix].to_numpy(dtype=float)
    err = [mean - part[f"{prefix}_low"].to_numpy(dtype=float), part[f"{prefix}_high"].to_numpy(dtype=float) - mean]
    ax.errorbar(x, mean, yerr=err, fmt=f"-{marker}", color=color, ms=4, capsize=2, label=label)


def plot(data: pd.DataFrame, baseline: str):
    import matplotlib.pyplot as plt

    swept = data[data["param"].notna()]
    sweeps = list(swept.groupby(["model", "algo", "param"], sort=True).groups)
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(style.DOUBLE_COLUMN_IN, 2.3 * len(sweeps)), squeeze=False)
    for r, (model, algo, param) in enumerate(sweeps):
        part = swept[(swept["model"] == model) & (swept["algo"] == algo) & (swept["param"] == param)]
        base = data[(data["model"] == model) & (data["arm"] == baseline)]
        x, log = x_positions(part["value"])
        acc_ax, diff_ax, adv_ax = axes[r]
        for prefix, label, color, marker in SUBSETS:
            _errorbars(acc_ax, x, part, prefix, label, color, marker)
            if not base.empty and not pd.isna(base[prefix].iloc[0]):
                b = base.iloc[0]
                acc_ax.axhline(b[prefix], color=color, lw=0.8, ls="--")
                acc_ax.axhspan(b[f"{prefix}_low"], b[f"{prefix}_high"], color=color, alpha=0.08, lw=0)
        for prefix, label, color, marker in DIFFS:
            if part[prefix].notna().any():
                _errorbars(diff_ax, x, part, prefix, label, color, marker)
        diff_ax.axhline(0.0, color="0.4", lw=0.8, ls="--")
        for column, label, color, marker in GROUPS:
            if part[column].notna().any():
                adv_ax.plot(x, part[column], f"-{marker}", color=color, ms=4, label=label)
        for ax in (acc_ax, diff_ax, adv_ax):
            ax.set_xlabel(param)
            if log:
                ax.set_xscale("log", base=2)
            ax.set_xticks(x, [str(v) for v in part["value"]])
            ax.minorticks_off()
        acc_ax.set_title(f"{style.model_label(model)}, {style.algo_label(algo)}")
        acc_ax.set_ylabel(f"accuracy (%; dashed: {style.algo_label(baseline)})")
        diff_ax.set_title(f"paired difference to {style.algo_label(baseline)}")
        diff_ax.set_ylabel("points (95 % interval)")
        adv_ax.set_title("training: mean |A − A_GRPO|")
        if r == 0:
            acc_ax.legend(loc="best")
            adv_ax.legend(loc="best")
    return fig


def build(args) -> list:
    data = sensitivity_summary(read_eval_samples(args.tidy), read_train_metrics(args.tidy), args.benchmark,
                               args.baseline, args.arms, args.bootstrap_samples, args.bootstrap_seed)
    return style.write_figure(data, lambda: plot(data, args.baseline), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures/sweeps")
    parser.add_argument("--baseline", default="grpo", help="algorithm whose main runs every value is compared with")
    parser.add_argument("--arms", nargs="+", default=None,
                        help="sweep arms {algo}/{param}-{value} to draw (default: every one in the tidy tables)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
