"""config/paper.yaml resolves to the paper's setup (the paper's Appendix D.1), and lens.train
turns it into the TRL settings that reproduce the paper's batch arithmetic on 8 GPUs.

    python -m pytest tests/test_paper_config.py -q
"""

from __future__ import annotations

import pytest
from helpers import PAPER

from lens.config import load_workflow_config
from lens.trl_config import batch_plan, grpo_config_kwargs, resolve_precision

# Appendix D.1: model id -> (hub id, learning rate, prompt style)
MODELS = {
    "meta-llama/Llama-3.1-8B-Instruct": (3e-7, "chat"),
    "Qwen/Qwen2.5-3B": (1e-6, "plain"),
}


@pytest.fixture(scope="module")
def workflow():
    return load_workflow_config(PAPER)


def _runs(workflow):
    return [workflow.resolve(model, algo, seed) for model in workflow.models for algo in workflow.algorithms
            for seed in workflow.seeds]


def test_paper_models_algorithms_and_seeds(workflow):
    paths = sorted(entry.model["path"] for entry in workflow.models.values())
    assert paths == sorted(MODELS)
    assert set(workflow.algorithms) == {"grpo", "lens"}
    assert len(workflow.seeds) == 2  # the paper averages 2 seeds


def test_resolved_runs_equal_the_spec_table(workflow):
    runs = _runs(workflow)
    assert len(runs) == 2 * 2 * 2
    for cfg in runs:
        lr, prompt = MODELS[cfg.model.path]
        t = cfg.training
        assert (t.learning_rate, cfg.model.prompt) == (lr, prompt), cfg.model.name
        assert t.num_generations == 16
        assert t.prompts_per_rollout == 128
        assert (t.updates_per_rollout, t.prompts_per_update) == (4, 32)
        assert t.clip_eps == 0.2 and t.kl_beta == 0.0
        assert t.temperature == 1.0 and t.top_p == 1.0
        assert t.max_new_tokens == 4096
        assert t.weight_decay == 0.01 and t.lr_schedule == "constant"  # VeRL's AdamW defaults
        assert t.rollout_steps == 1600  # ~1,600 rollout steps on MATH + DAPO
        assert cfg.algorithm.std == "sample" and cfg.algorithm.eps == 1e-6
        if cfg.algorithm.name == "lens":
            assert cfg.algorithm.alpha == 0.25
        assert resolve_precision(t, cuda=True) == "bf16"
        assert resolve_precision(t, cuda=False) == "fp32"
        e = cfg.evaluation
        assert (e.n_samples, e.temperature, e.top_p, e.max_new_tokens) == (16, 1.0, 1.0, 4096)
        assert tuple(e.pass_k) == (1, 2, 4, 8, 16)


@pytest.mark.parametrize("processes", [8, 16])
def test_trl_settings_on_gpus_reproduce_the_batch_arithmetic(workflow, processes, tmp_path):
    for cfg in _runs(workflow):
        plan = batch_plan(cfg.training, processes)
        kw = grpo_config_kwargs(cfg, plan, cuda=True, output_dir=tmp_path)
        completions_per_update = kw["per_device_train_batch_size"] * processes * kw["gradient_accumulation_steps"]
        assert completions_per_update == 32 * 16  # 512 responses per optimizer update
        # TRL generates once every steps_per_generation micro-batches: one rollout of 2,048 responses.
        assert kw["per_device_train_batch_size"] * processes * kw["steps_per_generation"] == 128 * 16
        assert kw["steps_per_generation"] // kw["gradient_accumulation_steps"] == 4  # updates per rollout
        assert kw["num_iterations"] == 1
        assert kw["max_steps"] == 1600 * 4
        assert kw["save_steps"] == cfg.training.save_every * 4
        assert kw["logging_steps"] == 4  # one log entry per rollout step
        assert kw["num_generations"] == 16
        assert kw["learning_rate"] == MODELS[cfg.model.path][0] and kw["lr_scheduler_type"] == "constant"
        assert kw["epsilon"] == 0.2 and kw["beta"] == 0.0
        assert kw["loss_type"] == "grpo"  # Eq. 3: token mean per sequence, then mean over sequences
        assert kw["scale_rewards"] == "none"  # lens.objective owns the std division
        assert (kw["temperature"], kw["top_p"], kw["top_k"]) == (1.0, 1.0, 0)
        assert kw["max_completion_length"] == 4096
        assert kw["bf16"] is True and kw["fp16"] is False and kw["use_cpu"] is False
        assert kw["use_vllm"] is (cfg.training.engine == "vllm")
