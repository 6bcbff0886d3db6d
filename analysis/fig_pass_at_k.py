"""Pass@k for k = 1..16 per model and algorithm at the final step, whole set and Level 4-5 subset.

    python -m analysis.fig_pass_at_k --tidy results/tidy --out results/figures \
        [--benchmark math500] [--k-max 16] [--bootstrap-samples 2000] [--formats png pdf] [--dpi 200]

Pass@k of a run = mean over problems of the unbiased estimator 1 - C(n-c, k)/C(n, k) (c of n
samples correct; lens.metrics.pass_at_k; the table is analysis.summary.pass_at_k_summary); the
line is the mean over seeds, the band a 95 % bootstrap interval over problems and seeds. Each
(model, algo) is read at the last step all its seeds evaluated. Writes fig_pass_at_k.{png,pdf} and
fig_pass_at_k.csv (every plotted value, in %, plus the standard deviation over seeds that the
Pass@k tables print).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import read_eval_samples
from analysis.summary import HEADLINE_SUBSETS, pass_at_k_summary

NAME = "fig_pass_at_k"


def _powers_of_two(rows) -> list[int]:
    """Marker positions at k = 1, 2, 4, 8, 16 (the tables' columns): 16 markers per line crowd the top."""
    return [i for i, k in enumerate(rows["k"]) if k & (k - 1) == 0]


def plot(data: pd.DataFrame):
    bench = style.benchmark_label(data["benchmark"].iloc[0])
    ks = [k for k in sorted(data["k"].unique()) if k & (k - 1) == 0]
    fig, panels = style.band_panels(data, "k", HEADLINE_SUBSETS, markevery=_powers_of_two)
    for ax, model, subset in panels:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        what = bench if subset == "all" else f"{bench}, {style.HARD_SUBSET_LABEL}"
        step = data[data["model"] == model]["step"].max()
        ax.set_title(f"{style.model_label(model)}: {what}, step {step}")
        ax.set_xlabel("k (samples per problem)")
        ax.set_ylabel("Pass@k (%)")
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
