"""The five benchmarks RLVR papers report beside MATH: their readers (local files and hub rows in each
hub dataset's own schema) and the grading of their answer formats (lens.answer_formats,
docs/evaluation.md): every gold grades 1 against itself boxed, 0 against the other golds of its set
(a cross-swap), and hand-written equivalent and non-equivalent forms per format."""

import itertools
import json
import random

import pytest
from helpers import DATA

from lens import answer_formats
from lens import data as lens_data
from lens import datasets as dataset_table
from lens.answer_formats import AnswerSpec, spec_for
from lens.config import DatasetConfig
from lens.data import load_dataset, load_problems
from lens.rewards import grade_batch

needs_data = pytest.mark.skipif(not (DATA / "aime" / "aime24.jsonl").exists(),
                                reason=f"shared data not found at {DATA}")

# name -> (folder under shared/data, problems, format)
SETS = {"aime24": ("aime", 30, "math"), "aime25": ("aime", 30, "math"), "amc23": ("amc", 40, "math"),
        "minerva": ("minerva", 272, "minerva"), "olympiadbench": ("olympiadbench", 675, "olympiadbench")}
# Cross-swap pairs graded per set: all of AIME's and AMC's, a fixed sample of the larger two (all
# their pairs: benchmarks/grade_benchmarks.py).
CROSS_PAIRS = 400


def problems_of(name: str) -> list[dict]:
    return load_problems(DatasetConfig(name, str(DATA / SETS[name][0])))


def specs_of(name: str, problems: list[dict]) -> list[AnswerSpec]:
    return [spec_for(dataset_table.get(name).answer_format, p) for p in problems]


# ---------------------------------------------------------------------------------------------
# The dataset table and the readers
# ---------------------------------------------------------------------------------------------
@needs_data
@pytest.mark.parametrize("name", list(SETS))
def test_local_reader_gives_every_problem_in_the_shared_schema(name):
    folder, n, answer_format = SETS[name]
    problems, report = load_dataset(DatasetConfig(name, str(DATA / folder)))
    assert len(problems) == n and report["rows"] == n and set(report["dropped_by_filter"].values()) == {0}
    assert all(p["level"] is None for p in problems)  # no levels: overall accuracy (and subjects)
    assert len({p["id"] for p in problems}) == n
    assert dataset_table.get(name).answer_format == answer_format
    # the file itself and the folder holding it read the same
    file = next((DATA / folder).glob(f"{name}*.jsonl"))
    assert load_problems(DatasetConfig(name, str(file))) == problems


@needs_data
def test_subjects_and_tolerances_kept():
    minerva = problems_of("minerva")
    assert {p["subject"] for p in minerva} >= {"Introduction to Astronomy (8.282J Spring 2006)"}
    olympiad = {p["id"]: p for p in problems_of("olympiadbench")}
    assert {p["subject"] for p in olympiad.values()} == {"Algebra", "Combinatorics", "Geometry", "Number Theory"}
    assert [k for k, p in olympiad.items() if "answer_tol" in p] == ["olympiadbench-2592"]
    assert olympiad["olympiadbench-2592"]["answer_tol"] == 0.1


def test_labels_and_benchmark_ids():
    assert dataset_table.benchmark_label("aime24_test") == "AIME 2024"
    assert dataset_table.benchmark_label("olympiadbench_test") == "OlympiadBench"
    assert DatasetConfig("minerva", "x").id == "minerva_test"
    assert dataset_table.check() == []


def _hub(monkeypatch, rows, seen):
    def load(ds, *args, **kw):
        seen.append((args, kw))
        return rows
    monkeypatch.setattr(lens_data, "_hub_load", load)


def test_hub_readers_normalise_answers_as_the_local_files(monkeypatch):
    seen = []
    # HuggingFaceH4/aime_2024: zero-padded answers become "25"
    _hub(monkeypatch, [{"id": 67, "problem": "P", "solution": "S", "answer": "025", "url": "u", "year": 2024}], seen)
    [p] = load_problems(DatasetConfig("aime24", "HuggingFaceH4/aime_2024"))
    assert (p["id"], p["answer"], p["level"]) == ("aime24-67", "25", None)
    # math-ai/amc23: float answers become integer strings, the negative one too
    _hub(monkeypatch, [{"id": 0, "question": "Q", "answer": 27.0}, {"id": 17, "question": "R", "answer": -1.0}], seen)
    assert [(p["id"], p["problem"], p["answer"]) for p in load_problems(DatasetConfig("amc23", "math-ai/amc23"))] \
        == [("amc23-0", "Q", "27"), ("amc23-17", "R", "-1")]
    # Hothan/OlympiadBench: `$` stripped, inner ones too; the error becomes the gold's tolerance
    _hub(monkeypatch, [{"id": 1606, "question": "Q", "final_answer": ["$69$,$84$"], "error": None},
                       {"id": 2592, "question": "R", "final_answer": ["$4.2$"], "error": "1e-1"},
                       {"id": 2045, "question": "S", "final_answer": ["$t(0,4]$"], "error": None}], seen)
    got = load_problems(DatasetConfig("olympiadbench", "Hothan/OlympiadBench"))
    assert [(p["id"], p["answer"], p.get("answer_tol")) for p in got] == [
        ("olympiadbench-1606", "69,84", None), ("olympiadbench-2592", "4.2", 0.1),
        ("olympiadbench-2045", "(0,4]", None)]
    assert seen[-1][0] == ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP")
    # math-ai/aime25 and math-ai/minervamath: no ids, the row number is the id
    _hub(monkeypatch, [{"problem": "P", "answer": "70"}], seen)
    assert load_problems(DatasetConfig("aime25", "math-ai/aime25"))[0]["id"] == "aime25-0"
    _hub(monkeypatch, [{"question": "Q", "answer": "4.5e33", "type": "Astro"}], seen)
    [p] = load_problems(DatasetConfig("minerva", "math-ai/minervamath"))
    assert (p["id"], p["problem"], p["subject"]) == ("minerva-0", "Q", "Astro")


def test_a_hub_row_without_a_field_the_reader_needs_is_a_clear_error(monkeypatch):
    _hub(monkeypatch, [{"id": 1606, "problem": "Q", "final_answer": ["$1$"]}], [])  # `question` renamed
    with pytest.raises(lens_data.DataError, match="'Hothan/OlympiadBench': a row lacks the field 'question'"):
        load_problems(DatasetConfig("olympiadbench", "Hothan/OlympiadBench"))


@needs_data
def test_hub_olympiadbench_answers_equal_the_local_ones():
    """The shared copy keeps OlympiadBench's `final_answer`: the hub rule rebuilds every `answer`."""
    rows = [json.loads(line) for line in (DATA / "olympiadbench" / "olympiadbench_math_en.jsonl").open()]
    rebuilt = [lens_data.olympiadbench_answer(int(r["id"].split("-")[1]), r["final_answer"]) for r in rows]
    assert rebuilt == [r["answer"] for r in rows]


@needs_data
@pytest.mark.parametrize("name", ["aime24", "aime25", "amc23"])
def test_integer_answers_from_the_raw_source_values(name):
    rows = [json.loads(line) for line in next((DATA / SETS[name][0]).glob(f"{name}*.jsonl")).open()]
    assert [lens_data.integer_answer(r["answer_raw"]) for r in rows] == [r["answer"] for r in rows]


# ---------------------------------------------------------------------------------------------
# Gold answers: each against itself, each against the others (cross-swap)
# ---------------------------------------------------------------------------------------------
@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETS))
def test_every_gold_grades_1_against_itself_boxed(name):
    problems = problems_of(name)
    completions = [f"So the final answer is $\\boxed{{{p['answer']}}}$." for p in problems]
    scores = grade_batch(completions, [p["answer"] for p in problems], specs=specs_of(name, problems))
    assert [p["id"] for p, s in zip(problems, scores, strict=True) if s != 1.0] == []


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("name", list(SETS))
def test_cross_swap_grades_every_other_gold_0(name):
    problems = problems_of(name)
    specs = specs_of(name, problems)
    pairs = list(itertools.permutations(range(len(problems)), 2))
    if len(pairs) > CROSS_PAIRS:
        pairs = random.Random(0).sample(pairs, CROSS_PAIRS)
    golds = [p["answer"] for p in problems]
    pairs = [(i, j) for i, j in pairs if answer_formats.distinct_golds(golds[i], golds[j], specs[i])]
    scores = grade_batch([f"\\boxed{{{problems[j]['answer']}}}" for _, j in pairs],
                         [problems[i]["answer"] for i, _ in pairs], specs=[specs[i] for i, _ in pairs])
    wrong = [(problems[i]["id"], problems[j]["id"]) for (i, j), s in zip(pairs, scores, strict=True) if s != 0.0]
    assert wrong == []


@needs_data
def test_minerva_golds_within_the_tolerance_are_the_same_answer():
    """Minerva holds distinct golds within 0.1 % of each other (100 and 99.9): within the tolerance,
    so they grade each other 1 (docs/evaluation.md)."""
    golds = {p["answer"] for p in problems_of("minerva")}
    assert {"100", "99.9"} <= golds
    spec = AnswerSpec("minerva")
    assert grade_batch(["\\boxed{99.9}", "\\boxed{100}"], ["100", "99.9"], specs=[spec, spec]) == [1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# Hand-written cases per format: (gold, completion's answer, expected)
# ---------------------------------------------------------------------------------------------
MATH = AnswerSpec()
MINERVA = AnswerSpec("minerva")
OLYMPIAD = AnswerSpec("olympiadbench")
CASES = [
    # AIME / AMC: integers, gold floats of the raw source
    (MATH, "27", "27.0", 1.0), (MATH, "27.0", "27", 1.0), (MATH, "-1", "-1", 1.0), (MATH, "25", "025", 1.0),
    (MATH, "27", "28", 0.0), (MATH, "-1", "1", 0.0),
    # Minerva: e-notation and \times 10^{}, rounded references, units outside and inside the box
    (MINERVA, "1.6e-19", "1.6 \\times 10^{-19}", 1.0),
    (MINERVA, "1.6e-19", "1.602 \\times 10^{-19} \\mathrm{~C}", 1.0),  # 0.1 %
    (MINERVA, "1.6e-19", "1.64 \\times 10^{-19}", 1.0),  # within the gold's rounding (1.55-1.65)
    (MINERVA, "1.6e-19", "1.7 \\times 10^{-19}", 0.0),
    (MINERVA, "1.6e-19", "1.6 \\times 10^{-18}", 0.0),
    (MINERVA, "1e-5", "1.04e-5", 1.0), (MINERVA, "1e-5", "1.2e-5", 0.0),  # one digit: at most 5 %
    (MINERVA, "4.5e33", "4.5e33", 1.0), (MINERVA, "4.5e33", "4.5 \\cdot 10^{33}", 1.0),
    (MINERVA, "6.5", "6.5 \\mathrm{~m}", 1.0), (MINERVA, "6.5", "6.5 \\text{ m}", 1.0),
    (MINERVA, "0.10", "0.1", 1.0), (MINERVA, "0.10", "0.106", 0.0),  # trailing zeros carry precision
    (MINERVA, "2", "1.9", 0.0), (MINERVA, "300", "302", 1.0), (MINERVA, "300", "310", 0.0),  # integers: 1 %
    (MINERVA, "0.5", "\\frac{1}{2}", 1.0), (MINERVA, "6", "2*3", 1.0), (MINERVA, "6", "23", 0.0),
    (MINERVA, "+2", "2", 1.0), (MINERVA, "-3./2", "-1.5", 1.0),
    (MINERVA, "-1./3", "-\\frac{1}{3}", 1.0), (MINERVA, "-1./3", "\\frac{1}{3}", 0.0),
    (MINERVA, "np.arcsin(10/13)", "\\arcsin(10/13)", 1.0), (MINERVA, "np.arcsin(10/13)", "\\arccos(10/13)", 0.0),
    (MINERVA, "\\frac{1}{2}(\\exp{a*t} + \\exp{-a*t})", "\\cosh(a t)", 1.0),
    (MINERVA, "\\frac{1}{2}(\\exp{a*t} + \\exp{-a*t})", "\\sinh(a t)", 0.0),
    (MINERVA, "1+\\sqrt{3} i", "1+i\\sqrt{3}", 1.0), (MINERVA, "1+\\sqrt{3} i", "1-\\sqrt{3} i", 0.0),
    (MINERVA, "1.6e-19", "x", 0.0), (MINERVA, "1.6e-19", "", 0.0),
    (MINERVA, "2.5", "v = 2.5 \\mathrm{~m/s}", 1.0), (MINERVA, "1.414", "\\sqrt{2}", 1.0),
    # an expression Math-Verify cannot parse falls back to its last number (2 here): not a number answer
    (MINERVA, "2", "\\hbar \\omega(v+1 / 2)-\\frac{E_{0}^{2} e^{2}}{2 m \\omega^{2}}", 0.0),
    (MINERVA, "0", "y^{\\prime}+r y-r x(t)=0", 0.0), (MINERVA, "3", "E_{0} = 3", 1.0),  # an equation is no number
    # OlympiadBench: tuples, sets, intervals, expressions, left-hand sides, percent, degrees, tolerance
    (OLYMPIAD, "(6,3),(9,3),(9,5),(54,5)", "(9,3),(6,3),(54,5),(9,5)", 1.0),
    (OLYMPIAD, "(6,3),(9,3),(9,5),(54,5)", "(6,3),(9,3),(9,5)", 0.0),
    (OLYMPIAD, "(6,3),(9,3)", "(3,6),(3,9)", 0.0),
    (OLYMPIAD, "69,84", "84, 69", 1.0), (OLYMPIAD, "69,84", "69", 0.0),
    (OLYMPIAD, "-2,-2", "-2", 1.0),
    (OLYMPIAD, "(0,4]", "(0,4]", 1.0), (OLYMPIAD, "(0,4]", "[0,4]", 0.0), (OLYMPIAD, "(0,4]", "(0,4)", 0.0),
    (OLYMPIAD, "(-\\infty, 0) \\cup\\{1\\}", "(-\\infty,0)\\cup\\{1\\}", 1.0),
    (OLYMPIAD, "(-\\infty, 0) \\cup\\{1\\}", "(-\\infty,0)", 0.0),
    (OLYMPIAD, "f(x)=x+1", "x+1", 1.0), (OLYMPIAD, "k=n+1", "n+1", 1.0), (OLYMPIAD, "k=n+1", "n+2", 0.0),
    (OLYMPIAD, "M=2^{N-2}+1", "2^{N-2}+1", 1.0), (OLYMPIAD, "2^{N-2}+1", "2^{N-1}+1", 0.0),
    (OLYMPIAD, "62.5%", "62.5\\%", 1.0), (OLYMPIAD, "62.5%", "62.5", 1.0), (OLYMPIAD, "62.5%", "6.25", 0.0),
    (OLYMPIAD, "8 \\%", "8", 1.0), (OLYMPIAD, "18.8^{\\circ}", "18.8", 1.0), (OLYMPIAD, "18.8^{\\circ}", "18.9", 0.0),
    (OLYMPIAD, "6m", "6m", 1.0), (OLYMPIAD, "6m", "6", 0.0), (OLYMPIAD, "2n", "2 n", 1.0),
    (AnswerSpec("olympiadbench", 0.1), "4.2", "4.25", 1.0), (AnswerSpec("olympiadbench", 0.1), "4.2", "4.35", 0.0),
    (OLYMPIAD, "4.2", "4.25", 0.0),  # without `error`, numbers are exact
]


@pytest.mark.parametrize("spec,gold,answer,expected", CASES)
def test_hand_written_forms(spec, gold, answer, expected):
    assert grade_batch([f"Thus the answer is $\\boxed{{{answer}}}$."], [gold], specs=[spec], workers=1) == [expected]


def test_math_format_is_unchanged_by_the_new_rules():
    """Math-Verify reads `1e-5` as Euler's e minus 5 under MATH's rules; only Minerva's format turns
    e-notation into a power of ten (MATH's golds never use it)."""
    assert answer_formats.normalize("4.5e33 and 1e-5", "math") == "4.5e33 and 1e-5"
    assert answer_formats.normalize("4.5e33", "minerva") == "4.5 \\times 10^{33}"
    assert answer_formats.normalize("the 2nd term e3", "minerva") == "the 2nd term e3"


def test_tolerance_rules_by_hand():
    tol = answer_formats.numeric_tolerance
    assert tol("1.6", MINERVA) == pytest.approx((1.6, 0.05))  # its rounding: more than 1 %
    assert tol("24.310", MINERVA) == pytest.approx((24.31, 0.2431))  # 1 %: more than its rounding
    assert tol("1e-5", MINERVA) == pytest.approx((1e-5, 5e-7))  # rounding capped at 5 %
    assert tol("300", MINERVA) == pytest.approx((300, 3.0))  # integers: 1 % only
    assert tol("x+1", MINERVA) is None and tol("4.2", OLYMPIAD) is None and tol("27", MATH) is None
    assert tol("4.2", AnswerSpec("olympiadbench", 0.1)) == (4.2, 0.1)
    with pytest.raises(ValueError, match="unknown answer format"):
        spec_for("physics", {})


def test_specs_must_match_the_golds():
    with pytest.raises(ValueError, match="1 answer specs for 2 golds"):
        grade_batch(["\\boxed{1}", "\\boxed{2}"], ["1", "2"], specs=[MATH])


ADVERSARIAL = ["\\boxed{" + "(" * 50 + "1" + ")" * 50 + "}", "\\boxed{9^{9^{9^{9}}}}", "\\boxed{1e999999}",
               "\\boxed{10^{100000000}}", "\\boxed{" + "1" * 5000 + "}", "\\boxed{\\frac{1}{0}}", "\\boxed{nan}",
               "\\boxed{" + "\\exp{" * 30 + "}"]


@pytest.mark.parametrize("spec,gold", [(MINERVA, "1.6e-19"), (MINERVA, "\\exp{a*t}"), (OLYMPIAD, "(0,4]"),
                                       (AnswerSpec("olympiadbench", 0.1), "4.2")])
def test_grader_guarantees_hold_for_the_new_formats(spec, gold):
    """Never raises, never hangs: adversarial answers grade 0.0 within the deadline."""
    out = grade_batch(ADVERSARIAL, [gold] * len(ADVERSARIAL), specs=[spec] * len(ADVERSARIAL),
                      timeout_s=1.0, workers=1)
    assert out == [0.0] * len(ADVERSARIAL)
