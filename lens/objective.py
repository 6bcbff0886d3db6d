"""Advantages of GRPO, LENS and the baseline rules, for B prompts x G samples (pure torch).

Used by lens.trainer; exercised by `python -m pytest tests/test_objective.py` and timed by
`python benchmarks/bench_objective.py`. Source: Feng et al., "Don't Waste Mistakes", arXiv:2510.08696,
Section 5; where the paper is silent, the choices below are the defaults of lens.config.AlgorithmConfig.

GRPO (Eq. 2-3): with rewards r_i in {0, 1} for the G responses of one prompt,

    A_i = (r_i - mean_j r_j) / (std_j r_j + eps)

so all-correct and all-wrong groups get A = 0 and give no gradient.

LENS departs from GRPO in five ways, each one labelled step in `_lens_calibrated_rewards` and
`_lens_advantages` (`# LENS (...)`):

1. Confidence p_i = exp(mean token log-prob of o_i under the rollout policy) is a detached scalar
   (Section 5): nothing is differentiated through it. It is clamped into [1e-12, 1], so confidences
   that underflowed to 0 on long responses stay finite.
2. Importance-sampling normaliser (Eq. 14): D_imp = 1 / ((1/G) sum_i r_i / p_i), defined only
   when the group has a correct response.
3. Floor: D = max(D_imp, c max_i p_i), or D = c max_i p_i in an all-wrong group, with the
   paper's c = 2 (`floor_factor`), so that p_i / D <= 1/2 and D - p_i >= p_i > 0. Any c > 1 keeps
   D - p_i >= (c - 1) p_i > 0 and bounds the weight p_i / (D - p_i) by 1 / (c - 1).
4. Calibrated reward (Section 5, the MLE view of Eq. 11-13):
   r^_i = r_i - (1 - r_i) s (1/G) p_i / (D - p_i), with the paper's s = 1 (`wrong_scale`). A wrong
   answer's r^ lies in [-1/G, 0): the more confident the mistake, the lower its reward; the 1/G
   keeps every wrong answer below the mean of a mixed group, so its advantage stays negative.
5. Normalisation by group type: mixed groups standardise r^ as GRPO standardises r; all-wrong
   ("negative") groups are de-meaned only and scaled, A_i = alpha (r^_i - mean r^), alpha = 0.25
   (`negative_norm: demean`; `standardize` divides by the group std + eps as well, then scales by
   alpha); all-correct groups keep A = 0.

Reviewers' knobs (lens.config.AlgorithmConfig, defaults = the paper's rule): `alpha` (step 5),
`wrong_scale` (the multiplier s of step 4's 1/G), `floor_factor` (step 3's c), `negative_norm`
(step 5's negative-group rule).

Ablations: `lens_mixed_only` applies 2-5 in mixed groups only (negative groups keep A = 0);
`lens_negative_only` keeps GRPO in mixed groups and applies the LENS rule to negative groups.
Baselines: `dr_grpo` A_i = r_i - mean r (no std division; its constant-length loss normaliser is
the trainer's job, not this module's), `nsr` A_i = r_i - 1, `w_reinforce` A_i = lambda (0.1) for a
correct answer and -1 for a wrong one. Other answers to all-wrong groups: `ngrpo` (a virtual
maximum-reward sample joins each group's mean and std: A = -1/sqrt(G+1) in an all-wrong group),
`uniform_negative` (this suite's baseline, not the paper's Appendix C: every wrong answer's reward
is -1/G, so A = -alpha/G in an all-wrong group and GRPO in mixed ones), `reinforce_rej` (+-1
rewards, all-wrong and all-correct groups filtered out).
Control: `grpo_shuffled` permutes GRPO's advantages at random within each group (the same
magnitudes, no information about which answer was right), seeded, so the same inputs and seed
give the same output.
Each function is declared an algorithm id by its `register` line (lens.algorithms).

Worked example (G = 4, alpha = 0.25, eps = 1e-6, sample std; tests/test_objective.py pins it):

    mixed group   r = [1, 0, 0, 0],  p = [0.5, 0.8, 0.4, 0.2]
      Eq. 14    D_imp = 1 / ((1/4) (1/0.5)) = 2;  floor 2 max p = 1.6;  D = 2
      r^        = [1, -(1/4)(0.8/1.2), -(1/4)(0.4/1.6), -(1/4)(0.2/1.8)] = [1, -1/6, -1/16, -1/36]
      r^ - mean = [469, -203, -143, -123] / 576;  sample std = sqrt(296748 / 3) / 576 = 0.546023
      A_lens    = [ 1.491210, -0.645449, -0.454676, -0.391085]
      A_grpo    = [1.5, -0.5, -0.5, -0.5] (std 0.5, up to eps)
    negative group  r = [0, 0, 0, 0],  p = [0.5, 0.25, 0.2, 0.1]
      D         = 2 max p = 1;  p / (D - p) = [1, 1/3, 1/4, 1/9]
      r^        = [-1/4, -1/12, -1/16, -1/36];  r^ - mean = [-83, 13, 25, 45] / 576
      A_lens    = 0.25 (r^ - mean) = [-0.036024, 0.005642, 0.010851, 0.019531]   (sums to 0)
      A_grpo    = [0, 0, 0, 0]
"""

from __future__ import annotations

import typing
from typing import Callable

import torch
from torch import Tensor

from lens import algorithms
from lens.algorithms import register
from lens.config import PARAMS

# Lower clamp of the confidence (ours; the paper has none): a geometric mean over thousands of
# tokens can underflow to 0, and p = 0 would divide by zero in Eq. 14.
MIN_CONFIDENCE = 1e-12
STD_KINDS = ("sample", "population")
NEGATIVE_NORMS = typing.get_args(PARAMS["negative_norm"].type)  # ("demean", "standardize")


def sequence_confidence(logp: Tensor, mask: Tensor) -> Tensor:
    """Length-normalised confidence p = exp(mean of the response's token log-probs), shape (N,).

    `logp` and `mask` are (N, T): per-token log-probs of the response tokens and a 0/1 (or bool)
    mask of the tokens that count (response tokens incl. a sampled EOS; not padding or prompt).
    Positions with mask 0 are ignored whatever they hold (-inf, NaN); a row with an empty mask
    gives 0. Half-precision inputs are averaged in float32 and returned as float32.
    """
    if logp.ndim != 2 or logp.shape != mask.shape:
        raise ValueError(
            f"logp and mask must be (N, T) of equal shape, got {tuple(logp.shape)} and {tuple(mask.shape)}"
        )
    if not logp.is_floating_point():
        raise ValueError(f"logp must be a floating tensor, got {logp.dtype}")
    work_dtype = torch.promote_types(logp.dtype, torch.float32)
    keep = mask != 0  # (N, T)
    # where, not multiply: -inf * 0 is NaN, and where also keeps NaN out of the gradient.
    kept_logp = torch.where(keep, logp.to(work_dtype), torch.zeros((), dtype=work_dtype, device=logp.device))
    n_tokens = keep.sum(dim=-1)  # (N,)
    mean_logp = kept_logp.sum(dim=-1) / n_tokens.clamp(min=1).to(work_dtype)  # (N,)
    return torch.where(n_tokens > 0, mean_logp.exp(), torch.zeros_like(mean_logp))  # (N,)


# --------------------------------------------------------------------------------------------
# Shared pieces


def _prepare(rewards: Tensor, confidence: Tensor, std: str) -> tuple[Tensor, Tensor]:
    """Validate the inputs and return (rewards, confidence) as detached tensors of one float dtype."""
    if std not in STD_KINDS:
        raise ValueError(f"std must be one of {list(STD_KINDS)}, got {std!r}")
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be (B, G), got shape {tuple(rewards.shape)}")
    if confidence.shape != rewards.shape:
        raise ValueError(
            f"confidence must have the shape of rewards {tuple(rewards.shape)}, got {tuple(confidence.shape)}"
        )
    if rewards.device != confidence.device:
        raise ValueError(f"rewards on {rewards.device} but confidence on {confidence.device}")
    dtype = torch.promote_types(rewards.dtype, confidence.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    # float16/bfloat16 cannot hold 1e-12 (p would clamp to 0): compute in float32 at least.
    dtype = torch.promote_types(dtype, torch.float32)
    rewards_f = rewards.detach().to(dtype)  # (B, G)
    # LENS (Section 5): the confidence is a detached scalar; nothing is differentiated through it.
    confidence_f = confidence.detach().to(dtype)  # (B, G)
    if not bool(((rewards_f == 0) | (rewards_f == 1)).all()):
        raise ValueError("rewards must be 0 or 1 (verifier outcome)")
    if bool(torch.isnan(confidence_f).any()):
        raise ValueError("confidence contains NaN")
    return rewards_f, confidence_f


def _out_dtype(rewards: Tensor, confidence: Tensor) -> torch.dtype:
    dtype = torch.promote_types(rewards.dtype, confidence.dtype)
    return dtype if dtype.is_floating_point else torch.get_default_dtype()


def _group_kind(rewards: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean (B, 1) masks: all wrong, all correct, mixed (1 <= k <= G-1 correct)."""
    n_correct = rewards.sum(dim=-1, keepdim=True)  # (B, 1)
    all_wrong = n_correct == 0  # (B, 1)
    all_correct = n_correct == rewards.shape[-1]  # (B, 1)
    mixed = ~(all_wrong | all_correct)  # (B, 1)
    return all_wrong, all_correct, mixed


def _centered(values: Tensor) -> Tensor:
    """values - group mean, exactly 0 in a group of equal values (a float mean may miss by an ulp)."""
    centered = values - values.mean(dim=-1, keepdim=True)  # (B, G)
    constant = values.amax(dim=-1, keepdim=True) == values.amin(dim=-1, keepdim=True)  # (B, 1)
    return torch.where(constant, torch.zeros_like(centered), centered)  # (B, G)


def _divide_by_std(centered: Tensor, eps: float, std: str) -> Tensor:
    """centered / (group std + eps) for de-meaned values; std is Bessel-corrected for std="sample"."""
    group_size = centered.shape[-1]
    # max(G - 1, 1): a G = 1 group has no spread and centered = 0; never divide by zero.
    dof = max(group_size - 1, 1) if std == "sample" else group_size
    group_std = (centered.square().sum(dim=-1, keepdim=True) / dof).sqrt()  # (B, 1)
    return centered / (group_std + eps)  # (B, G)


def _grpo_advantages(rewards: Tensor, eps: float, std: str) -> Tensor:
    # GRPO (Eq. 2): all-correct and all-wrong groups have centered r = 0, hence A = 0.
    return _divide_by_std(_centered(rewards), eps, std)  # (B, G)


def _check_lens_knobs(wrong_scale: float, floor_factor: float, negative_norm: str = "demean") -> None:
    if not floor_factor > 1:
        raise ValueError(f"floor_factor must be > 1 (D >= floor_factor max p keeps D - p > 0), got {floor_factor!r}")
    if not wrong_scale >= 0:
        raise ValueError(f"wrong_scale must be >= 0, got {wrong_scale!r}")
    if negative_norm not in NEGATIVE_NORMS:
        raise ValueError(f"negative_norm must be one of {list(NEGATIVE_NORMS)}, got {negative_norm!r}")


def _lens_calibrated_rewards(
    rewards: Tensor, confidence: Tensor, wrong_scale: float = 1.0, floor_factor: float = 2.0
) -> Tensor:
    """The calibrated reward r^ of LENS (Section 5 of the paper) for every sample, shape (B, G)."""
    group_size = rewards.shape[-1]
    # LENS (Section 5): clamp so an underflowed confidence (p = 0) cannot divide by zero.
    p = confidence.clamp(MIN_CONFIDENCE, 1.0)  # (B, G)
    any_correct = rewards.sum(dim=-1, keepdim=True) > 0  # (B, 1)
    # LENS (Eq. 14): D_imp = 1 / mean_i(r_i / p_i). In all-wrong groups the mean is 0: substitute 1
    # there so the branch torch.where discards stays finite.
    inv_weight_mean = (rewards / p).mean(dim=-1, keepdim=True)  # (B, 1)
    d_imp = 1.0 / torch.where(any_correct, inv_weight_mean, torch.ones_like(inv_weight_mean))  # (B, 1)
    # LENS (floor, floor_factor c = 2): D >= c max p keeps p / D <= 1/c, hence D - p >= (c - 1) p > 0.
    d_floor = floor_factor * p.amax(dim=-1, keepdim=True)  # (B, 1)
    difficulty = torch.where(any_correct, torch.maximum(d_imp, d_floor), d_floor)  # (B, 1)
    # LENS (calibrated reward, wrong_scale s = 1 times 1/G): a wrong answer's reward drops to
    # -s (1/G) p / (D - p), in [-1/G, 0) at the paper's s = 1, c = 2.
    penalty = (wrong_scale / group_size) * (p / (difficulty - p))  # (B, G)
    return rewards - (1.0 - rewards) * penalty  # (B, G)


def _lens_advantages(
    rewards: Tensor, confidence: Tensor, *, alpha: float, eps: float, std: str, wrong_scale: float,
    floor_factor: float, negative_norm: str, mixed_rule: str, negative_rule: str
) -> Tensor:
    """Per-group-type combination shared by lens, lens_mixed_only and lens_negative_only."""
    _check_lens_knobs(wrong_scale, floor_factor, negative_norm)
    all_wrong, _all_correct, mixed = _group_kind(rewards)  # (B, 1) each
    calibrated = _lens_calibrated_rewards(rewards, confidence, wrong_scale, floor_factor)  # (B, G)
    calibrated_centered = _centered(calibrated)  # (B, G)
    zeros = torch.zeros_like(rewards)  # (B, G)
    if mixed_rule == "lens":
        # LENS (mixed groups): standardise r^ exactly as GRPO standardises r.
        mixed_adv = _divide_by_std(calibrated_centered, eps, std)  # (B, G)
    else:
        mixed_adv = _grpo_advantages(rewards, eps, std)  # (B, G)
    if negative_rule == "lens" and negative_norm == "demean":
        # LENS (negative groups, negative_norm demean): de-mean only, scaled by alpha (no std division).
        negative_adv = alpha * calibrated_centered  # (B, G)
    elif negative_rule == "lens":
        # negative_norm standardize: also divide by the group's std + eps (near-equal confidences
        # then give O(alpha) advantages instead of near-zero ones), then scale by alpha.
        negative_adv = alpha * _divide_by_std(calibrated_centered, eps, std)  # (B, G)
    else:
        negative_adv = zeros
    # All-correct groups: A = 0 (r^ = r = 1 for every sample, nothing to compare).
    return torch.where(mixed, mixed_adv, torch.where(all_wrong, negative_adv, zeros))  # (B, G)


# --------------------------------------------------------------------------------------------
# One function per algorithm id, declared on it with `register` (lens.algorithms reads these declarations
# without importing torch: literal arguments only). Each takes (rewards, confidence) and, as keywords, its own
# parameters only, with lens.config.AlgorithmConfig's defaults. The order of the functions is the legend's;
# colours are Okabe-Ito first (readable with colour-vision deficiency and in greyscale), then Paul Tol's muted.


def lens_rewards(
    rewards: Tensor, confidence: Tensor, *, wrong_scale: float = 1.0, floor_factor: float = 2.0
) -> Tensor:
    """LENS's calibrated reward r^ (steps 1-4 of the module docstring), (B, G): what each answer is
    worth before the group normalisation; a wrong answer's lies in [-wrong_scale/G, 0)."""
    _check_lens_knobs(wrong_scale, floor_factor)
    rewards_f, confidence_f = _prepare(rewards, confidence, "sample")
    calibrated = _lens_calibrated_rewards(rewards_f, confidence_f, wrong_scale, floor_factor)  # (B, G)
    return calibrated.to(_out_dtype(rewards, confidence))


@register("grpo", label="GRPO", color="#0072B2", marker="o", tables={"tab_ablation": 0},
          paper="Shao et al. 2024; LENS paper Eq. 2-3")
def grpo_advantages(rewards: Tensor, confidence: Tensor, *, eps: float = 1e-6, std: str = "sample") -> Tensor:
    """GRPO (Eq. 2): (r - mean r) / (std r + eps) per group; ignores the confidence."""
    rewards_f, _ = _prepare(rewards, confidence, std)
    return _grpo_advantages(rewards_f, eps, std).to(_out_dtype(rewards, confidence))


@register("lens", label="LENS", color="#D55E00", marker="s", reads_confidence=True, tables={"tab_ablation": 3},
          paper="Feng et al. 2025 (arXiv:2510.08696), Section 5, Eq. 11-14")
def lens_advantages(
    rewards: Tensor, confidence: Tensor, *, alpha: float = 0.25, eps: float = 1e-6, std: str = "sample",
    wrong_scale: float = 1.0, floor_factor: float = 2.0, negative_norm: str = "demean"
) -> Tensor:
    """LENS (Section 5): calibrated rewards, standardised in mixed groups, alpha-de-meaned in negative ones.

    The defaults are the paper's rule; `wrong_scale`, `floor_factor` and `negative_norm` are the
    reviewers' knobs (module docstring, steps 3-5). ValueError if floor_factor <= 1, wrong_scale < 0
    or negative_norm is not "demean" or "standardize".
    """
    rewards_f, confidence_f = _prepare(rewards, confidence, std)
    advantages = _lens_advantages(
        rewards_f, confidence_f, alpha=alpha, eps=eps, std=std, wrong_scale=wrong_scale, floor_factor=floor_factor,
        negative_norm=negative_norm, mixed_rule="lens", negative_rule="lens"
    )
    return advantages.to(_out_dtype(rewards, confidence))


@register("lens_mixed_only", label="LENS (mixed only)", color="#E69F00", marker="^", reads_confidence=True,
          tables={"tab_ablation": 1}, paper="LENS paper Table 2")
def lens_mixed_only_advantages(
    rewards: Tensor, confidence: Tensor, *, eps: float = 1e-6, std: str = "sample", wrong_scale: float = 1.0,
    floor_factor: float = 2.0
) -> Tensor:
    """Ablation (Table 2): LENS calibration in mixed groups; negative groups keep A = 0 (alpha unused)."""
    rewards_f, confidence_f = _prepare(rewards, confidence, std)
    advantages = _lens_advantages(
        rewards_f, confidence_f, alpha=0.0, eps=eps, std=std, wrong_scale=wrong_scale, floor_factor=floor_factor,
        negative_norm="demean", mixed_rule="lens", negative_rule="zero"
    )
    return advantages.to(_out_dtype(rewards, confidence))


@register("lens_negative_only", label="LENS (negative only)", color="#CC79A7", marker="v", reads_confidence=True,
          tables={"tab_ablation": 2}, paper="LENS paper Table 2")
def lens_negative_only_advantages(
    rewards: Tensor, confidence: Tensor, *, alpha: float = 0.25, eps: float = 1e-6, std: str = "sample",
    wrong_scale: float = 1.0, floor_factor: float = 2.0, negative_norm: str = "demean"
) -> Tensor:
    """Ablation (Table 2): GRPO in mixed groups; LENS rule in negative groups."""
    rewards_f, confidence_f = _prepare(rewards, confidence, std)
    advantages = _lens_advantages(
        rewards_f, confidence_f, alpha=alpha, eps=eps, std=std, wrong_scale=wrong_scale, floor_factor=floor_factor,
        negative_norm=negative_norm, mixed_rule="grpo", negative_rule="lens"
    )
    return advantages.to(_out_dtype(rewards, confidence))


@register("dr_grpo", label="Dr. GRPO", color="#009E73", marker="D", loss_type="dr_grpo",
          paper="Liu et al. 2025 (arXiv:2503.20783)")
def dr_grpo_advantages(rewards: Tensor, confidence: Tensor) -> Tensor:
    """Dr. GRPO: A = r - mean r (no std division). Its other change, a constant-length loss
    normaliser instead of the per-sequence 1/|o_i|, lives in the trainer's loss, not here."""
    rewards_f, _ = _prepare(rewards, confidence, "sample")
    return _centered(rewards_f).to(_out_dtype(rewards, confidence))  # (B, G)


@register("nsr", label="NSR", color="#56B4E9", marker="P", paper="Zhu et al. 2025 (arXiv:2506.01347)")
def nsr_advantages(rewards: Tensor, confidence: Tensor) -> Tensor:
    """Negative sample reinforcement: A = r - 1 (wrong answers -1, correct ones 0)."""
    rewards_f, _ = _prepare(rewards, confidence, "sample")
    return (rewards_f - 1.0).to(_out_dtype(rewards, confidence))  # (B, G)


@register("w_reinforce", label="W-REINFORCE", color="#7F7F7F", marker="X", paper="Zhu et al. 2025 (arXiv:2506.01347)")
def w_reinforce_advantages(rewards: Tensor, confidence: Tensor, *, wr_lambda: float = 0.1) -> Tensor:
    """W-REINFORCE: A = lambda for a correct answer, -1 for a wrong one (lambda = 0.1)."""
    rewards_f, _ = _prepare(rewards, confidence, "sample")
    advantages = torch.where(rewards_f == 1, torch.full_like(rewards_f, wr_lambda), torch.full_like(rewards_f, -1.0))
    return advantages.to(_out_dtype(rewards, confidence))  # (B, G)


@register("ngrpo", label="NGRPO", color="#000000", marker="*", clip=("clip_low", "clip_high"),
          paper="Nan et al. 2025 (arXiv:2509.18851)")
def ngrpo_advantages(rewards: Tensor, confidence: Tensor, *, eps: float = 1e-6, std: str = "sample") -> Tensor:
    """NGRPO's advantage calibration (Nan et al. 2025, arXiv:2509.18851, Section 3, "Advantage
    Calibration"): a virtual sample of the maximum reward r_max = 1 joins every group's mean and
    std, but receives no advantage itself. With R' = {r_1, ..., r_G, r_max}:

        mu'  = (sum_i r_i + r_max) / (G + 1)
        sd'  = std(R')                       (sample std over G + 1 values, as torch.std in the authors' code)
        A_i  = (r_i - mu') / (sd' + eps)

    All-wrong groups: mu' = 1/(G+1), sd' = 1/sqrt(G+1) (sample), so every answer gets
    A = -1/sqrt(G+1) (-1/3 at G = 8); all-correct groups: mu' = 1, A = 0. The paper's analytic
    case (G = 8, one correct answer): GRPO's 2.47 / -0.35 become 1.76 / -0.50. The paper's second
    change, asymmetric clipping (epsilon 0.16 below, 0.24 above, the authors' training script),
    is the loss's: ngrpo's `register` gives clip=("clip_low", "clip_high"), which lens.train
    hands to TRL as epsilon and epsilon_high. Ignores the confidence.
    """
    rewards_f, _ = _prepare(rewards, confidence, std)
    group_size = rewards_f.shape[-1]
    # NGRPO (advantage calibration): the virtual r_max = 1 sample enters the statistics only.
    augmented = torch.cat([rewards_f, torch.ones_like(rewards_f[:, :1])], dim=-1)  # (B, G + 1)
    calibrated_mean = augmented.mean(dim=-1, keepdim=True)  # (B, 1)
    dof = group_size if std == "sample" else group_size + 1
    calibrated_std = ((augmented - calibrated_mean).square().sum(dim=-1, keepdim=True) / dof).sqrt()  # (B, 1)
    advantages = (rewards_f - calibrated_mean) / (calibrated_std + eps)  # (B, G)
    return advantages.to(_out_dtype(rewards, confidence))


@register("uniform_negative", label="Uniform negative (ours)", color="#882255", marker="h",
          paper="this suite's baseline: every wrong answer -1/G (not the LENS paper's Appendix C, which reduces "
                "to GRPO here)")
def uniform_negative_advantages(
    rewards: Tensor, confidence: Tensor, *, alpha: float = 0.25, eps: float = 1e-6, std: str = "sample"
) -> Tensor:
    """Uniform negative weights, this suite's baseline: every wrong answer of a group gets the same
    negative reward -1/G, so the confidence plays no part.

    Not the LENS paper's Appendix C. Its special case rho = mu = pi_theta (every response weighted
    alike) gives each question one weight for its wrong answers, 1/(D - 1) with D ~ G/k for k
    correct answers of G, i.e. about k/(G - k): 0 in an all-wrong group (k = 0), and in a mixed group a
    reward r - (1 - r) k/(G - k) that is affine in r, which standardisation maps back to GRPO's
    advantages. That case is GRPO in mixed groups and zero in all-wrong ones: plain GRPO, already
    an arm, so it is no separate arm here.

    This arm instead keeps a fixed push-down on every mistake. LENS's calibrated reward
    r^_i = r_i - (1 - r_i) (1/G) p_i / (D - p_i) (Section 5, Eq. 11-14) with the weight
    p_i / (D - p_i) replaced by one constant, its largest value 1: the floor D >= 2 max_j p_j keeps
    p_i / (D - p_i) <= 1, and LENS gives exactly 1 to the most confident mistake of every all-wrong
    group (D = 2 max p); so every mistake is penalised like LENS's most confident one, r^_i = -1/G,
    and no wrong answer's reward leaves LENS's [-1/G, 0).

    - mixed groups: r^ = (1 + 1/G) r - 1/G is affine in r, so standardising it gives GRPO's
      advantages (the uniform weights carry no information beyond r);
    - all-wrong groups: r^ is the constant -1/G. LENS's negative-group rule alpha (r^ - mean r^)
      would cancel a constant exactly; this arm's point is that all-wrong answers are pushed
      down, so the negative group keeps the calibrated reward's level, scaled as LENS scales
      negative groups: A_i = alpha r^_i = -alpha / G (-1/64 at G = 16, alpha = 0.25), the policy
      gradient of -E[(1/G)(1 - r)] without a group baseline;
    - all-correct groups: A = 0.
    """
    rewards_f, _ = _prepare(rewards, confidence, std)
    group_size = rewards_f.shape[-1]
    all_wrong, _all_correct, mixed = _group_kind(rewards_f)  # (B, 1) each
    # Uniform negative (ours): p_i / (D - p_i) -> 1 for every wrong answer.
    calibrated = rewards_f - (1.0 - rewards_f) / max(group_size, 1)  # (B, G)
    mixed_adv = _divide_by_std(_centered(calibrated), eps, std)  # (B, G)
    zeros = torch.zeros_like(rewards_f)
    advantages = torch.where(mixed, mixed_adv, torch.where(all_wrong, alpha * calibrated, zeros))  # (B, G)
    return advantages.to(_out_dtype(rewards, confidence))


@register("reinforce_rej", label="Reinforce-Rej", color="#999933", marker="d", drop_filtered=True,
          paper="Xiong et al. 2025 (arXiv:2504.11343)")
def reinforce_rej_advantages(rewards: Tensor, confidence: Tensor) -> Tensor:
    """Reinforce-Rej (Xiong et al. 2025, arXiv:2504.11343, "A Minimalist Approach to LLM
    Reasoning"): REINFORCE on the raw reward r' = 2r - 1 in {-1, +1}, with the prompts whose
    responses are all correct or all wrong filtered out of the batch. Here a filtered group gets
    A = 0 (no gradient), and a kept sequence's advantage is exactly +-1, so A != 0 marks the kept
    ones. Removing the filtered prompts also takes them out of the loss's mean over sequences;
    that is the trainer's part (lens.algorithms: drop_filtered): lens.rollout.kept_only_advantages
    rescales each optimizer update's kept advantages by (sequences in the update) / (kept ones),
    so TRL's mean over all of them equals the mean over the kept ones. The opposite hypothesis to
    LENS's: all-wrong groups are noise to drop, not signal to reweight. Ignores the confidence.
    """
    rewards_f, _ = _prepare(rewards, confidence, "sample")
    _all_wrong, _all_correct, mixed = _group_kind(rewards_f)  # (B, 1) each
    # Reinforce-Rej: keep only mixed groups; REINFORCE's advantage is the +-1 reward itself.
    advantages = torch.where(mixed, 2.0 * rewards_f - 1.0, torch.zeros_like(rewards_f))  # (B, G)
    return advantages.to(_out_dtype(rewards, confidence))


@register("grpo_shuffled", label="GRPO (shuffled advantages)", color="#44AA99", marker="<",
          paper="this suite's control arm: GRPO's advantages permuted within a share q of the groups "
                "(shuffle_frac; q = 1 by default: every group)")
def grpo_shuffled_advantages(
    rewards: Tensor, confidence: Tensor, *, eps: float = 1e-6, std: str = "sample", shuffle_frac: float = 1.0,
    seed: int = 0,
) -> Tensor:
    """Control arm (ours): GRPO's advantages permuted uniformly at random within each group, or within a
    share q = `shuffle_frac` of the groups (each independently; the others keep GRPO's): a graded control
    whose effect shrinks with q, to find the smallest corruption the benchmark detects.

    Every group keeps GRPO's multiset of advantages (the same step sizes, summing to 0), but which
    response gets which is random: a correct answer of a group with k correct of G gets a positive
    advantage with probability k/G, so the update carries no information about which answer was
    right. An arm that cannot beat it learns nothing from the rewards' assignment. All-correct and
    all-wrong groups stay at A = 0. The permutations are drawn from a CPU torch.Generator seeded
    with `seed` (an int in [0, 2**63)), one independent uniform permutation per group, so the
    function is pure: the same inputs and seed give the same output, on any device and dtype.
    Ignores the confidence.
    """
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    rewards_f, _ = _prepare(rewards, confidence, std)
    advantages = _grpo_advantages(rewards_f, eps, std)  # (B, G)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    # Sorting i.i.d. uniform keys gives a uniform random permutation of each row.
    keys = torch.rand(advantages.shape, generator=generator, dtype=torch.float64)  # (B, G)
    permutation = keys.argsort(dim=-1).to(advantages.device)  # (B, G)
    # GRPO (shuffled): sample j of a group receives the advantage GRPO gave sample permutation[j].
    shuffled = advantages.gather(-1, permutation)  # (B, G)
    if shuffle_frac < 1:
        # Drawn after the permutations, so q = 1 gives exactly the draws (and advantages) it always gave.
        chosen = torch.rand(advantages.shape[0], generator=generator, dtype=torch.float64) < shuffle_frac  # (B,)
        shuffled = torch.where(chosen.to(advantages.device).unsqueeze(-1), shuffled, advantages)
    return shuffled.to(_out_dtype(rewards, confidence))  # (B, G)


@register("grpo_dynamic", label="GRPO + dynamic sampling", color="#332288", marker=">", drop_filtered=True,
          gen_batches="max_gen_batches",
          paper="Yu et al. 2025, DAPO (arXiv:2503.14476), dynamic sampling; verl algorithm.filter_groups")
def grpo_dynamic_advantages(rewards: Tensor, confidence: Tensor, *, eps: float = 1e-6, std: str = "sample") -> Tensor:
    """GRPO with DAPO's dynamic sampling: GRPO's advantages. What differs is the rollout (lens.dynamic,
    lens.trainer): uninformative groups are dropped and refilled from the next prompts, up to
    `max_gen_batches` generation batches; fillers left at the cap get A = 0 and leave the loss's mean."""
    return grpo_advantages(rewards, confidence, eps=eps, std=std)


AdvantageFn = Callable[..., Tensor]
# Algorithm id -> advantage function: every `register` above, in the table's order.
ADVANTAGE_FNS: dict[str, AdvantageFn] = algorithms.FUNCTIONS


def compute_advantages(algo: str, rewards: Tensor, confidence: Tensor, *, seed: int = 0, **params) -> Tensor:
    """Advantages (B, G) of algorithm `algo` for rewards in {0, 1} and confidences in [0, 1], both (B, G).

    `params` are advantage parameters (lens.config.PARAMS: alpha, eps, std, wr_lambda, ...);
    the algorithm's function receives its own and ignores the others, so one set of parameters
    serves every algorithm. `seed` reaches only the algorithms that draw at random
    (lens.algorithms: seeded, e.g. grpo_shuffled). The result has the dtype (float32/float64) and
    device of the inputs.
    Raises ValueError for an unknown algo (the message lists the valid ones), an unknown parameter
    name, an unknown `std`, mismatched shapes, rewards outside {0, 1} or NaN confidences.
    """
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown advantage parameter(s) {unknown}; valid: {list(PARAMS)}")
    if "std" in params and params["std"] not in STD_KINDS:
        raise ValueError(f"std must be one of {list(STD_KINDS)}, got {params['std']!r}")
    spec = algorithms.get(algo)
    own = {name: params[name] for name in spec.params if name in params}
    if spec.seeded:
        own["seed"] = seed
    return ADVANTAGE_FNS[algo](rewards, confidence, **own)


def group_stats(rewards: Tensor, advantages: Tensor) -> dict[str, Tensor]:
    """Batch summaries of (B, G) rewards and advantages, each a 0-d tensor.

    all_wrong_frac, all_correct_frac, mixed_frac: fraction of the B groups of each type;
    nonzero_adv_frac: fraction of the B*G samples with A != 0; abs_adv_{mixed,all_wrong,all_correct}:
    mean |A| over the samples in groups of that type (0 when the batch has no such group).
    """
    if rewards.ndim != 2 or advantages.shape != rewards.shape:
        raise ValueError(
            "rewards and advantages must be (B, G) of equal shape, "
            f"got {tuple(rewards.shape)} and {tuple(advantages.shape)}"
        )
    dtype = advantages.dtype if advantages.is_floating_point() else torch.get_default_dtype()
    abs_adv = advantages.detach().to(dtype).abs()  # (B, G)
    group_size = rewards.shape[-1]
    n_groups = max(rewards.shape[0], 1)
    kinds = dict(zip(("all_wrong", "all_correct", "mixed"), _group_kind(rewards.detach().to(dtype)), strict=True))
    stats: dict[str, Tensor] = {}
    for name, kind in kinds.items():
        stats[f"{name}_frac"] = kind.sum().to(dtype) / n_groups
    stats["nonzero_adv_frac"] = (abs_adv != 0).sum().to(dtype) / max(abs_adv.numel(), 1)
    for name, kind in kinds.items():
        n_samples = kind.sum().to(dtype) * group_size  # samples in groups of this type
        abs_sum = torch.where(kind, abs_adv, torch.zeros_like(abs_adv)).sum()
        stats[f"abs_adv_{name}"] = abs_sum / n_samples.clamp(min=1)
    return stats
