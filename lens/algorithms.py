"""The table of algorithms: one entry per algorithm id, from which everything else derives.

Each entry is declared on its advantage function in lens/objective.py, as verl's `@register_adv_est`
sits beside each estimator:

    @register("w_reinforce", label="W-REINFORCE", color="#7F7F7F", marker="X", paper="Zhu et al. 2025")
    def w_reinforce_advantages(rewards, confidence, *, wr_lambda=0.1): ...

The function's keyword parameters are the algorithm's parameters (fields of lens.config.AlgorithmConfig,
whose doc, default and bounds sit there); a `seed` keyword makes it seeded. Everything else an id means
(label, colour, marker for the figures; TRL's loss type and clipping; which table rows it fills) is the
decorator's keywords, the fields of `Algorithm` below.

The workflow, the config parser and the analysis scripts read this table without importing torch
(it would add ~3 s to every Snakemake parse and figure job): `ALGORITHMS` is read from lens/objective.py's
source, whose `register(...)` arguments must therefore be literals. Importing lens.objective runs the
same decorators, which attach each function (`FUNCTIONS`) and fail if the two readings ever differ.
`register` used anywhere else (a notebook, a test) adds an algorithm for that interpreter only.

Adding an algorithm = one decorated function in lens/objective.py and its hand-worked values in
tests/test_objective.py (README, "Adding an algorithm"); tests/test_algorithms.py fails when an entry
is inconsistent (a parameter the config does not know, a default that differs from the config's).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

# The kinds of group of G samples the advantage rules tell apart (lens.objective), in the order the
# trainer's metrics (groups/{kind}_frac, adv/*/{kind}), the rollout records and the analysis use.
GROUP_TYPES = ("mixed", "all_wrong", "all_correct")
TRL_LOSS_TYPES = ("grpo", "dr_grpo")
SOURCE = Path(__file__).with_name("objective.py")  # where the shipped algorithms are declared


@dataclass(frozen=True)
class Algorithm:
    """What an algorithm id means to every part of the suite."""

    advantage: str  # the name of its advantage function (the function `register` decorates)
    params: tuple[str, ...]  # that function's keyword parameters but `seed`: AlgorithmConfig fields
    label: str  # display name in figures and tables
    color: str
    marker: str
    reads_confidence: bool = False  # its advantages read p_i (worth an extra forward pass when TRL has none)
    loss_type: str = "grpo"  # TRL's loss aggregation: grpo = Eq. 3 (per-sequence token mean)
    # PPO clipping: None = training.clip_eps on both sides; else the two parameters that set TRL's
    # `epsilon` (lower: ratio >= 1 - epsilon) and `epsilon_high` (upper: ratio <= 1 + epsilon_high).
    clip: tuple[str, str] | None = None
    # Groups it filters out of the batch (those given A = 0) also leave the loss's mean over
    # sequences: lens.trainer rescales the kept sequences' advantages per optimizer update.
    drop_filtered: bool = False
    # Its function also takes `seed` (an int, not a parameter): lens.trainer passes one per rollout,
    # derived from the run seed and the step, so a run's draws are reproducible.
    seeded: bool = False
    # DAPO's dynamic sampling (lens.dynamic): the parameter capping a rollout's generation batches. lens.trainer
    # then refills each rollout with informative groups; such an algorithm also sets drop_filtered.
    gen_batches: str | None = None
    # Tables with a fixed row for this id (listed as "not run" when absent): table name -> row.
    tables: Mapping[str, int] = field(default_factory=dict)
    paper: str = ""  # where its definition comes from


def _entry(function: str, keywords: Iterable[str], declared: Mapping[str, Any]) -> Algorithm:
    """The entry of an advantage function named `function` with keyword parameters `keywords`, declared
    with `register(algo, **declared)`."""
    keywords = tuple(keywords)
    return Algorithm(advantage=function, params=tuple(k for k in keywords if k != "seed"), seeded="seed" in keywords,
                     **declared)


def _declared(source: Path) -> dict[str, Algorithm]:
    """Every `@register(...)` of `source`'s top-level functions, in the file's order (the legend's), read
    from the source text alone."""
    table: dict[str, Algorithm] = {}
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        keywords = [arg.arg for arg in node.args.kwonlyargs]
        for decorator in node.decorator_list:
            func = decorator.func if isinstance(decorator, ast.Call) else None
            if getattr(func, "id", getattr(func, "attr", None)) != "register":
                continue
            where = f"{source}:{decorator.lineno}"
            try:
                (algo,) = [ast.literal_eval(arg) for arg in decorator.args]
                declared = {kw.arg: ast.literal_eval(kw.value) for kw in decorator.keywords}
            except ValueError as err:  # a name or call among the arguments; also a wrong number of ids
                raise ValueError(f"{where}: register() takes one algorithm id and keyword literals (this table "
                                 "is read from the source, without importing torch)") from err
            if algo in table:
                raise ValueError(f"{where}: algorithm {algo!r} is registered twice")
            try:
                table[algo] = _entry(node.name, keywords, declared)
            except TypeError as err:  # a keyword that is no field of Algorithm
                raise ValueError(f"{where}: register({algo!r}, ...): {err}") from None
    return table


# Ids in legend/table order (analysis.style.ALGO_ORDER): the order of lens/objective.py's functions.
ALGORITHMS: dict[str, Algorithm] = _declared(SOURCE)
# Id -> advantage function, filled as lens.objective (or another module's `register`) runs.
FUNCTIONS: dict[str, Callable[..., Any]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def register(algo: str, **declared: Any) -> Callable[[F], F]:
    """Declare algorithm `algo` on its advantage function (keywords: the fields of `Algorithm` other than
    advantage, params and seeded, which the function itself gives)."""

    def add(fn: F) -> F:
        keywords = [p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
        spec = _entry(fn.__name__, keywords, declared)
        known = ALGORITHMS.setdefault(algo, spec)
        if known != spec:
            raise RuntimeError(f"algorithm {algo!r}: registered as {spec}, but {SOURCE.name}'s source reads {known}")
        FUNCTIONS[algo] = fn
        return fn

    return add


def get(algo: str) -> Algorithm:
    """The table entry of `algo`; ValueError naming the valid ids if there is none."""
    try:
        return ALGORITHMS[algo]
    except (KeyError, TypeError):
        raise ValueError(f"unknown algorithm {algo!r}; valid: {list(ALGORITHMS)}") from None


def ids() -> tuple[str, ...]:
    return tuple(ALGORITHMS)


def reading_confidence() -> tuple[str, ...]:
    """Ids whose advantages read the confidence p_i (the LENS family)."""
    return tuple(a for a, spec in ALGORITHMS.items() if spec.reads_confidence)


def table_rows(table: str) -> list[str]:
    """Ids with a fixed row in `table`, in row order."""
    rows = [(spec.tables[table], a) for a, spec in ALGORITHMS.items() if table in spec.tables]
    return [a for _, a in sorted(rows)]


def read_params(algo: str) -> tuple[str, ...]:
    """Every parameter `algo` reads: its advantage function's, its clipping pair's and its sampling cap's."""
    spec = get(algo)
    return (*spec.params, *(spec.clip or ()), *((spec.gen_batches,) if spec.gen_batches else ()))


def clip_epsilons(algo: str, params: Mapping[str, Any], clip_eps: float) -> tuple[float, float]:
    """(lower, upper) PPO clip epsilons: the algorithm's own (from `params`, every parameter's value), else
    `clip_eps` on both sides."""
    spec = get(algo)
    if spec.clip is None:
        return clip_eps, clip_eps
    low, high = spec.clip
    return float(params[low]), float(params[high])


def check(known_params: Iterable[str]) -> list[str]:
    """Inconsistencies inside the table, and parameters it reads outside `known_params` (lens.config.PARAMS)."""
    known_params = list(known_params)
    problems = []
    for algo, spec in ALGORITHMS.items():
        if algo != algo.lower() or not algo.isidentifier():
            problems.append(f"{algo}: ids are lowercase identifiers")
        unknown = [p for p in read_params(algo) if p not in known_params]
        if unknown:
            problems.append(f"{algo}: unknown parameter(s) {unknown}; lens.config.AlgorithmConfig has {known_params}")
        if spec.loss_type not in TRL_LOSS_TYPES:
            problems.append(f"{algo}: loss_type {spec.loss_type!r} not in {TRL_LOSS_TYPES}")
        if spec.gen_batches and not spec.drop_filtered:
            problems.append(f"{algo}: dynamic sampling leaves its filler groups out of the loss mean: "
                            "set drop_filtered")
        if not (spec.label and spec.color.startswith("#") and spec.marker):
            problems.append(f"{algo}: needs a label, a #rrggbb colour and a marker")
    for what in ("label", "color", "marker"):
        values = [getattr(spec, what) for spec in ALGORITHMS.values()]
        problems += [f"{what} {v!r} used by more than one algorithm"
                     for v in sorted(set(values)) if values.count(v) > 1]
    return problems
