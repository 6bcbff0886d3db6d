"""The phases of benchmarks/gpu_check.sh: a paper-shaped GRPO and LENS run on one GPU, timed.

    python benchmarks/gpu_check.py prepare  --work DIR [--small]   data, model, run configs
    python benchmarks/gpu_check.py train    --work DIR --algo grpo  python -m lens.train, timed
    python benchmarks/gpu_check.py evaluate --work DIR              python -m lens.evaluate, timed
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
`--small` swaps the model for a tiny Qwen2 of the same code path (GQA, tied embeddings, padded
vocabulary) and shrinks the sizes, so the whole check runs on a CPU in one to two minutes.

`train` runs lens.train's CLI entry point in this process (so that it can read the GPU's peak
memory) with one extra Trainer callback that stamps the end of every rollout step; it writes
`{algo}/gpu_check.json`: seconds per rollout step (model loading and checkpoint saving excluded),
peak memory, the `done` marker. `evaluate` likewise runs lens.evaluate's entry point on the LENS
run's final checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

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


def build_model(model_dir: Path, texts: list[str], small: bool, seed: int = 0) -> dict:
    """Random Qwen2.5-3B-architecture model (bf16 on CUDA, as the hub checkpoint) + local BPE tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from lens.config import TinyModelConfig
    from lens.tiny import build_tokenizer

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


def run_config(work: Path, algo: str, small: bool):
    """The resolved run config of one algorithm (lens.config.RunConfig, validated)."""
    from lens.config import RunConfig, parse

    sizes = SIZES["small" if small else "full"]
    t, ev = sizes["training"], dict(sizes["evaluation"])
    limit = ev.pop("limit")
    raw = {
        "model": {"name": MODEL_NAME, "path": str(work / "model"), "prompt": "plain", "dtype": "auto"},
        "algorithm": {"name": algo, **({"alpha": 0.25} if algo == "lens" else {}), "eps": 1e-6, "std": "sample"},
        "seed": 0,
        "data": {"train": [{"name": "math", "path": str(work / "data"), "split": "train"}], "decontaminate": True},
        "training": {
            **t, "learning_rate": 1e-6, "weight_decay": 0.0, "clip_eps": 0.2, "kl_beta": 0.0, "temperature": 1.0,
            "top_p": 1.0, "save_every": t["rollout_steps"], "engine": "transformers", "gradient_checkpointing": True,
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
    for algo in ALGOS:
        write_run_config(run_config(work, algo, args.small), work / algo / "config.yaml")
    info = {"mode": "small" if args.small else "full", "problems": counts, "model": model,
            "build_seconds": round(time.perf_counter() - start, 1)}
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
    steps = [round(b["t"] - a["t"], 3) for a, b in zip(stamps, stamps[1:])]
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

    cfg = lt.load_run_config(work / "lens" / "config.yaml")
    return lt.checkpoint_path(work / "lens", cfg.training.rollout_steps, cfg)


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
    if phases:
        lines.append("phase wall times: " + ", ".join(f"{k} {v} s" for k, v in phases.items()))
    if prep["mode"] == "small":
        lines.append("(small mode checks the code path; its timings on a CPU say nothing about a GPU)")
    text = "\n".join(lines)
    print(text)
    result = {"mode": prep["mode"], "prepare": prep, "train": runs, "lens_grpo_step_ratio": ratio, "evaluate": ev,
              "phases_seconds": phases}
    _write_json(work / "gpu_check.json", result)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        _write_json(args.out / "gpu_check.json", result)
        (args.out / "gpu_check.txt").write_text(text + "\n")
    return 0 if ratio is not None and ev is not None else 1


def _gib(value) -> str:
    return "n/a" if value is None else f"{value:.1f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "train", "evaluate", "summary"):
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
    return {"prepare": cmd_prepare, "train": cmd_train, "evaluate": cmd_evaluate,
            "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
