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

from analysis import style
from analysis.summary import CURVE_COLUMNS, HEADLINE_SUBSETS, accuracy_curves

NAME = "fig_training_curves"
COLUMNS = CURVE_COLUMNS


def compute(samples: pd.DataFrame, benchmark: str | None, n_boot: int, seed: int) -> pd.DataFrame:
    return accuracy_curves(samples, benchmark, n_boot, seed)[COLUMNS]


def plot(data: pd.DataFrame):
    from matplotlib.ticker import MaxNLocator

    bench = style.benchmark_label(data["benchmark"].iloc[0])
    fig, panels = style.band_panels(data, "step", HEADLINE_SUBSETS, sharex="row")
    for ax, model, subset in panels:
        what = bench if subset == "all" else f"{bench}, {style.HARD_SUBSET_LABEL}"
        ax.set_title(f"{style.model_label(model)}: {what}")
        ax.set_xlabel("training step (rollout batches)")
        ax.set_ylabel("accuracy (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    return fig


def main(argv: list[str] | None = None) -> int:
    return style.figure_main(NAME, __doc__, compute, plot, argv)


if __name__ == "__main__":
    sys.exit(main())
