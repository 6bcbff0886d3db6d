"""The embedded reproduction's design (config/config.yaml): what `make reproduce` must show.

The run itself is checked by `benchmarks/check_learning.py` (final step minus step 0, per level)
and timed by `benchmarks/bench_embedded.py timeline`; these tests pin the shape those numbers rest
on, so a config edit that breaks it fails here rather than in a ten-minute run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lens.config import load_workflow_config
from lens.synthetic import LEVELS, make_splits

CONFIG = Path(__file__).resolve().parents[1] / "config" / "config.yaml"


@pytest.fixture(scope="module")
def workflow():
    return load_workflow_config(CONFIG)


@pytest.fixture(scope="module")
def cfg(workflow):
    """The resolved run config of the first GRPO run (per-model overrides applied)."""
    (model,) = workflow.models
    return workflow.resolve(model, "grpo", workflow.seeds[0])


def evaluated_steps(cfg) -> list[int]:
    """Steps with an evaluation: 0, every, 2 x every, ..., and the final step."""
    last = cfg.training.rollout_steps
    return sorted({*range(0, last + 1, cfg.evaluation.every), last})


def test_every_run_is_a_curve_of_at_least_six_points_ending_at_the_last_step(cfg):
    steps = evaluated_steps(cfg)
    assert len(steps) >= 6 and steps[0] == 0
    assert cfg.training.rollout_steps % cfg.evaluation.every == 0  # the final checkpoint is one of them
    assert cfg.training.rollout_steps % cfg.training.save_every == 0
    assert cfg.evaluation.every % cfg.training.save_every == 0  # every evaluated step has a checkpoint


def test_step_zero_and_the_final_step_keep_sixteen_samples_for_pass_at_k(cfg):
    ev = cfg.evaluation
    assert ev.n_samples == 16 and max(ev.pass_k) == 16
    assert ev.intermediate_n_samples is None or 1 <= ev.intermediate_n_samples <= ev.n_samples


def test_at_least_forty_test_problems_per_level_disjoint_from_the_rl_prompts(workflow):
    splits = make_splits(workflow.synthetic)
    for level in LEVELS:
        assert sum(p["level"] == level for p in splits["test"]) >= 40
    assert not {p["id"] for p in splits["test"]} & {p["id"] for p in splits["rl"]}
    assert not {p["problem"] for p in splits["test"]} & {p["problem"] for p in splits["train"]}


def test_the_comparison_is_grpo_against_lens_over_two_seeds(workflow):
    assert {"grpo", "lens"} <= set(workflow.algorithms)
    assert len(workflow.seeds) >= 2  # the report's power section needs a per-seed variance
    lens = workflow.resolve(next(iter(workflow.models)), "lens", workflow.seeds[0]).algorithm
    assert lens.alpha == 0.25  # the paper's LENS rule: the benchmark is calibrated, never the rule


def test_the_ablations_target_runs_every_other_arm_with_the_papers_rule(workflow):
    from lens import algorithms

    # Every arm of lens.algorithms is trained by `make reproduce` or by `snakemake ablations`
    # (the grpo_shuffled control included, with its graded arms), and the LENS knobs keep the paper's values.
    plain = {a for a in workflow.ablation_algorithms if "/" not in a}
    assert set(workflow.algorithms) | plain == set(algorithms.ids())
    assert "grpo_shuffled" in workflow.ablation_algorithms
    graded = [(algo, params) for _, algo, params in workflow.ablation_arms()]
    assert graded == [("grpo_shuffled", {"shuffle_frac": q}) for q in (0.1, 0.25, 0.5)]
    lens = workflow.resolve(next(iter(workflow.models)), "lens", workflow.seeds[0]).algorithm
    assert (lens.wrong_scale, lens.floor_factor, lens.negative_norm) == (1.0, 2.0, "demean")


def test_every_worked_solution_fits_the_sampling_budget(workflow, cfg):
    """A correct answer is never cut off: the longest solution (plus a leading space and EOS) fits
    max_new_tokens with the character tokenizer, in training and in evaluation."""
    longest = max(len(p["solution"]) for p in make_splits(workflow.synthetic)["train"]) + 2
    assert cfg.model.tiny.tokenizer == "char"  # one token per character
    assert longest <= cfg.training.max_new_tokens and longest <= cfg.evaluation.max_new_tokens


def test_the_power_design_pairs_seeds_and_evaluates_two_hundred_level_4_5_problems(workflow):
    """REPORT's minimum detectable LENS - GRPO difference on Levels 4-5 rests on these (docs/performance.md,
    "Round 3"): every arm runs the same seeds, so each seed's runs share their random numbers and the
    difference is paired by seed; 200 Level 4-5 test problems, the extra Level 4 ones from problems no
    training split uses, so the warm-up and RL sets are those the run was calibrated on."""
    splits = make_splits(workflow.synthetic)
    assert sum(p["level"] in (4, 5) for p in splits["test"]) >= 200
    base = make_splits(dataclasses.replace(workflow.synthetic, extra_test_per_level=(0,) * len(LEVELS)))
    assert splits["train"] == base["train"] and splits["rl"] == base["rl"]
    # a seed's GRPO and LENS runs differ in the advantage rule alone: same start, data order, sampling
    # and evaluation seeds (the common random numbers the paired analysis relies on)
    from lens.config import to_dict

    model = next(iter(workflow.models))
    for seed in workflow.seeds:
        grpo, lens = (to_dict(workflow.resolve(model, algo, seed)) for algo in ("grpo", "lens"))
        assert [key for key in grpo if grpo[key] != lens[key]] == ["algorithm"]


def test_the_warm_up_runs_on_both_cores_with_a_fixed_thread_count(workflow):
    # The warm-up runs alone, so it takes both cores; the thread count is part of the config (and of
    # the warm-up's section file) because another count trains another model (docs/performance.md, Round 5)
    assert workflow.warmup.torch_threads == 2
