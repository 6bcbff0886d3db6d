"""Train one model x algorithm x seed with TRL's GRPOTrainer and lens.trainer's advantages.

    python -m lens.train --config results/runs/{model}/{algo}/seed{s}/config.yaml \
        --out results/runs/{model}/{algo}/seed{s}
    accelerate launch --config_file config/accelerate/zero3.yaml -m lens.train --config FILE --out DIR   # GPUs

Everything comes from the resolved RunConfig: the model (hub id, local path, or a tiny model built
by lens.tiny with a tokenizer trained on the training problems), the training problems
(lens.data.training_problems, decontaminated; prompts from lens.data.format_prompt), the reward
(lens.rewards.grade_batch) and TRL's GRPOConfig, derived from the paper's batch arithmetic by
`batch_plan` (see docs/training.md).

Run directory (`--out`):
    config.yaml               the resolved config (written if absent)
    checkpoints/checkpoint-N  TRL/HF Trainer checkpoints at optimizer step N = rollout step x
                              updates_per_rollout, in Hugging Face format (model + tokenizer);
                              while the run trains only the newest keeps optimizer, scheduler,
                              RNG (and DeepSpeed's global_stepN) state for resuming; none once done.
                              `checkpoint_path(run_dir, step, cfg)` maps a rollout step to its dir.
    checkpoints/checkpoint-0  the initial tiny model (model.path unset); step 0 is model.path otherwise
    train_metrics.parquet     step (rollout step), metric, value: every logged rollout step
    rollouts.parquet          one row per sampled completion of every training.rollout_records_every-th
                              rollout step (lens.rollout.ROLLOUT_COLUMNS; results/README.md), written
                              at the end from rollouts/step-N.parquet (one file per recorded step,
                              written as training goes, so a resumed job keeps each row once)
    data_report.json          training problems loaded per dataset and dropped by decontamination,
                              per evaluation set (lens.data.training_problems)
    mlflow_run_id             the MLflow run a resumed job re-attaches to
    done                      written last (JSON: final rollout and optimizer step)
A job killed at any point and started again with the same command resumes from its newest
complete checkpoint and ends at the same final step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lens.config import ConfigError, RunConfig, TrainingConfig, load_run_config, write_run_config
from lens.engine import EngineError
from lens.layout import (
    CHECKPOINTS,
    DATA_REPORT_FILE,
    DONE_FILE,
    METRICS_FILE,
    ROLLOUT_PARTS,
    ROLLOUTS_FILE,
    RUN_CONFIG_FILE,
)

log = logging.getLogger(__name__)

_ROLLOUT_PART_RE = re.compile(r"^step-(\d+)\.parquet$")
# Rows of the rollout records shown as a table in MLflow's UI (the newest steps that fit; the whole
# file is an artifact beside it): a paper run's records are too large for the UI's JSON table.
ROLLOUT_TABLE_MAX_ROWS = 20_000
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Files of a Trainer checkpoint needed only to resume from it (DeepSpeed's sharded states live in
# global_stepN/, FSDP's optimizer in optimizer_N/); removed from every checkpoint but the newest so
# that old ones keep only the Hugging Face model. Model files are never matched.
_RESUME_ONLY = re.compile(r"^(optimizer.*|scheduler\.pt|rng_state.*\.pth|scaler\.pt|global_step\d+|latest|"
                          r"zero_to_fp32\.py)$")
# Trainer log entries that summarise the whole run instead of one step.
_RUN_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
                     "train_loss"}


# --------------------------------------------------------------------------------------------
# Batch arithmetic: the paper's units -> TRL's
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchPlan:
    """TRL's batch settings for one run; sizes are in completions (prompts x G)."""

    num_processes: int
    per_device_train_batch_size: int  # completions per process per forward/backward
    gradient_accumulation_steps: int  # micro-batches per optimizer update
    steps_per_generation: int  # micro-batches per rollout = updates_per_rollout x accumulation
    generation_batch_size: int  # completions per rollout, all processes together
    updates_per_rollout: int
    max_steps: int  # optimizer updates = rollout_steps x updates_per_rollout
    save_steps: int  # optimizer updates between checkpoints


def batch_plan(training: TrainingConfig, num_processes: int) -> BatchPlan:
    """Derive TRL's per-device batch, accumulation and steps per generation; ConfigError if they do not divide.

    One optimizer update consumes prompts_per_update x G completions spread over the processes;
    each process runs them in micro-batches of `micro_batch_size` (default: all at once).
    """
    if num_processes < 1:
        raise ConfigError(f"number of processes must be >= 1, got {num_processes}")
    g = training.num_generations
    per_update = training.prompts_per_update * g
    if per_update % num_processes:
        raise ConfigError(
            f"training.prompts_per_update x num_generations = {training.prompts_per_update} x {g} = {per_update} "
            f"completions per update do not split evenly over {num_processes} processes")
    per_process = per_update // num_processes
    micro = training.micro_batch_size or per_process
    if micro < 1 or per_process % micro:
        raise ConfigError(
            f"training.micro_batch_size ({training.micro_batch_size}) must divide the {per_process} completions "
            f"each of the {num_processes} processes handles per update")
    accumulation = per_process // micro
    plan = BatchPlan(
        num_processes=num_processes,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=training.updates_per_rollout * accumulation,
        generation_batch_size=training.prompts_per_rollout * g,
        updates_per_rollout=training.updates_per_rollout,
        max_steps=training.rollout_steps * training.updates_per_rollout,
        save_steps=training.save_every * training.updates_per_rollout,
    )
    # TRL's own derivation (GRPOConfig.__post_init__) must land on the paper's rollout size.
    assert plan.per_device_train_batch_size * num_processes * plan.steps_per_generation == plan.generation_batch_size
    return plan


def resolve_precision(training: TrainingConfig, cuda: bool) -> str:
    """"bf16" or "fp32": precision auto means bf16 on CUDA, fp32 on CPU."""
    if training.precision == "auto":
        return "bf16" if cuda else "fp32"
    if training.precision == "bf16" and not cuda:
        raise ConfigError("training.precision: bf16 needs a CUDA device (use auto or fp32 on CPU)")
    return training.precision


def grpo_config_kwargs(cfg: RunConfig, plan: BatchPlan, *, cuda: bool, output_dir: str | Path) -> dict[str, Any]:
    """Keyword arguments of trl.GRPOConfig for this run (kept a dict so tests can read them on CPU)."""
    from lens.algorithms import clip_epsilons
    from lens.data import stop_strings
    from lens.trainer import trl_loss_type

    t = cfg.training
    # PPO clipping: training.clip_eps on both sides, or the algorithm's own asymmetric pair (NGRPO).
    clip_low, clip_high = clip_epsilons(cfg.algorithm.name, dataclasses.asdict(cfg.algorithm), t.clip_eps)
    precision = resolve_precision(t, cuda)
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=cfg.seed,
        data_seed=cfg.seed,
        # batch arithmetic
        per_device_train_batch_size=plan.per_device_train_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        steps_per_generation=plan.steps_per_generation,
        num_generations=t.num_generations,
        num_iterations=1,
        max_steps=plan.max_steps,
        shuffle_dataset=True,
        # optimiser: AdamW, no learning-rate warm-up; constant or decaying to 0 at max_steps
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_schedule,
        warmup_steps=0,
        # objective: Eq. 3 with clip 0.2, no KL; our advantages are never rescaled by TRL
        loss_type=trl_loss_type(cfg.algorithm.name),
        epsilon=clip_low,
        epsilon_high=clip_high,
        beta=t.kl_beta,
        scale_rewards="none",
        mask_truncated_completions=False,
        # sampling
        temperature=t.temperature,
        top_p=t.top_p,
        top_k=0,
        max_completion_length=t.max_new_tokens,
        use_vllm=t.engine == "vllm",
        # precision and memory
        bf16=precision == "bf16",
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=t.gradient_checkpointing,
        # checkpoints: every save_every rollout steps, at a rollout boundary
        save_strategy="steps",
        save_steps=plan.save_steps,
        save_only_model=False,
        # one log entry per rollout step: TRL averages the step's updates and adds the rollout's metrics
        logging_strategy="steps",
        logging_steps=plan.updates_per_rollout,
        report_to="none",
        log_completions=False,
        disable_tqdm=True,
        remove_unused_columns=False,
    )
    if t.engine == "vllm":
        kwargs.update(vllm_mode=t.vllm_mode, vllm_gpu_memory_utilization=t.vllm_gpu_memory_utilization,
                      # TRL 1.16 reweights sequences by the vLLM/trainer probability ratio by default; the
                      # paper's Eq. 3 has no such term (training.vllm_importance_sampling_correction).
                      vllm_importance_sampling_correction=t.vllm_importance_sampling_correction,
                      # KV cache sized to the longest sequence we ever sample
                      vllm_max_model_length=t.max_prompt_tokens + t.max_new_tokens)
        if t.vllm_mode == "server" and t.vllm_server_base_url:
            kwargs["vllm_server_base_url"] = t.vllm_server_base_url
        stops = stop_strings(cfg.model.prompt)
        if stops:
            # vLLM's SamplingParams(stop=...): a base model stops before writing a next "Question:".
            # transformers' generate cannot take stop strings through TRL (it needs the tokenizer
            # at call time); there the reward still grades only the first answer (make_reward).
            kwargs["generation_kwargs"] = {"stop": list(stops)}
    return kwargs


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def _complete(checkpoint: Path) -> bool:
    """trainer_state.json is written last; a kill while it is written leaves it empty or cut off."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """Newest complete Trainer checkpoint (its trainer_state.json, written last, parses), or None."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in checkpoint_dir.iterdir()
             if (m := _CHECKPOINT_RE.match(p.name)) and int(m.group(1)) > 0 and _complete(p)]
    return max(found)[1] if found else None


def prune_resume_state(checkpoint_dir: str | Path, keep: Path | None) -> None:
    """Drop optimizer/scheduler/RNG state from every checkpoint except `keep` (None: from all of them,
    once the run is done): the others stay models. A paper run's newest checkpoint holds ~112 GB of
    ZeRO state for the 8B model (docs/cluster.md, "Disk")."""
    for path in Path(checkpoint_dir).iterdir():
        if not _CHECKPOINT_RE.match(path.name) or (keep is not None and path.resolve() == Path(keep).resolve()):
            continue
        for item in path.iterdir():
            if _RESUME_ONLY.match(item.name):
                shutil.rmtree(item) if item.is_dir() else item.unlink()


# --------------------------------------------------------------------------------------------
# Metrics file
# --------------------------------------------------------------------------------------------
def read_metrics(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        return pd.DataFrame({"step": pd.Series(dtype="int64"), "metric": pd.Series(dtype="str"),
                             "value": pd.Series(dtype="float64")})
    return pd.read_parquet(path)


def write_metrics(rows: list[tuple[int, str, float]], path: str | Path) -> None:
    """Write (step, metric, value) rows atomically, so a kill mid-write leaves the previous file."""
    import pandas as pd

    path = Path(path)
    frame = pd.DataFrame(rows, columns=["step", "metric", "value"]).astype(
        {"step": "int64", "metric": "str", "value": "float64"})
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


# Per-rollout metrics summed into the run's totals (lens.trainer.COST_METRICS and the callback's time/step_s).
TOTALS = ("cost/completions", "cost/completion_tokens", "cost/prompt_tokens", "cost/trained_tokens",
          "time/generation_s", "time/scoring_s", "time/step_s")


def run_totals(rows: list[tuple[int, str, float]]) -> dict[str, float]:
    """{total/<metric>: sum over the run's rollout steps} of TOTALS, from the metrics rows."""
    totals: dict[str, float] = {}
    for _, metric, value in rows:
        if metric in TOTALS:
            totals[f"total/{metric}"] = totals.get(f"total/{metric}", 0.0) + value
    return totals


def _metric_rows(logs: dict[str, Any], step: int) -> list[tuple[int, str, float]]:
    return [(step, key, float(value)) for key, value in logs.items()
            if key not in _RUN_SUMMARY_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)]


def _make_callbacks(run_dir: Path, cfg: RunConfig, plan: BatchPlan, rows: list, tracker):
    from transformers import TrainerCallback

    metrics_path = run_dir / METRICS_FILE

    class RolloutLogger(TrainerCallback):
        """Each log entry (one per rollout step) -> train_metrics.parquet and MLflow, with the step's wall time
        (time/step_s: generation, scoring, the updates, checkpoints); prune old optimizer state."""

        last = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs or _RUN_SUMMARY_KEYS & set(logs):
                return
            step = math.ceil(state.global_step / plan.updates_per_rollout)
            now = time.perf_counter()
            seconds, self.last = now - self.last, now
            new = _metric_rows({**logs, "time/step_s": seconds}, step)
            rows.extend(new)
            write_metrics(rows, metrics_path)
            if tracker is not None:
                tracker.log_metrics({k: v for _, k, v in new}, step)

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                prune_resume_state(args.output_dir, keep=newest)

    return [RolloutLogger()]


# --------------------------------------------------------------------------------------------
# Rollout records
# --------------------------------------------------------------------------------------------
def write_rollout_part(frame, run_dir: str | Path) -> None:
    """One recorded rollout step's rows -> rollouts/step-N.parquet, atomically."""
    parts = Path(run_dir) / ROLLOUT_PARTS
    parts.mkdir(parents=True, exist_ok=True)
    path = parts / f"step-{int(frame['step'].iloc[0]):06d}.parquet"
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


def _rollout_parts(run_dir: str | Path) -> list[tuple[int, Path]]:
    parts = Path(run_dir) / ROLLOUT_PARTS
    if not parts.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in parts.iterdir() if (m := _ROLLOUT_PART_RE.match(p.name)))


def split_rollouts(run_dir: str | Path) -> None:
    """A finished run's rollouts.parquet back into rollouts/step-N.parquet (one row group a step), when the
    run is extended with more rollout steps: the combined file is written again from all parts at its end."""
    import pyarrow.parquet as pq

    combined = Path(run_dir) / ROLLOUTS_FILE
    if not combined.exists():
        return
    records = pq.ParquetFile(combined)
    for i in range(records.num_row_groups):
        frame = records.read_row_group(i).to_pandas()
        for _, part in frame.groupby("step"):
            write_rollout_part(part.reset_index(drop=True), run_dir)
    combined.unlink()


def prune_rollout_parts(run_dir: str | Path, through_step: int) -> None:
    """Drop records of rollout steps after `through_step` (the checkpoint a job resumes from): they
    are generated again, so each row is kept once."""
    for step, path in _rollout_parts(run_dir):
        if step > through_step:
            path.unlink()


def combine_rollout_parts(run_dir: str | Path) -> Path:
    """rollouts/step-N.parquet -> rollouts.parquet (one row group per step, streamed: a paper run's
    records need not fit in memory); an empty table with ROLLOUT_COLUMNS if no step was recorded.
    Called once training reached its final step; with no parts left, an existing file is kept."""
    import pandas as pd
    import pyarrow.parquet as pq

    from lens.rollout import ROLLOUT_COLUMNS

    out = Path(run_dir) / ROLLOUTS_FILE
    tmp = out.with_name(out.name + ".tmp")
    parts = _rollout_parts(run_dir)
    if not parts and out.exists():
        return out  # combined already (the parts are removed only after `done` is written)
    if not parts:
        pd.DataFrame(columns=ROLLOUT_COLUMNS).to_parquet(tmp, index=False)
    else:
        schema = pq.read_schema(parts[0][1])
        with pq.ParquetWriter(tmp, schema) as writer:
            for _, path in parts:
                writer.write_table(pq.read_table(path, schema=schema))
    tmp.replace(out)
    return out


def rollout_table_rows(path: str | Path, max_rows: int = ROLLOUT_TABLE_MAX_ROWS):
    """The newest recorded steps of rollouts.parquet that fit in max_rows (all of a small run)."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if len(frame) <= max_rows:
        return frame
    sizes = frame.groupby("step").size().sort_index(ascending=False).cumsum()
    keep = sizes[sizes <= max_rows].index
    return frame[frame["step"].isin(keep)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Model, data, reward
# --------------------------------------------------------------------------------------------
def _load_model_and_tokenizer(cfg: RunConfig, model_dir: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # auto keeps float32 master weights (bf16 compute comes from training.precision): at lr 3e-7 a
    # bf16 weight would drop most updates (bf16 resolves ~0.4 % steps). bfloat16 trades that for memory.
    dtype = torch.bfloat16 if cfg.model.dtype == "bfloat16" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Llama 3.x ships no pad token; its reserved right-pad token is never generated.
        reserved = "<|finetune_right_pad_id|>"
        tokenizer.pad_token = reserved if reserved in tokenizer.get_vocab() else tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _build_tiny(cfg: RunConfig, problems: list[dict], out_dir: Path) -> Path:
    """The run's initial tiny model, built once (deterministic in the seed) and reused on resume."""
    from lens.tiny import save_tiny

    if not (out_dir / "config.json").exists():
        texts = [p["problem"] for p in problems] + [str(p["answer"]) for p in problems]
        tmp = out_dir.with_name(out_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_tiny(cfg.model.tiny, texts, tmp, seed=cfg.seed)
        tmp.replace(out_dir)
    return out_dir


def _strip_duplicate_bos(prompt: str, tokenizer) -> str:
    # A chat template already writes BOS, and TRL tokenizes prompt strings with special tokens:
    # drop the template's copy so the model sees one BOS (as with TRL's conversational prompts).
    bos = tokenizer.bos_token
    if bos and prompt.startswith(bos) and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]:
        return prompt[len(bos):]
    return prompt


# Special tokens a tokenizer may add around a text (BOS, EOS, a prefix): a bound, not a count.
_ADDED_TOKENS_BOUND = 8


def build_dataset(cfg: RunConfig, problems: list[dict], tokenizer):
    """TRL dataset: plain-string prompts plus the gold `answer` column the reward function reads."""
    from datasets import Dataset

    from lens.data import format_prompt

    limit = cfg.training.max_prompt_tokens
    prompts = [_strip_duplicate_bos(format_prompt(p["problem"], cfg.model.prompt, tokenizer), tokenizer)
               for p in problems]
    # Byte-level and character tokenizers never make more tokens than the text has bytes (merges
    # only join), plus the few special tokens they add: only longer prompts need counting, which
    # saves tokenizing ~24k prompts per job.
    maybe_long = [i for i, prompt in enumerate(prompts) if len(prompt.encode("utf-8")) + _ADDED_TOKENS_BOUND > limit]
    lengths = (dict(zip(maybe_long, map(len, tokenizer([prompts[i] for i in maybe_long]).input_ids), strict=True))
               if maybe_long else {})
    rows = {"prompt": [], "answer": [], "problem_id": []}
    too_long = 0
    for i, (problem, prompt) in enumerate(zip(problems, prompts, strict=True)):
        if lengths.get(i, 0) > limit:
            too_long += 1
            continue
        rows["prompt"].append(prompt)
        rows["answer"].append(str(problem["answer"]))
        rows["problem_id"].append(str(problem["id"]))
    if too_long:
        log.warning("dropped %d of %d training prompts longer than training.max_prompt_tokens (%d)",
                    too_long, len(problems), cfg.training.max_prompt_tokens)
    if len(rows["prompt"]) < cfg.training.prompts_per_rollout:
        raise ConfigError(f"only {len(rows['prompt'])} training prompts, fewer than training.prompts_per_rollout "
                          f"({cfg.training.prompts_per_rollout})")
    return Dataset.from_dict(rows)


def make_reward(timeout_s: float, prompt_style: str = "chat"):
    """TRL reward function: 1.0 if a completion's final answer equals its prompt's gold answer.

    Only the text before the prompt style's stop strings is graded (lens.data.first_answer), as in
    evaluation: a base model's answer to a "Question:" it wrote itself does not count.
    """
    from lens.data import first_answer
    from lens.rewards import grade_batch

    def correct(completions, answer, **kwargs) -> list[float]:
        texts = [first_answer(c, prompt_style) for c in completions]
        return grade_batch(texts, list(answer), timeout_s=timeout_s)

    return correct


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------
def train(cfg: RunConfig, run_dir: str | Path, engine=None, keep_resume_state: bool = False) -> dict:
    """Train (or resume) the run in `run_dir`; returns the contents of the `done` marker.

    `engine`: (accelerate config file, processes) the job must run under (lens.engine; file None:
    torchrun on the CPU), checked once the Trainer has built its Accelerator, before the first step;
    None checks nothing. Once done, no checkpoint keeps resume state, unless `keep_resume_state`: the
    last one keeps it, so that the run can be extended (a config with more rollout_steps resumes it)."""
    run_dir = Path(run_dir)
    done_path = run_dir / DONE_FILE
    if done_path.exists():
        log.info("%s exists: the run is complete", done_path)
        return json.loads(done_path.read_text())

    import torch
    from accelerate import PartialState
    from transformers import set_seed
    from trl import GRPOConfig

    # cpu=True on a CPU: under torchrun the processes join one gloo group now, so the batch plan
    # sees all of them (a plain PartialState() stays single-process there until TrainingArguments
    # starts the group, and the plan would give every process the whole rollout).
    state = PartialState(cpu=not torch.cuda.is_available())
    plan = batch_plan(cfg.training, state.num_processes)  # config errors before any loading

    from lens.data import training_problems
    from lens.tracking import RunTracker
    from lens.trainer import LensGRPOTrainer

    cuda = torch.cuda.is_available()
    if cfg.training.torch_threads:
        torch.set_num_threads(cfg.training.torch_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    if state.is_main_process and not (run_dir / RUN_CONFIG_FILE).exists():
        write_run_config(cfg, run_dir / RUN_CONFIG_FILE)
    checkpoint_dir = run_dir / CHECKPOINTS
    set_seed(cfg.seed)

    # TrainingArguments first: under DeepSpeed ZeRO-3 (zero3_init_flag) from_pretrained then loads
    # the weights already partitioned instead of a full copy per process.
    args = GRPOConfig(**grpo_config_kwargs(cfg, plan, cuda=cuda, output_dir=checkpoint_dir))
    problems, report = training_problems(cfg)
    log.info("training problems: %s", {k: v for k, v in report.items() if k != "dropped_ids"})
    if state.is_main_process:
        run_dir.joinpath(DATA_REPORT_FILE).write_text(json.dumps(report, indent=1) + "\n")
    if cfg.model.path is None:
        model_dir = checkpoint_dir / "checkpoint-0"
        if state.is_main_process:
            _build_tiny(cfg, problems, model_dir)
        state.wait_for_everyone()
    else:
        model_dir = Path(cfg.model.path) if Path(cfg.model.path).exists() else cfg.model.path
    model, tokenizer = _load_model_and_tokenizer(cfg, model_dir)
    dataset = build_dataset(cfg, problems, tokenizer)

    resume = last_checkpoint(checkpoint_dir)
    resume_step = 0
    if resume is not None:
        resume_step = json.loads((resume / "trainer_state.json").read_text())["global_step"]
        log.info("resuming from %s (optimizer step %d)", resume, resume_step)
    # Rows logged after the checkpoint we resume from are logged again: drop them first.
    previous = read_metrics(run_dir / METRICS_FILE)
    rows = [(int(s), str(m), float(v)) for s, m, v in previous.itertuples(index=False)
            if s <= resume_step // plan.updates_per_rollout]
    if state.is_main_process:
        if resume is not None:
            split_rollouts(run_dir)  # a finished run being extended: its records go on as parts
        prune_rollout_parts(run_dir, resume_step // plan.updates_per_rollout)

    tracker = None
    if state.is_main_process:
        tracker = RunTracker(cfg, run_dir)
        tracker.start()
    started = time.time()
    if resume_step >= plan.max_steps:
        # Killed after the final checkpoint but before `done`: the Trainer, resumed from a checkpoint
        # at max_steps, would still take one more optimizer step before it checks the limit.
        log.info("%s is the final step: nothing left to train", resume)
        global_step = resume_step
    else:
        trainer = LensGRPOTrainer(
            model=model,
            processing_class=tokenizer,
            reward_funcs=[make_reward(cfg.evaluation.grade_timeout_s, cfg.model.prompt)],
            args=args,
            train_dataset=dataset,
            callbacks=_make_callbacks(run_dir, cfg, plan, rows, tracker),
            algorithm=cfg.algorithm,
            confidence_from=cfg.training.confidence_from,
            record_sink=lambda frame: write_rollout_part(frame, run_dir),
            records_every=cfg.training.rollout_records_every,
        )
        if engine is not None:
            from lens import engine as engines

            config_file, processes = engine
            try:
                engines.check(engines.expected(config_file, processes), engines.actual(trainer.accelerator.state),
                              config_file)
            except engines.EngineError:
                if tracker is not None:
                    tracker.finish("FAILED")
                raise
        trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
        global_step = trainer.state.global_step
    final = checkpoint_dir / f"checkpoint-{global_step}"
    if global_step != plan.max_steps or (state.is_main_process and not final.exists()):
        raise RuntimeError(f"training stopped at optimizer step {global_step} of {plan.max_steps} "
                           f"or without its checkpoint {final}")
    done = {"rollout_steps": cfg.training.rollout_steps, "global_step": global_step,
            "resumed_from": resume_step, "seconds": round(time.time() - started, 1)}
    if state.is_main_process:
        # Nothing resumes a finished run (unless asked to keep it for an extension): keep the models only.
        prune_resume_state(checkpoint_dir, keep=final if keep_resume_state else None)
        write_metrics(rows, run_dir / METRICS_FILE)
        rollouts = combine_rollout_parts(run_dir)
        if tracker is not None:
            # The run's cost in MLflow's run table: every rollout step's, summed (analysis.summary.run_costs).
            tracker.log_metrics(run_totals(rows), cfg.training.rollout_steps)
            tracker.log_artifact(run_dir / METRICS_FILE)
            tracker.log_artifact(rollouts)
            tracker.log_table(rollout_table_rows(rollouts), "rollouts.json")
            tracker.finish("FINISHED")
        done_path.write_text(json.dumps(done) + "\n")
        shutil.rmtree(run_dir / ROLLOUT_PARTS, ignore_errors=True)  # rollouts.parquet holds them now
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lens.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="resolved run config (YAML)")
    parser.add_argument("--out", required=True, type=Path, help="run directory")
    parser.add_argument("--engine-config", type=Path, default=None,
                        help="the accelerate config the job was launched with: stop before training unless the "
                             "job runs its engine (DeepSpeed and its ZeRO stage, FSDP and its version) on "
                             "--processes processes (lens.engine)")
    parser.add_argument("--processes", type=int, default=None, help="processes the launcher started (with "
                        "--engine-config: default the config file's num_processes; alone: torchrun on the CPU, "
                        "checked as plain DDP on that many processes)")
    parser.add_argument("--keep-resume-state", action="store_true",
                        help="once done, the last checkpoint keeps its optimizer, scheduler, RNG (and ZeRO) state, so "
                             "that the run can be extended: raise rollout_steps in its config.yaml, delete its `done` "
                             "and run again (default: every checkpoint keeps the model only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_run_config(args.config)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    engine = None
    if args.engine_config is not None:
        import yaml

        try:
            processes = args.processes or int(yaml.safe_load(args.engine_config.read_text()).get("num_processes", 1))
        except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as err:
            print(f"engine error: {args.engine_config}: cannot read num_processes ({err})", file=sys.stderr)
            return 2
        engine = (args.engine_config, processes)
    elif args.processes is not None:
        engine = (None, args.processes)
    try:
        done = train(cfg, args.out, engine, keep_resume_state=args.keep_resume_state)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except EngineError as err:
        print(f"engine error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
