"""Table 2 layout: which half of LENS matters, Pass@k (%) for GRPO, the two ablations and LENS,
then every other arm trained (the `ablations` target's baselines: Dr. GRPO, NSR, W-REINFORCE, ...).

    python -m analysis.tab_ablation --tidy results/tidy --out results/tables \
        [--benchmark math500] [--k 1 2 4 8 16] [--runs results/runs]

Rows grpo, lens_mixed_only (LENS calibration only in mixed groups), lens_negative_only (LENS only
in all-wrong groups), lens, then the other algorithms found in the tidy tables; cells are our mean
± standard deviation over seeds at the final step, with the paper's Table 2 row
(Llama-3.1-8B-Instruct, MATH + NuminaMath-1.5) beside ours where the model and benchmark match and
the runs trained on MATH train + NuminaMath-1.5 (their resolved configs under --runs;
analysis.training_data), as config/paper-numina.yaml does; other training data get no paper rows
and a note saying why. The note names the training data. Arms that were not run are listed under
the table.
Writes tab_ablation.{md,tex,csv}.
"""

from __future__ import annotations

import sys
from pathlib import Path

from analysis import paper_numbers, style, training_data
from analysis.collect import TidyError, read_eval_samples
from analysis.summary import pass_at_k_summary, with_paper
from lens import algorithms

NAME = "tab_ablation"
ABLATION_ALGOS = algorithms.table_rows(NAME)  # the paper's Table 2 rows, in its order (lens.algorithms)
PAPER_TABLE = "table2"


def build(args) -> list:
    samples = read_eval_samples(args.tidy)
    found = set(samples["algo"])
    baselines = [a for a in style.sort_algos(found) if a not in ABLATION_ALGOS]
    present = [a for a in ABLATION_ALGOS if a in found] + baselines
    if not any(a in found for a in ABLATION_ALGOS):
        raise TidyError(f"none of {ABLATION_ALGOS} has evaluation samples")
    summary = pass_at_k_summary(samples, args.benchmark, args.k, args.bootstrap_samples, args.bootstrap_seed,
                                algos=present)
    trained = training_data.of_table(samples, summary, args)
    comparable, no_paper = training_data.paper_comparable(trained, PAPER_TABLE)
    data = with_paper(summary, PAPER_TABLE if comparable else None)
    missing = [a for a in ABLATION_ALGOS if a not in set(data["algo"])]
    caption = "Ablation: LENS in mixed groups only, in all-wrong groups only, and both (Table 2 layout)"
    caption += f", and the baselines {', '.join(style.algo_label(a) for a in baselines)}." if baselines else "."
    paths = style.write_pass_at_k_tables(data, Path(args.out), NAME, ABLATION_ALGOS + baselines,
                                         PAPER_TABLE if comparable else None, caption, trained, no_paper)
    if missing:
        note = ("\nNot run (add them to `ablation_algorithms` in the config and build the `ablations` target): "
                + ", ".join(style.algo_label(a) for a in missing) + ".\n")
        with open(paths[0], "a") as md:
            md.write(note)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = style.cli_parser(__doc__, "results/tables", figure=False)
    parser.add_argument("--k", type=int, nargs="+", default=list(paper_numbers.PASS_K), help="k values (columns)")
    training_data.add_runs_option(parser)
    return style.run_cli(NAME, build, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
