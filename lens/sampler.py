"""The training prompts' order over every pass of a run: TRL's sampler made resumable in any epoch."""

from __future__ import annotations

import math

import torch
from trl.trainer.utils import RepeatSampler


class RunSampler(RepeatSampler):
    """TRL's RepeatSampler, every pass over the data in one iteration, so a resume in any epoch replays them.

    TRL's sampler draws each epoch's shuffle from one generator that lives as long as the sampler, and
    has no set_epoch: a job resumed in epoch e >= 1 builds a fresh sampler, and transformers skips the
    trained batches of its *first* shuffle, so the rest of epoch e (and every later one) follows other
    prompts than the uninterrupted run (tests/test_train.py). Here one iteration yields `passes` shuffles
    from a generator seeded afresh at the start: the uninterrupted order is TRL's, and the Trainer sees a
    single epoch, which its resume skips into exactly.
    """

    def __init__(self, *args, passes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.passes = passes

    def __iter__(self):
        if self.shuffle:
            self.generator = torch.Generator()
            if self.seed is not None:
                self.generator.manual_seed(self.seed)
        for _ in range(self.passes):
            yield from super().__iter__()

    def __len__(self) -> int:
        return super().__len__() * self.passes


def data_passes(num_prompts: int, prompts_per_rollout: int, rollouts: int) -> int:
    """Passes over `num_prompts` training prompts that `rollouts` rollouts of `prompts_per_rollout` take
    (each pass drops its last incomplete rollout, as TRL's sampler does)."""
    per_pass = num_prompts // prompts_per_rollout
    if per_pass < 1:
        raise ValueError(f"{num_prompts} training prompts are fewer than one rollout's {prompts_per_rollout}")
    return max(1, math.ceil(rollouts / per_pass))
