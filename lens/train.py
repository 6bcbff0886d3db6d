"""Train one model x algorithm x seed with TRL's GRPOTrainer and lens.trainer's advantages.

    python -m lens.train --config results/runs/{model}/{algo}/seed{s}/config.yaml \
        --out results/runs/{model}/{algo}/seed{s}
    accelerate launch --config_file config/accelerate/zero3.yaml -m lens.train --config FILE --out DIR   # GPUs

Everything comes from the resolved RunConfig: the model (hub id, local path, or a tiny model built
by lens.tiny with a tokenizer trained on the training problems), the training problems
(lens.data.training_problems, decontaminated; prompts from lens.data.format_prompt), the reward
(lens.rewards.grade_batch) and TRL's GRPOConfig, derived from the paper's batch arithmetic by
lens.trl_config (see docs/training.md). The run directory's files while it trains (checkpoints, metrics,
rollout records) are lens.run_files'.

Run directory (`--out`):
    config.yaml               the resolved config (written if absent)
    checkpoints/checkpoint-N  TRL/HF Trainer checkpoints at optimizer step N = rollout step x
                              updates_per_rollout, in Hugging Face format (model + tokenizer);
                              while the run trains only the newest keeps optimizer, scheduler,
                              RNG (and DeepSpeed's global_stepN) state for resuming; none once done.
                              `lens.layout.checkpoint_path(run_dir, step, cfg)` maps a rollout step to its dir.
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
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from lens.config import ConfigError, RunConfig, load_run_config, write_run_config
from lens.engine import EngineError
from lens.layout import (
    CHECKPOINTS,
    DATA_REPORT_FILE,
    DONE_FILE,
    METRICS_FILE,
    ROLLOUT_PARTS,
    RUN_CONFIG_FILE,
)
from lens.run_files import (
    combine_rollout_parts,
    last_checkpoint,
    prune_resume_state,
    prune_rollout_parts,
    read_metrics,
    rollout_table_rows,
    run_totals,
    split_rollouts,
    write_metrics,
    write_rollout_part,
)
from lens.trl_config import BatchPlan, batch_plan, grpo_config_kwargs

log = logging.getLogger(__name__)

# Trainer log entries that summarise the whole run instead of one step.
_RUN_SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
                     "train_loss"}


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
