"""Answer extraction and Math-Verify grading: 1.0 if a completion's final answer equals the gold one.

`grade_batch(completions, golds)` is the one entry point (the RL reward and the evaluator call it):

It grades as plain Math-Verify 0.9.0 on antlr 4.13.2, ``verify(parse(gold), parse(completion))``,
except for the rules docs/evaluation.md names (``benchmarks/agree_math_verify.py`` measures it):

- the prediction is what ``math_verify.parse`` extracts from the whole completion (its pattern
  priorities: "final answer is X. I hope", then boxes and "final answer ... is X", whichever ends
  last, then "answer" phrases, then any LaTeX or number), reimplemented in ``_extract`` so that
  candidates too long, too deeply nested or too explosive to parse make the item 0.0 unparsed, and
  only the last MAX_COMPLETION_CHARS characters are searched; when the gold holds several answers
  ("-2, 1") and that fails, all top-level boxes together are tried (MATH's own solutions box each
  answer separately);
- the gold is parsed first and passed first to ``math_verify.verify`` (it is not symmetric), bare
  gold answers are wrapped in ``$...$`` (a bare ``2\\sqrt3`` would parse as ``2``), and each distinct
  gold is parsed once per call (once per worker process for pooled batches);
- percentages: with antlr4 4.11 (which lm-eval[math] pins) latex2sympy fails on ``20\\%``; when it
  does, the part before the ``%`` is parsed and given the form 4.13.2 gives (``20 * (1/100)``,
  which ``verify`` compares as both 20 and 0.2);
- it never raises and never hangs: every item has a deadline of ``timeout_s`` (lens.deadline).
  Small batches in the main thread run in-process under a SIGALRM interval timer; large batches,
  and any call from a non-main thread, go to a pool of forked worker processes (Math-Verify's own
  timeouts need the main thread), and a worker that overruns a deadline by a margin (a hang in C code no signal can
  interrupt) is killed and replaced, its current item graded 0.0.

Benchmark: ``python benchmarks/bench_grading.py``; gold self-check: ``python benchmarks/grade_gold.py``.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import re
import threading
from typing import NamedTuple

from lens import answer_formats
from lens.answer_formats import DEFAULT, AnswerSpec
from lens.deadline import cpu_count, guarded, run_pool

DEFAULT_TIMEOUT_S = 5.0
# Batches at least this large use the process pool (when more than one core is available); below,
# the fork and IPC overhead (a few ms) is larger than what a second core saves.
POOL_MIN_ITEMS = 64
# A final answer longer than this is not a real answer; parsing it would only spend time.
MAX_ANSWER_CHARS = 1000
# Completions longer than this are graded on their last MAX_COMPLETION_CHARS characters only: it
# bounds the time of Math-Verify's extraction regexes (~10 ms per 100k characters, but up to
# seconds on some inputs), and 4096 generated tokens stay far below it.
MAX_COMPLETION_CHARS = 40_000
# Answers nested deeper than this ((((1)))), \\frac{\\frac{...}}) are graded 0.0 unparsed: the LaTeX
# parser's time grows steeply with depth (depth 16 of \\frac runs past 5 s), and no MATH gold answer
# is nested deeper than 3.
MAX_NESTING = 8
# Numbers sympy would try to expand (power towers, exponents or factorials of 100,000 and more):
# verify() runs to the deadline on them, so they are 0.0 at once.
_EXPLOSIVE_RE = re.compile(
    r"\^\s*\{?\s*\(?\s*[\d.]+\s*\)?\s*\^"  # 9^{9^{...}}: a numeric exponent raised again
    r"|\^\s*\{?\s*\d{6,}"  # 10^{100000000}
    r"|\d{6,}\s*\)?\s*!"  # 100000000!
    r"|\^\s*\{?\s*\d+\s*\}?\s*\)\s*!"  # (10^{8})!
)

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
# A trailing percent sign on an answer latex2sympy could not parse (antlr 4.11; see _parse_latex).
_PCT_TAIL_RE = re.compile(r"^(.*?)\s*\\?%$", re.DOTALL)

logging.getLogger("math_verify").setLevel(logging.ERROR)  # timeouts are expected and graded 0.0


class _Screened(Exception):
    """An extracted answer too long, too deeply nested or too explosive to parse: graded 0.0."""


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------
def boxed_contents(text: str) -> list[str]:
    """Contents of every top-level ``\\boxed{...}``/``\\fbox{...}`` in order (nested braces matched).

    Linear in len(text). Scanning stops at an unclosed box (the complete ones before it count).
    """
    found: list[str] = []
    pos = 0
    n = len(text)
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return found
        depth = 1
        i = m.end()
        while i < n and depth:
            c = text[i]
            if c == "\\":
                i += 2  # an escaped brace \{ does not open a group
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth:
            return found
        found.append(text[m.end(): i - 1])
        pos = i


def last_boxed(text: str) -> str | None:
    """Content of the last top-level ``\\boxed{...}``/``\\fbox{...}``, else None."""
    boxes = boxed_contents(text)
    return boxes[-1] if boxes else None


def _screen(answer: str) -> None:
    """Raise _Screened for an answer no grader should spend its deadline on (graded 0.0)."""
    if len(answer) > MAX_ANSWER_CHARS or _pathological(answer):
        raise _Screened(answer[:80])


def _nesting(text: str) -> int:
    depth = deepest = 0
    for c in text:
        if c in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")}]":
            depth = max(0, depth - 1)
    return deepest


def _pathological(answer: str) -> bool:
    """Answers no grader should spend its deadline on (see MAX_NESTING and _EXPLOSIVE_RE)."""
    return _nesting(answer) > MAX_NESTING or _EXPLOSIVE_RE.search(answer) is not None


_PATTERN_GROUPS: list | None = None


def _pattern_groups() -> list:
    """Math-Verify's extraction regexes for its default targets (LaTeX, then plain expressions),
    grouped by priority, most important first: exactly what ``math_verify.parse`` searches."""
    global _PATTERN_GROUPS
    if _PATTERN_GROUPS is None:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig
        from math_verify.parser import get_extraction_regexes

        targets = get_extraction_regexes([LatexExtractionConfig(), ExprExtractionConfig()])
        by_priority: dict = {}
        for patterns, target in targets:
            for pattern, priority in patterns:
                by_priority.setdefault(priority, []).append((pattern, target))
        _PATTERN_GROUPS = [by_priority[p] for p in sorted(by_priority)]
    return _PATTERN_GROUPS


def _parse_latex(latex: str):
    """Math-Verify's LaTeX parse, plus what antlr 4.11 cannot do: a trailing percent sign.

    On antlr 4.13.2 latex2sympy reads ``20\\%`` as ``20 * UnevaluatedExpr(1/100)`` (Math-Verify's
    percentage form, which its verify() compares as both 20 and 0.2); on 4.11 it raises. When the
    parse fails and the answer ends in ``%``/``\\%``, the rest is parsed and given that same form.
    """
    from math_verify.parser import convert_to_pct, parse_latex_cached

    _screen(latex)
    try:
        return parse_latex_cached(latex)
    except Exception:
        m = _PCT_TAIL_RE.match(latex)
        if m is None or not m.group(1).strip():
            raise
        return convert_to_pct(parse_latex_cached(m.group(1)))


def _extract_latex(match: re.Match, config) -> tuple:
    """``math_verify.parser.extract_latex`` (0.9.0) with _parse_latex: screening and percentages."""
    from dataclasses import replace

    from latex2sympy2_extended.math_normalization import normalize_latex
    from math_verify.parser import convert_to_pct
    from sympy import FiniteSet

    groups = match.groupdict()
    first = next(((v, k) for k, v in groups.items() if k.startswith("first_latex") and v), None)
    nexts = [next(((v, k) for k, v in groups.items() if k.startswith(f"next{i}_latex") and v), None)
             for i in range(1, 6)]
    exprs, strs = [], []
    for latex, name in [g for g in [first] + nexts if g is not None]:
        prefix, _, group_name = name.partition("_")
        is_percentage = bool(groups.get(f"{prefix}_percent"))
        norm_config = config.normalization_config
        if group_name == "latexBoxed":
            norm_config = replace(norm_config, boxed="last")
        # Only the normalised text (the box content for boxed candidates) is parsed, so only it is
        # screened (in _parse_latex), not the reasoning around it.
        normalized = normalize_latex(latex, config=norm_config)
        strs.append(normalized)
        try:
            parsed = _parse_latex(normalized)
            exprs.append(convert_to_pct(parsed) if is_percentage else parsed)
        except _Screened:
            raise
        except Exception:  # noqa: BLE001 - as Math-Verify: an unparsable candidate is skipped
            exprs.append(None)
    if not exprs:
        return None, ""
    if len(exprs) > 1 and all(e is not None for e in exprs):
        elements = []
        for e in exprs:
            elements.extend(e.args if isinstance(e, FiniteSet) else [e])
        return FiniteSet(*elements), " and ".join(strs)
    return exprs[0], strs[0]


def _extract(text: str) -> list:
    """``math_verify.parse(text)`` (0.9.0, default targets and modes), with _extract_latex.

    Every match of the highest-priority pattern group that has one is tried, the one ending last
    first, until one parses; that value comes first in the result, then the first matched string
    (Math-Verify's "first_match" fallback).
    """
    from math_verify import LatexExtractionConfig
    from math_verify.parser import extract_expr

    extracted, fallbacks = [], []
    for group in _pattern_groups():
        matches = sorted(((m, m.start(), m.end(), target) for pattern, target in group for m in pattern.finditer(text)),
                         key=lambda x: (x[2], -x[1]), reverse=True)
        for m, _, _, target in matches:
            if isinstance(target, LatexExtractionConfig):
                value, fallback = _extract_latex(m, target)
            else:
                if m.groupdict().get("expr"):
                    _screen(m.group("expr"))
                value, fallback = extract_expr(m)
            if fallback:
                fallbacks.append(fallback)
            if value is not None:
                extracted.append(value)
                break
        if extracted:
            break
    if fallbacks:
        extracted.append(fallbacks[0])
    return extracted


def _gold_text(gold: str) -> str:
    s = str(gold)
    if "\\boxed" in s or "\\fbox" in s:
        boxed = last_boxed(s)
        s = boxed if boxed is not None else s
    return "$" + s.strip().strip("$").strip() + "$"


# --------------------------------------------------------------------------------------------
# One item
# --------------------------------------------------------------------------------------------
class _Gold(NamedTuple):
    """A gold answer parsed once for its format (lens.answer_formats)."""

    parsed: list  # Math-Verify's parse of the normalised gold ([] when it cannot parse it)
    number: tuple[float, float] | None  # (value, absolute tolerance) when compared as a number
    text: str  # the normalised gold: compared as text when Math-Verify cannot parse it
    spec: AnswerSpec


def _parse_gold(gold: str, spec: AnswerSpec = DEFAULT) -> _Gold:
    # the tolerance reads the gold as written (`1.6e-19`, before normalising to 1.6 \\times 10^{-19}):
    # Math-Verify's own comparison rounds to 6 decimals, so every tiny number would equal every other
    number = answer_formats.numeric_tolerance(str(gold), spec)
    text = answer_formats.normalize(str(gold), spec.format)
    return _Gold([] if number else _extract(_gold_text(text)), number, text, spec)


def _squash(text: str) -> str:
    """Text compared when Math-Verify cannot parse the gold: no whitespace, `$`, \\left/\\right."""
    return re.sub(r"\\left|\\right|[\s$]", "", text)


def _number_of(pred: list) -> float | None:
    """The numeric value of an extracted prediction (a sympy number, or a one-element set of one)."""
    import sympy

    for value in pred:
        if isinstance(value, str):
            number = answer_formats.plain_number(value)
            if number is not None:
                return number
            continue
        if isinstance(value, (sympy.FiniteSet, sympy.Tuple)) and len(value.args) == 1:
            value = value.args[0]
        if isinstance(value, sympy.Eq) and isinstance(value.lhs, sympy.Symbol):  # `v = 2.5`: its value
            value = value.rhs
        try:
            if isinstance(value, sympy.Basic) and not value.free_symbols:
                number = complex(value.evalf())
                if number.imag == 0:
                    return number.real
        except (TypeError, ValueError, AttributeError):
            continue
    return None


def _grade_parsed(gold: _Gold, completion: str) -> float:
    from math_verify import verify

    if not isinstance(completion, str):
        return 0.0
    text = answer_formats.normalize(completion[-MAX_COMPLETION_CHARS:], gold.spec.format)
    if gold.number is not None:
        pred = _extract(text)
        written = next((p for p in reversed(pred) if isinstance(p, str)), "")
        value = _number_of(pred) if answer_formats.numeric_text(written) else None
        return 1.0 if value is not None and answer_formats.within(value, *gold.number) else 0.0
    if not gold.parsed:
        box = last_boxed(text)
        return 1.0 if box is not None and gold.text.strip() and _squash(box) == _squash(gold.text) else 0.0
    pred = _extract(text)
    if pred and verify(gold.parsed, pred, timeout_seconds=None):
        return 1.0
    if _is_multi_answer(gold.parsed):
        # A gold with several answers ("-2, 1") is often written with one box per answer, as MATH's
        # own solutions do; then the boxes together are the answer (the gold is a set, order-free).
        boxes = boxed_contents(text)
        if len(boxes) > 1:
            pred = _extract("\\boxed{" + ", ".join(boxes) + "}")
            if pred and verify(gold.parsed, pred, timeout_seconds=None):
                return 1.0
    return 0.0


def _is_multi_answer(gold_parsed: list) -> bool:
    import sympy

    return bool(gold_parsed) and isinstance(gold_parsed[0], (sympy.FiniteSet, sympy.Tuple)) \
        and len(gold_parsed[0].args) > 1


def _grade_items(items, send=None, *, timeout_s: float, gold_cache: dict) -> list[tuple[int, float]]:
    """Grade (idx, gold, completion, spec) items in this process under per-item deadlines."""
    out = []
    for idx, gold, completion, spec in items:
        if (gold, spec) not in gold_cache:
            unparsed = _Gold([], None, "", spec)  # a gold that runs out of time grades every answer 0.0
            gold_cache[gold, spec] = guarded(_parse_gold, gold, spec, timeout_s=timeout_s, default=unparsed)
        score = guarded(_grade_parsed, gold_cache[gold, spec], completion, timeout_s=timeout_s, default=0.0)
        if send is not None:
            send((idx, score))
        out.append((idx, score))
    return out


# --------------------------------------------------------------------------------------------
# Process pool (lens.deadline)
# --------------------------------------------------------------------------------------------
_WARM = False


def _warm_up() -> None:
    """Build Math-Verify's lazily created LaTeX parser once, before forking, so every worker inherits
    it instead of paying ~1 s on its first item (which a short deadline would grade 0.0)."""
    global _WARM
    if not _WARM:
        try:
            _grade_parsed(_parse_gold("\\frac{1}{2}"), "\\boxed{0.5}")
        except Exception:  # noqa: BLE001 - warm-up only
            pass
        _WARM = True


def _grade_pool(items: list, timeout_s: float, n_workers: int, progress=None) -> dict[int, float]:
    """Grade (idx, gold, completion, spec) items in forked workers; each worker parses each gold once
    (the gold cache below is copied empty into every worker at its fork)."""
    _warm_up()
    work = functools.partial(_grade_items, timeout_s=timeout_s, gold_cache={})
    # Per item a worker runs two deadlines of timeout_s (gold parse, then grade).
    return run_pool(items, work, item_limit_s=2 * timeout_s, n_workers=n_workers, default=0.0, progress=progress)


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def grade_batch(
    completions: list[str],
    golds: list[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    progress=None,
    specs: list[AnswerSpec] | None = None,
) -> list[float]:
    """1.0/0.0 per (completion, gold) pair: does the completion's final answer equal the gold answer?

    Never raises for any completion (non-strings included) and never runs much past `timeout_s` per
    item. `workers`: processes for a pooled batch (default: all cores; 1 forces in-process grading
    in the main thread). `progress`: optional callable given the number of items just graded.
    `specs`: one lens.answer_formats.AnswerSpec per pair (default: MATH's rules for every pair).
    """
    if len(completions) != len(golds):
        raise ValueError(f"grade_batch: {len(completions)} completions but {len(golds)} golds")
    if specs is not None and len(specs) != len(golds):
        raise ValueError(f"grade_batch: {len(specs)} answer specs for {len(golds)} golds")
    n = len(completions)
    if n == 0:
        return []
    specs = specs if specs is not None else [DEFAULT] * n
    items = [(i, str(g), c if isinstance(c, str) else "", spec or DEFAULT)
             for i, (c, g, spec) in enumerate(zip(completions, golds, specs, strict=True))]
    n_workers = cpu_count() if workers is None else max(1, workers)
    main_thread = threading.current_thread() is threading.main_thread()
    use_pool = not main_thread or (n >= POOL_MIN_ITEMS and n_workers > 1)
    if use_pool and mp.current_process().daemon:
        use_pool = False  # a daemonic process may not have children
    if not use_pool:
        if main_thread:
            scored = _grade_items(items, timeout_s=timeout_s, gold_cache={})
            if progress is not None:
                progress(n)
            return [s for _, s in sorted(scored)]
        # Neither signals nor children available (a thread inside a daemonic worker): no deadline
        # can be enforced, so grade only what cannot run long (short boxed answers).
        return [_grade_unguarded(g, c, spec) for _, g, c, spec in items]
    results = _grade_pool(items, timeout_s, max(1, min(n_workers, n)), progress)
    return [results.get(i, 0.0) for i in range(n)]


def _grade_unguarded(gold: str, completion: str, spec: AnswerSpec = DEFAULT) -> float:
    box = last_boxed(completion)
    if box is None or len(box) > 200 or "^" in box or "!" in box or len(completion) > 20_000:
        return 0.0
    try:
        return _grade_parsed(_parse_gold(gold, spec), completion)
    except Exception:  # noqa: BLE001 - a grader never crashes on model output: anything unforeseen is wrong
        return 0.0
