"""The files a training run keeps in its directory while it trains (lens.layout names them): checkpoints and
what resuming needs of them, the metrics file, and the rollout records written one step at a time.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from lens.layout import ROLLOUT_PARTS, ROLLOUTS_FILE

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
