"""tab_benchmarks and fig_benchmarks on a hand-made tidy table of two benchmarks: Pass@1, Pass@k at each
set's own samples per problem, the difference to GRPO, Holm across the benchmarks, the MDD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import fig_benchmarks, power, stats, tab_benchmarks
from analysis.collect import EVAL_FILE, EVAL_SCHEMA

# (benchmark, samples per problem): {(algo, seed): correct answers per problem [A, B]}
CORRECT = {
    ("aime24_test", 4): {("grpo", 0): [4, 0], ("grpo", 1): [2, 0], ("lens", 0): [4, 2], ("lens", 1): [4, 1]},
    ("minerva_test", 2): {("grpo", 0): [1, 1], ("grpo", 1): [2, 0], ("lens", 0): [0, 0], ("lens", 1): [1, 0]},
}


@pytest.fixture
def tidy(tmp_path):
    rows = []
    for (bench, n), runs in CORRECT.items():
        for (algo, seed), correct in runs.items():
            for pid, c in zip("AB", correct, strict=True):
                for i in range(n):
                    rows.append({"model": "m", "algo": algo, "seed": seed, "step": 10, "benchmark": bench,
                                 "problem_id": pid, "level": None, "subject": None, "sample_idx": i,
                                 "correct": i < c, "completion_tokens": 5})
    frame = pd.DataFrame(rows).astype({"level": "Int64"})
    (tmp_path / "tidy").mkdir()
    pq.write_table(pa.Table.from_pandas(frame, schema=EVAL_SCHEMA, preserve_index=False),
                   tmp_path / "tidy" / EVAL_FILE)
    return tmp_path / "tidy"


def test_values_by_hand(tidy, tmp_path):
    assert tab_benchmarks.main(["--tidy", str(tidy), "--out", str(tmp_path / "t"), "--bootstrap-samples", "300",
                                "--benchmarks", "minerva_test", "aime24_test"]) == 0
    assert pd.read_csv(tmp_path / "t" / "tab_benchmarks.csv")["benchmark"].unique().tolist() == \
        ["minerva_test", "aime24_test"]  # the order asked for
    data = pd.read_csv(tmp_path / "t" / "tab_benchmarks.csv").set_index(["benchmark", "algo", "metric"])
    # AIME, 4 samples: GRPO seeds (1 + 0)/2 and (.5 + 0)/2; LENS (1 + .5)/2 and (1 + .25)/2
    assert data.loc[("aime24_test", "grpo", "pass@1"), "mean"] == pytest.approx(37.5)
    assert data.loc[("aime24_test", "lens", "pass@1"), "mean"] == pytest.approx(68.75)
    assert data.loc[("aime24_test", "lens", "pass@1"), "diff"] == pytest.approx(31.25)
    # Pass@k at the set's own k = 4: a problem with any correct answer counts 1
    assert data.loc[("aime24_test", "grpo", "pass@k"), ["k", "mean"]].tolist() == [4, 50.0]
    assert data.loc[("aime24_test", "lens", "pass@k"), "mean"] == pytest.approx(100.0)
    # Minerva, 2 samples: GRPO (.5 + .5)/2 and (1 + 0)/2; LENS 0 and (.5 + 0)/2; Pass@2 75 and 25
    assert data.loc[("minerva_test", "grpo", "pass@1"), "mean"] == pytest.approx(50.0)
    assert data.loc[("minerva_test", "lens", "pass@1"), "diff"] == pytest.approx(-37.5)
    assert data.loc[("minerva_test", "grpo", "pass@k"), ["k", "mean"]].tolist() == [2, 75.0]
    assert data.loc[("minerva_test", "lens", "pass@k"), "mean"] == pytest.approx(25.0)
    # Holm across the two benchmarks of (m, lens), none for the baseline
    lens = data.xs(("lens", "pass@1"), level=("algo", "metric"))
    assert lens["p_holm"].to_numpy() == pytest.approx(stats.holm(lens["p_value"].to_numpy()))
    assert (lens["p_holm"] >= lens["p_value"]).all()
    assert pd.isna(data.loc[("aime24_test", "grpo", "pass@1"), "p_holm"])  # no test for the baseline itself
    assert (lens["mdd"] > 0).all() and np.isfinite(lens["mdd"]).all()
    md = (tmp_path / "t" / "tab_benchmarks.md").read_text()
    assert "AIME 2024" in md and "Minerva Math" in md and "2 × 4" in md and "@4: 100.0" in md
    assert "Holm" in md and "MDD" in md


def test_mdd_by_hand_for_paired_seeds():
    """Paired by seed: MDD = 2.80 SE of the seed-by-seed difference (analysis.stats.paired_difference_se)."""
    t = np.array([[1.0, 0.5], [1.0, 0.25]])
    b = np.array([[1.0, 0.0], [0.5, 0.0]])
    from analysis.summary import _mdd
    # d = t - b = [[0, .5], [.5, .25]]: problem means .25 and .375 (variance 1/128); residuals +-3/16,
    # mean square 9/64 on 1 df, so seed_var = max(0, 1/128 - (9/64) / 2) = 0; SE^2 = (1/128) / 2 = 1/256
    assert stats.paired_difference_se(t, b)["se"] == pytest.approx(1 / 16)
    assert _mdd(t, b, [0, 1], [0, 1], 4) == pytest.approx(100 * 2.801585218 / 16)


def test_mdd_is_blank_where_nothing_varies():
    from analysis.summary import _mdd
    zeros = np.zeros((2, 3))
    assert np.isnan(_mdd(zeros, zeros, [0, 1], [0, 1], 4))
    assert np.isnan(_mdd(zeros[:1], zeros[:1], [0], [0], 4))


def test_figure_and_unknown_benchmark(tidy, tmp_path, capsys):
    assert fig_benchmarks.main(["--tidy", str(tidy), "--out", str(tmp_path / "f"), "--bootstrap-samples", "200",
                                "--formats", "png"]) == 0
    assert (tmp_path / "f" / "fig_benchmarks.png").stat().st_size > 0
    plotted = pd.read_csv(tmp_path / "f" / "fig_benchmarks.csv")
    assert set(plotted["benchmark"]) == {"aime24_test", "minerva_test"}
    assert tab_benchmarks.main(["--tidy", str(tidy), "--out", str(tmp_path / "t"), "--benchmarks", "amc23_test"]) != 0
    assert "amc23_test" in capsys.readouterr().err


def test_paper_design_mdd_grows_as_the_set_shrinks():
    rows = {(r["benchmark"], r["seed_sd"]): r["mdd"] for r in power.benchmark_mdds()}
    assert rows[("aime24", 0.0)] > rows[("amc23", 0.0)] > rows[("minerva", 0.0)] > rows[("olympiadbench", 0.0)]
    # by hand: two arms at 50 %, 2 seeds, 30 problems x 32 samples: SE^2 = 2 x .25/32 / (2 x 30)
    assert rows[("aime24", 0.0)] == pytest.approx(2.801585218 * np.sqrt(2 * 0.25 / 32 / 60))
