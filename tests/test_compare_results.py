"""benchmarks/compare_results.py: two results folders compared file by file, measured times left out.

    python -m pytest tests/test_compare_results.py -q
"""

from __future__ import annotations

import pandas as pd
from helpers import REPO, load_script

compare_results = load_script(REPO / "benchmarks" / "compare_results.py")

REPORT = """# Report
- git commit: `{sha}`
- generated: {when}

| Model | Algorithm | Trained tokens (k) | Wall time (min) | Generation / scoring / rest (%) |
| --- | --- | ---: | ---: | ---: |
| tiny Llama | GRPO | {tokens} | {minutes} | 34 / 6 / 60 |

Accuracy {accuracy} %.
"""


def _results(root, *, sha="a" * 40, when="2026-12-07 12:00 UTC", tokens="410.4", minutes="5.4", accuracy="61.0",
             step_s=1.5, value=0.25):
    (root / "tidy").mkdir(parents=True)
    pd.DataFrame({"step": [1, 1], "metric": ["time/step_s", "adv/mean"], "value": [step_s, value]}).to_parquet(
        root / "tidy" / "train_metrics.parquet")
    (root / "REPORT.md").write_text(REPORT.format(sha=sha, when=when, tokens=tokens, minutes=minutes,
                                                  accuracy=accuracy))
    return root


def test_measured_times_and_the_commit_are_left_out_and_counted(tmp_path):
    before = _results(tmp_path / "before")
    after = _results(tmp_path / "after", sha="b" * 40, when="2026-12-07 13:00 UTC", minutes="7.9", step_s=2.5)
    problems, counts = compare_results.compare(before, after)
    assert problems == []
    # the two header lines and the one table row's time cells
    assert counts == {"equal": 2, "compared": 2, "lines_left_out": 3}
    assert compare_results.main([str(before), str(after)]) == 0


def test_a_result_that_differs_is_named(tmp_path):
    before = _results(tmp_path / "before")
    after = _results(tmp_path / "after", tokens="410.5", value=0.5)
    problems, counts = compare_results.compare(before, after)
    assert counts["equal"] == 0 and len(problems) == 2
    assert problems[0].startswith("REPORT.md:") and "-| tiny Llama | GRPO | 410.4 |" in problems[0]
    assert problems[1].startswith("tidy/train_metrics.parquet:")
    assert compare_results.main([str(before), str(after)]) == 1


def test_a_file_on_one_side_only_is_named(tmp_path):
    before = _results(tmp_path / "before")
    after = _results(tmp_path / "after")
    (after / "figures").mkdir()
    (after / "figures" / "fig_new.csv").write_text("x\n1\n")
    problems, _ = compare_results.compare(before, after)
    assert problems == ["figures/fig_new.csv: only in after"]
