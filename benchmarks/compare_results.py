"""Compare two results folders file by file: the tidy tables, the figures' and tables' data, REPORT.md.

    python benchmarks/compare_results.py BEFORE_RESULTS AFTER_RESULTS

What a refactor must leave unchanged (same machine, same config): every tidy table (Parquet), every
figure's CSV, every table's CSV/Markdown/LaTeX and REPORT.md. Measured wall-clock times are not a
result: the training metrics `time/*` (generation, scoring, step seconds), the cost columns derived
from them (`generation_s`, `scoring_s`, `other_s`, `wall_s`, `gpu_hours` and the tables' minutes and
time splits), and REPORT.md's lines naming the commit or the date are left out, each counted in the
summary so nothing is dropped silently. Exits 1 when anything else differs, printing the first lines
of each difference.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import pandas as pd

# Columns (wide tables) and metric names (the long training-metrics table) that hold measured wall time.
WALL_CLOCK_COLUMNS = {"generation_s", "scoring_s", "other_s", "wall_s", "gpu_hours", "step_time"}
WALL_CLOCK_METRIC = re.compile(r"^time/")
# Text lines that hold measured time or the commit (REPORT.md, the cost table's rows).
VOLATILE_LINE = re.compile(r"git sha|commit|generated|UTC|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|wall|minutes|min\b|"
                           r"\bs/step|hours", re.IGNORECASE)


def _frame(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame = frame.drop(columns=[c for c in frame.columns if c in WALL_CLOCK_COLUMNS])
    if "metric" in frame.columns:
        frame = frame[~frame["metric"].astype(str).str.match(WALL_CLOCK_METRIC)]
    return frame.reset_index(drop=True)


def _text(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not VOLATILE_LINE.search(line)]


def compare(before: Path, after: Path) -> tuple[list[str], dict[str, int]]:
    """(differences, counts): one message per differing file, and how many files of each kind were equal."""
    patterns = ["tidy/**/*.parquet", "figures/**/*.csv", "tables/**/*.csv", "tables/**/*.md", "tables/**/*.tex",
                "REPORT.md"]
    files = sorted({p.relative_to(before) for pattern in patterns for p in before.glob(pattern)}
                   | {p.relative_to(after) for pattern in patterns for p in after.glob(pattern)})
    problems, counts = [], {"equal": 0, "compared": len(files)}
    for rel in files:
        a, b = before / rel, after / rel
        if not (a.is_file() and b.is_file()):
            problems.append(f"{rel}: only in {'before' if a.is_file() else 'after'}")
            continue
        if rel.suffix in (".parquet", ".csv"):
            fa, fb = _frame(a), _frame(b)
            try:
                pd.testing.assert_frame_equal(fa, fb, check_exact=True)
            except AssertionError as err:
                problems.append(f"{rel}: {str(err).splitlines()[0:6]}")
                continue
        else:
            ta, tb = _text(a), _text(b)
            if ta != tb:
                diff = list(difflib.unified_diff(ta, tb, lineterm="", n=0))[2:10]
                problems.append(f"{rel}:\n  " + "\n  ".join(diff))
                continue
        counts["equal"] += 1
    return problems, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    problems, counts = compare(args.before, args.after)
    for problem in problems:
        print(problem)
    print(f"{counts['equal']} of {counts['compared']} files equal (wall-clock columns, time/* metrics and "
          "lines with dates, times or the commit left out)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
