"""The phases of benchmarks/gpu_check.sh: a paper-shaped GRPO and LENS run on one GPU, timed.

    python benchmarks/gpu_check.py prepare  --work DIR [--small]   data, model, run configs
    python benchmarks/gpu_check.py train    --work DIR --algo grpo  python -m lens.train, timed
    python benchmarks/gpu_check.py evaluate --work DIR              python -m lens.evaluate, timed
    python benchmarks/gpu_check.py zero3    --work DIR              accelerate launch with ZeRO-3: train,
                                                                    resume, evaluate (small mode: engine check)
    python benchmarks/gpu_check.py summary  --work DIR [--out OUT]  the printed figures (+ OUT/*.json)

`prepare` writes, under DIR:
- `data/{train,test}.jsonl`: MATH-style problems in lens.data's schema (levelled arithmetic from
  lens.synthetic, disjoint splits), read through the `math` dataset reader like MATH itself;
- `model/`: a randomly initialised model of Qwen2.5-3B's exact architecture (QWEN25_3B, the
  published config.json), saved in bf16 like the hub checkpoint, with a byte-level BPE tokenizer
  built here by lens.tiny with Qwen2.5's special tokens (family qwen2: no BOS, <|endoftext|> as
  EOS and pad); nothing is downloaded. The embedding keeps Qwen's 151,936 rows although the
  tokenizer has far fewer tokens (the real checkpoint's rows also exceed its tokenizer's 151,665):
  a random model samples almost only ids the tokenizer decodes to nothing, so responses run to
  max_new_tokens and every rollout costs the same, the worst case for a given length;
- `{grpo,lens}/config.yaml`: resolved run configs (lens.config.RunConfig) in the paper's shape for
  Qwen2.5-3B (plain prompt, dtype auto, bf16 autocast, gradient checkpointing, several updates
  per rollout with gradient accumulation) but transformers rollouts and small sizes (SIZES).
- `model-zero3/` (full mode): a randomly initialised Qwen2 of Qwen2.5-0.5B's width (hidden 896,
  14/2 heads, MLP 4864, the 151,936-row tied embedding) with 4 layers instead of 24 (0.20 B
  parameters), and `zero3/{first,resumed}/config.yaml`: LENS run configs for the ZeRO-3 phase
  (ZERO3_SIZES; the first ends at its checkpoint after 2 rollout steps, the resumed one goes on
  to 3).
`--small` swaps the models for a tiny Qwen2 of the same code path (GQA, tied embeddings, padded
vocabulary) and shrinks the sizes, so the whole check runs on a CPU in one to two minutes.

`train` runs lens.train's CLI entry point in this process (so that it can read the GPU's peak
memory) with one extra Trainer callback that stamps the end of every rollout step; it writes
`{algo}/gpu_check.json`: seconds per rollout step (model loading and checkpoint saving excluded),
peak memory, the `done` marker. `evaluate` likewise runs lens.evaluate's entry point on the LENS
run's final checkpoint.

`zero3` runs the multi-GPU recipe's launcher on one GPU, as subprocesses (`cmd_zero3`):
`accelerate launch --num_processes 1 --config_file config/accelerate/zero3.yaml -m lens.train ...
--engine-config config/accelerate/zero3.yaml --processes 1` for 2 rollout steps (the job stops
unless it runs DeepSpeed ZeRO-3; its checkpoint holds DeepSpeed's ZeRO states in global_stepN/ and,
through zero3.yaml's `zero3_save_16bit_model`, i.e. DeepSpeed's
`stage3_gather_16bit_weights_on_model_save`, the consolidated 16-bit model.safetensors); the same
command again on a run directory holding that checkpoint and a config of 3 rollout steps (lens.train
resumes from it: `resumed_from` 4); then `python -m lens.evaluate` on CUDA from the resumed run's
final checkpoint. It writes `zero3.json`. In small mode (a CPU, where accelerate drops DeepSpeed)
it runs the same command with `--cpu` and passes only if the engine check stops the job with exit
code 2 and both engines named: ZeRO-3 itself is not exercised there.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

# The GPU machine has no install of this package: gpu_check.sh puts the checkout (REPO) on PYTHONPATH, which
# is how the `lens` imports below, and the jobs this script starts, find it. Elsewhere it is installed.
REPO = Path(__file__).resolve().parents[1]

ALGOS = ("grpo", "lens")
LIGHT_ENV = "GPU_CHECK_LIGHT_CHECKPOINT"  # "1": model-only final checkpoints (gpu_check.sh sets it when disk is short)
MODEL_NAME = "qwen25_3b_random"

# Qwen/Qwen2.5-3B's config.json (the base model of config/paper.yaml). Token ids come from the
# local tokenizer instead of Qwen's; sliding_window is unused (use_sliding_window false).
QWEN25_3B = dict(
    hidden_size=2048,
    intermediate_size=11008,
    num_hidden_layers=36,
    num_attention_heads=16,
    num_key_value_heads=2,
    vocab_size=151936,
    max_position_embeddings=32768,
    max_window_layers=36,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    tie_word_embeddings=True,
    use_sliding_window=False,
    attention_dropout=0.0,
    initializer_range=0.02,
)
# The same code path on a CPU: GQA, tied embeddings, an embedding larger than the tokenizer.
TINY_QWEN2 = {**QWEN25_3B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_window_layers": 2, "vocab_size": 1024}
# The ZeRO-3 phase's model: Qwen/Qwen2.5-0.5B's width (hidden 896, 14 query / 2 KV heads, MLP 4864,
# Qwen's 151,936-row tied embedding) with 4 of its 24 layers: 0.20 B parameters, so three processes
# (train, resume, evaluate) and two checkpoints with ZeRO state (~3 GB each) fit in about 2 minutes.
QWEN2_ZERO3 = {**QWEN25_3B, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 4,
               "num_attention_heads": 14, "num_key_value_heads": 2, "max_window_layers": 4}

# Run sizes. An update is prompts_per_update x G completions, run in micro-batches of
# micro_batch_size (gradient accumulation = update / micro-batch).
SIZES = {
    "full": dict(
        training=dict(prompts_per_rollout=16, num_generations=8, updates_per_rollout=2, prompts_per_update=8,
                      micro_batch_size=16, rollout_steps=3, max_new_tokens=256, max_prompt_tokens=256),
        evaluation=dict(limit=16, n_samples=4, max_new_tokens=256, batch_size=16, pass_k=[1, 2, 4]),
        problems=dict(train=256, test=64),
    ),
    "small": dict(
        training=dict(prompts_per_rollout=4, num_generations=4, updates_per_rollout=2, prompts_per_update=2,
                      micro_batch_size=4, rollout_steps=2, max_new_tokens=16, max_prompt_tokens=128),
        evaluation=dict(limit=4, n_samples=2, max_new_tokens=16, batch_size=4, pass_k=[1, 2]),
        problems=dict(train=64, test=16),
    ),
}
# The ZeRO-3 phase (LENS): 2 rollout steps ending at a checkpoint (save_every 2), resumed to 3; each
# update of 4 prompts x 4 in 2 micro-batches of 8 (gradient accumulation under DeepSpeed).
ZERO3_SIZES = {
    "full": dict(
        training=dict(prompts_per_rollout=8, num_generations=4, updates_per_rollout=2, prompts_per_update=4,
                      micro_batch_size=8, rollout_steps=2, max_new_tokens=64, max_prompt_tokens=256),
        evaluation=dict(limit=8, n_samples=2, max_new_tokens=64, batch_size=8, pass_k=[1, 2]),
    ),
    "small": dict(
        training=dict(prompts_per_rollout=4, num_generations=4, updates_per_rollout=2, prompts_per_update=2,
                      micro_batch_size=4, rollout_steps=2, max_new_tokens=16, max_prompt_tokens=128),
        evaluation=dict(limit=4, n_samples=2, max_new_tokens=16, batch_size=4, pass_k=[1, 2]),
    ),
}
ZERO3_RESUMED_STEPS = 3  # the resumed run's rollout_steps (the first run's is ZERO3_SIZES' rollout_steps)
ZERO3_ACCELERATE = "config/accelerate/zero3.yaml"  # relative to the repository (the subprocesses' cwd)
ZERO3_NEED_GIB = 8  # the ZeRO-3 phase's checkpoints (2 x ~3 GB) and its model


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def _cuda():
    import torch

    return torch if torch.cuda.is_available() else None


# --------------------------------------------------------------------------------------------
# prepare
# --------------------------------------------------------------------------------------------
def write_problems(data_dir: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, int]:
    """MATH-schema train/test JSONL of levelled arithmetic problems; the splits share no problem."""
    from lens.synthetic import LEVELS, enumerate_level

    pool = [{k: v for k, v in p.items() if k != "solution"} for level in LEVELS for p in enumerate_level(level)]
    random.Random(seed).shuffle(pool)
    if n_train + n_test > len(pool):
        raise ValueError(f"only {len(pool)} distinct problems for {n_train} + {n_test}")
    data_dir.mkdir(parents=True, exist_ok=True)
    splits = {"test": pool[:n_test], "train": pool[n_test:n_test + n_train]}
    for name, rows in splits.items():
        (data_dir / f"{name}.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return {k: len(v) for k, v in splits.items()}


def build_model(model_dir: Path, texts: list[str], small: bool, seed: int = 0, arch: dict | None = None) -> dict:
    """Random Qwen2.5-3B-architecture model (bf16 on CUDA, as the hub checkpoint) + local BPE tokenizer.
    `arch` overrides the architecture (the ZeRO-3 phase's QWEN2_ZERO3)."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from lens.config import TinyModelConfig
    from lens.tiny import build_tokenizer

    if arch is None:
        arch = TINY_QWEN2 if small else QWEN25_3B
    # Qwen2.5's special tokens and prompt path: no BOS, <|endoftext|> ends a response and pads
    tokenizer = build_tokenizer(TinyModelConfig(arch="qwen2", tokenizer="bpe", vocab_size=2048, family="qwen2"), texts)
    if len(tokenizer) > arch["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the embedding's {arch['vocab_size']}")
    config = Qwen2Config(**arch, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(seed)
    with torch.device("cuda" if cuda else "cpu"):  # initialising 3 B parameters on the GPU takes seconds
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):  # as lens.tiny.build_model
        setattr(model.generation_config, key, getattr(tokenizer, key))
    tmp = model_dir.with_name(model_dir.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(tmp)
    model.save_pretrained(tmp)
    tmp.replace(model_dir)
    return {"parameters": sum(p.numel() for p in model.parameters()), "tokenizer_tokens": len(tokenizer),
            "saved_dtype": str(dtype).removeprefix("torch."), **{k: arch[k] for k in sorted(arch)}}


def run_config(work: Path, algo: str, small: bool, *, sizes: dict | None = None, model_dir: Path | None = None,
               rollout_steps: int | None = None, save_every: int | None = None):
    """The resolved run config of one algorithm (lens.config.RunConfig, validated). The keywords are
    the ZeRO-3 phase's: other sizes and model, rollout_steps and save_every set apart."""
    from lens.config import RunConfig, parse

    sizes = sizes or SIZES["small" if small else "full"]
    t, ev = dict(sizes["training"]), dict(sizes["evaluation"])
    if rollout_steps is not None:
        t["rollout_steps"] = rollout_steps
    limit = ev.pop("limit")
    raw = {
        "model": {"name": MODEL_NAME, "path": str(model_dir or work / "model"), "prompt": "plain", "dtype": "auto"},
        "algorithm": {"name": algo, **({"alpha": 0.25} if algo == "lens" else {}), "eps": 1e-6, "std": "sample"},
        "seed": 0,
        "data": {"train": [{"name": "math", "path": str(work / "data"), "split": "train"}], "decontaminate": True},
        "training": {
            **t, "learning_rate": 1e-6, "weight_decay": 0.0, "clip_eps": 0.2, "kl_beta": 0.0, "temperature": 1.0,
            "top_p": 1.0, "save_every": save_every or t["rollout_steps"], "engine": "transformers",
            "gradient_checkpointing": True,
            "precision": "auto", "torch_threads": 2 if small else None,
        },
        "evaluation": {
            "benchmarks": [{"name": "math", "path": str(work / "data"), "split": "test", "limit": limit}],
            **ev, "temperature": 1.0, "top_p": 1.0, "engine": "transformers", "grade_timeout_s": 5.0,
            "every": t["rollout_steps"], "torch_threads": 2 if small else None,
        },
        "tracking": {"uri": None, "experiment": "lens-gpu-check"},
    }
    return parse(RunConfig, raw, source=f"gpu_check ({algo})")


def zero3_run_configs(work: Path, small: bool) -> dict:
    """The ZeRO-3 phase's LENS run configs: `first` (2 rollout steps, its only checkpoint the last)
    and `resumed` (the same run to 3 steps), on model-zero3/ (small mode: the tiny model/)."""
    sizes = ZERO3_SIZES["small" if small else "full"]
    first = sizes["training"]["rollout_steps"]
    model_dir = work / ("model" if small else "model-zero3")
    return {name: run_config(work, "lens", small, sizes=sizes, model_dir=model_dir, rollout_steps=steps,
                             save_every=first)
            for name, steps in (("first", first), ("resumed", ZERO3_RESUMED_STEPS))}


DETERMINISM_RUNS = ("first", "again")


def determinism_run_config(work: Path, small: bool):
    """The determinism phase's GRPO run: the ZeRO-3 phase's smallest model and sizes, 2 rollout steps, both
    recorded (rollout_records_every 1), one process without DeepSpeed."""
    sizes = ZERO3_SIZES["small" if small else "full"]
    cfg = run_config(work, "grpo", small, sizes=sizes, model_dir=work / ("model" if small else "model-zero3"),
                     rollout_steps=2, save_every=2)
    import dataclasses

    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, rollout_records_every=1))


def rollouts_match(first: Path, again: Path) -> dict:
    """Whether two runs' rollouts.parquet hold the same prompts and completions, step by step."""
    import pandas as pd

    a, b = (pd.read_parquet(p).sort_values(["step", "group", "sample_idx"]).reset_index(drop=True)
            for p in (first, again))
    steps = {}
    for step in sorted(set(a["step"]) | set(b["step"])):
        x, y = a[a["step"] == step], b[b["step"] == step]
        same = (len(x) == len(y) and x["problem_id"].tolist() == y["problem_id"].tolist())
        equal = sum(p == q for p, q in zip(x["completion"], y["completion"], strict=True)) if same else 0
        steps[int(step)] = {"completions": int(len(x)), "identical": int(equal), "same_prompts": bool(same)}
    return {"steps": steps, "identical": all(v["same_prompts"] and v["identical"] == v["completions"]
                                             for v in steps.values())}


def vllm_kv_cache(model_dir: Path, utilization: float = 0.3) -> dict:
    """The KV cache vLLM reserves for `model_dir` at the paper's memory share, where vLLM is installed."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return {"available": False}
    try:
        import vllm

        llm = vllm.LLM(model=str(model_dir), gpu_memory_utilization=utilization, seed=0)
        cache = llm.llm_engine.vllm_config.cache_config
        return {"available": True, "gpu_memory_utilization": utilization, "num_gpu_blocks": cache.num_gpu_blocks,
                "block_size": cache.block_size, "tokens": cache.num_gpu_blocks * cache.block_size}
    except Exception as err:  # noqa: BLE001 - a report line, not a crash: any vLLM failure is the finding
        return {"available": True, "error": f"{type(err).__name__}: {err}"}


def cmd_determinism(args) -> int:
    """One seed twice (GRPO, 2 rollout steps, one process): do the two runs sample the same rollouts? On a
    CPU they are bit-identical; on a GPU, kernels that are not deterministic may make step 2 (after an
    update) differ while step 1 (the same start model) matches. Then vLLM's KV cache, where vLLM exists."""
    work = args.work
    small = json.loads((work / "prepare.json").read_text())["mode"] == "small"
    runs = {}
    for name in DETERMINISM_RUNS:
        run_dir = work / "determinism" / name
        cmd = [sys.executable, "-m", "lens.train", "--config", str(run_dir / "config.yaml"), "--out", str(run_dir)]
        rc, output, seconds = _run_logged(cmd, f"determinism/{name}")
        if rc != 0:
            _write_json(work / "determinism.json", {"error": f"{name} run exited {rc}"})
            return rc
        runs[name] = seconds
    result = {"seconds": runs, **rollouts_match(*(work / "determinism" / n / "rollouts.parquet"
                                                    for n in DETERMINISM_RUNS))}
    result["vllm_kv_cache"] = vllm_kv_cache(work / ("model" if small else "model-zero3"))
    _write_json(work / "determinism.json", result)
    print(json.dumps(result))
    return 0


def determinism_lines(det: dict | None) -> list[str]:
    """The determinism phase's lines of the summary, and what this check cannot cover."""
    lines = []
    if det is None:
        lines.append("determinism: not run")
    elif "error" in det:
        lines.append(f"determinism: FAILED: {det['error']}")
    else:
        per_step = "; ".join(f"step {k}: {v['identical']}/{v['completions']} completions identical"
                             for k, v in det["steps"].items())
        lines.append(f"determinism: one seed twice: rollouts {'MATCH' if det['identical'] else 'DIFFER'} ({per_step})")
        kv = det.get("vllm_kv_cache") or {}
        if kv.get("tokens"):
            lines.append(f"vLLM KV cache at gpu_memory_utilization {kv['gpu_memory_utilization']}: "
                         f"{kv['num_gpu_blocks']} blocks x {kv['block_size']} = {kv['tokens']:,} tokens")
        elif kv.get("error"):
            lines.append(f"vLLM KV cache: FAILED: {kv['error']}")
    lines.append("not covered here: vLLM unless installed (the lent machines cannot install it: rollouts and "
                 "evaluation ran on transformers' generate, so vLLM's seeds, KV cache and colocated memory share are "
                 "unchecked), and several ranks (one GPU: no NCCL, no ZeRO-3 sharding across devices)")
    return lines


def cmd_prepare(args) -> int:
    import torch

    from lens.config import write_run_config

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, device: {torch.cuda.get_device_name() if cuda else 'cpu'}")
    if not cuda and not args.small:
        print("no CUDA device: run the small mode (--small, GPU_CHECK_SMALL=1) on a CPU", file=sys.stderr)
        return 3
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    sizes = SIZES["small" if args.small else "full"]
    counts = write_problems(work / "data", sizes["problems"]["train"], sizes["problems"]["test"])
    texts = [json.loads(line)["problem"] for line in (work / "data" / "train.jsonl").read_text().splitlines()]
    start = time.perf_counter()
    model = build_model(work / "model", texts, args.small) if not (work / "model" / "config.json").exists() else None
    zero3_model = None
    if not args.small and not (work / "model-zero3" / "config.json").exists():
        zero3_model = build_model(work / "model-zero3", texts, False, arch=QWEN2_ZERO3)
    for algo in ALGOS:
        write_run_config(run_config(work, algo, args.small), work / algo / "config.yaml")
    for name, cfg in zero3_run_configs(work, args.small).items():
        write_run_config(cfg, work / "zero3" / name / "config.yaml")
    for name in DETERMINISM_RUNS:
        write_run_config(determinism_run_config(work, args.small), work / "determinism" / name / "config.yaml")
    info = {"mode": "small" if args.small else "full", "problems": counts, "model": model,
            "zero3_model": zero3_model, "build_seconds": round(time.perf_counter() - start, 1)}
    _write_json(work / "prepare.json", info)
    print(json.dumps(info))
    return 0


# --------------------------------------------------------------------------------------------
# train / evaluate
# --------------------------------------------------------------------------------------------
def _timed_callbacks(stamps: list):
    """lens.train's callbacks plus one that stamps the end of every rollout step (GPU synchronised)."""
    from transformers import TrainerCallback

    import lens.train as lt

    original = lt._make_callbacks

    def make(run_dir, cfg, plan, rows, tracker):
        class RolloutTimer(TrainerCallback):
            def _stamp(self, step):
                torch = _cuda()
                if torch is not None:
                    torch.cuda.synchronize()
                mem = torch.cuda.max_memory_allocated() if torch is not None else None
                stamps.append({"global_step": step, "t": time.perf_counter(), "max_allocated": mem})

            def on_train_begin(self, args, state, control, **kwargs):
                self._stamp(state.global_step)

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step % plan.updates_per_rollout == 0:
                    self._stamp(state.global_step)

        return [RolloutTimer(), *original(run_dir, cfg, plan, rows, tracker)]

    lt._make_callbacks = make


def _light_checkpoints() -> None:
    """Final checkpoint without optimizer state (12 instead of 37 GB at 3 B): for a machine short of disk."""
    import lens.train as lt

    original = lt.grpo_config_kwargs

    def kwargs(*a, **kw):
        return {**original(*a, **kw), "save_only_model": True}

    lt.grpo_config_kwargs = kwargs


def cmd_train(args) -> int:
    import lens.train as lt

    torch = _cuda()
    run_dir = args.work / args.algo
    if (run_dir / lt.DONE_FILE).exists():
        raise SystemExit(f"{run_dir} holds a finished run; start the check with a fresh work directory")
    stamps: list[dict] = []
    _timed_callbacks(stamps)
    light = os.environ.get(LIGHT_ENV) == "1"
    if light:
        _light_checkpoints()
    started = time.perf_counter()
    rc = lt.main(["--config", str(run_dir / "config.yaml"), "--out", str(run_dir)])
    total = time.perf_counter() - started
    if rc != 0:
        return rc
    if len(stamps) < 2:
        raise SystemExit(f"no rollout step was timed ({len(stamps)} stamps)")
    steps = [round(b["t"] - a["t"], 3) for a, b in itertools.pairwise(stamps)]
    cfg = lt.load_run_config(run_dir / "config.yaml")
    metrics = lt.read_metrics(run_dir / lt.METRICS_FILE)
    mean_len = metrics[metrics.metric == "completions/mean_length"].sort_values("step")["value"].tolist()
    n_completions = cfg.training.prompts_per_rollout * cfg.training.num_generations
    result = {
        "algo": args.algo,
        "device": torch.cuda.get_device_name() if torch is not None else "cpu",
        "rollout_step_seconds": steps,
        # the first rollout step also pays for CUDA/cuBLAS warm-up and allocator growth
        "steady_step_seconds": round(statistics.mean(steps[1:] if len(steps) > 1 else steps), 3),
        "completions_per_rollout": n_completions,
        "completion_mean_length": mean_len,
        # completion tokens sampled and trained on per second of steady rollout steps
        "completion_tokens_per_second": round(n_completions * statistics.mean(mean_len[1:] or mean_len)
                                              / statistics.mean(steps[1:] or steps), 1) if mean_len else None,
        "train_seconds": round(stamps[-1]["t"] - stamps[0]["t"], 1),
        # lens.train.main before the first step (config, data, model loading, Trainer set-up) and
        # after the last (the final checkpoint with optimizer state, the done marker)
        "setup_seconds": round(stamps[0]["t"] - started, 1),
        "save_seconds": round(started + total - stamps[-1]["t"], 1),
        "light_checkpoint": light,  # the final checkpoint left out the optimizer state
        "done": json.loads((run_dir / lt.DONE_FILE).read_text()),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch is not None else None,
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2) if torch is not None else None,
    }
    _write_json(run_dir / "gpu_check.json", result)
    print(json.dumps(result))
    if not args.keep_checkpoints and args.algo != "lens":
        # A 3 B model's checkpoint with AdamW state is ~37 GB: keep only the evaluated run's.
        import shutil

        shutil.rmtree(run_dir / lt.CHECKPOINTS, ignore_errors=True)
    return 0


def final_checkpoint(work: Path) -> Path:
    import lens.train as lt
    from lens import layout

    cfg = lt.load_run_config(work / "lens" / "config.yaml")
    return layout.checkpoint_path(work / "lens", cfg.training.rollout_steps, cfg)


def cmd_evaluate(args) -> int:
    import lens.evaluate as le

    torch = _cuda()
    out = args.work / "eval"
    started = time.perf_counter()
    rc = le.main(["--config", str(args.work / "lens" / "config.yaml"), "--out", str(out),
                  "--checkpoint", str(final_checkpoint(args.work))])
    seconds = time.perf_counter() - started
    if rc != 0:
        return rc
    summary = json.loads((out / "summary.json").read_text())
    result = {
        "seconds": round(seconds, 1),  # model loading included
        "device": "cuda" if torch is not None else "cpu",
        "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str))},
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch is not None else None,
    }
    _write_json(args.work / "eval.json", result)
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# zero3
# --------------------------------------------------------------------------------------------
# lens.engine's message: "<file> asks for DEEPSPEED ZeRO-3 on 1 process(es), but this job runs <engine>: ..."
_ENGINE_ERROR_RE = re.compile(r"engine error: (?P<file>\S+) asks for (?P<want>DEEPSPEED ZeRO-3 on \d+ process\(es\)), "
                              r"but this job runs (?P<got>.+? on \d+ process\(es\))")


def zero3_command(run_dir: Path, small: bool, keep_resume_state: bool = False) -> list[str]:
    """`accelerate launch` of the multi-GPU recipe on one process (module form, so that the carried
    packages on PYTHONPATH and this interpreter are the ones used). Small mode adds --cpu: without
    DeepSpeed installed accelerate's DeepSpeed launcher would stop at its import before lens.train
    starts; with --cpu it silently runs a plain process, the fallback lens.engine exists to catch.
    `keep_resume_state`: the finished run's last checkpoint keeps its ZeRO state (the first run's,
    which the second extends)."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
            "--config_file", ZERO3_ACCELERATE, *(["--cpu"] if small else []),
            "-m", "lens.train", "--config", str(run_dir / "config.yaml"), "--out", str(run_dir),
            "--engine-config", ZERO3_ACCELERATE, "--processes", "1",
            *(["--keep-resume-state"] if keep_resume_state else [])]


def _run_logged(cmd: list[str], name: str) -> tuple[int, str, float]:
    """Run cmd from the repository root, its output streamed into ours; (exit code, output, seconds)."""
    print(f"-- zero3/{name}: {' '.join(cmd)}", flush=True)
    started = time.perf_counter()
    lines = []
    with subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    sys.stdout.flush()
    return proc.returncode, "".join(lines), round(time.perf_counter() - started, 1)


def safetensors_summary(path: Path) -> dict:
    """Tensor dtypes, parameter count and size of a .safetensors file, read from its header alone."""
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    dtypes: dict[str, int] = {}
    params = 0
    for meta in tensors.values():
        count = 1
        for dim in meta["shape"]:
            count *= dim
        dtypes[meta["dtype"]] = dtypes.get(meta["dtype"], 0) + count
        params += count
    return {"file": path.name, "bytes": path.stat().st_size, "tensors": len(tensors), "parameters": params,
            "dtypes": dtypes}


def checkpoint_summary(checkpoint: Path) -> dict:
    """What a Trainer checkpoint under ZeRO-3 holds: the consolidated 16-bit model.safetensors (written
    only with stage3_gather_16bit_weights_on_model_save; without it the Trainer warns and saves none)
    and DeepSpeed's ZeRO partitions in global_stepN/ (what resuming reads)."""
    weights = checkpoint / "model.safetensors"
    ds_dirs = sorted(p for p in checkpoint.glob("global_step*") if p.is_dir())
    return {
        "path": str(checkpoint),
        "weights": safetensors_summary(weights) if weights.exists() else None,
        "deepspeed_states": {p.name: sorted(f.name for f in p.iterdir()) for p in ds_dirs},
        "bytes": sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file()),
    }


def _zero3_fail(work: Path, result: dict, message: str) -> int:
    result["error"] = message
    _write_json(work / "zero3.json", result)
    print(f"!! zero3: {message}", file=sys.stderr, flush=True)
    return 1


# accelerate launch exits 1 whatever its script's exit code; it names that code in its error:
# simple launcher: "CalledProcessError: Command '[...]' returned non-zero exit status 2."; torchrun
# (the DeepSpeed launcher on one machine): "exitcode  : 2" in its failure summary.
_CHILD_EXIT_RE = re.compile(r"returned non-zero exit status (\d+)|exitcode\s*:\s*(\d+)")


def _engine_stop(output: str) -> dict | None:
    m = _ENGINE_ERROR_RE.search(output)
    return {"config": m["file"], "asks_for": m["want"], "runs": m["got"]} if m else None


def _child_exit(output: str) -> int | None:
    """lens.train's exit code as accelerate launch reports it (None: not reported)."""
    codes = [int(a or b) for a, b in _CHILD_EXIT_RE.findall(output)]
    return codes[-1] if codes else None


def cmd_zero3_small(args, work: Path, result: dict) -> int:
    """CPU: the same launch must stop at the engine check (exit 2, both engines named), before training."""
    run_dir = work / "zero3" / "first"
    rc, output, seconds = _run_logged(zero3_command(run_dir, small=True), "first")
    stop, train_rc = _engine_stop(output), _child_exit(output)
    result.update(exercised=False, engine_check={"launcher_exit_code": rc, "lens_train_exit_code": train_rc,
                                                 **(stop or {}), "seconds": seconds})
    if rc == 0 or train_rc != 2 or stop is None or stop["runs"].startswith("DEEPSPEED"):
        return _zero3_fail(work, result, "expected the engine check to stop the job: lens.train exit 2 and 'engine "
                                         "error: ... asks for DEEPSPEED ZeRO-3 on 1 process(es), but this job runs "
                                         f"...'; got launcher exit {rc}, lens.train exit {train_rc}"
                                         f"{'' if stop else ', no such message'}")
    if (run_dir / "done").exists() or list((run_dir / "checkpoints").glob("checkpoint-[1-9]*")):
        return _zero3_fail(work, result, "the job stopped by the engine check trained or saved a checkpoint")
    _write_json(work / "zero3.json", result)
    print(f"zero3 (small mode): the engine check stopped the job as it must: lens.train exit {train_rc} (accelerate "
          f"launch exit {rc}), {stop['config']} asks for {stop['asks_for']}, but this job runs {stop['runs']}")
    print("zero3 (small mode): DeepSpeed ZeRO-3 itself was NOT exercised (accelerate drops DeepSpeed on a CPU); "
          "only a GPU run of benchmarks/gpu_check.sh trains, saves, resumes and evaluates under ZeRO-3")
    return 0


def cmd_zero3(args) -> int:
    import importlib.metadata as md

    import lens.train as lt
    from lens import layout

    work = args.work
    small = json.loads((work / "prepare.json").read_text())["mode"] == "small"
    result: dict = {"mode": "small" if small else "full", "accelerate_config": ZERO3_ACCELERATE}
    if small:
        return cmd_zero3_small(args, work, result)
    torch = _cuda()
    if torch is None:
        return _zero3_fail(work, result, "no CUDA device: the ZeRO-3 phase trains only on a GPU")
    try:
        result["deepspeed"] = md.version("deepspeed")
    except md.PackageNotFoundError:
        return _zero3_fail(work, result, "DeepSpeed is not installed (carry its wheels: benchmarks/gpu_wheels.sh)")
    free_gib = shutil.disk_usage(work).free / 2**30
    if free_gib < ZERO3_NEED_GIB and (work / "lens" / lt.CHECKPOINTS).exists():
        # LENS's checkpoint (37 GB at 3 B) was evaluated already: make room for the ZeRO-3 checkpoints
        print(f"zero3: {free_gib:.0f} GiB free, {ZERO3_NEED_GIB} needed: removing the evaluated LENS checkpoints")
        shutil.rmtree(work / "lens" / lt.CHECKPOINTS)
        result["removed_lens_checkpoints"] = True
    first, resumed = work / "zero3" / "first", work / "zero3" / "resumed"
    cfgs = {name: lt.load_run_config(work / "zero3" / name / "config.yaml") for name in ("first", "resumed")}
    # the model's parameters (tied embedding counted once, as the saved file holds it once)
    parameters = (json.loads((work / "prepare.json").read_text()).get("zero3_model") or {}).get("parameters")

    # 1. train 2 rollout steps under ZeRO-3; the engine check must pass
    runs = {}
    for name, run_dir in (("first", first), ("resumed", resumed)):
        if name == "resumed":
            # 2. a run directory holding the first run's last checkpoint (hard links: resuming only reads
            #    it) and a config of one more rollout step: lens.train resumes from that checkpoint
            src = lt.last_checkpoint(first / lt.CHECKPOINTS)
            shutil.copytree(src, resumed / lt.CHECKPOINTS / src.name, copy_function=_link_or_copy)
            if (first / lt.METRICS_FILE).exists():
                shutil.copy2(first / lt.METRICS_FILE, resumed / lt.METRICS_FILE)
        rc, output, seconds = _run_logged(zero3_command(run_dir, small=False, keep_resume_state=name == "first"),
                                          name)
        stop = _engine_stop(output)
        if stop is not None or "engine error" in output:
            result["engine_check"] = {"launcher_exit_code": rc, "lens_train_exit_code": _child_exit(output),
                                      **(stop or {})}
            return _zero3_fail(work, result, "THE ENGINE CHECK DID NOT CONFIRM DEEPSPEED ZERO-3: "
                                             + (f"{stop['config']} asks for {stop['asks_for']}, but the job runs "
                                                f"{stop['runs']}" if stop else output[-600:]))
        if rc != 0:
            return _zero3_fail(work, result, f"{name}: accelerate launch ... -m lens.train exited {rc} (lens.train: "
                                             f"{_child_exit(output)}; its output is above)")
        done = json.loads((run_dir / lt.DONE_FILE).read_text())
        final = layout.checkpoint_path(run_dir, cfgs[name].training.rollout_steps, cfgs[name])
        runs[name] = {"seconds": seconds, "done": done, "checkpoint": checkpoint_summary(final)}
        result["runs"] = runs
        ckpt = runs[name]["checkpoint"]
        if name == "first" and not ckpt["deepspeed_states"]:
            return _zero3_fail(work, result, f"{name}: {final} holds no DeepSpeed ZeRO state (global_step*/)")
        if name == "resumed" and ckpt["deepspeed_states"]:
            # a finished run keeps models only (lens.run_files.prune_resume_state), ZeRO's global_step*/ included
            return _zero3_fail(work, result, f"{name}: the finished run's {final} still holds ZeRO state "
                                             f"{ckpt['deepspeed_states']}")
        if ckpt["weights"] is None:
            return _zero3_fail(work, result, f"{name}: {final} has no model.safetensors: the 16-bit weights were not "
                                             "gathered on save (zero3_save_16bit_model / "
                                             "stage3_gather_16bit_weights_on_model_save)")
        if parameters and ckpt["weights"]["parameters"] < parameters:
            # ZeRO-3's partitioned placeholders (empty tensors) saved instead of the gathered weights
            return _zero3_fail(work, result, f"{name}: {final}/model.safetensors holds "
                                             f"{ckpt['weights']['parameters']:,} of the model's {parameters:,} "
                                             "parameters")
    result["engine_check"] = {"passed": True, "runs": "DEEPSPEED ZeRO-3 on 1 process(es)"}
    plan = lt.batch_plan(cfgs["first"].training, 1)
    expected_resume = cfgs["first"].training.rollout_steps * plan.updates_per_rollout
    if runs["first"]["done"]["resumed_from"] != 0 or runs["resumed"]["done"]["resumed_from"] != expected_resume:
        return _zero3_fail(work, result, f"resumed_from: first {runs['first']['done']['resumed_from']} (expected 0), "
                                         f"resumed {runs['resumed']['done']['resumed_from']} (expected "
                                         f"{expected_resume})")

    # 3. lens.evaluate on CUDA from the resumed run's final checkpoint
    final = Path(runs["resumed"]["checkpoint"]["path"])
    out = work / "zero3" / "eval"
    rc, output, seconds = _run_logged([sys.executable, "-m", "lens.evaluate", "--config",
                                       str(resumed / "config.yaml"), "--out", str(out), "--checkpoint", str(final)],
                                      "evaluate")
    if rc != 0:
        return _zero3_fail(work, result, f"lens.evaluate on {final} exited {rc}")
    summary = json.loads((out / "summary.json").read_text())
    result["evaluate"] = {"seconds": seconds, "checkpoint": str(final),
                          "summary": {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}}
    if "accuracy" not in summary:
        return _zero3_fail(work, result, f"lens.evaluate wrote no accuracy ({out / 'summary.json'})")
    result["exercised"] = True
    _write_json(work / "zero3.json", result)
    print(json.dumps(result))
    return 0


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
def cmd_summary(args) -> int:
    work = args.work
    if not (work / "prepare.json").exists():
        print(f"no figures: the prepare phase did not finish (see {work / 'gpu_check.log'})")
        return 1
    prep = json.loads((work / "prepare.json").read_text())
    runs = {a: json.loads((work / a / "gpu_check.json").read_text()) for a in ALGOS
            if (work / a / "gpu_check.json").exists()}
    ev = json.loads((work / "eval.json").read_text()) if (work / "eval.json").exists() else None
    phases = json.loads((work / "phases.json").read_text()) if (work / "phases.json").exists() else {}
    zero3 = json.loads((work / "zero3.json").read_text()) if (work / "zero3.json").exists() else None
    det = json.loads((work / "determinism.json").read_text()) if (work / "determinism.json").exists() else None
    cfg = run_config(work, "lens", prep["mode"] == "small")
    t = cfg.training
    model = prep.get("model") or {}
    lines = [
        f"LENS GPU check ({prep['mode']} mode) on {next(iter(runs.values()))['device'] if runs else '?'}",
        f"model: random Qwen2 {model.get('num_hidden_layers')} layers, hidden {model.get('hidden_size')}, "
        f"{model.get('num_attention_heads')}/{model.get('num_key_value_heads')} heads, "
        f"vocab {model.get('vocab_size')}, {model.get('parameters', 0):,} parameters "
        f"(tokenizer: {model.get('tokenizer_tokens')} tokens)",
        f"rollout: {t.prompts_per_rollout} prompts x G={t.num_generations}, {t.updates_per_rollout} updates of "
        f"{t.prompts_per_update * t.num_generations} completions in micro-batches of {t.micro_batch_size}, "
        f"max_new_tokens {t.max_new_tokens}, {t.rollout_steps} rollout steps, engine {t.engine}, "
        f"gradient checkpointing {t.gradient_checkpointing}, precision {t.precision}",
    ]
    for algo, r in runs.items():
        lines.append(f"{algo:>5}: step time {r['steady_step_seconds']:.2f} s (steps 2+; all: "
                     f"{', '.join(f'{s:.2f}' for s in r['rollout_step_seconds'])} s; "
                     f"{r['completion_tokens_per_second']} completion tokens/s), "
                     f"peak GPU memory {_gib(r['peak_allocated_gib'])} allocated / "
                     f"{_gib(r['peak_reserved_gib'])} reserved; set-up {r['setup_seconds']} s, "
                     f"final checkpoint {r['save_seconds']} s{' (model only)' if r['light_checkpoint'] else ''}")
    ratio = None
    if set(runs) == set(ALGOS):
        ratio = runs["lens"]["steady_step_seconds"] / runs["grpo"]["steady_step_seconds"]
        lines.append(f"LENS/GRPO step-time ratio: {ratio:.3f}")
    if ev is not None:
        s = ev["summary"]
        lines.append(f"evaluate: {ev['seconds']:.1f} s on {ev['device']} ({s.get('benchmark')}, accuracy "
                     f"{s.get('accuracy', float('nan')):.3f}, {s.get('completion_tokens/mean', 0):.0f} tokens/sample), "
                     f"peak GPU memory {_gib(ev['peak_allocated_gib'])}")
    lines.extend(zero3_lines(zero3, prep))
    lines.extend(determinism_lines(det))
    if phases:
        lines.append("phase wall times: " + ", ".join(f"{k} {v} s" for k, v in phases.items()))
    if prep["mode"] == "small":
        lines.append("(small mode checks the code path; its timings on a CPU say nothing about a GPU)")
    text = "\n".join(lines)
    print(text)
    result = {"mode": prep["mode"], "prepare": prep, "train": runs, "lens_grpo_step_ratio": ratio, "evaluate": ev,
              "zero3": zero3, "determinism": det, "phases_seconds": phases}
    _write_json(work / "gpu_check.json", result)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        _write_json(args.out / "gpu_check.json", result)
        (args.out / "gpu_check.txt").write_text(text + "\n")
    zero3_ok = zero3 is not None and "error" not in zero3 and zero3.get("exercised") == (prep["mode"] == "full")
    det_ok = det is not None and "error" not in det
    return 0 if ratio is not None and ev is not None and zero3_ok and det_ok else 1


def zero3_lines(zero3: dict | None, prep: dict) -> list[str]:
    """The ZeRO-3 phase's lines of the summary."""
    if zero3 is None:
        return ["zero3: not run"]
    if "error" in zero3:
        return [f"zero3: FAILED: {zero3['error']}"]
    if not zero3.get("exercised"):
        e = zero3["engine_check"]
        return [f"zero3 (small mode): engine check stopped the job as required (lens.train exit "
                f"{e['lens_train_exit_code']}, accelerate launch exit {e['launcher_exit_code']}): {e['config']} asks "
                f"for {e['asks_for']}, the job ran {e['runs']}; ZeRO-3 itself NOT exercised (no DeepSpeed on a CPU)"]
    m = prep.get("zero3_model") or {}
    lines = [f"zero3: DeepSpeed {zero3['deepspeed']} ZeRO-3 on 1 GPU, engine check passed; model: random Qwen2 "
             f"{m.get('num_hidden_layers')} layers, hidden {m.get('hidden_size')}, "
             f"{m.get('parameters', 0):,} parameters"]
    for name, run in zero3["runs"].items():
        done, ckpt = run["done"], run["checkpoint"]
        w = ckpt["weights"]
        lines.append(
            f"  {name}: {run['seconds']:.1f} s, rollout steps {done['rollout_steps']} (optimizer step "
            f"{done['global_step']}), resumed_from {done['resumed_from']}; {Path(ckpt['path']).name}: "
            f"model.safetensors {w['bytes'] / 2**20:.0f} MiB, {w['parameters']:,} parameters in "
            f"{'/'.join(w['dtypes'])}; ZeRO state {', '.join(ckpt['deepspeed_states']) or 'none (pruned once done)'}; "
            f"{ckpt['bytes'] / 2**30:.2f} GiB in all")
    ev = zero3["evaluate"]
    s = ev["summary"]
    lines.append(f"  evaluate: {ev['seconds']:.1f} s on cuda from {Path(ev['checkpoint']).name}, accuracy "
                 f"{s['accuracy']:.3f} ({s.get('benchmark')})")
    return lines


def _gib(value) -> str:
    return "n/a" if value is None else f"{value:.1f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "train", "evaluate", "zero3", "determinism", "summary"):
        p = sub.add_parser(name)
        p.add_argument("--work", required=True, type=Path, help="work directory (data, model, runs)")
        if name == "prepare":
            p.add_argument("--small", action="store_true", help="tiny Qwen2 and small sizes (CPU)")
        if name == "train":
            p.add_argument("--algo", required=True, choices=ALGOS)
            p.add_argument("--keep-checkpoints", action="store_true", help="keep GRPO's checkpoint (~37 GB at 3 B)")
        if name == "summary":
            p.add_argument("--out", type=Path, default=None, help="also write gpu_check.{json,txt} here")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    return {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate, "zero3": cmd_zero3,
            "determinism": cmd_determinism, "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
