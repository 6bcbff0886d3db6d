"""Table 1/3 layout: Pass@k (%) per model and algorithm at the final step, beside the paper's numbers.

    python -m analysis.tab_pass_at_k --tidy results/tidy --out results/tables \
        [--benchmark math500] [--k 1 2 4 8 16] [--paper-table auto] [--algos grpo lens] [--runs results/runs]

Rows model x algorithm (x subset: whole set, Level 4-5); cells are our mean ± standard deviation
over seeds (the CSV adds the 95 % bootstrap interval over problems and seeds). Where the model is
one of the paper's (config names `llama31_8b_instruct`, `qwen25_3b`) and the benchmark is MATH-500,
the paper's reported row (analysis.paper_numbers) and the difference ours minus paper follow, but
only where the runs trained on that paper table's data (their resolved configs under --runs;
analysis.training_data): `--paper-table auto` picks Table 1 for MATH + DAPO runs and Table 3 for
MATH + NuminaMath-1.5 runs; other data get no paper rows and a note saying why. The note names the
training data. Writes tab_pass_at_k.{md,tex,csv}.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper_numbers, style, training_data
from analysis.collect import read_eval_samples
from analysis.summary import pass_at_k_summary
from lens.metrics import HARD_SUBSET

NAME = "tab_pass_at_k"
COLUMNS = ["model", "benchmark", "subset", "algo", "step", "n_seeds", "n_samples", "k", "mean", "std_seeds", "ci_low",
           "ci_high", "paper", "delta"]
SUBSET_LABELS = {"all": "all", HARD_SUBSET: style.HARD_SUBSET_LABEL}


# The paper tables in this layout, for `--paper-table auto`, in the order they are tried.
PAPER_TABLES = ("table1", "table3")


def with_paper(summary: pd.DataFrame, paper_table: str | None) -> pd.DataFrame:
    """Add the paper's Pass@k (and ours minus paper) to the whole-set rows of matching models;
    `paper_table` None (training data unlike any paper table's): no paper numbers."""
    def lookup(row) -> float:
        if row["subset"] != "all" or paper_table is None:
            return np.nan
        ref = paper_numbers.paper_pass_at_k(paper_table, row["model"], row["algo"], row["benchmark"])
        return ref.get(int(row["k"]), np.nan) if ref else np.nan

    data = summary.copy()
    data["paper"] = data.apply(lookup, axis=1) if len(data) else pd.Series(dtype=float)
    data["delta"] = data["mean"] - data["paper"]
    return data[COLUMNS]


def paper_label(paper_table: str) -> str:
    """`table1` -> `Table 1`."""
    return paper_numbers.table_label(paper_table)


def paper_table_for(trained: training_data.TrainingData, requested: str) -> tuple[str | None, str]:
    """(the paper table to print beside ours, or None; the note when there is none).

    `requested` is a table name or `auto` (the one of PAPER_TABLES whose training data are these runs')."""
    if requested != "auto":
        ok, why = training_data.paper_comparable(trained, requested)
        return (requested, "") if ok else (None, why)
    table = training_data.matching_paper_table(trained, PAPER_TABLES)
    if table is not None:
        return table, ""
    kinds = " and ".join(f"{paper_label(t)} on {style.training_data_label(paper_numbers.TRAINING_DATA[t])}"
                         for t in PAPER_TABLES)
    return None, f"No comparison with the paper: it trained {kinds}; these runs on {trained.label}."


def display_rows(data: pd.DataFrame, algo_order: list[str], paper_table: str):
    """(header, rows, indices of the first row of each model block) for the Markdown/LaTeX tables."""
    ks = sorted(data["k"].unique())
    header = ["Model", "Algorithm", "Subset", *[f"P@{k}" for k in ks]]
    rows, blocks = [], []
    for model in sorted(data["model"].unique()):
        blocks.append(len(rows))
        for subset in [s for s in SUBSET_LABELS if s in set(data["subset"])]:
            for algo in algo_order:
                sel = data[(data["model"] == model) & (data["subset"] == subset) & (data["algo"] == algo)]
                if sel.empty:
                    continue
                sel = sel.set_index("k").reindex(ks)
                n_seeds = int(sel["n_seeds"].dropna().iloc[0])
                ours = [style.fmt_mean_spread(m, s) if m == m else "" for m, s in zip(sel["mean"], sel["std_seeds"])]
                label = f"{style.algo_label(algo)} (ours, {n_seeds} seed{'s' if n_seeds > 1 else ''})"
                # the model's name only on the first row of its block
                rows.append([style.model_label(model) if len(rows) == blocks[-1] else "", label,
                             SUBSET_LABELS[subset], *ours])
                if sel["paper"].notna().any():
                    rows.append(["", f"{style.algo_label(algo)} (paper, {paper_label(paper_table)})",
                                 SUBSET_LABELS[subset],
                                 *[f"{p:.2f}" if p == p else "" for p in sel["paper"]]])
                    rows.append(["", "Δ ours − paper", "", *[style.fmt_signed(d) for d in sel["delta"]]])
    return header, rows, blocks


def write_tables(data: pd.DataFrame, out: Path, name: str, algo_order: list[str], paper_table: str | None,
                 caption: str, trained: training_data.TrainingData, no_paper: str = "") -> list[Path]:
    """The Markdown/LaTeX/CSV tables; the note names the training data and, where the paper's numbers
    are left out, says why (`no_paper`)."""
    header, rows, blocks = display_rows(data, algo_order, paper_table)
    bench = style.benchmark_label(data["benchmark"].iloc[0])
    steps = ", ".join(f"{style.model_label(m)}: step {int(s)}" for m, s in
                      data.groupby("model")["step"].max().items())
    note = (f"{trained.sentence()} Pass@k (%) on {bench} at the final step ({steps}); ours: mean ± standard "
            f"deviation over seeds (unbiased estimator from n = {int(data['n_samples'].min())} samples per problem).")
    if data["paper"].notna().any():
        note += f" Paper: {paper_numbers.TABLES[paper_table]}."
    elif no_paper:
        note += f" {no_paper}"
    return style.write_table(data, out, name, header, rows, caption, note, "lll" + "r" * (len(header) - 3), blocks)


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    summary = pass_at_k_summary(samples, args.benchmark, args.k, args.bootstrap_samples,
                                args.bootstrap_seed, algos=args.algos)
    trained = training_data.of_table(samples, summary, args)
    paper_table, no_paper = paper_table_for(trained, args.paper_table)
    data = with_paper(summary, paper_table)
    order = args.algos or style.sort_algos(data["algo"].unique())
    return write_tables(data, Path(args.out), NAME, order, paper_table,
                        "Pass@k by model and algorithm (Table 1/3 layout).", trained, no_paper)


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False)
    parser.add_argument("--k", type=int, nargs="+", default=list(paper_numbers.PASS_K), help="k values (columns)")
    parser.add_argument("--paper-table", default="auto", choices=["auto", *PAPER_TABLES],
                        help="which reported table to print beside ours (table1: MATH + DAPO, as config/paper.yaml; "
                             "table3: MATH + NuminaMath-1.5, as config/paper-numina.yaml; auto: the one whose "
                             "training data are the runs'); printed only where the training data match")
    training_data.add_runs_option(parser)
    parser.add_argument("--algos", nargs="+", default=None, help="rows, in order (default: every algorithm found)")
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
