"""The thin adapter onto TRL's GRPOTrainer: rollout confidences and rewards -> lens.objective advantages.

Used by `python -m lens.train --config FILE --out DIR`; tested by tests/test_trainer.py, timed by
`python benchmarks/bench_train_step.py`. The rollout's math and records are lens.rollout's (pure torch),
the prompts' order over every pass lens.sampler's, dynamic sampling's choice of groups lens.dynamic's,
and the TRL internals this class relies on are listed and checked in lens.trl_contract.

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
   through TRL's `epsilon` / `epsilon_high` (lens.trl_config.grpo_config_kwargs, from lens.algorithms).

5. Dynamic sampling (grpo_dynamic, lens.dynamic): groups with equal rewards are dropped and the rollout is
   refilled with further generation batches of the next rollouts' prompts (`_rollout_inputs`: the run's
   data order), up to the algorithm's cap; each process's update rows are regrouped from its own generated
   rows (`_trained_rows`), so shapes stay fixed; slots without an informative group carry A = 0 and leave
   the loss mean as Reinforce-Rej's filtered groups do (point 4). docs/training.md maps it to verl's
   `filter_groups`.

Rollout records: the first and every `records_every`-th rollout step, one row per sampled completion
(ROLLOUT_COLUMNS: the completion, its reward, confidence, group type, the advantage the loss used and
GRPO's on the same batch, its generation batch and whether dynamic sampling dropped its group), gathered
across processes and handed to `record_sink` on the main process (lens.train writes them to the run's
rollouts.parquet). TRL's own completions log (`log_completions`) gets the same advantages in place of
TRL's, plus confidence and grpo_advantage columns, so a user who turns it on sees what the loss used.

Per rollout it logs, through TRL's metrics (so they reach every logger): groups/*_frac,
adv/nonzero_frac, confidence/{correct,wrong}_mean, adv/abs_mean/{type}, and GRPO's advantages on
the same batch as adv/grpo_abs_mean/{type} and adv/delta_vs_grpo/{type} (mean |A - A_GRPO|); and what
the rollout cost (COST_METRICS: every rollout, recorded or not, summed over processes): completions,
generated and prompt tokens, tokens through the forward and backward passes, processes and GPUs, and
the main process's wall time in generation (TRL's `_generate`; with vLLM the weight sync too) and in
scoring (the reward functions). lens.train adds each rollout step's whole wall time (time/step_s).
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import torch
from accelerate.utils import set_seed
from torch import Tensor
from trl import GRPOTrainer
from trl.trainer.utils import pad

from lens import algorithms, dynamic
from lens.config import AlgorithmConfig
from lens.objective import compute_advantages, sequence_confidence
from lens.rollout import kept_only_advantages, rollout_advantages, rollout_records, rollout_seed
from lens.sampler import RunSampler, data_passes
from lens.trl_contract import allow_indexed_cpu_map_location, check_trl_contract

CONFIDENCE_SOURCES = ("trainer", "sampling")  # training.confidence_from: whose log-probs give p (point 1 above)
COST_METRICS = ("cost/completions", "cost/completion_tokens", "cost/prompt_tokens", "cost/trained_tokens",
                "cost/processes", "cost/gpus", "time/generation_s", "time/scoring_s")


def trl_loss_type(algo: str) -> str:
    """TRL's `loss_type` that implements the algorithm's loss aggregation (lens.algorithms)."""
    return algorithms.get(algo).loss_type


def needs_confidence(algo: str) -> bool:
    """Whether the algorithm's advantages read the confidence (worth an extra forward pass)."""
    return algorithms.get(algo).reads_confidence


class _Batch(NamedTuple):
    """One generation batch of a rollout: this process's inputs and TRL's output, every process's rewards
    and confidences (N_all,) in gather order (confidence None where the algorithm has no log-probs)."""

    inputs: list
    output: dict
    rewards: Tensor
    confidence: Tensor | None


# TRL's per-row rollout tensors that dynamic sampling regroups: (padding side, fill: "pad" = the pad token).
# Scalars per row (advantages) are stacked. Anything else (images, tools' extras) is refused.
_ROW_KEYS = {"prompt_ids": ("left", "pad"), "prompt_mask": ("left", 0), "completion_ids": ("right", "pad"),
             "completion_mask": ("right", 0), "advantages": (None, None), "old_per_token_logps": ("right", 0.0),
             "ref_per_token_logps": ("right", 0.0), "sampling_per_token_logps": ("right", 0.0),
             "importance_sampling_ratio": ("right", 1.0), "tool_mask": ("right", 1)}


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
        spec = algorithms.get(algorithm.name)
        # Generation batches a rollout may take (dynamic sampling: lens.dynamic), and the run's data order
        # its refills read (every rollout's prompts, built on the first refill).
        self._gen_batches = getattr(algorithm, spec.gen_batches) if spec.gen_batches else 1
        self._data_order: list[int] | None = None
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
        self._run_sampler = RunSampler(sampler.data_source, sampler.mini_repeat_count, sampler.batch_size,
                                       sampler.repeat_count, sampler.shuffle, sampler.seed, passes=self._data_passes)
        return self._run_sampler

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
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        batches = [self._scored_batch(inputs)]
        if self._gen_batches > 1:
            batches = self._refill(batches)
        G = self.num_generations
        if len(batches) == 1 and self._gen_batches == 1:
            output, slots = batches[0].output, None
            rewards, confidence_all = batches[0].rewards, batches[0].confidence
        else:
            flags = torch.stack([dynamic.informative(x.rewards.view(-1, G).cpu()) for x in batches])  # (J, B_all)
            slots = dynamic.select_groups(flags, self._group_owners(len(inputs)))  # (B_all,) batch, source, kept
            output = self._trained_rows(batches, slots)
            rewards = self._slot_values([x.rewards for x in batches], slots)
            confidence_all = (self._slot_values([x.confidence for x in batches], slots)
                              if batches[0].confidence is not None else None)
        mask = self._loss_mask(output)  # (n, T) this process's samples
        n_local = mask.size(0)
        advantages_all, grpo_all, metrics = rollout_advantages(
            self.algorithm, rewards, confidence_all, G,
            seed=rollout_seed(self.args.seed, self.state.global_step))  # (B_all, G) each
        if slots is not None:
            metrics.update(self._dynamic_metrics(batches, slots))
        for name, value in {**metrics, **self._rollout_cost(batches, output)}.items():
            self._metrics["train"][name].append(value)
        # Same layout as TRL's own slicing: this process owns rows [i * n, (i + 1) * n).
        process_slice = slice(self.accelerator.process_index * n_local, (self.accelerator.process_index + 1) * n_local)
        output["advantages"] = advantages_all.reshape(-1)[process_slice].to(output["advantages"].dtype)  # (n,)
        generated = self._generated_view(batches, slots, advantages_all, grpo_all)
        self._log_completion_columns(*generated[:3])
        self._record_rollout(batches, *generated)
        return output

    def _scored_batch(self, inputs) -> _Batch:
        """TRL's generation and scoring of this process's `inputs`, with every process's rewards and confidences."""
        output = super()._generate_and_score_completions(inputs)
        rewards_per_func, self._rewards_per_func = self._rewards_per_func, None
        weights = self.reward_weights.to(rewards_per_func.device)
        rewards = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)  # (N_all,) every process's samples
        logp = self._rollout_logps(output)  # (n, T) or None
        confidence = None
        if logp is not None:
            confidence = self.accelerator.gather(sequence_confidence(logp, self._loss_mask(output)).float())  # (N_all,)
        return _Batch(inputs, output, rewards, confidence)

    @staticmethod
    def _loss_mask(output: dict) -> Tensor:
        mask = output["completion_mask"]
        return mask * output["tool_mask"] if "tool_mask" in output else mask

    def _group_owners(self, n_local: int) -> Tensor:
        return dynamic.owners(n_local * self.accelerator.num_processes // self.num_generations, self.num_generations,
                              n_local)

    def _refill(self, batches: list[_Batch]) -> list[_Batch]:
        """Dynamic sampling: further batches of the next rollouts' prompts until every process has its quota
        of informative groups or the cap is reached (lens.dynamic). Every process decides the same: the
        rewards are gathered."""
        G = self.num_generations
        owner = self._group_owners(len(batches[0].inputs))
        rollout = self.rollout_step() - 1
        # The dataloader's rollout must be the one RunSampler's order gives (refills are read from it).
        expected = [str(x.get("problem_id", "")) for x in self._rollout_inputs(rollout)]
        if [str(x.get("problem_id", "")) for x in batches[0].inputs] != expected:
            raise RuntimeError("dynamic sampling: the trainer's rollout is not the run's data order "
                               f"(rollout {rollout + 1}); the refills would come from another order")
        flags = [dynamic.informative(batches[0].rewards.view(-1, G).cpu())]
        while len(batches) < self._gen_batches and not dynamic.quota_met(torch.stack(flags), owner):
            batches.append(self._scored_batch(self._rollout_inputs(rollout + len(batches))))
            flags.append(dynamic.informative(batches[-1].rewards.view(-1, G).cpu()))
        return batches

    def _rollout_inputs(self, rollout: int) -> list[dict]:
        """This process's samples of rollout `rollout` (0-based) in the run's data order, as the dataloader
        hands them out: RunSampler's prompt chunks, each prompt G times, process p taking the p-th share.
        Past the run's last rollout the order continues into further passes (the last rollouts' refills)."""
        sampler, G = self._run_sampler, self.num_generations
        per_rollout = sampler.batch_size
        per_pass = sampler.num_samples // per_rollout
        if self._data_order is None or len(self._data_order) < (rollout + 1) * per_rollout:
            passes = max(sampler.passes, math.ceil((rollout + 1) / per_pass) + 1)
            order = RunSampler(sampler.data_source, 1, per_rollout, 1, sampler.shuffle, sampler.seed, passes=passes)
            self._data_order = list(order)  # the prompts of every rollout, rollout after rollout
        prompts = self._data_order[rollout * per_rollout:(rollout + 1) * per_rollout]
        samples = [i for i in prompts for _ in range(G)]
        n_local = len(samples) // self.accelerator.num_processes
        start = self.accelerator.process_index * n_local
        return [self.train_dataset[i] for i in samples[start:start + n_local]]

    def _trained_rows(self, batches: list[_Batch], slots) -> dict:
        """This process's rows of the update: each of its rows takes the same sample of its slot's chosen group
        (held by this process: lens.dynamic), re-padded into TRL's layout."""
        batch_of, source, _ = slots
        G = self.num_generations
        n_local = batches[0].output["completion_ids"].size(0)
        first = self.accelerator.process_index * n_local  # this process's first global row
        picks = []
        for row in range(first, first + n_local):
            slot, i = divmod(row, G)
            picks.append((int(batch_of[slot]), int(source[slot]) * G + i - first))
        pad_id = self.processing_class.pad_token_id
        if pad_id is None:
            pad_id = self.processing_class.eos_token_id
        out = {}
        for key in batches[0].output:
            if key == "num_items_in_batch":
                continue
            if key not in _ROW_KEYS:
                raise NotImplementedError(f"dynamic sampling cannot regroup TRL's {key!r} (multimodal or tool "
                                          "rollouts are not supported)")
            rows = [batches[j].output[key][row] for j, row in picks]
            side, fill = _ROW_KEYS[key]
            out[key] = torch.stack(rows) if rows[0].dim() == 0 else pad(
                rows, padding_value=pad_id if fill == "pad" else fill, padding_side=side)
        out["num_items_in_batch"] = self.accelerator.gather(self._loss_mask(out).sum()).sum()
        return out

    def _slot_values(self, values: list[Tensor], slots) -> Tensor:
        """(N_all,) values of the update's groups, every process's, in gather order, from each batch's (N_all,)."""
        batch_of, source, _ = slots
        stacked = torch.stack([v.view(-1, self.num_generations) for v in values])  # (J, B_all, G)
        return stacked[batch_of.to(stacked.device), source.to(stacked.device)].reshape(-1)

    def _dynamic_metrics(self, batches: list[_Batch], slots) -> dict[str, float]:
        """groups/*_frac over every generated group (the policy's samples, comparable with the other arms), the
        batches generated and the share of the update's slots without an informative group."""
        grouped = torch.cat([x.rewards.float().view(-1, self.num_generations) for x in batches])  # (J * B_all, G)
        n_correct = (grouped > 0.5).sum(dim=1)
        kinds = {"mixed": (n_correct > 0) & (n_correct < grouped.size(1)), "all_wrong": n_correct == 0,
                 "all_correct": n_correct == grouped.size(1)}
        metrics = {f"groups/{kind}_frac": float(flags.float().mean()) for kind, flags in kinds.items()}
        metrics["dynamic/gen_batches"] = float(len(batches))
        metrics["dynamic/filled_frac"] = float((~slots[2]).float().mean())
        return metrics

    def _generated_view(self, batches: list[_Batch], slots, advantages_all: Tensor, grpo_all: Tensor):
        """Per generated batch, (B_all, G) advantages used (0 where not trained), GRPO's, confidences and the
        (B_all,) dropped flags; concatenated over batches for TRL's completions log."""
        G = self.num_generations
        if slots is None:
            used, grpo, dropped = [advantages_all], [grpo_all], [torch.zeros(advantages_all.size(0), dtype=torch.bool)]
        else:
            batch_of, source, kept = slots
            used = [torch.zeros_like(advantages_all) for _ in batches]
            dropped = [torch.ones(advantages_all.size(0), dtype=torch.bool) for _ in batches]
            for slot in range(advantages_all.size(0)):
                j, g = int(batch_of[slot]), int(source[slot])
                used[j][g] = advantages_all[slot]
                dropped[j][g] = not bool(kept[slot])
            grpo = [compute_advantages("grpo", x.rewards.float().view(-1, G), torch.ones_like(used[0]),
                                       eps=self.algorithm.eps, std=self.algorithm.std) for x in batches]
        confidence = [x.confidence for x in batches]
        return used, grpo, confidence, dropped

    def _rollout_cost(self, batches: list[_Batch], output: dict) -> dict[str, float]:
        """COST_METRICS of this rollout: counts over every process (generated: every batch; trained: the
        update's rows), wall times of this one (then reset)."""
        generated = [torch.stack([self._loss_mask(x.output).sum(), x.output["prompt_mask"].sum()]) for x in batches]
        counts = torch.cat([sum(generated), self._loss_mask(output).sum().view(1),
                            output["prompt_mask"].sum().view(1)]).float()  # this process's samples
        completion_tokens, prompt_tokens, trained_completion, trained_prompt = self._sum_over_processes(counts).tolist()
        processes = self.accelerator.num_processes
        cost = {"cost/completions": float(sum(x.rewards.numel() for x in batches)),
                "cost/completion_tokens": completion_tokens, "cost/prompt_tokens": prompt_tokens,
                # every sequence of the update goes through its forward and backward passes once
                "cost/trained_tokens": trained_completion + trained_prompt,
                "cost/processes": float(processes),
                "cost/gpus": float(processes if self.accelerator.device.type == "cuda" else 0),
                "time/generation_s": self._seconds["generation"], "time/scoring_s": self._seconds["scoring"]}
        self._seconds = dict.fromkeys(self._seconds, 0.0)
        return cost

    def _log_completion_columns(self, advantages: list[Tensor], grpo: list[Tensor], confidence: list[Tensor | None]):
        """TRL's completions log (log_completions) shows the advantages the loss uses, not TRL's own."""
        n_all = sum(a.numel() for a in advantages)
        logged = self._logs["advantages"]
        del_count = min(n_all, len(logged))
        for _ in range(del_count):  # TRL appended the N_all advantages of each generated batch last
            logged.pop()
        logged.extend(torch.cat([a.reshape(-1) for a in advantages]).tolist())
        self._logs["extra"]["grpo_advantage"].extend(torch.cat([a.reshape(-1) for a in grpo]).tolist())
        for adv, conf in zip(advantages, confidence, strict=True):
            self._logs["extra"]["confidence"].extend(conf.tolist() if conf is not None else [math.nan] * adv.numel())

    def rollout_step(self) -> int:
        """The rollout step (1-based) whose samples are being generated at this optimizer step."""
        updates_per_rollout = self.args.steps_per_generation // self.args.gradient_accumulation_steps
        return self.state.global_step // updates_per_rollout + 1

    def _record_rollout(self, batches: list[_Batch], advantages, grpo, confidence, dropped):
        """Rows of ROLLOUT_COLUMNS for every generated batch of this rollout, gathered to the main process,
        to `record_sink`."""
        step = self.rollout_step()
        # Step 1 always: sampled from the shared start model, it shows whether runs of one seed share their
        # random numbers (analysis.collect.seed_pairing).
        if self.record_sink is None or (step % self.records_every and step != 1):
            return
        from accelerate.utils import gather_object

        frames = []
        for j, batch in enumerate(batches):
            texts = self.processing_class.batch_decode(batch.output["completion_ids"], skip_special_tokens=True)
            mask = self._loss_mask(batch.output)
            # Every process takes part in the gathers (collectives); only the main process writes.
            problem_ids = gather_object([str(x.get("problem_id", "")) for x in batch.inputs])
            completions = gather_object(texts)
            tokens = gather_object(mask.sum(dim=1).tolist())
            if self.accelerator.is_main_process:
                grouped = batch.rewards.float().view(-1, self.num_generations)  # (B_all, G)
                frames.append(rollout_records(
                    step, grouped.cpu(), confidence[j].view_as(grouped).cpu() if confidence[j] is not None else None,
                    advantages[j].cpu(), grpo[j].cpu(), problem_ids, completions, tokens, mask.size(0),
                    gen_batch=j, dropped=dropped[j].cpu()))
        if self.accelerator.is_main_process:
            import pandas as pd

            self.record_sink(frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True))

    def _prepare_inputs(self, generation_batch):
        generate_every = self.args.steps_per_generation * self.num_iterations
        fresh = self.model.training and (self._step % generate_every == 0 or self._buffered_inputs is None)
        inputs = super()._prepare_inputs(generation_batch)
        if not (fresh and algorithms.get(self.algorithm.name).drop_filtered):
            return inputs
        # TRL has just generated, shuffled and split a rollout: rescale each update's kept advantages.
        scaled = kept_only_advantages([batch["advantages"] for batch in self._buffered_inputs],
                                      self.args.gradient_accumulation_steps, self._sum_over_processes)
        self._buffered_inputs = [{**batch, "advantages": adv}
                                 for batch, adv in zip(self._buffered_inputs, scaled, strict=True)]
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
