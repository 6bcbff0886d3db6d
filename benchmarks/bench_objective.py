"""Microseconds per call of lens.objective.compute_advantages (float32, CPU).

Run: `python benchmarks/bench_objective.py [--algos grpo lens] [--repeats 200]`

Times B = 128 and B = 4096 groups of G = 16 (the paper's rollout batch is B = 128), once with
torch.set_num_threads(1) and once with torch's default thread count, and prints the median over
`--repeats` calls after a warm-up. Inputs mimic early training: ~45% all-wrong groups, the rest
a mix of mixed and all-correct groups, confidences in (0, 1] with a few underflowed to 0.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lens.objective import ADVANTAGE_FNS, compute_advantages

GROUP_SIZE = 16
BATCH_SIZES = (128, 4096)


def make_inputs(n_groups: int, group_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    success = torch.rand(n_groups, 1, generator=generator)
    success[: int(0.45 * n_groups)] = 0.0  # negative groups, as measured early in GRPO training
    rewards = torch.bernoulli(success.expand(n_groups, group_size), generator=generator)  # (B, G)
    confidence = torch.exp(-2 * torch.rand(n_groups, group_size, generator=generator))  # (B, G)
    confidence[torch.rand(n_groups, group_size, generator=generator) < 0.01] = 0.0
    return rewards, confidence


def time_call(algo: str, rewards: torch.Tensor, confidence: torch.Tensor, repeats: int) -> float:
    """Median microseconds of one compute_advantages call."""
    for _ in range(max(repeats // 10, 5)):
        compute_advantages(algo, rewards, confidence)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        compute_advantages(algo, rewards, confidence)
        samples.append((time.perf_counter_ns() - start) / 1e3)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["grpo", "lens"], choices=list(ADVANTAGE_FNS))
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, float32, CPU, G = {GROUP_SIZE}, median of {args.repeats} calls")
    print(f"{'threads':>8} {'algo':>20} {'B':>6} {'us/call':>10}")
    for threads in (1, default_threads):
        torch.set_num_threads(threads)
        for algo in args.algos:
            for n_groups in BATCH_SIZES:
                rewards, confidence = make_inputs(n_groups, GROUP_SIZE)
                micros = time_call(algo, rewards, confidence, args.repeats)
                print(f"{threads:>8} {algo:>20} {n_groups:>6} {micros:>10.1f}")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
