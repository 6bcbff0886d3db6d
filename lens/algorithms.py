"""The table of algorithms: one entry per algorithm id, from which everything else derives.

Not a command; imported by lens.config (ids, parameters, validation), lens.objective (which
function computes an id's advantages, and with which parameters), lens.trainer and lens.train
(confidence, TRL loss type and clipping), analysis.style (label, colour, marker, legend order),
analysis.tab_ablation and the workflow (which table rows an id fills). Torch-free, so the
workflow and the analysis scripts read it without importing torch.

Adding an algorithm = one advantage function in lens/objective.py, one `Algorithm` entry in
`ALGORITHMS` below, one hand-worked test in tests/test_objective.py; tests/test_algorithms.py
fails when an entry and the code disagree (a missing function, a parameter the function does not
take, a default that differs from the function's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

# The kinds of group of G samples the advantage rules tell apart (lens.objective), in the order the
# trainer's metrics (groups/{kind}_frac, adv/*/{kind}), the rollout records and the analysis use.
GROUP_TYPES = ("mixed", "all_wrong", "all_correct")


@dataclass(frozen=True)
class Param:
    """One advantage parameter: its type (as lens.config parses it), default, meaning and bounds."""

    type: Any
    default: Any
    doc: str
    valid: Callable[[Any], bool] | None = None  # lens.config refuses a value for which this is False ...
    rule: str = ""  # ... with this message


# Every advantage parameter an algorithm may read; lens.config.AlgorithmConfig has one field each.
# Defaults equal the advantage functions' keyword defaults (tests/test_algorithms.py checks it).
PARAMS: dict[str, Param] = {
    "alpha": Param(float, 0.25, "LENS: scale of negative-group advantages"),
    "wrong_scale": Param(float, 1.0, "LENS: a wrong answer's calibrated reward is -wrong_scale (1/G) p/(D - p); "
                                     "1 = the paper's 1/G", lambda v: v >= 0, "must be >= 0"),
    "floor_factor": Param(float, 2.0, "LENS: floor of the normaliser, D >= floor_factor max_i p_i (the paper's 2); "
                                      "must be > 1 so that D - p > 0",
                          lambda v: v > 1, "must be > 1 (D >= floor_factor max p keeps D - p > 0)"),
    "negative_norm": Param(Literal["demean", "standardize"], "demean",
                           "LENS: all-wrong groups' r^ is de-meaned (the paper) or standardised, then scaled by alpha"),
    "eps": Param(float, 1e-6, "added to the group std"),
    "std": Param(Literal["sample", "population"], "sample", "sample: Bessel-corrected group std, as in VeRL"),
    "wr_lambda": Param(float, 0.1, "W-REINFORCE: advantage of a correct answer"),
    "clip_low": Param(float, 0.16, "NGRPO: lower clip epsilon, ratio >= 1 - clip_low (binds on negative advantages)",
                      lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "clip_high": Param(float, 0.24, "NGRPO: upper clip epsilon, ratio <= 1 + clip_high (binds on positive advantages)",
                       lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "shuffle_frac": Param(float, 1.0, "grpo_shuffled: share q of groups whose advantages are shuffled, each group "
                                      "independently; the others keep GRPO's (1: every group, a control that must "
                                      "lose; smaller q: a graded effect)",
                          lambda v: 0 <= v <= 1,
                          "must be in [0, 1] (the share of groups whose advantages are shuffled)"),
    "max_gen_batches": Param(int, 3, "grpo_dynamic: generation batches of B prompts a rollout may take, the first "
                                     "included (verl's max_num_gen_batches); at the cap it trains on the "
                                     "informative groups found (lens.dynamic)",
                             lambda v: v >= 1, "must be >= 1 (generation batches per rollout, the first included)"),
}
TRL_LOSS_TYPES = ("grpo", "dr_grpo")


@dataclass(frozen=True)
class Algorithm:
    """What an algorithm id means to every part of the suite."""

    advantage: str  # name of its advantage function in lens.objective
    params: tuple[str, ...]  # the PARAMS it reads: its function's keyword arguments, nothing else
    reads_confidence: bool  # its advantages read p_i (worth an extra forward pass when TRL has none)
    label: str  # display name in figures and tables
    color: str
    marker: str
    loss_type: str = "grpo"  # TRL's loss aggregation: grpo = Eq. 3 (per-sequence token mean)
    # PPO clipping: None = training.clip_eps on both sides; else the two PARAMS that set TRL's
    # `epsilon` (lower: ratio >= 1 - epsilon) and `epsilon_high` (upper: ratio <= 1 + epsilon_high).
    clip: tuple[str, str] | None = None
    # Groups it filters out of the batch (those given A = 0) also leave the loss's mean over
    # sequences: lens.trainer rescales the kept sequences' advantages per optimizer update.
    drop_filtered: bool = False
    # Its function also takes `seed` (an int, not a PARAM): lens.trainer passes one per rollout,
    # derived from the run seed and the step, so a run's draws are reproducible.
    seeded: bool = False
    # DAPO's dynamic sampling (lens.dynamic): the PARAM capping a rollout's generation batches. lens.trainer
    # then refills each rollout with informative groups; such an algorithm also sets drop_filtered.
    gen_batches: str | None = None
    # Tables with a fixed row for this id (listed as "not run" when absent): table name -> row.
    tables: Mapping[str, int] = field(default_factory=dict)
    paper: str = ""  # where its definition comes from


# Ids in legend/table order (analysis.style.ALGO_ORDER). Colours: Okabe-Ito first (readable
# with colour-vision deficiency and in greyscale), then Paul Tol's muted scheme.
ALGORITHMS: dict[str, Algorithm] = {
    "grpo": Algorithm(
        "grpo_advantages", ("eps", "std"), False, "GRPO", "#0072B2", "o",
        tables={"tab_ablation": 0}, paper="Shao et al. 2024; LENS paper Eq. 2-3"),
    "lens": Algorithm(
        "lens_advantages", ("alpha", "eps", "std", "wrong_scale", "floor_factor", "negative_norm"), True,
        "LENS", "#D55E00", "s",
        tables={"tab_ablation": 3}, paper="Feng et al. 2025 (arXiv:2510.08696), Section 5, Eq. 11-14"),
    "lens_mixed_only": Algorithm(
        "lens_mixed_only_advantages", ("eps", "std", "wrong_scale", "floor_factor"), True,
        "LENS (mixed only)", "#E69F00", "^",
        tables={"tab_ablation": 1}, paper="LENS paper Table 2"),
    "lens_negative_only": Algorithm(
        "lens_negative_only_advantages", ("alpha", "eps", "std", "wrong_scale", "floor_factor", "negative_norm"),
        True, "LENS (negative only)", "#CC79A7", "v",
        tables={"tab_ablation": 2}, paper="LENS paper Table 2"),
    "dr_grpo": Algorithm(
        "dr_grpo_advantages", (), False, "Dr. GRPO", "#009E73", "D", loss_type="dr_grpo",
        paper="Liu et al. 2025 (arXiv:2503.20783)"),
    "nsr": Algorithm(
        "nsr_advantages", (), False, "NSR", "#56B4E9", "P", paper="Zhu et al. 2025 (arXiv:2506.01347)"),
    "w_reinforce": Algorithm(
        "w_reinforce_advantages", ("wr_lambda",), False, "W-REINFORCE", "#7F7F7F", "X",
        paper="Zhu et al. 2025 (arXiv:2506.01347)"),
    "ngrpo": Algorithm(
        "ngrpo_advantages", ("eps", "std"), False, "NGRPO", "#000000", "*", clip=("clip_low", "clip_high"),
        paper="Nan et al. 2025 (arXiv:2509.18851)"),
    "uniform_negative": Algorithm(
        "uniform_negative_advantages", ("alpha", "eps", "std"), False, "Uniform negative (ours)", "#882255", "h",
        paper="this suite's baseline: every wrong answer -1/G (not the LENS paper's Appendix C, which reduces "
              "to GRPO here)"),
    "reinforce_rej": Algorithm(
        "reinforce_rej_advantages", (), False, "Reinforce-Rej", "#999933", "d", drop_filtered=True,
        paper="Xiong et al. 2025 (arXiv:2504.11343)"),
    "grpo_shuffled": Algorithm(
        "grpo_shuffled_advantages", ("eps", "std", "shuffle_frac"), False, "GRPO (shuffled advantages)", "#44AA99",
        "<", seeded=True, paper="this suite's control arm: GRPO's advantages permuted within a share q of the groups "
                                "(shuffle_frac; q = 1 by default: every group)"),
    "grpo_dynamic": Algorithm(
        "grpo_advantages", ("eps", "std"), False, "GRPO + dynamic sampling", "#332288", ">", drop_filtered=True,
        gen_batches="max_gen_batches",
        paper="Yu et al. 2025, DAPO (arXiv:2503.14476), dynamic sampling; verl algorithm.filter_groups"),
}


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


def own_params(algo: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `values` that `algo`'s advantage function takes (its own parameters only)."""
    return {name: values[name] for name in get(algo).params if name in values}


def read_params(algo: str) -> tuple[str, ...]:
    """Every PARAM `algo` reads: its advantage function's, its clipping pair's and its sampling cap's."""
    spec = get(algo)
    return (*spec.params, *(spec.clip or ()), *((spec.gen_batches,) if spec.gen_batches else ()))


def clip_epsilons(algo: str, params: Mapping[str, Any], clip_eps: float) -> tuple[float, float]:
    """(lower, upper) PPO clip epsilons: the algorithm's own, else `clip_eps` on both sides."""
    spec = get(algo)
    if spec.clip is None:
        return clip_eps, clip_eps
    low, high = spec.clip
    return float(params.get(low, PARAMS[low].default)), float(params.get(high, PARAMS[high].default))


def check() -> list[str]:
    """Inconsistencies inside the table itself (the code-facing checks live in the tests)."""
    problems = []
    for algo, spec in ALGORITHMS.items():
        if algo != algo.lower() or not algo.isidentifier():
            problems.append(f"{algo}: ids are lowercase identifiers")
        unknown = [p for p in read_params(algo) if p not in PARAMS]
        if unknown:
            problems.append(f"{algo}: unknown parameter(s) {unknown}; declared: {list(PARAMS)}")
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
