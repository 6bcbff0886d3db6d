"""lens.rewards: extraction, Math-Verify grading pinned by hand, percentages, and never raising/hanging."""

import multiprocessing as mp
import signal
import threading
import time

import pytest

from lens import deadline, rewards
from lens.rewards import boxed_contents, grade_batch, last_boxed


# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("so $\\boxed{5}$.", "5"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("first \\boxed{3} then \\boxed{7}", "7"),  # the last box wins
    ("\\boxed{\\boxed{5}}", "\\boxed{5}"),  # last *top-level* box
    ("\\fbox{x+1}", "x+1"),
    ("\\boxed {4}", "4"),
    ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces are not groups
    ("\\boxed{3} and \\boxed{4", "3"),  # unclosed last box: the last complete one
    ("no box here", None),
    ("", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


def test_boxed_contents_lists_top_level_boxes():
    assert boxed_contents("$x=\\boxed{-2}$ or $x=\\boxed{1}$, \\fbox{\\boxed{3}}") == ["-2", "1", "\\boxed{3}"]
    assert boxed_contents("\\boxed{1} \\boxed{2") == ["1"]


# ---------------------------------------------------------------------------------------------
# grading, pinned by hand
# ---------------------------------------------------------------------------------------------
CASES = [
    # (completion, gold, expected)
    ("The answer is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", 1.0),
    ("\\boxed{0.5}", "\\frac12", 1.0),
    ("\\boxed{2\\sqrt{3}}", "2\\sqrt3", 1.0),
    ("\\boxed{2}", "2\\sqrt3", 0.0),  # a bare gold 2\sqrt3 must not parse as 2
    ("\\boxed{3} ... so finally \\boxed{5}", "5", 1.0),
    ("\\boxed{3} ... so finally \\boxed{5}", "3", 0.0),
    ("\\boxed{\\boxed{5}}", "5", 1.0),
    ("\\boxed{(1, 2)}", "(1,2)", 1.0),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", 1.0),
    ("\\boxed{4}", "5", 0.0),
    ("Therefore the answer is 12.", "12", 1.0),  # no box: Math-Verify's own extraction on the tail
    ("\\boxed{}", "0", 0.0),
    # several answers boxed one by one, as MATH's solutions do: together they are the answer
    ("$x = \\boxed{-2}$ or $x = \\boxed{1}$", "-2, 1", 1.0),
    ("$x = \\boxed{1}$ or $x = \\boxed{-2}$", "-2, 1", 1.0),
    ("$x = \\boxed{1}$", "-2, 1", 0.0),
    ("$x = \\boxed{3}$ or $x = \\boxed{1}$", "-2, 1", 0.0),
    # as Math-Verify: boxes less than 70 characters apart with a comma/"and"/"or" between them are
    # read together ("2, 5"), so a self-correction written this way is not the answer 5
    ("\\boxed{2} is wrong, it is \\boxed{5}", "5", 0.0),
    ("\\boxed{5} is wrong, it is \\boxed{2}", "5", 0.0),  # joining boxes is only for multi-answer golds
]


@pytest.mark.parametrize("completion,gold,expected", CASES)
def test_grade_hand_cases(completion, gold, expected):
    assert grade_batch([completion], [gold]) == [expected]


PERCENT_CASES = [
    # antlr4 4.11 breaks these inside Math-Verify; lens.rewards normalises the percent sign itself.
    ("\\boxed{20\\%}", "20", 1.0),
    ("\\boxed{28\\%}", "0.28", 1.0),
    ("\\boxed{20}", "20\\%", 1.0),
    ("\\boxed{0.2}", "20\\%", 1.0),
    ("\\boxed{7.2\\%}", "7.2\\%", 1.0),
    ("\\boxed{21\\%}", "20", 0.0),
    ("\\boxed{28\\%}", "0.27", 0.0),
    ("\\boxed{30 \\%}", "0.2", 0.0),
]


@pytest.mark.parametrize("completion,gold,expected", PERCENT_CASES)
def test_grade_percentages_with_pinned_antlr(completion, gold, expected):
    assert grade_batch([completion], [gold]) == [expected]


# ---------------------------------------------------------------------------------------------
# agreement with plain Math-Verify 0.9.0: verify(parse(gold), parse(completion)), gold first
# (benchmarks/agree_math_verify.py runs these and ~950 more cases against it)
# ---------------------------------------------------------------------------------------------
def _plain_math_verify(completion: str, gold: str) -> float:
    from math_verify import parse, verify

    return float(verify(parse(gold), parse(completion)))


_LONG_TAIL = " Let me double-check this by going through the reasoning once more, slowly." * 120  # ~9k chars

AGREEMENT_CASES = [
    # (completion, gold, expected by hand)
    # 1. "The final answer is $X$" after boxed intermediate results: Math-Verify ranks the
    #    final-answer sentence with the boxes and takes whichever ends last, so X is the answer
    ("First, $a = \\boxed{3}$ and $b = \\boxed{2}$, so $a + b = 5$.\n\nThe final answer is $5$.", "5", 1.0),
    ("First, $a = \\boxed{3}$ and $b = \\boxed{2}$, so $a + b = 5$.\n\nThe final answer is $5$.", "2", 0.0),
    ("We find $x = \\boxed{3}$.\nFinal Answer: The final answer is $5$. I hope it is correct.", "5", 1.0),
    ("We find $x = \\boxed{3}$.\nFinal Answer: The final answer is $5$. I hope it is correct.", "3", 0.0),
    ("The final answer is $3$. Wait, that was wrong: it is $\\boxed{5}$.", "5", 1.0),  # the box ends last
    # 2. percentage words Math-Verify knows besides "percent": pct, percentage (x% = x = x/100)
    ("So the rate is 20 pct.", "0.2", 1.0),
    ("So the rate is 20 percentage.", "0.2", 1.0),
    ("So the rate is $\\boxed{20 pct}$.", "20", 1.0),
    ("So the rate is $\\boxed{20 pct}$.", "0.21", 0.0),
    # ... and \text{...} is dropped by its normalisation, so "20\text{ percent}" is just 20
    ("So the rate is $\\boxed{20\\text{ percent}}$.", "20", 1.0),
    ("So the rate is $\\boxed{20\\text{ percent}}$.", "0.2", 0.0),
    # 3. an answer far before the end of a long completion: the whole text is searched
    ("We compute $3 \\cdot 4$. So the answer is $\\boxed{12}$." + _LONG_TAIL, "12", 1.0),
    ("We compute $3 \\cdot 4$. Therefore the answer is 12." + _LONG_TAIL, "12", 1.0),
    ("We compute $3 \\cdot 4$. Therefore the answer is 12." + _LONG_TAIL, "13", 0.0),
]


@pytest.mark.parametrize("completion,gold,expected", AGREEMENT_CASES)
def test_agrees_with_plain_math_verify(completion, gold, expected):
    ours = grade_batch([completion], [gold], workers=1)[0]
    assert ours == expected
    plain = _plain_math_verify(completion, gold)
    if "\\boxed{20 pct}" in completion:
        # On antlr 4.11 (pinned, see below) plain Math-Verify cannot parse a boxed percentage and
        # grades it 0.0; on 4.13.2 it grades as `expected` (checked with benchmarks/agree_math_verify.py).
        assert plain == 0.0
    else:
        assert plain == expected


def test_long_completion_is_cut_to_its_tail():
    # Beyond MAX_COMPLETION_CHARS only the end is searched (bounded regex time); 4096 tokens stay below it.
    head = "So the answer is $\\boxed{12}$."
    filler = " Nothing more to add here." * (rewards.MAX_COMPLETION_CHARS // 20)
    assert grade_batch([head + filler], ["12"], workers=1) == [0.0]
    assert grade_batch([head + filler[: rewards.MAX_COMPLETION_CHARS - 2 * len(head)]], ["12"], workers=1) == [1.0]


def test_antlr_pin_is_the_one_lm_eval_needs():
    from importlib.metadata import version

    # The percent handling above exists because of this pin; if it changes, re-check the cases.
    assert version("antlr4-python3-runtime").startswith("4.11")


@pytest.mark.parametrize("answer,expected", [
    ("9^{9^{9^{9}}}", True), ("10^{100000000}", True), ("100000000!", True), ("(10^{8})!", True),
    ("(" * 9 + "1" + ")" * 9, True), ("\\frac{" * 9 + "1" + "}{2}" * 9, True),
    ("2^{2010}", False), ("10!", False), ("\\left(\\frac{\\sqrt{3}}{2}, \\frac{1}{2}\\right)", False),
    ("(" * 8 + "1" + ")" * 8, False),
])
def test_pathological_answers_are_screened(answer, expected):
    assert rewards._pathological(answer) is expected


def test_input_validation_and_empty():
    assert grade_batch([], []) == []
    with pytest.raises(ValueError):
        grade_batch(["\\boxed{1}"], [])


def test_non_string_completions_grade_zero():
    assert grade_batch([None, 5, b"\\boxed{5}"], ["5", "5", "5"]) == [0.0, 0.0, 0.0]


def test_each_distinct_gold_parsed_once(monkeypatch):
    calls = []
    real = rewards._parse_gold
    monkeypatch.setattr(rewards, "_parse_gold", lambda g, spec: calls.append(g) or real(g, spec))
    completions = ["\\boxed{1}", "\\boxed{2}"] * 8
    out = grade_batch(completions, ["1"] * 8 + ["2"] * 8, workers=1)
    assert sorted(calls) == ["1", "2"]
    assert out == [1.0, 0.0] * 4 + [0.0, 1.0] * 4


def test_chunks_keep_a_gold_together():
    items = [(i, f"g{i // 16}", "x") for i in range(64)]
    chunks = deadline.chunks(items, n_workers=2)
    for chunk in chunks:
        assert len({g for _, g, _ in chunk}) == 1
    assert sorted(i for c in chunks for i, _, _ in c) == list(range(64))


# ---------------------------------------------------------------------------------------------
# pool, threads, processes
# ---------------------------------------------------------------------------------------------
def _batch(n):
    completions, golds, expected = [], [], []
    for i in range(n):
        completions.append(f"We get $\\boxed{{{i}}}$." if i % 3 else f"\\boxed{{{i + 1}}}")
        golds.append(str(i))
        expected.append(1.0 if i % 3 else 0.0)
    return completions, golds, expected


def test_pool_agrees_with_in_process():
    completions, golds, expected = _batch(96)
    assert grade_batch(completions, golds, workers=2) == expected
    assert grade_batch(completions, golds, workers=1) == expected


def test_from_a_worker_thread():
    completions, golds, expected = _batch(10)
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("out", grade_batch(completions, golds, timeout_s=2)))
    thread.start()
    thread.join(120)
    assert box["out"] == expected


def _grade_in_child(args):
    return grade_batch(*args, timeout_s=2)


def test_from_daemonic_pool_workers():
    completions, golds, expected = _batch(70)
    with mp.get_context("fork").Pool(2) as pool:  # daemonic workers: no children allowed there
        out = pool.map(_grade_in_child, [(completions, golds), (completions[:5], golds[:5])])
    assert out == [expected, expected[:5]]


def test_progress_callback_counts_every_item():
    completions, golds, _ = _batch(80)
    seen = []
    grade_batch(completions, golds, workers=2, progress=seen.append)
    assert sum(seen) == 80


def _hang_in_c(gold_parsed, completion):
    # SIGALRM blocked + sleep: like a C routine no Python signal handler can interrupt.
    if completion == "HANG":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    return _real_grade(gold_parsed, completion)


_real_grade = rewards._grade_parsed


@pytest.mark.slow
def test_pool_kills_a_stuck_worker_and_keeps_the_rest(monkeypatch):
    monkeypatch.setattr(rewards, "_grade_parsed", _hang_in_c)  # forked workers inherit the patch
    monkeypatch.setattr(deadline, "HARD_LIMIT_SLACK_S", 2.0)
    completions = ["\\boxed{1}", "HANG", "\\boxed{3}", "\\boxed{4}"] * 16
    golds = ["1", "2", "3", "5"] * 16
    expected = [1.0, 0.0, 1.0, 0.0] * 16
    completions[5] = "HANG"  # a second hang in the same chunk as the first
    expected[5] = 0.0
    out = grade_batch(completions[:8] + ["\\boxed{9}"] * 56, golds[:8] + ["9"] * 56, timeout_s=0.2, workers=2)
    assert out == expected[:8] + [1.0] * 56


# ---------------------------------------------------------------------------------------------
# adversarial input: 0.0, no exception, bounded time (not asserted: tests never time things)
# ---------------------------------------------------------------------------------------------
ADVERSARIAL = [
    "",
    "\\boxed{",
    "}}}}{{{\\boxed{1}}",
    "\\boxed{\\frac{1}{",
    "x" * 100_000,
    "\\boxed{" + "1+" * 50_000 + "1}",
    "\\frac{" * 300 + "1" + "}{2}" * 300,
    "\\boxed{" + "\\frac{" * 300 + "1" + "}{2}" * 300 + "}",
    "\\boxed{" + "\\sqrt{" * 400 + "2" + "}" * 400 + "}",
    "\u202e\u0000\ufffd\U0001f600 \\boxed{\u00bd\u2212\u221e}",
    "\\boxed{\\boxed{\\boxed{}}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^{8})!}",
    "$" * 5000,
    "\\begin{pmatrix}" * 200,
]


def test_adversarial_completions_grade_zero_in_process():
    golds = ["7"] * len(ADVERSARIAL)
    assert grade_batch(ADVERSARIAL, golds, timeout_s=1.0, workers=1) == [0.0] * len(ADVERSARIAL)


def test_adversarial_completions_grade_zero_in_pool():
    completions = ADVERSARIAL * 5
    assert grade_batch(completions, ["7"] * len(completions), timeout_s=1.0, workers=2) == [0.0] * len(completions)


def test_adversarial_golds_do_not_raise():
    golds = ["", "\\frac{", "}{", "x" * 5000, "\\boxed{"]
    assert grade_batch(["\\boxed{1}"] * len(golds), golds, timeout_s=1.0) == [0.0] * len(golds)
