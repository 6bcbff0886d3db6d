"""Figure 4 of the paper: the weight w(z) = (1/z) log(1/(1 - z)) - 1 that LENS puts on wrong answers.

    python -m analysis.fig_weight_function --out results/figures [--tidy results/tidy] [--dpi 200]

The MLE gradient equals a policy gradient with penalty w(pi/D) on each wrong answer (Eq. 11-13):
w(0+) = 0, so unlikely mistakes cost nothing, and w grows without bound as z -> 1, so confident
mistakes cost most. Writes fig_weight_function.{png,pdf} and fig_weight_function.csv (the plotted
z and w(z)). Needs no results; --tidy is accepted so every figure script has the same command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import style
from analysis.paper_numbers import WEIGHT_FUNCTION_POINTS
from lens.config import FiguresConfig

NAME = "fig_weight_function"
Z_MAX = 0.99  # w(0.99) = 3.65; the curve is cut there because it diverges at z = 1


def weight_function(z):
    """w(z) = (1/z) log(1/(1-z)) - 1 for z in [0, 1); w(0) = 0 is the limit (w(z) = z/2 + z^2/3 + ...)."""
    z = np.asarray(z, dtype=np.float64)
    if np.any((z < 0) | (z >= 1)):
        raise ValueError("w(z) is defined for 0 <= z < 1")
    safe = np.where(z > 1e-4, z, 0.5)  # placeholder where the series is used
    # Below 1e-4 the closed form loses digits to cancellation (1 - 1); the series is exact there.
    return np.where(z > 1e-4, -np.log1p(-safe) / safe - 1.0, z / 2 + z**2 / 3 + z**3 / 4)


def build(out: str, formats=("png", "pdf"), dpi: int = 200, points: int = 400) -> pd.DataFrame:
    z = np.linspace(0.0, Z_MAX, points)
    data = pd.DataFrame({"z": z, "w": weight_function(z)})
    data.to_csv(Path(out) / f"{NAME}.csv", index=False)
    with style.paper_style():
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(style.SINGLE_COLUMN_IN, 2.3))
        ax.plot(data["z"], data["w"], color=style.algo_color("lens"))
        for z0 in sorted(WEIGHT_FUNCTION_POINTS):
            w0 = float(weight_function(z0))
            ax.plot([z0], [w0], "o", color="black", ms=3.5, zorder=3)
            ax.annotate(f"w({z0:g}) = {w0:.3g}", (z0, w0), xytext=(-6, 10), textcoords="offset points",
                        ha="right", fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, float(data["w"].max()) * 1.05)
        ax.set_xlabel(r"$z = \pi_\theta(o \mid q)\,/\,D(q)$")
        ax.set_ylabel(r"penalty $w(z)$")
        ax.set_title(r"$w(z) = \log(1/(1-z))\,/\,z - 1$  (Eq. 13)")
        style.save_figure(fig, out, NAME, formats, dpi)
    return data


def main(argv: list[str] | None = None) -> int:
    defaults = FiguresConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tidy", default=None, help="unused: the curve needs no results")
    parser.add_argument("--out", default="results/figures")
    parser.add_argument("--formats", nargs="+", default=list(defaults.formats))
    parser.add_argument("--dpi", type=int, default=defaults.dpi)
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    build(args.out, args.formats, args.dpi)
    print(f"analysis.fig_weight_function: wrote {args.out}/{NAME}.{{{','.join(args.formats)},csv}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
