"""Grading throughput over the 5,000 MATH test gold solutions: grade_batch vs a plain math-verify loop.

    python benchmarks/bench_grading.py [--n 5000] [--repeats 1] [--out FILE.json]

In the same process and run: (a) the plain single-process loop
``verify(parse("$" + answer + "$"), parse(solution))`` with Math-Verify's default timeouts, and
(b) ``lens.rewards.grade_batch(solutions, answers)`` with its defaults (process pool over all
cores), plus (c) grade_batch forced in-process (workers=1). Math-Verify's parse caches are cleared
before each timed pass. Prints answers/s, the ratio (b)/(a) (goal >= 1.6 on 2 cores) and the load
average, since other jobs on a shared machine depress every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from _common import DATA, clear_math_verify_caches, load_average, read_jsonl

from lens.rewards import grade_batch


def plain_loop(solutions: list[str], answers: list[str]) -> list[float]:
    from math_verify import parse, verify

    return [float(verify(parse("$" + a + "$"), parse(s))) for s, a in zip(solutions, answers, strict=True)]


def timed(fn, *args, **kwargs) -> tuple[list[float], float]:
    clear_math_verify_caches()
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=1, help="alternate (a) and (b) this many times")
    parser.add_argument("--out")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    rows = read_jsonl(DATA / "math" / "test.jsonl")[: args.n]
    solutions, answers = [r["solution"] for r in rows], [r["answer"] for r in rows]
    n = len(rows)
    print(f"{n} gold solutions; before: {load_average()}", flush=True)
    runs = []
    for rep in range(args.repeats):
        plain, t_plain = timed(plain_loop, solutions, answers)
        pooled, t_pool = timed(grade_batch, solutions, answers)
        single, t_single = timed(grade_batch, solutions, answers, workers=1)
        run = {"plain_per_s": n / t_plain, "grade_batch_per_s": n / t_pool, "grade_batch_1proc_per_s": n / t_single,
               "ratio": t_plain / t_pool, "ratio_1proc": t_plain / t_single,
               "correct": {"plain": sum(plain), "grade_batch": sum(pooled), "grade_batch_1proc": sum(single)},
               "load_after": load_average()}
        runs.append(run)
        print(f"[{rep}] plain loop {run['plain_per_s']:.0f}/s | grade_batch {run['grade_batch_per_s']:.0f}/s "
              f"(x{run['ratio']:.2f}) | grade_batch workers=1 {run['grade_batch_1proc_per_s']:.0f}/s "
              f"(x{run['ratio_1proc']:.2f}) | correct {run['correct']} | {run['load_after']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"n": n, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
