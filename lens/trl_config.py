"""TRL's GRPOConfig from a run config: the paper's batch arithmetic (prompts per rollout, updates per rollout,
samples per prompt) in TRL's units (per-device batch, gradient accumulation, steps per generation) for a
number of processes, and every other GRPOConfig argument lens.train sets (docs/training.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lens import algorithms
from lens.algorithms import clip_epsilons
from lens.config import ConfigError, RunConfig, TrainingConfig
from lens.data import stop_strings


# --------------------------------------------------------------------------------------------
# Batch arithmetic: the paper's units -> TRL's
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPlan:
    """TRL's batch settings for one run; sizes are in completions (prompts x G)."""

    num_processes: int
    per_device_train_batch_size: int  # completions per process per forward/backward
    gradient_accumulation_steps: int  # micro-batches per optimizer update
    steps_per_generation: int  # micro-batches per rollout = updates_per_rollout x accumulation
    generation_batch_size: int  # completions per rollout, all processes together
    updates_per_rollout: int
    max_steps: int  # optimizer updates = rollout_steps x updates_per_rollout
    save_steps: int  # optimizer updates between checkpoints


def batch_plan(training: TrainingConfig, num_processes: int) -> BatchPlan:
    """Derive TRL's per-device batch, accumulation and steps per generation; ConfigError if they do not divide.

    One optimizer update consumes prompts_per_update x G completions spread over the processes;
    each process runs them in micro-batches of `micro_batch_size` (default: all at once).
    """
    if num_processes < 1:
        raise ConfigError(f"number of processes must be >= 1, got {num_processes}")
    g = training.num_generations
    per_update = training.prompts_per_update * g
    if per_update % num_processes:
        raise ConfigError(
            f"training.prompts_per_update x num_generations = {training.prompts_per_update} x {g} = {per_update} "
            f"completions per update do not split evenly over {num_processes} processes")
    per_process = per_update // num_processes
    micro = training.micro_batch_size or per_process
    if micro < 1 or per_process % micro:
        raise ConfigError(
            f"training.micro_batch_size ({training.micro_batch_size}) must divide the {per_process} completions "
            f"each of the {num_processes} processes handles per update")
    accumulation = per_process // micro
    plan = BatchPlan(
        num_processes=num_processes,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=training.updates_per_rollout * accumulation,
        generation_batch_size=training.prompts_per_rollout * g,
        updates_per_rollout=training.updates_per_rollout,
        max_steps=training.rollout_steps * training.updates_per_rollout,
        save_steps=training.save_every * training.updates_per_rollout,
    )
    # TRL's own derivation (GRPOConfig.__post_init__) must land on the paper's rollout size.
    assert plan.per_device_train_batch_size * num_processes * plan.steps_per_generation == plan.generation_batch_size
    return plan


def resolve_precision(training: TrainingConfig, cuda: bool) -> str:
    """"bf16" or "fp32": precision auto means bf16 on CUDA, fp32 on CPU."""
    if training.precision == "auto":
        return "bf16" if cuda else "fp32"
    if training.precision == "bf16" and not cuda:
        raise ConfigError("training.precision: bf16 needs a CUDA device (use auto or fp32 on CPU)")
    return training.precision


def grpo_config_kwargs(cfg: RunConfig, plan: BatchPlan, *, cuda: bool, output_dir: str | Path) -> dict[str, Any]:
    """Keyword arguments of trl.GRPOConfig for this run (kept a dict so tests can read them on CPU)."""

    t = cfg.training
    # PPO clipping: training.clip_eps on both sides, or the algorithm's own asymmetric pair (NGRPO).
    clip_low, clip_high = clip_epsilons(cfg.algorithm.name, dataclasses.asdict(cfg.algorithm), t.clip_eps)
    precision = resolve_precision(t, cuda)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=cfg.seed,
        data_seed=cfg.seed,
        # batch arithmetic
        per_device_train_batch_size=plan.per_device_train_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        steps_per_generation=plan.steps_per_generation,
        num_generations=t.num_generations,
        num_iterations=1,
        max_steps=plan.max_steps,
        shuffle_dataset=True,
        # optimiser: AdamW, no learning-rate warm-up; constant or decaying to 0 at max_steps
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_schedule,
        warmup_steps=0,
        # objective: Eq. 3 with clip 0.2, no KL; our advantages are never rescaled by TRL
        loss_type=algorithms.get(cfg.algorithm.name).loss_type,
        epsilon=clip_low,
        epsilon_high=clip_high,
        beta=t.kl_beta,
        scale_rewards="none",
        mask_truncated_completions=False,
        # sampling
        temperature=t.temperature,
        top_p=t.top_p,
        top_k=0,
        max_completion_length=t.max_new_tokens,
        use_vllm=t.engine == "vllm",
        # precision and memory
        bf16=precision == "bf16",
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=t.gradient_checkpointing,
        # checkpoints: every save_every rollout steps, at a rollout boundary
        save_strategy="steps",
        save_steps=plan.save_steps,
        save_only_model=False,
        # one log entry per rollout step: TRL averages the step's updates and adds the rollout's metrics
        logging_strategy="steps",
        logging_steps=plan.updates_per_rollout,
        report_to="none",
        log_completions=False,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    if t.engine == "vllm":
        kwargs.update(vllm_mode=t.vllm_mode, vllm_gpu_memory_utilization=t.vllm_gpu_memory_utilization,
                      # TRL 1.16 reweights sequences by the vLLM/trainer probability ratio by default; the
                      # paper's Eq. 3 has no such term (training.vllm_importance_sampling_correction).
                      vllm_importance_sampling_correction=t.vllm_importance_sampling_correction,
                      # KV cache sized to the longest sequence we ever sample
                      vllm_max_model_length=t.max_prompt_tokens + t.max_new_tokens)
        if t.vllm_mode == "server" and t.vllm_server_base_url:
            kwargs["vllm_server_base_url"] = t.vllm_server_base_url
        stops = stop_strings(cfg.model.prompt)
        if stops:
            # vLLM's SamplingParams(stop=...): a base model stops before writing a next "Question:".
            # transformers' generate cannot take stop strings through TRL (it needs the tokenizer
            # at call time); there the reward still grades only the first answer (make_reward).
            kwargs["generation_kwargs"] = {"stop": list(stops)}
    return kwargs
