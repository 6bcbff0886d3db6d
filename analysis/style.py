"""Colours, display names and matplotlib settings shared by every figure and table.

This is the only place where display names live: result tables and file names use lowercase
algorithm ids (`grpo`, `lens`) and config model names (`llama31_8b_instruct`); figures and tables
turn them into labels through `algo_label`, `model_label` and `benchmark_label`.
Not a command; imported by the `analysis.fig_*` and `analysis.tab_*` scripts.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

# Paper-size figure widths in inches (two-column conference layout).
SINGLE_COLUMN_IN = 3.3
DOUBLE_COLUMN_IN = 6.9

# Algorithm ids in the order they appear in legends and tables (lens.config.ALGORITHMS).
ALGO_ORDER = ("grpo", "lens", "lens_mixed_only", "lens_negative_only", "dr_grpo", "nsr", "w_reinforce")
ALGO_LABELS = {
    "grpo": "GRPO",
    "lens": "LENS",
    "lens_mixed_only": "LENS (mixed only)",
    "lens_negative_only": "LENS (negative only)",
    "dr_grpo": "Dr. GRPO",
    "nsr": "NSR",
    "w_reinforce": "W-REINFORCE",
}
# Okabe-Ito palette: distinguishable with colour-vision deficiency and in greyscale print.
ALGO_COLORS = {
    "grpo": "#0072B2",  # blue
    "lens": "#D55E00",  # vermillion
    "lens_mixed_only": "#E69F00",  # orange
    "lens_negative_only": "#CC79A7",  # purple
    "dr_grpo": "#009E73",  # green
    "nsr": "#56B4E9",  # sky blue
    "w_reinforce": "#7F7F7F",  # grey
}
ALGO_MARKERS = {
    "grpo": "o",
    "lens": "s",
    "lens_mixed_only": "^",
    "lens_negative_only": "v",
    "dr_grpo": "D",
    "nsr": "P",
    "w_reinforce": "X",
}
_FALLBACK_COLORS = ("#000000", "#999999", "#F0E442", "#882255", "#44AA99")

# Config model names (the `models:` keys of config/paper.yaml and config/config.yaml).
MODEL_LABELS = {
    "llama31_8b_instruct": "Llama-3.1-8B-Instruct",
    "qwen25_3b": "Qwen-2.5-3B-Base",
}
BENCHMARK_LABELS = {
    "math500": "MATH-500",
    "math_test": "MATH test",
    "synthetic_test": "synthetic test set",
}
# Name of the hard subset: MATH's two highest difficulty levels.
HARD_LEVELS = (4, 5)
HARD_SUBSET_LABEL = "Level 4-5"


def algo_label(algo: str) -> str:
    return ALGO_LABELS.get(algo, algo)


def algo_color(algo: str) -> str:
    if algo in ALGO_COLORS:
        return ALGO_COLORS[algo]
    return _FALLBACK_COLORS[sum(map(ord, algo)) % len(_FALLBACK_COLORS)]


def algo_marker(algo: str) -> str:
    return ALGO_MARKERS.get(algo, "o")


def model_label(model: str) -> str:
    """Display name of a config model name; unknown names (e.g. the embedded tiny model) as given."""
    return MODEL_LABELS.get(model, model)


def benchmark_label(benchmark: str) -> str:
    return BENCHMARK_LABELS.get(benchmark, benchmark)


def sort_algos(algos: Iterable[str]) -> list[str]:
    """Known algorithms in ALGO_ORDER, then unknown ones alphabetically."""
    algos = set(algos)
    known = [a for a in ALGO_ORDER if a in algos]
    return known + sorted(algos - set(known))


# Sizes chosen so that text stays >= 7 pt when the figure is printed at its nominal width.
RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by publishers
    "ps.fonttype": 42,
    "figure.constrained_layout.use": True,
}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    """matplotlib rc for paper-size figures, restored on exit (Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(RC):
        yield


def save_figure(fig, out_dir: str | Path, name: str, formats: Iterable[str], dpi: int) -> list[Path]:
    """Write `fig` as out_dir/name.{fmt} for each format and close it; returns the paths."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        # Fixed metadata keeps PDFs byte-identical across reruns (no creation date).
        metadata = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
        fig.savefig(path, dpi=dpi, metadata=metadata)
        paths.append(path)
    plt.close(fig)
    return paths


def percent(x):
    """Accuracy in [0, 1] -> percent; tables and figures show accuracy in %."""
    return 100.0 * x
