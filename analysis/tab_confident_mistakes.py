"""The most confident wrong answers of all-wrong groups and what each run's loss made of them.

    python -m analysis.tab_confident_mistakes --tidy results/tidy --out results/tables [--top 10] [--algos lens]

Reads results/tidy/negative_samples.parquet (analysis.collect, from the runs' rollout records) and
lists the `--top` wrong answers with the highest confidence p: run, step, problem, p, LENS's
calibrated reward r^, the advantage the loss used and GRPO's (0 in an all-wrong group), and the
start of the completion. Writes tab_confident_mistakes.{md,tex,csv}; the CSV has the whole
recorded completion prefix (analysis.collect.COMPLETION_CHARS characters).
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import read_negative_samples

NAME = "tab_confident_mistakes"
COLUMNS = ["model", "algo", "seed", "step", "problem_id", "sample_idx", "confidence", "lens_reward", "advantage",
           "grpo_advantage", "completion"]
SHOWN_CHARS = 60  # of the completion in the Markdown/LaTeX rows


def compute(negatives: pd.DataFrame, algos, top: int) -> pd.DataFrame:
    rows = negatives if not algos else negatives[negatives["algo"].isin(algos)]
    # Ties broken by run and step, so the same records always give the same table.
    ordered = rows.sort_values(["confidence", "model", "algo", "seed", "step", "problem_id", "sample_idx"],
                               ascending=[False, True, True, True, True, True, True], kind="mergesort")
    return ordered.head(top)[COLUMNS].reset_index(drop=True)


def _shown(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= SHOWN_CHARS else flat[:SHOWN_CHARS - 1] + "…"


def build(args) -> list:
    data = compute(read_negative_samples(args.tidy), args.algos, args.top)
    header = ["Model", "Algorithm", "Seed", "Step", "Problem", "p", "r\u0302", "A", "A (GRPO)", "Completion"]
    rows = [[style.model_label(r.model), style.algo_label(r.algo), str(r.seed), str(r.step), str(r.problem_id),
             f"{r.confidence:.3f}", f"{r.lens_reward:+.4f}", f"{r.advantage:+.4f}", f"{r.grpo_advantage:+.4f}",
             _shown(r.completion)] for r in data.itertuples()]
    caption = f"The {args.top} most confident wrong answers of all-wrong groups during training."
    note = ("p: the answer's confidence under the rollout policy; r\u0302: LENS's calibrated reward (the run's "
            "wrong_scale and floor_factor); A: the advantage the run's loss used; A (GRPO): GRPO's on the same "
            "group (0: an all-wrong group teaches GRPO nothing). From the runs' rollout records."
            if rows else "No all-wrong group with confidences was recorded in the runs' rollout records.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "llrrlrrrrl")


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False, bootstrap=False, benchmark=False)
    parser.add_argument("--top", type=int, default=10, help="answers to list (default 10)")
    parser.add_argument("--algos", nargs="+", default=None, help="algorithms to include (default: every one)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be >= 1")
    return style.run_cli(NAME, build, args)


if __name__ == "__main__":
    sys.exit(main())
