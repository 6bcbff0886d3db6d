"""What lens.trainer relies on beyond TRL's and torch's public API, checked where it can be.

TRL's GRPOTrainer has no hook for the advantages, so lens.trainer overrides private methods (their
names and signatures: TRL_CONTRACT) and relies on what their code does (TRL_SOURCE_CONTRACT). Both are
checked when a trainer is built, so a TRL upgrade that changes them fails loudly instead of silently
training GRPO; tests/test_trainer.py pins TRL's version and checks the behaviour through training runs.
"""

from __future__ import annotations

import inspect

import torch
from trl import GRPOTrainer

# The TRL internals this subclass relies on, checked at construction (and by tests/test_trainer.py)
# so that a TRL upgrade that changes them fails loudly instead of silently training GRPO.
TRL_CONTRACT = {
    "_generate_and_score_completions": ("self", "inputs"),
    "_calculate_rewards": ("self", "inputs", "prompts", "completions", "completion_ids_list"),
    "_get_per_token_logps_and_entropies": ("self", "model", "input_ids", "attention_mask", "logits_to_keep",
                                           "batch_size"),
    "_compute_loss": ("self", "model", "inputs"),
    "_prepare_inputs": ("self", "generation_batch"),
    "_get_train_sampler": ("self", "dataset"),  # RunSampler: TRL's RepeatSampler over every pass
    "log": ("self", "logs", "start_time"),  # the logged epoch in passes over the data
    "_generate": ("self", "prompts"),  # timed: the rollout's generation seconds
}
# Source fragments whose meaning the subclass depends on: TRL computes old log-probs only when an
# update is not the first after a generation (or for vLLM IS), and the loss reuses
# inputs["old_per_token_logps"] when present; rewards come back gathered across processes; a
# rollout is buffered as steps_per_generation micro-batches, and loss_type "grpo" is the PPO-clip
# term (homogeneous in A) averaged over sequences (kept_only_advantages relies on both).
TRL_SOURCE_CONTRACT = {
    "_generate_and_score_completions": (
        "if self.args.gradient_accumulation_steps % generate_every != 0 or (",
        "rewards_per_func = self._calculate_rewards(inputs, prompts, completions, completion_ids_list)",
        '"advantages": advantages,',
        'output["old_per_token_logps"] = old_per_token_logps',
        'output["sampling_per_token_logps"] = sampling_per_token_logps',
    ),
    "_compute_loss": (
        'old_per_token_logps = inputs.get("old_per_token_logps")',
        "old_per_token_logps = per_token_logps.detach() if old_per_token_logps is None else old_per_token_logps",
        'advantages = inputs["advantages"]',
        "per_token_loss = -torch.min(per_token_loss1, per_token_loss2)",
        "loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()",
    ),
    "_prepare_inputs": (
        "if self._step % generate_every == 0 or self._buffered_inputs is None:",
        "generation_batches = split_tensor_dict(generation_batch, self.args.steps_per_generation)",
        "inputs = self._buffered_inputs[self._step % self.args.steps_per_generation]",
    ),
    "_calculate_rewards": ("rewards_per_func = gather(rewards_per_func)",),
}


def check_trl_contract() -> None:
    """Raise RuntimeError naming every TRL method whose signature or relied-on code changed."""
    problems = []
    for name, expected in TRL_CONTRACT.items():
        method = getattr(GRPOTrainer, name, None)
        if method is None:
            problems.append(f"GRPOTrainer.{name} is gone")
            continue
        params = tuple(inspect.signature(method).parameters)
        if params[: len(expected)] != expected:
            problems.append(f"GRPOTrainer.{name}{params} no longer starts with {expected}")
    for name, fragments in TRL_SOURCE_CONTRACT.items():
        method = getattr(GRPOTrainer, name, None)
        source = inspect.getsource(method) if method is not None else ""
        problems += [f"GRPOTrainer.{name} no longer contains {frag!r}" for frag in fragments if frag not in source]
    if problems:
        raise RuntimeError("lens.trainer relies on TRL internals that changed (written for trl 1.16.0):\n  "
                           + "\n  ".join(problems))


def _indexed_cpu_tag(storage) -> None:
    return None  # saving is left to torch's own taggers


def _restore_indexed_cpu(storage, location: str):
    """Storages loaded with map_location "cpu:N" stay on the CPU (torch's loader knows only "cpu")."""
    return storage if location.startswith("cpu:") else None


_indexed_cpu_registered = False


def allow_indexed_cpu_map_location() -> None:
    """Let torch.load take map_location=device("cpu", N). transformers' Trainer resumes the optimizer
    with map_location=args.device whenever world_size > 1, and on CPU processes under torchrun
    args.device is device("cpu", 0): torch.load then fails ("don't know how to restore data location
    ... tagged with cpu:0"), so a several-process CPU job could not resume. Registered once."""
    global _indexed_cpu_registered
    if not _indexed_cpu_registered:
        torch.serialization.register_package(11, _indexed_cpu_tag, _restore_indexed_cpu)
        _indexed_cpu_registered = True
