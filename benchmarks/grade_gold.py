"""Grading sanity checks on MATH test: gold solutions vs their own answers, and vs other answers.

    python benchmarks/grade_gold.py [--out FILE.json]

(1) each of the 5,000 test solutions graded against its own `answer`: the fraction graded correct
    (goal >= 99.5 %) and every failure with its id and the reason;
(2) each solution whose answer is an integer graded against the answer of a different problem with
    a different integer answer (a fixed seeded pairing): false positives (goal 0).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from _common import DATA, load_average, read_jsonl

from lens.rewards import boxed_contents, grade_batch, last_boxed

# The data README: answers set by hand because the solution's box is wrong or empty.
HAND_SET = {"test/algebra/1730.json", "test/prealgebra/177.json"}


def reason(row: dict) -> str:
    if row["id"] in HAND_SET:
        return "answer set by hand (data README): the solution's own box differs"
    if len(boxed_contents(row["solution"])) > 1 and ", " in row["answer"]:
        return f"answer joined from several boxes (data README): {boxed_contents(row['solution'])} vs {row['answer']!r}"
    return f"other: last box {last_boxed(row['solution'])!r} vs answer {row['answer']!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    rows = read_jsonl(DATA / "math" / "test.jsonl")

    scores = grade_batch([r["solution"] for r in rows], [r["answer"] for r in rows])
    failures = [{"id": r["id"], "reason": reason(r)} for r, s in zip(rows, scores, strict=True) if s != 1.0]
    self_check = {"n": len(rows), "correct": int(sum(scores)), "fraction": sum(scores) / len(rows),
                  "failures": failures}

    integer = [r for r in rows if re.fullmatch(r"-?\d+", r["answer"].strip())]
    rng = random.Random(0)
    order = list(range(len(integer)))
    rng.shuffle(order)
    completions, golds, pairs = [], [], []
    for pos, i in enumerate(order):
        # the next problem in the shuffled order whose integer answer differs
        for step in range(1, len(order)):
            j = order[(pos + step) % len(order)]
            if int(integer[j]["answer"]) != int(integer[i]["answer"]):
                break
        completions.append(integer[i]["solution"])
        golds.append(integer[j]["answer"])
        pairs.append((integer[i]["id"], integer[j]["id"]))
    cross = grade_batch(completions, golds)
    false_pos = [{"solution_of": a, "answer_of": b} for (a, b), s in zip(pairs, cross, strict=True) if s != 0.0]
    result = {"self_check": self_check,
              "cross_check": {"n_pairs": len(pairs), "false_positives": len(false_pos), "cases": false_pos},
              "machine": load_average()}
    print(f"(1) own answer: {self_check['correct']}/{self_check['n']} = {100 * self_check['fraction']:.2f} % correct")
    for f in failures:
        print(f"    {f['id']}: {f['reason']}")
    print(f"(2) other problem's integer answer: {len(false_pos)} false positives in {len(pairs)} pairs")
    for f in false_pos:
        print(f"    {f}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
