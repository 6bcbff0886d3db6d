"""Every benchmark of the final step: Pass@1 and Pass@k per model and arm, the difference to GRPO with
Holm-adjusted p-values across the benchmarks, and the minimum detectable difference of each.

    python -m analysis.tab_benchmarks --tidy results/tidy --out results/tables \
        [--benchmarks math_test aime24_test ...] [--baseline grpo] [--bootstrap-samples 2000]

Rows model x benchmark x arm (analysis.summary.benchmark_summary): Pass@1 and Pass@k (k = the set's
samples per problem: 32 for AIME and AMC in config/paper.yaml, 16 for the others), mean over seeds
[95 % bootstrap interval over problems and seeds]; for each arm but the baseline, its Pass@1 minus
the baseline's in points [95 % paired-bootstrap interval], the p-value adjusted with Holm's method
across the benchmarks of that model and arm (one family: "better on one of five sets"), and the
minimum detectable difference (MDD: 80 % power, two-sided 5 %) of the runs' design on that set.
A difference smaller than its MDD is what the set cannot resolve: 30 AIME problems cannot tell arms a
few points apart. Writes tab_benchmarks.{md,tex,csv}; the CSV has one row per (model, benchmark, arm,
metric).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style, training_data
from analysis.collect import read_eval_samples
from analysis.summary import benchmark_summary

NAME = "tab_benchmarks"


def display_rows(data: pd.DataFrame, baseline: str):
    header = ["Model", "Benchmark", "Problems × samples", "Arm", "Pass@1", "Pass@k",
              f"Pass@1 − {style.algo_label(baseline)}", "p (Holm)", "MDD"]
    rows, blocks = [], []
    for model in sorted(data["model"].unique()):
        blocks.append(len(rows))
        by_model = data[data["model"] == model]
        for bench in dict.fromkeys(by_model["benchmark"]):
            part = by_model[by_model["benchmark"] == bench]
            first = True
            for algo in style.sort_algos(part["algo"].unique()):
                one = part[(part["algo"] == algo) & (part["metric"] == "pass@1")].iloc[0]
                k = part[(part["algo"] == algo) & (part["metric"] == "pass@k")].iloc[0]
                diff = "" if pd.isna(one["diff"]) else (
                    f"{style.fmt_signed(one['diff'])} [{style.fmt_signed(one['diff_low'])}, "
                    f"{style.fmt_signed(one['diff_high'])}]")
                rows.append([style.model_label(model) if len(rows) == blocks[-1] else "",
                             style.benchmark_label(bench) if first else "",
                             f"{int(one['n_problems'])} × {int(one['n_samples'])}" if first else "",
                             style.algo_label(algo),
                             style.fmt_interval(one["mean"], one["ci_low"], one["ci_high"]),
                             f"@{int(k['k'])}: " + style.fmt_interval(k["mean"], k["ci_low"], k["ci_high"]),
                             diff, style.fmt_p(one["p_holm"]),
                             "" if pd.isna(one["mdd"]) else f"{one['mdd']:.1f}"])
                first = False
    return header, rows, blocks


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    data = benchmark_summary(samples, args.baseline, args.bootstrap_samples, args.bootstrap_seed,
                             benchmarks=args.benchmarks)
    trained = training_data.of_table(samples, data, args)
    header, rows, blocks = display_rows(data, args.baseline)
    steps = sorted(data["step"].unique())
    caption = ("Pass@1 and Pass@k (%) on every benchmark of the final step: mean over seeds [95 % bootstrap "
               "interval over problems and seeds].")
    note = (f"{trained.sentence()} Differences in points with a paired bootstrap over problems; p-values "
            "Holm-adjusted across the benchmarks of each model and arm. MDD: the smallest Pass@1 difference these "
            "runs detect on that set with 80 % power (two-sided 5 %); a difference below it is unresolved, "
            "not absent (blank where the scores do not vary: every answer wrong, or every one right). "
            f"Evaluated at step {', '.join(str(s) for s in steps)}.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "lllllllrr", blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False, benchmark=False)
    parser.add_argument("--benchmarks", nargs="+", default=None,
                        help="benchmark ids, in order (default: every benchmark evaluated at the final step)")
    parser.add_argument("--baseline", default="grpo", help="arm the differences are taken against")
    training_data.add_runs_option(parser)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
