"""The embedded benchmark: MATH-style levelled arithmetic with short worked solutions.

    python -m lens.synthetic --config config/config.yaml --out results/data/synthetic

writes ``train.jsonl`` (with a worked ``solution`` per row, for the supervised warm-up),
``rl.jsonl`` (the RL prompt mix: a level-weighted subset of train) and ``test.jsonl``, each in
the problem schema of ``lens.data`` ({id, problem, answer, level, subject, source}). Only the
``synthetic`` section of the config is read, so editing any other section never regenerates data.

Levels grow in the number of steps and in the arithmetic each step needs:

    1  a + b                  one step, single digits
    2  a + b + c              two steps, the second may carry
    3  a x b + c              a times-table fact, then a carry
    4  a x b + c x d          two facts, then a two-digit sum
    5  ab x c                 split the tens: two facts, a shift and a three-digit sum

Every solution writes at least one intermediate equation before ``\\boxed{N}``: with answer-only
responses most tokens are fixed formatting, every response's confidence is about the same, and the
confidence reweighting of LENS has nothing to work with. The equations are written tersely
(``6*7=42 42+5=47 \\boxed{47}``: 16-37 characters on average from Level 1 to 5, at most 38): with
one token per character every character is sampled, scored and back-propagated in each RL step,
and LaTeX-styled equations (``$6\\times7=42$, $42+5=47$. \\boxed{47}``) are ~50 % longer
(docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import yaml

from lens.config import ConfigError, SyntheticConfig, parse

LEVELS = (1, 2, 3, 4, 5)
SUBJECTS = {1: "addition", 2: "addition", 3: "mixed", 4: "mixed", 5: "multiplication"}
DIGITS = range(1, 10)
FACTORS = range(2, 10)  # times tables without the trivial x1


def _problem(level: int, key: str, expr: str, steps: list[str], answer: int) -> dict:
    """One problem in the problem schema; `steps` are equations written in the solution."""
    solution = " ".join(steps) + f" \\boxed{{{answer}}}"
    return {
        "id": f"synthetic-L{level}-{key}",
        "problem": f"Compute ${expr}$.",
        "answer": str(answer),
        "level": level,
        "subject": SUBJECTS[level],
        "source": "synthetic",
        "solution": solution,
    }


def enumerate_level(level: int) -> Iterator[dict]:
    """Every problem of a level, in a fixed order (the split shuffles a copy)."""
    if level == 1:
        for a, b in itertools.product(DIGITS, DIGITS):
            yield _problem(1, f"{a}+{b}", f"{a} + {b}", [f"{a}+{b}={a + b}"], a + b)
    elif level == 2:
        for a, b, c in itertools.product(DIGITS, DIGITS, DIGITS):
            s = a + b
            yield _problem(2, f"{a}+{b}+{c}", f"{a} + {b} + {c}", [f"{a}+{b}={s}", f"{s}+{c}={s + c}"], s + c)
    elif level == 3:
        for a, b, c in itertools.product(FACTORS, FACTORS, DIGITS):
            p = a * b
            yield _problem(3, f"{a}*{b}+{c}", f"{a} \\times {b} + {c}",
                           [f"{a}*{b}={p}", f"{p}+{c}={p + c}"], p + c)
    elif level == 4:
        for a, b, c, d in itertools.product(FACTORS, FACTORS, FACTORS, FACTORS):
            p, q = a * b, c * d
            yield _problem(4, f"{a}*{b}+{c}*{d}", f"{a} \\times {b} + {c} \\times {d}",
                           [f"{a}*{b}={p}", f"{c}*{d}={q}", f"{p}+{q}={p + q}"], p + q)
    elif level == 5:
        for ab, c in itertools.product(range(11, 100), FACTORS):
            tens, units = 10 * (ab // 10), ab % 10
            if units == 0:
                continue  # 30 x 6 is one fact plus a shift: a level-3 problem in disguise
            t, u = tens * c, units * c
            yield _problem(5, f"{ab}*{c}", f"{ab} \\times {c}",
                           [f"{tens}*{c}={t}", f"{units}*{c}={u}", f"{t}+{u}={t + u}"], t + u)
    else:
        raise ValueError(f"unknown level {level}; levels are {LEVELS}")


def make_splits(cfg: SyntheticConfig) -> dict[str, list[dict]]:
    """Fixed train/rl/test splits for `cfg.seed`: test and train are disjoint within each level.

    Per level the problems are shuffled with a generator seeded by (seed, level); the first
    `test_per_level` form the test split and the next `train_per_level` the train split (fewer when
    a level has fewer distinct problems). The RL prompt set takes `rl_per_level[level - 1]` train
    problems of each level, so the RL mix can lean toward the hard levels. `extra_test_per_level`
    adds test problems of a level from the problems after its train split, which no split uses: more
    evaluation problems where power is needed, with train and rl exactly as without them.
    """
    for key in ("rl_per_level", "extra_test_per_level"):
        counts = getattr(cfg, key)
        if len(counts) != len(LEVELS) or min(counts) < 0:
            raise ConfigError(f"synthetic.{key}: needs one count >= 0 per level {list(LEVELS)}, got {list(counts)}")
    splits: dict[str, list[dict]] = {"train": [], "rl": [], "test": []}
    for level in LEVELS:
        pool = list(enumerate_level(level))
        rng = random.Random(f"{cfg.seed}-{level}")
        rng.shuffle(pool)
        if len(pool) <= cfg.test_per_level:
            raise ValueError(f"synthetic: level {level} has {len(pool)} problems, not enough for "
                             f"test_per_level={cfg.test_per_level} plus a training split")
        test = pool[: cfg.test_per_level]
        train_end = cfg.test_per_level + cfg.train_per_level
        train = pool[cfg.test_per_level : train_end]
        n_extra = cfg.extra_test_per_level[level - 1]
        unused = max(0, len(pool) - train_end)
        if n_extra > unused:
            raise ConfigError(f"synthetic.extra_test_per_level: level {level} has {unused} problems outside "
                              f"its test and train splits, {n_extra} asked for")
        test += pool[train_end : train_end + n_extra]
        n_rl = cfg.rl_per_level[level - 1]
        splits["test"] += [{k: v for k, v in p.items() if k != "solution"} for p in test]
        splits["train"] += train
        splits["rl"] += [{k: v for k, v in p.items() if k != "solution"} for p in train[:n_rl]]
    return splits


def write_splits(cfg: SyntheticConfig, out_dir: str | Path) -> dict[str, int]:
    """Write `{split}.jsonl` under `out_dir`; returns the number of records per split."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, records in make_splits(cfg).items():
        tmp = out_dir / f".{name}.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        tmp.replace(out_dir / f"{name}.jsonl")
        counts[name] = len(records)
    return counts


def load_synthetic_config(path: str | Path) -> SyntheticConfig:
    """The `synthetic` section of a workflow config, or a file holding only that section."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if isinstance(data, dict) and "synthetic" in data:
        return parse(SyntheticConfig, data["synthetic"], source=str(path), key="synthetic")
    return parse(SyntheticConfig, data, source=str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True,
                        help="workflow config with a `synthetic` section, or a file holding only that section")
    parser.add_argument("--out", required=True, help="output directory for train/rl/test.jsonl")
    args = parser.parse_args(argv)
    counts = write_splits(load_synthetic_config(args.config), args.out)
    print(f"synthetic benchmark -> {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
