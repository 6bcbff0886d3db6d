"""MATH / MATH-500 / DAPO-Math-17k / NuminaMath / synthetic benchmarks -> one problem schema, plus prompts.

A problem is ``{id, problem, answer, level, subject, source}`` (level 1-5 or None). Every dataset
is read from a local JSONL file or directory (``../shared/data`` here) or, on a machine with
network access, from its Hugging Face hub id (imported lazily; an unreachable hub fails in seconds
with a message naming the local-path alternative).

Decontamination drops training problems whose normalised text (``normalize_text``) equals an
evaluation problem's. Counts on the shared data (reproduce with ``python -m lens.data --report``):
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lens.config import DatasetConfig, RunConfig

SCHEMA_KEYS = ("id", "problem", "answer", "level", "subject", "source")

# The instruction appended to every problem; both prompt styles ask for a \boxed{} final answer,
# which is what lens.rewards extracts first.
CHAT_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
# Models trained from scratch on the embedded benchmark (lens.warmup) learn the answer format from
# their warm-up data, so they get the problem alone: prompt tokens dominate a tiny model's cost.
BARE_TEMPLATE = "{problem}\n"
PLAIN_TEMPLATE = "Question: {problem}\nPlease put your final answer within \\boxed{{}}.\nAnswer: Let's think step by step."
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
_LOCAL_HINT = {
    "math": "../shared/data/math (a directory with train.jsonl/test.jsonl/math500.jsonl)",
    "math500": "../shared/data/math/math500.jsonl",
    "dapo": "../shared/data/dapo/dapo_math_17k.jsonl",
    "numina": "a local JSONL file with problem/answer fields",
    "synthetic": "the directory written by the synthetic data rule",
}


class DataError(ValueError):
    """A dataset cannot be found or read; the message names the path or hub id and what to do."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def load_problems(ds: DatasetConfig, *, seed: int = 0) -> list[dict]:
    """The problems of one configured dataset, in the shared schema, filtered and subset.

    `ds.levels` keeps only those levels; `ds.limit_per_level_subject` keeps at most that many
    problems of each (level, subject) cell; `ds.limit` then draws that many problems. Draws use
    `random.Random(seed)` and keep the source order, so a subset is stable across runs.
    """
    if ds.name not in _READERS:
        raise DataError(f"unknown dataset name {ds.name!r}; valid: {sorted(_READERS)}")
    path = Path(ds.path).expanduser()
    if path.exists():
        problems = _READERS[ds.name](path, ds)
    elif _looks_like_hub_id(ds.path):
        problems = _HUB_READERS[ds.name](ds)
    else:
        raise DataError(
            f"dataset {ds.name!r}: no such file or directory: {ds.path!r} (resolved to {path.resolve()}); "
            f"give an existing local path (e.g. {_LOCAL_HINT[ds.name]}) or a hub id like owner/name"
        )
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
    return problems


def _looks_like_hub_id(path: str) -> bool:
    return bool(_HUB_ID_RE.fullmatch(path)) and not path.startswith((".", "/", "~"))


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
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


def _record(row: dict, source: str, where: str) -> dict:
    missing = [k for k in ("id", "problem", "answer") if k not in row]
    if missing:
        raise DataError(f"{where}: record lacks {missing}; expected keys {list(SCHEMA_KEYS)}")
    level = row.get("level")
    return {
        "id": str(row["id"]),
        "problem": str(row["problem"]),
        "answer": str(row["answer"]),
        "level": int(level) if level is not None else None,
        "subject": row.get("subject"),
        "source": row.get("source") or source,
    }


def _read_math(path: Path, ds: DatasetConfig) -> list[dict]:
    if path.is_dir() and ds.split not in _MATH_FILES:
        raise DataError(f"dataset math: split {ds.split!r} unknown; valid: {sorted(_MATH_FILES)}")
    file = _pick_file(path, _MATH_FILES.get(ds.split, ""))
    return [_record(r, "MATH", str(file)) for r in _read_jsonl(file)]


def _read_math500(path: Path, ds: DatasetConfig) -> list[dict]:
    file = _pick_file(path, _MATH500_FILE)
    return [_record(r, "MATH-500", str(file)) for r in _read_jsonl(file)]


def _read_dapo(path: Path, ds: DatasetConfig) -> list[dict]:
    file = _pick_file(path, _DAPO_FILE)
    return [_record(r, "DAPO-Math-17k", str(file)) for r in _read_jsonl(file)]


def _read_numina(path: Path, ds: DatasetConfig) -> list[dict]:
    file = _pick_file(path, f"{ds.split}.jsonl")
    rows = _read_jsonl(file)
    return [_record({"id": r.get("id", f"numina-{i:06d}"), **r}, "NuminaMath-1.5", str(file)) for i, r in enumerate(rows)]


def _read_synthetic(path: Path, ds: DatasetConfig) -> list[dict]:
    file = path / f"{ds.split}.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"dataset synthetic: {file} not found (expected {{path}}/{{split}}.jsonl)")
    # Extra keys (e.g. worked `solution`s for the warm-up) are dropped: the schema is the contract.
    return [_record(r, "synthetic", str(file)) for r in _read_jsonl(file)]


_READERS = {
    "math": _read_math,
    "math500": _read_math500,
    "dapo": _read_dapo,
    "numina": _read_numina,
    "synthetic": _read_synthetic,
}


# --------------------------------------------------------------------------------------------
# Hub
# --------------------------------------------------------------------------------------------
def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")


def _hub_load(ds: DatasetConfig, *args, **kwargs):
    """datasets.load_dataset(*args) that fails in seconds, naming the id, when the hub is unreachable."""
    hint = (f"set the dataset path to a local file or directory instead (e.g. {_LOCAL_HINT[ds.name]})")
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


def _hub_math(ds: DatasetConfig) -> list[dict]:
    from lens.rewards import last_boxed

    out = []
    for config in HENDRYCKS_CONFIGS:
        rows = _hub_load(ds, ds.path, config, split=ds.split)
        for i, r in enumerate(rows):
            # The hub copy has no answer column: it is the last \boxed{} of the solution, as in
            # the shared files (whose 4 hand-set answers and joined multi-box answers differ).
            out.append({
                "id": f"{ds.split}/{config}/{i}", "problem": r["problem"],
                "answer": last_boxed(r["solution"]) or "", "level": _level(r.get("level")),
                "subject": r.get("type"), "source": "MATH",
            })
    return out


def _hub_math500(ds: DatasetConfig) -> list[dict]:
    rows = _hub_load(ds, ds.path, split="test")
    return [{"id": r["unique_id"], "problem": r["problem"], "answer": r["answer"], "level": _level(r["level"]),
             "subject": r["subject"], "source": "MATH-500"} for r in rows]


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


def _hub_dapo(ds: DatasetConfig) -> list[dict]:
    rows = _hub_load(ds, ds.path, split="train")
    pairs = [(unwrap_dapo_prompt(r["prompt"][0]["content"]), r["reward_model"]["ground_truth"]) for r in rows]
    return dedupe_dapo(pairs)


def _hub_numina(ds: DatasetConfig) -> list[dict]:
    rows = _hub_load(ds, ds.path, split=ds.split if ds.split != "test" else "train")
    out = []
    for i, r in enumerate(rows):
        answer = str(r.get("answer") or "").strip()
        # Proofs and problems without a checkable final answer cannot be graded by Math-Verify.
        if not answer or answer.lower() in ("proof", "notfound", "none"):
            continue
        out.append({"id": f"numina-{i:07d}", "problem": r["problem"], "answer": answer, "level": None,
                    "subject": r.get("problem_type"), "source": f"NuminaMath-1.5/{r.get('source', '')}"})
    return out


def _hub_synthetic(ds: DatasetConfig) -> list[dict]:
    raise DataError(f"dataset synthetic is generated locally, not loaded from the hub ({ds.path!r}); "
                    f"use {_LOCAL_HINT['synthetic']}")


_HUB_READERS = {
    "math": _hub_math,
    "math500": _hub_math500,
    "dapo": _hub_dapo,
    "numina": _hub_numina,
    "synthetic": _hub_synthetic,
}


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


def decontaminate(
    train: Sequence[dict], eval_sets: Mapping[str, Sequence[dict]] | Sequence[Sequence[dict]]
) -> tuple[list[dict], dict]:
    """Drop training problems whose normalised text equals any evaluation problem's.

    Returns (kept problems in their original order, report) where the report holds n_before,
    n_after, n_dropped, dropped_by_benchmark {name: count} (a problem found in several benchmarks
    counts for each) and dropped_ids.
    """
    if not isinstance(eval_sets, Mapping):
        eval_sets = {f"eval{i}": s for i, s in enumerate(eval_sets)}
    keys = {name: {normalize_text(p["problem"]) for p in probs} for name, probs in eval_sets.items()}
    kept, dropped_ids = [], []
    by_benchmark = {name: 0 for name in keys}
    for p in train:
        norm = normalize_text(p["problem"])
        hits = [name for name, k in keys.items() if norm in k]
        if hits:
            dropped_ids.append(p["id"])
            for name in hits:
                by_benchmark[name] += 1
        else:
            kept.append(p)
    report = {"n_before": len(train), "n_after": len(kept), "n_dropped": len(dropped_ids),
              "dropped_by_benchmark": by_benchmark, "dropped_ids": dropped_ids}
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
    counts the dropped problems per evaluation set.
    """
    if not cfg.data.train:
        raise DataError("data.train is empty: configure at least one training dataset")
    problems: list[dict] = []
    loaded = {}
    for ds in cfg.data.train:
        part = load_problems(ds, seed=cfg.seed)
        loaded[ds.id] = len(part)
        problems.extend(part)
    report: dict[str, Any] = {"loaded": loaded, "n_before": len(problems), "decontaminated": cfg.data.decontaminate}
    if cfg.data.decontaminate and evaluation_sets(cfg):
        eval_sets = {b.id: load_problems(dataclasses.replace(b, limit=None, levels=None, limit_per_level_subject=None),
                                         seed=cfg.seed)
                     for b in evaluation_sets(cfg)}
        problems, dec = decontaminate(problems, eval_sets)
        report.update(dec)
    else:
        report.update({"n_after": len(problems), "n_dropped": 0, "dropped_by_benchmark": {}, "dropped_ids": []})
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
        def count(a, b):
            keys = {norm(p["problem"]) for p in b}
            return [p["id"] for p in a if norm(p["problem"]) in keys]

        out[label] = {
            "math_train_vs_test": count(train, test),
            "dapo_vs_math_test": len(count(dapo, test)),
            "dapo_vs_math500": len(count(dapo, m500)),
            "dapo_vs_math_train": len(count(dapo, train)),
        }
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
