"""Every benchmark of the final step: Pass@1 and Pass@k per arm, one row of panels per model.

    python -m analysis.fig_benchmarks --tidy results/tidy --out results/figures \
        [--benchmarks math_test aime24_test ...] [--baseline grpo] [--bootstrap-samples 2000] [--formats png pdf]

The rows of analysis.tab_benchmarks (same computation, same CSV): left, Pass@1 of each arm on each
benchmark, mean over seeds with its 95 % bootstrap interval over problems and seeds; right, Pass@k at
the set's samples per problem. A benchmark's label carries its size (problems × samples) so a wide
interval on AIME reads as the 30 problems it is. Writes fig_benchmarks.{png,pdf} and fig_benchmarks.csv.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import style
from analysis.collect import read_eval_samples
from analysis.summary import benchmark_summary

NAME = "fig_benchmarks"


def plot(data: pd.DataFrame):
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique())
    fig, axes = plt.subplots(len(models), 2, figsize=(style.DOUBLE_COLUMN_IN, 0.8 + 3.0 * len(models)),
                             squeeze=False)
    for r, model in enumerate(models):
        part = data[data["model"] == model]
        benches = list(dict.fromkeys(part["benchmark"]))
        algos = style.sort_algos(part["algo"].unique())
        width = 0.8 / len(algos)
        for ax, metric in zip(axes[r], ("pass@1", "pass@k"), strict=True):
            for i, algo in enumerate(algos):
                rows = part[(part["algo"] == algo) & (part["metric"] == metric)].set_index("benchmark")
                shown = [b for b in benches if b in rows.index]
                x = np.array([benches.index(b) for b in shown]) + (i - (len(algos) - 1) / 2) * width
                sub = rows.loc[shown]
                ax.errorbar(x, sub["mean"], yerr=[sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]],
                            fmt=style.algo_marker(algo), color=style.algo_color(algo), ms=4, capsize=2, ls="none",
                            label=style.algo_label(algo))
            sizes = part[part["metric"] == "pass@1"].groupby("benchmark")[["n_problems", "n_samples"]].max()
            ax.set_xticks(range(len(benches)), [f"{style.benchmark_label(b)}\n{sizes.loc[b, 'n_problems']} × "
                                                f"{sizes.loc[b, 'n_samples']}" for b in benches], fontsize="small",
                          rotation=35, ha="right", rotation_mode="anchor")
            ax.set_xlim(-0.6, len(benches) - 0.4)
            ax.set_ylabel("Pass@1 (%)" if metric == "pass@1" else "Pass@k (%), k = samples per problem")
            ax.set_title(f"{style.model_label(model)}: {'Pass@1' if metric == 'pass@1' else 'Pass@k'}, "
                         f"step {part['step'].max()}")
        axes[r][0].legend(fontsize="small", frameon=False)
    return fig


def build(args) -> list:
    data = benchmark_summary(read_eval_samples(args.tidy), args.baseline, args.bootstrap_samples,
                             args.bootstrap_seed, benchmarks=args.benchmarks)
    return style.write_figure(data, lambda: plot(data), args.out, NAME, args.formats, args.dpi)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/figures", benchmark=False)
    parser.add_argument("--benchmarks", nargs="+", default=None,
                        help="benchmark ids, in order (default: every benchmark evaluated at the final step)")
    parser.add_argument("--baseline", default="grpo", help="arm the differences are taken against (the CSV)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
