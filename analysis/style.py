"""Colours, display names and matplotlib settings shared by every figure and table.

Display names live here (those of algorithms and datasets come from the tables in lens.algorithms
and lens.datasets): result tables and file names use lowercase algorithm ids (`grpo`, `lens`) and config model names
(`llama31_8b_instruct`); figures and tables turn them into labels through `algo_label`,
`model_label` and `benchmark_label`.
Not a command; imported by the `analysis.fig_*` and `analysis.tab_*` scripts.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from analysis import paper_numbers
from lens import algorithms, datasets
from lens.metrics import HARD_SUBSET

# Paper-size figure widths in inches (two-column conference layout).
SINGLE_COLUMN_IN = 3.3
DOUBLE_COLUMN_IN = 6.9

# Algorithm ids in legend and table order, display names, colours and markers: all from the one
# table of algorithms, lens.algorithms.ALGORITHMS (Okabe-Ito colours first: distinguishable with
# colour-vision deficiency and in greyscale print).
ALGO_ORDER = algorithms.ids()
ALGO_LABELS = {algo: spec.label for algo, spec in algorithms.ALGORITHMS.items()}
ALGO_COLORS = {algo: spec.color for algo, spec in algorithms.ALGORITHMS.items()}
ALGO_MARKERS = {algo: spec.marker for algo, spec in algorithms.ALGORITHMS.items()}
_FALLBACK_COLORS = ("#000000", "#999999", "#F0E442", "#882255", "#44AA99")

# Config model names (the `models:` keys of config/paper.yaml and config/config.yaml).
MODEL_LABELS = {
    "llama31_8b_instruct": "Llama-3.1-8B-Instruct",
    "qwen25_3b": "Qwen-2.5-3B-Base",
    "tiny_llama": "tiny Llama",
}
# Name of the hard subset (lens.metrics.HARD_SUBSET): MATH's two highest difficulty levels.
HARD_SUBSET_LABEL = f"Level {HARD_SUBSET}"


def algo_label(algo: str) -> str:
    """An algorithm's label, or an arm's (lens.config.sweep_arm): `lens/alpha-4` -> "LENS, alpha = 4"."""
    from lens.config import parse_sweep_arm

    if algo in ALGO_LABELS:
        return ALGO_LABELS[algo]
    parsed = parse_sweep_arm(algo)
    return algo if parsed is None else f"{ALGO_LABELS.get(parsed[0], parsed[0])}, {parsed[1]} = {parsed[2]}"


def algo_color(algo: str) -> str:
    if algo in ALGO_COLORS:
        return ALGO_COLORS[algo]
    return _FALLBACK_COLORS[sum(map(ord, algo)) % len(_FALLBACK_COLORS)]


def algo_marker(algo: str) -> str:
    return ALGO_MARKERS.get(algo, "o")


def arm_label(arm: str) -> str:
    """The label of an algorithm or a sweep arm (algo_label)."""
    return algo_label(arm)


def model_label(model: str) -> str:
    """Display name of a config model name; unknown names (e.g. the embedded tiny model) as given."""
    return MODEL_LABELS.get(model, model)


def benchmark_label(benchmark: str) -> str:
    """`math500` -> `MATH-500`, `math_test` -> `MATH test`: from the table of datasets (lens.datasets)."""
    return datasets.benchmark_label(benchmark)


def training_data_label(pairs) -> str:
    """`MATH train + NuminaMath-1.5` for (dataset name, split) pairs (lens.datasets)."""
    return datasets.training_data_label(pairs)


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


def write_figure(data, draw, out_dir: str | Path, name: str, formats: Iterable[str], dpi: int) -> list[Path]:
    """Write the CSV of exactly what is plotted, then the figure `draw()` builds from it, in paper style."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / f"{name}.csv"
    data.to_csv(csv, index=False)
    with paper_style():
        paths = save_figure(draw(), out_dir, name, formats, dpi)
    return [*paths, csv]


def band_panels(data, x: str, subset_order: Iterable[str], markevery=None, **subplots_kw):
    """Panels of (model rows x subset columns), in each one line per algorithm (its `mean` against
    column `x`) with its interval band (`ci_low`..`ci_high`), and one legend above them all.

    markevery: rows -> the positions to mark (default: every point). Returns the figure and its
    (axes, model, subset) panels for the caller's titles and axis labels.
    """
    import matplotlib.pyplot as plt

    models = sorted(data["model"].unique())
    subsets = [s for s in subset_order if s in set(data["subset"])]
    algos = sort_algos(data["algo"].unique())
    width_in = DOUBLE_COLUMN_IN if len(subsets) > 1 else SINGLE_COLUMN_IN
    fig, axes = plt.subplots(len(models), len(subsets), figsize=(width_in, 2.2 * len(models)), squeeze=False,
                             **subplots_kw)
    panels = []
    for r, model in enumerate(models):
        for c, subset in enumerate(subsets):
            ax = axes[r][c]
            for algo in algos:
                rows = data[(data["model"] == model) & (data["subset"] == subset) & (data["algo"] == algo)]
                if rows.empty:
                    continue
                color = algo_color(algo)
                ax.plot(rows[x], rows["mean"], color=color, marker=algo_marker(algo), ms=3,
                        markevery=markevery(rows) if markevery else None, label=algo_label(algo))
                ax.fill_between(rows[x], rows["ci_low"], rows["ci_high"], color=color, alpha=0.12, lw=0)
            panels.append((ax, model, subset))
    # One legend above all panels: inside a panel it hides the curves it names.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=min(len(algos), 4 if len(subsets) > 1 else 2),
               title="lines: mean over seeds; bands: 95% bootstrap interval", title_fontsize=7)
    return fig, panels


def percent(x):
    """Accuracy in [0, 1] -> percent; tables and figures show accuracy in %."""
    return 100.0 * x


# --------------------------------------------------------------------------------------------
# Command line shared by the figure and table scripts
# --------------------------------------------------------------------------------------------
def cli_parser(doc: str, out_default: str, *, figure: bool = True, bootstrap: bool = True,
               smoothing: bool = False, benchmark: bool = True):
    """argparse parser with the options every analysis script shares; defaults from FiguresConfig.

    The workflow passes the config's `figures:` section through these options, so a figure
    setting lives in one place (lens.config.FiguresConfig) and reaches only the analysis rules.
    """
    import argparse

    from lens.config import FiguresConfig

    defaults = FiguresConfig()
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--tidy", default="results/tidy", help="directory of the tidy tables (analysis.collect)")
    parser.add_argument("--out", default=out_default, help="output directory")
    if figure:
        parser.add_argument("--formats", nargs="+", default=list(defaults.formats), help="image formats")
        parser.add_argument("--dpi", type=int, default=defaults.dpi)
    if bootstrap:
        parser.add_argument("--bootstrap-samples", type=int, default=defaults.bootstrap_samples,
                            help="bootstrap resamples for the 95%% intervals")
        parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resampling")
    if smoothing:
        parser.add_argument("--smoothing-window", type=int, default=defaults.smoothing_window,
                            help="width in steps of the centred moving average")
    if benchmark:
        parser.add_argument("--benchmark", default=None,
                            help="evaluation set to use (default: math500 if present, else the first found)")
    return parser


def figure_main(name: str, doc: str, compute, plot, argv: list[str] | None = None) -> int:
    """The CLI of a figure drawn by plot(data) from data = compute(samples, benchmark, n_boot, seed)
    on the tidy evaluation samples (the options of `cli_parser`)."""
    from analysis.collect import read_eval_samples

    def build(args) -> list:
        data = compute(read_eval_samples(args.tidy), args.benchmark, args.bootstrap_samples, args.bootstrap_seed)
        return write_figure(data, lambda: plot(data), args.out, name, args.formats, args.dpi)

    return run_cli(name, build, cli_parser(doc, "results/figures").parse_args(argv))


def run_cli(name: str, build, args) -> int:
    """Call build(args); a missing or malformed input becomes one clear line on stderr and exit 1."""
    import sys

    from analysis.collect import TidyError

    try:
        written = build(args)
    except TidyError as err:
        print(f"analysis.{name}: error: {err}", file=sys.stderr)
        return 1
    print(f"analysis.{name}: wrote {', '.join(str(p) for p in written)}")
    return 0


# --------------------------------------------------------------------------------------------
# Tables: one list of display rows rendered as Markdown and LaTeX
# --------------------------------------------------------------------------------------------
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "−": r"$-$", "Δ": r"$\Delta$", "≥": r"$\geq$", "≤": r"$\leq$",
                  # in OT1-encoded text mode a bare < or > prints as an inverted ! or ?
                  "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """GitHub Markdown table; `align` is one letter per column (l/r), default l then r."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def latex_table(header: list[str], rows: list[list[str]], caption: str, label: str,
                align: str | None = None, rules_before: set[int] = frozenset()) -> str:
    """A booktabs table; `rules_before` holds row indices that get a \\midrule above them."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\caption{{{latex_escape(caption)}}}",
             rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(rows):
        if i in rules_before and i > 0:
            lines.append(r"\midrule")
        lines.append(" & ".join(latex_escape(c) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(data, out_dir: str | Path, name: str, header: list[str], rows: list[list[str]], caption: str,
                note: str, align: str, blocks: Iterable[int] = ()) -> list[Path]:
    """Write name.csv (`data`, every value the table shows) and name.md / name.tex (the display rows)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md, tex = out_dir / f"{name}.csv", out_dir / f"{name}.md", out_dir / f"{name}.tex"
    data.to_csv(csv, index=False)
    md.write_text(f"{caption}\n\n{note}\n\n" + markdown_table(header, rows, align))
    tex.write_text(latex_table(header, rows, f"{caption} {note}", f"tab:{name}", align, set(blocks)))
    return [md, tex, csv]


def fmt_signed(x: float, digits: int = 1) -> str:
    """+1.2 / −0.3 with a typographic minus; empty for NaN."""
    if x != x:  # NaN
        return ""
    return f"{'+' if x >= 0 else '−'}{abs(x):.{digits}f}"


def fmt_mean_spread(mean: float, spread: float, digits: int = 1) -> str:
    """'54.1 ± 0.3'; only the mean when the spread is undefined (one seed)."""
    if spread != spread:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread:.{digits}f}"


def fmt_interval(mean: float, low: float, high: float, digits: int = 1) -> str:
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def fmt_p(p: float) -> str:
    if p != p:
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------------------------
# The Pass@k tables' layout (analysis.tab_pass_at_k, analysis.tab_ablation)
# --------------------------------------------------------------------------------------------
SUBSET_LABELS = {"all": "all", HARD_SUBSET: HARD_SUBSET_LABEL}


def paper_label(paper_table: str) -> str:
    """`table1` -> `Table 1`."""
    return paper_numbers.table_label(paper_table)


def _pass_at_k_rows(data: pd.DataFrame, algo_order: list[str], paper_table: str):
    """(header, rows, indices of the first row of each model block) for the Markdown/LaTeX tables."""
    ks = sorted(data["k"].unique())
    header = ["Model", "Algorithm", "Subset", *[f"P@{k}" for k in ks]]
    rows, blocks = [], []
    for model in sorted(data["model"].unique()):
        blocks.append(len(rows))
        for subset in [s for s in SUBSET_LABELS if s in set(data["subset"])]:
            for algo in algo_order:
                sel = data[(data["model"] == model) & (data["subset"] == subset) & (data["algo"] == algo)]
                if sel.empty:
                    continue
                sel = sel.set_index("k").reindex(ks)
                n_seeds = int(sel["n_seeds"].dropna().iloc[0])
                ours = [fmt_mean_spread(m, s) if m == m else ""
                        for m, s in zip(sel["mean"], sel["std_seeds"], strict=True)]
                label = f"{algo_label(algo)} (ours, {n_seeds} seed{'s' if n_seeds > 1 else ''})"
                # the model's name only on the first row of its block
                rows.append([model_label(model) if len(rows) == blocks[-1] else "", label,
                             SUBSET_LABELS[subset], *ours])
                if sel["paper"].notna().any():
                    rows.append(["", f"{algo_label(algo)} (paper, {paper_label(paper_table)})",
                                 SUBSET_LABELS[subset],
                                 *[f"{p:.2f}" if p == p else "" for p in sel["paper"]]])
                    rows.append(["", "Δ ours − paper", "", *[fmt_signed(d) for d in sel["delta"]]])
    return header, rows, blocks


def write_pass_at_k_tables(data: pd.DataFrame, out: Path, name: str, algo_order: list[str], paper_table: str | None,
                           caption: str, trained, no_paper: str = "") -> list[Path]:
    """The Markdown/LaTeX/CSV tables of analysis.summary.with_paper's rows; the note names the training
    data (`trained`: an analysis.training_data.TrainingData) and, where the paper's numbers are left
    out, says why (`no_paper`)."""
    header, rows, blocks = _pass_at_k_rows(data, algo_order, paper_table)
    bench = benchmark_label(data["benchmark"].iloc[0])
    steps = ", ".join(f"{model_label(m)}: step {int(s)}" for m, s in
                      data.groupby("model")["step"].max().items())
    note = (f"{trained.sentence()} Pass@k (%) on {bench} at the final step ({steps}); ours: mean ± standard "
            f"deviation over seeds (unbiased estimator from n = {int(data['n_samples'].min())} samples per problem).")
    if data["paper"].notna().any():
        note += f" Paper: {paper_numbers.TABLES[paper_table]}."
    elif no_paper:
        note += f" {no_paper}"
    return write_table(data, out, name, header, rows, caption, note, "lll" + "r" * (len(header) - 3), blocks)
