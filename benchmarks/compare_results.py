"""Compare two results folders file by file: the tidy tables, the figures' and tables' data, REPORT.md.

    python benchmarks/compare_results.py BEFORE_RESULTS AFTER_RESULTS

What a refactor must leave unchanged (same machine, same config): every tidy table (Parquet), every
figure's CSV, every table's CSV/Markdown/LaTeX and REPORT.md. Measured wall-clock times are not a
result, so these are left out: the training metrics `time/*` (generation, scoring, step seconds) and
TRL's `step_time`; the cost columns derived from them (`generation_s`, `scoring_s`, `other_s`,
`wall_s`, `gpu_hours`), and in rendered tables the cells under "Wall time", "Generation / scoring /
rest" and "GPU-hours"; REPORT.md's `git commit` and `generated` lines. The lines touched are counted,
so nothing is dropped silently. Exits 1 when anything else differs, printing the first lines of each
difference.
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
WALL_CLOCK_METRIC = re.compile(r"^(time/|step_time$)")  # ours, and TRL's step_time
# REPORT.md's lines naming the commit or the time it was written.
VOLATILE_LINE = re.compile(r"^- (git commit|generated): ")
# Rendered table cells of measured time: the cost table's wall time, its split and its GPU-hours.
WALL_CLOCK_HEADER = re.compile(r"wall time|generation / scoring|gpu-hours", re.IGNORECASE)


def _frame(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    frame = frame.drop(columns=[c for c in frame.columns if c in WALL_CLOCK_COLUMNS])
    if "metric" in frame.columns:
        frame = frame[~frame["metric"].astype(str).str.match(WALL_CLOCK_METRIC)]
    return frame.reset_index(drop=True)


def _text(path: Path) -> tuple[list[str], int]:
    """The file's lines with the volatile ones dropped and measured-time cells of its tables blanked
    (Markdown rows split on `|`, LaTeX rows on `&`), and how many lines were touched."""
    lines, masked, touched = [], set(), 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if VOLATILE_LINE.match(line):
            touched += 1
            continue
        sep = "|" if line.startswith("|") else "&" if " & " in line else None
        if sep is None:
            if not re.match(r"\\(top|mid|bottom)rule", line):
                masked = set()  # a table ends at its first line that is neither a row nor a LaTeX rule
        else:
            cells = line.split(sep)
            if any(WALL_CLOCK_HEADER.search(c) for c in cells):
                masked = {i for i, c in enumerate(cells) if WALL_CLOCK_HEADER.search(c)}
            elif masked and not re.fullmatch(r"[\s|:-]+", line):  # not Markdown's alignment row
                cells = ["<time>" if i in masked else c for i, c in enumerate(cells)]
                touched += line != sep.join(cells)
                line = sep.join(cells)
        lines.append(line)
    return lines, touched


def compare(before: Path, after: Path) -> tuple[list[str], dict[str, int]]:
    """(differences, counts): one message per differing file, and how many files of each kind were equal."""
    patterns = ["tidy/**/*.parquet", "figures/**/*.csv", "tables/**/*.csv", "tables/**/*.md", "tables/**/*.tex",
                "REPORT.md"]
    files = sorted({p.relative_to(before) for pattern in patterns for p in before.glob(pattern)}
                   | {p.relative_to(after) for pattern in patterns for p in after.glob(pattern)})
    problems, counts = [], {"equal": 0, "compared": len(files), "lines_left_out": 0}
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
            (ta, na), (tb, _) = _text(a), _text(b)
            counts["lines_left_out"] += na
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
    print(f"{counts['equal']} of {counts['compared']} files equal; left out: the columns {sorted(WALL_CLOCK_COLUMNS)}, "
          f"the time/* and step_time metrics, and measured times or the commit in {counts['lines_left_out']} lines "
          "of the before folder's text files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
