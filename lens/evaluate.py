"""Sample n completions per benchmark problem from a checkpoint, grade them, write per-sample tables.

    python -m lens.evaluate --config RUN_CONFIG.yaml --out DIR [--checkpoint PATH_OR_HUB_ID] [--benchmark ID]
    python -m lens.evaluate --config RUN_CONFIG.yaml --checkpoint CKPT_A CKPT_B --out DIR_A DIR_B [--n-samples 4 16]
    python -m lens.evaluate --config RUN_CONFIG.yaml --checkpoint CKPT --benchmark math500 math_test --out DIR_A DIR_B

For each benchmark of ``cfg.evaluation.benchmarks`` (or those named by ``--benchmark``, which may
also name ``cfg.evaluation.final_benchmarks``, the sets evaluated at the final step only), writes to
DIR (or DIR/{benchmark} when several are evaluated, or the --out given for each --benchmark):
- samples.parquet: problem_id, level, subject, sample_idx, completion_tokens, finish_reason
  ("stop": ended with EOS, "length": hit max_new_tokens), correct (0/1);
- completions.jsonl: problem_id, sample_idx, correct, completion (the texts);
- summary.json: accuracy, accuracy/level_k, accuracy/level_4_5, accuracy/subject/..., pass@k,
  n_problems (lens.metrics.summarize), plus the sampling settings.

Samples per problem: the benchmark entry's `n_samples` when it has one (config/paper.yaml: 32 for AIME
and AMC), else evaluation.n_samples. Grading follows the benchmark's answer format (lens.datasets,
lens.answer_formats: Minerva's numbers with a tolerance, OlympiadBench's percent and tolerances).

Sampling uses transformers' generate (left padding, temperature/top-p from the config, top-k off,
fp32 on CPU, bf16 on CUDA) or vLLM when ``evaluation.engine: vllm``; both get the same prompt
token ids (``prompt_token_ids``: one BOS, as in training) and stop at the prompt style's stop
strings (lens.data.STOP_STRINGS), and grading reads the text before them. Problems are processed in
chunks of ``evaluation.batch_size``; each graded chunk is written to DIR/parts/ before the next
starts, and every chunk has its own sampling seed (run seed, chunk index), so a run killed midway
and started again keeps the finished chunks and produces the same samples as an uninterrupted run.
generate() draws every problem of a chunk from one stream, so problems get independent samples. vLLM
keys its noise on the request's seed, position and token: one seed for a whole chunk would give
every problem of it the same noise field, so there each problem has its own seed, `problem_seed(run
seed, benchmark, problem id)` (its n samples take seed + 0 .. n-1 in vLLM): the same for every arm and
checkpoint of a run seed, which pairs their comparisons problem by problem, and different across problems.
Chunks are kept only for the same evaluation (settings, problems, and the checkpoint's weights, by
`weights_stamp`); others are refused, or replaced with --replace-stale (the workflow's rules).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import pandas as pd

from lens import datasets as dataset_table
from lens.answer_formats import spec_for
from lens.config import ConfigError, DatasetConfig, RunConfig, load_run_config
from lens.data import DataError, evaluation_sets, first_answer, format_prompt, load_problems, stop_strings
from lens.layout import SAMPLES_FILE, SUMMARY_FILE
from lens.metrics import HARD_SUBSET, subset_key, summarize

SAMPLE_COLUMNS = ["problem_id", "level", "subject", "sample_idx", "completion_tokens", "finish_reason", "correct"]
EVAL_SUBSET_SEED = 0
# For tests of resumption: stop (exit code 75) after this many newly written chunks.
STOP_ENV = "LENS_EVAL_STOP_AFTER_CHUNKS"


class EvaluationError(RuntimeError):
    """The evaluation cannot start (bad arguments, missing engine, mismatched previous parts)."""


# --------------------------------------------------------------------------------------------
# Samplers: (prompts, n) -> per prompt, n tuples (text, completion_tokens, finish_reason)
# --------------------------------------------------------------------------------------------
def prompt_token_ids(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt with exactly the BOS handling of training.

    lens.train drops a chat template's BOS text and TRL then tokenizes with special tokens, so a
    Llama-3 prompt starts with one BOS. Here the prompt keeps the template's BOS text and is
    tokenized without special tokens; a prompt without BOS text (plain, bare) gets them added.
    Both engines receive these ids: vLLM given the text would add a second BOS to a chat prompt.
    """
    bos = tokenizer.bos_token
    return [tokenizer(p, add_special_tokens=not (bos and p.startswith(bos))).input_ids for p in prompts]


class TransformersSampler:
    def __init__(self, checkpoint: str, cfg: RunConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(cfg.model.dtype)
        if dtype is None:  # auto
            dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype)
        except OSError as err:  # missing directory, unreachable or offline hub
            raise EvaluationError(f"cannot load checkpoint {checkpoint!r}: {err}".strip()) from None
        self.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = model.to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self.ev = cfg.evaluation
        self.stops = list(stop_strings(cfg.model.prompt))

    def sample(self, prompts: list[str], n: int, seed: int, problem_seeds: list[int] | None = None
               ) -> list[list[tuple[str, int, str]]]:
        torch = self.torch  # one stream for the chunk (`seed`): generate() draws each row independently
        torch.manual_seed(seed)
        enc = self.tokenizer.pad({"input_ids": prompt_token_ids(self.tokenizer, prompts)}, padding=True,
                                 return_tensors="pt").to(self.device)
        sampling = self.ev.temperature > 0
        pad = self.tokenizer.pad_token_id
        gen_kwargs = dict(do_sample=sampling, max_new_tokens=self.ev.max_new_tokens, num_return_sequences=n,
                          pad_token_id=pad, eos_token_id=sorted(self.eos_ids))
        if self.stops:
            gen_kwargs.update(stop_strings=self.stops, tokenizer=self.tokenizer)
        if sampling:
            # top_k=0 turns off the library's default top-k of 50: the paper samples with top-p only.
            gen_kwargs.update(temperature=self.ev.temperature, top_p=self.ev.top_p, top_k=0)
        with torch.no_grad():
            out = self.model.generate(**enc, **gen_kwargs)
        generated = out[:, enc["input_ids"].shape[1]:].tolist()  # (len(prompts) * n, T)
        results = []
        for row in generated:
            end = next((i for i, t in enumerate(row) if t in self.eos_ids), None)
            if end is not None:
                tokens = row[: end + 1]  # the EOS counts as a completion token
            else:
                # A stop string ends a row early; generate pads the rest of the batch's length.
                tokens = row
                while self.stops and tokens and tokens[-1] == pad:
                    tokens = tokens[:-1]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            stopped = (end is not None or len(tokens) < self.ev.max_new_tokens
                       or any(text.endswith(s) for s in self.stops))
            results.append((text, len(tokens), "stop" if stopped else "length"))
        return [results[i * n:(i + 1) * n] for i in range(len(prompts))]


class VLLMSampler:
    def __init__(self, checkpoint: str, cfg: RunConfig):
        try:
            import vllm
        except ImportError as err:
            raise EvaluationError("evaluation.engine is 'vllm' but vLLM is not installed (GPU only: "
                                  "pip install -e '.[gpu]'); use engine: transformers on CPU") from err
        from transformers import AutoTokenizer

        self.vllm = vllm
        self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        dtype = {"float32": "float32", "bfloat16": "bfloat16"}.get(cfg.model.dtype, "auto")
        self.llm = vllm.LLM(model=checkpoint, dtype=dtype, seed=cfg.seed)
        self.ev = cfg.evaluation
        self.stops = list(stop_strings(cfg.model.prompt))

    def sample(self, prompts: list[str], n: int, seed: int, problem_seeds: list[int] | None = None
               ) -> list[list[tuple[str, int, str]]]:
        if problem_seeds is None or len(problem_seeds) != len(prompts):
            raise EvaluationError("vLLM sampling needs one seed per problem (lens.evaluate.problem_seed)")
        params = [self.vllm.SamplingParams(n=n, temperature=self.ev.temperature, top_p=self.ev.top_p,
                                           max_tokens=self.ev.max_new_tokens, seed=s, stop=self.stops or None)
                  for s in problem_seeds]
        token_prompts = [{"prompt_token_ids": ids} for ids in prompt_token_ids(self.tokenizer, prompts)]
        outputs = self.llm.generate(token_prompts, params, use_tqdm=False)
        return [[(o.text, len(o.token_ids), "stop" if o.finish_reason == "stop" else "length") for o in out.outputs]
                for out in outputs]


def make_sampler(checkpoint: str, cfg: RunConfig):
    if cfg.evaluation.engine == "vllm":
        return VLLMSampler(checkpoint, cfg)
    return TransformersSampler(checkpoint, cfg)


# --------------------------------------------------------------------------------------------
# One benchmark
# --------------------------------------------------------------------------------------------
def weights_stamp(checkpoint: str) -> str | None:
    """Which weights a local checkpoint directory holds now: a hash of its weight files' names, sizes
    and modification times (None for a hub id). A run retrained from other inputs rewrites its
    checkpoints under the same paths, so the path alone cannot tell its chunks from the old ones.
    File stats, not contents: hashing an 8B model's 16 GB at every evaluation would cost minutes."""
    path = Path(checkpoint)
    if not path.is_dir():
        return None
    files = sorted(f for f in path.iterdir()
                   if f.suffix == ".safetensors" or (f.name.startswith("pytorch_model") and f.suffix == ".bin"))
    stats = [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    return hashlib.sha256("\n".join(stats).encode()).hexdigest()[:16]


def samples_per_problem(cfg: RunConfig, ds: DatasetConfig) -> int:
    """The set's own `n_samples` when it has one, else evaluation.n_samples (what --n-samples sets)."""
    return ds.n_samples or cfg.evaluation.n_samples


def _fingerprint(cfg: RunConfig, checkpoint: str, ds: DatasetConfig, problems: list[dict]) -> dict:
    ev = cfg.evaluation
    ids = hashlib.sha256("\n".join(p["id"] for p in problems).encode()).hexdigest()[:16]
    return {"checkpoint": str(checkpoint), "weights": weights_stamp(checkpoint), "benchmark": ds.id,
            "n_problems": len(problems), "problem_ids_sha": ids,
            "n_samples": samples_per_problem(cfg, ds), "temperature": ev.temperature, "top_p": ev.top_p,
            "max_new_tokens": ev.max_new_tokens, "engine": ev.engine, "seed": cfg.seed,
            "seeds": "per problem" if ev.engine == "vllm" else "per chunk",
            "chunk_problems": ev.batch_size, "prompt": cfg.model.prompt}


def _chunk_seed(run_seed: int, chunk: int) -> int:
    return (run_seed * 1_000_003 + chunk) % (2**31 - 1)


def problem_seed(run_seed: int, benchmark: str, problem_id: str) -> int:
    """vLLM's sampling seed of one problem (module docstring): a hash of (run seed, benchmark, problem id)
    below 2^31 - 2^16, so that seed + sample index stays a valid int32 seed."""
    digest = hashlib.sha256(f"{run_seed}\0{benchmark}\0{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 2**16)


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def evaluate_benchmark(cfg: RunConfig, ds: DatasetConfig, sampler_factory, checkpoint: str, out_dir: Path,
                       *, replace_stale: bool = False) -> dict:
    """Sample, grade and write one benchmark under out_dir; returns the summary dict.

    Chunks left in out_dir/parts by an evaluation with other settings, problems or weights are an
    error, or, with `replace_stale` (the workflow's choice: it reruns a job only when that job's
    inputs changed), deleted before this evaluation starts.
    """
    from tqdm.auto import tqdm

    from lens.rewards import grade_batch

    ev = cfg.evaluation
    n_samples = samples_per_problem(cfg, ds)
    answer_format = dataset_table.get(ds.name).answer_format
    # Subsets (`limit`, `limit_per_level_subject`) are drawn with a fixed seed, not the run's: every
    # model, algorithm and seed is evaluated on the same problems, which the paired statistics need.
    problems = load_problems(ds, seed=EVAL_SUBSET_SEED)
    if not problems:
        raise EvaluationError(f"benchmark {ds.id}: no problems after filtering")
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = out_dir / "parts"
    parts.mkdir(exist_ok=True)
    meta_path = parts / "meta.json"
    meta = _fingerprint(cfg, checkpoint, ds, problems)
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old != meta:
            changed = sorted(k for k in meta if old.get(k) != meta[k])
            if not replace_stale:
                raise EvaluationError(f"{parts} holds chunks of a different evaluation (differs in {changed}); "
                                      "delete that directory, choose another --out or pass --replace-stale")
            print(f"[{ds.id}] {parts} held chunks of a different evaluation (differs in {changed}): replaced",
                  file=sys.stderr)
            for stale in parts.glob("chunk_*.parquet"):
                stale.unlink()
            meta_path.unlink()
    if not meta_path.exists():
        _write_atomic(meta_path, lambda p: p.write_text(json.dumps(meta, indent=1)))

    size = ev.batch_size
    chunks = [problems[i:i + size] for i in range(0, len(problems), size)]
    done = {i for i in range(len(chunks)) if (parts / f"chunk_{i:05d}.parquet").exists()}
    stop_after = int(os.environ.get(STOP_ENV, "0") or 0)
    if done:
        print(f"[{ds.id}] resuming: {len(done)} of {len(chunks)} chunks already sampled and graded", file=sys.stderr)
    todo = [i for i in range(len(chunks)) if i not in done]
    sampler = None
    written = 0
    sample_bar = tqdm(total=len(problems), initial=sum(len(chunks[i]) for i in done), desc=f"{ds.id} sampling",
                      unit="problem", file=sys.stderr)
    grade_bar = tqdm(total=len(problems) * n_samples, initial=sum(len(chunks[i]) for i in done) * n_samples,
                     desc=f"{ds.id} grading", unit="answer", file=sys.stderr)
    try:
        for i in todo:
            if sampler is None:
                sampler = sampler_factory()  # loaded only when there is something to sample
            chunk = chunks[i]
            prompts = [format_prompt(p["problem"], cfg.model.prompt, getattr(sampler, "tokenizer", None))
                       for p in chunk]
            outputs = sampler.sample(prompts, n_samples, _chunk_seed(cfg.seed, i),
                                     problem_seeds=[problem_seed(cfg.seed, ds.id, p["id"]) for p in chunk])
            sample_bar.update(len(chunk))
            rows = []
            for p, outs in zip(chunk, outputs, strict=True):
                for j, (text, n_tokens, reason) in enumerate(outs):
                    rows.append({"problem_id": p["id"], "level": p["level"], "subject": p["subject"], "sample_idx": j,
                                 "completion_tokens": n_tokens, "finish_reason": reason, "completion": text,
                                 "answer": p["answer"], "spec": spec_for(answer_format, p)})
            scores = grade_batch([first_answer(r["completion"], cfg.model.prompt) for r in rows],
                                 [r["answer"] for r in rows], specs=[r["spec"] for r in rows],
                                 timeout_s=ev.grade_timeout_s, progress=grade_bar.update)
            for r, s in zip(rows, scores, strict=True):
                r["correct"] = int(s)
                del r["answer"], r["spec"]
            frame = _typed(pd.DataFrame(rows))
            _write_atomic(parts / f"chunk_{i:05d}.parquet", lambda p, frame=frame: frame.to_parquet(p, index=False))
            written += 1
            if stop_after and written >= stop_after and i != todo[-1]:
                print(f"[{ds.id}] stopping after {written} chunk(s) ({STOP_ENV})", file=sys.stderr)
                raise SystemExit(75)
    finally:
        sample_bar.close()
        grade_bar.close()

    frame = pd.concat([pd.read_parquet(parts / f"chunk_{i:05d}.parquet") for i in range(len(chunks))],
                      ignore_index=True)
    samples = _typed(frame[SAMPLE_COLUMNS].copy())
    _write_atomic(out_dir / SAMPLES_FILE, lambda p: samples.to_parquet(p, index=False))

    def write_texts(path: Path) -> None:
        with path.open("w", encoding="utf-8") as fh:
            for r in frame[["problem_id", "sample_idx", "correct", "completion"]].itertuples(index=False):
                fh.write(json.dumps({"problem_id": r.problem_id, "sample_idx": int(r.sample_idx),
                                     "correct": int(r.correct), "completion": r.completion}) + "\n")

    _write_atomic(out_dir / "completions.jsonl", write_texts)
    summary = summarize(samples, ev.pass_k)
    summary.update({
        "benchmark": ds.id, "checkpoint": str(checkpoint), "n_samples_per_problem": n_samples,
        "temperature": ev.temperature, "top_p": ev.top_p, "max_new_tokens": ev.max_new_tokens,
        "finish_reason/length_frac": float((samples["finish_reason"] == "length").mean()),
        "completion_tokens/mean": float(samples["completion_tokens"].mean()),
    })
    _write_atomic(out_dir / SUMMARY_FILE, lambda p: p.write_text(json.dumps(summary, indent=1)))
    return summary


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable dtypes across chunks (level may be missing: nullable Int64)."""
    frame["level"] = pd.array(frame["level"], dtype="Int64")
    frame["subject"] = frame["subject"].astype("string")
    frame["problem_id"] = frame["problem_id"].astype("string")
    frame["finish_reason"] = frame["finish_reason"].astype("string")
    for col in ("sample_idx", "completion_tokens", "correct"):
        frame[col] = frame[col].astype("int64")
    return frame


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def run(cfg: RunConfig, out: Path | list[Path], *, checkpoint: str | None = None,
        benchmark: str | list[str] | None = None, replace_stale: bool = False) -> dict:
    """Evaluate every configured benchmark, or the named one(s), with one model load; returns
    {benchmark_id: summary}. `out`: one directory (DIR/{benchmark} for several benchmarks), or a list
    of one directory per named benchmark."""
    if benchmark is not None:
        configured = {b.id: b for b in evaluation_sets(cfg)}
        names = [benchmark] if isinstance(benchmark, str) else list(benchmark)
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise EvaluationError(f"--benchmark {unknown[0]!r} is not configured; configured: "
                                  f"{list(configured)} (evaluation.benchmarks and evaluation.final_benchmarks)")
        benchmarks = [configured[n] for n in names]
    else:
        benchmarks = list(cfg.evaluation.benchmarks)
        if not benchmarks:
            raise EvaluationError("evaluation.benchmarks is empty: nothing to evaluate (name a final benchmark "
                                  "with --benchmark)")
    checkpoint = checkpoint or cfg.model.path
    if checkpoint is None:
        raise EvaluationError("no checkpoint: model.path is unset (a tiny model), pass --checkpoint DIR")
    if cfg.evaluation.torch_threads:
        import torch

        torch.set_num_threads(cfg.evaluation.torch_threads)
    if cfg.evaluation.engine == "vllm":
        try:
            import vllm  # noqa: F401 - fail before any work if the engine is missing
        except ImportError as err:
            raise EvaluationError("evaluation.engine is 'vllm' but vLLM is not installed (GPU only: "
                                  "pip install -e '.[gpu]'); use engine: transformers on CPU") from err
    holder: dict = {}

    def factory():
        if "sampler" not in holder:
            holder["sampler"] = make_sampler(checkpoint, cfg)
        return holder["sampler"]

    if isinstance(out, list):
        if len(out) != len(benchmarks):
            raise EvaluationError(f"{len(out)} output directories for {len(benchmarks)} benchmarks")
        outs = [Path(o) for o in out]
    else:
        outs = [Path(out) / b.id if len(benchmarks) > 1 else Path(out) for b in benchmarks]
    return {b.id: evaluate_benchmark(cfg, b, factory, checkpoint, o, replace_stale=replace_stale)
            for b, o in zip(benchmarks, outs, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="resolved run config (YAML)")
    parser.add_argument("--out", required=True, nargs="+",
                        help="output directory: one per --checkpoint, or one per --benchmark")
    parser.add_argument("--checkpoint", nargs="+",
                        help="HF model directory or hub id (default: model.path); several checkpoints are "
                             "evaluated one after the other in this process, each into its own --out")
    parser.add_argument("--benchmark", nargs="+",
                        help="evaluate only these benchmark ids (e.g. math500, or a final one: math_test); "
                             "several: one checkpoint, its model loaded once, each benchmark into its own --out")
    parser.add_argument("--n-samples", type=int, nargs="+",
                        help="samples per problem, one per --checkpoint (default: evaluation.n_samples); "
                             "the workflow passes evaluation.intermediate_n_samples for steps before the last. A "
                             "benchmark entry's own n_samples (AIME's 32) wins over both")
    parser.add_argument("--replace-stale", action="store_true",
                        help="delete chunks left in --out by an evaluation with other settings, problems or "
                             "weights (default: refuse); the workflow passes it, as it reruns a job only when "
                             "its inputs changed")
    args = parser.parse_args(argv)
    checkpoints = args.checkpoint or [None]
    n_samples = args.n_samples or [None] * len(checkpoints)
    several = args.benchmark is not None and len(args.benchmark) > 1
    if several and len(checkpoints) > 1:
        parser.error("several --checkpoint with one --benchmark, or one checkpoint with several --benchmark: "
                     "not both")
    if several:
        if len(args.out) != len(args.benchmark) or len(n_samples) != 1:
            parser.error(f"{len(args.benchmark)} benchmarks and {len(args.out)} --out: give one --out per "
                         "benchmark (and at most one --n-samples)")
        outs = [[Path(o) for o in args.out]]
    elif not len(args.out) == len(checkpoints) == len(n_samples):
        parser.error(f"{len(checkpoints)} checkpoint(s), {len(args.out)} --out and {len(n_samples)} --n-samples: "
                     "give one --out (and --n-samples, if any) per checkpoint")
    else:
        outs = [Path(o) for o in args.out]
    if any(n is not None and n < 1 for n in n_samples):
        parser.error("--n-samples must be >= 1")
    try:
        cfg = load_run_config(args.config)
        benchmark = args.benchmark if several else (args.benchmark or [None])[0]
        for checkpoint, out, n in zip(checkpoints, outs, n_samples, strict=True):
            step_cfg = cfg if n is None else dataclasses.replace(
                cfg, evaluation=dataclasses.replace(cfg.evaluation, n_samples=n))
            summaries = run(step_cfg, out, checkpoint=checkpoint, benchmark=benchmark,
                            replace_stale=args.replace_stale)
            for bench, s in summaries.items():
                keys = ["accuracy", f"accuracy/{subset_key(HARD_SUBSET)}"] + [k for k in s if k.startswith("pass@")]
                where = out[list(summaries).index(bench)] if isinstance(out, list) else out
                print(where, bench, {k: round(s[k], 4) for k in keys if k in s}, flush=True)
    except (EvaluationError, DataError, ConfigError) as err:
        parser.exit(2, f"lens.evaluate: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
