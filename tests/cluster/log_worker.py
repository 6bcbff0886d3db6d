"""One stand-in training job for the tracking-server tests: logs rollout steps the way lens.train does
(train_metrics.parquet rewritten every step, the same rows to MLflow through lens.tracking.RunTracker).

    python tests/cluster/log_worker.py --run-dir DIR --uri http://HOST:PORT --from-step A --to-step B

A second call with a --from-step below the last one's --to-step is a resumed job: like lens.train it
keeps the file's rows up to its checkpoint (from-step - 1) and computes the later steps again.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lens.config import RunConfig, parse
from lens.tracking import RunTracker
from lens.train import read_metrics, write_metrics

METRICS = ("reward", "reward_std", "loss", "groups/all_wrong_frac", "adv/abs_mean/all_wrong", "pass@1")


def value(step: int, metric: int, seed: int) -> float:
    return round(math.sin(step * 0.37 + metric * 1.3 + seed), 6)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-step", type=int, default=1)
    parser.add_argument("--to-step", type=int, required=True)
    args = parser.parse_args(argv)
    cfg = parse(RunConfig, {"model": {"name": "stand_in", "tiny": {}}, "algorithm": {"name": "lens"},
                            "seed": args.seed, "tracking": {"uri": args.uri, "experiment": "server-test"}})
    args.run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = args.run_dir / "train_metrics.parquet"
    rows = [(int(s), str(m), float(v)) for s, m, v in read_metrics(metrics_path).itertuples(index=False)
            if s < args.from_step]
    tracker = RunTracker(cfg, args.run_dir)
    assert tracker.start() is not None, "no MLflow run"
    for step in range(args.from_step, args.to_step + 1):
        new = [(step, name, value(step, i, args.seed)) for i, name in enumerate(METRICS)]
        rows.extend(new)
        write_metrics(rows, metrics_path)
        tracker.log_metrics({k: v for _, k, v in new}, step)
    assert tracker.enabled, "tracking was disabled by an error (see the warning above)"
    tracker.finish()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
