"""The paper's Figure 1 (right) from real rollouts: wrong answers of all-wrong groups, confidence against penalty.

    python -m analysis.fig_confident_mistakes --tidy results/tidy --out results/figures [--algos lens]
        [--formats png pdf] [--dpi 200]

Reads results/tidy/negative_samples.parquet (analysis.collect: every wrong answer of a sampled
all-wrong group that has a confidence, from the runs' rollout records). Left: LENS's calibrated
reward r^ against the answer's confidence p (the more confident the mistake, the lower its reward);
right: the advantage the run's loss used (GRPO's is 0 in every all-wrong group). One point per
answer, all recorded steps and seeds. Writes fig_confident_mistakes.{png,pdf} and
fig_confident_mistakes.csv (the plotted points); with no such answer recorded, the panels say so.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import TidyError, read_negative_samples

NAME = "fig_confident_mistakes"
COLUMNS = ["model", "algo", "seed", "step", "problem_id", "sample_idx", "confidence", "lens_reward", "advantage"]
PANELS = (("lens_reward", "LENS reward r\u0302"), ("advantage", "advantage used by the loss"))


def compute(negatives: pd.DataFrame, algos) -> pd.DataFrame:
    rows = negatives if not algos else negatives[negatives["algo"].isin(algos)]
    return rows[COLUMNS].sort_values(COLUMNS[:6], kind="mergesort").reset_index(drop=True)


def plot(data: pd.DataFrame):
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique()) or [None]
    fig, axes = plt.subplots(len(models), 2, figsize=(style.DOUBLE_COLUMN_IN, 2.3 * len(models)), squeeze=False)
    for row, model in zip(axes, models, strict=True):
        for ax, (column, label) in zip(row, PANELS, strict=True):
            rows = data[data["model"] == model]
            for algo in style.sort_algos(rows["algo"].unique()):
                points = rows[rows["algo"] == algo]
                ax.scatter(points["confidence"], points[column], s=8, alpha=0.5, lw=0,
                           color=style.algo_color(algo), label=f"{style.algo_label(algo)} ({len(points)})")
            if rows.empty:
                ax.text(0.5, 0.5, "no all-wrong group with confidences\nin the rollout records",
                        ha="center", va="center", transform=ax.transAxes)
            else:
                ax.legend(loc="lower left", markerscale=2)
            ax.axhline(0, color="0.6", lw=0.6)
            ax.set_xlabel("confidence p of the wrong answer")
            ax.set_ylabel(label)
            if model is not None:
                ax.set_title(style.model_label(model))
    return fig


def build(args) -> list:
    negatives = read_negative_samples(args.tidy)
    data = compute(negatives, args.algos)
    if args.algos and data.empty and not negatives.empty:
        raise TidyError(f"no recorded wrong answers of all-wrong groups for algorithms {list(args.algos)}")
    return style.write_figure(data, lambda: plot(data), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures", bootstrap=False, benchmark=False)
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms to draw (default: every one recorded)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
