"""Figures, tables and statistics built only from the tidy result tables under results/."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent


def code_files(module: str) -> list[str]:
    """The files `python -m analysis.<module>` runs: the script and every analysis module it imports,
    transitively. The workflow's analysis rules take them as inputs, so editing a figure script or
    analysis/style.py reruns exactly the jobs that run it (the training code, lens/, is not among them)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = PACKAGE / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "analysis":
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis."):
                todo.append(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                todo += [a.name.split(".")[1] for a in node.names if a.name.startswith("analysis.")]
    return sorted(str(PACKAGE / f"{name}.py") for name in seen)
