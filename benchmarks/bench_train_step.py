"""Time per training step: our GRPO vs LENS vs plain TRL GRPOTrainer, same tiny model, data and seed.

    python benchmarks/bench_train_step.py [--reps 5] [--rollouts 4] [--out benchmarks/results/train_step.json]
    python benchmarks/bench_train_step.py --model qwen05b --reps 2 --layouts multi single   # on a GPU: bf16

`--model qwen05b` builds a randomly initialised ~0.5 B-parameter Qwen2 (Qwen2.5-0.5B's shape) and,
on CUDA, trains in bf16 exactly as lens.train would; it adds peak GPU memory per variant.

Two batch layouts, each with the same work per optimizer update (16 completions):
- `multi`: the paper's shape, 4 optimizer updates per rollout (8 prompts x G=8 per rollout, 2 per
  update); TRL computes the old-policy log-probs itself and LENS reuses them;
- `single`: 1 update per rollout (2 prompts x G=8) in one micro-batch; TRL computes no old
  log-probs, so LENS adds one no-grad forward pass after generation and hands it to TRL as the
  old log-probs;
- `single_accum`: the same in 2 micro-batches of 8 (gradient accumulation 2).
The learning rate is 0: the optimizer still steps, but the policy stays the initial one, so
every variant samples exactly the same tokens (same seed) and does the same work apart from what
is being measured; with a moving policy, completion lengths drift apart and swamp the overhead.
Variants run interleaved (a shuffled order in every repetition) so that load from other processes
on the machine hits all of them alike; the first rollout of every run (warm-up) is not counted.
Reports, per layout:
- the CPU time per optimizer step spent in LensGRPOTrainer's own code (everything it adds runs
  inside its `_generate_and_score_completions` override; measured as that method's time minus
  TRL's part of it) and the ratios it implies against TRL's step time: the precise figure;
- end-to-end median CPU and wall seconds per optimizer step (generation included) and their
  per-repetition ratios: a cross-check, noisy on a shared machine (other jobs move even CPU time
  by 10-20 % through cache and core contention);
- the load (`uptime`) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import PrinterCallback, TrainerCallback  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from lens.config import RunConfig, TinyModelConfig, parse  # noqa: E402
from lens.rewards import grade_batch  # noqa: E402
from lens.tiny import build_model, build_tokenizer  # noqa: E402
from lens.trainer import LensGRPOTrainer  # noqa: E402
from lens.trl_config import batch_plan, grpo_config_kwargs  # noqa: E402

TINY = TinyModelConfig(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=384)  # ~1 M parameters
CUDA = torch.cuda.is_available()


def qwen05b(tokenizer, num_layers: int = 24, vocab_size: int = 151936):
    """Randomly initialised Qwen2 with Qwen2.5-0.5B's shape (~0.5 B parameters at 24 layers)."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(vocab_size=max(vocab_size, len(tokenizer)), hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=num_layers,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model
LAYOUTS = {  # prompts_per_rollout, updates_per_rollout, prompts_per_update, micro_batch_size
    "multi": (8, 4, 2, None),
    "single": (2, 1, 2, None),
    "single_accum": (2, 1, 2, 8),
}
VARIANTS = ("ours_grpo", "ours_lens", "trl_grpo")


def _problems(n: int = 64) -> list[dict]:
    rng = random.Random(0)
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 99), rng.randint(1, 99)
        out.append({"prompt": f"<|user|>What is {a} + {b}? Put the answer in \\boxed{{}}.\n<|assistant|>",
                    "answer": str(a + b)})
    return out


def correct(completions, answer, **kwargs):
    return grade_batch(list(completions), list(answer), workers=1)


class StepClock(TrainerCallback):
    """Wall and CPU time stamps at optimizer-step boundaries.

    CPU time of this process (torch on one thread) is what our code adds; wall time on a shared
    2-core machine also carries everyone else's load, so it is reported but not used for ratios.
    """

    def __init__(self):
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def _stamp(self):
        if CUDA:
            torch.cuda.synchronize()
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def on_step_begin(self, args, state, control, **kwargs):
        if not self.wall:
            self._stamp()

    def on_step_end(self, args, state, control, **kwargs):
        self._stamp()


def run_once(variant: str, layout: str, rollouts: int, tokenizer, make_model, dataset, max_new_tokens: int,
             out_dir: Path) -> tuple[float, float, float, float]:
    """(CPU, wall) seconds per optimizer step over rollouts 2..n of one fresh run, the CPU seconds
    per optimizer step spent in LensGRPOTrainer's own code (0 for plain TRL), peak GPU GiB (0 on CPU)."""
    per_rollout, updates, per_update, micro = LAYOUTS[layout]
    algo = "lens" if variant == "ours_lens" else "grpo"
    cfg = parse(RunConfig, {
        "model": {"name": "tiny", "tiny": {}}, "algorithm": {"name": algo},
        "training": {"prompts_per_rollout": per_rollout, "num_generations": 8, "updates_per_rollout": updates,
                     "prompts_per_update": per_update, "micro_batch_size": micro, "rollout_steps": rollouts,
                     "max_new_tokens": max_new_tokens,
                     "learning_rate": 0.0},
    })
    kwargs = grpo_config_kwargs(cfg, batch_plan(cfg.training, 1), cuda=CUDA, output_dir=out_dir)
    kwargs.update(save_strategy="no", seed=0, data_seed=0)
    model = make_model()
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock()
    common = dict(model=model, processing_class=tokenizer, reward_funcs=[correct], train_dataset=dataset,
                  callbacks=[clock])
    torch.manual_seed(0)
    if variant == "trl_grpo":
        kwargs["scale_rewards"] = "group"  # TRL's own GRPO normalisation
        trainer = GRPOTrainer(args=GRPOConfig(**kwargs), **common)
    else:
        trainer = LensGRPOTrainer(args=GRPOConfig(**kwargs), algorithm=cfg.algorithm, **common)
    trainer.remove_callback(PrinterCallback)
    own = _time_own_code(trainer) if variant != "trl_grpo" else None
    try:
        trainer.train()
    finally:
        if own is not None:
            own["restore"]()
    # Drop the first rollout (warm-up): count from the end of its last update.
    n = len(clock.wall) - 1 - updates
    cpu = (clock.cpu[-1] - clock.cpu[updates]) / n
    wall = (clock.wall[-1] - clock.wall[updates]) / n
    overhead = (own["outer"] - own["inner"]) / (len(clock.wall) - 1) if own is not None else 0.0
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else 0.0
    del trainer, model
    return cpu, wall, overhead, peak


def _time_own_code(trainer) -> dict:
    """CPU time inside LensGRPOTrainer._generate_and_score_completions minus TRL's part of it.

    Everything the subclass adds per rollout (confidence, gathers, advantages, metrics and, with
    one update per rollout, the extra forward pass) runs inside that override, so the difference
    is its whole cost, measured directly instead of as a small difference of two noisy step times.
    Patched after the trainer is built (its TRL contract check reads the original methods).
    """
    acc = {"inner": 0.0, "outer": 0.0}
    trl_method = GRPOTrainer._generate_and_score_completions
    own_method = trainer._generate_and_score_completions  # bound LensGRPOTrainer method

    def inner(self, inputs):
        start = time.process_time()
        try:
            return trl_method(self, inputs)
        finally:
            acc["inner"] += time.process_time() - start

    def outer(inputs):
        start = time.process_time()
        try:
            return own_method(inputs)
        finally:
            acc["outer"] += time.process_time() - start

    def restore():
        GRPOTrainer._generate_and_score_completions = trl_method
        del trainer._generate_and_score_completions

    GRPOTrainer._generate_and_score_completions = inner  # what super() resolves to
    trainer._generate_and_score_completions = outer
    acc["restore"] = restore
    return acc


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rollouts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS))
    parser.add_argument("--model", choices=["tiny", "qwen05b"], default="tiny")
    parser.add_argument("--qwen-layers", type=int, default=24, help="fewer for a CPU smoke run of --model qwen05b")
    parser.add_argument("--qwen-vocab", type=int, default=151936, help="smaller for a CPU smoke run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import transformers

    transformers.logging.set_verbosity_error()
    problems = _problems()
    tokenizer = build_tokenizer(TINY, [p["prompt"] for p in problems])
    if args.model == "tiny":
        state_dict = build_model(TINY, tokenizer, seed=0).state_dict()

        def make_model():
            model = build_model(TINY, tokenizer, seed=0)
            model.load_state_dict(state_dict)
            return model
    else:
        def make_model():
            return qwen05b(tokenizer, args.qwen_layers, args.qwen_vocab)
    probe = make_model()
    n_params = sum(p.numel() for p in probe.parameters())
    del probe
    dataset = Dataset.from_dict({"prompt": [p["prompt"] for p in problems], "answer": [p["answer"] for p in problems]})
    load_before = uptime()
    times: dict[str, dict[str, list[float]]] = {layout: {v: [] for v in VARIANTS} for layout in args.layouts}
    walls: dict[str, dict[str, list[float]]] = {layout: {v: [] for v in VARIANTS} for layout in args.layouts}
    owns: dict[str, dict[str, list[float]]] = {layout: {v: [] for v in VARIANTS} for layout in args.layouts}
    peaks: dict[str, dict[str, list[float]]] = {layout: {v: [] for v in VARIANTS} for layout in args.layouts}
    rng = random.Random(0)
    out_dir = Path("/tmp") / "lens-bench-train-step"
    for rep in range(args.reps):
        for layout in args.layouts:
            order = list(VARIANTS)
            rng.shuffle(order)
            for variant in order:
                cpu, wall, own, peak = run_once(variant, layout, args.rollouts, tokenizer, make_model, dataset,
                                                args.max_new_tokens, out_dir)
                times[layout][variant].append(cpu)
                walls[layout][variant].append(wall)
                owns[layout][variant].append(own)
                peaks[layout][variant].append(peak)
                print(f"rep {rep} {layout:6s} {variant:9s} cpu {cpu * 1000:7.1f} wall {wall * 1000:7.1f} "
                      f"own code {own * 1000:6.2f} ms/step peak {peak:.2f} GiB", flush=True)
    load_after = uptime()
    report = {"model": args.model, "device": torch.cuda.get_device_name() if CUDA else "cpu", "params": n_params,
              "reps": args.reps, "rollouts_per_run": args.rollouts,
              "max_new_tokens": args.max_new_tokens, "threads": args.threads,
              "load_before": load_before, "load_after": load_after, "layouts": {}}
    for layout, by_variant in times.items():
        med = {v: statistics.median(t) for v, t in by_variant.items()}
        lens_vs_grpo = statistics.median(a / b for a, b in zip(by_variant["ours_lens"], by_variant["ours_grpo"],
                                                               strict=True))
        grpo_vs_trl = statistics.median(a / b for a, b in zip(by_variant["ours_grpo"], by_variant["trl_grpo"],
                                                              strict=True))
        med_wall = {v: statistics.median(t) for v, t in walls[layout].items()}
        med_own = {v: statistics.median(t) for v, t in owns[layout].items()}
        # Step cost with our code = TRL's step + our own code; TRL's step from the plain-TRL runs.
        base = med["trl_grpo"]
        direct = {"lens_over_grpo": (base + med_own["ours_lens"]) / (base + med_own["ours_grpo"]),
                  "ours_grpo_over_trl": (base + med_own["ours_grpo"]) / base}
        print(f"{layout}: own code CPU ms/step grpo {med_own['ours_grpo'] * 1000:.2f}, "
              f"lens {med_own['ours_lens'] * 1000:.2f} (TRL step {base * 1000:.1f} ms) -> "
              f"lens/grpo {direct['lens_over_grpo']:.4f}, ours grpo/trl {direct['ours_grpo_over_trl']:.4f}")
        if CUDA:
            wall_ratio = statistics.median(a / b
                                           for a, b in zip(walls[layout]["ours_lens"], walls[layout]["ours_grpo"],
                                                           strict=True))
            print(f"{layout}: GPU wall s/step " + ", ".join(f"{v} {t:.4f}" for v, t in med_wall.items())
                  + f" | lens/grpo {wall_ratio:.3f} | peak GiB "
                  + ", ".join(f"{v} {max(t):.2f}" for v, t in peaks[layout].items()))
        report["layouts"][layout] = {"median_cpu_s_per_step": med, "median_wall_s_per_step": med_wall,
                                     "peak_gib": {v: max(t) for v, t in peaks[layout].items()},
                                     "median_own_code_cpu_s_per_step": med_own, "direct_ratios": direct,
                                     "lens_over_grpo_cpu": lens_vs_grpo, "ours_grpo_over_trl_cpu": grpo_vs_trl,
                                     "raw_cpu_s_per_step": by_variant, "raw_wall_s_per_step": walls[layout]}
        print(f"{layout}: median CPU s/step " + ", ".join(f"{v} {t:.4f}" for v, t in med.items())
              + " | wall " + ", ".join(f"{v} {t:.4f}" for v, t in med_wall.items())
              + f" | CPU ratios: lens/grpo {lens_vs_grpo:.3f}, ours grpo/trl {grpo_vs_trl:.3f}")
    print(f"load before: {load_before}\nload after:  {load_after}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
