"""Sensitivity table: every swept value of an algorithm parameter against the main GRPO runs.

    python -m analysis.tab_sensitivity --tidy results/tidy/sweeps --out results/tables/sweeps \
        [--benchmark math500] [--baseline grpo] [--arms lens/alpha-0.25 lens/alpha-1 ...] [--bootstrap-samples 2000]

One row per model for the baseline's main runs, then one per swept value (the sweep runs of the
`sweeps` target, arm `{algo}/{param}-{value}`), at the final step: accuracy on all problems and on
Levels 4-5, each the mean over seeds with its 95 % bootstrap interval over problems and seeds; the
paired difference to the baseline's main runs (same model, seeds and problems) in points with its
interval and p-value (analysis.stats.paired_bootstrap); Levels 4-5 against the sweep's smallest
value, paired the same way; and the mean |A - A_GRPO| over mixed and over all-wrong training groups
(analysis.summary.advantage_change). Rows and columns: analysis.summary.sensitivity_summary.
Writes tab_sensitivity.{md,tex,csv}; analysis.fig_sensitivity draws the same numbers.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import read_eval_samples, read_train_metrics
from analysis.summary import sensitivity_summary

NAME = "tab_sensitivity"


def _diff(mean: float, low: float, high: float, p: float, holm: float | None = None) -> str:
    if pd.isna(mean):
        return ""
    adjusted = "" if holm is None or pd.isna(holm) else f", Holm {style.fmt_p(holm)}"
    return (f"{style.fmt_signed(mean)} [{style.fmt_signed(low)}, {style.fmt_signed(high)}] "
            f"(p {style.fmt_p(p)}{adjusted})")


def _interval(mean: float, low: float, high: float) -> str:
    return "" if pd.isna(mean) else style.fmt_interval(mean, low, high)


def display_rows(data: pd.DataFrame, baseline: str) -> tuple[list[str], list[list[str]], list[int]]:
    b, hard = style.algo_label(baseline), style.HARD_SUBSET_LABEL
    header = ["Model", "Run", "Accuracy (all)", f"Accuracy ({hard})", f"Δ all vs {b}", f"Δ {hard} vs {b}",
              f"Δ {hard} vs smallest value", "mean abs(A − A_GRPO), mixed", "all-wrong"]
    rows, blocks = [], []
    for model, part in data.groupby("model", sort=True):
        blocks.append(len(rows))
        for i, r in enumerate(part.itertuples(index=False)):
            vs_first = "" if pd.isna(r.vs_first_hard) else \
                f"{_diff(r.vs_first_hard, r.vs_first_hard_low, r.vs_first_hard_high, r.p_value_vs_first)}"
            rows.append([style.model_label(model) if i == 0 else "", style.arm_label(r.arm),
                         _interval(r.acc, r.acc_low, r.acc_high), _interval(r.hard, r.hard_low, r.hard_high),
                         _diff(r.diff, r.diff_low, r.diff_high, r.p_value, r.p_holm),
                         _diff(r.diff_hard, r.diff_hard_low, r.diff_hard_high, r.p_value_hard, r.p_holm_hard),
                         vs_first,
                         "" if pd.isna(r.delta_mixed) else f"{r.delta_mixed:.3f}",
                         "" if pd.isna(r.delta_all_wrong) else f"{r.delta_all_wrong:.3f}"])
    return header, rows, blocks


def build(args) -> list:
    data = sensitivity_summary(read_eval_samples(args.tidy), read_train_metrics(args.tidy), args.benchmark,
                               args.baseline, args.arms, args.bootstrap_samples, args.bootstrap_seed)
    header, rows, blocks = display_rows(data, args.baseline)
    caption = (f"Sensitivity on {style.benchmark_label(data['benchmark'].iloc[0])} at the final step: one row per "
               f"swept value, next to {style.algo_label(args.baseline)}'s main runs; accuracy (%) as mean over seeds "
               "[95 % bootstrap interval over problems and seeds].")
    note = (f"Δ: accuracy minus {style.algo_label(args.baseline)}'s main runs (same model, seeds and problems) in "
            "points, paired bootstrap over problems, and over seeds when both ran the same ones [95 % interval] "
            "(two-sided p; Holm: adjusted across the sweep's values, one family per sweep and subset); vs smallest "
            f"value: {style.HARD_SUBSET_LABEL} minus the sweep's smallest value's, paired "
            "the same way. mean abs(A − A_GRPO): mean change of the advantage against GRPO's on the same batch over "
            "the mixed and the all-wrong training groups of every rollout step and seed.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "ll" + "r" * (len(header) - 2),
                             blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables/sweeps", figure=False)
    parser.add_argument("--baseline", default="grpo", help="algorithm whose main runs every value is compared with")
    parser.add_argument("--arms", nargs="+", default=None,
                        help="sweep arms {algo}/{param}-{value} to show (default: every one in the tidy tables)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
