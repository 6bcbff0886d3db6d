"""10,000 malformed or adversarial completions through grade_batch: crashes and the slowest grade.

    python benchmarks/adversarial.py [--n 10000] [--timeout-s 5] [--out FILE.json]

The completions are generated with a fixed seed from 16 kinds (empty, whitespace, unbalanced
braces, 100k characters, deeply nested \\frac / \\sqrt, unicode junk, \\boxed{} inside \\boxed{},
huge powers and factorials, long sums, many boxes, LaTeX command soup, ...) against golds that none
of them states. Pass 1 grades all of them in one pooled grade_batch call (the evaluator's path);
pass 2 grades each alone in-process (the RL-reward path) and times it. A crash is any exception out
of grade_batch or a result other than 0.0.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from _common import load_average

from lens.rewards import grade_batch

GOLDS = ["123456789", "\\frac{987}{1001}", "(3, -77)", "x^{13}-5", "\\sqrt{8191}"]


def make(kind: str, rng: random.Random) -> str:
    junk = "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0x80, 0x2fff), rng.randint(0x1f300, 0x1f6ff)]))
                   for _ in range(rng.randint(1, 300)))
    depth = rng.randint(20, 500)
    if kind == "empty":
        return rng.choice(["", " ", "\n\n", "\t"])
    if kind == "unbalanced":
        return rng.choice(["\\boxed{", "\\boxed{{{1}", "}}}\\boxed{2}}}", "\\boxed{\\frac{1}{", "{" * depth,
                           "}" * depth, "\\left( 1 + \\boxed{x", "$$\\boxed{$"])
    if kind == "huge":
        return rng.choice(["x", "1+", "\\frac{", "\\boxed{", "$", " ", "a" * 7 + "\\"]) * (100_000 // 8)
    if kind == "nested_frac":
        inner = "\\frac{" * depth + "1" + "}{2}" * depth
        return rng.choice([inner, "\\boxed{" + inner + "}", "$" + inner + "$"])
    if kind == "nested_sqrt":
        return "\\boxed{" + "\\sqrt{" * depth + "2" + "}" * depth + "}"
    if kind == "nested_parens":
        return "\\boxed{" + "(" * depth + "1" + ")" * depth + "}"
    if kind == "unicode":
        return junk + rng.choice(["", " \\boxed{" + junk + "}", "\\boxed{\u00bd\u2212\u221e}"])
    if kind == "box_in_box":
        return "\\boxed{" * rng.randint(2, 50) + rng.choice(["", "1", "\\boxed{}"]) + "}" * rng.randint(0, 50)
    if kind == "power_tower":
        return "\\boxed{" + rng.choice(["9^{9^{9^{9}}}", "10^{10^{10}}", "2^{2^{40}}", "123456789^{987654321}",
                                        "10^{100000000}", "(10^{8})!", "100000000!", "e^{e^{e^{100}}}"]) + "}"
    if kind == "long_sum":
        return "\\boxed{" + "+".join(str(rng.randint(1, 9)) for _ in range(rng.randint(1000, 20000))) + "}"
    if kind == "many_boxes":
        return " ".join("\\boxed{" + str(rng.randint(0, 99)) + "}" for _ in range(rng.randint(100, 3000)))
    if kind == "command_soup":
        cmds = ["\\frac", "\\left", "\\right", "\\begin{pmatrix}", "\\end{pmatrix}", "\\sqrt", "^", "_", "&", "\\\\",
                "\\int", "\\sum", "\\lim", "\\text{", "\\mathrm{", "\\%", "\\infty", "\\pm", "\\cdot", "\\{", "\\}"]
        return "\\boxed{" + "".join(rng.choice(cmds) for _ in range(rng.randint(5, 400))) + "}"
    if kind == "matrix":
        n = rng.randint(5, 40)
        row = " & ".join(str(rng.randint(0, 9)) for _ in range(n))
        return "\\boxed{\\begin{pmatrix}" + " \\\\ ".join([row] * n) + "\\end{pmatrix}}"
    if kind == "dollars":
        return "$" * rng.randint(1, 20000) + rng.choice(["", "1", "\\boxed{1}"])
    if kind == "intervals_sets":
        return "\\boxed{" + rng.choice(["(", "[", "\\{"]) + ",".join(str(rng.randint(-9, 9)) for _ in range(depth)) \
            + rng.choice([")", "]", "\\}", ""]) + "}"
    if kind == "control_chars":
        return "".join(chr(rng.randint(0, 31)) for _ in range(rng.randint(1, 2000))) + "\\boxed{\x00}"
    raise ValueError(kind)


KINDS = ["empty", "unbalanced", "huge", "nested_frac", "nested_sqrt", "nested_parens", "unicode", "box_in_box",
         "power_tower", "long_sum", "many_boxes", "command_soup", "matrix", "dollars", "intervals_sets",
         "control_chars"]


def build(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rng = random.Random(seed)
    # The costly kinds (each may run to the deadline) are fewer, so pass 2 finishes in minutes.
    weights = {k: 1.0 for k in KINDS}
    weights.update(huge=0.05, power_tower=0.02, long_sum=0.05, nested_frac=0.3)
    kinds = rng.choices(KINDS, weights=[weights[k] for k in KINDS], k=n)
    return kinds, [make(k, rng) for k in kinds], [rng.choice(GOLDS) for _ in kinds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--out")
    args = parser.parse_args()
    kinds, completions, golds = build(args.n)
    print(f"{len(completions)} completions: {dict(Counter(kinds))}; {load_average()}", flush=True)

    t0 = time.perf_counter()
    crashes_pool = 0
    try:
        pooled = grade_batch(completions, golds, timeout_s=args.timeout_s)
        nonzero_pool = sum(s != 0.0 for s in pooled)
    except Exception as err:  # noqa: BLE001 - this is what is being counted
        crashes_pool, nonzero_pool = len(completions), 0
        print(f"pooled grade_batch raised {err!r}")
    pool_s = time.perf_counter() - t0
    print(f"pass 1 (one pooled call): {crashes_pool} crashes, {nonzero_pool} non-zero, {pool_s:.1f} s", flush=True)

    times, crashes, nonzero = [], [], []
    for i, (c, g) in enumerate(zip(completions, golds, strict=True)):
        t = time.perf_counter()
        try:
            score = grade_batch([c], [g], timeout_s=args.timeout_s)[0]
            if score != 0.0:
                nonzero.append(i)
        except Exception as err:  # noqa: BLE001 - a crash is what is being counted
            crashes.append((i, repr(err)))
        times.append(time.perf_counter() - t)
    slowest = sorted(range(len(times)), key=times.__getitem__)[-5:][::-1]
    by_kind = {k: max(t for t, kk in zip(times, kinds, strict=True) if kk == k) for k in sorted(set(kinds))}
    result = {
        "n": len(completions), "timeout_s": args.timeout_s,
        "pooled": {"crashes": crashes_pool, "nonzero": nonzero_pool, "seconds": pool_s},
        "single": {"crashes": len(crashes), "nonzero": len(nonzero), "seconds": sum(times),
                   "slowest_s": times[slowest[0]], "slowest_kind": kinds[slowest[0]],
                   "slowest5": [(kinds[i], round(times[i], 3)) for i in slowest],
                   "max_s_by_kind": {k: round(v, 3) for k, v in by_kind.items()}},
        "machine": load_average(),
    }
    print(f"pass 2 (one item per call, in-process): {len(crashes)} crashes, {len(nonzero)} non-zero, "
          f"slowest single grade {times[slowest[0]]:.2f} s ({kinds[slowest[0]]}), total {sum(times):.1f} s")
    print("max seconds by kind:", result["single"]["max_s_by_kind"])
    print(load_average())
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
