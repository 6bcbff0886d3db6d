"""MATH / MATH-500 / DAPO-Math-17k / NuminaMath / synthetic benchmarks -> one problem schema, plus prompts.

A problem is ``{id, problem, answer, level, subject, source}`` (level 1-5 or None). Every dataset
is read from a local JSONL file or directory (``../shared/data`` here) or, on a machine with
network access, from its Hugging Face hub id (imported lazily; an unreachable hub fails in seconds
with a message naming the local-path alternative). Which function reads which dataset, the fields
its rows must have and the filters they pass come from the table of datasets, lens.datasets.

No gold, no row: a row without a usable gold answer (no `answer` key, null, empty or whitespace
only) is a DataError naming the file and line (or hub id and row) in an evaluation set, and a
dropped row, counted under `no_gold` in the run's data_report.json, in a training set.

Decontamination drops training problems whose normalised text (``normalize_text``) equals an
evaluation problem's, or whose start is one's (the prefix rule, ``decontaminate``). Exact counts on the
shared data (reproduce with ``python -m lens.data --report``, which also prints each rule's drops):
MATH train vs MATH test 4 (the 4 known duplicates), DAPO vs MATH test 973, vs MATH-500 5, vs MATH
train 1,730 (1,609 with whitespace-only normalisation, the data README's figure).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import socket
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lens import datasets as dataset_table
from lens.config import DatasetConfig, RunConfig

SCHEMA_KEYS = ("id", "problem", "answer", "level", "subject", "source")

# The instruction appended to every problem; both prompt styles ask for a \boxed{} final answer,
# which is what lens.rewards extracts first.
CHAT_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
# Models trained from scratch on the embedded benchmark (lens.warmup) learn the answer format from
# their warm-up data, so they get the problem alone: prompt tokens dominate a tiny model's cost.
BARE_TEMPLATE = "{problem}\n"
PLAIN_TEMPLATE = ("Question: {problem}\nPlease put your final answer within \\boxed{{}}.\n"
                  "Answer: Let's think step by step.")
# A base model given the `plain` prompt often answers, then writes the next "Question:" of an
# imagined exam and answers that too. Sampling stops at these strings (vLLM's `stop`,
# transformers' `stop_strings`) and grading reads only the text before them, so the grade is the
# first answer's.
STOP_STRINGS = {"plain": ("\nQuestion:",), "chat": (), "bare": ()}

# Local file names inside a dataset directory.
_MATH_FILES = {"train": "train.jsonl", "test": "test.jsonl"}
_MATH500_FILE = "math500.jsonl"
_DAPO_FILE = "dapo_math_17k.jsonl"

HENDRYCKS_CONFIGS = (
    "algebra", "counting_and_probability", "geometry", "intermediate_algebra",
    "number_theory", "prealgebra", "precalculus",
)
# DAPO-Math-17k's hub rows wrap each problem in this prompt; the shared copy stores the bare problem.
_DAPO_PREFIX = (
    "Solve the following math problem step by step. The last line of your response should be of the "
    "form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
_DAPO_SUFFIX = '\n\nRemember to put your answer on its own line after "Answer:".'

_HUB_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")

# A source row and where it came from: `file:line` (1-based) for a local JSONL, the hub id and
# 0-based row index for a hub (parquet) source; every DataError about the row names it.
Row = tuple[str, dict]


class DataError(ValueError):
    """A dataset cannot be found or read; the message names the path or hub id and what to do."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_problems(ds: DatasetConfig, *, seed: int = 0, training: bool = False) -> list[dict]:
    """The problems of one configured dataset, in the shared schema, filtered and subset.

    `ds.levels` keeps only those levels; `ds.limit_per_level_subject` keeps at most that many
    problems of each (level, subject) cell; `ds.limit` then draws that many problems. Draws use
    `random.Random(seed)` and keep the source order, so a subset is stable across runs.
    `training`: rows without a gold answer are dropped (an evaluation set raises; load_dataset).
    """
    return load_dataset(ds, seed=seed, training=training)[0]


def load_dataset(ds: DatasetConfig, *, seed: int = 0, training: bool = False) -> tuple[list[dict], dict]:
    """(problems, report) of one configured dataset; `load_problems` returns the problems alone.

    Every row, local or hub, passes the same steps (lens.datasets): the table's required fields
    (else DataError naming file and line, or hub id and row); a usable gold answer
    (lens.datasets.has_gold): without one an evaluation set is a DataError naming the row, a
    training set (`training=True`) drops the row; then the dataset's filters in order. The report
    holds `rows` (read from the source) and `dropped_by_filter` {NO_GOLD and each filter: rows it
    dropped}, a row counting once, under the first rule that drops it; subsets come after.
    """
    try:
        spec = dataset_table.get(ds.name)
    except ValueError as err:
        raise DataError(str(err)) from None
    path = Path(ds.path).expanduser()
    if path.exists():
        rows = _READERS[ds.name](path, ds)
    elif _looks_like_hub_id(ds.path):
        if spec.hub_reader is None:
            raise DataError(f"dataset {ds.name} is generated locally, not loaded from the hub ({ds.path!r}); "
                            f"use {spec.local_hint}")
        try:
            rows = _HUB_READERS[ds.name](ds)
        except KeyError as err:  # the hub copy's schema changed: name the field, not a traceback
            raise DataError(f"hub dataset {ds.path!r}: a row lacks the field {err}, which the {spec.label} reader "
                            f"reads; point the dataset path at a local copy (e.g. {spec.local_hint})") from None
    else:
        raise DataError(
            f"dataset {ds.name!r}: no such file or directory: {ds.path!r} (resolved to {path.resolve()}); "
            f"give an existing local path (e.g. {spec.local_hint}) or a hub id like owner/name"
        )
    drops = dict.fromkeys(dataset_table.filter_names(ds.name), 0)
    problems = []
    for where, row in rows:
        missing = [k for k in spec.fields if k not in row]
        if missing:
            raise DataError(f"{where}: record lacks {missing}; a {spec.label} row has {list(spec.fields)} "
                            f"and a gold `answer`")
        if not dataset_table.has_gold(row.get("answer")):
            if not training:
                why = ("no `answer` key" if "answer" not in row else "answer is null" if row["answer"] is None
                       else f"answer is {row['answer']!r}")
                raise DataError(f"{where}: no gold answer ({why}); an evaluation problem needs one to be "
                                f"graded: fix the row or remove it")
            drops[dataset_table.NO_GOLD] += 1
            continue
        dropped = dataset_table.first_drop(ds.name, row)
        if dropped is not None:
            drops[dropped] += 1
            continue
        problems.append(_record(row, spec.label))
    report = {"rows": len(rows), "dropped_by_filter": drops}
    if ds.levels is not None:
        keep = set(ds.levels)
        problems = [p for p in problems if p["level"] in keep]
    if ds.limit_per_level_subject is not None:
        cells: dict[tuple, list[int]] = {}
        for i, p in enumerate(problems):
            cells.setdefault((p["level"], p["subject"]), []).append(i)
        rng = random.Random(seed)
        keep_idx = sorted(i for members in cells.values()
                          for i in (members if len(members) <= ds.limit_per_level_subject
                                    else rng.sample(members, ds.limit_per_level_subject)))
        problems = [problems[i] for i in keep_idx]
    if ds.limit is not None and ds.limit < len(problems):
        chosen = sorted(random.Random(seed).sample(range(len(problems)), ds.limit))
        problems = [problems[i] for i in chosen]
    return problems, report


def _looks_like_hub_id(path: str) -> bool:
    return bool(_HUB_ID_RE.fullmatch(path)) and not path.startswith((".", "/", "~"))


def _read_jsonl(path: Path) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    return rows


def _pick_file(path: Path, name: str) -> Path:
    if path.is_file():
        return path
    candidate = path / name
    if not candidate.is_file():
        raise DataError(f"{path} has no {name}; point the dataset path at the file itself or a directory holding it")
    return candidate


def _record(row: dict, source: str) -> dict:
    """A checked row in the shared schema; extra keys (e.g. worked `solution`s) are dropped, except
    `answer_tol` (an absolute tolerance of the gold, lens.answer_formats), kept where a row has one."""
    level = row.get("level")
    record = {
        "id": str(row["id"]),
        "problem": str(row["problem"]),
        "answer": str(row["answer"]),
        "level": int(level) if level is not None else None,
        "subject": row.get("subject"),
        "source": row.get("source") or source,
    }
    if row.get("answer_tol") not in (None, ""):
        record["answer_tol"] = float(row["answer_tol"])
    return record


def _read_math(path: Path, ds: DatasetConfig) -> list[Row]:
    if path.is_dir() and ds.split not in _MATH_FILES:
        raise DataError(f"dataset math: split {ds.split!r} unknown; valid: {sorted(_MATH_FILES)}")
    return _read_jsonl(_pick_file(path, _MATH_FILES.get(ds.split, "")))


def _read_math500(path: Path, ds: DatasetConfig) -> list[Row]:
    return _read_jsonl(_pick_file(path, _MATH500_FILE))


def _read_dapo(path: Path, ds: DatasetConfig) -> list[Row]:
    return _read_jsonl(_pick_file(path, _DAPO_FILE))


def numina_row(index: int, row: dict) -> dict:
    """A NuminaMath-1.5 row (its own schema, from a local JSONL or the hub alike) with the shared
    schema's keys added: id `numina-<row>` (0-based row of the source), subject = problem_type,
    source `NuminaMath-1.5/<source>`, no level. Its own keys stay for the filters to read."""
    return {**row, "id": row.get("id", f"numina-{index:07d}"), "level": None, "subject": row.get("problem_type"),
            "source": f"NuminaMath-1.5/{row['source']}" if row.get("source") else "NuminaMath-1.5"}


def _read_numina(path: Path, ds: DatasetConfig) -> list[Row]:
    rows = _read_jsonl(_pick_file(path, f"{ds.split}.jsonl"))
    return [(where, numina_row(i, row)) for i, (where, row) in enumerate(rows)]


def _read_aime24(path: Path, ds: DatasetConfig) -> list[Row]:
    return _read_jsonl(_pick_file(path, "aime24.jsonl"))


def _read_aime25(path: Path, ds: DatasetConfig) -> list[Row]:
    return _read_jsonl(_pick_file(path, "aime25.jsonl"))


def _read_amc23(path: Path, ds: DatasetConfig) -> list[Row]:
    return [(where, {**row, "answer": integer_answer(row.get("answer"))})
            for where, row in _read_jsonl(_pick_file(path, "amc23.jsonl"))]


def _read_minerva(path: Path, ds: DatasetConfig) -> list[Row]:
    return _read_jsonl(_pick_file(path, "minerva_math.jsonl"))


def _read_olympiadbench(path: Path, ds: DatasetConfig) -> list[Row]:
    # `error` is the gold's absolute tolerance (one row: 4.2 with error 1e-1)
    return [(where, {**row, "answer_tol": row.get("error")})
            for where, row in _read_jsonl(_pick_file(path, "olympiadbench_math_en.jsonl"))]


def _read_synthetic(path: Path, ds: DatasetConfig) -> list[Row]:
    file = path / f"{ds.split}.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"dataset synthetic: {file} not found (expected {{path}}/{{split}}.jsonl)")
    return _read_jsonl(file)


# --------------------------------------------------------------------------------------------
# Hub
# --------------------------------------------------------------------------------------------
def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_load(ds: DatasetConfig, *args, **kwargs):
    """datasets.load_dataset(*args) that fails in seconds, naming the id, when the hub is unreachable."""
    hint = f"set the dataset path to a local file or directory instead (e.g. {dataset_table.get(ds.name).local_hint})"
    offline = _truthy("HF_HUB_OFFLINE") or _truthy("HF_DATASETS_OFFLINE")
    if not offline and not any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        # datasets retries an unreachable hub for ~30 s per request; a 3 s probe fails first.
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
        try:
            socket.create_connection((host, 443), timeout=3).close()
        except OSError as err:
            raise DataError(f"cannot load hub dataset {ds.path!r}: {host} is unreachable ({err}); {hint}") from None
    try:
        import datasets
    except ImportError as err:
        raise DataError(f"cannot load hub dataset {ds.path!r}: the `datasets` package is missing; {hint}") from err
    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - every hub failure becomes one clear message
        mode = " (offline mode: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set and it is not cached)" if offline else ""
        raise DataError(f"cannot load hub dataset {ds.path!r}{mode}: {type(err).__name__}: {err}; {hint}") from None


def _level(value: Any) -> int | None:
    m = re.search(r"\d", str(value)) if value is not None else None
    return int(m.group()) if m else None


def _hub_math(ds: DatasetConfig) -> list[Row]:
    from lens.rewards import last_boxed

    out = []
    for config in HENDRYCKS_CONFIGS:
        rows = _hub_load(ds, ds.path, config, split=ds.split)
        for i, r in enumerate(rows):
            # The hub copy has no answer column: it is the last \boxed{} of the solution, as in
            # the shared files (whose 4 hand-set answers and joined multi-box answers differ).
            out.append((f"hub dataset {ds.path!r} ({config}, {ds.split}) row {i}", {
                "id": f"{ds.split}/{config}/{i}", "problem": r["problem"],
                "answer": last_boxed(r["solution"]), "level": _level(r.get("level")),
                "subject": r.get("type"), "source": "MATH",
            }))
    return out


def _hub_math500(ds: DatasetConfig) -> list[Row]:
    rows = _hub_load(ds, ds.path, split="test")
    return [(f"hub dataset {ds.path!r} (test) row {i}",
             {"id": r["unique_id"], "problem": r["problem"], "answer": r["answer"], "level": _level(r["level"]),
              "subject": r["subject"], "source": "MATH-500"}) for i, r in enumerate(rows)]


def integer_answer(value: Any) -> Any:
    """An integral answer as the shared copies write it: `27.0` -> `27`, AIME's `025` -> `25`; any
    other value unchanged (the gold rule then judges it)."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return value
    return str(int(number)) if number.is_integer() else value


# Hand repairs of three OlympiadBench answers, as in the shared copy (its data README): a trailing
# period, a stray variable name, a malformed pair of answers.
OLYMPIADBENCH_REPAIRS = {1970: "(-\\infty, 0) \\cup\\{1\\}", 2045: "(0,4]", 2349: "221,8"}


def olympiadbench_answer(source_id: int, final_answer: Sequence[str]) -> str:
    """OlympiadBench's `final_answer` (a list of one string) -> the shared copy's `answer`: the
    surrounding and inner `$` removed (`$69$,$84$` -> `69,84`), and the three hand repairs."""
    if source_id in OLYMPIADBENCH_REPAIRS:
        return OLYMPIADBENCH_REPAIRS[source_id]
    return ", ".join(a.strip().strip("$").replace("$", "").strip() for a in final_answer)


def _hub_rows(ds: DatasetConfig, split: str, *args) -> list[tuple[str, int, dict]]:
    return [(f"hub dataset {ds.path!r} ({split}) row {i}", i, dict(r))
            for i, r in enumerate(_hub_load(ds, ds.path, *args, split=split))]


def _hub_aime24(ds: DatasetConfig) -> list[Row]:
    # HuggingFaceH4/aime_2024: id (60..89, as the local copy's), problem, solution, answer, url, year
    return [(where, {"id": f"aime24-{r.get('id', i)}", "problem": r["problem"], "solution": r.get("solution", ""),
                     "answer": integer_answer(r.get("answer")), "level": None, "subject": None})
            for where, i, r in _hub_rows(ds, "train")]


def _hub_aime25(ds: DatasetConfig) -> list[Row]:
    # math-ai/aime25: problem, answer (rows 0-14 AIME I, 15-29 AIME II, as the local copy)
    return [(where, {"id": f"aime25-{i}", "problem": r["problem"], "answer": integer_answer(r.get("answer")),
                     "level": None, "subject": None})
            for where, i, r in _hub_rows(ds, "test")]


def _hub_amc23(ds: DatasetConfig) -> list[Row]:
    # math-ai/amc23 (Qwen2.5-Math's set): id, question, answer as a float (27.0)
    return [(where, {"id": f"amc23-{r.get('id', i)}", "problem": r.get("problem", r.get("question")),
                     "answer": integer_answer(r.get("answer")), "level": None, "subject": None})
            for where, i, r in _hub_rows(ds, "test")]


def _hub_minerva(ds: DatasetConfig) -> list[Row]:
    # math-ai/minervamath: question, answer (the boxed answer of the solution); `type`, the course, if present
    return [(where, {"id": f"minerva-{r.get('idx', i)}", "problem": r.get("problem", r.get("question")),
                     "answer": r.get("answer"), "level": None, "subject": r.get("type")})
            for where, i, r in _hub_rows(ds, "test")]


def _hub_olympiadbench(ds: DatasetConfig) -> list[Row]:
    # Hothan/OlympiadBench, subset OE_TO_maths_en_COMP (open-ended, text-only, English maths): id,
    # question, final_answer (a list of one string), error, subfield, ...
    return [(where, {"id": f"olympiadbench-{r['id']}", "problem": r["question"],
                     "answer": olympiadbench_answer(int(r["id"]), r.get("final_answer") or []),
                     "answer_tol": r.get("error"), "level": None, "subject": r.get("subfield")})
            for where, i, r in _hub_rows(ds, "train", "OE_TO_maths_en_COMP")]


def unwrap_dapo_prompt(text: str) -> str:
    """DAPO-Math-17k's hub prompt -> the bare problem (the shared copy's `problem` field)."""
    if text.startswith(_DAPO_PREFIX):
        text = text[len(_DAPO_PREFIX):]
    if text.endswith(_DAPO_SUFFIX):
        text = text[: -len(_DAPO_SUFFIX)]
    return text.strip()


def dedupe_dapo(rows: Sequence[tuple[str, str]]) -> list[dict]:
    """Hub rows (problem, answer), in release order -> distinct problems, as the shared copy was built.

    Copies are exact repeats of the unwrapped, stripped text (the shared file still holds 7 pairs
    that `normalize_text` would merge, 4 differing only in trailing spaces, so its deduplication was
    on the text itself); the first copy is kept and its id is ``dapo17k-<row>`` with the row of
    the release (the shared ids run up to dapo17k-17916 of 17,917 rows); a group whose copies
    disagree on the answer is dropped whole (its gold is ambiguous).
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for row, (problem, answer) in enumerate(rows):
        groups.setdefault(problem.strip(), []).append((row, str(answer).strip()))
    out = []
    for problem, copies in groups.items():
        if len({a for _, a in copies}) > 1:
            continue
        row, answer = copies[0]
        out.append({"id": f"dapo17k-{row:05d}", "problem": problem, "answer": answer, "level": None,
                    "subject": None, "source": "DAPO-Math-17k"})
    return out


def _hub_dapo(ds: DatasetConfig) -> list[Row]:
    rows = _hub_load(ds, ds.path, split="train")
    pairs = [(unwrap_dapo_prompt(r["prompt"][0]["content"]), r["reward_model"]["ground_truth"]) for r in rows]
    return [(f"hub dataset {ds.path!r} (train) row {int(p['id'].split('-')[1])}", p) for p in dedupe_dapo(pairs)]


def _hub_numina(ds: DatasetConfig) -> list[Row]:
    # The release has one split, `train`; rows in its own schema, as a local NuminaMath-1.5 JSONL
    # holds them, so the filters of lens.datasets see the same fields on both paths.
    split = ds.split if ds.split != "test" else "train"
    rows = _hub_load(ds, ds.path, split=split)
    return [(f"hub dataset {ds.path!r} ({split}) row {i}", numina_row(i, dict(r))) for i, r in enumerate(rows)]


# Readers by dataset name, from the table (lens.datasets.DATASETS names the functions).
_READERS = {name: globals()[spec.reader] for name, spec in dataset_table.DATASETS.items()}
_HUB_READERS = {name: globals()[spec.hub_reader] for name, spec in dataset_table.DATASETS.items() if spec.hub_reader}


# --------------------------------------------------------------------------------------------
# Decontamination
# --------------------------------------------------------------------------------------------
_SPACING_CMDS = re.compile(r"\\[,!;: ]|~")
# LaTeX's line break (two backslashes) stays one mark: its second backslash before a space is not
# the spacing command "backslash space" (matching it there split "\\\\ \n" from "\\\\\n").
_LINE_BREAK = "\\\\"
_IGNORED = re.compile(r"[\s${}]")


def normalize_text(text: str) -> str:
    """Problem text "ignoring formatting": no whitespace, `$`, braces or LaTeX spacing commands
    (``\\,`` ``\\!`` ``\\;`` ``\\:`` backslash-space, ``~``).

    Chosen on the shared data: it finds exactly the 4 known MATH train/test duplicates (whitespace
    alone finds 1; `x^2` vs `x^{2}` needs the braces gone) and reproduces the data README's
    DAPO counts "ignoring formatting" (973 vs MATH test, 5 vs MATH-500); without the spacing
    commands it finds 971, and also dropping \\left/\\right gives 6 against MATH-500.
    """
    return _IGNORED.sub("", _SPACING_CMDS.sub("", text.replace(_LINE_BREAK, "\x00")))


# The second rule compares texts lowercased, without whitespace, ASCII punctuation or `$` (the data
# README's normalisation): the shorter one, at least PREFIX_MIN_CHARS long, is the start of the
# longer, compared over at most PREFIX_CHARS characters. Copies that rewrite or extend the question's
# last sentence ("... give the value of k + m") keep the statement's start; below PREFIX_MIN_CHARS a
# start is a formula (`compute 3+4` and `compute 34` agree once punctuation is gone).
PREFIX_CHARS = 80
PREFIX_MIN_CHARS = 40
_PREFIX_IGNORED = re.compile("[\\s" + re.escape(string.punctuation) + "]")


def prefix_text(text: str) -> str:
    """The text the prefix rule compares (`PREFIX_CHARS` above)."""
    return _PREFIX_IGNORED.sub("", text.lower())


class _Starts:
    """The evaluation texts of one set (`prefix_text`, cut to PREFIX_CHARS) indexed by their first
    PREFIX_MIN_CHARS characters: a training text is looked up once and compared with the few texts
    that start like it."""

    def __init__(self, texts):
        self.by_start: dict[str, list[str]] = {}
        for t in map(prefix_text, texts):
            if len(t) >= PREFIX_MIN_CHARS:
                self.by_start.setdefault(t[:PREFIX_MIN_CHARS], []).append(t[:PREFIX_CHARS])

    def match(self, prepared: str) -> bool:
        """Whether a training text, already through `prefix_text`, matches one of the set's."""
        t = prepared[:PREFIX_CHARS]
        # the shorter of the two starts the longer (both at most PREFIX_CHARS long here)
        return len(t) >= PREFIX_MIN_CHARS and any(
            t[:len(e)] == e[:len(t)] for e in self.by_start.get(t[:PREFIX_MIN_CHARS], ()))


def decontaminate(
    train: Sequence[dict], eval_sets: Mapping[str, Sequence[dict]] | Sequence[Sequence[dict]]
) -> tuple[list[dict], dict]:
    """Drop training problems that are an evaluation problem, by either of two rules:

    - ``exact``: the same text ignoring formatting (`normalize_text`);
    - ``prefix``: after lowercasing and dropping whitespace, ASCII punctuation and `$`, the shorter
      text (at least PREFIX_MIN_CHARS = 40 characters) starts the longer, compared over at most
      PREFIX_CHARS = 80 characters: the data README's prefix-80 rule with a floor on short texts.

    Returns (kept problems in their original order, report) where the report holds n_before,
    n_after, n_dropped, dropped_by_benchmark {name: count} (a problem found in several benchmarks
    counts for each), dropped_by_rule {name: {"exact": n, "prefix": n}} (a problem caught by both
    rules counts as exact) and dropped_ids.
    """
    if not isinstance(eval_sets, Mapping):
        eval_sets = {f"eval{i}": s for i, s in enumerate(eval_sets)}
    keys = {name: {normalize_text(p["problem"]) for p in probs} for name, probs in eval_sets.items()}
    starts = {name: _Starts(p["problem"] for p in probs) for name, probs in eval_sets.items()}
    kept, dropped_ids = [], []
    by_benchmark = {name: 0 for name in keys}
    by_rule = {name: {"exact": 0, "prefix": 0} for name in keys}
    for p in train:
        norm, prepared = normalize_text(p["problem"]), prefix_text(p["problem"])
        hits = {name: "exact" for name, k in keys.items() if norm in k}
        hits.update({name: "prefix" for name, s in starts.items() if name not in hits and s.match(prepared)})
        if hits:
            dropped_ids.append(p["id"])
            for name, rule in hits.items():
                by_benchmark[name] += 1
                by_rule[name][rule] += 1
        else:
            kept.append(p)
    report = {"n_before": len(train), "n_after": len(kept), "n_dropped": len(dropped_ids),
              "dropped_by_benchmark": by_benchmark, "dropped_by_rule": by_rule, "dropped_ids": dropped_ids}
    return kept, report


def evaluation_sets(cfg: RunConfig) -> list[DatasetConfig]:
    """Every benchmark a run is evaluated on: the curve sets and the final-step sets, once each."""
    out: dict[str, DatasetConfig] = {}
    for ds in (*cfg.evaluation.benchmarks, *cfg.evaluation.final_benchmarks):
        out.setdefault(ds.id, ds)
    return list(out.values())


def training_problems(cfg: RunConfig) -> tuple[list[dict], dict]:
    """All configured training problems, decontaminated against every set the run is evaluated on.

    The sets are `evaluation.benchmarks` and `evaluation.final_benchmarks` (the full MATH test set
    of the paper config is final-only). Decontamination compares with each benchmark's full set
    (its `limit`, `limit_per_level_subject` and `levels` ignored), so evaluating on a subset never
    leaves the rest of the benchmark in the training data. The report's `dropped_by_benchmark`
    counts the dropped problems per evaluation set; before that, `rows` counts each training set's
    source rows and `dropped_by_filter` what each rule dropped from it ({dataset id: {rule: rows}}:
    `no_gold` for rows without a gold answer, then the dataset's filters, lens.datasets), and
    `loaded` the problems each set then gave (after its `levels`/`limit` subsets).
    """
    if not cfg.data.train:
        raise DataError("data.train is empty: configure at least one training dataset")
    problems: list[dict] = []
    loaded, rows, by_filter = {}, {}, {}
    for ds in cfg.data.train:
        part, read = load_dataset(ds, seed=cfg.seed, training=True)
        loaded[ds.id], rows[ds.id], by_filter[ds.id] = len(part), read["rows"], read["dropped_by_filter"]
        problems.extend(part)
    report: dict[str, Any] = {"rows": rows, "dropped_by_filter": by_filter, "loaded": loaded,
                              "n_before": len(problems), "decontaminated": cfg.data.decontaminate}
    if cfg.data.decontaminate and evaluation_sets(cfg):
        eval_sets = {b.id: load_problems(dataclasses.replace(b, limit=None, levels=None, limit_per_level_subject=None),
                                         seed=cfg.seed)
                     for b in evaluation_sets(cfg)}
        problems, dec = decontaminate(problems, eval_sets)
        report.update(dec)
    else:
        report.update({"n_after": len(problems), "n_dropped": 0, "dropped_by_benchmark": {}, "dropped_by_rule": {},
                       "dropped_ids": []})
    return problems, report


# --------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------
def format_prompt(problem_text: str, style: str, tokenizer=None) -> str:
    """The full prompt string for one problem: `chat` applies the tokenizer's chat template."""
    if style == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt style 'chat' needs a tokenizer with a chat template; use 'plain' for base models")
        messages = [{"role": "user", "content": problem_text + CHAT_SUFFIX}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if style == "plain":
        return PLAIN_TEMPLATE.format(problem=problem_text)
    if style == "bare":
        return BARE_TEMPLATE.format(problem=problem_text)
    raise ValueError(f"unknown prompt style {style!r}; valid: ['chat', 'plain', 'bare']")


def stop_strings(style: str) -> tuple[str, ...]:
    """Strings that end a completion under prompt style `style` (see STOP_STRINGS)."""
    return STOP_STRINGS[style]


def first_answer(completion: str, style: str) -> str:
    """The completion up to the first stop string of its prompt style (the whole text if none)."""
    cut = len(completion)
    for stop in STOP_STRINGS[style]:
        at = completion.find(stop)
        if at != -1:
            cut = min(cut, at)
    return completion[:cut]


# --------------------------------------------------------------------------------------------
# CLI: contamination counts on the shared data
# --------------------------------------------------------------------------------------------
def _report(data_dir: Path) -> dict:
    def load(name, path, split="test"):
        return load_problems(DatasetConfig(name=name, path=str(path), split=split))

    train = load("math", data_dir / "math", "train")
    test = load("math", data_dir / "math", "test")
    m500 = load("math500", data_dir / "math")
    dapo = load("dapo", data_dir / "dapo")
    out = {}
    for label, norm in (("ignoring_formatting", normalize_text), ("whitespace", lambda t: " ".join(t.split()))):
        def count(a, b, norm=norm):
            keys = {norm(p["problem"]) for p in b}
            return [p["id"] for p in a if norm(p["problem"]) in keys]

        out[label] = {
            "math_train_vs_test": count(train, test),
            "dapo_vs_math_test": len(count(dapo, test)),
            "dapo_vs_math500": len(count(dapo, m500)),
            "dapo_vs_math_train": len(count(dapo, train)),
        }
    # What `decontaminate` drops from each training set per evaluation set and rule (a problem in
    # several evaluation sets counts in each): the paper config's sets, the five beside MATH included.
    evals = {"math_test": test, "math500": m500}
    for name, folder in (("aime24", "aime"), ("aime25", "aime"), ("amc23", "amc"), ("minerva", "minerva"),
                         ("olympiadbench", "olympiadbench")):
        evals[name] = load(name, data_dir / folder)
    out["decontamination"] = {train_name: decontaminate(rows, evals)[1]["dropped_by_rule"]
                              for train_name, rows in (("math_train", train), ("dapo", dapo))}
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="print contamination counts on the data directory")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    args = parser.parse_args()
    if args.report:
        print(json.dumps(_report(Path(args.data)), indent=2))
    else:
        parser.print_help()
