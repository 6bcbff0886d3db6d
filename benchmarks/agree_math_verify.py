"""Where lens.rewards.grade_batch and plain Math-Verify 0.9.0 disagree, over realistic and adversarial completions.

    python benchmarks/agree_math_verify.py [--reference-python PY] [--math-n 300] [--show 40] [--out FILE.json]

Plain Math-Verify is ``math_verify.verify(parse(gold), parse(completion))`` with its defaults (gold
first). It runs in a child process of ``--reference-python`` (default: this interpreter). The
reference behaviour is Math-Verify on antlr4 4.13.2; the project venv has 4.11 (lm-eval pins it), so
for the reference build a second venv, e.g.

    python -m venv /tmp/mvref && /tmp/mvref/bin/pip install math-verify==0.9.0 \\
        antlr4-python3-runtime==4.13.2 latex2sympy2_extended==1.11.0 sympy==1.14.0
    python benchmarks/agree_math_verify.py --reference-python /tmp/mvref/bin/python

Cases: the hand-pinned and adversarial cases of tests/test_rewards.py; MATH test solutions against
their own answer and against another problem's answer; boxed intermediate results followed by "The
final answer is ..."; percentages written with %, \\%, percent, pct, percentage, \\text{...}; an
answer stated early in a long completion. Each disagreement is attributed to a rule that
docs/evaluation.md names, or reported as unexplained:

- ``gold-in-$``: plain Math-Verify agrees with us once the bare gold is wrapped in ``$...$``;
- a rule a case is tagged with (``screened``: answers graded 0.0 without parsing; ``multi-box``:
  several boxes together answer a multi-answer gold; ``fbox``: ``\\fbox{}`` read as ``\\boxed{}``;
  ``antlr-4.11``: only with a 4.11 reference, the percent cases 4.13.2 grades as we do).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from _common import DATA, load_average, read_jsonl

ROOT = Path(__file__).resolve().parents[1]

_REFERENCE = r"""
import json, logging, sys
logging.disable(logging.CRITICAL)
from importlib.metadata import version
from math_verify import parse, verify
cases = json.load(sys.stdin)
out = []
for c in cases:
    row = []
    for gold in (c["gold"], "$" + c["gold"] + "$"):
        try:
            row.append(float(verify(parse(gold), parse(c["completion"]))))
        except BaseException:  # noqa: BLE001 - a crash of the reference counts as a wrong answer
            row.append(0.0)
    out.append(row)
json.dump({"antlr": version("antlr4-python3-runtime"), "math_verify": version("math-verify"), "grades": out},
          sys.stdout)
"""

FILLER = ("Let me double-check this by going through the reasoning once more, carefully and slowly. "
          "Each step follows from the one before it, so nothing changes. ")
FILLER_MATH = ("Check: substituting back, the left side equals the right side, since $a + b = b + a$ "
               "and $x \\cdot y = y \\cdot x$ hold for every real $x$ and $y$. ")


def _test_cases() -> list[dict]:
    spec = importlib.util.spec_from_file_location("_test_rewards", ROOT / "tests" / "test_rewards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cases = [dict(kind="tests:hand", completion=c, gold=g) for c, g, _ in mod.CASES]
    cases += [dict(kind="tests:percent", completion=c, gold=g) for c, g, _ in mod.PERCENT_CASES]
    cases += [dict(kind="tests:adversarial", completion=c, gold="7", rule="screened") for c in mod.ADVERSARIAL]
    for c in cases:
        if "\\fbox" in c["completion"]:
            c["rule"] = "fbox"
        elif c["kind"] == "tests:hand" and c["completion"].count("\\boxed") > 1 and "," in c["gold"]:
            c["rule"] = "multi-box"
    return cases


def _math_cases(n: int, seed: int = 0) -> list[dict]:
    rows = read_jsonl(DATA / "math" / "test.jsonl")
    rng = random.Random(seed)
    rows = rng.sample(rows, min(n, len(rows)))
    other = rows[1:] + rows[:1]
    cases = [dict(kind="math:own-answer", completion=r["solution"], gold=r["answer"]) for r in rows]
    cases += [dict(kind="math:other-answer", completion=r["solution"], gold=o["answer"])
              for r, o in zip(rows, other, strict=True) if r["answer"] != o["answer"]]
    return cases


def _final_answer_cases() -> list[dict]:
    cases = []
    bodies = [
        "First, $a = \\boxed{3}$ and then $b = \\boxed{2}$. Adding them, $a + b = 5$.\n\n",
        "We find $x = \\boxed{3}$.\nThen $y = 2$, so $x + y = 5$.\n",
        "Step 1: \\boxed{3}\nStep 2: \\boxed{2}\n",
    ]
    finals = [
        "The final answer is $5$.",
        "The final answer is $5$",
        "The final answer is 5.",
        "Final Answer: The final answer is $5$. I hope it is correct.",
        "Therefore, the final answer is: $5$",
        "The final answer to this problem is $5$.",
        "The final answer is $\\frac{10}{2}$.",
    ]
    for body in bodies:
        for final in finals:
            for gold in ("5", "3", "2"):
                cases.append(dict(kind="final-answer-after-boxes", completion=body + final, gold=gold))
    # the other order: a final-answer sentence, then a box (the box comes later)
    for gold in ("5", "3"):
        cases.append(dict(kind="final-answer-after-boxes", gold=gold,
                          completion="The final answer is $3$. Wait, I made an error: it is $\\boxed{5}$."))
    return cases


def _percent_cases() -> list[dict]:
    cases = []
    words = ["%", "\\%", " %", " \\%", " percent", " pct", " percentage", "percent", "\\text{ percent}",
             "\\text{\\%}", " Percent", " \\text{pct}"]
    for w in words:
        for gold in ("20", "0.2", "20\\%", "21", "0.21"):
            cases.append(dict(kind="percent:boxed", completion=f"So the rate is $\\boxed{{20{w}}}$.", gold=gold))
            cases.append(dict(kind="percent:sentence", completion=f"So the rate is 20{w}.", gold=gold))
            cases.append(dict(kind="percent:final", completion=f"The final answer is $20{w}$.", gold=gold))
    for gold in ("20 percent", "20 pct", "20 percentage", "20%"):
        for pred in ("\\boxed{20}", "\\boxed{0.2}", "\\boxed{20\\%}", "\\boxed{21}"):
            cases.append(dict(kind="percent:gold", completion=pred, gold=gold))
    return cases


def _long_cases() -> list[dict]:
    cases = []
    answers = [
        "So the answer is $\\boxed{12}$.",
        "The final answer is $12$.",
        "Therefore the answer is 12.",
        "Final Answer: The final answer is $12$. I hope it is correct.",
    ]
    for chars in (1500, 6000, 20000):
        for filler in (FILLER, FILLER_MATH):
            tail = (filler * (chars // len(filler) + 1))[:chars]
            for ans in answers:
                for gold in ("12", "13"):
                    cases.append(dict(kind=f"long:{chars}", completion="We compute $3 \\cdot 4$. " + ans + " " + tail,
                                      gold=gold))
    return cases


def build_cases(math_n: int) -> list[dict]:
    return _test_cases() + _math_cases(math_n) + _final_answer_cases() + _percent_cases() + _long_cases()


def reference_grades(cases: list[dict], python: str) -> dict:
    proc = subprocess.run([python, "-c", _REFERENCE], input=json.dumps(cases), capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-python", default=sys.executable)
    parser.add_argument("--math-n", type=int, default=300, help="MATH test solutions sampled (seed 0)")
    parser.add_argument("--show", type=int, default=40, help="unexplained disagreements printed")
    parser.add_argument("--out")
    args = parser.parse_args()
    from lens.rewards import grade_batch

    cases = build_cases(args.math_n)
    print(f"{len(cases)} cases: {dict(Counter(c['kind'] for c in cases))}; {load_average()}", flush=True)
    ref = reference_grades(cases, args.reference_python)
    ours = grade_batch([c["completion"] for c in cases], [c["gold"] for c in cases])
    print(f"reference: math-verify {ref['math_verify']}, antlr4 {ref['antlr']} ({args.reference_python})")
    rows = []
    for c, mine, (plain, plain_wrapped) in zip(cases, ours, ref["grades"], strict=True):
        if mine == plain:
            continue
        if mine == plain_wrapped:
            rule = "gold-in-$"
        elif c.get("rule"):
            rule = c["rule"]
        elif c["kind"].startswith(("percent", "tests:percent")) and not ref["antlr"].startswith("4.13"):
            rule = "antlr-4.11?"  # only a 4.13.2 reference can tell; rerun with one
        else:
            rule = None
        rows.append(dict(kind=c["kind"], gold=c["gold"], completion=c["completion"], ours=mine, plain=plain,
                         plain_gold_in_dollars=plain_wrapped, rule=rule))
    named = Counter(r["rule"] for r in rows if r["rule"])
    unexplained = [r for r in rows if not r["rule"]]
    print(f"agree {len(cases) - len(rows)}/{len(cases)}; disagreements {len(rows)}: named rules {dict(named)}, "
          f"unexplained {len(unexplained)}")
    print("unexplained by kind:", dict(Counter(r["kind"] for r in unexplained)))
    for r in unexplained[: args.show]:
        text = r["completion"]
        text = text if len(text) <= 160 else text[:70] + f" ...[{len(text)} chars]... " + text[-70:]
        print(f"  [{r['kind']}] gold {r['gold']!r}: ours {r['ours']}, plain {r['plain']} | {text!r}")
    if args.out:
        Path(args.out).write_text(json.dumps({"n": len(cases),
                                              "reference": {k: ref[k] for k in ("antlr", "math_verify")},
                                              "disagreements": rows}, indent=1))


if __name__ == "__main__":
    main()
