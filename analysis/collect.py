"""Collect every run's training metrics, graded evaluation samples and confident mistakes into tidy tables.

    python -m analysis.collect --runs results/runs --out results/tidy
    python -m analysis.collect --runs results/runs --out results/tidy/sweeps --sweeps
    python -m analysis.collect --runs results/runs --out results/tidy/ablations --models qwen25_3b --seeds 0

Reads results/runs/{model}/{algo}/seed{seed}/train_metrics.parquet and
results/runs/{model}/{algo}/seed{seed}/eval/{benchmark}/step{S}/samples.parquet (layout in
results/README.md) and writes results/tidy/train_metrics.parquet and
results/tidy/eval_samples.parquet with the column types of TRAIN_SCHEMA and EVAL_SCHEMA, rows
sorted, so the same runs always give the same tables. Every figure and table script reads only
these two files (`read_train_metrics`, `read_eval_samples`). With --sweeps the sweep runs
results/runs/{model}/{algo}/{param}-{value}/seed{seed} (target `sweeps`) are read too, their `algo`
being the arm `{algo}/{param}-{value}` (lens.config.parse_sweep_arm), so every helper below that
groups by (model, algo) treats each swept value as an arm of its own.
A third table, results/tidy/negative_samples.parquet (NEGATIVE_SCHEMA, `read_negative_samples`),
holds the wrong answers of all-wrong groups from each run's rollout records (rollouts.parquet) that
carry a confidence, with LENS's calibrated reward under the run's own LENS parameters: the data of
the confident-mistakes figure and table.
A fourth, results/tidy/seed_pairing.csv (`seed_pairing`, `read_seed_pairing`), says per model and seed
whether that seed's runs share their random numbers, as the paired comparisons assume: every run's
first rollout is sampled from the same start model before any update, so where the arms draw from the
same streams their step-1 records hold the same completions (bit-identical on the CPU; on GPUs this is
where it is checked), and where they do not (an engine that reseeds, a kernel that is not
deterministic) they differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lens import layout
from lens.layout import EVAL_FILE, METRICS_FILE, NEGATIVE_FILE, PAIRING_FILE, ROLLOUTS_FILE, RUN_CONFIG_FILE, TRAIN_FILE

TRAIN_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("algo", pa.string()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("metric", pa.string()),
    ("value", pa.float64()),
])
EVAL_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("algo", pa.string()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("benchmark", pa.string()),
    ("problem_id", pa.string()),
    ("level", pa.int64()),  # null where the benchmark has no difficulty levels
    ("subject", pa.string()),  # null where the benchmark has no subjects
    ("sample_idx", pa.int64()),
    ("correct", pa.bool_()),
    ("completion_tokens", pa.int64()),
])
NEGATIVE_SCHEMA = pa.schema([
    ("model", pa.string()),
    ("algo", pa.string()),
    ("seed", pa.int64()),
    ("step", pa.int64()),
    ("group", pa.int64()),
    ("sample_idx", pa.int64()),
    ("problem_id", pa.string()),
    ("completion", pa.string()),  # the first COMPLETION_CHARS characters (rollouts.parquet has it whole)
    ("same_as", pa.int64()),  # the group's first sample_idx whose whole completion is the same text
    ("completion_tokens", pa.int64()),
    ("confidence", pa.float64()),
    ("lens_reward", pa.float64()),  # LENS's r^ (lens.objective.lens_rewards) with the run's wrong_scale, floor_factor
    ("advantage", pa.float64()),
    ("grpo_advantage", pa.float64()),
])
COMPLETION_CHARS = 300
TRAIN_KEYS = ["model", "algo", "seed", "metric", "step"]
NEGATIVE_KEYS = ["model", "algo", "seed", "step", "group", "sample_idx"]
EVAL_KEYS = ["model", "algo", "seed", "benchmark", "step", "problem_id", "sample_idx"]

class TidyError(RuntimeError):
    """Results are missing or malformed; the message says which file and what to run."""


def _read(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for truncated/corrupt files
        raise TidyError(f"{path}: cannot read parquet file ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise TidyError(f"{path}: missing column(s) {missing}; has {list(frame.columns)}")
    return frame


def _train_rows(model: str, algo: str, seed: int, run: Path) -> pd.DataFrame | None:
    path = run / METRICS_FILE
    if not path.exists():
        return None
    frame = _read(path, ["step", "metric", "value"])[["step", "metric", "value"]]
    return frame.assign(model=model, algo=algo, seed=seed)


def _eval_rows(model: str, algo: str, seed: int, run: Path) -> list[pd.DataFrame]:
    frames = []
    for benchmark, step, path in layout.eval_files(run):
        frame = _read(path, ["problem_id", "level", "subject", "sample_idx", "correct", "completion_tokens"])
        correct = pd.to_numeric(frame["correct"], errors="coerce").astype("float64")
        if correct.isna().any() or not correct.isin([0.0, 1.0]).all():
            raise TidyError(f"{path}: column 'correct' must hold only 0/1 or true/false")
        frame = frame.assign(correct=correct == 1.0)
        frames.append(frame.assign(model=model, algo=algo, seed=seed, step=step, benchmark=benchmark))
    return frames


def _negative_rows(model: str, algo: str, seed: int, run: Path) -> pd.DataFrame | None:
    """Wrong answers of all-wrong groups with a confidence, from the run's rollout records."""
    import torch
    import yaml

    from lens.objective import lens_rewards

    path = run / ROLLOUTS_FILE
    if not path.exists():
        return None
    frame = _read(path, ["step", "group", "sample_idx", "problem_id", "completion", "completion_tokens", "reward",
                         "confidence", "group_type", "advantage", "grpo_advantage"])
    groups = frame[(frame["group_type"] == "all_wrong") & frame["confidence"].notna()]
    if groups.empty:
        return None
    config = run / RUN_CONFIG_FILE
    params = (yaml.safe_load(config.read_text()) or {}).get("algorithm", {}) if config.exists() else {}
    knobs = {k: float(params[k]) for k in ("wrong_scale", "floor_factor") if k in params}
    rows = []
    for _, group in groups.groupby(["step", "group"], sort=True):
        group = group.sort_values("sample_idx")
        rewards = torch.tensor(group["reward"].to_numpy(), dtype=torch.float64).view(1, -1)
        confidence = torch.tensor(group["confidence"].to_numpy(), dtype=torch.float64).view(1, -1)
        # Identical completions of a group (a model sure of one wrong answer samples it again and again)
        # point to the first of them, compared whole: the tidy table keeps only a prefix.
        same_as = group.groupby("completion", sort=False)["sample_idx"].transform("min")
        rows.append(group.assign(lens_reward=lens_rewards(rewards, confidence, **knobs).view(-1).numpy(),
                                 same_as=same_as))
    negatives = pd.concat(rows, ignore_index=True)
    negatives["completion"] = negatives["completion"].astype(str).str.slice(0, COMPLETION_CHARS)
    return negatives.assign(model=model, algo=algo, seed=seed)


PAIRING_COLUMNS = ["model", "seed", "arms", "compared", "shared"]


def _first_rollout(run: Path) -> pd.DataFrame | None:
    """The step-1 rollout records of a run (lens.trainer records step 1 of every run), or None."""
    path = run / ROLLOUTS_FILE
    if not path.exists():
        return None
    filters = [("step", "=", 1)]
    if "gen_batch" in pq.read_schema(path).names:
        filters.append(("gen_batch", "=", 0))  # dynamic sampling's refills are other prompts: its first batch compares
    frame = pq.read_table(path, columns=["step", "group", "sample_idx", "problem_id", "completion"],
                          filters=filters).to_pandas()
    return frame.sort_values(["group", "sample_idx"]).reset_index(drop=True) if len(frame) else None


def seed_pairing(first_rollouts: dict[tuple[str, str, int], pd.DataFrame]) -> pd.DataFrame:
    """Per (model, seed): how many arms had step-1 records (`compared`) and whether they all sampled the
    same prompts and completions (`shared`; None with fewer than two arms to compare)."""
    rows = []
    for model, seed in sorted({(m, s) for m, _, s in first_rollouts}):
        frames = [f for (m, _, s), f in sorted(first_rollouts.items()) if (m, s) == (model, seed)]
        arms = sorted(a for m, a, s in first_rollouts if (m, s) == (model, seed))
        shared = None if len(frames) < 2 else all(f.equals(frames[0]) for f in frames[1:])
        rows.append({"model": model, "seed": seed, "arms": " ".join(arms), "compared": len(frames),
                     "shared": shared})
    return pd.DataFrame(rows, columns=PAIRING_COLUMNS)


def read_seed_pairing(tidy: str | Path) -> pd.DataFrame:
    """results/tidy/seed_pairing.csv; TidyError if it is missing."""
    path = Path(tidy) / PAIRING_FILE
    if not path.exists():
        raise TidyError(f"{path}: missing; run `python -m analysis.collect` first")
    frame = pd.read_csv(path, dtype={"model": str, "arms": str})
    frame["shared"] = frame["shared"].map({True: True, False: False, "True": True, "False": False})
    return frame


def _typed(frame: pd.DataFrame, schema: pa.Schema, keys: list[str]) -> pd.DataFrame:
    """Columns in schema order with the schema's types (nullable ints/strings), rows sorted by keys."""
    out = {}
    for f in schema:
        col = frame[f.name]
        if pa.types.is_string(f.type):
            out[f.name] = col.astype("string")
        elif pa.types.is_int64(f.type):
            if f.name == "level":
                col = pd.to_numeric(col, errors="raise")
            out[f.name] = col.astype("Int64")
        elif pa.types.is_float64(f.type):
            out[f.name] = col.astype("float64")
        elif pa.types.is_boolean(f.type):
            out[f.name] = col.astype("bool")
    typed = pd.DataFrame(out)
    return typed.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _write(frame: pd.DataFrame, schema: pa.Schema, path: Path) -> None:
    """Write atomically, so a reader never sees half a table."""
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def collect(runs: str | Path, out: str | Path, sweeps: bool = False, models: list[str] | None = None,
            seeds: list[int] | None = None, algos: list[str] | None = None) -> dict[str, int]:
    """Scan `runs` (with `sweeps`: the sweep runs too; only `models`, `seeds` and `algos` (ids or arms)
    where given), write the tidy tables under `out`; returns row and run counts."""
    runs, out = Path(runs), Path(out)
    if not runs.is_dir():
        raise TidyError(f"{runs}: no such directory; run the training and evaluation jobs first")
    dirs = [(m, a, s, d) for m, a, s, d in layout.run_dirs(runs, sweeps)
            if (models is None or m in models) and (seeds is None or s in seeds) and (algos is None or a in algos)]
    if not dirs:
        only = (f" of models {models}" * (models is not None) + f" of seeds {seeds}" * (seeds is not None)
                + f" of algorithms {algos}" * (algos is not None))
        raise TidyError(f"{runs}: no run directories of the form {{model}}/{{algo}}/seed{{N}}/{only}")
    train = [f for m, a, s, d in dirs if (f := _train_rows(m, a, s, d)) is not None]
    evals = [f for m, a, s, d in dirs for f in _eval_rows(m, a, s, d)]
    if not train and not evals:
        raise TidyError(f"{runs}: {len(dirs)} run directories but no {TRAIN_FILE} and no "
                        f"eval/{{benchmark}}/step{{S}}/samples.parquet in any of them")
    out.mkdir(parents=True, exist_ok=True)
    empty_train = pd.DataFrame({f.name: pd.Series([], dtype=object) for f in TRAIN_SCHEMA})
    empty_eval = pd.DataFrame({f.name: pd.Series([], dtype=object) for f in EVAL_SCHEMA})
    train_df = _typed(pd.concat(train, ignore_index=True) if train else empty_train, TRAIN_SCHEMA, TRAIN_KEYS)
    eval_df = _typed(pd.concat(evals, ignore_index=True) if evals else empty_eval, EVAL_SCHEMA, EVAL_KEYS)
    dup = eval_df.duplicated(EVAL_KEYS)
    if dup.any():
        row = eval_df[dup].iloc[0]
        raise TidyError(f"duplicate evaluation sample {dict(row[EVAL_KEYS])}: problem ids must be unique "
                        "within a benchmark")
    negatives = [f for m, a, s, d in dirs if (f := _negative_rows(m, a, s, d)) is not None]
    empty_negative = pd.DataFrame({f.name: pd.Series([], dtype=object) for f in NEGATIVE_SCHEMA})
    negative_df = _typed(pd.concat(negatives, ignore_index=True) if negatives else empty_negative, NEGATIVE_SCHEMA,
                         NEGATIVE_KEYS)
    _write(train_df, TRAIN_SCHEMA, out / TRAIN_FILE)
    _write(eval_df, EVAL_SCHEMA, out / EVAL_FILE)
    _write(negative_df, NEGATIVE_SCHEMA, out / NEGATIVE_FILE)
    firsts = {(m, a, s): f for m, a, s, d in dirs if (f := _first_rollout(d)) is not None}
    seed_pairing(firsts).to_csv(out / PAIRING_FILE, index=False)
    return {"runs": len(dirs), "train_rows": len(train_df), "eval_rows": len(eval_df),
            "eval_files": len(evals), "negative_rows": len(negative_df)}


# --------------------------------------------------------------------------------------------
# Reading the tidy tables (every figure/table script goes through these)
# --------------------------------------------------------------------------------------------
def _read_tidy(tidy: str | Path, name: str, schema: pa.Schema) -> pd.DataFrame:
    path = Path(tidy) / name
    if not path.exists():
        raise TidyError(f"{path}: not found; run `python -m analysis.collect --runs results/runs "
                        f"--out {Path(tidy)}` first")
    frame = _read(path, schema.names)
    if frame.empty:
        raise TidyError(f"{path}: the table is empty (no runs wrote "
                        f"{'evaluation samples' if name == EVAL_FILE else 'training metrics'})")
    return frame


def read_eval_samples(tidy: str | Path) -> pd.DataFrame:
    """results/tidy/eval_samples.parquet; TidyError if it is missing or empty."""
    return _read_tidy(tidy, EVAL_FILE, EVAL_SCHEMA)


def read_train_metrics(tidy: str | Path) -> pd.DataFrame:
    """results/tidy/train_metrics.parquet; TidyError if it is missing or empty."""
    return _read_tidy(tidy, TRAIN_FILE, TRAIN_SCHEMA)


def read_negative_samples(tidy: str | Path) -> pd.DataFrame:
    """results/tidy/negative_samples.parquet; TidyError if it is missing. Empty is valid: no run
    recorded an all-wrong group with confidences (GRPO with one update per rollout computes none)."""
    path = Path(tidy) / NEGATIVE_FILE
    if not path.exists():
        raise TidyError(f"{path}: not found; run `python -m analysis.collect --runs results/runs "
                        f"--out {Path(tidy)}` first")
    return _read(path, NEGATIVE_SCHEMA.names)


def pick_benchmark(samples: pd.DataFrame, benchmark: str | None) -> tuple[str, pd.DataFrame]:
    """The rows of `benchmark`, or of math500 if present, else of the alphabetically first one."""
    found = sorted(samples["benchmark"].unique())
    if benchmark is None:
        benchmark = "math500" if "math500" in found else found[0]
    elif benchmark not in found:
        raise TidyError(f"benchmark {benchmark!r} not in the evaluation samples; found {found}")
    return benchmark, samples[samples["benchmark"] == benchmark]


def final_step_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """For each (model, algo), the rows of the last step that every one of its seeds evaluated.

    Taking the last step common to all seeds keeps a seed whose run stopped early from being
    compared at another training step than its siblings.
    """
    parts = []
    for (_, _), group in samples.groupby(["model", "algo"], sort=True):
        steps_per_seed = [set(g["step"]) for _, g in group.groupby("seed")]
        common = set.intersection(*steps_per_seed)
        if not common:
            raise TidyError(f"model {group['model'].iloc[0]!r}, algo {group['algo'].iloc[0]!r}: "
                            "its seeds share no evaluated step")
        parts.append(group[group["step"] == max(common)])
    return pd.concat(parts, ignore_index=True)


def per_problem(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, algo, seed, benchmark, step, problem): n samples, c correct, level, subject."""
    keys = ["model", "algo", "seed", "benchmark", "step", "problem_id"]
    grouped = samples.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(n=("correct", "size"), c=("correct", "sum"), level=("level", "first"),
                      subject=("subject", "first")).reset_index()
    return out.astype({"n": "int64", "c": "int64"})


def seed_problem_matrix(rows: pd.DataFrame, value: str) -> tuple[np.ndarray, list[int], list[str]]:
    """Pivot per-problem rows of ONE (model, algo, benchmark, step) to a (seeds, problems) array.

    Only problems that every seed evaluated are kept (as analysis.stats.seed_problem_scores does):
    the bootstrap resamples the same problem columns for all seeds. Seeds normally share the
    evaluation set; when they do not (a partial evaluation, or a `limit` subset drawn per seed) the
    dropped count is reported on stderr, and no shared problem at all is an error.
    """
    table = rows.pivot(index="seed", columns="problem_id", values=value).sort_index().sort_index(axis=1)
    shared = table.dropna(axis=1, how="any")
    if shared.shape[1] == 0:
        raise TidyError(f"the seeds {table.index.tolist()} share no evaluated problem; re-run the evaluation "
                        "of the incomplete seed or evaluate every seed on the same problems")
    if shared.shape[1] < table.shape[1]:
        print(f"warning: {table.shape[1] - shared.shape[1]} of {table.shape[1]} problems were not evaluated by "
              f"every seed {table.index.tolist()}; using the {shared.shape[1]} shared ones", file=sys.stderr)
    return shared.to_numpy(dtype=np.float64), shared.index.tolist(), shared.columns.tolist()


def shared_columns(a: np.ndarray, a_ids: list[str], b: np.ndarray, b_ids: list[str]):
    """Restrict two (seeds, problems) arrays to the problems both have, same column order."""
    common = sorted(set(a_ids) & set(b_ids))
    if not common:
        raise TidyError("the two algorithms share no evaluated problem: a paired comparison is impossible")
    if len(common) < max(len(a_ids), len(b_ids)):
        print(f"warning: paired comparison on the {len(common)} problems both algorithms evaluated "
              f"(of {len(a_ids)} and {len(b_ids)})", file=sys.stderr)
    a_pos = {pid: i for i, pid in enumerate(a_ids)}
    b_pos = {pid: i for i, pid in enumerate(b_ids)}
    return a[:, [a_pos[p] for p in common]], b[:, [b_pos[p] for p in common]], common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="results/runs", help="root of the run directories")
    parser.add_argument("--out", default="results/tidy", help="directory for the tidy tables")
    parser.add_argument("--sweeps", action="store_true",
                        help="also read the sweep runs {model}/{algo}/{param}-{value}/seed{seed} (algo = arm)")
    parser.add_argument("--models", nargs="+", help="read only these models' runs (default: every model)")
    parser.add_argument("--seeds", nargs="+", type=int, help="read only these seeds' runs (default: every seed)")
    parser.add_argument("--algos", nargs="+", help="read only these algorithms' or arms' runs (default: every one)")
    args = parser.parse_args(argv)
    try:
        counts = collect(args.runs, args.out, args.sweeps, args.models, args.seeds, args.algos)
    except TidyError as err:
        print(f"analysis.collect: error: {err}", file=sys.stderr)
        return 1
    print(f"analysis.collect: {counts['runs']} runs, {counts['train_rows']} training-metric rows, "
          f"{counts['eval_rows']} evaluation samples from {counts['eval_files']} files, "
          f"{counts['negative_rows']} wrong answers of all-wrong groups -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
