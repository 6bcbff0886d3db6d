"""The paper's reported numbers (Feng et al., arXiv:2510.08696, Tables 1-3) as data.

Pass@k in % on MATH-500, keyed by (config model name, algorithm id). The config model names are
the `models:` keys of config/paper.yaml; analysis/style.py holds their display names.
Not a command; `analysis.tab_pass_at_k` and `analysis.tab_ablation` print these beside ours.
"""

from __future__ import annotations

PASS_K = (1, 2, 4, 8, 16)
PAPER_BENCHMARK = "math500"

# Which training data each table used; config/paper.yaml trains on MATH + DAPO (Table 1),
# config/paper-numina.yaml on MATH + NuminaMath-1.5 (Tables 2-3). As (dataset name, split) of
# lens.datasets: a table prints the paper's row only beside runs trained on the same data
# (analysis.training_data).
TRAINING_DATA = {
    "table1": (("math", "train"), ("dapo", "train")),
    "table2": (("math", "train"), ("numina", "train")),
    "table3": (("math", "train"), ("numina", "train")),
}
TABLES = {
    "table1": "MATH + DAPO-Math-17k, mean over 2 seeds (Table 1)",
    "table3": "MATH + NuminaMath-1.5, 1 seed (Table 3)",
    "table2": "ablation, Llama-3.1-8B-Instruct, MATH + NuminaMath-1.5 (Table 2; GRPO and LENS rows from Table 3)",
}


def _row(*values: float) -> dict[int, float]:
    assert len(values) == len(PASS_K)
    return dict(zip(PASS_K, values, strict=True))


PASS_AT_K: dict[str, dict[tuple[str, str], dict[int, float]]] = {
    "table1": {
        ("llama31_8b_instruct", "grpo"): _row(54.09, 61.09, 67.05, 69.29, 72.70),
        ("llama31_8b_instruct", "lens"): _row(56.63, 63.05, 68.36, 72.18, 75.34),
        ("qwen25_3b", "grpo"): _row(67.06, 72.86, 77.12, 80.83, 82.67),
        ("qwen25_3b", "lens"): _row(68.59, 74.79, 79.33, 82.62, 84.44),
    },
    "table3": {
        ("llama31_8b_instruct", "grpo"): _row(56.88, 65.42, 72.08, 78.34, 82.80),
        ("llama31_8b_instruct", "lens"): _row(58.64, 66.08, 73.98, 79.46, 83.40),
        ("qwen25_3b", "grpo"): _row(65.88, 72.39, 77.82, 82.05, 85.13),
        ("qwen25_3b", "lens"): _row(68.46, 74.74, 79.75, 83.54, 86.28),
    },
}
PASS_AT_K["table2"] = {
    ("llama31_8b_instruct", "grpo"): PASS_AT_K["table3"][("llama31_8b_instruct", "grpo")],
    ("llama31_8b_instruct", "lens_mixed_only"): _row(57.42, 65.82, 73.08, 78.80, 83.20),
    ("llama31_8b_instruct", "lens_negative_only"): _row(58.14, 66.48, 73.46, 79.79, 83.40),
    ("llama31_8b_instruct", "lens"): PASS_AT_K["table3"][("llama31_8b_instruct", "lens")],
}

# Share of all-wrong ("negative") groups in GRPO training of Llama-3.1-8B-Instruct, G = 16 (Fig. 2).
NEGATIVE_GROUP_RATIO = {"llama31_8b_instruct": {"early": 0.45, "end": 0.35}}

# Values of w(z) = (1/z) log(1/(1-z)) - 1 quoted in the paper (Eq. 13, Fig. 4), rounded as printed.
WEIGHT_FUNCTION_POINTS = {0.5: 0.386, 0.9: 1.56}


def table_label(table: str) -> str:
    """`table1` -> `Table 1`."""
    return table.replace("table", "Table ")


def paper_pass_at_k(table: str, model: str, algo: str, benchmark: str) -> dict[int, float] | None:
    """The paper's Pass@k row for this model and algorithm, or None when the paper has none.

    Only MATH-500 results are comparable: the paper evaluated nothing else.
    """
    if benchmark != PAPER_BENCHMARK:
        return None
    try:
        return PASS_AT_K[table].get((model, algo))
    except KeyError:
        raise ValueError(f"unknown paper table {table!r}; known: {sorted(PASS_AT_K)}") from None
