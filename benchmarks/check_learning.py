"""Did RL move the model? Final step minus step 0, paired over problems, pooled over seeds, per level.

    python benchmarks/check_learning.py [--tidy results/tidy] [--algo grpo] [--bootstrap-samples 2000]

Reads results/tidy/eval_samples.parquet (the curve benchmark: the one evaluated at step 0) and
prints, for each model and algorithm, the accuracy at step 0 and at the final step and the paired
difference with its 95 % bootstrap interval (analysis.stats.change_from_start: bootstrap_ci on the
(seeds, problems) matrix of per-problem differences, seeds resampled, then problems), on the whole
set and per level;
then LENS - GRPO at the final step (analysis.stats.paired_bootstrap) and the evaluated steps and
samples per step. The acceptance checks of the embedded run: the whole-set interval above 0, no
level's interval wholly below 0, >= 6 evaluated steps, >= 40 problems per level.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis import stats
from analysis.collect import pick_benchmark, read_eval_samples

ROOT = Path(__file__).resolve().parents[1]


def as_record(row) -> dict:
    """One row of analysis.stats.change_from_start in the shape of the JSON written by --out."""
    return {"step0": row["step0"], "final": row["final"], "final_step": int(row["final_step"]),
            "diff": row["diff"], "ci": [row["ci_low"], row["ci_high"]], "n_problems": int(row["n_problems"]),
            "n_seeds": int(row["n_seeds"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tidy", type=Path, default=ROOT / "results" / "tidy")
    parser.add_argument("--bootstrap-samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    samples = read_eval_samples(args.tidy)
    step0 = samples[samples["step"] == 0]
    if step0.empty:
        print("check_learning: no benchmark was evaluated at step 0", file=sys.stderr)
        return 1
    samples = samples[samples["benchmark"] == pick_benchmark(step0, None)[0]]
    samples = samples.assign(correct=samples["correct"].astype(float))
    changes = stats.change_from_start(samples, n_boot=args.bootstrap_samples)
    result: dict = {}
    for (model, algo), sub in samples.groupby(["model", "algo"], sort=True):
        steps = sub.groupby("step")["sample_idx"].max().add(1).to_dict()  # step -> samples per problem
        per_level = sub.groupby("level")["problem_id"].nunique().to_dict()
        out = {"steps": {int(k): int(v) for k, v in steps.items()},
               "problems_per_level": {int(k): int(v) for k, v in per_level.items()}}
        rows = changes[(changes["model"] == model) & (changes["algo"] == algo)]
        out.update({row["subset"]: as_record(row) for _, row in rows.iterrows()})
        result[f"{model}/{algo}"] = out
        print(f"{model} {algo}: steps (samples per problem) {out['steps']}, "
              f"problems per level {out['problems_per_level']}")
        if rows.empty:
            print("  nothing to compare: needs an evaluation at step 0 and at a later step")
        for key in rows["subset"]:
            r = out[key]
            verdict = "up" if r["ci"][0] > 0 else "DOWN" if r["ci"][1] < 0 else "n.s."
            print(f"  {key:10s} step 0 {r['step0']:5.1f} %  step {r['final_step']} {r['final']:5.1f} %  "
                  f"diff {r['diff']:+5.1f} [{r['ci'][0]:+5.1f}, {r['ci'][1]:+5.1f}]  {verdict}")
    for model in sorted(samples["model"].unique()):
        sub = samples[samples["model"] == model]
        final = sub[sub["step"] == sub["step"].max()]
        if {"lens", "grpo"} <= set(final["algo"]):
            for name, part in (("all", final), ("level_4_5", final[final["level"].isin(stats.LEVEL_4_5)])):
                t = stats.seed_problem_scores(part[part["algo"] == "lens"])
                b = stats.seed_problem_scores(part[part["algo"] == "grpo"])
                # runs of one seed share their random numbers: paired by seed, as the report's tables are
                same = stats.same_seed_rows(sorted(part.loc[part["algo"] == "lens", "seed"].unique()),
                                            sorted(part.loc[part["algo"] == "grpo", "seed"].unique()))
                r = stats.paired_bootstrap(t, b, n_boot=args.bootstrap_samples, same_seeds=same)
                result[f"{model}/lens_minus_grpo/{name}"] = {k: (100 * v if k != "p_value" else v)
                                                             for k, v in r.items()}
                print(f"{model} LENS - GRPO {name}: {100 * r['diff']:+.1f} [{100 * r['ci_low']:+.1f}, "
                      f"{100 * r['ci_high']:+.1f}] points, p = {r['p_value']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
