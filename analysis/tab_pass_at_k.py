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

from analysis import paper_numbers, style, training_data
from analysis.collect import read_eval_samples
from analysis.summary import PAPER_TABLES, paper_table_for, pass_at_k_summary, with_paper

NAME = "tab_pass_at_k"


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    summary = pass_at_k_summary(samples, args.benchmark, args.k, args.bootstrap_samples,
                                args.bootstrap_seed, algos=args.algos)
    trained = training_data.of_table(samples, summary, args)
    paper_table, no_paper = paper_table_for(trained, args.paper_table)
    data = with_paper(summary, paper_table)
    order = args.algos or style.sort_algos(data["algo"].unique())
    return style.write_pass_at_k_tables(data, Path(args.out), NAME, order, paper_table,
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
