"""The table of datasets: one entry per dataset name, from which everything else derives.

Not a command; imported by lens.config (the valid `name`s of a dataset entry), lens.data (which
function reads a local path and which a hub id, the fields a row must have, the filters its rows
pass) and analysis (display labels, the training data a table names). Torch-free and
dependency-free, so the workflow and the analysis scripts read it cheaply.

Every row of every dataset, local file and hub alike, goes through the same steps in
lens.data.load_dataset: the fields of `Dataset.fields` must be present (else DataError naming the
file and line, or the hub id and row); a row without a usable gold answer (NO_GOLD) is a DataError
in an evaluation set and a counted drop in a training set; then `Dataset.filters`, in order, each
drop counted under the filter's name in the run's data_report.json (a row counts once, under the
first filter that drops it).

Adding a dataset = its reader(s) in lens/data.py, one `Dataset` entry below, a test in
tests/test_data.py on rows in its own schema; tests/test_datasets.py fails when an entry and the
code disagree (a reader that lens.data lacks, a filter not in FILTERS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lens.answer_formats import FORMATS

# The data report's key for rows without a usable gold answer (a training set's drop count).
NO_GOLD = "no_gold"


def has_gold(answer: Any) -> bool:
    """A usable gold answer: present, not null, not empty or whitespace only."""
    return answer is not None and bool(str(answer).strip())


@dataclass(frozen=True)
class Filter:
    """A rule that drops a source row before it becomes a problem; its key in FILTERS names it in reports."""

    drops: Callable[[Mapping[str, Any]], bool]
    why: str


# NuminaMath-1.5 marks answers it could not extract with these strings (its dataset card; NeMo RL's
# NuminaMath15Dataset drops the same): Math-Verify would grade completions against the word itself.
NUMINA_NO_ANSWER = ("proof", "notfound")

FILTERS: dict[str, Filter] = {
    "answer_not_gradable": Filter(
        lambda row: str(row.get("answer", "")).strip().lower() in NUMINA_NO_ANSWER,
        'answer is "proof" or "notfound": there is no final answer to grade'),
    "proof_question": Filter(
        lambda row: row.get("question_type") == "proof",
        'question_type "proof": a proof has no final answer (some carry a stray answer anyway: '
        "the two marks only partly overlap)"),
    "multiple_choice": Filter(
        lambda row: row.get("question_type") == "MCQ",
        'question_type "MCQ": the gold is an option letter, which Math-Verify cannot match to the '
        "option's value a model writes, and a guessed letter earns the reward 1 time in 4 or 5"),
    "problem_not_valid": Filter(
        lambda row: row.get("problem_is_valid") != "Yes",
        'problem_is_valid is not "Yes": the release marks the problem statement as broken or unchecked'),
    "solution_not_valid": Filter(
        lambda row: row.get("solution_is_valid") != "Yes",
        'solution_is_valid is not "Yes": the answer was taken from a solution the release marks as '
        "wrong or unchecked"),
}


@dataclass(frozen=True)
class Dataset:
    """What a dataset name means to every part of the suite."""

    label: str  # display name in tables, figures and captions
    reader: str  # lens.data function reading a local file or directory: (path, DatasetConfig) -> rows
    hub_reader: str | None  # lens.data function reading the hub id: (DatasetConfig) -> rows; None: local only
    hub_id: str | None  # the hub id config/paper.yaml (or config/paper-numina.yaml) names
    local_hint: str  # what a local path looks like, for error messages
    fields: tuple[str, ...]  # keys every row must have, besides the gold `answer` (NO_GOLD's rule)
    filters: tuple[str, ...] = ()  # FILTERS applied in order to every row, local and hub alike
    split_in_label: bool = False  # several splits in use: "MATH train" / "MATH test"
    paper: str = ""
    # How answers are compared (lens.answer_formats.FORMATS; docs/evaluation.md): Math-Verify's rules
    # ("math"), or a format's own rules for numbers with units, tolerances and sets
    answer_format: str = "math"


DATASETS: dict[str, Dataset] = {
    "math": Dataset(
        "MATH", "_read_math", "_hub_math", "EleutherAI/hendrycks_math",
        "../shared/data/math (a directory with train.jsonl/test.jsonl/math500.jsonl)", ("id", "problem"),
        split_in_label=True, paper="Hendrycks et al. 2021; LENS paper Appendix D.1 (train 7,500; test 5,000)"),
    "math500": Dataset(
        "MATH-500", "_read_math500", "_hub_math500", "HuggingFaceH4/MATH-500",
        "../shared/data/math/math500.jsonl", ("id", "problem"),
        paper="Lightman et al. 2023 (PRM800K's held-out test subset); the paper's benchmark"),
    "dapo": Dataset(
        "DAPO-Math-17k", "_read_dapo", "_hub_dapo", "BytedTsinghua-SIA/DAPO-Math-17k",
        "../shared/data/dapo/dapo_math_17k.jsonl", ("id", "problem"),
        paper="Yu et al. 2025; LENS paper Table 1 training data"),
    "numina": Dataset(
        "NuminaMath-1.5", "_read_numina", "_hub_numina", "AI-MO/NuminaMath-1.5",
        "a JSONL file of NuminaMath-1.5 rows (problem, solution, answer, problem_type, question_type, "
        "problem_is_valid, solution_is_valid, source, synthetic)",
        ("problem", "question_type", "problem_is_valid", "solution_is_valid"),
        filters=("answer_not_gradable", "proof_question", "multiple_choice", "problem_not_valid",
                 "solution_not_valid"),
        paper="Li et al. 2024 (Project Numina); LENS paper Tables 2-3 training data"),
    # The benchmarks RLVR papers report beside MATH (evaluation only; no levels). Local copies and their
    # provenance: ../shared/data/README.md. Hub ids: the copies the RLVR repositories load.
    "aime24": Dataset(
        "AIME 2024", "_read_aime24", "_hub_aime24", "HuggingFaceH4/aime_2024",
        "../shared/data/aime/aime24.jsonl", ("id", "problem"),
        paper="AIME 2024 I and II (30 problems); reported by DAPO, Dr. GRPO, open-r1 (avg@32)"),
    "aime25": Dataset(
        "AIME 2025", "_read_aime25", "_hub_aime25", "math-ai/aime25",
        "../shared/data/aime/aime25.jsonl", ("id", "problem"),
        paper="AIME 2025 I and II (30 problems)"),
    "amc23": Dataset(
        "AMC 2023", "_read_amc23", "_hub_amc23", "math-ai/amc23",
        "../shared/data/amc/amc23.jsonl", ("id", "problem"),
        paper="AMC 12 2023, 40 problems as free response (Qwen2.5-Math's evaluation set)"),
    "minerva": Dataset(
        "Minerva Math", "_read_minerva", "_hub_minerva", "math-ai/minervamath",
        "../shared/data/minerva/minerva_math.jsonl", ("id", "problem"),
        paper="Lewkowycz et al. 2022, OCWCourses (272 problems)", answer_format="minerva"),
    "olympiadbench": Dataset(
        "OlympiadBench", "_read_olympiadbench", "_hub_olympiadbench", "Hothan/OlympiadBench",
        "../shared/data/olympiadbench/olympiadbench_math_en.jsonl", ("id", "problem"),
        paper="He et al. 2024, open-ended text-only English maths (675 problems)", answer_format="olympiadbench"),
    "synthetic": Dataset(
        "synthetic", "_read_synthetic", None, None, "the directory written by the synthetic data rule",
        ("id", "problem"), split_in_label=True, paper="this suite's embedded benchmark (lens.synthetic)"),
}


def get(name: str) -> Dataset:
    """The table entry of `name`; ValueError naming the valid names if there is none."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dataset name {name!r}; valid: {list(DATASETS)}") from None


def names() -> tuple[str, ...]:
    return tuple(DATASETS)


def filter_names(name: str) -> tuple[str, ...]:
    """The data report's drop keys of dataset `name`: NO_GOLD, then its filters in order."""
    return (NO_GOLD, *get(name).filters)


def first_drop(name: str, row: Mapping[str, Any]) -> str | None:
    """The first of dataset `name`'s filters that drops `row`, or None when the row is kept."""
    return next((f for f in get(name).filters if FILTERS[f].drops(row)), None)


def label(name: str, split: str) -> str:
    """Display name of one configured dataset: `MATH train`, `NuminaMath-1.5`; unknown names as given."""
    spec = DATASETS.get(name)
    if spec is None:
        return name
    return f"{spec.label} {split}" if spec.split_in_label else spec.label


def benchmark_label(benchmark: str) -> str:
    """Display name of a result table's `benchmark` id (lens.config.DatasetConfig.id: `math500`, `math_test`)."""
    if benchmark in DATASETS:
        return label(benchmark, "test")
    name, _, split = benchmark.rpartition("_")
    return label(name, split) if name in DATASETS else benchmark


def training_data_label(datasets: Iterable[tuple[str, str]]) -> str:
    """`MATH train + NuminaMath-1.5` for the (name, split) pairs of a run's data.train."""
    return " + ".join(label(name, split) for name, split in datasets)


def check() -> list[str]:
    """Inconsistencies inside the table itself (the code-facing checks live in the tests)."""
    problems = []
    for name, spec in DATASETS.items():
        if name != name.lower() or not name.isidentifier():
            problems.append(f"{name}: names are lowercase identifiers")
        unknown = [f for f in spec.filters if f not in FILTERS]
        if unknown:
            problems.append(f"{name}: unknown filter(s) {unknown}; declared: {list(FILTERS)}")
        if NO_GOLD in spec.filters:
            problems.append(f"{name}: {NO_GOLD} applies to every dataset; do not list it as a filter")
        if (spec.hub_reader is None) != (spec.hub_id is None):
            problems.append(f"{name}: a hub reader and a hub id go together")
        if spec.answer_format not in FORMATS:
            problems.append(f"{name}: unknown answer_format {spec.answer_format!r}")
        if "answer" in spec.fields:
            problems.append(f"{name}: `answer` is checked by the gold rule ({NO_GOLD}), not as a field")
    labels = [spec.label for spec in DATASETS.values()]
    problems += [f"label {v!r} used by more than one dataset" for v in sorted(set(labels)) if labels.count(v) > 1]
    return problems
