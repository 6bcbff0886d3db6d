"""What lens.trainer relies on beyond TRL's and torch's public API, and how each is checked.

TRL's GRPOTrainer has no hook for the advantages, so lens.trainer overrides private methods. Their
names and signatures (TRL_CONTRACT) are checked whenever a trainer is built, so a TRL other than the
pinned one fails loudly instead of silently training GRPO. What their code does is checked by
behaviour, through real training runs of a tiny model on the pinned TRL (tests/test_trainer.py):

- TRL computes pi_old's log-probs only when an update is not the first after a generation, and its loss
  reuses inputs["old_per_token_logps"] when present:
    test_one_update_per_rollout_adds_a_forward_only_for_lens, test_several_updates_reuse_trl_old_logps,
    test_confidence_is_the_rollout_policys_geometric_mean_probability;
- rewards come back gathered across processes, and TRL slices each process's rows in gather order:
    test_groups_split_across_processes_match_the_single_process_advantages (and tests/test_multiprocess.py,
    two real processes);
- a rollout is buffered as steps_per_generation micro-batches, and loss_type "grpo" is the PPO-clip term
  averaged over sequences (homogeneous in A):
    test_reinforce_rej_update_equals_the_one_on_kept_prompts_only.

Only vLLM's sampling log-probs, which no CPU can make TRL produce, are checked in TRL's source
(TRL_SOURCE_CONTRACT).
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
# With vLLM, TRL hands its sampling log-probs on in the rollout's output (training.confidence_from): vLLM
# runs on GPUs only, so this one is read in the pinned TRL's source.
TRL_SOURCE_CONTRACT = {
    "_generate_and_score_completions": ('output["sampling_per_token_logps"] = sampling_per_token_logps',),
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
