"""What each power lever buys: the minimum detectable Level 4-5 difference of one run, design by design.

    python benchmarks/power_levers.py [--tidy results/tidy] [--treatment lens] [--baseline grpo] \
        [--problems-per-level 40]

Reads the final step of results/tidy/eval_samples.parquet and prints, for the treatment minus the
baseline on Levels 4-5, the minimum detectable difference at 80 % power (two-sided 5 %) of:
- the independent design (each arm's own seed and problem variance, analysis.stats.difference_se)
  and the design paired by seed (analysis.stats.paired_difference_se), which is right when runs of
  one seed share their random numbers;
- on the first --problems-per-level test problems of each level (the test split before extra
  problems were added: lens.synthetic writes them first) and on every problem evaluated;
- with the final step's samples thinned to fewer per problem (what fewer samples would have given).
Report these numbers in docs/performance.md; the run's own design is REPORT.md's power section.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis import stats
from analysis.collect import pick_benchmark, read_eval_samples
from lens.metrics import in_subset

ROOT = Path(__file__).resolve().parents[1]


def first_problems(test_file: Path, per_level: int) -> set[str]:
    """Ids of the first `per_level` problems of each level in a synthetic test.jsonl."""
    seen: dict[int, int] = {}
    keep = set()
    for line in test_file.read_text().splitlines():
        row = json.loads(line)
        seen[row["level"]] = seen.get(row["level"], 0) + 1
        if seen[row["level"]] <= per_level:
            keep.add(row["id"])
    return keep


def designs(final, treatment: str, baseline: str) -> dict[str, float]:
    """{"independent": MDD, "paired": MDD} in points for the final-step samples `final`."""
    mats = {}
    for algo in (treatment, baseline):
        sub = final[final["algo"] == algo]
        n = int(sub.groupby(["seed", "problem_id"]).size().min())
        matrix = stats.seed_problem_scores(sub)  # (S, P)
        mats[algo] = (matrix, stats.variance_components(matrix, n_samples=n))
    (t, t_comp), (b, b_comp) = mats[treatment], mats[baseline]
    out = {"independent": 100 * stats.minimum_detectable_difference(
        stats.difference_se([t_comp, b_comp], [len(t), len(b)], t.shape[1]))}
    if t.shape[0] == b.shape[0] >= 2:
        out["paired"] = 100 * stats.minimum_detectable_difference(stats.paired_difference_se(t, b)["se"])
    out["n_problems"] = t.shape[1]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tidy", type=Path, default=ROOT / "results" / "tidy")
    parser.add_argument("--test-file", type=Path, default=None,
                        help="synthetic test.jsonl (default: data/synthetic/test.jsonl beside the tidy folder)")
    parser.add_argument("--treatment", default="lens")
    parser.add_argument("--baseline", default="grpo")
    parser.add_argument("--problems-per-level", type=int, default=40)
    args = parser.parse_args(argv)
    samples = read_eval_samples(args.tidy)
    samples = samples[samples["benchmark"] == pick_benchmark(samples, None)[0]]
    final = samples[(samples["step"] == samples["step"].max()) & samples["algo"].isin([args.treatment, args.baseline])]
    final = final[in_subset(final["level"]).to_numpy()].assign(correct=lambda d: d["correct"].astype(float))
    test_file = args.test_file or args.tidy.parent / "data" / "synthetic" / "test.jsonl"
    subsets = {"every problem": final}
    if test_file.exists():
        first = first_problems(test_file, args.problems_per_level)
        subsets[f"first {args.problems_per_level} per level"] = final[final["problem_id"].isin(first)]
    n_max = int(final.groupby(["algo", "seed", "problem_id"]).size().min())
    for name, part in subsets.items():
        for n in sorted({n_max, n_max // 2, n_max // 4} - {0}, reverse=True):
            thinned = part[part["sample_idx"] < n]
            out = designs(thinned, args.treatment, args.baseline)
            paired = f"{out['paired']:.2f}" if "paired" in out else "n/a"
            print(f"{name:24s} {out['n_problems']:4d} Level 4-5 problems, {n:2d} samples: MDD independent "
                  f"{out['independent']:.2f}, paired by seed {paired} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
