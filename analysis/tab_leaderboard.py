"""Leaderboard of every arm trained: how each answer to all-wrong groups ends up, sorted by Level 4-5 accuracy.

    python -m analysis.tab_leaderboard --tidy results/tidy/ablations --out results/tables/ablations \
        [--benchmark math500] [--curve-benchmark math500] [--baseline grpo] [--k-max 16] [--bootstrap-samples 2000]

One row per (model, algorithm) at the final step: Pass@1 and Pass@k (k the largest power of two up
to --k-max that every run sampled), each with a 95 % bootstrap interval over problems and seeds;
Level 4-5 accuracy with its interval; Level 4-5 accuracy minus the baseline's (GRPO) in points with
a paired bootstrap interval and p-value over the problems both answered, paired by seed too when
both arms ran the same seeds (analysis.stats.paired_bootstrap), and that p-value adjusted for the
table's comparisons, all models together (Holm, analysis.stats.holm); the same Level 4-5 difference
at equal generated tokens on the set evaluated at every checkpoint (--curve-benchmark;
analysis.summary.equal_token_difference); from the training metrics, the
share of all-wrong groups (groups/all_wrong_frac) and the mean |A - A_GRPO| over all samples
(adv/delta_vs_grpo/{type} weighted by groups/{type}_frac), each averaged over rollout steps and
seeds. Rows are sorted by Level 4-5 accuracy, best first. Writes tab_leaderboard.{md,tex,csv};
analysis.fig_leaderboard draws the same CSV.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style, training_data
from analysis.collect import (
    read_eval_samples,
    read_train_metrics,
)
from analysis.summary import LEADERBOARD_COLUMNS, leaderboard

NAME = "tab_leaderboard"
COLUMNS = LEADERBOARD_COLUMNS
def _interval(mean: float, low: float, high: float) -> str:
    return f"{mean:.1f} [{low:.1f}, {high:.1f}]"


def display_rows(data: pd.DataFrame, baseline: str) -> tuple[list[str], list[list[str]], list[int]]:
    k = int(data["k"].iloc[0])
    header = ["#", "Model", "Algorithm", "Pass@1", f"Pass@{k}", style.HARD_SUBSET_LABEL,
              f"Δ {style.HARD_SUBSET_LABEL} vs {style.algo_label(baseline)}", "p", "p (Holm)",
              "Δ at equal generated tokens", "all-wrong groups", "mean abs(A − A_GRPO)"]
    rows, blocks = [], []
    for model, part in data.groupby("model", sort=True):
        blocks.append(len(rows))
        for i, r in enumerate(part.itertuples(index=False)):
            diff = "" if pd.isna(r.diff_hard) else (f"{style.fmt_signed(r.diff_hard)} "
                                                    f"[{style.fmt_signed(r.diff_low)}, "
                                                    f"{style.fmt_signed(r.diff_high)}]")
            rows.append([str(r.rank), style.model_label(model) if i == 0 else "", style.algo_label(r.algo),
                         _interval(r.pass1, r.pass1_low, r.pass1_high), _interval(r.passk, r.passk_low, r.passk_high),
                         _interval(r.hard, r.hard_low, r.hard_high), diff,
                         "" if pd.isna(r.p_value) else style.fmt_p(r.p_value),
                         "" if pd.isna(r.p_holm) else style.fmt_p(r.p_holm),
                         "" if pd.isna(r.diff_hard_equal_tokens) else (
                             f"{style.fmt_signed(r.diff_hard_equal_tokens)} "
                             f"[{style.fmt_signed(r.diff_hard_equal_tokens_low)}, "
                             f"{style.fmt_signed(r.diff_hard_equal_tokens_high)}]"),
                         "" if pd.isna(r.all_wrong_frac) else f"{100 * r.all_wrong_frac:.0f} %",
                         "" if pd.isna(r.delta_vs_grpo) else f"{r.delta_vs_grpo:.3f}"])
    return header, rows, blocks


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    metrics = read_train_metrics(args.tidy)
    data = leaderboard(samples, metrics, args.benchmark, args.baseline, args.k_max, args.bootstrap_samples,
                       args.bootstrap_seed, args.curve_benchmark)
    header, rows, blocks = display_rows(data, args.baseline)
    trained = training_data.of_table(samples, data, args)
    caption = (f"Leaderboard on {style.benchmark_label(data['benchmark'].iloc[0])} at the final step, sorted by "
               f"{style.HARD_SUBSET_LABEL} accuracy: Pass@k and accuracy (%) as mean over seeds [95 % bootstrap "
               "interval over problems and seeds].")
    note = (f"{trained.sentence()} Δ: {style.HARD_SUBSET_LABEL} accuracy minus {style.algo_label(args.baseline)}'s "
            "in points, paired bootstrap over problems, and over seeds when both arms ran the same ones (two-sided p; "
            "p (Holm): adjusted for the table's comparisons with Holm's step-down method). Δ at equal generated "
            f"tokens: the same difference on {style.HARD_SUBSET_LABEL} of the set evaluated during training "
            "(CSV: curve_benchmark), at the smaller of the two arms' mean totals of completion tokens (CSV: "
            "equal_tokens), each seed's per-problem accuracy interpolated linearly in cumulative tokens between "
            "the evaluated checkpoints around it; intermediate checkpoints may be evaluated with fewer samples "
            "(evaluation.intermediate_n_samples), so they are noisier. "
            "All-wrong groups: share of training groups with no correct "
            "answer; mean abs(A − A_GRPO): mean change of the advantage against GRPO's on the same batch; both "
            "averaged over rollout steps and seeds.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "rll" + "r" * (len(header) - 3),
                             blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False)
    parser.add_argument("--baseline", default="grpo", help="algorithm the Level 4-5 difference is taken against")
    parser.add_argument("--k-max", type=int, default=16, help="Pass@k column: the largest power of two <= this")
    parser.add_argument("--curve-benchmark", default=None,
                        help="set evaluated at every checkpoint, for the difference at equal generated tokens "
                             "(default: math500 if present, else the first found)")
    training_data.add_runs_option(parser)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
