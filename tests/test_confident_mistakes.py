"""Rollout records -> analysis.collect's negative samples -> the confident-mistakes figure and table."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from analysis import collect, fig_confident_mistakes, report, tab_confident_mistakes
from lens.rollout import ROLLOUT_COLUMNS

MODEL = "tiny"
# One recorded step of a LENS run, G = 4: group 0 mixed, group 1 all wrong with the confidences of
# lens/objective.py's worked example, so its r^ = -[144, 48, 36, 16] / 576 (D = 2 max p = 1).
NEGATIVE_P = [0.5, 0.25, 0.2, 0.1]
NEGATIVE_R_HAT = [-144 / 576, -48 / 576, -36 / 576, -16 / 576]
NEGATIVE_A = [-83 / 2304, 13 / 2304, 25 / 2304, 45 / 2304]  # alpha (r^ - mean r^), alpha = 0.25


def _rollouts(step: int = 3) -> pd.DataFrame:
    rows = []
    for group, (rewards, confidence, advantage, kind) in enumerate((
            ([1, 0, 0, 0], [0.5, 0.8, 0.4, 0.2], [1.49, -0.65, -0.45, -0.39], "mixed"),
            ([0, 0, 0, 0], NEGATIVE_P, NEGATIVE_A, "all_wrong"))):
        for i in range(4):
            rows.append({"step": step, "group": group, "problem_id": f"q{group}", "sample_idx": i, "rank": 0,
                         "completion": f"answer {group}-{i} " + "x" * 400, "completion_tokens": 7,
                         "reward": float(rewards[i]), "confidence": confidence[i], "group_type": kind,
                         "advantage": advantage[i], "grpo_advantage": 0.0 if kind == "all_wrong" else 0.5})
    return pd.DataFrame(rows, columns=ROLLOUT_COLUMNS)


@pytest.fixture()
def tidy(tmp_path):
    run = tmp_path / "runs" / MODEL / "lens" / "seed0"
    run.mkdir(parents=True)
    _rollouts().to_parquet(run / "rollouts.parquet")
    (run / "config.yaml").write_text(yaml.safe_dump({"algorithm": {"name": "lens", "wrong_scale": 1.0,
                                                                   "floor_factor": 2.0}}))
    pd.DataFrame({"step": [3], "metric": ["reward"], "value": [0.1]}).to_parquet(run / "train_metrics.parquet")
    # A GRPO run with one update per rollout records no confidences: none of its rows qualify.
    grpo = tmp_path / "runs" / MODEL / "grpo" / "seed0"
    grpo.mkdir(parents=True)
    _rollouts().assign(confidence=float("nan")).to_parquet(grpo / "rollouts.parquet")
    pd.DataFrame({"step": [3], "metric": ["reward"], "value": [0.1]}).to_parquet(grpo / "train_metrics.parquet")
    counts = collect.collect(tmp_path / "runs", tmp_path / "tidy")
    assert counts["negative_rows"] == 4
    return tmp_path / "tidy"


def test_collect_keeps_wrong_answers_of_all_wrong_groups_with_lens_reward(tidy):
    negatives = collect.read_negative_samples(tidy)
    assert list(negatives.columns) == collect.NEGATIVE_SCHEMA.names
    assert set(negatives["algo"]) == {"lens"} and set(negatives["group"]) == {1}
    assert negatives["confidence"].tolist() == NEGATIVE_P
    assert negatives["lens_reward"].tolist() == pytest.approx(NEGATIVE_R_HAT)
    assert negatives["advantage"].tolist() == pytest.approx(NEGATIVE_A)
    assert (negatives["completion"].str.len() == collect.COMPLETION_CHARS).all()


def test_run_parameters_reach_the_lens_reward(tmp_path):
    run = tmp_path / "runs" / MODEL / "lens" / "wrong_scale-2" / "seed0"
    run.mkdir(parents=True)
    _rollouts().to_parquet(run / "rollouts.parquet")
    (run / "config.yaml").write_text(yaml.safe_dump({"algorithm": {"name": "lens", "wrong_scale": 2.0}}))
    pd.DataFrame({"step": [3], "metric": ["reward"], "value": [0.1]}).to_parquet(run / "train_metrics.parquet")
    collect.collect(tmp_path / "runs", tmp_path / "tidy", sweeps=True)
    negatives = collect.read_negative_samples(tmp_path / "tidy")
    assert negatives["lens_reward"].tolist() == pytest.approx([2 * r for r in NEGATIVE_R_HAT])


def test_figure_plots_every_point_and_table_ranks_by_confidence(tidy, tmp_path):
    out = tmp_path / "out"
    assert fig_confident_mistakes.main(["--tidy", str(tidy), "--out", str(out), "--formats", "png", "--dpi", "40"]) == 0
    points = pd.read_csv(out / "fig_confident_mistakes.csv")
    assert len(points) == 4 and points["lens_reward"].tolist() == pytest.approx(NEGATIVE_R_HAT)
    assert (out / "fig_confident_mistakes.png").exists()

    assert tab_confident_mistakes.main(["--tidy", str(tidy), "--out", str(out), "--top", "3"]) == 0
    table = pd.read_csv(out / "tab_confident_mistakes.csv")
    assert table["confidence"].tolist() == [0.5, 0.25, 0.2]  # most confident first
    assert table["count"].tolist() == [1, 1, 1]  # four different completions
    md = (out / "tab_confident_mistakes.md").read_text()
    assert "| 1 | 0.500 | -0.2500 | -0.0360 | +0.0000 | answer 1-0 xxx" in md
    assert "…" in md  # long completions are cut in the display rows


def test_no_recorded_all_wrong_group_still_draws_and_says_so(tmp_path):
    run = tmp_path / "runs" / MODEL / "grpo" / "seed0"
    run.mkdir(parents=True)
    pd.DataFrame({"step": [1], "metric": ["reward"], "value": [0.1]}).to_parquet(run / "train_metrics.parquet")
    collect.collect(tmp_path / "runs", tmp_path / "tidy")
    out = tmp_path / "out"
    assert fig_confident_mistakes.main(["--tidy", str(tmp_path / "tidy"), "--out", str(out), "--formats", "png",
                                        "--dpi", "40"]) == 0
    assert pd.read_csv(out / "fig_confident_mistakes.csv").empty
    assert tab_confident_mistakes.main(["--tidy", str(tmp_path / "tidy"), "--out", str(out)]) == 0
    assert "No all-wrong group with confidences" in (out / "tab_confident_mistakes.md").read_text()


def test_errors(tidy, tmp_path, capsys):
    assert fig_confident_mistakes.main(["--tidy", str(tidy), "--out", str(tmp_path), "--algos", "nsr"]) == 1
    assert "for algorithms ['nsr']" in capsys.readouterr().err
    assert tab_confident_mistakes.main(["--tidy", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 1
    assert "negative_samples.parquet: not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tab_confident_mistakes.main(["--tidy", str(tidy), "--out", str(tmp_path), "--top", "0"])


def test_identical_mistakes_are_one_row_and_their_zero_advantages_are_counted(tmp_path):
    """A second all-wrong group (step 4) whose 4 samples are one completion: equal p, equal r^, and the
    de-meaning leaves A = 0 for all of them; the step-3 group keeps its 4 different answers. Completions
    that share the table's prefix but differ after it stay apart."""
    same = _rollouts(step=4)
    wrong = same["group"] == 1
    same.loc[wrong, "completion"] = "the same confident mistake " + "y" * 400
    same.loc[wrong, "confidence"] = 0.9
    same.loc[wrong, "advantage"] = 0.0
    prefix = _rollouts(step=5)  # group 1: two pairs that differ only after collect's COMPLETION_CHARS
    prefix.loc[prefix["group"] == 1, "completion"] = ["p" * 400 + "a", "p" * 400 + "b", "p" * 400 + "a",
                                                      "p" * 400 + "b"]
    run = tmp_path / "runs" / MODEL / "lens" / "seed0"
    run.mkdir(parents=True)
    pd.concat([_rollouts(), same, prefix]).to_parquet(run / "rollouts.parquet")
    pd.DataFrame({"step": [3], "metric": ["reward"], "value": [0.1]}).to_parquet(run / "train_metrics.parquet")
    collect.collect(tmp_path / "runs", tmp_path / "tidy")
    negatives = collect.read_negative_samples(tmp_path / "tidy")
    assert negatives.loc[negatives["step"] == 4, "same_as"].tolist() == [0, 0, 0, 0]
    assert negatives.loc[negatives["step"] == 5, "same_as"].tolist() == [0, 1, 0, 1]
    assert negatives.loc[negatives["step"] == 3, "same_as"].tolist() == [0, 1, 2, 3]

    table = tab_confident_mistakes.compute(negatives, None, top=10)
    assert table.iloc[0][["step", "sample_idx", "count", "confidence"]].tolist() == [4, 0, 4, 0.9]
    assert (table["step"] == 4).sum() == 1 and (table["step"] == 5).sum() == 2 and (table["step"] == 3).sum() == 4
    assert table["count"].sum() == 12  # every sample is counted once

    counts = tab_confident_mistakes.zero_advantage_groups(negatives)
    assert counts.to_dict("records") == [{"algo": "lens", "groups": 3, "zero": 1, "zero_equal_confidence": 1,
                                          "zero_one_completion": 1}]
    # REPORT.md says it, for the treatment's runs; no line without recorded groups
    line = " ".join(report.zero_advantage_lines(tmp_path / "tidy", "lens"))
    assert "Of the 3 all-wrong groups of the LENS runs' rollout records, 1 got advantages that are all (nearly) 0: " \
           "in 1 of them every answer has the same confidence (1 are one completion sampled G times)" in line
    assert report.zero_advantage_lines(tmp_path / "tidy", "nsr") == []
    assert report.zero_advantage_lines(tmp_path / "nowhere", "lens") == []
