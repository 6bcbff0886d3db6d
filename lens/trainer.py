"""The thin adapter onto TRL's GRPOTrainer: rollout confidences and rewards -> lens.objective advantages.

Used by `python -m lens.train --config FILE --out DIR`; tested by tests/test_trainer.py, timed by
`python benchmarks/bench_train_step.py`.

TRL (accelerate, DeepSpeed ZeRO-3 / FSDP2, vLLM) stays the engine; `LensGRPOTrainer` changes only
where the advantages come from. Differences from TRL's GRPO, in the order they happen:

1. Confidence (Section 5 of the paper): p_i = exp(mean_t log pi_old(o_it)) over the response
   tokens (EOS included, padding and prompt excluded), from pi_old's per-token log-probs. By
   default (`training.confidence_from: trainer`) they are TRL's `old_per_token_logps`, the
   trainer's own recomputation of pi_old (as VeRL, the paper's engine, recomputes them with its
   actor), which TRL makes whenever an update is not the first after a rollout (several updates
   per rollout: config/paper.yaml); vLLM's sampling log-probs only where TRL has none
   (`confidence_from: sampling` prefers vLLM's). With neither (one update per rollout without
   vLLM: config/config.yaml), and only for algorithms that read p (the LENS family), one no-grad
   forward pass runs after generation and its log-probs are handed to TRL as
   `old_per_token_logps`, so the loss reuses them (the same values, so the PPO ratio is unchanged).
2. Advantages (Eq. 2 for GRPO, Eq. 11-14 for LENS, the baselines of §3) from
   `lens.objective.compute_advantages` on the rewards and confidences of the whole rollout,
   gathered across processes (a prompt's G samples may sit on different GPUs), then sliced back
   to this process's rows, exactly as TRL slices its own advantages. Algorithms that draw at
   random (grpo_shuffled) get `rollout_seed(run seed, optimizer step at the rollout)`: the same on
   every process, different for every rollout, and the same again when a run resumes.
3. No reward scaling by TRL (`scale_rewards="none"`): the std division, where an algorithm has
   one, is lens.objective's.
4. Loss aggregation (Eq. 3): per-sequence token mean, then mean over sequences = TRL's
   `loss_type="grpo"`; Dr. GRPO uses TRL's constant-length normaliser `loss_type="dr_grpo"`.
   Reinforce-Rej (lens.algorithms: drop_filtered) removes its filtered groups from that mean as
   well: after TRL shuffles the rollout and splits it into micro-batches, `kept_only_advantages`
   multiplies the kept sequences' advantages (A != 0) of each optimizer update by N / K, with N
   the sequences the update averages over (all its micro-batches on every process) and K the kept
   ones among them. The PPO-clip term is positively homogeneous in A (min(rho cA, clip(rho) cA) =
   c min(rho A, clip(rho) A) for c > 0), so TRL's mean over N then equals the mean over the K
   kept sequences: the update is the one on a batch of kept prompts only. Exact with no KL term
   (beta = 0, the paper's and both configs' setting); other beta is refused.
   Clipping: e = 0.2 on both sides, or an algorithm's own lower/upper pair (NGRPO: 0.16 / 0.24)
   through TRL's `epsilon` / `epsilon_high` (lens.train.grpo_config_kwargs, from lens.algorithms).

Rollout records: the first and every `records_every`-th rollout step, one row per sampled completion
(ROLLOUT_COLUMNS: the completion, its reward, confidence, group type, the advantage the loss used and
GRPO's on the same batch), gathered across processes and handed to `record_sink` on the main process
(lens.train writes them to the run's rollouts.parquet). TRL's own completions log
(`log_completions`) gets the same advantages in place of TRL's, plus confidence and grpo_advantage
columns, so a user who turns it on sees what the loss used.

Per rollout it logs, through TRL's metrics (so they reach every logger): groups/*_frac,
adv/nonzero_frac, confidence/{correct,wrong}_mean, adv/abs_mean/{type}, and GRPO's advantages on
the same batch as adv/grpo_abs_mean/{type} and adv/delta_vs_grpo/{type} (mean |A - A_GRPO|); and what
the rollout cost (COST_METRICS: every rollout, recorded or not, summed over processes): completions,
generated and prompt tokens, tokens through the forward and backward passes, processes and GPUs, and
the main process's wall time in generation (TRL's `_generate`; with vLLM the weight sync too) and in
scoring (the reward functions). lens.train adds each rollout step's whole wall time (time/step_s).
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Callable

import torch
from accelerate.utils import set_seed
from torch import Tensor
from trl import GRPOTrainer
from trl.trainer.utils import RepeatSampler

from lens import algorithms
from lens.algorithms import GROUP_TYPES
from lens.config import AlgorithmConfig
from lens.objective import compute_advantages, group_stats, sequence_confidence

CONFIDENCE_SOURCES = ("trainer", "sampling")  # training.confidence_from: whose log-probs give p (point 1 above)
COST_METRICS = ("cost/completions", "cost/completion_tokens", "cost/prompt_tokens", "cost/trained_tokens",
                "cost/processes", "cost/gpus", "time/generation_s", "time/scoring_s")


def trl_loss_type(algo: str) -> str:
    """TRL's `loss_type` that implements the algorithm's loss aggregation (lens.algorithms)."""
    return algorithms.get(algo).loss_type


def needs_confidence(algo: str) -> bool:
    """Whether the algorithm's advantages read the confidence (worth an extra forward pass)."""
    return algorithms.get(algo).reads_confidence


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
                   "confidence", "group_type", "advantage", "grpo_advantage"]


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
):
    """One row per sampled completion of a rollout (ROLLOUT_COLUMNS), from (B_all, G) rewards,
    confidences (None: NaN), advantages and GRPO's, and the (N_all,) per-sample lists in gather order.

    `group` is the prompt's index within the rollout, `sample_idx` 0..G-1 within the group and
    `rank` the process that generated the sample (gather order: n_local samples per process).
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
    return pd.DataFrame({
        "step": step,
        "group": (index // group_size).tolist(),
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


class LensGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose advantages are lens.objective's for `algorithm` (see the module docstring)."""

    def __init__(self, *args, algorithm: AlgorithmConfig, confidence_from: str = "trainer",
                 record_sink: Callable | None = None, records_every: int = 1, **kwargs):
        check_trl_contract()
        if confidence_from not in CONFIDENCE_SOURCES:
            raise ValueError(f"confidence_from must be one of {CONFIDENCE_SOURCES}, got {confidence_from!r}")
        if records_every < 1:
            raise ValueError(f"records_every must be >= 1, got {records_every}")
        self.algorithm = algorithm
        self.confidence_from = confidence_from
        self.record_sink = record_sink  # called on the main process with each recorded rollout's rows
        self.records_every = records_every
        self._rewards_per_func: Tensor | None = None
        self._seconds = {"generation": 0.0, "scoring": 0.0}  # this rollout's, on this process
        super().__init__(*args, **kwargs)
        # The run seed (and rank), again: TRL seeds the process with it, then starts vLLM, whose worker
        # reseeds random, numpy and torch with the process index (LLM(seed=process_index)), so every run
        # would sample and split rollouts from the same streams whatever its seed. Where nothing reseeded
        # (generate() on the CPU) this restores the state TRL had just set: the same numbers as before.
        set_seed(self.args.seed, device_specific=True)
        if self.args.world_size > 1 and self.args.device.type == "cpu":
            allow_indexed_cpu_map_location()
        expected = trl_loss_type(algorithm.name)
        if self.loss_type != expected:
            raise ValueError(f"algorithm {algorithm.name!r} needs GRPOConfig(loss_type={expected!r}), "
                             f"got {self.loss_type!r}")
        if self.scale_rewards != "none":
            raise ValueError("set GRPOConfig(scale_rewards='none'): lens.objective owns the std division")
        if self.num_iterations != 1:
            # With several passes over a rollout, TRL's old log-probs of later passes are not pi_old's.
            raise ValueError("LensGRPOTrainer needs GRPOConfig(num_iterations=1) (the paper's setup)")
        if algorithms.get(algorithm.name).drop_filtered and self.beta != 0.0:
            # The KL term is not homogeneous in A: filtered sequences' KL would stay in the mean.
            raise ValueError(f"algorithm {algorithm.name!r} leaves filtered groups out of the loss mean only "
                             f"with GRPOConfig(beta=0.0), got beta={self.beta}")

    def _get_train_sampler(self, dataset=None):
        sampler = super()._get_train_sampler(dataset)
        generation_prompts = self.args.generation_batch_size // self.num_generations
        rollouts = self.args.max_steps * self.args.gradient_accumulation_steps // self.args.steps_per_generation
        self._data_passes = data_passes(sampler.num_samples, generation_prompts, rollouts)
        return RunSampler(sampler.data_source, sampler.mini_repeat_count, sampler.batch_size, sampler.repeat_count,
                          sampler.shuffle, sampler.seed, passes=self._data_passes)

    def log(self, logs, start_time=None):
        # The Trainer's epoch is a share of RunSampler's one iteration (every pass): log passes over the data.
        epoch = self.state.epoch
        if epoch is not None:
            self.state.epoch = epoch * getattr(self, "_data_passes", 1)
        try:
            super().log(logs, start_time)
        finally:
            self.state.epoch = epoch

    def _generate(self, prompts):
        # Timed for the run's cost: sampling (TRL's generate or vLLM, with its weight sync).
        started = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self._seconds["generation"] += time.perf_counter() - started

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        # Keep TRL's rewards (already gathered across processes) for our advantages; timed as scoring.
        started = time.perf_counter()
        self._rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._seconds["scoring"] += time.perf_counter() - started
        return self._rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return output
        rewards_per_func, self._rewards_per_func = self._rewards_per_func, None
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)  # (N_all,) every process's samples
        mask = output["completion_mask"]  # (n, T) this process's samples
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        n_local = mask.size(0)
        logp = self._rollout_logps(output)  # (n, T) or None
        confidence_local = sequence_confidence(logp, mask) if logp is not None else None  # (n,)
        confidence_all = self.accelerator.gather(confidence_local.float()) if logp is not None else None  # (N_all,)
        advantages_all, grpo_all, metrics = rollout_advantages(
            self.algorithm, rewards, confidence_all, self.num_generations,
            seed=rollout_seed(self.args.seed, self.state.global_step))  # (B_all, G) each
        for name, value in {**metrics, **self._rollout_cost(output, mask, rewards.numel())}.items():
            self._metrics["train"][name].append(value)
        # Same layout as TRL's own slicing: this process owns rows [i * n, (i + 1) * n).
        process_slice = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)
        output["advantages"] = advantages_all.reshape(-1)[process_slice].to(output["advantages"].dtype)  # (n,)
        self._log_completion_columns(advantages_all, grpo_all, confidence_all)
        self._record_rollout(output, mask, rewards, confidence_all, advantages_all, grpo_all, inputs)
        return output

    def _rollout_cost(self, output: dict, mask: Tensor, n_all: int) -> dict[str, float]:
        """COST_METRICS of this rollout: counts over every process, wall times of this one (then reset)."""
        counts = torch.stack([mask.sum(), output["prompt_mask"].sum()]).float()  # this process's samples
        completion_tokens, prompt_tokens = self._sum_over_processes(counts).tolist()
        processes = self.accelerator.num_processes
        cost = {"cost/completions": float(n_all), "cost/completion_tokens": completion_tokens,
                "cost/prompt_tokens": prompt_tokens,
                # every sampled sequence goes through the updates' forward and backward passes once
                "cost/trained_tokens": completion_tokens + prompt_tokens,
                "cost/processes": float(processes),
                "cost/gpus": float(processes if self.accelerator.device.type == "cuda" else 0),
                "time/generation_s": self._seconds["generation"], "time/scoring_s": self._seconds["scoring"]}
        self._seconds = dict.fromkeys(self._seconds, 0.0)
        return cost

    def _log_completion_columns(self, advantages_all: Tensor, grpo_all: Tensor, confidence_all: Tensor | None):
        """TRL's completions log (log_completions) shows the advantages the loss uses, not TRL's own."""
        n_all = advantages_all.numel()
        logged = self._logs["advantages"]
        del_count = min(n_all, len(logged))
        for _ in range(del_count):  # TRL appended this rollout's N_all advantages last
            logged.pop()
        logged.extend(advantages_all.reshape(-1).tolist())
        self._logs["extra"]["grpo_advantage"].extend(grpo_all.reshape(-1).tolist())
        self._logs["extra"]["confidence"].extend(
            confidence_all.tolist() if confidence_all is not None else [math.nan] * n_all)

    def rollout_step(self) -> int:
        """The rollout step (1-based) whose samples are being generated at this optimizer step."""
        updates_per_rollout = self.args.steps_per_generation // self.args.gradient_accumulation_steps
        return self.state.global_step // updates_per_rollout + 1

    def _record_rollout(self, output, mask, rewards, confidence_all, advantages_all, grpo_all, inputs):
        """Rows of ROLLOUT_COLUMNS for this rollout, gathered to the main process, to `record_sink`."""
        step = self.rollout_step()
        # Step 1 always: sampled from the shared start model, it shows whether runs of one seed share their
        # random numbers (analysis.collect.seed_pairing).
        if self.record_sink is None or (step % self.records_every and step != 1):
            return
        from accelerate.utils import gather_object

        texts = self.processing_class.batch_decode(output["completion_ids"], skip_special_tokens=True)
        # Every process takes part in the gathers (collectives); only the main process writes.
        problem_ids = gather_object([str(x.get("problem_id", "")) for x in inputs])
        completions = gather_object(texts)
        tokens = gather_object(mask.sum(dim=1).tolist())
        if self.accelerator.is_main_process:
            grouped = rewards.float().view(-1, self.num_generations)  # (B_all, G)
            self.record_sink(rollout_records(
                step, grouped.cpu(), confidence_all.view_as(grouped).cpu() if confidence_all is not None else None,
                advantages_all.cpu(), grpo_all.cpu(), problem_ids, completions, tokens, mask.size(0)))

    def _prepare_inputs(self, generation_batch):
        generate_every = self.args.steps_per_generation * self.num_iterations
        fresh = self.model.training and (self._step % generate_every == 0 or self._buffered_inputs is None)
        inputs = super()._prepare_inputs(generation_batch)
        if not (fresh and algorithms.get(self.algorithm.name).drop_filtered):
            return inputs
        # TRL has just generated, shuffled and split a rollout: rescale each update's kept advantages.
        scaled = kept_only_advantages([batch["advantages"] for batch in self._buffered_inputs],
                                      self.args.gradient_accumulation_steps, self._sum_over_processes)
        self._buffered_inputs = [{**batch, "advantages": adv} for batch, adv in zip(self._buffered_inputs, scaled)]
        return self._buffered_inputs[self._step % self.args.steps_per_generation]

    def _sum_over_processes(self, values: Tensor) -> Tensor:
        gathered = self.accelerator.gather(values)  # (P * U,)
        return gathered.view(self.accelerator.num_processes, -1).sum(dim=0)  # (U,)

    @torch.no_grad()
    def _rollout_logps(self, output: dict) -> Tensor | None:
        """Per-token log-probs of the responses under the rollout policy, (n, T), or None if not needed."""
        old = output.get("old_per_token_logps")
        sampling = output.get("sampling_per_token_logps")
        if old is not None and (self.confidence_from == "trainer" or sampling is None):
            return old
        if sampling is not None:
            # vLLM reports NaN for tokens it could not score: use the trainer's value there, else 0
            # (probability 1: such a token neither raises nor lowers the confidence).
            fallback = old if old is not None else torch.zeros_like(sampling)
            return torch.where(torch.isnan(sampling), fallback, sampling)
        if not needs_confidence(self.algorithm.name):
            return None
        # One update per rollout: TRL computes no old log-probs. Compute them once here and hand
        # them to the loss as old log-probs (the same values, so the PPO ratio is unchanged), at
        # the cost of one no-grad forward pass, and only for algorithms that read p.
        input_ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        attention_mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        logps, _, _ = self._get_per_token_logps_and_entropies(
            self.model, input_ids, attention_mask, output["completion_ids"].size(1),
            batch_size=self.args.per_device_train_batch_size,
        )
        output["old_per_token_logps"] = logps
        return logps
