"""The most confident wrong answers of all-wrong groups and what each run's loss made of them.

    python -m analysis.tab_confident_mistakes --tidy results/tidy --out results/tables [--top 10] [--algos lens]

Reads results/tidy/negative_samples.parquet (analysis.collect, from the runs' rollout records) and
lists the `--top` distinct wrong answers with the highest confidence p (identical completions of a
group are one row, with their count): run, step, problem, count, p, LENS's
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
COLUMNS = ["model", "algo", "seed", "step", "problem_id", "sample_idx", "count", "confidence", "lens_reward",
           "advantage", "grpo_advantage", "completion"]
SHOWN_CHARS = 60  # of the completion in the Markdown/LaTeX rows
GROUP = ["model", "seed", "step", "group"]  # with the algorithm: one group of one run
# An all-wrong group whose advantages are all below this in magnitude taught the run nothing.
ZERO_ADVANTAGE = 1e-6


def compute(negatives: pd.DataFrame, algos, top: int) -> pd.DataFrame:
    """The `top` most confident distinct wrong answers: identical completions of one group are one row
    (the first sample, `count` how many of the group's samples it stands for)."""
    rows = negatives if not algos else negatives[negatives["algo"].isin(algos)]
    counts = rows.groupby(["algo", *GROUP, "same_as"])["sample_idx"].transform("size")
    rows = rows.assign(count=counts)[rows["sample_idx"] == rows["same_as"]]
    # Ties broken by run and step, so the same records always give the same table.
    ordered = rows.sort_values(["confidence", "model", "algo", "seed", "step", "problem_id", "sample_idx"],
                               ascending=[False, True, True, True, True, True, True], kind="mergesort")
    return ordered.head(top)[COLUMNS].reset_index(drop=True)


def zero_advantage_groups(negatives: pd.DataFrame, algos=None) -> pd.DataFrame:
    """Per algorithm: the all-wrong groups recorded (`groups`), those whose advantages are all (nearly) 0
    (`zero`), of those the ones whose confidences are equal (`zero_equal_confidence`) and whose samples are
    one completion (`zero_one_completion`). LENS de-means r^ = -(1/G) p / (D - p) within the group, so
    equal confidences give equal rewards and zero advantages: a group of one confident mistake sampled
    G times is not pushed down at all."""
    rows = negatives if not algos else negatives[negatives["algo"].isin(algos)]
    per_group = rows.groupby(["algo", *GROUP]).agg(
        zero=("advantage", lambda a: bool((a.abs() < ZERO_ADVANTAGE).all())),
        equal=("confidence", lambda p: bool(p.max() - p.min() < ZERO_ADVANTAGE)),
        one=("same_as", lambda s: s.nunique() == 1))
    per_group = per_group.assign(zero_equal=per_group["zero"] & per_group["equal"],
                                 zero_one=per_group["zero"] & per_group["one"])
    return per_group.groupby("algo").agg(groups=("zero", "size"), zero=("zero", "sum"),
                                         zero_equal_confidence=("zero_equal", "sum"),
                                         zero_one_completion=("zero_one", "sum")).reset_index()


def _shown(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= SHOWN_CHARS else flat[:SHOWN_CHARS - 1] + "…"


def build(args) -> list:
    data = compute(read_negative_samples(args.tidy), args.algos, args.top)
    header = ["Model", "Algorithm", "Seed", "Step", "Problem", "×", "p", "r\u0302", "A", "A (GRPO)", "Completion"]
    rows = [[style.model_label(r.model), style.algo_label(r.algo), str(r.seed), str(r.step), str(r.problem_id),
             str(r.count), f"{r.confidence:.3f}", f"{r.lens_reward:+.4f}", f"{r.advantage:+.4f}",
             f"{r.grpo_advantage:+.4f}", _shown(r.completion)] for r in data.itertuples()]
    caption = f"The {args.top} most confident distinct wrong answers of all-wrong groups during training."
    note = ("×: how many of the group's samples are this completion (one row each distinct one); p: the "
            "answer's confidence under the rollout policy; r\u0302: LENS's calibrated reward (the run's "
            "wrong_scale and floor_factor); A: the advantage the run's loss used; A (GRPO): GRPO's on the same "
            "group (0: an all-wrong group teaches GRPO nothing). A group of identical confident mistakes has "
            "equal r\u0302, which the de-meaning cancels: A = 0. From the runs' rollout records."
            if rows else "No all-wrong group with confidences was recorded in the runs' rollout records.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "llrrlrrrrrl")


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
