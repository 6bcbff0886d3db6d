"""One rollout's advantages, metrics and records, from every process's rewards and confidences (pure torch).

lens.trainer calls these after each generation: `rollout_advantages` runs the run's advantage rule on the
whole rollout, gathered across processes (a prompt's G samples may sit on different GPUs), and
`process_advantages` slices this process's rows back as TRL slices its own; `rollout_metrics` are the
per-rollout diagnostics, `rollout_records` the per-completion rows of rollouts.parquet, and
`kept_only_advantages` Reinforce-Rej's rescaling of an update's kept sequences (lens.trainer's docstring,
point 4). No TRL here: each is tested on hand-made tensors (tests/test_trainer.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lens.algorithms import GROUP_TYPES
from lens.config import AlgorithmConfig
from lens.objective import compute_advantages, group_stats


def rollout_metrics(
    rewards: Tensor, confidence: Tensor | None, advantages: Tensor, grpo_advantages: Tensor
) -> dict[str, float]:
    """Per-rollout diagnostics of (B, G) rewards, confidences, advantages and GRPO's advantages.

    Fractions of group types, the share of samples with a nonzero advantage, the mean confidence
    of correct and of wrong answers (NaN if there are none, or no confidence), and mean |A|,
    mean |A_GRPO| and mean |A - A_GRPO| over the samples in each group type (0 if none).
    """
    stats = group_stats(rewards, advantages)
    grpo_stats = group_stats(rewards, grpo_advantages)
    delta_stats = group_stats(rewards, advantages - grpo_advantages)
    metrics = {f"groups/{kind}_frac": float(stats[f"{kind}_frac"]) for kind in GROUP_TYPES}
    metrics["adv/nonzero_frac"] = float(stats["nonzero_adv_frac"])
    for kind in GROUP_TYPES:
        metrics[f"adv/abs_mean/{kind}"] = float(stats[f"abs_adv_{kind}"])
        metrics[f"adv/grpo_abs_mean/{kind}"] = float(grpo_stats[f"abs_adv_{kind}"])
        metrics[f"adv/delta_vs_grpo/{kind}"] = float(delta_stats[f"abs_adv_{kind}"])
    correct = rewards > 0.5  # (B, G)
    for name, select in (("correct", correct), ("wrong", ~correct)):
        if confidence is None or not bool(select.any()):
            metrics[f"confidence/{name}_mean"] = math.nan  # TRL's log() drops NaN entries
        else:
            metrics[f"confidence/{name}_mean"] = float(confidence[select].float().mean())
    return metrics


def rollout_seed(run_seed: int, step: int) -> int:
    """The seed of the advantages' random draws for the rollout generated at optimizer step `step`."""
    if not (0 <= run_seed < 2**31 and 0 <= step < 2**32):
        raise ValueError(f"run seed {run_seed} or step {step} out of range")
    return run_seed * 2**32 + step  # distinct for every (run seed, step)


def rollout_advantages(
    algorithm: AlgorithmConfig, rewards: Tensor, confidence: Tensor | None, num_generations: int, seed: int = 0
) -> tuple[Tensor, Tensor, dict[str, float]]:
    """The whole rollout's advantages and GRPO's, both (B_all, G), and its metrics.

    `rewards` and `confidence` are (N_all,) in accelerate's gather order (process-major), where
    consecutive runs of `num_generations` samples are one prompt's group even when a group
    straddles two processes; `confidence` None means no log-probs were available (algorithms
    outside the LENS family with one update per rollout), so its metrics are NaN. `seed` reaches
    algorithms that draw at random (every process passes the same one, so their draws agree).
    """
    grouped_rewards = rewards.float().view(-1, num_generations)  # (B_all, G)
    confidence_grouped = confidence.float().view(-1, num_generations) if confidence is not None else None  # (B_all, G)
    # Algorithms that ignore p still take a tensor of the right shape.
    used_confidence = confidence_grouped if confidence_grouped is not None else torch.ones_like(grouped_rewards)
    advantages = compute_advantages(algorithm.name, grouped_rewards, used_confidence, seed=seed,
                                    **algorithm.params())  # (B_all, G)
    if algorithm.name == "grpo":
        grpo_advantages = advantages
    else:
        grpo_advantages = compute_advantages("grpo", grouped_rewards, used_confidence, eps=algorithm.eps,
                                             std=algorithm.std)  # (B_all, G)
    metrics = rollout_metrics(grouped_rewards, confidence_grouped, advantages, grpo_advantages)
    return advantages, grpo_advantages, metrics


def process_advantages(
    algorithm: AlgorithmConfig,
    rewards: Tensor,
    confidence: Tensor | None,
    num_generations: int,
    process_index: int,
    n_local: int,
    seed: int = 0,
) -> tuple[Tensor, dict[str, float]]:
    """This process's advantages (n_local,) and the rollout's metrics, from every process's samples
    (`rollout_advantages`)."""
    advantages, _, metrics = rollout_advantages(algorithm, rewards, confidence, num_generations, seed)
    # Same layout as TRL's own slicing: this process owns rows [i * n, (i + 1) * n).
    process_slice = slice(process_index * n_local, (process_index + 1) * n_local)
    return advantages.reshape(-1)[process_slice], metrics  # (n_local,)


ROLLOUT_COLUMNS = ["step", "group", "problem_id", "sample_idx", "rank", "completion", "completion_tokens", "reward",
                   "confidence", "group_type", "advantage", "grpo_advantage", "gen_batch", "dropped"]


def rollout_records(
    step: int,
    rewards: Tensor,
    confidence: Tensor | None,
    advantages: Tensor,
    grpo_advantages: Tensor,
    problem_ids: list[str],
    completions: list[str],
    completion_tokens: list[int],
    n_local: int,
    gen_batch: int = 0,
    dropped: Tensor | None = None,
):
    """One row per sampled completion of a generation batch (ROLLOUT_COLUMNS), from (B_all, G) rewards,
    confidences (None: NaN), advantages and GRPO's, and the (N_all,) per-sample lists in gather order.

    `group` is the prompt's index within the rollout (batch `gen_batch`'s groups come after the B_all of
    each earlier batch: only grpo_dynamic generates more than one), `sample_idx` 0..G-1 within the group
    and `rank` the process that generated the sample (gather order: n_local samples per process).
    `dropped` (B_all,): groups dynamic sampling left out of the update (None: none).
    """
    import pandas as pd

    n_groups, group_size = rewards.shape
    n_all = n_groups * group_size
    if not len(problem_ids) == len(completions) == len(completion_tokens) == n_all:
        raise ValueError(f"{n_all} samples, but {len(problem_ids)} problem ids, {len(completions)} completions "
                         f"and {len(completion_tokens)} token counts")
    n_correct = (rewards > 0.5).sum(dim=1)  # (B_all,)
    types = ["all_wrong" if k == 0 else "all_correct" if k == group_size else "mixed" for k in n_correct.tolist()]
    index = torch.arange(n_all)
    dropped = dropped if dropped is not None else torch.zeros(n_groups, dtype=torch.bool)
    return pd.DataFrame({
        "step": step,
        "group": (gen_batch * n_groups + index // group_size).tolist(),
        "problem_id": [str(p) for p in problem_ids],
        "sample_idx": (index % group_size).tolist(),
        "rank": (index // n_local).tolist(),
        "completion": list(completions),
        "completion_tokens": [int(t) for t in completion_tokens],
        "reward": rewards.reshape(-1).double().tolist(),
        "confidence": (confidence.reshape(-1).double().tolist() if confidence is not None else [math.nan] * n_all),
        "group_type": [types[i // group_size] for i in range(n_all)],
        "advantage": advantages.reshape(-1).double().tolist(),
        "grpo_advantage": grpo_advantages.reshape(-1).double().tolist(),
        "gen_batch": gen_batch,
        "dropped": dropped.repeat_interleave(group_size).tolist(),
    }, columns=ROLLOUT_COLUMNS)


def kept_only_advantages(advantages: list[Tensor], accumulation: int, sum_over_processes) -> list[Tensor]:
    """Each micro-batch's advantages, rescaled so that every update averages over its kept sequences only.

    `advantages` are this process's micro-batches of one rollout, (m,) each, in TRL's order (after
    its shuffle): update u is micro-batches [u * accumulation, (u + 1) * accumulation). A sequence
    is kept when A != 0. TRL's loss_type "grpo" weighs every sequence of an update by 1 / N (mean
    over a micro-batch, / accumulation, averaged over processes; TRL's micro-batches are of equal
    size); scaling the kept ones by N / K weighs them by 1 / K. `sum_over_processes` maps a (U,)
    tensor to its sum over processes. An update with nothing kept stays all zero.
    """
    if len(advantages) % accumulation:
        raise ValueError(f"{len(advantages)} micro-batches do not form whole updates of {accumulation}")
    n_updates = len(advantages) // accumulation
    device = advantages[0].device
    n_local = torch.tensor([float(sum(a.numel() for a in advantages[u * accumulation:(u + 1) * accumulation]))
                            for u in range(n_updates)], device=device)  # (U,)
    kept_local = torch.stack([sum((a != 0).sum() for a in advantages[u * accumulation:(u + 1) * accumulation])
                              for u in range(n_updates)]).float()  # (U,)
    n_all = sum_over_processes(n_local)  # (U,)
    kept_all = sum_over_processes(kept_local)  # (U,)
    # Reinforce-Rej (filtered prompts removed): the update's mean over N sequences becomes one over K.
    scale = torch.where(kept_all > 0, n_all / kept_all.clamp(min=1), torch.ones_like(n_all))  # (U,)
    return [a * scale[j // accumulation].to(a.dtype) for j, a in enumerate(advantages)]
