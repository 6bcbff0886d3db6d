"""DAPO's dynamic sampling (the `grpo_dynamic` arm): which generated groups a rollout trains on.

Not a command; pure tensor code used by lens.trainer, tested by tests/test_dynamic.py.

A rollout of B prompts is generated as usual. Groups whose G rewards are all equal (all correct or all
wrong: zero reward variance, so GRPO's advantages are 0) are not informative. While the rollout has fewer
than B informative groups, and fewer than `max_gen_batches` generation batches have been generated, one
more batch of B prompts is generated: the prompts that come next in the run's own data order (the next
rollout's, then the one after), so a resumed run replays them exactly. The update then trains on the
first B informative groups in generation order. At the cap it trains on the informative groups it found:
the empty slots are filled with non-informative groups of the first batch, whose advantages are 0 and
which lens.trainer leaves out of the loss's mean (as Reinforce-Rej's filtered groups), so every tensor
keeps its shape and no process ever gathers an empty tensor. With no informative group at all the update
has nothing to learn from, as GRPO's on an all-zero-advantage batch.

The quota is kept per process: a process trains on as many groups as it generated, its own informative ones
in generation order, so no row ever moves to another process and every tensor keeps its shape. On one
process this is verl's rule exactly; on several, each process picks from its share of the same batches.
A group whose samples straddle two processes (a rollout that does not split into whole groups per process)
cannot move either: its slot keeps the first batch's group, trained if informative, else left out of the
mean as a filler is.
"""

from __future__ import annotations

import torch
from torch import Tensor


def informative(rewards: Tensor) -> Tensor:
    """(..., G) rewards -> (...) bool: the group's rewards are not all equal (nonzero variance)."""
    return rewards.amax(dim=-1) > rewards.amin(dim=-1)


def owners(n_groups: int, group_size: int, n_local: int) -> Tensor:
    """(B_all,) the process holding each group of a rollout (samples in gather order, n_local per process);
    -1 for a group whose samples straddle two processes."""
    first = torch.arange(n_groups) * group_size // n_local
    last = (torch.arange(n_groups) * group_size + group_size - 1) // n_local
    return torch.where(first == last, first, torch.full_like(first, -1))


def quota_met(flags: Tensor, owner: Tensor) -> bool:
    """Whether every process has found as many informative groups as it holds slots: `flags` (J, B_all) of J
    generated batches, `owner` (B_all,) from `owners` (straddling slots cannot be refilled: they do not count)."""
    return all(int(flags[:, owner == p].sum()) >= int((owner == p).sum()) for p in owner.unique().tolist() if p >= 0)


def select_groups(flags: Tensor, owner: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The group each slot of the update trains on, from (J, B_all) informative flags of J generated batches.

    Returns (batch, source, kept), each (B_all,): slot g holds group `source[g]` of generation batch
    `batch[g]`. Each process's slots (in order) take its informative groups in generation order (batch by
    batch, then by position), at most one per slot: `kept` True. Slots left over take the process's
    non-informative groups of batch 0, in order (`kept` False: filled). A straddling slot (owner -1) keeps
    batch 0's group, kept if informative. `source[g]` is always held by the process that holds slot g.
    """
    n_batches, n_groups = flags.shape
    batch = torch.zeros(n_groups, dtype=torch.long)
    source = torch.arange(n_groups)
    kept = flags[0].clone()  # straddling slots: batch 0's own group
    for p in owner.unique().tolist():
        if p < 0:
            continue
        slots = (owner == p).nonzero().view(-1).tolist()
        chosen = [(j, g, True) for j in range(n_batches) for g in slots if flags[j, g]][:len(slots)]
        # Enough fillers always exist: batch 0 has len(slots) minus its informative groups, and at least those
        # informative ones were chosen.
        chosen += [(0, g, False) for g in slots if not flags[0, g]][: len(slots) - len(chosen)]
        for slot, (j, g, keep) in zip(slots, chosen, strict=True):
            batch[slot], source[slot], kept[slot] = j, g, keep
    return batch, source, kept
