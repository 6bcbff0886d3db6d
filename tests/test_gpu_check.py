"""benchmarks/gpu_check.sh: the GPU check's configuration, and its small mode run end to end on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check  # noqa: E402


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


@pytest.mark.parametrize("small", [False, True])
def test_run_configs_keep_the_paper_path(tmp_path, small):
    from lens.train import batch_plan, grpo_config_kwargs

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


@pytest.mark.slow
def test_small_mode_end_to_end(tmp_path):
    """GPU_CHECK_SMALL=1 bash benchmarks/gpu_check.sh: both trainings, the evaluation and the summary."""
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
    text = (out / "gpu_check.txt").read_text()
    assert "LENS/GRPO step-time ratio" in text and "evaluate:" in text
    assert (out / "gpu_check.log").exists()
