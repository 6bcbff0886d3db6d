"""Dynamic sampling (grpo_dynamic, lens.dynamic): the selection rule by hand, and 2-process runs (torchrun,
gloo) with sampling replaced by fixed completions (tests/fixed_rollout.py), with and without informative groups.

    python -m pytest tests/test_dynamic.py -q
"""

from __future__ import annotations

import dataclasses
import subprocess

import pandas as pd
import pytest
import torch
from fixed_rollout import MODULUS, fixed_completion
from helpers import REPO, tiny_cfg, tiny_run

from lens.dynamic import informative, owners, quota_met, select_groups
from lens.run_files import read_metrics

FIXED_ROLLOUT = str(REPO / "tests" / "fixed_rollout.py")
G = 4


def test_informative_groups_have_unequal_rewards():
    rewards = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 1, 1]], dtype=torch.float32)
    assert informative(rewards).tolist() == [True, False, False, True]


def test_owners_of_groups_and_straddling_ones():
    assert owners(4, 4, 8).tolist() == [0, 0, 1, 1]  # 2 whole groups per process
    assert owners(3, 16, 24).tolist() == [0, -1, 1]  # the paper rehearsal: the middle group straddles
    assert owners(16, 8, 128).tolist() == [0] * 16  # one process: verl's single pool


def test_selection_by_hand():
    # 3 batches of 4 groups on 2 processes (2 slots each). Process 0's informative groups (batch, group):
    # (0, 1), (1, 0), (2, 0), (2, 1): its slots take (0, 1) and (1, 0), the first two in generation order.
    # Process 1's only one is (2, 3): its first slot takes it, its second is filled with batch 0's first
    # non-informative group of its own, (0, 2).
    flags = torch.tensor([[False, True, False, False],
                          [True, False, False, False],
                          [True, True, False, True]])  # (J=3, B_all=4)
    owner = torch.tensor([0, 0, 1, 1])
    assert quota_met(flags[:2], owner) is False and quota_met(flags, owner) is False
    batch, source, kept = select_groups(flags, owner)
    assert batch.tolist() == [0, 1, 2, 0]
    assert source.tolist() == [1, 0, 3, 2]
    assert kept.tolist() == [True, True, True, False]
    # With every process at its quota the loop stops; nothing is filled.
    met = torch.tensor([[True, False, True, False], [False, True, False, True]])
    assert quota_met(met, owner) and select_groups(met, owner)[2].all()


def test_a_straddling_slot_keeps_its_first_batch_group():
    flags = torch.tensor([[False, True, False], [True, False, False]])  # (J=2, B_all=3), owners 0, -1, 1
    owner = owners(3, 16, 24)
    assert quota_met(flags[:1], owner) is False and quota_met(flags, owner) is False  # process 1 found none
    batch, source, kept = select_groups(flags, owner)
    assert batch.tolist() == [1, 0, 0] and source.tolist() == [0, 1, 2] and kept.tolist() == [True, True, False]
    # The straddling slot does not count towards any quota: processes 0 and 1 each need their own group.
    assert quota_met(torch.tensor([[True, False, True]]), owner)


def test_selection_without_any_informative_group_fills_every_slot_from_the_first_batch():
    batch, source, kept = select_groups(torch.zeros(3, 4, dtype=torch.bool), torch.tensor([0, 0, 1, 1]))
    assert batch.tolist() == [0, 0, 0, 0] and source.tolist() == [0, 1, 2, 3] and not kept.any()


def _problems(answers: list[int]) -> list[dict]:
    return [{"id": f"q{i}", "problem": f"What is {a} + 0?", "answer": str(a), "level": 1, "subject": "addition",
             "source": "test"} for i, a in enumerate(answers)]


def _dynamic_run(tmp_path, tmp_path_factory, answers: list[int], steps: int, cap: int):
    """A 2-process grpo_dynamic run: 2 prompts a rollout (one group of G = 4 per process), `steps` rollouts."""
    cfg = tiny_cfg(tmp_path, _problems(answers), prompts_per_rollout=2, prompts_per_update=2, updates_per_rollout=1,
                   rollout_steps=steps, save_every=steps, max_new_tokens=8)
    cfg = dataclasses.replace(cfg, algorithm=dataclasses.replace(cfg.algorithm, name="grpo_dynamic",
                                                                 max_gen_batches=cap))
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    done = subprocess.run(run.torchrun(2, FIXED_ROLLOUT), cwd=REPO, env=run.env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = pd.read_parquet(run.run_dir / "rollouts.parquet").sort_values(["step", "group", "sample_idx"])
    metrics = read_metrics(run.run_dir / "train_metrics.parquet").pivot(index="step", columns="metric",
                                                                          values="value")
    return records.reset_index(drop=True), metrics


@pytest.mark.slow
def test_two_processes_refill_from_the_data_order_and_train_on_informative_groups(tmp_path, tmp_path_factory):
    """Every generation batch's completion j (0..7, both processes) is "\\boxed{j mod 5}": rank 0's group sees
    answers {0, 1, 2, 3}, rank 1's {4, 0, 1, 2}. A problem whose answer is among its rank's is a mixed group,
    any other an all-wrong one, so which groups are informative depends on where the data order puts them."""
    answers = [0, 7, 3, 99, 4, 12]
    records, metrics = _dynamic_run(tmp_path, tmp_path_factory, answers, steps=3, cap=3)
    answer_of = {f"q{i}": a for i, a in enumerate(answers)}
    assert (records["completion"] == [fixed_completion((g % 2) * G + i) for g, i in
                                      zip(records["group"], records["sample_idx"], strict=True)]).all()
    groups = records.groupby(["step", "group"], sort=True).agg(
        problem=("problem_id", "first"), rank=("rank", "first"), gen_batch=("gen_batch", "first"),
        dropped=("dropped", "first"), group_type=("group_type", "first"),
        advantage=("advantage", lambda a: a.abs().sum()), grpo=("grpo_advantage", lambda a: a.abs().sum()))
    # Grading and gather order: mixed exactly where the answer is among the rank's fixed completions.
    seen = {rank: {(rank * G + i) % MODULUS for i in range(G)} for rank in (0, 1)}
    expected_type = ["mixed" if answer_of[p] in seen[r] else "all_wrong" for p, r in zip(groups["problem"],
                                                                                         groups["rank"], strict=True)]
    assert groups["group_type"].tolist() == expected_type

    order = {step: frame.sort_values("group")["problem"].tolist()
             for step, frame in groups[groups["gen_batch"] == 0].groupby(level="step")}
    assert sorted(order[1] + order[2] + order[3]) == sorted(answer_of)  # 3 rollouts: one pass over the data
    n_batches = []
    for step, frame in groups.groupby(level="step"):
        batches = frame.groupby("gen_batch")["problem"].agg(list).to_dict()
        n_batches.append(len(batches))
        # Refills are the next rollouts' prompts, in the run's own data order.
        for j, problems in batches.items():
            if step + j <= 3:
                assert problems == order[step + j], (step, j)
        # Per rank (quota: its one group): the first informative group in generation order is trained on; if
        # there is none within the cap, batch 0's group fills the slot and is dropped.
        for _rank, mine in frame.groupby("rank"):
            mixed = mine[mine["group_type"] == "mixed"].sort_values("gen_batch")
            trained = mine[~mine["dropped"]]
            if len(mixed):
                assert trained.index.tolist() == mixed.index[:1].tolist()
            else:
                assert trained.empty and len(mine) == 3
        # Generation stops once both ranks have their group, or at the cap.
        found = [frame[(frame["rank"] == r) & (frame["group_type"] == "mixed")]["gen_batch"].min() for r in (0, 1)]
        assert len(batches) == (3 if any(pd.isna(found)) else max(found) + 1)
        # Trained groups are mixed and carry GRPO's advantages; dropped ones carry none.
        assert (frame.loc[~frame["dropped"], "group_type"] == "mixed").all()
        assert (frame.loc[~frame["dropped"], "advantage"] > 0).all()
        assert (frame.loc[~frame["dropped"], "advantage"] == frame.loc[~frame["dropped"], "grpo"]).all()
        assert (frame.loc[frame["dropped"], "advantage"] == 0).all()
    assert max(n_batches) > 1  # the data made it refill
    # The run's cost counts every generated batch; the records hold all of them.
    assert metrics["dynamic/gen_batches"].tolist() == n_batches
    assert metrics["cost/completions"].tolist() == [2 * G * n for n in n_batches]
    assert metrics["cost/completion_tokens"].tolist() == records.groupby("step")["completion_tokens"].sum().tolist()
    # Both ranks' slots are filled from batch 0 exactly when they found nothing.
    filled = groups[~groups["dropped"]].groupby(level="step").size()
    assert metrics["dynamic/filled_frac"].tolist() == [1 - filled.get(s, 0) / 2 for s in (1, 2, 3)]
    # groups/*_frac describe every generated group.
    mixed_share = groups.groupby(level="step")["group_type"].agg(lambda t: (t == "mixed").mean())
    assert metrics["groups/mixed_frac"].tolist() == pytest.approx(mixed_share.tolist())


@pytest.mark.slow
def test_two_processes_without_any_informative_group(tmp_path, tmp_path_factory):
    """No answer is ever sampled: every group of every batch is all wrong. Each rollout generates up to the cap,
    trains on nothing (all advantages 0, every group dropped) and the run ends normally on both ranks."""
    records, metrics = _dynamic_run(tmp_path, tmp_path_factory, [7, 99, 12, 55], steps=2, cap=2)
    assert set(records["group_type"]) == {"all_wrong"}
    assert records["dropped"].all() and (records["advantage"] == 0).all()
    assert records.groupby("step")["gen_batch"].nunique().tolist() == [2, 2]
    assert metrics["dynamic/gen_batches"].tolist() == [2, 2] and metrics["dynamic/filled_frac"].tolist() == [1, 1]
    assert metrics["cost/completions"].tolist() == [16, 16]
