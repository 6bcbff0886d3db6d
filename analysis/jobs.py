"""The workflow's analysis jobs: which figure and table scripts each scope runs, and the options each
script gets from the workflow config (workflow/rules/analysis.smk runs them; not a command).

Scopes (subfolders of tidy/, figures/, tables/; lens.layout): "" the main target's runs,
"ablations/" those and `ablation_algorithms`, "sweeps/" GRPO and the sweep arms. A script's options
come only from the `figures:` and `evaluation:` sections and the arm lists, and reach the job as its
command line, so changing anything else never reruns it (and changing a figure setting reruns only
the analysis).
"""

from __future__ import annotations

import shlex

from lens import algorithms
from lens.config import WorkflowConfig

FIGURES = {
    "": ["fig_accuracy_by_level", "fig_training_curves", "fig_pass_at_k", "fig_benchmarks", "fig_negative_group_ratio",
         "fig_weight_function", "fig_confident_mistakes", "fig_accuracy_vs_compute", "fig_training_dynamics"],
    "ablations/": ["fig_leaderboard", "fig_accuracy_vs_compute", "fig_training_dynamics"],
    "sweeps/": ["fig_sensitivity"],
}
TABLE_FORMATS = ("md", "tex", "csv")


def tables(cfg: WorkflowConfig) -> dict[str, list[str]]:
    """Table scripts per scope. Table 2 (tab_ablation) needs its arms: a main table when they are main
    algorithms (`algorithms`), else only an `ablations` one."""
    table2_in_main = set(algorithms.table_rows("tab_ablation")) <= set(cfg.algorithms)
    return {
        "": ["tab_pass_at_k", "tab_accuracy_by_level", "tab_benchmarks", *(["tab_ablation"] if table2_in_main else []),
             "tab_confident_mistakes", "tab_cost"],
        "ablations/": ["tab_ablation", "tab_leaderboard", "tab_cost"],
        "sweeps/": ["tab_sensitivity"],
    }


def _benchmark(*candidates) -> str:
    """--benchmark of the first of these benchmark lists that is not empty."""
    first = next((sets[0].id for sets in candidates if sets), None)
    return f"--benchmark {first}" if first else ""


def options(cfg: WorkflowConfig) -> dict[str, str]:
    """{script: its command-line options}, for every figure and table script and the report."""
    fig, ev = cfg.figures, cfg.evaluation
    draw = f"--formats {' '.join(fig.formats)} --dpi {fig.dpi}"
    boot = f"--bootstrap-samples {fig.bootstrap_samples}"
    pass_k = " ".join(str(k) for k in ev.pass_k)
    algos = " ".join(cfg.algorithms)
    arms = [arm for arm, _, _ in cfg.sweep_variants()]
    sweep_arms = f"--arms {' '.join(shlex.quote(a) for a in arms)}" if arms else ""
    # The curves and Pass@k read the set evaluated every N steps; accuracy by level the full final set.
    curves = _benchmark(ev.benchmarks, ev.final_benchmarks)
    levels = _benchmark(ev.final_benchmarks, ev.benchmarks)
    curve_set = curves.replace("--benchmark", "--curve-benchmark")
    # Every set of the final step, the final-only ones first (MATH test, then AIME ... OlympiadBench)
    sets = list(dict.fromkeys(ds.id for ds in (*ev.final_benchmarks, *ev.benchmarks)))
    final_sets = f"--benchmarks {' '.join(sets)}" if sets else ""
    return {
        "fig_accuracy_by_level": f"{levels} {boot} {draw}",
        "fig_training_curves": f"{curves} {boot} {draw}",
        "fig_accuracy_vs_compute": f"{curves} {boot} {draw}",
        "fig_pass_at_k": f"{curves} --k-max {ev.n_samples} {boot} {draw}",
        "fig_benchmarks": f"{final_sets} {boot} {draw}",
        "fig_negative_group_ratio": f"--algos {algos} --smoothing-window {fig.smoothing_window} {draw}",
        "fig_weight_function": draw,
        "fig_training_dynamics": f"--smoothing-window {fig.smoothing_window} {draw}",
        "fig_confident_mistakes": draw,
        "fig_leaderboard": f"{levels} {curve_set} --k-max {ev.n_samples} {boot} {draw}",
        "fig_sensitivity": f"{levels} {sweep_arms} {boot} {draw}",
        "tab_pass_at_k": f"{curves} --k {pass_k} --algos {algos} {boot}",
        "tab_accuracy_by_level": f"{levels} {boot}",
        "tab_benchmarks": f"{final_sets} {boot}",
        "tab_ablation": f"{curves} --k {pass_k} {boot}",
        "tab_confident_mistakes": "--top 10",
        "tab_cost": "",
        "tab_leaderboard": f"{levels} {curve_set} --k-max {ev.n_samples} {boot}",
        "tab_sensitivity": f"{levels} {sweep_arms} {boot}",
        "report": boot,
    }
