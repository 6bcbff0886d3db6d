"""benchmarks/gpu_check.sh: the GPU check's configuration, and its small mode run end to end on the CPU."""

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO, load_script

gpu_check = load_script(REPO / "benchmarks" / "gpu_check.py")


def test_architecture_is_qwen25_3b():
    """The published config.json of Qwen/Qwen2.5-3B, and its 3.09 B parameters."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    arch = gpu_check.QWEN25_3B
    assert {k: arch[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                                 "intermediate_size", "vocab_size", "rope_theta", "tie_word_embeddings",
                                 "max_position_embeddings", "rms_norm_eps")} == {
        "hidden_size": 2048, "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
        "intermediate_size": 11008, "vocab_size": 151936, "rope_theta": 1e6, "tie_word_embeddings": True,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6}
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**arch))
    assert sum(p.numel() for p in model.parameters()) == 3_085_938_688


def test_zero3_model_is_qwen25_05b_width_with_4_layers():
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    arch = gpu_check.QWEN2_ZERO3
    assert (arch["hidden_size"], arch["intermediate_size"], arch["num_attention_heads"], arch["num_key_value_heads"],
            arch["num_hidden_layers"], arch["vocab_size"], arch["tie_word_embeddings"]) == (
        896, 4864, 14, 2, 4, 151936, True)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(Qwen2Config(**arch))
    assert sum(p.numel() for p in model.parameters()) == 195_785_088


@pytest.mark.parametrize("small", [False, True])
def test_run_configs_keep_the_paper_path(tmp_path, small):
    from lens.trl_config import batch_plan, grpo_config_kwargs

    for algo in gpu_check.ALGOS:
        cfg = gpu_check.run_config(tmp_path, algo, small)
        t = cfg.training
        assert cfg.algorithm.name == algo and cfg.model.prompt == "plain" and cfg.model.dtype == "auto"
        assert t.engine == "transformers" and t.gradient_checkpointing and t.precision == "auto"
        assert t.updates_per_rollout > 1 and t.rollout_steps >= 2  # one timed step after the warm-up one
        plan = batch_plan(t, 1)
        assert plan.gradient_accumulation_steps > 1  # micro-batches smaller than an update
        kwargs = grpo_config_kwargs(cfg, plan, cuda=True, output_dir=tmp_path)
        assert kwargs["bf16"] and kwargs["save_steps"] == kwargs["max_steps"]  # one checkpoint: the final one
        assert cfg.evaluation.engine == "transformers" and cfg.evaluation.benchmarks[0].id == "math_test"


@pytest.mark.parametrize("small", [False, True])
def test_zero3_phase_configs_end_at_a_checkpoint_and_resume_from_it(tmp_path, small):
    """The first ZeRO-3 run's last rollout step is its only checkpoint; the resumed run goes one step
    further from it, with micro-batches smaller than an update (gradient accumulation under DeepSpeed)."""
    from lens.layout import checkpoint_path
    from lens.trl_config import batch_plan, grpo_config_kwargs

    cfgs = gpu_check.zero3_run_configs(tmp_path, small)
    first, resumed = cfgs["first"], cfgs["resumed"]
    assert first.model.path == str(tmp_path / ("model" if small else "model-zero3"))
    assert first.algorithm.name == "lens" and first.training.gradient_checkpointing
    assert resumed.training.rollout_steps == gpu_check.ZERO3_RESUMED_STEPS > first.training.rollout_steps
    plan = batch_plan(first.training, 1)
    assert plan.gradient_accumulation_steps > 1
    assert grpo_config_kwargs(first, plan, cuda=True, output_dir=tmp_path)["save_steps"] == plan.max_steps
    # the resumed run keeps the first run's checkpoint step and adds its own final one
    step = first.training.rollout_steps
    assert checkpoint_path(tmp_path, step, resumed) == checkpoint_path(tmp_path, step, first)
    checkpoint_path(tmp_path, resumed.training.rollout_steps, resumed)


def test_zero3_command_is_the_recipe_on_one_process(tmp_path):
    cmd = gpu_check.zero3_command(tmp_path / "run", small=False)
    assert cmd[1:cmd.index("lens.train") + 1] == ["-m", "accelerate.commands.launch", "--num_processes", "1",
                                                   "--config_file", "config/accelerate/zero3.yaml", "-m",
                                                   "lens.train"]
    assert cmd[-4:] == ["--engine-config", "config/accelerate/zero3.yaml", "--processes", "1"]
    assert (REPO / gpu_check.ZERO3_ACCELERATE).exists()
    assert "--cpu" in gpu_check.zero3_command(tmp_path / "run", small=True)
    # the first run keeps its last checkpoint's ZeRO state for the second to resume (extend) from
    assert gpu_check.zero3_command(tmp_path / "run", small=False, keep_resume_state=True)[-1] == "--keep-resume-state"


def test_zero3_output_parsing(tmp_path):
    msg = ("engine error: config/accelerate/zero3.yaml asks for DEEPSPEED ZeRO-3 on 1 process(es), but this job "
           "runs NO on 1 process(es): start it with ...\n"
           "subprocess.CalledProcessError: Command '['python', '-m', 'lens.train']' returned non-zero exit status 2.\n")
    assert gpu_check._engine_stop(msg) == {"config": "config/accelerate/zero3.yaml",
                                           "asks_for": "DEEPSPEED ZeRO-3 on 1 process(es)",
                                           "runs": "NO on 1 process(es)"}
    assert gpu_check._child_exit(msg) == 2
    assert gpu_check._child_exit("  exitcode  : 1 (pid: 7)") == 1 and gpu_check._child_exit("ok") is None

    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2, 3, dtype=torch.bfloat16), "b": torch.zeros(4)}, tmp_path / "model.safetensors")
    info = gpu_check.safetensors_summary(tmp_path / "model.safetensors")
    assert info["tensors"] == 2 and info["parameters"] == 10 and info["dtypes"] == {"BF16": 6, "F32": 4}


@pytest.mark.slow
def test_small_mode_end_to_end(tmp_path):
    """GPU_CHECK_SMALL=1 bash benchmarks/gpu_check.sh: both trainings, the evaluation, the zero3 phase's
    engine-check stop and the summary."""
    out = tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_SMALL": "1", "GPU_CHECK_DIR": str(tmp_path / "work"), "OUT": str(out),
           "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["mode"] == "small" and result["lens_grpo_step_ratio"] > 0
    for algo in gpu_check.ALGOS:
        run = result["train"][algo]
        assert len(run["rollout_step_seconds"]) == 2 and run["done"]["global_step"] == 4
    assert result["evaluate"]["summary"]["benchmark"] == "math_test"
    assert not (tmp_path / "work" / "grpo" / "checkpoints").exists()  # only the evaluated run keeps its checkpoint
    # the zero3 phase: the same accelerate launch, stopped by the engine check (ZeRO-3 not exercised)
    zero3 = result["zero3"]
    assert zero3["exercised"] is False and "error" not in zero3
    assert zero3["engine_check"]["lens_train_exit_code"] == 2
    assert zero3["engine_check"]["asks_for"] == "DEEPSPEED ZeRO-3 on 1 process(es)"
    assert zero3["engine_check"]["runs"] == "NO on 1 process(es)"
    assert not (tmp_path / "work" / "zero3" / "first" / "done").exists()
    text = (out / "gpu_check.txt").read_text()
    assert "LENS/GRPO step-time ratio" in text and "evaluate:" in text
    assert "ZeRO-3 itself NOT exercised" in text
    assert "zero3 (small mode): DeepSpeed ZeRO-3 itself was NOT exercised" in (out / "gpu_check.log").read_text()
    assert (out / "gpu_check.log").exists()
    # one seed twice on the CPU: bit-identical rollouts, both steps
    det = result["determinism"]
    assert det["identical"] is True and set(det["steps"]) == {"1", "2"}
    assert all(v["identical"] == v["completions"] == 4 * 4 for v in det["steps"].values())
    assert "determinism: one seed twice: rollouts MATCH" in text and "not covered here: vLLM" in text
    log = (out / "gpu_check.log").read_text()
    starts = [log.index(f"== {name} (limit") for name in ("prepare", "zero3", "determinism", "train_grpo")]
    assert starts == sorted(starts)


def _limits(mode_block: str) -> dict[str, int]:
    import re

    return {k: int(v) for k, v in re.findall(r"T_([A-Z0-9]+)=\$\{GPU_CHECK_TIMEOUT_[A-Z0-9]+:-(\d+)\}", mode_block)}


def test_phase_limits_add_up_to_the_total_cap_and_the_gpu_only_phases_come_first():
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    small, full = script.split('if [[ "$SMALL" == 1 ]]; then', 1)[1].split("else", 1)
    for block in (small, full.split("NEED_MODULES=", 1)[0]):
        limits = _limits(block)
        total = limits.pop("TOTAL")
        # train runs twice (GRPO and LENS)
        assert set(limits) == {"PREPARE", "ZERO3", "DETERMINISM", "TRAIN", "EVAL"}
        assert sum(limits.values()) + limits["TRAIN"] <= total, (limits, total)
    phases = [line.split()[1] for line in script.splitlines() if line.startswith("phase ")]
    assert phases == ["prepare", "zero3", "determinism", "train_grpo", "train_lens", "evaluate"]


def test_rollouts_match_step_by_step(tmp_path):
    import pandas as pd

    rows = [{"step": s, "group": g, "sample_idx": i, "problem_id": f"p{g}", "completion": f"{s}{g}{i}"}
            for s in (1, 2) for g in (0, 1) for i in (0, 1)]
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(rows[::-1]).to_parquet(tmp_path / "b.parquet")  # order on disk does not matter
    assert gpu_check.rollouts_match(tmp_path / "a.parquet", tmp_path / "b.parquet")["identical"] is True
    rows[5]["completion"] = "other"  # step 2, group 0, sample 1
    pd.DataFrame(rows).to_parquet(tmp_path / "c.parquet")
    match = gpu_check.rollouts_match(tmp_path / "a.parquet", tmp_path / "c.parquet")
    assert match["identical"] is False
    assert match["steps"][1] == {"completions": 4, "identical": 4, "same_prompts": True}
    assert match["steps"][2] == {"completions": 4, "identical": 3, "same_prompts": True}
