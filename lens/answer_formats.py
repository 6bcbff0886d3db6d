"""Answer formats beyond MATH's: what counts as the same answer on Minerva Math and OlympiadBench.

Not a command; pure text and number rules (no sympy, no Math-Verify), used by lens.rewards before and
instead of Math-Verify's comparison. docs/evaluation.md gives each rule with its reason; a dataset of
the table (lens.datasets, `Dataset.answer_format`) names its format, and each problem's `AnswerSpec`
carries what its row adds (OlympiadBench's `error` tolerance).

- ``math`` (MATH, MATH-500, AIME, AMC, the synthetic set): Math-Verify's comparison, unchanged.
- ``minerva``: a gold written as a plain number (`0.10`, `4.5e33`, `+2`) is compared as a number with
  the relative tolerance of `numeric_tolerance` (the references are rounded); other golds go to
  Math-Verify after `normalize`, which turns e-notation into ``\\times 10^{}`` (Math-Verify reads
  `1e-5` as Euler's e minus 5) and the Python syntax of a few golds (`np.arcsin`, `-1./3`,
  `\\exp{a*t}`, `*`) into LaTeX.
- ``olympiadbench``: Math-Verify after `normalize`, which drops percent signs (`62.5%` and `62.5`
  are one answer: the unit is the question's) and keeps a one-letter variable after a number a
  factor (`6m`: Math-Verify would strip `m` as metres); a row's `error` (an absolute tolerance)
  compares as a number within it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

FORMATS = ("math", "minerva", "olympiadbench")

# Minerva: a numeric answer within 1 % of the gold, or, for a gold written with a decimal point or an
# exponent, within its own rounding (half a unit in its last written digit: `1.6` stands for
# 1.55-1.65) but never more than 5 % (a one-digit gold such as `1e-5` would otherwise accept anything
# from 0.5e-5 to 1.5e-5). Integer golds (`2`, `300`) get the 1 % only.
MINERVA_REL_TOL = 0.01
MINERVA_MAX_ROUNDING = 0.05

# A plain number as the golds write it: sign, digits with an optional decimal point, e-notation.
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
NUMBER_RE = re.compile(_NUMBER)
# e-notation inside a longer text, not part of a word or another number (`4.5e33`, `1e-5`).
_E_NOTATION_RE = re.compile(r"(?<![\w.\\])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
# Python's `1./3`: a decimal point before an operator or closing bracket, not before a digit.
_BARE_POINT_RE = re.compile(r"(\d)\.(?=\s*[/*)}\s]|$)")
_EXP_BRACE_RE = re.compile(r"\\exp\s*\{")
_PERCENT_RE = re.compile(r"\\?%")
# What a number's written form may hold besides digits (numeric_text): units in text macros, the
# macros of numbers, and one variable naming it (`v = `, `E_{0} = `; not an equation's side, `y' + r y = `).
_NAMED_VALUE_RE = re.compile(r"^\s*\\?[A-Za-z]+(?:_\{?\w+\}?)?\s*=")
_UNIT_MACRO_RE = re.compile(r"\\(?:mathrm|text|textrm|mbox|operatorname)\s*\{[^{}]*\}")
_NUMBER_MACRO_RE = re.compile(r"\\(?:times|cdot|d?t?frac|sqrt|pi|left|right|approx|quad|[,;:! ])")
# A number times a one-letter variable (`6m`, `2 n`): Math-Verify would drop the letter as a unit
# (metres, seconds); a thin space before it keeps it a factor.
_NUMBER_VARIABLE_RE = re.compile(r"(\d)\s*([a-zA-Z])(?![a-zA-Z])")


@dataclass(frozen=True)
class AnswerSpec:
    """How one problem's answers are compared: its set's format and the row's own tolerance."""

    format: str = "math"
    abs_tol: float | None = None  # OlympiadBench's `error`: numbers within it are equal


DEFAULT = AnswerSpec()


def spec_for(answer_format: str, row: dict) -> AnswerSpec:
    """The spec of one problem row of a dataset whose format is `answer_format`."""
    if answer_format not in FORMATS:
        raise ValueError(f"unknown answer format {answer_format!r}; valid: {list(FORMATS)}")
    tol = row.get("answer_tol")
    return AnswerSpec(answer_format, float(tol) if tol not in (None, "") else None)


def _replace_exp_braces(text: str) -> str:
    """`\\exp{a*t}` -> `e^{a*t}` (the braces balanced, so `\\exp{-a*(t+1)}` keeps its argument)."""
    out, pos = [], 0
    for m in _EXP_BRACE_RE.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos:m.start()] + "e^{")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def normalize(text: str, answer_format: str) -> str:
    """The text Math-Verify reads for a gold or a completion of this format (`math`: unchanged)."""
    if answer_format == "minerva":
        text = _E_NOTATION_RE.sub(lambda m: f"{m.group(1)} \\times 10^{{{int(m.group(2))}}}", text)
        text = text.replace("np.", "\\")  # np.arcsin -> \arcsin
        text = _replace_exp_braces(text).replace("*", " \\cdot ")  # `a*t`; a bare space would read `2 3` as 23
        return _BARE_POINT_RE.sub(r"\1", text)
    if answer_format == "olympiadbench":
        return _NUMBER_VARIABLE_RE.sub(r"\1\\,\2", _PERCENT_RE.sub("", text))
    return text


def numeric_text(text: str) -> bool:
    """Whether an answer's text is a number as written (`1.6 \\times 10^{-19} \\mathrm{~C}`, `v = 2.5`,
    `\\frac{1}{2}`), not an expression with letters in it: Math-Verify falls back to the last number of
    a text it cannot parse (`\\hbar \\omega(v+1/2) - ...^{2}` gives 2), which a tolerance must not take."""
    body = _UNIT_MACRO_RE.sub("", _NAMED_VALUE_RE.sub("", text))
    return re.search(r"[A-Za-z]", _NUMBER_MACRO_RE.sub("", body)) is None


def plain_number(text: str) -> float | None:
    """The value of a gold written as a plain number (`27`, `-0.10`, `4.5e33`), else None."""
    text = text.strip().strip("$").strip()
    if not NUMBER_RE.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def rounding_half_unit(text: str) -> float:
    """Half a unit in the last written digit of a plain number: `1.6` -> 0.05, `4.5e33` -> 0.05e33,
    `0.10` -> 0.005 (trailing zeros after the point count), `300` -> 0.5 (an integer's are exact)."""
    text = text.strip().strip("$").strip().lstrip("+-")
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def numeric_tolerance(gold: str, spec: AnswerSpec) -> tuple[float, float] | None:
    """(value, absolute tolerance) when `gold` is compared as a number under `spec`, else None."""
    value = plain_number(gold)
    if value is None:
        return None
    if spec.abs_tol is not None:
        return value, spec.abs_tol
    if spec.format == "minerva":
        # an integer gold (`2`, `300`) is taken as exact: only the relative tolerance applies
        written = re.search(r"[.eE]", gold) is not None
        rounding = min(rounding_half_unit(gold), MINERVA_MAX_ROUNDING * abs(value)) if written else 0.0
        return value, max(MINERVA_REL_TOL * abs(value), rounding)
    return None


def within(prediction: float, gold: float, tol: float) -> bool:
    """|prediction - gold| <= tol, with a relative slack of 1e-12 for the float arithmetic."""
    return math.isfinite(prediction) and abs(prediction - gold) <= tol * (1 + 1e-12) + 1e-300


def distinct_golds(gold: str, other: str, spec: AnswerSpec) -> bool:
    """Two golds of one set that must not grade each other 1 (the cross-swap's pairs): numbers further
    apart than `gold`'s tolerance under `spec` (exact without one), else texts that differ beyond
    spacing. Independent of Math-Verify, so it can check it."""
    a, b = plain_number(gold), plain_number(other)
    if a is not None and b is not None:
        tol = numeric_tolerance(gold, spec)
        return abs(a - b) > (tol[1] * 1.001 if tol else 0.0)
    return "".join(gold.split()) != "".join(other.split())
