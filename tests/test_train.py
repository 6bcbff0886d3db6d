"""lens.train: batch arithmetic, checkpoint layout, and a real run killed with SIGKILL and resumed.

    python -m pytest tests/test_train.py -q
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import PROBLEMS, REPO, tiny_cfg, tiny_run

from lens.config import ConfigError, RunConfig, TrainingConfig, parse, write_run_config
from lens.layout import checkpoint_path
from lens.objective import compute_advantages
from lens.run_files import last_checkpoint, prune_resume_state, read_metrics, write_metrics
from lens.train import main
from lens.trl_config import batch_plan, grpo_config_kwargs, resolve_precision

CONTRACT_METRICS = {
    "reward", "groups/all_wrong_frac", "groups/all_correct_frac", "groups/mixed_frac", "adv/nonzero_frac",
    "confidence/wrong_mean",
    *(f"adv/{what}/{kind}" for what in ("abs_mean", "grpo_abs_mean", "delta_vs_grpo")
      for kind in ("mixed", "all_wrong", "all_correct")),
}


# --------------------------------------------------------------------------------------------
# Batch arithmetic
# --------------------------------------------------------------------------------------------
PAPER = TrainingConfig()  # the defaults are the paper's: 128 prompts x 16, 4 updates of 32 prompts


@pytest.mark.parametrize("processes,micro,expected", [
    # (per-device batch, accumulation, steps per generation)
    (1, None, (512, 1, 4)),
    (8, None, (64, 1, 4)),
    (8, 16, (16, 4, 16)),
    (8, 4, (4, 16, 64)),
    (16, 8, (8, 4, 16)),
    (32, None, (16, 1, 4)),
])
def test_batch_plan_reproduces_the_paper_arithmetic(processes, micro, expected):
    training = TrainingConfig(micro_batch_size=micro)
    plan = batch_plan(training, processes)
    assert (plan.per_device_train_batch_size, plan.gradient_accumulation_steps, plan.steps_per_generation) == expected
    assert plan.generation_batch_size == 128 * 16
    assert plan.per_device_train_batch_size * processes * plan.gradient_accumulation_steps == 32 * 16
    assert plan.max_steps == 1600 * 4 and plan.save_steps == 100 * 4


def test_batch_plan_one_update_per_rollout():
    training = TrainingConfig(prompts_per_rollout=8, num_generations=4, updates_per_rollout=1, prompts_per_update=8)
    plan = batch_plan(training, 2)
    assert (plan.per_device_train_batch_size, plan.gradient_accumulation_steps, plan.steps_per_generation) == (16, 1, 1)


@pytest.mark.parametrize("processes,micro,key", [
    (3, None, "do not split evenly over 3 processes"),
    (7, None, "do not split evenly over 7 processes"),
    (8, 48, "micro_batch_size \\(48\\) must divide the 64"),
    (8, 128, "micro_batch_size \\(128\\)"),
    (0, None, "processes must be >= 1"),
])
def test_batch_plan_errors_name_the_setting(processes, micro, key):
    with pytest.raises(ConfigError, match=key):
        batch_plan(TrainingConfig(micro_batch_size=micro), processes)


def test_trl_derives_the_same_generation_batch(tmp_path):
    from trl import GRPOConfig

    cfg = tiny_cfg(tmp_path, micro_batch_size=2)
    plan = batch_plan(cfg.training, 1)
    args = GRPOConfig(**grpo_config_kwargs(cfg, plan, cuda=False, output_dir=tmp_path / "out"))
    assert args.generation_batch_size == plan.generation_batch_size == 2 * 4
    assert args.steps_per_generation == 2 * 2  # 2 updates x 2 micro-batches
    assert args.gradient_accumulation_steps == 2
    assert args.bf16 is False and args.loss_type == "grpo" and args.scale_rewards == "none"


@pytest.mark.parametrize("schedule,halfway,end", [("constant", 1.0, 1.0), ("linear", 0.5, 0.0), ("cosine", 0.5, 0.0)])
def test_lr_schedule_reaches_trl(tmp_path, schedule, halfway, end):
    from transformers import get_scheduler
    from trl import GRPOConfig

    cfg = tiny_cfg(tmp_path, lr_schedule=schedule)  # 8 rollout steps x 2 updates: 16 optimizer steps
    args = GRPOConfig(**grpo_config_kwargs(cfg, batch_plan(cfg.training, 1), cuda=False, output_dir=tmp_path / "out"))
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=args.learning_rate)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer, num_warmup_steps=args.warmup_steps,
                              num_training_steps=args.max_steps)
    lrs = [scheduler.get_last_lr()[0]]
    for _ in range(args.max_steps):
        optimizer.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    assert lrs[0] == pytest.approx(1e-3)  # no warm-up
    assert (lrs[8] / 1e-3, lrs[16] / 1e-3) == (pytest.approx(halfway), pytest.approx(end, abs=1e-12))


@pytest.mark.parametrize("key,value", [("lr_schedule", "step"), ("confidence_from", "vllm")])
def test_training_choices_are_validated(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        tiny_cfg(tmp_path, **{key: value})


def test_precision():
    assert resolve_precision(TrainingConfig(precision="auto"), cuda=True) == "bf16"
    assert resolve_precision(TrainingConfig(precision="auto"), cuda=False) == "fp32"
    assert resolve_precision(TrainingConfig(precision="fp32"), cuda=True) == "fp32"
    with pytest.raises(ConfigError, match="bf16 needs a CUDA device"):
        resolve_precision(TrainingConfig(precision="bf16"), cuda=False)


def test_cli_reports_config_errors(tmp_path, capsys):
    cfg = tiny_cfg(tmp_path, micro_batch_size=3)  # 8 completions per update: 3 does not divide
    write_run_config(cfg, tmp_path / "bad.yaml")
    assert main(["--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "micro_batch_size (3)" in capsys.readouterr().err
    (tmp_path / "typo.yaml").write_text("model: {name: x, tiny: {}}\nalgorithm: {name: lens}\ntrainig: {}\n")
    assert main(["--config", str(tmp_path / "typo.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "trainig" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Checkpoint layout
# --------------------------------------------------------------------------------------------
def test_checkpoint_path_maps_rollout_steps(tmp_path):
    cfg = tiny_cfg(tmp_path, rollout_steps=7, save_every=3)  # updates_per_rollout = 2
    run = tmp_path / "run"
    assert checkpoint_path(run, 0, cfg) == run / "checkpoints" / "checkpoint-0"  # the built tiny model
    assert checkpoint_path(run, 3, cfg) == run / "checkpoints" / "checkpoint-6"
    assert checkpoint_path(run, 6, cfg) == run / "checkpoints" / "checkpoint-12"
    assert checkpoint_path(run, 7, cfg) == run / "checkpoints" / "checkpoint-14"  # the final step
    for step in (1, 4, 8, -1):
        with pytest.raises(ValueError, match="has no checkpoint"):
            checkpoint_path(run, step, cfg)
    hub = parse(RunConfig, {**cfg.to_dict(), "model": {"name": "q", "path": "Qwen/Qwen2.5-3B"}})
    assert checkpoint_path(run, 0, hub) == Path("Qwen/Qwen2.5-3B")


def test_last_checkpoint_skips_incomplete_ones_and_pruning_keeps_models(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for step, complete in ((0, False), (4, True), (8, True), (12, False)):
        d = ckpts / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "model.safetensors").write_text("w")
        (d / "optimizer.pt").write_text("o")
        (d / "rng_state.pth").write_text("r")
        (d / "global_step8").mkdir()
        if complete:
            (d / "trainer_state.json").write_text("{}")
    assert last_checkpoint(ckpts) == ckpts / "checkpoint-8"  # checkpoint-12 was cut short by a kill
    # a kill while trainer_state.json is written leaves it empty or cut off: not complete either
    (ckpts / "checkpoint-12" / "trainer_state.json").write_text('{"global_step": 1')
    assert last_checkpoint(ckpts) == ckpts / "checkpoint-8"
    (ckpts / "checkpoint-12" / "trainer_state.json").write_text("")
    assert last_checkpoint(ckpts) == ckpts / "checkpoint-8"
    assert last_checkpoint(tmp_path / "missing") is None
    prune_resume_state(ckpts, keep=ckpts / "checkpoint-8")
    assert sorted(p.name for p in (ckpts / "checkpoint-4").iterdir()) == ["model.safetensors", "trainer_state.json"]
    assert sorted(p.name for p in (ckpts / "checkpoint-8").iterdir()) == [
        "global_step8", "model.safetensors", "optimizer.pt", "rng_state.pth", "trainer_state.json"]
    (ckpts / "checkpoint-8" / "scheduler.pt").write_text("s")
    prune_resume_state(ckpts, keep=None)  # the run is done: no checkpoint keeps what only a resume reads
    for step in (4, 8):
        assert sorted(p.name for p in (ckpts / f"checkpoint-{step}").iterdir()) == [
            "model.safetensors", "trainer_state.json"]


def test_rollout_parts_prune_and_combine(tmp_path):
    from lens.rollout import ROLLOUT_COLUMNS, rollout_records
    from lens.run_files import combine_rollout_parts, prune_rollout_parts, rollout_table_rows, write_rollout_part

    def step_rows(step, groups):
        rewards = torch.zeros(groups, 2)
        return rollout_records(step, rewards, None, rewards, rewards, ["p"] * 2 * groups, ["c"] * 2 * groups,
                               [1] * 2 * groups, n_local=2 * groups)

    empty = combine_rollout_parts(tmp_path)  # nothing recorded: an empty table with the schema
    assert list(pd.read_parquet(empty).columns) == ROLLOUT_COLUMNS and pd.read_parquet(empty).empty
    empty.unlink()
    for step in (1, 2, 3):
        write_rollout_part(step_rows(step, step), tmp_path)
    prune_rollout_parts(tmp_path, through_step=2)  # resuming from rollout step 2: step 3 comes again
    assert sorted(p.name for p in (tmp_path / "rollouts").iterdir()) == ["step-000001.parquet", "step-000002.parquet"]
    combined = pd.read_parquet(combine_rollout_parts(tmp_path))
    assert combined["step"].tolist() == [1, 1, 2, 2, 2, 2] and list(combined.columns) == ROLLOUT_COLUMNS
    shutil.rmtree(tmp_path / "rollouts")
    pd.testing.assert_frame_equal(pd.read_parquet(combine_rollout_parts(tmp_path)), combined)  # kept as it was
    assert rollout_table_rows(tmp_path / "rollouts.parquet", max_rows=5)["step"].tolist() == [2] * 4  # newest steps
    assert len(rollout_table_rows(tmp_path / "rollouts.parquet", max_rows=6)) == 6


def test_metrics_file_roundtrip(tmp_path):
    path = tmp_path / "train_metrics.parquet"
    assert list(read_metrics(path).columns) == ["step", "metric", "value"]
    write_metrics([(1, "reward", 0.25), (2, "reward", 0.5)], path)
    frame = read_metrics(path)
    assert frame.dtypes.astype(str).tolist() == ["int64", "object", "float64"] or frame["step"].dtype == "int64"
    assert list(frame.itertuples(index=False, name=None)) == [(1, "reward", 0.25), (2, "reward", 0.5)]
    assert not (tmp_path / "train_metrics.parquet.tmp").exists()


# --------------------------------------------------------------------------------------------
# A real run: SIGKILL after the first checkpoint, same command again
# --------------------------------------------------------------------------------------------
def sigkill_at(command: list[str], env: dict, marker: Path, run_dir: Path, timeout: float = 300) -> None:
    """Start the training command and SIGKILL it as soon as `marker` (a checkpoint's trainer_state.json)
    exists; fail if it ended, or finished the run, before that."""
    output = run_dir.parent / f"{run_dir.name}.killed.log"  # a file, not a pipe: nobody reads it while it runs
    with output.open("wb") as sink:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, f"training ended before it could be killed:\n{output.read_text()[-3000:]}"
            assert marker.exists(), f"no {marker} within {timeout:.0f} s"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (run_dir / "done").exists(), "the job finished before SIGKILL: the test proved nothing"


@pytest.mark.slow
def test_sigkill_then_same_command_resumes_to_the_same_final_step(tmp_path, tmp_path_factory):
    pytest.importorskip("lens.data", reason="lens.data (training_problems, format_prompt) is not available")
    from mlflow.tracking import MlflowClient
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = tiny_cfg(tmp_path)
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    results, run_dir, env, command = run.results, run.run_dir, run.env, run.python()
    first_checkpoint = run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json"  # rollout step 2

    sigkill_at(command, env, first_checkpoint, run_dir)
    run_id = (run_dir / "mlflow_run_id").read_text().strip()

    again = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    done = json.loads((run_dir / "done").read_text())
    assert done["global_step"] == 8 * 2 and done["rollout_steps"] == 8
    assert done["resumed_from"] >= 4  # it did not start over
    assert (run_dir / "mlflow_run_id").read_text().strip() == run_id

    # Every rollout step is in the metrics file exactly once, also those logged twice around the kill.
    metrics = read_metrics(run_dir / "train_metrics.parquet")
    assert CONTRACT_METRICS <= set(metrics["metric"])
    assert sorted(metrics.loc[metrics["metric"] == "reward", "step"]) == list(range(1, 9))
    assert not metrics.duplicated(["step", "metric"]).any()

    # Rollout records: every step's 2 prompts x G = 4 completions exactly once, also around the kill.
    rollouts = pd.read_parquet(run_dir / "rollouts.parquet")
    assert sorted(rollouts["step"].unique()) == list(range(1, 9))
    assert (rollouts.groupby("step").size() == 2 * 4).all()
    assert not rollouts.duplicated(["step", "group", "sample_idx"]).any()
    assert not (run_dir / "rollouts").exists()
    # Every step recorded: the generated tokens the run reports are the records' sum, step by step, and
    # each logged step has its cost (also those around the kill).
    cost = metrics.pivot(index="step", columns="metric", values="value")
    assert cost["cost/completion_tokens"].tolist() == rollouts.groupby("step")["completion_tokens"].sum().tolist()
    assert (cost["cost/completions"] == 2 * 4).all() and (cost["cost/prompt_tokens"] > 0).all()
    assert (cost["cost/trained_tokens"] == cost["cost/completion_tokens"] + cost["cost/prompt_tokens"]).all()
    assert (cost["cost/processes"] == 1).all() and (cost["cost/gpus"] == 0).all()
    assert (cost["time/step_s"] > cost["time/generation_s"] + cost["time/scoring_s"]).all()
    assert (cost["time/generation_s"] > 0).all() and (cost["time/scoring_s"] > 0).all()

    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"rollouts.parquet", "rollouts.json"} <= artifacts  # rollouts.json: MLflow's table view
    assert {m.step for m in client.get_metric_history(run_id, "adv/abs_mean/all_wrong")} == set(range(1, 9))
    # the run's totals in MLflow: the sums over its steps, resumed or not
    assert run.data.metrics["total/cost/completion_tokens"] == rollouts["completion_tokens"].sum()
    assert run.data.metrics["total/time/step_s"] == pytest.approx(cost["time/step_s"].sum())

    # Checkpoints every 2 rollout steps, in Hugging Face format; once done, none keeps resume state.
    for step in (0, 2, 4, 6, 8):
        path = checkpoint_path(run_dir, step, cfg)
        assert (path / "config.json").exists() and (path / "tokenizer.json").exists(), path
        assert not (path / "optimizer.pt").exists() and not (path / "rng_state.pth").exists(), path
    final = checkpoint_path(run_dir, 8, cfg)
    AutoTokenizer.from_pretrained(final)
    model = AutoModelForCausalLM.from_pretrained(final)
    initial = AutoModelForCausalLM.from_pretrained(checkpoint_path(run_dir, 0, cfg))
    assert any((a != b).any() for a, b in zip(model.state_dict().values(), initial.state_dict().values(), strict=True))

    # The same command on a finished run does nothing and succeeds.
    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0 and json.loads(rerun.stdout.strip().splitlines()[-1]) == done

    # Killed after the final checkpoint, before `done`: the rerun finishes at the final step (the
    # Trainer resumed from a checkpoint at max_steps would take one step more), the model untouched.
    (run_dir / "done").unlink()
    weights = (final / "model.safetensors").read_bytes()
    after_final = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert after_final.returncode == 0, after_final.stdout[-3000:] + after_final.stderr[-3000:]
    finished = json.loads((run_dir / "done").read_text())
    assert (finished["global_step"], finished["resumed_from"]) == (8 * 2, 8 * 2)
    assert not (run_dir / "checkpoints" / "checkpoint-17").exists()
    assert (final / "model.safetensors").read_bytes() == weights
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "rollouts.parquet"), rollouts)
    assert sorted(read_metrics(run_dir / "train_metrics.parquet").query("metric == 'reward'")["step"]) \
        == list(range(1, 9))
    assert client.get_run(run_id).info.status == "FINISHED"


# --------------------------------------------------------------------------------------------
# Scale-out configs
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,kind,processes,machines", [
    ("zero3", "DEEPSPEED", 8, 1), ("fsdp2", "FSDP", 8, 1), ("zero3_multinode", "DEEPSPEED", 16, 2)])
def test_accelerate_configs_parse_and_save_hf_weights(name, kind, processes, machines):
    from accelerate.commands.config.config_args import ClusterConfig

    cluster = ClusterConfig.from_yaml_file(str(REPO / "config" / "accelerate" / f"{name}.yaml"))
    assert cluster.distributed_type.name == kind and cluster.mixed_precision == "bf16"
    assert (cluster.num_processes, cluster.num_machines) == (processes, machines)
    # Checkpoints must be consolidated Hugging Face weights (vLLM, lm-eval, lens.evaluate load them).
    if kind == "DEEPSPEED":
        assert cluster.deepspeed_config["zero_stage"] == 3 and cluster.deepspeed_config["zero3_save_16bit_model"]
    else:
        assert cluster.fsdp_config["fsdp_version"] == 2
        assert cluster.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    # The paper's 512 completions per update split over these processes.
    batch_plan(TrainingConfig(), processes)


# --------------------------------------------------------------------------------------------
# Two processes (gloo on the CPU): every prompt's group straddles both
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_processes_with_groups_split_across_them(tmp_path, tmp_path_factory):
    pytest.importorskip("lens.data", reason="lens.data (training_problems, format_prompt) is not available")
    # 1 prompt x G = 4 per rollout over 2 processes: each holds 2 samples of the one group, so the
    # advantages exist only after gathering both halves.
    cfg = tiny_cfg(tmp_path, prompts_per_rollout=1, updates_per_rollout=1, prompts_per_update=1, rollout_steps=2,
                   save_every=2)
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    run_dir = run.run_dir
    done = subprocess.run(run.torchrun(2), cwd=REPO, env=run.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads((run_dir / "done").read_text())["global_step"] == 2
    metrics = read_metrics(run_dir / "train_metrics.parquet")
    values = {(s, m): v for s, m, v in metrics.itertuples(index=False, name=None)}
    for step in (1, 2):
        assert values[(step, "groups/all_wrong_frac")] + values[(step, "groups/mixed_frac")] \
            + values[(step, "groups/all_correct_frac")] == pytest.approx(1.0)
        assert 0 < values[(step, "confidence/wrong_mean")] <= 1 or values[(step, "groups/all_correct_frac")] == 1
        if values[(step, "groups/all_wrong_frac")] == 1:  # LENS moves negative groups
            assert values[(step, "adv/nonzero_frac")] == 1.0
    # Rollout records gathered from both processes by rank 0: the one group of each step straddles them.
    rollouts = pd.read_parquet(run_dir / "rollouts.parquet")
    assert len(rollouts) == 2 * 4 and sorted(rollouts["step"].unique()) == [1, 2]
    assert rollouts.groupby("step")["rank"].apply(list).tolist() == [[0, 0, 1, 1]] * 2
    assert set(rollouts["group"]) == {0} and rollouts["sample_idx"].tolist() == [0, 1, 2, 3] * 2
    # the cost counts both processes' samples
    for step, step_rows in rollouts.groupby("step"):
        assert values[(step, "cost/completion_tokens")] == step_rows["completion_tokens"].sum()
        assert values[(step, "cost/completions")] == 4 and values[(step, "cost/processes")] == 2
    for _, step_rows in rollouts.groupby("step"):
        expected = compute_advantages("lens", torch.tensor(step_rows["reward"].to_numpy()).view(1, 4),
                                      torch.tensor(step_rows["confidence"].to_numpy()).view(1, 4))
        torch.testing.assert_close(torch.tensor(step_rows["advantage"].to_numpy()).view(1, 4), expected)


@pytest.mark.slow
def test_sigkill_of_one_rank_ends_the_job_and_the_same_command_resumes(tmp_path, tmp_path_factory):
    """Two CPU processes (torchrun, gloo): SIGKILL one rank mid-run. The whole job ends, non-zero, with
    no rank left waiting on a collective; the same command resumes from the newest complete checkpoint
    to the same final step, with one MLflow run and every metric and rollout row once."""
    pytest.importorskip("lens.data", reason="lens.data (training_problems, format_prompt) is not available")
    from mlflow.tracking import MlflowClient

    cfg = tiny_cfg(tmp_path, prompts_per_rollout=2, updates_per_rollout=1, prompts_per_update=2)  # 8 steps
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    results, run_dir, env = run.results, run.run_dir, run.env
    command = run.torchrun  # a fresh free port for each launch

    checkpoint = run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json"
    proc = subprocess.Popen(command(), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None and checkpoint.exists(), "no checkpoint-4 while the job ran"
        ranks = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(ranks) == 2, ranks
        os.kill(int(ranks[1]), signal.SIGKILL)
        assert proc.wait(timeout=60) != 0  # torchrun stops the other rank: nothing hangs
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (run_dir / "done").exists(), "the job finished before SIGKILL: the test proved nothing"
    run_id = (run_dir / "mlflow_run_id").read_text().strip()

    again = subprocess.run(command(), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    done = json.loads((run_dir / "done").read_text())
    assert done["global_step"] == 8 and done["resumed_from"] >= 4
    assert (run_dir / "mlflow_run_id").read_text().strip() == run_id
    metrics = read_metrics(run_dir / "train_metrics.parquet")
    assert sorted(metrics.loc[metrics["metric"] == "reward", "step"]) == list(range(1, 9))
    assert not metrics.duplicated(["step", "metric"]).any()
    rollouts = pd.read_parquet(run_dir / "rollouts.parquet")
    assert sorted(rollouts["step"].unique()) == list(range(1, 9)) and len(rollouts) == 8 * 2 * 4
    assert not rollouts.duplicated(["step", "group", "sample_idx"]).any() and set(rollouts["rank"]) == {0, 1}
    client = MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.search_runs([client.get_run(run_id).info.experiment_id])) == 1


def _prompt_order(run_dir: Path, gen_batch: int = 0) -> list[list[str]]:
    """The prompts of each rollout step's generation batch `gen_batch`, in group order (rollouts.parquet); [] for
    a step that generated no such batch."""
    rollouts = pd.read_parquet(run_dir / "rollouts.parquet").sort_values(["step", "group", "sample_idx"])
    return [list(frame[frame["gen_batch"] == gen_batch].drop_duplicates("group")["problem_id"])
            for _, frame in rollouts.groupby("step")]


@pytest.mark.slow
def test_resume_in_a_later_epoch_replays_the_uninterrupted_prompt_order(tmp_path, tmp_path_factory):
    """6 problems, 2 per rollout: an epoch is 3 rollout steps and the run 12 (4 epochs). Killed after step 7's
    checkpoint (epoch 2), the same command must train steps 8-12 on the prompts the uninterrupted run trains
    on. TRL's own sampler would replay epoch 0's shuffle from a fresh generator there (lens.sampler.RunSampler).
    The run is grpo_dynamic's (dynamic sampling, at most 2 generation batches a rollout): its refills read the
    same order (the next rollout's prompts), before and after the resume."""
    problems = [dict(p, id=f"e{i}") for i, p in enumerate(PROBLEMS[:6])]
    cfg = tiny_cfg(tmp_path, problems, rollout_steps=12, save_every=1, updates_per_rollout=1, prompts_per_update=2,
                   max_new_tokens=16)
    cfg = dataclasses.replace(cfg, algorithm=dataclasses.replace(cfg.algorithm, name="grpo_dynamic",
                                                                 max_gen_batches=2))
    whole = tiny_run(tmp_path, tmp_path_factory, cfg, name="whole")
    done = subprocess.run(whole.python(), cwd=REPO, env=whole.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    order = _prompt_order(whole.run_dir)
    assert len(order) == 12 and all(len(step) == 2 for step in order)
    # Every epoch (3 steps) shows each problem once, in its own shuffle: epochs 0 and 2 differ.
    epochs = [sum(order[3 * e:3 * e + 3], []) for e in range(4)]
    assert all(sorted(epoch) == sorted(p["id"] for p in problems) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) > 1

    run = tiny_run(tmp_path, tmp_path_factory, cfg, name="killed")
    checkpoint = run.run_dir / "checkpoints" / "checkpoint-7" / "trainer_state.json"  # rollout step 7: epoch 2
    sigkill_at(run.python(), run.env, checkpoint, run.run_dir)
    again = subprocess.run(run.python(), cwd=REPO, env=run.env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    resumed_from = json.loads((run.run_dir / "done").read_text())["resumed_from"]
    assert 7 <= resumed_from < 12  # it resumed inside epoch 2 or 3, not from the start
    assert _prompt_order(run.run_dir) == order
    # Each refill holds the next rollout's prompts, in both runs (step 12's: the order's next pass).
    for run_dir in (whole.run_dir, run.run_dir):
        refills = _prompt_order(run_dir, gen_batch=1)
        assert any(refills[:-1]), "no rollout refilled: the test proves nothing about the refills' order"
        assert all(refill in ([], following) for refill, following in zip(refills[:-1], order[1:], strict=True))
    # The logged epoch counts passes over the data (3 rollout steps each), not the sampler's one iteration.
    metrics = read_metrics(run.run_dir / "train_metrics.parquet").query("metric == 'epoch'")
    assert dict(zip(metrics["step"], metrics["value"].round(6), strict=True))[6] == 2.0


@pytest.mark.slow
def test_a_finished_run_keeps_models_only_unless_asked_and_then_extends(tmp_path, tmp_path_factory):
    """Done: no checkpoint keeps optimizer, scheduler or RNG state. With --keep-resume-state the last one
    keeps it, and the same run with more rollout_steps resumes from it (the GPU check's zero3 phase, on
    DeepSpeed's state) and ends with models only."""
    cfg = tiny_cfg(tmp_path, rollout_steps=2, save_every=1, updates_per_rollout=1, prompts_per_update=2)
    run = tiny_run(tmp_path, tmp_path_factory, cfg)
    kept = subprocess.run([*run.python(), "--keep-resume-state"], cwd=REPO, env=run.env, capture_output=True,
                          text=True, timeout=600)
    assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-3000:]
    checkpoints = run.run_dir / "checkpoints"
    assert (checkpoints / "checkpoint-2" / "optimizer.pt").exists()
    assert not (checkpoints / "checkpoint-1" / "optimizer.pt").exists()
    # Extend: 3 rollout steps, the same run directory (its `done` belongs to the 2-step run).
    (run.run_dir / "done").unlink()
    write_run_config(parse(RunConfig, {**_raw(cfg), "training": {**_raw(cfg)["training"], "rollout_steps": 3}}),
                     run.run_dir / "config.yaml")
    extended = subprocess.run(run.python(), cwd=REPO, env=run.env, capture_output=True, text=True, timeout=600)
    assert extended.returncode == 0, extended.stdout[-3000:] + extended.stderr[-3000:]
    done = json.loads((run.run_dir / "done").read_text())
    assert (done["global_step"], done["resumed_from"]) == (3, 2)
    rollouts = pd.read_parquet(run.run_dir / "rollouts.parquet")  # the first run's records kept, step 3 added
    assert sorted(rollouts["step"].unique()) == [1, 2, 3] and (rollouts.groupby("step").size() == 2 * 4).all()
    for step in (1, 2, 3):
        names = {p.name for p in (checkpoints / f"checkpoint-{step}").iterdir()}
        assert "model.safetensors" in names and not names & {"optimizer.pt", "scheduler.pt", "rng_state.pth"}, names


def _raw(cfg: RunConfig) -> dict:
    import yaml

    from lens.config import dump_yaml

    return yaml.safe_load(dump_yaml(cfg))
