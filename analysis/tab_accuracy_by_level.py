"""Accuracy (%) by difficulty level and algorithm at the final step, with LENS minus GRPO and its p-value.

    python -m analysis.tab_accuracy_by_level --tidy results/tidy --out results/tables \
        [--benchmark math500] [--treatment lens] [--baseline grpo] [--bootstrap-samples 2000]

Rows: Levels 1-5, the Level 4-5 subset and the whole set, per model. Columns: each algorithm's mean
over seeds with a 95 % bootstrap interval over problems and seeds, then treatment minus baseline
in points with its 95 % interval and two-sided p-value from a paired bootstrap over problems
(both arms answered the same problems; seeds are resampled within each arm), analysis.stats.
Writes tab_accuracy_by_level.{md,tex,csv}; the CSV has one row per (model, level, algo) and one
per (model, level) for the difference (algo = "{treatment}_minus_{baseline}").
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from analysis import stats, style, training_data
from analysis.collect import (
    final_step_samples,
    per_problem,
    pick_benchmark,
    read_eval_samples,
    seed_problem_matrix,
    shared_columns,
)
from analysis.summary import diff_id, seed_summary
from lens.metrics import HARD_SUBSET

NAME = "tab_accuracy_by_level"
COLUMNS = ["model", "benchmark", "level", "algo", "step", "n_seeds", "n_problems", "mean", "std_seeds", "ci_low",
           "ci_high", "p_value"]
LEVEL_LABELS = {"all": "all levels", HARD_SUBSET: style.HARD_SUBSET_LABEL}


def compute(samples: pd.DataFrame, benchmark: str | None, treatment: str, baseline: str, n_boot: int,
            seed: int) -> pd.DataFrame:
    benchmark, rows = pick_benchmark(samples, benchmark)
    problems = per_problem(final_step_samples(rows))
    problems["accuracy"] = problems["c"] / problems["n"]
    records = []
    for model, by_model in problems.groupby("model", sort=True):
        subsets = stats.level_subsets(by_model)
        # levels first, then the hard subset, then everything: the table's row order
        subsets = [s for s in subsets if s[0] not in ("all", HARD_SUBSET)] \
            + [s for s in subsets if s[0] == HARD_SUBSET] + [s for s in subsets if s[0] == "all"]
        for label, mask in subsets:
            part = by_model[mask]
            matrices = {}
            for algo, group in part.groupby("algo", sort=True):
                matrix, seeds, pids = seed_problem_matrix(group, "accuracy")
                matrices[algo] = (matrix, seeds, pids)
                records.append({"model": model, "benchmark": benchmark, "level": label, "algo": algo,
                                "step": int(group["step"].iloc[0]), **seed_summary(matrix, n_boot, seed),
                                "p_value": np.nan})
            if treatment in matrices and baseline in matrices:
                (t_mat, t_seeds, t_pids), (b_mat, b_seeds, b_pids) = matrices[treatment], matrices[baseline]
                t_mat, b_mat, t_pids = shared_columns(t_mat, t_pids, b_mat, b_pids)
                # runs of one seed share their random numbers: pair them (analysis.stats.same_seed_rows)
                res = stats.paired_bootstrap(t_mat, b_mat, n_boot=n_boot, seed=seed,
                                             same_seeds=stats.same_seed_rows(t_seeds, b_seeds))
                records.append({"model": model, "benchmark": benchmark, "level": label,
                                "algo": diff_id(treatment, baseline), "step": np.nan,
                                "n_seeds": min(len(t_mat), len(b_mat)), "n_problems": len(t_pids),
                                "mean": style.percent(res["diff"]), "std_seeds": np.nan,
                                "ci_low": style.percent(res["ci_low"]),
                                "ci_high": style.percent(res["ci_high"]), "p_value": res["p_value"]})
    data = pd.DataFrame(records, columns=COLUMNS)
    data["step"] = data["step"].astype("Int64")
    return data


def display_rows(data: pd.DataFrame, treatment: str, baseline: str):
    algos = style.sort_algos(a for a in data["algo"].unique() if a != diff_id(treatment, baseline))
    has_diff = (data["algo"] == diff_id(treatment, baseline)).any()
    header = ["Model", "Level", "Problems", *[style.algo_label(a) for a in algos]]
    if has_diff:
        header += [f"{style.algo_label(treatment)} − {style.algo_label(baseline)}", "p"]
    rows, blocks = [], []
    for model in sorted(data["model"].unique()):
        blocks.append(len(rows))
        sub = data[data["model"] == model]
        for level in dict.fromkeys(sub["level"]):  # first-seen order: 1..5, 4-5, all
            cells = sub[sub["level"] == level].set_index("algo")
            row = [style.model_label(model) if len(rows) == blocks[-1] else "", LEVEL_LABELS.get(level, level),
                   str(int(cells["n_problems"].max()))]
            for algo in algos:
                if algo in cells.index:
                    c = cells.loc[algo]
                    row.append(f"{style.fmt_mean_spread(c['mean'], c['std_seeds'])} "
                               f"[{c['ci_low']:.1f}, {c['ci_high']:.1f}]")
                else:
                    row.append("")
            if has_diff:
                if diff_id(treatment, baseline) in cells.index:
                    d = cells.loc[diff_id(treatment, baseline)]
                    row += [f"{style.fmt_signed(d['mean'])} [{style.fmt_signed(d['ci_low'])}, "
                            f"{style.fmt_signed(d['ci_high'])}]", style.fmt_p(d["p_value"])]
                else:
                    row += ["", ""]
            rows.append(row)
    return header, rows, blocks


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    data = compute(samples, args.benchmark, args.treatment, args.baseline,
                   args.bootstrap_samples, args.bootstrap_seed)
    trained = training_data.of_table(samples, data, args)
    header, rows, blocks = display_rows(data, args.treatment, args.baseline)
    steps = data.dropna(subset=["step"]).groupby(["model", "algo"])["step"].max()
    if steps.nunique() == 1:
        step_note = f"step {int(steps.iloc[0])}"
    else:  # runs of different lengths: say which step each row of the table comes from
        step_note = ", ".join(f"{style.model_label(m)} {style.algo_label(a)}: step {int(s)}"
                              for (m, a), s in steps.items())
    caption = (f"Accuracy (%) by difficulty level on {style.benchmark_label(data['benchmark'].iloc[0])} at the final "
               "step: mean ± standard deviation over seeds [95 % bootstrap interval over problems and seeds].")
    note = (f"{trained.sentence()} Difference in points with a paired bootstrap over problems (two-sided p). "
            f"Evaluated at {step_note}.")
    return style.write_table(data, args.out, NAME, header, rows, caption, note, "llr" + "r" * (len(header) - 3),
                             blocks)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False)
    parser.add_argument("--treatment", default="lens", help="algorithm whose gain is tested")
    parser.add_argument("--baseline", default="grpo", help="algorithm it is compared with")
    training_data.add_runs_option(parser)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
