"""Helpers shared by the grading measurements: the shared data location and machine load."""

import json
import os
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def clear_math_verify_caches() -> None:
    """Math-Verify memoises parses (lru_cache); clear them so a timed run starts cold."""
    from math_verify import parser

    for name in ("parse_latex_cached", "parse_expr_cached"):
        fn = getattr(parser, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()
