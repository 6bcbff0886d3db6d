"""results/REPORT.md: the verdict on LENS vs GRPO, with the figures and tables it rests on.

    python -m analysis.report --tidy results/tidy --figures results/figures --tables results/tables \
        --config config/config.yaml --out results/REPORT.md [--treatment lens --baseline grpo]

Assembles the outputs of the analysis.fig_* and analysis.tab_* scripts (figures embedded by
relative path) and adds what only the training metrics say: the share of all-wrong groups and how
much LENS changed the advantages (mean |A_LENS - A_GRPO| against mean |A_GRPO| by group type); and,
from the evaluation samples, whether training moved the model: the final step against step 0 per
level (analysis.stats.change_from_start).
The wording of the verdict is derived from the numbers (interval above, below or around 0).
States the config file, seeds, package versions and git commit it came from. A missing input
never stops the report; it is listed under "Missing inputs".
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from analysis import collect, paper_numbers, power, stats, style
from analysis.collect import TidyError, pick_benchmark, read_eval_samples, read_train_metrics
from analysis.summary import GROUP_TYPES, advantage_change, diff_id, run_costs
from analysis.tab_confident_mistakes import zero_advantage_groups
from lens import algorithms
from lens.metrics import HARD_SUBSET, subset_key

PACKAGES = ("numpy", "pandas", "pyarrow", "matplotlib", "torch", "transformers", "trl", "accelerate",
            "mlflow", "snakemake", "math-verify", "lm-eval")
GROUP_LABELS = {"mixed": "mixed", "all_wrong": "all wrong", "all_correct": "all correct"}
FIGURES = {  # file stem -> (caption title, what it shows)
    "fig_accuracy_by_level": ("Accuracy by difficulty level",
                              "Final-step accuracy per level; bars are means over seeds, error bars 95 % "
                              "bootstrap intervals over problems and seeds."),
    "fig_training_curves": ("Accuracy during training (paper Figures 5-6)",
                            "Whole evaluation set and its Level 4-5 subset against rollout step."),
    "fig_pass_at_k": ("Pass@k", "Unbiased Pass@k at the final step, k = 1..16."),
    "fig_benchmarks": ("Every benchmark of the final step",
                       "Pass@1 and Pass@k (k = the set's samples per problem) per arm, 95 % bootstrap intervals "
                       "over problems and seeds; each set labelled with its problems × samples."),
    "fig_accuracy_vs_compute": ("Accuracy against generation cost",
                                "The training curves against the completion tokens generated so far (mean over "
                                "seeds); bands: 95 % bootstrap intervals over problems and seeds."),
    "fig_training_dynamics": ("Training dynamics",
                              "Per arm over rollout steps: token entropy, completion length, clipped tokens, "
                              "gradient norm and the shares of all-wrong and all-correct groups (mean over seeds, "
                              "smoothed; bands: smallest to largest seed)."),
    "ablations/fig_training_dynamics": ("Every arm's training dynamics",
                                        "The leaderboard's arms: entropy, completion length, clipped tokens, "
                                        "gradient norm and group shares over rollout steps."),
    "ablations/fig_accuracy_vs_compute": ("Every arm's accuracy against generation cost",
                                          "The arms of the leaderboard against the completion tokens generated so "
                                          "far (mean over seeds); bands: 95 % bootstrap intervals."),
    "fig_negative_group_ratio": ("All-wrong groups during training (paper Figure 2)",
                                 "Share of prompts whose samples were all wrong: no GRPO gradient, LENS's extra "
                                 "signal."),
    "ablations/fig_leaderboard": ("Leaderboard of every arm trained",
                                  f"{style.HARD_SUBSET_LABEL} accuracy at the final step with 95 % bootstrap "
                                  "intervals, and the paired difference to GRPO; best first."),
    "sweeps/fig_sensitivity": ("Sensitivity to the swept parameters",
                               "Per swept value: final-step accuracy (all problems and Levels 4-5, 95 % bootstrap "
                               "intervals; dashed: GRPO's main runs), the paired difference to GRPO, and the mean "
                               "|A − A_GRPO| over mixed and all-wrong training groups."),
    "fig_confident_mistakes": ("Confident mistakes in training (paper Figure 1, right)",
                               "Every recorded wrong answer of an all-wrong group: its confidence against LENS's "
                               "calibrated reward and against the advantage the run's loss used."),
    "fig_weight_function": ("The LENS penalty w(z) (paper Figure 4)",
                            "w(z) = (1/z) log(1/(1-z)) - 1: the weight on a wrong answer grows with its "
                            "likelihood."),
}
# Below this share of GRPO's advantage magnitude, LENS's change to the updates is called small.
SMALL_CHANGE = 0.05
# Swept parameters whose larger values strengthen the signal from all-wrong groups (the Sensitivity section).
NEGATIVE_SIGNAL_PARAMS = {"alpha": "a stronger negative-group signal"}


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(cwd: str | Path = ".") -> str:
    """HEAD's sha, with '+uncommitted changes' when the tree differs; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{sha} (+ uncommitted changes)" if dirty else sha


def config_summary(path: str | None) -> tuple[list[str], list[str]]:
    """Lines describing the config file, and missing-input notes."""
    if not path:
        return ["- config: not given (`--config`)"], ["config file (pass `--config`)"]
    p = Path(path)
    if not p.exists():
        return [f"- config: `{path}` (not found)"], [f"config file `{path}`"]
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12]
    lines = [f"- config: `{path}` (sha256 {digest})"]
    first = p.read_text().split("\n", 1)[0]
    if first.startswith("# merged from:"):  # the workflow's merge of --configfile overlays
        lines[0] += f", {first[2:]}"
    try:
        import yaml

        cfg = yaml.safe_load(p.read_text()) or {}
        for key in ("algorithms", "seeds"):
            if key in cfg:
                lines.append(f"- config {key}: {cfg[key]}")
        if isinstance(cfg.get("models"), dict):
            lines.append(f"- config models: {sorted(cfg['models'])}")
            standins = sorted(m for m, e in cfg["models"].items() if isinstance(e, dict) and e.get("kind") == "standin")
            if standins:
                lines.append(f"- stand-ins: {standins} are tiny models of the same architecture family built here "
                             "(a rehearsal of the pipeline, not the models' results); their labels below name the "
                             "models they stand in for")
        training = cfg.get("training") or {}
        for key in ("rollout_steps", "num_generations", "prompts_per_rollout"):
            if key in training:
                lines.append(f"- training.{key}: {training[key]}")
    except Exception as err:  # noqa: BLE001 - a report about results must not die on a config it only summarises
        lines.append(f"- config could not be read as YAML: {err}")
    return lines, []


# --------------------------------------------------------------------------------------------
# Numbers the report derives from the tidy training metrics
# --------------------------------------------------------------------------------------------
def negative_group_summary(metrics: pd.DataFrame, share: float = 0.1) -> pd.DataFrame:
    """Per (model, algo): mean all-wrong share over the first and last `share` of the steps and overall."""
    rows = metrics[metrics["metric"] == "groups/all_wrong_frac"]
    records = []
    for (model, algo), group in rows.groupby(["model", "algo"], sort=True):
        by_step = group.groupby("step", sort=True)["value"].mean()
        n = max(1, int(round(len(by_step) * share)))
        records.append({"model": model, "algo": algo, "steps": len(by_step),
                        "early": by_step.iloc[:n].mean(), "end": by_step.iloc[-n:].mean(),
                        "mean": by_step.mean()})
    return pd.DataFrame(records, columns=["model", "algo", "steps", "early", "end", "mean"])


# --------------------------------------------------------------------------------------------
# Wording derived from the numbers
# --------------------------------------------------------------------------------------------
def verdict(diff: float, low: float, high: float, p: float, treatment: str, baseline: str, where: str) -> str:
    """One sentence whose claim follows from the interval: above 0, below 0, or covering 0 (points)."""
    t, b = style.algo_label(treatment), style.algo_label(baseline)
    stats_text = f"{t} − {b} = {style.fmt_signed(diff)} points, 95 % CI [{style.fmt_signed(low)}, " \
                 f"{style.fmt_signed(high)}], paired bootstrap p = {style.fmt_p(p)}"
    if low > 0:
        return f"**{t} beats {b} on {where}** by {diff:.1f} points ({stats_text})."
    if high < 0:
        return f"**{t} is worse than {b} on {where}** by {abs(diff):.1f} points ({stats_text})."
    return f"**No significant difference on {where} at this scale**: the interval covers 0 ({stats_text})."


def _points(diff: float, low: float, high: float, p: float) -> str:
    return (f"{style.fmt_signed(diff)} points, 95 % CI [{style.fmt_signed(low)}, {style.fmt_signed(high)}], "
            f"p = {style.fmt_p(p)}")


def _direction(low: float, high: float) -> str:
    return "helps" if low > 0 else "hurts" if high < 0 else "does nothing detectable"


def sensitivity_lines(data: pd.DataFrame, baseline: str) -> list[str]:
    """One reading per model and swept parameter of tab_sensitivity.csv, on Levels 4-5: the largest
    value against the smallest (helps: interval above 0, hurts: below 0, else nothing detectable),
    then each value against the baseline's main runs, claims following the intervals as in `verdict`."""
    lines = []
    swept = data[data["param"].notna()]
    for (model, algo, param), part in swept.groupby(["model", "algo", "param"], sort=True):
        part = part.reset_index(drop=True)  # rows in ascending value order (analysis.summary)
        what = NEGATIVE_SIGNAL_PARAMS.get(param, f"a larger {param}")
        head = (f"- **{style.model_label(model)}, {style.algo_label(algo)}, {param} in "
                f"{', '.join(str(v) for v in part['value'])}** ({int(part['n_seeds'].min())} seed(s) per value, "
                f"{style.HARD_SUBSET_LABEL}, step {int(part['step'].max())}): ")
        if part["hard"].isna().all():
            lines.append(head + f"no {style.HARD_SUBSET_LABEL} problems in the evaluation set, no reading.")
            continue
        last = part.iloc[-1]
        if len(part) > 1 and not pd.isna(last["vs_first_hard"]):
            direction = _direction(last["vs_first_hard_low"], last["vs_first_hard_high"])
            change = _points(last["vs_first_hard"], last["vs_first_hard_low"], last["vs_first_hard_high"],
                             last["p_value_vs_first"])
            first_hard = style.fmt_interval(part["hard"].iloc[0], part["hard_low"].iloc[0], part["hard_high"].iloc[0])
            text = (f"**{what[0].upper() + what[1:]} {direction} at this scale**: {param} "
                    f"{last['first_value']} → {last['value']} changes {style.HARD_SUBSET_LABEL} accuracy by "
                    f"{change}"
                    f" ({first_hard} % → "
                    f"{style.fmt_interval(last['hard'], last['hard_low'], last['hard_high'])} %).")
        else:
            text = f"one value swept: no reading on {what}, only the comparison with {style.algo_label(baseline)}."
        against = part[part["diff_hard"].notna()]
        if against.empty:
            text += f" No {style.algo_label(baseline)} main runs to compare with."
        else:
            above = [str(v) for v, low in zip(against["value"], against["diff_hard_low"], strict=True) if low > 0]
            below = [str(v) for v, high in zip(against["value"], against["diff_hard_high"], strict=True) if high < 0]
            text += f" Against {style.algo_label(baseline)}'s main runs: " + "; ".join(
                f"{param} = {r['value']}: "
                f"{_points(r['diff_hard'], r['diff_hard_low'], r['diff_hard_high'], r['p_value_hard'])}"
                for _, r in against.iterrows()) + "."
            if above or below:
                text += "".join([f" Better than {style.algo_label(baseline)} at {param} = {', '.join(above)}."
                                 if above else "",
                                 f" Worse than {style.algo_label(baseline)} at {param} = {', '.join(below)}."
                                 if below else ""])
            else:
                text += f" No value's interval excludes 0: none differs detectably from {style.algo_label(baseline)}."
        if part["n_seeds"].min() < 2:
            text += " With one seed per value, run-to-run variation is not in the intervals."
        lines.append(head + text)
    return lines


def hard_level_section(tables: Path, treatment: str, baseline: str, changes: pd.DataFrame | None,
                       negatives: pd.DataFrame | None) -> tuple[list[str], list[str]]:
    path = tables / "tab_accuracy_by_level.csv"
    if not path.exists():
        return ["The verdict needs `tab_accuracy_by_level.csv`, which is missing."], [str(path)]
    data = pd.read_csv(path, dtype={"level": str})
    lines = []
    for model, sub in data.groupby("model", sort=True):
        level = HARD_SUBSET if (sub["level"] == HARD_SUBSET).any() else "all"
        where = f"Levels {HARD_SUBSET}" if level == HARD_SUBSET else "the whole evaluation set (it has no levels)"
        rows = sub[sub["level"] == level].set_index("algo")
        head = (f"- **{style.model_label(model)}** ({rows['benchmark'].iloc[0]}, "
                f"{int(rows['n_problems'].max())} problems): ")
        d = diff_id(treatment, baseline)
        if d not in rows.index:
            have = [a for a in (treatment, baseline) if a in rows.index]
            lines.append(head + f"no {style.algo_label(treatment)} vs {style.algo_label(baseline)} comparison "
                         f"(results only for {have or 'neither'}).")
            continue
        r = rows.loc[d]
        text = verdict(r["mean"], r["ci_low"], r["ci_high"], r["p_value"], treatment, baseline, where)
        t, b = rows.loc[treatment], rows.loc[baseline]
        text += (f" Accuracy {style.algo_label(baseline)} {b['mean']:.1f} % vs {style.algo_label(treatment)} "
                 f"{t['mean']:.1f} % at step {int(float(t['step']))}, "
                 f"{int(min(t['n_seeds'], b['n_seeds']))} seed(s) each.")
        if min(t["n_seeds"], b["n_seeds"]) < 2:
            text += " With one seed per arm, run-to-run variation is not in the interval."
        covers_zero = r["ci_low"] <= 0 <= r["ci_high"]
        if covers_zero and changes is not None and not changes.empty:
            mixed = changes[(changes["model"] == model) & (changes["algo"] == treatment)
                            & (changes["group_type"] == "mixed")]
            if not mixed.empty and mixed["relative"].iloc[0] == mixed["relative"].iloc[0] \
                    and mixed["relative"].iloc[0] < SMALL_CHANGE:
                text += (f" Consistent with this, {style.algo_label(treatment)} moved the mixed groups' advantages "
                         f"by only {100 * mixed['relative'].iloc[0]:.1f} % of GRPO's magnitude.")
        if covers_zero and negatives is not None and not negatives.empty:
            neg = negatives[(negatives["model"] == model) & (negatives["algo"] == baseline)]
            if not neg.empty and neg["mean"].iloc[0] < 0.1:
                text += (f" Only {100 * neg['mean'].iloc[0]:.1f} % of {style.algo_label(baseline)}'s groups were all "
                         "wrong, so LENS's negative-group rule had little to act on.")
        lines.append(head + text)
    return lines, []


def negative_lines(neg: pd.DataFrame) -> list[str]:
    lines = ["| Model | Algorithm | Steps | First 10 % of steps | Last 10 % | Mean | Paper (GRPO, early → end) |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for _, r in neg.iterrows():
        ref = paper_numbers.NEGATIVE_GROUP_RATIO.get(r["model"]) if r["algo"] == "grpo" else None
        ref_text = f"~{100 * ref['early']:.0f} % → ~{100 * ref['end']:.0f} %" if ref else ""
        lines.append(f"| {style.model_label(r['model'])} | {style.algo_label(r['algo'])} | {int(r['steps'])} | "
                     f"{100 * r['early']:.1f} % | {100 * r['end']:.1f} % | {100 * r['mean']:.1f} % | {ref_text} |")
    return lines


def overall_change_lines(changes: pd.DataFrame) -> list[str]:
    """One line per LENS-family run: change over all groups relative to GRPO's mean |A| over all groups.

    Needs every group type's share (groups/{type}_frac); otherwise the per-type table stands alone.
    """
    lines = []
    for (model, algo), sub in changes[changes["algo"] != "grpo"].groupby(["model", "algo"], sort=True):
        if len(sub) < len(GROUP_TYPES) or sub["share_of_groups"].isna().any():
            continue
        base = float((sub["share_of_groups"] * sub["grpo_abs_mean"]).sum())
        delta = float((sub["share_of_groups"] * sub["delta_abs_mean"]).sum())
        rel = f" ({100 * delta / base:.1f} % of it)" if base > 0 else ""
        lines.append(f"- {style.model_label(model)}, {style.algo_label(algo)}: over all groups, mean "
                     f"|A − A_GRPO| = {delta:.4f} against mean |A_GRPO| = {base:.4f}{rel}.")
    return lines + ([""] if lines else [])


def advantage_lines(changes: pd.DataFrame) -> list[str]:
    lines = ["| Model | Algorithm | Group type | Share of groups | mean \\|A_GRPO\\| | mean \\|A − A_GRPO\\| | "
             "change / \\|A_GRPO\\| |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for _, r in changes[changes["algo"] != "grpo"].iterrows():
        share = "" if r["share_of_groups"] != r["share_of_groups"] else f"{100 * r['share_of_groups']:.1f} %"
        if r["relative"] == r["relative"]:
            rel = f"{100 * r['relative']:.1f} %"
        else:  # GRPO's advantage is 0 in all-wrong and all-correct groups: no ratio to take
            rel = "— (both 0)" if r["delta_abs_mean"] == 0 else "— (GRPO gives 0)"
        lines.append(f"| {style.model_label(r['model'])} | {style.algo_label(r['algo'])} | "
                     f"{GROUP_LABELS[r['group_type']]} | {share} | {r['grpo_abs_mean']:.4f} | "
                     f"{r['delta_abs_mean']:.4f} | {rel} |")
    return lines


# --------------------------------------------------------------------------------------------
# Did RL move the model? The final step against step 0
# --------------------------------------------------------------------------------------------
def subset_label(subset: str) -> str:
    """Display name of a subset of analysis.stats.change_from_start ("all", "level_3", "level_4_5")."""
    if subset == "all":
        return "all levels"
    if subset == subset_key(HARD_SUBSET):
        return style.HARD_SUBSET_LABEL
    return "Level " + subset.removeprefix("level_")


def change_reading(rows: pd.DataFrame) -> str:
    """One sentence on one (model, algo): the whole set's change, and every subset whose interval
    lies wholly below 0; the claim follows the interval as in `verdict`."""
    whole = rows[rows["subset"] == "all"].iloc[0]
    numbers = (f"{style.fmt_signed(whole['diff'])} points [{style.fmt_signed(whole['ci_low'])}, "
               f"{style.fmt_signed(whole['ci_high'])}]")
    head = f"**{style.algo_label(whole['algo'])}** ({style.model_label(whole['model'])}, " \
           f"{int(whole['n_seeds'])} seed(s), step 0 → step {int(whole['final_step'])})"
    if whole["ci_low"] > 0:
        text = f"{head} improved on the whole set: {numbers}."
    elif whole["ci_high"] < 0:
        text = f"{head} got worse on the whole set: {numbers}."
    else:
        text = f"{head}: no significant change on the whole set: {numbers}."
    worse = rows[(rows["subset"] != "all") & (rows["ci_high"] < 0)]
    if worse.empty:
        return text + " No level's interval lies wholly below 0."
    return text + " Worse on " + ", ".join(
        f"{subset_label(r['subset'])} ({style.fmt_signed(r['diff'])} [{style.fmt_signed(r['ci_low'])}, "
        f"{style.fmt_signed(r['ci_high'])}])" for _, r in worse.iterrows()) + "."


def change_section(samples: pd.DataFrame, n_boot: int) -> tuple[list[str], list[str]]:
    """The table of analysis.stats.change_from_start on the benchmark evaluated at step 0, one
    reading per run, and missing-input notes."""
    lines = ["### Change from step 0 to the final step", ""]
    step0 = samples[samples["step"] == 0]
    if step0.empty:
        return lines + ["No benchmark was evaluated at step 0: nothing to compare the final step with.", ""], \
            ["evaluation at step 0 (the change from step 0)"]
    benchmark, rows = pick_benchmark(samples, pick_benchmark(step0, None)[0])
    change = stats.change_from_start(rows, n_boot=n_boot)
    if change.empty:
        return lines + [f"No run was evaluated on {style.benchmark_label(benchmark)} at both step 0 and a later "
                        "step.", ""], []
    steps = change["final_step"].unique()
    final_head = f"Step {int(steps[0])} (%)" if len(steps) == 1 else "Final step (%)"
    lines += [f"Accuracy on {style.benchmark_label(benchmark)} at step 0 and at the final step (mean over seeds), "
              "and the difference, each seed against its own step 0, problem by problem, with its 95 % bootstrap "
              f"interval over seeds and problems ({n_boot} resamples; `analysis.stats.change_from_start`).", "",
              f"| Model | Algorithm | Levels | Problems | Step 0 (%) | {final_head} "
              "| Final − step 0 (points) [95 % CI] |",
              "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    readings = []
    for model in sorted(change["model"].unique()):
        by_model = change[change["model"] == model]
        for algo in style.sort_algos(by_model["algo"].unique()):
            run = by_model[by_model["algo"] == algo]
            for i, (_, r) in enumerate(run.iterrows()):
                names = (style.model_label(model), style.algo_label(algo)) if i == 0 else ("", "")
                final = f"{r['final']:.1f}" + ("" if len(steps) == 1 else f" (step {int(r['final_step'])})")
                lines.append(f"| {names[0]} | {names[1]} | {subset_label(r['subset'])} | {int(r['n_problems'])} "
                             f"| {r['step0']:.1f} | {final} | "
                             f"{style.fmt_signed(r['diff'])} [{style.fmt_signed(r['ci_low'])}, "
                             f"{style.fmt_signed(r['ci_high'])}] |")
            readings.append(f"- {change_reading(run)}")
    return lines + [""] + readings + [""], []


# --------------------------------------------------------------------------------------------
# Power: what difference could this run, and the paper's design, detect?
# --------------------------------------------------------------------------------------------
def pairing_reading(pairing: pd.DataFrame | None, model: str) -> str:
    """Whether the runs of each seed were shown to share their random numbers (analysis.collect.seed_pairing)."""
    rows = None if pairing is None else pairing[(pairing["model"] == model) & (pairing["compared"] >= 2)]
    if rows is None or rows.empty:
        return "(assumed, not checked: no two arms of a seed recorded their first rollout)"
    differ = rows.loc[rows["shared"] != True, "seed"].tolist()  # noqa: E712 - a column of True/False/None
    if not differ:
        return (f"(shown: every arm's first rollout is the same, seed by seed, for {len(rows)} seed(s); "
                "tidy/seed_pairing.csv)")
    return (f"(NOT shown for seed(s) {', '.join(map(str, differ))}: their arms sampled different first "
            "rollouts, so the pairing cancels less than assumed and the paired minimum detectable difference "
            "below is optimistic; tidy/seed_pairing.csv)")


def divergent_power_lines(ablation_tidy: Path, baseline: str) -> list[str]:
    """What the run resolves for an arm that changes training, from the `ablations` target's arms."""
    b = style.algo_label(baseline)
    try:
        samples, metrics = read_eval_samples(ablation_tidy), read_train_metrics(ablation_tidy)
    except TidyError:
        return [f"- **An arm that changes training**: not estimated. The shared-path figures below hold only "
                f"for arms whose training follows {b}'s; run the `ablations` target, whose arms leave that "
                "path, to measure what this design resolves for them.", ""]
    lines = []
    for model in sorted(samples["model"].unique()):
        n_seeds = int(samples.loc[(samples["model"] == model) & (samples["algo"] == baseline), "seed"].nunique())
        p = power.divergent_power(samples, metrics, model, baseline, n_seeds)
        if p is None:
            lines.append(f"- **An arm that changes training, {style.model_label(model)}**: no arm of the `ablations` "
                         f"target moves the advantages by {100 * power.MOVES_TRAINING:.0f} % of {b}'s or more with "
                         "2 seeds or more: not estimated.")
            continue
        arms = ", ".join(f"{style.algo_label(a['algo'])} ({' / '.join(style.fmt_signed(100 * d) for d in a['diffs'])})"
                         for a in p["arms"])
        need = "; ".join(f"{100 * r:g} points: {n} seeds" for r, n in p["seeds_for"].items())
        lines.append(
            f"- **An arm that changes training, {style.model_label(model)}** (what this run resolves for a new "
            f"method): minimum detectable difference **{100 * p['mdd']:.1f} points** with {n_seeds} seeds per arm. "
            f"Estimated from the arms whose advantages move by {100 * power.MOVES_TRAINING:.0f} % of {b}'s or more "
            f"and dynamic sampling (GRPO's rule on other batches), controls aside; per-seed Level 4-5 differences to "
            f"{b}: {arms}. Their seed-to-seed SD is pooled over "
            f"those arms: {100 * p['sd']:.1f} points on {p['df']} degrees of freedom (one arm's 2 seeds give 1, "
            f"which is no estimate), and the MDD uses t quantiles at {p['df']} degrees of freedom. Seeds per arm "
            f"for a minimum detectable difference of {need} (normal approximation; more seeds are one config "
            f"value away: `seeds: [0, 1, ..., N-1]`).")
    return [*lines, ""]


def benchmark_power_lines() -> list[str]:
    """What each benchmark can resolve at the paper's design (analysis.power.benchmark_mdds)."""
    rows = power.benchmark_mdds()
    sds = sorted({r["seed_sd"] for r in rows})
    cells = []
    for name in dict.fromkeys(r["benchmark"] for r in rows):
        mine = [r for r in rows if r["benchmark"] == name]
        mdds = " / ".join(f"{100 * r['mdd']:.1f}" for r in sorted(mine, key=lambda r: r["seed_sd"]))
        cells.append(f"{style.benchmark_label(name if name != 'math' else 'math_test')} "
                     f"({mine[0]['n_problems']} × {mine[0]['n_samples']}) {mdds}")
    return [f"At the paper's design ({power.PAPER_DESIGN['n_seeds']} seeds per arm, every problem of each set, "
            "config/paper.yaml's samples per problem) the smallest Pass@1 difference detected with 80 % power, for "
            "two arms near 50 % (the largest sampling noise), in points at a run-to-run SD of "
            f"{' / '.join(f'{100 * sd:.0f}' for sd in sds)} points: " + "; ".join(cells) + ". "
            "A difference under these on AIME or AMC is unresolved, not absent.", ""]


def power_section(samples: pd.DataFrame | None, treatment: str, baseline: str,
                  pairing: pd.DataFrame | None = None, ablation_tidy: Path | None = None) -> list[str]:
    t, b = style.algo_label(treatment), style.algo_label(baseline)
    lines = [f"Power is the chance that a difference of a given size gives an interval that excludes 0. "
             f"Below: the smallest Level 4-5 difference {t} − {b} detected with 80 % power by a two-sided "
             "5 % test (normal approximation, `analysis.stats.minimum_detectable_difference`). An interval "
             "that covers 0 means \"no difference\" only if the minimum detectable difference is small "
             "against the differences that matter; otherwise it means \"cannot tell\".", ""]
    if ablation_tidy is not None:
        lines += divergent_power_lines(ablation_tidy, baseline)
    if samples is not None:
        for model in sorted(samples["model"].unique()):
            p = power.run_power(samples, model, treatment, baseline)
            if p is None:
                lines.append(f"- **{t} vs {b}, {style.model_label(model)}**: no Level 4-5 samples of both to "
                             "measure it on.")
                continue
            one_seed = min(p["n_seeds"]) < 2
            text = (f"- **{t} vs {b}, {style.model_label(model)}** ({p['n_seeds'][0]} + {p['n_seeds'][1]} seeds, "
                    f"{p['n_problems']} Level 4-5 problems, {p['n_samples']} samples each, step {p['step']}): "
                    f"minimum detectable difference **{100 * p['mdd']:.1f} points** (SE {100 * p['se']:.2f}). ")
            if p["design"] == "paired":
                text += (f"This is the shared-path figure: it holds for an arm whose training follows {b}'s step "
                         f"for step (as {t}'s does when it barely changes the advantages), not for an arm that "
                         "changes training (above). "
                         f"Design: paired by seed. Runs of one seed share their random numbers (the same start, "
                         f"RL data order and sampling seeds in training and evaluation) "
                         f"{pairing_reading(pairing, model)}, so the difference is "
                         f"taken seed by seed and the seed's luck cancels: per-problem SD of the paired "
                         f"difference {100 * p['paired_problem_sd']:.1f} points, seed-to-seed SD of the "
                         f"difference {100 * p['paired_seed_sd']:.2f} points, estimated from {p['n_seeds'][0]} "
                         f"seeds ({p['seed_df']} degree(s) of freedom: a rough estimate, and 0 means the seeds "
                         f"differ no more than the problems' noise predicts, not that they cannot). Unpaired, "
                         f"the same runs would detect {100 * p['independent_mdd']:.1f} points. ")
            else:
                text += (f"Design: independent runs (seed-to-seed SD {100 * p['seed_sd'][0]:.2f} / "
                         f"{100 * p['seed_sd'][1]:.2f} points, per-problem residual SD {100 * p['resid_sd'][0]:.1f} / "
                         f"{100 * p['resid_sd'][1]:.1f} points, {t} / {b}). ")
            text += f"Observed: {style.fmt_signed(100 * p['diff'])} points."
            if one_seed:
                text += " With one seed per arm the seed-to-seed variance is unknown (taken as 0): a lower bound."
            if abs(p["diff"]) < p["mdd"]:
                text += (f" A true difference of {100 * p['mdd']:.1f} points would be found 4 times in 5; "
                         "smaller ones, like the observed one, are mostly missed: an interval covering 0 here "
                         "means \"cannot tell\", not \"no difference\".")
            lines.append(text)
    lines.append("")
    rows = power.paper_power()
    if rows:
        d = power.PAPER_DESIGN
        lines += [f"The paper's design ({d['n_seeds']} seeds per arm, the {d['n_problems']} Level 4-5 problems of "
                  f"MATH-500, {d['n_samples']} samples each) at the paper's accuracies (Table 1 Pass@1; the paper "
                  "reports no per-level accuracy), with every problem at that accuracy (the most sampling noise "
                  "for that mean: a spread of difficulty across problems lowers it):", "",
                  "| Model | GRPO | LENS | Paper's gain (MATH-500) | MDD, seed SD 0 | "
                  "seed SD 1 point | seed SD 2 points |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for model in sorted({r["model"] for r in rows}):
            sub = [r for r in rows if r["model"] == model]
            by_sd = {r["seed_sd"]: r["mdd"] for r in sub}
            lines.append(f"| {style.model_label(model)} | {100 * sub[0]['grpo']:.1f} % | "
                         f"{100 * sub[0]['lens']:.1f} % | "
                         f"{style.fmt_signed(100 * (sub[0]['lens'] - sub[0]['grpo']))} | "
                         + " | ".join(f"{100 * by_sd[sd]:.1f}" for sd in power.PAPER_SEED_SDS) + " |")
        lines += ["", "MDD: minimum detectable difference in points at 80 % power; seed SD: run-to-run standard "
                  "deviation of one arm's Level 4-5 accuracy (not reported in the paper).", ""]
        need = power.paper_seeds_for()
        lines += ["Seeds per arm the paper's design needs for a given minimum detectable difference (same "
                  "assumptions; at most 200 searched): " + "; ".join(
                      f"{style.model_label(r['model'])}, seed SD {100 * r['seed_sd']:g} point(s), "
                      f"{100 * r['resolution']:g} points: {r['n_seeds'] or '> 200'}" for r in need) + ".", ""]
    return lines


CONTROL = "grpo_shuffled"  # the control that must lose; its arms `grpo_shuffled/shuffle_frac-{q}` grade it


def graded_control(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's control rows with their share q of shuffled groups (the plain id is q = 1),
    sorted by model and q, and whether each effect is detected (its 95 % interval lies below 0)."""
    rows = board[(board["algo"] == CONTROL) | board["algo"].str.startswith(f"{CONTROL}/shuffle_frac-")].copy()
    rows["q"] = [1.0 if a == CONTROL else float(a.split("-", 1)[1]) for a in rows["algo"]]
    rows["detected"] = rows["diff_high"] < 0
    return rows.sort_values(["model", "q"]).reset_index(drop=True)


def graded_control_lines(tables: Path) -> list[str]:
    """REPORT.md's graded control: the control's effect against q, and the smallest q detected."""
    path = tables / "ablations" / "tab_leaderboard.csv"
    if not path.exists():
        return []
    rows = graded_control(pd.read_csv(path))
    if rows.empty or len(set(rows["q"])) < 2:
        return []
    lines = ["### Graded control: how small an effect the benchmark detects", "",
             f"{style.algo_label(CONTROL)} with its advantages shuffled in a share q of the groups (arms "
             f"`{CONTROL}/shuffle_frac-{{q}}`; q = 1 is `{CONTROL}`): {style.HARD_SUBSET_LABEL} accuracy minus GRPO's "
             "at the final step, paired 95 % bootstrap interval, Holm-adjusted p over the leaderboard.", "",
             "| Model | q | Δ vs GRPO (points) | p (Holm) | detected |", "| --- | ---: | ---: | ---: | --- |"]
    for r in rows.itertuples(index=False):
        lines.append(f"| {style.model_label(r.model)} | {r.q:g} | {style.fmt_signed(r.diff_hard)} "
                     f"[{style.fmt_signed(r.diff_low)}, {style.fmt_signed(r.diff_high)}] | {style.fmt_p(r.p_holm)} | "
                     f"{'yes' if r.detected else 'no'} |")
    lines.append("")
    for model, part in rows.groupby("model", sort=True):
        found = part[part["detected"]]
        lines.append(f"{style.model_label(model)}: " + (
            f"the smallest q detected is {found['q'].min():g} ({style.fmt_signed(found.iloc[0]['diff_hard'])} "
            "points): a real effect of that size is seen at this run's size; smaller ones may not be."
            if not found.empty else "no q is detected, not even q = 1: this run cannot tell a broken arm from GRPO."))
    return [*lines, ""]


def dynamic_sampling_lines(ablation_tidy: Path) -> list[str]:
    """REPORT.md's reading of the dynamic-sampling arms: generation batches per rollout, how often the cap left
    slots without an informative group, and the generated tokens against GRPO's."""
    try:
        metrics = read_train_metrics(ablation_tidy)
    except TidyError:
        return []
    dynamic = [a for a in metrics["algo"].unique() if algorithms.get(a.split("/")[0]).gen_batches]
    rows = metrics[metrics["algo"].isin(dynamic) & metrics["metric"].isin(["dynamic/gen_batches",
                                                                           "dynamic/filled_frac"])]
    if rows.empty:
        return []
    costs = run_costs(metrics).groupby(["model", "algo"])["completion_tokens"].mean()
    lines = ["### Dynamic sampling", "",
             "DAPO's dynamic sampling trains only on groups with mixed rewards: it samples the next rollouts' "
             "prompts until the rollout's quota of such groups is met or the cap on generation batches is "
             "reached, and then trains on the informative groups it found (docs/training.md, \"Dynamic "
             "sampling\"). Its extra generation counts in its cost (the cost table below) and in the leaderboard's "
             "difference at equal generated tokens.", ""]
    for (model, algo), part in rows.groupby(["model", "algo"], sort=True):
        wide = part.pivot_table(index=["seed", "step"], columns="metric", values="value")
        ratio = costs.get((model, algo), float("nan")) / costs.get((model, "grpo"), float("nan"))
        lines.append(
            f"- {style.model_label(model)}, {style.algo_label(algo)}: {wide['dynamic/gen_batches'].mean():.2f} "
            f"generation batches per rollout (at most {int(wide['dynamic/gen_batches'].max())}); "
            f"{100 * (wide['dynamic/filled_frac'] > 0).mean():.0f} % of rollouts reached the cap short of "
            f"informative groups, leaving {100 * wide['dynamic/filled_frac'].mean():.1f} % of all slots unused; "
            f"{ratio:.2f}x GRPO's generated tokens.")
    return [*lines, ""]


def zero_advantage_lines(tidy: Path, treatment: str) -> list[str]:
    """How many of the treatment's recorded all-wrong groups got zero advantages, and why."""
    try:
        counts = zero_advantage_groups(collect.read_negative_samples(tidy), [treatment])
    except TidyError:
        return []
    if counts.empty:
        return []
    c = counts.iloc[0]
    why = ("equal confidences give equal r̂, and de-meaning within the group cancels them, so a group that "
           "repeats one confident mistake is not pushed down at all")
    head = f"Of the {c['groups']} all-wrong groups of the {style.algo_label(treatment)} runs' rollout records, "
    if not c["zero"]:
        return [head + f"none got advantages that are all (nearly) 0. By the printed rule that happens when a "
                f"group's confidences are equal: {why}.", ""]
    return [head + f"{c['zero']} got advantages that are all (nearly) 0: in {c['zero_equal_confidence']} of them "
            f"every answer has the same confidence ({c['zero_one_completion']} are one completion sampled G "
            f"times). That is the printed rule, not a fault: {why}.", ""]


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------
def _guarded(fn, metrics: pd.DataFrame, missing: list[str]):
    """fn(metrics), or None with a note in `missing` when the metrics table is malformed."""
    try:
        return fn(metrics)
    except (KeyError, ValueError, TypeError) as err:
        missing.append(f"{fn.__name__} failed on the training metrics: {err!r}")
        return None


def build_report(tidy: Path, figures: Path, tables: Path, out: Path, config: str | None,
                 treatment: str = "lens", baseline: str = "grpo", bootstrap_samples: int | None = None) -> list[str]:
    """Write the report; returns the list of missing inputs (empty when everything was there).

    bootstrap_samples: resamples of the intervals the report computes itself (the change from step
    0); None means lens.config's default, as for the figure and table scripts."""
    if bootstrap_samples is None:
        from lens.config import FiguresConfig

        bootstrap_samples = FiguresConfig().bootstrap_samples
    missing: list[str] = []
    try:
        samples = read_eval_samples(tidy)
    except TidyError as err:
        samples = None
        missing.append(f"evaluation samples ({err})")
    try:
        metrics = read_train_metrics(tidy)
    except TidyError as err:
        metrics = None
        missing.append(f"training metrics ({err})")
    negatives = _guarded(negative_group_summary, metrics, missing) if metrics is not None else None
    changes = _guarded(advantage_change, metrics, missing) if metrics is not None else None

    md = [f"# {style.algo_label(treatment)} vs {style.algo_label(baseline)}: reproduction report", ""]
    md += ["Generated by `python -m analysis.report` from the tidy tables, figures and tables under "
           "`results/` (never from MLflow); every number below is in a CSV next to its figure or table.", ""]

    md += ["## Where these numbers come from", ""]
    cfg_lines, cfg_missing = config_summary(config)
    md += cfg_lines
    missing += cfg_missing
    if samples is not None:
        runs = samples[["model", "algo", "seed"]].drop_duplicates()
        for model, sub in runs.groupby("model", sort=True):
            seeds = {style.algo_label(a): sorted(int(s) for s in g["seed"]) for a, g in sub.groupby("algo")}
            md.append(f"- evaluated runs, {style.model_label(model)}: "
                      + "; ".join(f"{a} seeds {s}" for a, s in seeds.items()))
        md.append(f"- benchmarks: {', '.join(sorted(samples['benchmark'].unique()))}")
    md.append(f"- git commit: `{git_commit(Path(__file__).resolve().parents[1])}`")
    md.append("- packages: " + ", ".join(f"{k} {v}" for k, v in package_versions().items()))
    md.append(f"- generated: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    md.append("")

    def figure(stem: str) -> None:
        title, what = FIGURES[stem]
        png = figures / f"{stem}.png"
        if png.exists():
            md.extend([f"![{title}]({os.path.relpath(png, out.parent)})", "", f"{title}. {what} "
                       f"Data: `{os.path.relpath(figures / (stem + '.csv'), out.parent)}`.", ""])
        else:
            md.extend([f"({title}: `{png}` is missing.)", ""])
            missing.append(str(png))

    def table(name: str) -> None:
        path = tables / f"{name}.md"
        if path.exists():
            md.extend([path.read_text().rstrip(), ""])
        else:
            md.extend([f"(`{path}` is missing.)", ""])
            missing.append(str(path))

    md += [f"## Verdict: does {style.algo_label(treatment)} beat {style.algo_label(baseline)} on the hard levels?", ""]
    try:
        lines, miss = hard_level_section(tables, treatment, baseline, changes, negatives)
    except (KeyError, ValueError, TypeError, pd.errors.ParserError) as err:  # malformed table: say so
        lines, miss = [f"The verdict could not be derived from `tab_accuracy_by_level.csv`: {err!r}"], \
            [f"{tables / 'tab_accuracy_by_level.csv'} (malformed)"]
    md += lines + [""]
    missing += miss
    figure("fig_accuracy_by_level")
    table("tab_accuracy_by_level")

    md += ["## Power: could this run tell?", ""]
    try:
        pairing = collect.read_seed_pairing(tidy) if (Path(tidy) / collect.PAIRING_FILE).exists() else None
        md += power_section(samples, treatment, baseline, pairing, Path(tidy) / "ablations")
    except (KeyError, ValueError, TypeError) as err:  # a report about results must not die on them
        md += [f"The power computation failed on the evaluation samples: {err!r}", ""]
        missing.append(f"power section ({err!r})")

    md += ["## Accuracy during training", ""]
    figure("fig_training_curves")
    if samples is None:
        md += ["### Change from step 0 to the final step", "", "(Needs the evaluation samples, which are missing.)", ""]
    else:
        try:
            lines, miss = change_section(samples, bootstrap_samples)
        except (KeyError, ValueError, TypeError) as err:  # a report about results must not die on them
            lines, miss = [f"The change from step 0 could not be computed from the evaluation samples: {err!r}", ""], \
                [f"change from step 0 ({err!r})"]
        md += lines
        missing += miss

    md += ["## Pass@k", ""]
    figure("fig_pass_at_k")
    table("tab_pass_at_k")

    md += ["## Every benchmark of the final step (MATH, AIME, AMC, Minerva, OlympiadBench)", ""]
    figure("fig_benchmarks")
    table("tab_benchmarks")
    md += benchmark_power_lines()

    md += ["## Training dynamics", ""]
    figure("fig_training_dynamics")

    md += ["## What the runs cost", ""]
    table("tab_cost")
    figure("fig_accuracy_vs_compute")

    md += ["## Ablation: which half of LENS matters", ""]
    if not (tables / "tab_ablation.md").exists() and (tables / "ablations" / "tab_ablation.md").exists():
        table("ablations/tab_ablation")  # built by the optional `ablations` target
    elif not (tables / "tab_ablation.md").exists():
        md += ["(Not built: the ablation arms lens_mixed_only and lens_negative_only are the optional "
               "`ablations` target unless they are among the main algorithms.)", ""]
    else:
        table("tab_ablation")

    if (tables / "ablations" / "tab_leaderboard.md").exists():  # built by the `ablations` target
        md += ["## Leaderboard: what to do with all-wrong groups", ""]
        figure("ablations/fig_leaderboard")
        table("ablations/tab_leaderboard")
        md += graded_control_lines(tables)
        md += dynamic_sampling_lines(Path(tidy) / "ablations")
        figure("ablations/fig_accuracy_vs_compute")
        table("ablations/tab_cost")
        figure("ablations/fig_training_dynamics")

    sweep_csv = tables / "sweeps" / "tab_sensitivity.csv"
    if sweep_csv.exists():  # built by the `sweeps` target
        md += ["## Sensitivity: does a stronger negative-group signal help?", ""]
        try:
            md += sensitivity_lines(pd.read_csv(sweep_csv, dtype={"value": str, "first_value": str}), baseline) + [""]
        except (KeyError, ValueError, TypeError, pd.errors.ParserError) as err:  # malformed table: say so
            md += [f"The reading could not be derived from `{sweep_csv}`: {err!r}", ""]
            missing.append(f"{sweep_csv} (malformed)")
        figure("sweeps/fig_sensitivity")
        table("sweeps/tab_sensitivity")

    md += ["## How often GRPO gets no signal: all-wrong groups", ""]
    if negatives is not None and not negatives.empty:
        md += negative_lines(negatives) + [""]
    else:
        md += ["No `groups/all_wrong_frac` training metric found.", ""]
        missing.append("training metric groups/all_wrong_frac")
    figure("fig_negative_group_ratio")

    md += [f"## How much {style.algo_label(treatment)} changed the advantages", ""]
    if changes is not None and not changes[changes["algo"] != "grpo"].empty:
        md += ["Mean over all groups of each type, all steps and seeds, measured on the same batches: "
               "|A − A_GRPO| is how far the run's advantage moved from GRPO's.", ""]
        md += overall_change_lines(changes)
        md += advantage_lines(changes) + [""]
    else:
        md += ["No `adv/delta_vs_grpo/*` and `adv/grpo_abs_mean/*` metrics for a LENS-family run.", ""]
        missing.append("training metrics adv/delta_vs_grpo/* and adv/grpo_abs_mean/*")

    md += ["## Why confident mistakes cost more", ""]
    figure("fig_weight_function")
    figure("fig_confident_mistakes")
    table("tab_confident_mistakes")
    md += zero_advantage_lines(tidy, treatment)

    md += ["## Missing inputs", ""]
    md += [f"- {m}" for m in missing] if missing else ["None: every figure, table and tidy table was found."]
    md.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md))
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tidy", default="results/tidy")
    parser.add_argument("--figures", default="results/figures")
    parser.add_argument("--tables", default="results/tables")
    parser.add_argument("--out", default="results/REPORT.md")
    parser.add_argument("--config", default=None, help="the workflow config the results came from")
    parser.add_argument("--treatment", default="lens")
    parser.add_argument("--baseline", default="grpo")
    parser.add_argument("--bootstrap-samples", type=int, default=None,
                        help="bootstrap resamples of the report's own intervals (default: lens.config's)")
    args = parser.parse_args(argv)
    missing = build_report(Path(args.tidy), Path(args.figures), Path(args.tables), Path(args.out), args.config,
                           args.treatment, args.baseline, args.bootstrap_samples)
    print(f"analysis.report: wrote {args.out}"
          + (f" ({len(missing)} missing input(s), listed in it)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
