"""Gold self-check and the full cross-swap on the five benchmarks beside MATH (AIME 2024/2025, AMC 2023,
Minerva Math, OlympiadBench): what tests/test_benchmarks.py checks on a sample of pairs, on all of them.

    python benchmarks/grade_benchmarks.py [--sets minerva ...] [--max-pairs N] [--out FILE.json]

Per set: (1) every gold answer boxed, graded against itself (goal: all 1); (2) every ordered pair of
golds that differ (lens.answer_formats.distinct_golds: beyond the tolerance as numbers, or as text),
one boxed and graded against the other (goal: all 0; `--max-pairs` grades a fixed random sample of
that many: Minerva's 73,000 pairs, many of them symbolic, ran over 35 minutes on 2 cores without
finishing); (3) how many golds each format rule reached (compared as a number with a tolerance,
normalised before Math-Verify, unchanged).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time

from _common import DATA

from lens import answer_formats
from lens import datasets as dataset_table
from lens.config import DatasetConfig
from lens.data import load_problems
from lens.rewards import grade_batch

FOLDERS = {"aime24": "aime", "aime25": "aime", "amc23": "amc", "minerva": "minerva", "olympiadbench": "olympiadbench"}


def rule_counts(golds: list[str], specs: list) -> dict:
    """How many golds each format rule changes: compared as numbers, or rewritten before Math-Verify."""
    numeric = sum(answer_formats.numeric_tolerance(g, s) is not None for g, s in zip(golds, specs, strict=True))
    rewritten = sum(answer_formats.numeric_tolerance(g, s) is None and answer_formats.normalize(g, s.format) != g
                    for g, s in zip(golds, specs, strict=True))
    return {"as_number_with_tolerance": numeric, "rewritten_for_math_verify": rewritten,
            "unchanged": len(golds) - numeric - rewritten}


def check(name: str, max_pairs: int | None = None) -> dict:
    problems = load_problems(DatasetConfig(name, str(DATA / FOLDERS[name])))
    fmt = dataset_table.get(name).answer_format
    golds = [p["answer"] for p in problems]
    specs = [answer_formats.spec_for(fmt, p) for p in problems]
    start = time.perf_counter()
    own = grade_batch([f"\\boxed{{{g}}}" for g in golds], golds, specs=specs)
    pairs = [(i, j) for i, j in itertools.permutations(range(len(golds)), 2)
             if answer_formats.distinct_golds(golds[i], golds[j], specs[i])]
    skipped = len(golds) * (len(golds) - 1) - len(pairs)
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(random.Random(0).sample(pairs, max_pairs))
    cross = grade_batch([f"\\boxed{{{golds[j]}}}" for _, j in pairs], [golds[i] for i, _ in pairs],
                        specs=[specs[i] for i, _ in pairs])
    hits = [(problems[i]["id"], golds[i], problems[j]["id"], golds[j])
            for (i, j), s in zip(pairs, cross, strict=True) if s]
    return {"set": name, "format": fmt, "golds": len(golds), **rule_counts(golds, specs),
            "self_failures": [p["id"] for p, s in zip(problems, own, strict=True) if s != 1.0],
            "pairs": len(pairs), "pairs_within_tolerance_or_equal": skipped,
            "cross_hits": hits, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(FOLDERS), choices=list(FOLDERS))
    parser.add_argument("--max-pairs", type=int, help="grade a fixed random sample of this many pairs per set")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    results = []
    for name in args.sets:
        r = check(name, args.max_pairs)
        results.append(r)
        print(f"{name}: {r['golds']} golds ({r['as_number_with_tolerance']} as numbers, "
              f"{r['rewritten_for_math_verify']} rewritten, {r['unchanged']} unchanged); self-check failures "
              f"{len(r['self_failures'])}; cross-swap {r['pairs']} pairs graded, {len(r['cross_hits'])} graded 1 "
              f"({r['pairs_within_tolerance_or_equal']} pairs equal or within tolerance skipped); {r['seconds']} s",
              flush=True)
        for hit in r["cross_hits"]:
            print("   ", hit, flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
