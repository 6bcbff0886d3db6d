"""What every arm's runs cost, measured from their own training metrics.

    python -m analysis.tab_cost --tidy results/tidy --out results/tables

Per run (analysis.summary.run_costs), from the metrics lens.trainer logs at every rollout step,
recorded or not (lens.trainer.COST_METRICS) and lens.train's step wall time: completions generated,
their tokens, prompt tokens, tokens through the trainer's forward and backward passes, wall time split
into generation, scoring (the reward functions) and the rest of each step (old log-probs, advantages,
the optimizer updates, checkpoints), processes and, on GPUs, GPU-hours. One row per arm: the mean
over its seeds with the smallest and largest run. Writes tab_cost.{md,tex,csv}; the CSV has one row
per run.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import style
from analysis.collect import TidyError, read_train_metrics
from analysis.summary import run_costs

NAME = "tab_cost"


def _spread(values: pd.Series, scale: float = 1.0, digits: int = 2) -> str:
    """'1.23 [1.20, 1.26]' (mean [smallest, largest run]); only the mean for one run."""
    v = values / scale
    if len(v) == 1:
        return f"{v.iloc[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} [{v.min():.{digits}f}, {v.max():.{digits}f}]"


def display_rows(costs: pd.DataFrame) -> tuple[list[str], list[list[str]], list[int]]:
    # Tokens in millions for GPU runs, in thousands for the CPU's tiny ones: one unit per table.
    scale, unit = (1e6, "M") if costs["trained_tokens"].max() >= 1e6 else (1e3, "k")
    header = ["Model", "Algorithm", "Runs", "Steps", "Completions", f"Generated tokens ({unit})",
              f"Prompt tokens ({unit})", f"Trained tokens ({unit})", "Wall time (min)",
              "Generation / scoring / rest (%)", "Processes", "GPU-hours"]
    rows, blocks = [], []
    for model, part in costs.groupby("model", sort=True):
        blocks.append(len(rows))
        for i, algo in enumerate(style.sort_algos(set(part["algo"]))):
            runs = part[part["algo"] == algo]
            wall = runs["wall_s"].sum()
            split = " / ".join(f"{100 * runs[c].sum() / wall:.0f}" if wall > 0 else ""
                               for c in ("generation_s", "scoring_s", "other_s"))
            rows.append([style.model_label(model) if i == 0 else "", style.algo_label(algo), str(len(runs)),
                         f"{runs['steps'].mean():.0f}", _spread(runs["completions"], digits=0),
                         _spread(runs["completion_tokens"], scale, 1), _spread(runs["prompt_tokens"], scale, 1),
                         _spread(runs["trained_tokens"], scale, 1), _spread(runs["wall_s"], 60, 1), split,
                         f"{runs['processes'].max():.0f}", _spread(runs["gpu_hours"], digits=1)])
    return header, rows, blocks


def build(args) -> list:
    costs = run_costs(read_train_metrics(args.tidy))
    if costs.empty:
        raise TidyError(f"{args.tidy}: no run logged cost metrics (cost/*, time/step_s): train it with this "
                        "version of lens.train")
    header, rows, blocks = display_rows(costs)
    caption = "What each arm's runs cost, from their own training metrics: mean over runs [smallest, largest run]."
    note = ("Generated tokens: every completion of every rollout step (recorded or not); trained tokens: prompt and "
            "completion tokens through the optimizer updates' forward and backward passes; wall time: the rollout "
            "steps, split into generation (with vLLM, its weight sync too), scoring (the reward functions) and the "
            "rest (old log-probs, advantages, the updates, checkpoints); GPU-hours: wall time x GPUs (0 on CPUs).")
    return style.write_table(costs, args.out, NAME, header, rows, caption, note, "llrrrrrrrrrr", blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False, bootstrap=False, benchmark=False)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
