"""Cross-check with lm-eval: its minerva_math prompt and metrics on a local MATH-500 JSONL.

    python -m lens.lm_eval_check --checkpoint DIR_OR_HUB_ID \
        --data ../shared/data/math/math500.jsonl [--limit N] [--max-gen-toks N] [--out DIR]

Writes an override task YAML into a temporary include directory (it `include`s
lens/lm_eval_tasks/lens_minerva_math500.yaml and only sets the data file), runs
``lm_eval.simple_evaluate`` with the `hf` model on it, prints exact_match and math_verify, and
writes the results (and per-sample logs) to DIR/results.json when --out is given. This is an
independent check of lens.evaluate's grading, not the paper's protocol (greedy, 4-shot Minerva
prompt, instead of 16 samples at T = 1 with the run's own prompt).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

TASK = "lens_minerva_math500"
TASK_YAML = Path(__file__).resolve().parent / "lm_eval_tasks" / f"{TASK}.yaml"


def write_task_yaml(include_dir: Path, data_file: str | Path) -> Path:
    """An override of the packaged task whose only change is the (absolute) data file path."""
    data_file = Path(data_file).expanduser().resolve()
    if not data_file.is_file():
        raise FileNotFoundError(f"MATH-500 JSONL not found: {data_file}")
    text = (f"include: {json.dumps(str(TASK_YAML))}\n"
            f"task: {TASK}\n"
            "dataset_kwargs:\n  data_files:\n"
            f"    test: {json.dumps(str(data_file))}\n")
    path = Path(include_dir) / f"{TASK}.yaml"
    path.write_text(text)
    return path


def run_check(checkpoint: str, data_file: str | Path, *, limit: int | None = None, max_gen_toks: int | None = None,
              batch_size: int = 1, device: str | None = None) -> dict:
    """lm-eval's results dict for the task (results[TASK] holds exact_match,none and math_verify,none)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory(prefix="lens_lm_eval_") as include_dir:
        write_task_yaml(Path(include_dir), data_file)
        manager = TaskManager(include_path=include_dir)
        gen_kwargs = {"max_gen_toks": max_gen_toks} if max_gen_toks else None
        model_args = {"pretrained": str(checkpoint), "dtype": "float32" if device in (None, "cpu") else "auto"}
        return lm_eval.simple_evaluate(
            model="hf", model_args=model_args, tasks=[TASK], task_manager=manager, limit=limit,
            batch_size=batch_size, device=device or "cpu", gen_kwargs=gen_kwargs, log_samples=True,
            bootstrap_iters=0,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="HF model directory or hub id")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "math"
                                              / "math500.jsonl"), help="MATH-500 JSONL (problem, solution, ...)")
    parser.add_argument("--limit", type=int, help="first N problems only")
    parser.add_argument("--max-gen-toks", type=int, help="generation length (lm-eval's default: 256)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    parser.add_argument("--out", help="directory for results.json")
    args = parser.parse_args(argv)
    try:
        results = run_check(args.checkpoint, args.data, limit=args.limit, max_gen_toks=args.max_gen_toks,
                            batch_size=args.batch_size, device=args.device)
    except FileNotFoundError as err:
        parser.exit(2, f"lens.lm_eval_check: error: {err}\n")
    metrics = results["results"][TASK]
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
