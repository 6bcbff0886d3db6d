"""What the runs in a table trained on, read from their resolved configs, and whether that is a paper table's.

Not a command; imported by the `analysis.tab_*` scripts. Every table names its training data, and
a table prints the paper's numbers (and ours minus the paper's) only beside runs that trained on
the data of that paper table (analysis.paper_numbers.TRAINING_DATA): a MATH + DAPO run compared
with the paper's MATH + NuminaMath-1.5 row would measure the data, not the algorithm.

The record is each run's own config, results/runs/{model}/{algo}/seed{seed}/config.yaml (written
by the workflow before the run trains; lens.train trains on exactly its `data.train`). The runs
folder is `--runs` when a table script is given it, else the `runs` folder beside the `tidy`
folder the tables are read from (results/tidy and results/tidy/ablations -> results/runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from analysis import paper_numbers
from lens import datasets, layout
from lens.config import ConfigError, DataConfig, parse

SUBSET_KEYS = ("limit", "levels", "limit_per_level_subject")


@dataclass(frozen=True)
class TrainingData:
    """The training data shared by every run of a table, or why it is not known."""

    datasets: tuple[tuple[str, str], ...] | None  # (name, split) of data.train; None: unknown or not shared
    subset: bool = False  # some training set was cut down (limit, levels, limit_per_level_subject)
    unknown: str = ""  # why `datasets` is None

    @property
    def label(self) -> str:
        if self.datasets is None:
            return f"unknown ({self.unknown})"
        return datasets.training_data_label(self.datasets) + (" (subsets)" if self.subset else "")

    def sentence(self) -> str:
        """The table's first note: `Training data: MATH train + NuminaMath-1.5.`"""
        return f"Training data: {self.label}."


def runs_folder(tidy: str | Path, runs: str | Path | None = None) -> Path:
    """`runs`, else the `runs` folder beside the tidy tables (lens.layout)."""
    return Path(runs) if runs is not None else layout.runs_of_tidy(tidy)


def _run_data(path: Path) -> tuple[tuple[tuple[str, str], ...], bool] | str:
    """((name, split) pairs, subset?) of one run config's data.train, or why it cannot be read."""
    if not path.is_file():
        return f"no {path}"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        data = parse(DataConfig, raw.get("data", {}), source=str(path), key="data")
    except (OSError, yaml.YAMLError, ConfigError, AttributeError) as err:
        return f"{path}: {err}"
    pairs = tuple((ds.name, ds.split) for ds in data.train)
    return pairs, any(getattr(ds, key) is not None for ds in data.train for key in SUBSET_KEYS)


def training_data(samples: pd.DataFrame, runs: str | Path) -> TrainingData:
    """The training data of every (model, algo, seed) in `samples`, read from `runs`/.../config.yaml."""
    found: dict[tuple, list[str]] = {}
    subset = False
    for model, algo, seed in samples[["model", "algo", "seed"]].drop_duplicates().itertuples(index=False):
        got = _run_data(Path(runs) / str(model) / str(algo) / f"seed{int(seed)}" / "config.yaml")
        if isinstance(got, str):
            return TrainingData(None, unknown=f"run config not found or unreadable: {got}")
        pairs, cut = got
        found.setdefault(pairs, []).append(f"{model}/{algo}/seed{int(seed)}")
        subset = subset or cut
    if len(found) != 1:
        kinds = "; ".join(f"{datasets.training_data_label(p)} ({', '.join(r)})" for p, r in found.items())
        return TrainingData(None, unknown=f"the runs trained on different data: {kinds}" if found else "no runs")
    return TrainingData(next(iter(found)), subset)


def paper_comparable(data: TrainingData, paper_table: str) -> tuple[bool, str]:
    """(whether the paper's `paper_table` trained on this data, the note saying why not)."""
    paper = paper_numbers.TRAINING_DATA[paper_table]
    name = paper_numbers.table_label(paper_table)
    if data.datasets is None:
        return False, f"No comparison with the paper's {name}: the training data are {data.label}."
    if set(data.datasets) != set(paper) or data.subset:
        return False, (f"No comparison with the paper's {name}: it trained on "
                       f"{datasets.training_data_label(paper)}, these runs on {data.label}.")
    return True, ""


def matching_paper_table(data: TrainingData, tables: tuple[str, ...]) -> str | None:
    """The first of `tables` whose training data are these runs' (None if none)."""
    return next((t for t in tables if paper_comparable(data, t)[0]), None)


def add_runs_option(parser) -> None:
    """`--runs`: where the table scripts read the runs' resolved configs."""
    parser.add_argument("--runs", default=None,
                        help="run folders {model}/{algo}/seed{seed}/config.yaml "
                             "(default: `runs` beside the tidy folder)")


def of_table(samples: pd.DataFrame, summary: pd.DataFrame, args) -> TrainingData:
    """The training data of the runs a table shows: the (model, algo) pairs of `summary`, every seed."""
    shown = samples.merge(summary[["model", "algo"]].drop_duplicates(), on=["model", "algo"])
    return training_data(shown, runs_folder(args.tidy, getattr(args, "runs", None)))
