"""Supervised warm-up of the tiny model on worked solutions: the shared starting point of every RL run.

    python -m lens.warmup --config WARMUP.yaml --train results/data/synthetic/train.jsonl --out DIR

WARMUP.yaml holds two sections, `model` (a ModelConfig with `tiny` set) and `warmup` (a
WarmupConfig); the workflow writes it from config/config.yaml. The command builds the char/BPE
tokenizer and the random Llama/Qwen2 model (lens.tiny), trains it in fp32 on the CPU on
prompt -> worked solution, with the prompt made by `lens.data.format_prompt` exactly as RL and
evaluation make it and the loss on the solution tokens plus EOS only, and saves a Hugging Face
checkpoint in DIR (the `model.path` of every resolved RL config) plus `warmup_log.csv` (loss by step).

    python -m lens.warmup probe --model DIR --problems results/data/synthetic/rl.jsonl --out probe.json

measures a checkpoint for calibration: accuracy by level at T = 1, the share of all-wrong groups
of G samples, and the confidence of correct and wrong answers (mean and AUROC).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import time
from pathlib import Path

import yaml

from lens.config import ConfigError, ModelConfig, WarmupConfig, parse

LEVELS = (1, 2, 3, 4, 5)
# Between the prompt (lens.data's plain prompt ends "...step by step.") and the worked solution.
SEPARATOR = " "


def load_warmup_file(path: str | Path) -> tuple[ModelConfig, WarmupConfig]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    unknown = sorted(set(data) - {"model", "warmup"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; valid keys: ['model', 'warmup']")
    model = parse(ModelConfig, data.get("model"), source=str(path), key="model")
    warmup = parse(WarmupConfig, data.get("warmup", {}), source=str(path), key="warmup")
    if model.tiny is None:
        raise ConfigError(f"{path}: model.tiny: the warm-up builds a tiny model from scratch; set `tiny`")
    if len(warmup.level_weights) != len(LEVELS) or min(warmup.level_weights) < 0 or sum(warmup.level_weights) <= 0:
        raise ConfigError(f"{path}: warmup.level_weights: needs {len(LEVELS)} non-negative weights "
                          f"with a positive sum, got {list(warmup.level_weights)}")
    return model, warmup


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def encode_example(tokenizer, prompt: str, solution: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for prompt + SEPARATOR + solution + EOS; labels are -100 on the prompt.

    The prompt and the response are tokenized separately, as the RL trainer sees them (a prompt,
    then sampled completion tokens), so no token straddles the boundary.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(SEPARATOR + solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + target_ids, [-100] * len(prompt_ids) + target_ids


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded (input_ids, attention_mask, labels) tensors; padding is masked out of the loss."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)  # (B, T)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)  # (B, T)
    for row, (ids, lab) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask, labels


def learning_rate(step: int, cfg: WarmupConfig) -> float:
    """Linear ramp over `warmup_steps`, then cosine decay to 10 % of the peak at `steps`."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def level_sampler(problems: list[dict], weights: tuple[float, ...], seed: int):
    """An endless iterator of problems: level drawn by `weights`, then a problem of it uniformly."""
    by_level = {lvl: [p for p in problems if p["level"] == lvl] for lvl in LEVELS}
    levels = [lvl for lvl, w in zip(LEVELS, weights, strict=True) if w > 0 and by_level[lvl]]
    if not levels:
        raise ValueError("warm-up: no training problems in any level with a positive weight")
    level_weights = [weights[lvl - 1] for lvl in levels]
    rng = random.Random(seed)
    while True:
        level = rng.choices(levels, weights=level_weights)[0]
        yield rng.choice(by_level[level])


def train(model_cfg: ModelConfig, cfg: WarmupConfig, problems: list[dict], out_dir: str | Path,
          *, log_every: int | None = None, save_at: tuple[int, ...] = ()) -> list[dict]:
    """Build, warm up and save the tiny model under `out_dir`; returns the loss log.

    save_at: steps after which a copy is also saved in `out_dir/step{N}` (for calibrating the
    warm-up's length against what RL can still improve)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lens.data import format_prompt
    from lens.tiny import save_tiny

    if cfg.torch_threads:
        # The model depends on the thread count (it decides how the kernels split, so the order of
        # their sums), not on the run: 1 or 2 threads gave bit-identical weights run after run.
        torch.set_num_threads(cfg.torch_threads)
    log_every = log_every or max(1, min(50, cfg.steps // 10))
    out_dir = Path(out_dir)
    texts = [p["problem"] for p in problems] + [p["solution"] for p in problems]
    save_tiny(model_cfg.tiny, texts, out_dir, seed=cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
    model.train()

    encoded: dict[str, tuple[list[int], list[int]]] = {}

    def example(problem: dict) -> tuple[list[int], list[int]]:
        if problem["id"] not in encoded:
            prompt = format_prompt(problem["problem"], model_cfg.prompt, tokenizer)
            encoded[problem["id"]] = encode_example(tokenizer, prompt, problem["solution"])
        return encoded[problem["id"]]

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.95), weight_decay=0.0)
    sampler = level_sampler(problems, cfg.level_weights, cfg.seed)
    torch.manual_seed(cfg.seed)
    log, start, running = [], time.perf_counter(), 0.0
    for step in range(cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, cfg)
        input_ids, attention_mask, labels = collate([example(next(sampler)) for _ in range(cfg.batch_size)],
                                                    tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += loss.item()
        if (step + 1) % log_every == 0 or step + 1 == cfg.steps:
            n = (step % log_every) + 1
            log.append({"step": step + 1, "loss": running / n, "lr": learning_rate(step, cfg),
                        "seconds": round(time.perf_counter() - start, 2)})
            print(f"warmup step {step + 1}/{cfg.steps} loss {running / n:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            running = 0.0
        if step + 1 in save_at and step + 1 != cfg.steps:
            model.save_pretrained(out_dir / f"step{step + 1}")
            tokenizer.save_pretrained(out_dir / f"step{step + 1}")
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    with open(out_dir / "warmup_log.csv", "w") as fh:
        fh.write("step,loss,lr,seconds\n"
                 + "".join(f"{r['step']},{r['loss']:.6f},{r['lr']:.3e},{r['seconds']}\n" for r in log))
    return log


def probe(model_dir: str | Path, problems: list[dict], *, prompt_style: str, group_size: int,
          max_new_tokens: int, temperature: float = 1.0, seed: int = 0, batch_prompts: int = 16) -> dict:
    """Sample `group_size` responses per problem at `temperature`; accuracy by level, all-wrong
    group share and mean confidence (lens.objective.sequence_confidence) of correct and wrong answers.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lens.data import format_prompt
    from lens.objective import sequence_confidence
    from lens.rewards import grade_batch

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    rows = []
    for start in range(0, len(problems), batch_prompts):
        batch = problems[start : start + batch_prompts]
        prompts = [format_prompt(p["problem"], prompt_style, tokenizer) for p in batch]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                                 max_new_tokens=max_new_tokens, num_return_sequences=group_size,
                                 output_scores=True, return_dict_in_generate=True,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        completion_ids = out.sequences[:, enc["input_ids"].shape[1]:]  # (N, T)
        logp = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)  # (N, T)
        # Response tokens up to and including the first EOS; everything after it is padding.
        is_eos = completion_ids == tokenizer.eos_token_id
        after_eos = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
        mask = ~after_eos  # (N, T)
        confidence = sequence_confidence(logp.float().masked_fill(~mask, 0.0), mask)  # (N,)
        texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        golds = [p["answer"] for p in batch for _ in range(group_size)]
        correct = grade_batch(texts, golds)
        for i, (text, ok, conf) in enumerate(zip(texts, correct, confidence.tolist(), strict=True)):
            problem = batch[i // group_size]
            rows.append({"id": problem["id"], "level": problem["level"], "correct": float(ok),
                         "confidence": conf, "text": text})
    return summarise_probe(rows, group_size)


def summarise_probe(rows: list[dict], group_size: int) -> dict:
    """Per-level accuracy and all-wrong share, confidence of correct vs wrong, and its AUROC."""
    by_problem: dict[str, list[dict]] = {}
    for r in rows:
        by_problem.setdefault(r["id"], []).append(r)
    summary: dict = {"group_size": group_size, "levels": {}}
    for level in LEVELS:
        groups = [g for g in by_problem.values() if g[0]["level"] == level]
        if not groups:
            continue
        samples = [r for g in groups for r in g]
        summary["levels"][level] = {
            "problems": len(groups),
            "accuracy": sum(r["correct"] for r in samples) / len(samples),
            "all_wrong_frac": sum(all(r["correct"] == 0 for r in g) for g in groups) / len(groups),
            "all_correct_frac": sum(all(r["correct"] == 1 for r in g) for g in groups) / len(groups),
        }
    groups = list(by_problem.values())
    summary["all_wrong_frac"] = sum(all(r["correct"] == 0 for r in g) for g in groups) / len(groups)
    correct_conf = [r["confidence"] for r in rows if r["correct"] == 1]
    wrong_conf = [r["confidence"] for r in rows if r["correct"] == 0]
    summary["confidence_correct_mean"] = sum(correct_conf) / len(correct_conf) if correct_conf else None
    summary["confidence_wrong_mean"] = sum(wrong_conf) / len(wrong_conf) if wrong_conf else None
    summary["confidence_auroc"] = auroc(correct_conf, wrong_conf)
    return summary


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """P(a random correct answer is more confident than a random wrong one), ties counting half."""
    if not positives or not negatives:
        return None
    ranked = sorted([(v, 1) for v in positives] + [(v, 0) for v in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        rank_sum += sum(lab for _, lab in ranked[i:j]) * (i + j + 1) / 2
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def main(argv: list[str] | None = None) -> None:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["probe"]:
        return probe_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="YAML with `model` (tiny) and `warmup` sections")
    parser.add_argument("--train", required=True, help="train.jsonl of lens.synthetic (with solutions)")
    parser.add_argument("--out", required=True, help="output directory: the Hugging Face checkpoint")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (overrides warmup.torch_threads: another count trains "
                             "another model)")
    parser.add_argument("--save-at", type=int, nargs="*", default=[],
                        help="also save the model after these steps, in OUT/step{N} (calibration)")
    args = parser.parse_args(argv)
    model_cfg, cfg = load_warmup_file(args.config)
    if args.threads:
        cfg = dataclasses.replace(cfg, torch_threads=args.threads)
    # MKL may lower its thread count under load (MKL_DYNAMIC), which would change the sums' order
    # and with it the model: hold it at the configured count. Read when torch loads MKL, so before.
    os.environ.setdefault("MKL_DYNAMIC", "FALSE")
    problems = read_jsonl(args.train)
    missing = [p["id"] for p in problems if not p.get("solution")]
    if missing:
        raise SystemExit(f"{args.train}: {len(missing)} problems have no `solution` (e.g. {missing[0]}); "
                         "the warm-up needs the train split of lens.synthetic")
    train(model_cfg, cfg, problems, args.out, save_at=tuple(args.save_at))


def probe_main(argv: list[str]) -> None:
    """`python -m lens.warmup probe --model DIR --problems FILE --out probe.json`: calibration numbers."""
    parser = argparse.ArgumentParser(prog="python -m lens.warmup probe", description=probe.__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--problems", required=True, help="JSONL in the problem schema (with `level`)")
    parser.add_argument("--out", required=True, help="JSON summary to write")
    parser.add_argument("--per-level", type=int, default=20, help="problems per level (first N of each)")
    parser.add_argument("--group-size", type=int, default=16, help="samples per problem (G)")
    parser.add_argument("--prompt", default="plain", choices=["bare", "plain", "chat"])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    pool = read_jsonl(args.problems)
    subset = [p for lvl in LEVELS for p in [q for q in pool if q["level"] == lvl][: args.per_level]]
    result = probe(args.model, subset, prompt_style=args.prompt, group_size=args.group_size,
                   max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
