"""lens.train on several CPU processes (gloo): the same rollout on 1 and on 2 processes gives the same
advantages, and the multi-node launch recipe of docs/training.md runs as two local "nodes".

    python -m pytest tests/test_multiprocess.py -q

The other multi-process tests (groups split across 2 processes, SIGKILL of one rank and resume) are
in tests/test_train.py; all of them set up their runs with tests/helpers.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from fixed_rollout import fixed_completion
from helpers import REPO, free_port, tiny_cfg, tiny_run

FIXED_ROLLOUT = str(REPO / "tests" / "fixed_rollout.py")
G = 4
# Answers 0 and 1 are among every group's fixed completions (mixed groups), 7 and 99 among none (all
# wrong), 2 and 4 among some. "40 + 59" makes a longer prompt, so the processes left-pad differently
# from the single process (confidences must not depend on that).
FIXED_PROBLEMS = [{"id": f"p{a}+{b}", "problem": f"What is {a} + {b}?", "answer": str(a + b), "level": 1,
                   "subject": "addition", "source": "test"}
                  for a, b in ((0, 0), (1, 0), (3, 4), (40, 59), (1, 1), (2, 2))]
KEY = ["step", "group", "sample_idx"]


def _run(command: list[str], run, timeout: int = 300) -> None:
    done = subprocess.run(command, cwd=REPO, env=run.env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_one_and_two_processes_give_the_same_advantages(tmp_path, tmp_path_factory):
    """The same rollout trained on 1 process and on 2 (torchrun, gloo), with sampling replaced by fixed
    completions (tests/fixed_rollout.py: the only mock; grading, confidences, the gathered advantage
    rule, the slice back to each process, the loss and the DDP update are the real trainer's), records
    the same rewards, confidences and LENS advantages for every sample of both rollout steps."""
    pytest.importorskip("lens.data", reason="lens.data (training_problems, format_prompt) is not available")
    # 3 prompts x G = 4 = 12 samples per rollout, 6 per process on 2: group 1 straddles the ranks.
    # One update per rollout, 2 rollouts = the 6 problems once: step 2's confidences come from the
    # model after step 1's update, so they also check the slice and the loss of step 1. (Measured:
    # reversing each process's slice moves step 2's confidences by ~2e-4, far outside the tolerance.)
    cfg = tiny_cfg(tmp_path, FIXED_PROBLEMS, prompts_per_rollout=3, prompts_per_update=3, updates_per_rollout=1,
                   rollout_steps=2, save_every=2, max_new_tokens=12)
    assert cfg.algorithm.name == "lens" and cfg.training.num_generations == G
    one = tiny_run(tmp_path, tmp_path_factory, cfg, "one")
    two = tiny_run(tmp_path, tmp_path_factory, cfg, "two")
    _run(one.python(FIXED_ROLLOUT), one)
    _run(two.torchrun(2, FIXED_ROLLOUT), two)
    single = pd.read_parquet(one.run_dir / "rollouts.parquet").sort_values(KEY).reset_index(drop=True)
    double = pd.read_parquet(two.run_dir / "rollouts.parquet").sort_values(KEY).reset_index(drop=True)

    # The same samples: every (step, group, sample_idx) once in each run, each of both steps' 12.
    assert len(single) == len(double) == 2 * 3 * G
    pd.testing.assert_frame_equal(single[KEY], double[KEY])
    assert not single.duplicated(KEY).any()
    # The mock took effect: every completion is the fixed text of its global sample index.
    expected = [fixed_completion(g * G + i) for g, i in zip(single["group"], single["sample_idx"], strict=True)]
    assert single["completion"].tolist() == expected and double["completion"].tolist() == expected
    assert set(single["rank"]) == {0}
    # Otherwise the comparison proves nothing: in the 2-process run a group's samples sit on both ranks.
    ranks = double.groupby(["step", "group"])["rank"].agg(set)
    for step in (1, 2):
        assert {0, 1} in ranks.loc[step].tolist(), ranks
    assert double.groupby("rank").size().tolist() == [2 * 6, 2 * 6]

    for column in ("problem_id", "reward", "group_type"):
        assert single[column].tolist() == double[column].tolist(), column
    assert {"mixed", "all_wrong"} <= set(single["group_type"])
    # Confidences matter: LENS moves all-wrong groups, where GRPO's advantage is 0.
    wrong = single[single["group_type"] == "all_wrong"]
    assert (wrong["grpo_advantage"] == 0).all() and (wrong["advantage"] != 0).all()
    for column in ("confidence", "advantage", "grpo_advantage"):
        torch.testing.assert_close(torch.tensor(double[column].to_numpy()), torch.tensor(single[column].to_numpy()),
                                   rtol=1e-5, atol=1e-7, msg=lambda m, c=column: f"{c}: {m}")


@pytest.mark.slow
def test_multi_node_recipe_on_two_local_nodes(tmp_path, tmp_path_factory):
    """docs/training.md "Several nodes under SLURM" as two "nodes" on 127.0.0.1, one CPU process each.

    The recipe runs on every node (srun)
        accelerate launch --config_file config/accelerate/zero3_multinode.yaml \\
          --num_machines $SLURM_NNODES --num_processes $((8 * SLURM_NNODES)) \\
          --machine_rank $SLURM_NODEID --main_process_ip $MASTER_ADDR --main_process_port 29500 \\
          -m lens.train --config $RUN/config.yaml --out $RUN
    and here two of those launchers start side by side with SLURM_NNODES = 2, SLURM_NODEID = 0 and 1,
    MASTER_ADDR = 127.0.0.1, a free port for 29500 (tests may run beside each other), 1 process per
    node for 8, and `--multi_gpu` (plain DDP; gloo on a CPU) plus the rendezvous settings of
    zero3_multinode.yaml (same_network, rdzv_backend) for its DeepSpeed engine: ZeRO-3 needs CUDA.
    `--multi_gpu` is the only way accelerate 1.15 starts processes on a CPU: with `--cpu` it runs
    its simple launcher, one process whatever --num_processes says. Without `--cpu` and without a
    GPU, its multi-GPU launcher is torchrun (--nnodes 2 --node_rank R, 1 process per node), and
    lens.train then joins the process group with gloo. (`python -m accelerate.commands.accelerate_cli`
    is the `accelerate` command, run by this interpreter.)"""
    pytest.importorskip("lens.data", reason="lens.data (training_problems, format_prompt) is not available")
    docs = (REPO / "docs" / "training.md").read_text()
    recipe = re.search(r"srun bash -c 'accelerate launch (.*?)-m lens\.train", docs, re.S)
    assert recipe, "docs/training.md no longer has the srun ... accelerate launch recipe"
    template = yaml.safe_load((REPO / "config" / "accelerate" / "zero3_multinode.yaml").read_text())
    nodes, port = 2, free_port()
    flags = {"--num_machines": nodes, "--num_processes": 1 * nodes,  # 1 process per node (the docs: 8 GPUs)
             "--machine_rank": None, "--main_process_ip": "127.0.0.1", "--main_process_port": port}
    # The docs' launcher flags and no other, bar the engine's config file: a recipe that changes fails here.
    assert set(re.findall(r"--\w+", recipe.group(1))) - {"--config_file"} == set(flags)

    def launcher(node: int) -> list[str]:
        engine = ["--multi_gpu", "--rdzv_backend", template["rdzv_backend"],
                  *(["--same_network"] if template["same_network"] else [])]
        return [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", *engine,
                *(str(x) for flag, value in {**flags, "--machine_rank": node}.items() for x in (flag, value))]

    cfg = tiny_cfg(tmp_path, prompts_per_rollout=1, prompts_per_update=1, updates_per_rollout=1, rollout_steps=2,
                   save_every=2)
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    # Logs to files, not pipes: a node blocked on a full pipe would hold the other in a collective.
    logs = [tmp_path / f"node{node}.log" for node in range(nodes)]
    procs = []
    try:
        for node, log in enumerate(logs):
            with log.open("w") as out:
                procs.append(subprocess.Popen([*launcher(node), *run.train_args()], cwd=REPO, env=run.env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        for proc in procs:
            proc.wait(timeout=300)
    finally:
        for proc in procs:
            if proc.poll() is None:  # a node left waiting for the other: end its launcher and worker
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for node, (proc, log) in enumerate(zip(procs, logs, strict=True)):
        assert proc.returncode == 0, f"node {node}:\n{log.read_text()[-3000:]}"
    done = json.loads((run.run_dir / "done").read_text())
    assert done["global_step"] == 2
    # One process per node, one group of G = 4 per step: its samples on the ranks of both nodes.
    rollouts = pd.read_parquet(run.run_dir / "rollouts.parquet")
    assert rollouts.groupby("step")["rank"].apply(list).tolist() == [[0, 0, 1, 1]] * 2
