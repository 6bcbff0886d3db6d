"""Tests of lens.objective: hand-computed values, the consequences of the paper's Section 5,
hypothesis properties, and an independent per-group reference implementation of the spec.

Run: `python -m pytest tests/test_objective.py -q`
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lens import objective
from lens.objective import ADVANTAGE_FNS, compute_advantages, group_stats, sequence_confidence

ALGOS = tuple(ADVANTAGE_FNS)
EPS = 1e-6


def tensor(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def assert_values(actual: torch.Tensor, expected, atol=1e-6):
    torch.testing.assert_close(actual, tensor(expected, actual.dtype), atol=atol, rtol=0)


# --------------------------------------------------------------------------------------------
# The worked example of the module docstring: one mixed, one all-wrong, one all-correct group.
#
# Mixed group, r = [1, 0, 0, 0], p = [0.5, 0.8, 0.4, 0.2], G = 4:
#   Eq. 14: mean_i(r_i / p_i) = (1/0.5) / 4 = 1/2  ->  D_imp = 2;  floor 2 max p = 1.6;  D = 2
#   wrong answers: p / (D - p) = 0.8/1.2 = 2/3, 0.4/1.6 = 1/4, 0.2/1.8 = 1/9; times 1/G = 1/4:
#   r^ = [1, -1/6, -1/16, -1/36] = [144, -24, -9, -4] / 144
#   mean r^ = 107/144 / 4 = 107/576;  r^ - mean = [576-107, -96-107, -36-107, -16-107] / 576
#          = [469, -203, -143, -123] / 576
#   sum of squares = (469^2 + 203^2 + 143^2 + 123^2) / 576^2 = (219961 + 41209 + 20449 + 15129) / 576^2
#                  = 296748 / 576^2;  sample std = sqrt(296748 / 3) / 576 = 0.5460228...
# Negative group, r = [0, 0, 0, 0], p = [0.5, 0.25, 0.2, 0.1]:
#   D = 2 max p = 1;  p / (1 - p) = [1, 1/3, 1/4, 1/9] = [36, 12, 9, 4] / 36
#   r^ = -(1/4) [36, 12, 9, 4] / 36 = -[144, 48, 36, 16] / 576;  mean r^ = -244/2304 = -61/576
#   r^ - mean = [-144+61, -48+61, -36+61, -16+61] / 576 = [-83, 13, 25, 45] / 576
#   A = alpha (r^ - mean) = [-83, 13, 25, 45] / 2304
# All-correct group, r = [1, 1, 1, 1], p = [0.3, 0.3, 0.2, 0.1]: A = 0 for grpo/lens*/dr_grpo/nsr.
EXAMPLE_REWARDS = [[1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
EXAMPLE_CONFIDENCE = [[0.5, 0.8, 0.4, 0.2], [0.5, 0.25, 0.2, 0.1], [0.3, 0.3, 0.2, 0.1]]
LENS_STD = math.sqrt(296748 / 3) / 576
LENS_MIXED = [c / 576 / (LENS_STD + EPS) for c in (469, -203, -143, -123)]
LENS_NEGATIVE = [c / 2304 for c in (-83, 13, 25, 45)]
# GRPO, r = [1, 0, 0, 0]: mean 1/4, r - mean = [3/4, -1/4, -1/4, -1/4],
# sample var = (9/16 + 3 * 1/16) / 3 = 1/4, std = 1/2.
GRPO_MIXED = [c / (0.5 + EPS) for c in (0.75, -0.25, -0.25, -0.25)]
ZEROS = [0.0, 0.0, 0.0, 0.0]
EXAMPLE_EXPECTED = {
    "grpo": [GRPO_MIXED, ZEROS, ZEROS],
    "lens": [LENS_MIXED, LENS_NEGATIVE, ZEROS],
    "lens_mixed_only": [LENS_MIXED, ZEROS, ZEROS],
    "lens_negative_only": [GRPO_MIXED, LENS_NEGATIVE, ZEROS],
    # Dr. GRPO: r - mean r, no std division.
    "dr_grpo": [[0.75, -0.25, -0.25, -0.25], ZEROS, ZEROS],
    # NSR: r - 1.
    "nsr": [[0, -1, -1, -1], [-1, -1, -1, -1], ZEROS],
    # W-REINFORCE: lambda = 0.1 for correct, -1 for wrong.
    "w_reinforce": [[0.1, -1, -1, -1], [-1, -1, -1, -1], [0.1, 0.1, 0.1, 0.1]],
    # NGRPO, R' = R + [1]:  mixed [1, 0, 0, 0, 1]: mean 2/5, deviations [3, -2, -2, -2, 3] / 5,
    #   sum sq = 30/25, sample var = (6/5) / 4 = 3/10;  negative [0, 0, 0, 0, 1]: mean 1/5,
    #   deviations [-1, -1, -1, -1, 4] / 5, sum sq = 20/25, sample var = 1/5, A = -(1/5) sqrt(5).
    "ngrpo": [[c / (math.sqrt(0.3) + EPS) for c in (0.6, -0.4, -0.4, -0.4)],
              [-0.2 / (math.sqrt(0.2) + EPS)] * 4, ZEROS],
    # Uniform weights: mixed r^ = [1, -1/4, -1/4, -1/4] = (5/4) r - 1/4: deviations (5/4) [3/4, -1/4, ...],
    #   std (5/4)(1/2) = 5/8 (GRPO up to eps);  negative r^ = -1/4 each, A = alpha r^ = -1/16.
    "uniform_negative": [[1.25 * c / (0.625 + EPS) for c in (0.75, -0.25, -0.25, -0.25)], [-1 / 16] * 4, ZEROS],
    # Reinforce-Rej: +-1 in mixed groups, all-wrong and all-correct groups filtered (A = 0).
    "reinforce_rej": [[1, -1, -1, -1], ZEROS, ZEROS],
    # GRPO shuffled, seed 0 (the default): the generator draws permutation [2, 1, 3, 0] for the first
    # group (test_grpo_shuffled_permutes_grpo_within_each_group), so the correct answer's 1.5 lands on sample 3.
    "grpo_shuffled": [[GRPO_MIXED[i] for i in (2, 1, 3, 0)], ZEROS, ZEROS],
    # Dynamic sampling changes which groups a rollout holds (lens.dynamic), not the rule: GRPO's advantages.
    "grpo_dynamic": [GRPO_MIXED, ZEROS, ZEROS],
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("algo", ALGOS)
def test_worked_example_pinned(algo, dtype):
    advantages = compute_advantages(algo, tensor(EXAMPLE_REWARDS, dtype), tensor(EXAMPLE_CONFIDENCE, dtype))
    assert advantages.dtype == dtype and advantages.shape == (3, 4)
    assert_values(advantages, EXAMPLE_EXPECTED[algo])


def test_lens_rewards_worked_example():
    # r^ of the worked example above: mixed [1, -1/6, -1/16, -1/36], negative -[144, 48, 36, 16] / 576.
    calibrated = objective.lens_rewards(tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE))
    assert_values(calibrated, [[1, -1 / 6, -1 / 16, -1 / 36], [-144 / 576, -48 / 576, -36 / 576, -16 / 576],
                               [1, 1, 1, 1]])
    # wrong_scale 2 doubles every wrong answer's penalty; floor_factor 3 in the negative group:
    # D = 1.5, p / (D - p) = [0.5, 0.2, 0.1538.., 1/14].
    doubled = objective.lens_rewards(tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE), wrong_scale=2.0)
    assert_values(doubled[1], [-2 * 144 / 576, -2 * 48 / 576, -2 * 36 / 576, -2 * 16 / 576])
    floored = objective.lens_rewards(tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE), floor_factor=3.0)
    assert_values(floored[1], [-0.5 / 4, -0.2 / 4, -(0.2 / 1.3) / 4, -(0.1 / 1.4) / 4])
    with pytest.raises(ValueError, match="floor_factor"):
        objective.lens_rewards(tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE), floor_factor=1.0)


def test_worked_example_decimals_match_docstring():
    # The rounded numbers printed in the module docstring.
    assert_values(tensor(LENS_MIXED), [1.491210, -0.645449, -0.454676, -0.391085])
    assert_values(tensor(LENS_NEGATIVE), [-0.036024, 0.005642, 0.010851, 0.019531])
    assert "[ 1.491210, -0.645449, -0.454676, -0.391085]" in objective.__doc__
    assert "[-0.036024, 0.005642, 0.010851, 0.019531]" in objective.__doc__


def test_ngrpo_reproduces_the_papers_analytic_case():
    # NGRPO's analytic case, G = 8, one correct answer.
    # GRPO: mean 1/8, sample var = (8/7)(1/8)(7/8) = 1/8, std = 0.353553:
    #   correct (7/8) / 0.353553 = 2.4749,  wrong -(1/8) / 0.353553 = -0.3536.
    # NGRPO: R' has 2 ones in 9 values: mean 2/9, sample var = (9/8)(2/9)(7/9) = 7/36, std = sqrt(7)/6:
    #   correct (7/9) / (sqrt(7)/6) = 14 / (3 sqrt 7) = 1.7638,  wrong -(2/9) / (sqrt(7)/6) = -0.5040.
    rewards, confidence = tensor([[1, 0, 0, 0, 0, 0, 0, 0]]), tensor([[0.5] * 8])
    grpo = compute_advantages("grpo", rewards, confidence)
    ngrpo = compute_advantages("ngrpo", rewards, confidence)
    assert round(grpo[0, 0].item(), 2) == 2.47 and round(grpo[0, 1].item(), 2) == -0.35
    assert round(ngrpo[0, 0].item(), 2) == 1.76 and round(ngrpo[0, 1].item(), 2) == -0.50
    std = math.sqrt(7) / 6
    assert_values(ngrpo, [[(7 / 9) / (std + EPS)] + [-(2 / 9) / (std + EPS)] * 7])
    # All-wrong group of 8: mean 1/9, sample var = (9/8)(1/9)(8/9) = 1/9, A = -(1/9) * 3 = -1/3 for all.
    assert_values(compute_advantages("ngrpo", tensor([[0] * 8]), tensor([[0.5] * 8])), [[-1 / (3 + 3 * EPS)] * 8])
    # All correct: mean 1, A = 0 exactly.
    assert torch.equal(compute_advantages("ngrpo", tensor([[1] * 8]), tensor([[0.5] * 8])), torch.zeros(1, 8,
                       dtype=torch.float64))


def test_uniform_negative_gives_all_wrong_groups_one_constant():
    # Uniform negative (this suite's baseline): p/(D - p) -> 1, so a wrong answer's r^ = -1/G whatever its p.
    # G = 16, alpha = 0.25: all-wrong group A = alpha * (-1/16) = -1/64 for every answer.
    confidence = tensor([[0.9, 0.1, 0.5, 0.3] * 4])
    advantages = compute_advantages("uniform_negative", tensor([[0] * 16]), confidence)
    assert_values(advantages, [[-1 / 64] * 16])
    assert_values(compute_advantages("uniform_negative", tensor([[0] * 16]), confidence, alpha=1.0), [[-1 / 16] * 16])
    # LENS on the same group de-means: its advantages sum to 0 and its most confident mistake,
    # whose weight is exactly 1 (D = 2 max p), has r^ = -1/G, the uniform rule's reward.
    lens = compute_advantages("lens", tensor([[0] * 16]), confidence)
    assert abs(lens.sum().item()) < 1e-12
    # Mixed groups: r^ is affine in r, so the advantages are GRPO's (up to eps).
    mixed_rewards, mixed_conf = tensor([[1, 0, 1, 0, 0, 0, 0, 0]]), tensor([[0.9, 0.2, 0.5, 0.7, 0.1, 0.3, 0.4, 0.6]])
    torch.testing.assert_close(compute_advantages("uniform_negative", mixed_rewards, mixed_conf),
                               compute_advantages("grpo", mixed_rewards, mixed_conf), atol=1e-5, rtol=0)


def test_appendix_c_special_case_is_grpo():
    # The LENS paper's Appendix C with rho = mu = pi_theta: one weight k/(G - k) per question.
    # r = [1, 0, 0, 0], k = 1: r^ = [1, -1/3, -1/3, -1/3] = (4/3) r - 1/3, affine in r: standardised,
    # GRPO's [1.5, -0.5, -0.5, -0.5] (up to eps); k = 0: weight 0, A = 0; GRPO already covers both.
    rewards = tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    k = rewards.sum(-1, keepdim=True)
    special_case = rewards - (1 - rewards) * k / (4 - k)
    advantages = objective._divide_by_std(objective._centered(special_case), EPS, "sample")
    grpo = compute_advantages("grpo", rewards, torch.ones_like(rewards))
    assert_values(advantages[:1], [[1.5, -0.5, -0.5, -0.5]], atol=1e-5)
    torch.testing.assert_close(advantages, grpo, atol=1e-5, rtol=0)
    assert bool((advantages[2] == 0).all())


def test_reinforce_rej_filters_homogeneous_groups():
    rewards = tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    advantages = compute_advantages("reinforce_rej", rewards, tensor([[0.5] * 4] * 3))
    assert_values(advantages, [[1, -1, -1, 1], ZEROS, ZEROS])


def test_grpo_shuffled_permutes_grpo_within_each_group():
    rewards = tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    confidence = tensor([[0.5] * 4] * 4)
    grpo = compute_advantages("grpo", rewards, confidence)
    # The recipe: i.i.d. uniform keys from a CPU generator seeded with `seed`, argsorted per row;
    # sample j gets GRPO's advantage of sample permutation[j]. Seed 0 draws [2, 1, 3, 0] first.
    permutation = torch.rand((4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.float64).argsort(-1)
    assert permutation[0].tolist() == [2, 1, 3, 0]
    shuffled = compute_advantages("grpo_shuffled", rewards, confidence, seed=0)
    assert torch.equal(shuffled, grpo.gather(-1, permutation))
    # r = [1, 0, 0, 0]: GRPO [1.5, -0.5, -0.5, -0.5] (up to eps) becomes [-0.5, -0.5, -0.5, 1.5].
    assert_values(shuffled[:1], [[-0.5, -0.5, -0.5, 1.5]], atol=1e-5)
    for seed in range(20):
        again = compute_advantages("grpo_shuffled", rewards, confidence, seed=seed)
        # Pure: the same inputs and seed give the same output; each group keeps GRPO's multiset.
        assert torch.equal(again, compute_advantages("grpo_shuffled", rewards, confidence, seed=seed))
        assert torch.equal(again.sort(-1).values, grpo.sort(-1).values)
        assert bool((again[2:] == 0).all())
    assert not torch.equal(compute_advantages("grpo_shuffled", rewards, confidence, seed=1), shuffled)
    with pytest.raises(ValueError, match="seed"):
        compute_advantages("grpo_shuffled", rewards, confidence, seed=-1)


def test_grpo_shuffled_share_of_groups_is_graded():
    rewards = tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0]] * 2)
    confidence = tensor([[0.5] * 4] * 8)
    grpo = compute_advantages("grpo", rewards, confidence)
    every = compute_advantages("grpo_shuffled", rewards, confidence, seed=7)
    # q = 1 (the default) is the control as it always was; q = 0 is GRPO
    assert torch.equal(compute_advantages("grpo_shuffled", rewards, confidence, seed=7, shuffle_frac=1.0), every)
    assert torch.equal(compute_advantages("grpo_shuffled", rewards, confidence, seed=7, shuffle_frac=0.0), grpo)
    # The recipe: after the (8, 4) permutation keys, one uniform per group; a group is shuffled when it is < q.
    generator = torch.Generator().manual_seed(7)
    torch.rand((8, 4), generator=generator, dtype=torch.float64)
    chosen = torch.rand(8, generator=generator, dtype=torch.float64) < 0.5
    assert 0 < int(chosen.sum()) < 8  # both kinds of group occur with this seed
    half = compute_advantages("grpo_shuffled", rewards, confidence, seed=7, shuffle_frac=0.5)
    assert torch.equal(half[chosen], every[chosen]) and torch.equal(half[~chosen], grpo[~chosen])
    # each group is shuffled with probability q: 4000 groups at q = 0.3
    many = tensor([[1, 0, 0, 0]] * 4000)
    moved = compute_advantages("grpo_shuffled", many, torch.ones_like(many), seed=1, shuffle_frac=0.3)
    kept = (moved == compute_advantages("grpo", many, torch.ones_like(many))).all(-1).double().mean().item()
    # a shuffled group keeps its order by chance 1/4 of the time: P(kept) = 0.7 + 0.3 / 4; sd 0.007
    assert kept == pytest.approx(0.7 + 0.3 / 4, abs=0.03)


def test_grpo_shuffled_gives_the_correct_answer_a_positive_advantage_k_over_g_of_the_time():
    # 4000 groups in one draw (one independent permutation per group): the correct answer (sample 0
    # of r = [1, 0, 0, 0], k/G = 1/4; samples 0-1 of r = [1, 1, 0, 0], k/G = 1/2) gets a positive
    # advantage with probability k/G. Binomial sd: sqrt(0.25 * 0.75 / 4000) = 0.007, sqrt(0.25 / 4000) = 0.008.
    n = 4000
    for pattern, share in (([1, 0, 0, 0], 0.25), ([1, 1, 0, 0], 0.5)):
        rewards = tensor([pattern] * n)
        shuffled = compute_advantages("grpo_shuffled", rewards, torch.ones_like(rewards), seed=123)
        positive = (shuffled[:, 0] > 0).double().mean().item()
        assert positive == pytest.approx(share, abs=0.035), pattern
        # Each sample position is equally likely to get each advantage: the correct answer's is no better.
        assert (shuffled[:, 2] > 0).double().mean().item() == pytest.approx(share, abs=0.035)


def test_lens_floor_binds_in_mixed_group():
    # r = [1, 1, 0, 0], p = [0.5, 0.25, 0.4, 0.2], G = 4:
    #   Eq. 14: mean(r/p) = (2 + 4) / 4 = 3/2 -> D_imp = 2/3;  floor 2 max p = 1.0 > D_imp -> D = 1
    #   wrong: p/(1-p) = 0.4/0.6 = 2/3, 0.2/0.8 = 1/4; times 1/4: r^ = [1, 1, -1/6, -1/16]
    #   = [48, 48, -8, -3] / 48;  mean = 85/48 / 4 = 85/192
    #   r^ - mean = [192-85, 192-85, -32-85, -12-85] / 192 = [107, 107, -117, -97] / 192
    #   sum sq = (2 * 11449 + 13689 + 9409) / 192^2 = 45996 / 192^2;  sample std = sqrt(45996/3)/192
    std = math.sqrt(45996 / 3) / 192
    expected = [[c / 192 / (std + EPS) for c in (107, 107, -117, -97)]]
    advantages = compute_advantages("lens", tensor([[1, 1, 0, 0]]), tensor([[0.5, 0.25, 0.4, 0.2]]))
    assert_values(advantages, expected)


def test_population_std():
    # GRPO, r = [1, 0, 0, 0]: population var = (9/16 + 3/16) / 4 = 3/16, std = sqrt(3)/4
    #   A = [3/4, -1/4, -1/4, -1/4] / (sqrt(3)/4) = [sqrt(3), -1/sqrt(3), ...] (up to eps).
    std_grpo = math.sqrt(3) / 4
    advantages = compute_advantages("grpo", tensor([[1, 0, 0, 0]]), tensor([[0.5] * 4]), std="population")
    assert_values(advantages, [[c / (std_grpo + EPS) for c in (0.75, -0.25, -0.25, -0.25)]])
    assert advantages[0, 0].item() == pytest.approx(math.sqrt(3), abs=1e-5)
    # LENS, the docstring's mixed group: population std = sqrt(296748 / 4) / 576.
    std_lens = math.sqrt(296748 / 4) / 576
    advantages = compute_advantages(
        "lens", tensor(EXAMPLE_REWARDS[:1]), tensor(EXAMPLE_CONFIDENCE[:1]), std="population"
    )
    assert_values(advantages, [[c / 576 / (std_lens + EPS) for c in (469, -203, -143, -123)]])


def test_alpha_eps_and_lambda_are_used():
    rewards, confidence = tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE)
    # alpha = 1: the negative group's A = (r^ - mean) = [-83, 13, 25, 45] / 576.
    advantages = compute_advantages("lens", rewards, confidence, alpha=1.0)
    assert_values(advantages[1:2], [[c / 576 for c in (-83, 13, 25, 45)]])
    # eps = 0.5: GRPO mixed group A = [3/4, -1/4, ...] / (1/2 + 1/2).
    advantages = compute_advantages("grpo", rewards, confidence, eps=0.5)
    assert_values(advantages[:1], [[0.75, -0.25, -0.25, -0.25]])
    advantages = compute_advantages("w_reinforce", rewards, confidence, wr_lambda=0.7)
    assert_values(advantages, [[0.7, -1, -1, -1], [-1, -1, -1, -1], [0.7, 0.7, 0.7, 0.7]])


# --------------------------------------------------------------------------------------------
# The reviewers' knobs, each at a value other than the paper's (the defaults are pinned above).


def test_wrong_scale_multiplies_the_one_over_g_factor():
    # wrong_scale s = 2 on the worked example: a wrong answer's r^ = -2 (1/4) p/(D - p); D is unchanged.
    # Mixed group, D = 2, weights [2/3, 1/4, 1/9]:  r^ = [1, -1/3, -1/8, -1/18] = [72, -24, -9, -4] / 72
    #   mean = 35/72 / 4 = 35/288;  r^ - mean = [288-35, -96-35, -36-35, -16-35] / 288 = [253, -131, -71, -51] / 288
    #   sum sq = (64009 + 17161 + 5041 + 2601) / 288^2 = 88812 / 288^2;  sample std = sqrt(88812 / 3) / 288
    # Negative group: r^ doubles, so A doubles: 2 [-83, 13, 25, 45] / 2304 = [-83, 13, 25, 45] / 1152.
    std = math.sqrt(88812 / 3) / 288
    mixed = [c / 288 / (std + EPS) for c in (253, -131, -71, -51)]
    negative = [c / 1152 for c in (-83, 13, 25, 45)]
    rewards, confidence = tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE)
    assert_values(compute_advantages("lens", rewards, confidence, wrong_scale=2.0), [mixed, negative, ZEROS])
    assert_values(compute_advantages("lens_mixed_only", rewards, confidence, wrong_scale=2.0), [mixed, ZEROS, ZEROS])
    assert_values(compute_advantages("lens_negative_only", rewards, confidence, wrong_scale=2.0),
                  [GRPO_MIXED, negative, ZEROS])
    # s = 0: no penalty, r^ = r: GRPO in mixed groups, A = 0 in negative ones.
    assert_values(compute_advantages("lens", rewards, confidence, wrong_scale=0.0), [GRPO_MIXED, ZEROS, ZEROS])
    with pytest.raises(ValueError, match="wrong_scale"):
        compute_advantages("lens", rewards, confidence, wrong_scale=-1.0)


def test_floor_factor_sets_the_floor_of_d():
    # floor_factor c = 3 on the worked example's mixed group: D_imp = 2 < 3 max p = 2.4, so D = 2.4.
    #   weights p/(D - p) = 0.8/1.6, 0.4/2.0, 0.2/2.2 = 1/2, 1/5, 1/11; times 1/4: r^ = [1, -1/8, -1/20, -1/44]
    #   = [440, -55, -22, -10] / 440;  mean = 353/440 / 4 = 353/1760
    #   r^ - mean = [1760-353, -220-353, -88-353, -40-353] / 1760 = [1407, -573, -441, -393] / 1760
    #   sum sq = (1979649 + 328329 + 194481 + 154449) / 1760^2 = 2656908 / 1760^2;  sample std = sqrt(2656908/3)/1760
    # Negative group r = 0, p = [0.5, 0.3, 0.5, 0.3]: D = 3 * 0.5 = 1.5; weights 0.5/1.0, 0.3/1.2 = 1/2, 1/4;
    #   r^ = -(1/4) [1/2, 1/4, 1/2, 1/4] = -[2, 1, 2, 1] / 16;  mean = -6/64 = -3/32
    #   r^ - mean = [-4+3, -2+3, -4+3, -2+3] / 32 = [-1, 1, -1, 1] / 32;  A = alpha (r^ - mean) = [-1, 1, -1, 1] / 128
    #   (with the paper's c = 2: D = 1, weights [1, 3/7, 1, 3/7]; a different rule)
    std = math.sqrt(2656908 / 3) / 1760
    rewards = tensor([[1, 0, 0, 0], [0, 0, 0, 0]])
    confidence = tensor([[0.5, 0.8, 0.4, 0.2], [0.5, 0.3, 0.5, 0.3]])
    advantages = compute_advantages("lens", rewards, confidence, floor_factor=3.0)
    mixed = [c / 1760 / (std + EPS) for c in (1407, -573, -441, -393)]
    assert_values(advantages, [mixed, [-1 / 128, 1 / 128, -1 / 128, 1 / 128]])
    # A floor that does not bind changes nothing: c = 1.5 gives 1.2 < D_imp = 2 in the mixed group.
    assert_values(compute_advantages("lens", rewards[:1], confidence[:1], floor_factor=1.5), [LENS_MIXED])
    for bad in (1.0, 0.5):
        with pytest.raises(ValueError, match="floor_factor must be > 1"):
            compute_advantages("lens", rewards, confidence, floor_factor=bad)


def test_negative_norm_standardize_divides_negative_groups_by_their_std():
    # negative_norm standardize on the worked example's negative group: r^ - mean = [-83, 13, 25, 45] / 576
    #   sum sq = (6889 + 169 + 625 + 2025) / 576^2 = 9708 / 576^2;  sample std = sqrt(9708 / 3) / 576 = sqrt(3236) / 576
    #   A = alpha (r^ - mean) / (std + eps) = 0.25 [-83, 13, 25, 45] / 576 / (sqrt(3236)/576 + eps)
    #     ~ [-0.364762, 0.057131, 0.109868, 0.197762]
    # Mixed and all-correct groups are untouched.
    std = math.sqrt(3236) / 576
    negative = [0.25 * c / 576 / (std + EPS) for c in (-83, 13, 25, 45)]
    assert_values(tensor([negative]), [[-0.364762, 0.057131, 0.109868, 0.197762]])
    rewards, confidence = tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE)
    advantages = compute_advantages("lens", rewards, confidence, negative_norm="standardize")
    assert_values(advantages, [LENS_MIXED, negative, ZEROS])
    advantages = compute_advantages("lens_negative_only", rewards, confidence, negative_norm="standardize")
    assert_values(advantages, [GRPO_MIXED, negative, ZEROS])
    # Equal confidences still give exactly 0 (nothing to standardise).
    equal = compute_advantages("lens", torch.zeros(1, 4, dtype=torch.float64), torch.full((1, 4), 0.3,
                               dtype=torch.float64), negative_norm="standardize")
    assert bool((equal == 0).all())
    with pytest.raises(ValueError, match="negative_norm"):
        compute_advantages("lens", rewards, confidence, negative_norm="zscore")


def test_confidences_exactly_zero_and_one():
    # Negative group, G = 2, p = [1, 0] -> clamped [1, 1e-12]; D = 2 max p = 2.
    #   p/(D-p) = [1/1, 1e-12/(2-1e-12)] = [1, ~5e-13]; r^ = -(1/2) [1, 5e-13] = [-1/2, ~-2.5e-13]
    #   mean = -1/4 (to 1e-13); A = 0.25 * [-1/4, 1/4] = [-0.0625, 0.0625]
    advantages = compute_advantages("lens", tensor([[0, 0]]), tensor([[1.0, 0.0]]))
    assert_values(advantages, [[-0.0625, 0.0625]])
    # Mixed group, G = 2, r = [1, 0], p = [0, 1] -> clamped [1e-12, 1]:
    #   Eq. 14: mean(r/p) = 1e12 / 2 -> D_imp = 2e-12;  floor 2 max p = 2;  D = 2
    #   r^ = [1, -(1/2) * 1/(2-1)] = [1, -1/2]; r^ - mean = [3/4, -3/4]
    #   sample std = sqrt(2 * 9/16 / 1) = 3/(2 sqrt 2); A = +-(3/4) / (3/(2 sqrt 2)) = +-1/sqrt(2)
    advantages = compute_advantages("lens", tensor([[1, 0]]), tensor([[0.0, 1.0]]))
    std = 3 / (2 * math.sqrt(2))
    assert_values(advantages, [[0.75 / (std + EPS), -0.75 / (std + EPS)]])


# --------------------------------------------------------------------------------------------
# One test per consequence of LENS's definition (Section 5 of the paper).


def test_most_confident_wrong_answer_gets_most_negative_advantage():
    # Negative group with distinct confidences: A is strictly decreasing in p.
    confidence = tensor([[0.05, 0.9, 0.3, 0.6, 0.01]])
    advantages = compute_advantages("lens", torch.zeros(1, 5, dtype=torch.float64), confidence)[0]
    assert advantages.argmin().item() == confidence[0].argmax().item() == 1
    order = confidence[0].argsort()
    assert bool((advantages[order].diff() < 0).all())


def test_mixed_group_sign_invariance_with_extreme_confidences():
    # Wrong answers far more confident than the correct one, and a correct one at p = 0: the 1/G
    # factor still keeps every wrong advantage < 0 and every correct one > 0.
    rewards = tensor([[1, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 1, 1, 1, 1]])
    confidence = tensor([[1e-9, 1.0, 1.0, 0.99, 0.5, 0.0, 1e-30, 0.0], [1.0, 1.0, 0.0, 0.7, 0.2, 0.0, 1.0, 1.0]])
    for algo in ("lens", "lens_mixed_only"):
        advantages = compute_advantages(algo, rewards, confidence)
        assert bool((advantages[rewards == 1] > 0).all()), algo
        assert bool((advantages[rewards == 0] < 0).all()), algo


def test_equal_confidences_in_negative_group_give_zero():
    for value in (0.0, 1e-12, 0.37, 1.0 / 3.0, 1.0):
        for group_size in (3, 7, 16):
            confidence = torch.full((2, group_size), value, dtype=torch.float64)
            for dtype in (torch.float64, torch.float32):
                advantages = compute_advantages(
                    "lens", torch.zeros(2, group_size, dtype=dtype), confidence.to(dtype)
                )
                # Exactly zero: group_stats counts nonzero advantages.
                assert bool((advantages == 0).all()), (value, group_size, dtype)


def test_no_nan_or_inf_for_confidences_in_unit_interval():
    grid = [0.0, 5e-324, 1e-300, 1e-45, 1e-13, 1e-12, 1e-6, 0.25, 0.5, 0.999999, 1.0]
    confidence = tensor([grid[i : i + 4] for i in range(len(grid) - 3)])  # (8, 4)
    patterns = [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1]]
    for dtype in (torch.float64, torch.float32):
        for pattern in patterns:
            rewards = tensor([pattern] * confidence.shape[0], dtype)
            for algo in ALGOS:
                advantages = compute_advantages(algo, rewards, confidence.to(dtype))
                assert bool(torch.isfinite(advantages).all()), (algo, pattern, dtype)


def test_underflowed_confidences_give_zero_in_negative_group():
    # exp(mean log p) of a long response underflows: 0 in float64 and float32 alike.
    logp = torch.full((4, 4096), -800.0, dtype=torch.float64)
    confidence = sequence_confidence(logp, torch.ones_like(logp)).reshape(1, 4)
    assert bool((confidence == 0).all())
    advantages = compute_advantages("lens", torch.zeros(1, 4, dtype=torch.float64), confidence)
    assert bool((advantages == 0).all())
    # Mixed with underflowed confidences: every p clamps to 1e-12, D = max(D_imp, 2e-12):
    #   mean(r/p) = 1e12 / 2 -> D_imp = 2e-12 = floor; wrong r^ = -(1/2) (1e-12 / 1e-12) = -1/2,
    #   same as test_confidences_exactly_zero_and_one: A = +-1/sqrt(2).
    advantages = compute_advantages("lens", tensor([[1, 0]]), torch.zeros(1, 2, dtype=torch.float64))
    std = 3 / (2 * math.sqrt(2))
    assert_values(advantages, [[0.75 / (std + EPS), -0.75 / (std + EPS)]])


def test_confidence_is_detached():
    confidence = tensor(EXAMPLE_CONFIDENCE).requires_grad_(True)
    rewards = tensor(EXAMPLE_REWARDS).requires_grad_(True)
    for algo in ALGOS:
        advantages = compute_advantages(algo, rewards, confidence)
        assert not advantages.requires_grad, algo


def test_calibrated_wrong_rewards_lie_in_minus_one_over_g_to_zero():
    # Section 5: a wrong answer's r^ is in [-1/G, 0); a correct one's stays 1.
    generator = torch.Generator().manual_seed(3)
    rewards = torch.bernoulli(torch.full((256, 8), 0.3, dtype=torch.float64), generator=generator)
    confidence = torch.rand(256, 8, dtype=torch.float64, generator=generator)
    confidence[::7, 0] = 0.0
    confidence[::5, 1] = 1.0
    calibrated = objective._lens_calibrated_rewards(rewards, confidence)
    wrong = calibrated[rewards == 0]
    assert bool((wrong >= -1 / 8).all()) and bool((wrong < 0).all())
    assert bool((calibrated[rewards == 1] == 1).all())


# --------------------------------------------------------------------------------------------
# API details and failure paths.


def test_advantage_fns_keys_equal_config_algorithms():
    from lens.config import ALGORITHMS

    assert tuple(ADVANTAGE_FNS) == tuple(ALGORITHMS)


def test_advantage_fns_callable_directly_with_their_own_parameters_only():
    from lens.algorithms import ALGORITHMS
    from lens.config import PARAMS

    rewards, confidence = tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE)
    for algo, advantage_fn in ADVANTAGE_FNS.items():
        own = ALGORITHMS[algo].params
        assert_values(advantage_fn(rewards, confidence), EXAMPLE_EXPECTED[algo])
        assert_values(advantage_fn(rewards, confidence, **{p: PARAMS[p].default for p in own}), EXAMPLE_EXPECTED[algo])
        for other in set(PARAMS) - set(own):
            with pytest.raises(TypeError):
                advantage_fn(rewards, confidence, **{other: PARAMS[other].default})


def test_unknown_parameter_raises_and_names_valid_ones():
    with pytest.raises(ValueError, match="unknown advantage parameter.*'lambda'.*wr_lambda"):
        compute_advantages("w_reinforce", tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE), **{"lambda": 0.2})


def test_unknown_algo_raises_and_names_valid_ones():
    with pytest.raises(ValueError) as excinfo:
        compute_advantages("GRPO", tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE))
    message = str(excinfo.value)
    assert "'GRPO'" in message
    for algo in ALGOS:
        assert f"'{algo}'" in message


@pytest.mark.parametrize("algo", ALGOS)
def test_bad_std_raises(algo):
    with pytest.raises(ValueError, match="std must be one of"):
        compute_advantages(algo, tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE), std="unbiased")


def test_bad_inputs_raise():
    rewards, confidence = tensor(EXAMPLE_REWARDS), tensor(EXAMPLE_CONFIDENCE)
    with pytest.raises(ValueError, match=r"rewards must be \(B, G\)"):
        compute_advantages("lens", rewards[0], confidence[0])
    with pytest.raises(ValueError, match="confidence must have the shape"):
        compute_advantages("lens", rewards, confidence[:, :3])
    with pytest.raises(ValueError, match="rewards must be 0 or 1"):
        compute_advantages("grpo", rewards * 0.5, confidence)
    nan_confidence = confidence.clone()
    nan_confidence[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        compute_advantages("lens", rewards, nan_confidence)


def test_output_dtype_and_shape_follow_inputs():
    confidence = tensor(EXAMPLE_CONFIDENCE)
    for dtype in (torch.float32, torch.float64):
        for algo in ALGOS:
            advantages = compute_advantages(algo, tensor(EXAMPLE_REWARDS, dtype), confidence.to(dtype))
            assert advantages.dtype == dtype and advantages.shape == (3, 4)
    # Integer/bool rewards take the confidence's float dtype.
    rewards_int = torch.tensor(EXAMPLE_REWARDS)
    advantages = compute_advantages("lens", rewards_int, confidence.float())
    assert advantages.dtype == torch.float32
    assert_values(advantages.double(), EXAMPLE_EXPECTED["lens"], atol=1e-6)
    advantages = compute_advantages("grpo", rewards_int.bool(), confidence)
    assert_values(advantages, EXAMPLE_EXPECTED["grpo"])


def test_empty_batch_and_single_sample_groups():
    for algo in ALGOS:
        empty = compute_advantages(algo, torch.zeros(0, 16), torch.zeros(0, 16))
        assert empty.shape == (0, 16)
    # G = 1: every group is all-wrong or all-correct; sample std must not divide by G - 1 = 0.
    rewards, confidence = tensor([[0], [1]]), tensor([[0.3], [0.0]])
    for algo in ("grpo", "lens", "lens_mixed_only", "lens_negative_only", "dr_grpo"):
        assert_values(compute_advantages(algo, rewards, confidence), [[0.0], [0.0]])
    assert_values(compute_advantages("nsr", rewards, confidence), [[-1.0], [0.0]])
    assert_values(compute_advantages("w_reinforce", rewards, confidence), [[-1.0], [0.1]])


def test_objective_imports_only_torch_stdlib_and_the_torch_free_table():
    source = Path(objective.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "lens":
            imported.update(f"lens.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    # lens.algorithms (register) and lens.config (the parameters' defaults): torch-free, so the table is too.
    assert imported <= {"__future__", "typing", "math", "torch", "lens.algorithms", "lens.config"}, imported


@pytest.mark.gpu
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(11)
    rewards = torch.bernoulli(torch.full((512, 16), 0.4), generator=generator)
    rewards[:100] = 0
    confidence = torch.rand(512, 16, generator=generator)
    for dtype in (torch.float32, torch.float64):
        for algo in ALGOS:
            on_cpu = compute_advantages(algo, rewards.to(dtype), confidence.to(dtype))
            on_gpu = compute_advantages(algo, rewards.to(dtype).cuda(), confidence.to(dtype).cuda())
            assert on_gpu.device.type == "cuda" and on_gpu.dtype == dtype
            torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-6, rtol=1e-5)
        stats = group_stats(rewards.cuda(), compute_advantages("lens", rewards.cuda(), confidence.cuda()))
        assert all(value.device.type == "cuda" for value in stats.values())


# --------------------------------------------------------------------------------------------
# sequence_confidence


def test_sequence_confidence_hand_values():
    ln = math.log
    logp = tensor([
        [ln(0.5), ln(0.125), -1e30, float("-inf")],  # mask [1,1,0,0]: sqrt(0.5 * 0.125) = 0.25
        [ln(0.9), float("nan"), float("nan"), 7.0],  # mask [1,0,0,0]: 0.9
        [float("-inf"), 3.0, -5.0, float("nan")],  # empty mask: 0
        [0.0, 0.0, 0.0, 0.0],  # all tokens certain: 1
        [ln(0.5), ln(0.5), ln(0.5), ln(0.5) * 5],  # geometric mean 0.5^(8/4) = 0.25
    ])
    mask = tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])
    confidence = sequence_confidence(logp, mask)
    assert confidence.shape == (5,) and confidence.dtype == torch.float64
    assert_values(confidence, [0.25, 0.9, 0.0, 1.0, 0.25], atol=1e-12)
    assert_values(sequence_confidence(logp, mask.bool()), [0.25, 0.9, 0.0, 1.0, 0.25], atol=1e-12)


def test_sequence_confidence_gradient_finite_under_masked_garbage():
    logp = tensor([[math.log(0.5), float("-inf"), float("nan")], [-1e30, -1e30, -1e30]]).requires_grad_(True)
    mask = tensor([[1, 0, 0], [0, 0, 0]])
    sequence_confidence(logp, mask).sum().backward()
    # d exp(mean)/d logp_t = exp(mean) / n = 0.5 on the one kept token; 0 elsewhere.
    assert_values(logp.grad, [[0.5, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)


def test_sequence_confidence_half_precision_and_bad_shapes():
    logp = torch.full((2, 3), math.log(0.5), dtype=torch.bfloat16)
    confidence = sequence_confidence(logp, torch.ones(2, 3))
    assert confidence.dtype == torch.float32
    assert_values(confidence, [0.5, 0.5], atol=1e-2)
    with pytest.raises(ValueError, match="equal shape"):
        sequence_confidence(torch.zeros(2, 3), torch.ones(2, 4))
    with pytest.raises(ValueError, match="equal shape"):
        sequence_confidence(torch.zeros(3), torch.ones(3))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_sequence_confidence_masked_positions_do_not_matter(data):
    n, t = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    logp_values = data.draw(st.lists(st.floats(-50, 0), min_size=n * t, max_size=n * t))
    mask_values = data.draw(st.lists(st.sampled_from([0, 1]), min_size=n * t, max_size=n * t))
    garbage = data.draw(st.sampled_from([float("-inf"), float("nan"), -1e30, 1e30, 5.0]))
    logp = tensor(logp_values).reshape(n, t)
    mask = tensor(mask_values).reshape(n, t)
    polluted = torch.where(mask == 1, logp, torch.full_like(logp, garbage))
    torch.testing.assert_close(sequence_confidence(polluted, mask), sequence_confidence(logp, mask))
    # Against a row-by-row computation.
    for row in range(n):
        rows = slice(row * t, (row + 1) * t)
        kept = [v for v, m in zip(logp_values[rows], mask_values[rows], strict=True) if m]
        expected = math.exp(math.fsum(kept) / len(kept)) if kept else 0.0
        assert sequence_confidence(logp, mask)[row].item() == pytest.approx(expected, rel=1e-12, abs=1e-300)


# --------------------------------------------------------------------------------------------
# group_stats


def test_group_stats_hand_values():
    rewards = tensor(EXAMPLE_REWARDS)
    stats = group_stats(rewards, compute_advantages("lens", rewards, tensor(EXAMPLE_CONFIDENCE)))
    assert set(stats) == {
        "all_wrong_frac", "all_correct_frac", "mixed_frac", "nonzero_adv_frac",
        "abs_adv_mixed", "abs_adv_all_wrong", "abs_adv_all_correct",
    }
    # One group of each type out of 3; 8 of 12 samples nonzero (the all-correct group is 0).
    # |A| mixed = (469 + 203 + 143 + 123) / 576 / (std + eps) / 4 = 938 / 2304 / (std + eps)
    # |A| all wrong = (83 + 13 + 25 + 45) / 2304 / 4 = 166 / 9216
    expected = {
        "all_wrong_frac": 1 / 3, "all_correct_frac": 1 / 3, "mixed_frac": 1 / 3, "nonzero_adv_frac": 8 / 12,
        "abs_adv_mixed": 938 / 2304 / (LENS_STD + EPS), "abs_adv_all_wrong": 166 / 9216, "abs_adv_all_correct": 0.0,
    }
    for key, value in expected.items():
        assert stats[key].ndim == 0 and stats[key].dtype == torch.float64
        assert stats[key].item() == pytest.approx(value, abs=1e-9), key
    # W-REINFORCE gives all-correct groups |A| = 0.1; GRPO's mixed group mean |A| = (3/4 + 3/4)/4/(1/2).
    stats = group_stats(rewards, compute_advantages("w_reinforce", rewards, tensor(EXAMPLE_CONFIDENCE)))
    assert stats["abs_adv_all_correct"].item() == pytest.approx(0.1)
    assert stats["nonzero_adv_frac"].item() == 1.0
    stats = group_stats(rewards, compute_advantages("grpo", rewards, tensor(EXAMPLE_CONFIDENCE)))
    assert stats["abs_adv_mixed"].item() == pytest.approx(1.5 / 4 / (0.5 + EPS), abs=1e-9)
    assert stats["nonzero_adv_frac"].item() == pytest.approx(4 / 12)


def test_group_stats_missing_group_types_give_zero():
    # Two all-wrong groups of G = 2, no mixed or all-correct group: their means are 0, not NaN.
    rewards = tensor([[0, 0], [0, 0]])
    # A tiny advantage still counts as nonzero.
    advantages = tensor([[-1.0, 1e-9], [0.0, 0.0]])
    stats = group_stats(rewards, advantages)
    assert stats["all_wrong_frac"].item() == 1.0 and stats["mixed_frac"].item() == 0.0
    assert stats["abs_adv_mixed"].item() == 0.0 and stats["abs_adv_all_correct"].item() == 0.0
    assert stats["abs_adv_all_wrong"].item() == pytest.approx(0.25, abs=1e-8)  # (1 + 1e-9 + 0 + 0) / 4
    assert stats["nonzero_adv_frac"].item() == pytest.approx(0.5)
    empty = group_stats(torch.zeros(0, 4), torch.zeros(0, 4))
    assert all(torch.isfinite(value) and value.item() == 0.0 for value in empty.values())
    with pytest.raises(ValueError, match="equal shape"):
        group_stats(rewards, advantages[:, :1])


# --------------------------------------------------------------------------------------------
# Hypothesis properties over rewards in {0, 1} and confidences in [0, 1] (0 and 1 included).

CONFIDENCE_VALUES = st.one_of(
    st.sampled_from([0.0, 1.0, 5e-324, 1e-300, 1e-12, 0.5]),
    st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
)


@st.composite
def batches(draw, min_group=1, max_group=8, max_groups=6):
    """(rewards, confidence), float64 (B, G)."""
    n_groups = draw(st.integers(1, max_groups))
    group_size = draw(st.integers(min_group, max_group))
    size = n_groups * group_size
    rewards = draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=size, max_size=size))
    confidence = draw(st.lists(CONFIDENCE_VALUES, min_size=size, max_size=size))
    return tensor(rewards).reshape(n_groups, group_size), tensor(confidence).reshape(n_groups, group_size)


def kinds(rewards):
    n_correct = rewards.sum(-1)
    return n_correct == 0, n_correct == rewards.shape[-1], (n_correct > 0) & (n_correct < rewards.shape[-1])


PROPERTY_SETTINGS = settings(max_examples=80, deadline=None)


@PROPERTY_SETTINGS
@given(batch=batches(), std=st.sampled_from(["sample", "population"]))
def test_property_always_finite(batch, std):
    rewards, confidence = batch
    for dtype in (torch.float64, torch.float32):
        for algo in ALGOS:
            advantages = compute_advantages(algo, rewards.to(dtype), confidence.to(dtype), std=std)
            assert bool(torch.isfinite(advantages).all()), (algo, dtype)


@PROPERTY_SETTINGS
@given(batch=batches(min_group=2))
def test_property_sign_invariance_in_mixed_groups(batch):
    rewards, confidence = batch
    _, _, mixed = kinds(rewards)
    correct = (rewards == 1) & mixed[:, None]
    wrong = (rewards == 0) & mixed[:, None]
    for dtype in (torch.float64, torch.float32):
        for algo in ("grpo", "lens", "lens_mixed_only", "lens_negative_only", "dr_grpo", "ngrpo", "uniform_negative",
                     "reinforce_rej"):
            advantages = compute_advantages(algo, rewards.to(dtype), confidence.to(dtype))
            assert bool((advantages[correct] > 0).all()), (algo, dtype)
            assert bool((advantages[wrong] < 0).all()), (algo, dtype)


@PROPERTY_SETTINGS
@given(batch=batches(), std=st.sampled_from(["sample", "population"]))
def test_property_all_correct_groups_give_zero(batch, std):
    rewards, confidence = batch
    rewards[0] = 1.0  # at least one all-correct group
    _, all_correct, _ = kinds(rewards)
    for algo in ("grpo", "lens", "lens_mixed_only", "lens_negative_only", "dr_grpo", "nsr", "ngrpo",
                 "uniform_negative", "reinforce_rej", "grpo_shuffled"):
        advantages = compute_advantages(algo, rewards, confidence, std=std)
        assert bool((advantages[all_correct] == 0).all()), algo


@PROPERTY_SETTINGS
@given(batch=batches(), data=st.data())
def test_property_confidence_free_rules_ignore_confidence(batch, data):
    rewards, confidence = batch
    other = data.draw(st.lists(CONFIDENCE_VALUES, min_size=rewards.numel(), max_size=rewards.numel()))
    other_confidence = tensor(other).reshape(rewards.shape)
    from lens.algorithms import ALGORITHMS

    for algo in [a for a, spec in ALGORITHMS.items() if not spec.reads_confidence]:
        assert torch.equal(
            compute_advantages(algo, rewards, confidence), compute_advantages(algo, rewards, other_confidence)
        ), algo


@PROPERTY_SETTINGS
@given(batch=batches())
def test_property_lens_negative_groups_sum_to_zero_and_order_by_confidence(batch):
    rewards, confidence = batch
    rewards[0] = 0.0  # at least one negative group
    all_wrong, _, _ = kinds(rewards)
    for algo in ("lens", "lens_negative_only"):
        advantages = compute_advantages(algo, rewards, confidence)[all_wrong]  # (n_negative, G)
        torch.testing.assert_close(advantages.sum(-1), torch.zeros(advantages.shape[0], dtype=torch.float64),
                                   atol=1e-12, rtol=0)
        # More confident wrong answer -> advantage no larger (clamped confidences).
        p = confidence[all_wrong].clamp(1e-12, 1.0)
        more_confident = p[:, :, None] > p[:, None, :]
        no_larger = advantages[:, :, None] <= advantages[:, None, :] + 1e-15
        assert bool((no_larger | ~more_confident).all())
    assert bool((compute_advantages("lens_mixed_only", rewards, confidence)[all_wrong] == 0).all())


@PROPERTY_SETTINGS
@given(batch=batches(), alpha=st.floats(0.0, 10.0))
def test_property_alpha_scales_negative_groups_linearly(batch, alpha):
    rewards, confidence = batch
    all_wrong, _, _ = kinds(rewards)
    for algo in ("lens", "lens_negative_only"):
        base = compute_advantages(algo, rewards, confidence, alpha=0.25)
        scaled = compute_advantages(algo, rewards, confidence, alpha=alpha)
        torch.testing.assert_close(scaled[all_wrong], base[all_wrong] * (alpha / 0.25), atol=1e-12, rtol=1e-12)
        # Mixed and all-correct groups do not depend on alpha.
        assert torch.equal(scaled[~all_wrong], base[~all_wrong])


@PROPERTY_SETTINGS
@given(batch=batches(), std=st.sampled_from(["sample", "population"]))
def test_property_float32_matches_float64(batch, std):
    rewards, confidence = batch
    confidence32 = confidence.float()
    for algo in ALGOS:
        single = compute_advantages(algo, rewards.float(), confidence32, std=std)
        double = compute_advantages(algo, rewards, confidence32.double(), std=std)
        torch.testing.assert_close(single.double(), double, atol=2e-6, rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Independent reference: a per-group loop over Python floats, written from the paper's Section 5.


def reference_advantages(algo, rewards, confidence, alpha=0.25, eps=1e-6, std="sample", wr_lambda=0.1,
                         wrong_scale=1.0, floor_factor=2.0, negative_norm="demean"):
    if algo == "grpo_shuffled":
        algo = "grpo"  # the same values per group, permuted: the test compares sorted rows
    if algo == "grpo_dynamic":
        algo = "grpo"  # GRPO's rule; dynamic sampling chooses the groups (lens.dynamic, tests/test_dynamic.py)
    out = []
    for r, p_raw in zip(rewards, confidence, strict=True):
        g = len(r)
        k = sum(r)

        def standardise(values, g=g):
            mean = math.fsum(values) / g
            dev = [v - mean for v in values]
            denom = (g - 1 if std == "sample" else g) or 1
            sd = math.sqrt(math.fsum(d * d for d in dev) / denom)
            return [d / (sd + eps) for d in dev]

        if algo == "nsr":
            out.append([ri - 1.0 for ri in r])
            continue
        if algo == "w_reinforce":
            out.append([wr_lambda if ri == 1 else -1.0 for ri in r])
            continue
        if algo == "dr_grpo":
            mean = math.fsum(r) / g
            out.append([ri - mean for ri in r])
            continue
        if algo == "ngrpo":  # a virtual reward-1 sample joins the mean and std, gets no advantage
            augmented = [*r, 1.0]
            mean = math.fsum(augmented) / (g + 1)
            denom = g if std == "sample" else g + 1
            sd = math.sqrt(math.fsum((v - mean) ** 2 for v in augmented) / denom)
            out.append([(ri - mean) / (sd + eps) for ri in r])
            continue
        if algo == "reinforce_rej":
            out.append([2.0 * ri - 1.0 for ri in r] if 0 < k < g else [0.0] * g)
            continue
        if algo == "uniform_negative":
            r_hat = [ri - (1 - ri) / g for ri in r]
            out.append(standardise(r_hat) if 0 < k < g else [alpha * v if k == 0 else 0.0 for v in r_hat])
            continue
        if k == g or (k == 0 and algo in ("grpo", "lens_mixed_only")):
            out.append([0.0] * g)
            continue
        if 0 < k < g and algo in ("grpo", "lens_negative_only"):
            out.append(standardise(r))
            continue
        p = [min(max(pi, 1e-12), 1.0) for pi in p_raw]
        if k > 0:
            d_imp = 1.0 / (math.fsum(ri / pi for ri, pi in zip(r, p, strict=True)) / g)
            d = max(d_imp, floor_factor * max(p))
        else:
            d = floor_factor * max(p)
        r_hat = [ri - (1 - ri) * (wrong_scale / g) * pi / (d - pi) for ri, pi in zip(r, p, strict=True)]
        if k == 0 and negative_norm == "standardize":
            out.append([alpha * v for v in standardise(r_hat)])
        elif k == 0:
            mean = math.fsum(r_hat) / g
            out.append([alpha * (v - mean) for v in r_hat])
        else:
            out.append(standardise(r_hat))
    return out


def random_batch(seed, n_groups, group_size):
    generator = torch.Generator().manual_seed(seed)
    # Per-group success rate spread over [0, 1] so every group type occurs.
    success = torch.rand(n_groups, 1, dtype=torch.float64, generator=generator) ** 2
    success[: n_groups // 4] = 0.0
    success[n_groups // 4 : n_groups // 3] = 1.0
    rewards = torch.bernoulli(success.expand(n_groups, group_size), generator=generator)
    # Confidences as exp(mean logp) of real rollouts: mostly in (0.05, 1), some exactly 0/1, some tiny.
    confidence = torch.exp(-3 * torch.rand(n_groups, group_size, dtype=torch.float64, generator=generator))
    pick = torch.rand(n_groups, group_size, generator=generator)
    confidence[pick < 0.05] = 0.0
    confidence[(pick >= 0.05) & (pick < 0.1)] = 1.0
    confidence[(pick >= 0.1) & (pick < 0.15)] = 1e-20
    return rewards, confidence


@pytest.mark.parametrize("group_size", [2, 4, 16])
@pytest.mark.parametrize("algo", ALGOS)
def test_matches_independent_reference(algo, group_size):
    rewards, confidence = random_batch(group_size, 96, group_size)
    for params in ({}, {"std": "population", "alpha": 0.7, "eps": 1e-3, "wr_lambda": 0.3},
                   {"wrong_scale": 1.5, "floor_factor": 3.0, "negative_norm": "standardize"}):
        expected = tensor(reference_advantages(algo, rewards.tolist(), confidence.tolist(), **params))
        for dtype in (torch.float64, torch.float32):
            actual = compute_advantages(algo, rewards.to(dtype), confidence.to(dtype), **params)
            if algo == "grpo_shuffled":
                actual, expected = actual.sort(-1).values, expected.sort(-1).values
            torch.testing.assert_close(actual.double(), expected, atol=1e-5, rtol=0)
