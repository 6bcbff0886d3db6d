"""Supervised warm-up (lens.warmup): targets, batches, schedule, level mix, probe statistics, a tiny run."""

import collections
import itertools
import json

import pytest
import torch
import yaml

from lens.config import ConfigError, ModelConfig, SyntheticConfig, TinyModelConfig, WarmupConfig
from lens.synthetic import make_splits
from lens.tiny import build_tokenizer
from lens.warmup import (
    SEPARATOR,
    auroc,
    collate,
    encode_example,
    learning_rate,
    level_sampler,
    load_warmup_file,
    main,
    probe,
    summarise_probe,
)

TINY = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position_embeddings=256)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(TINY, ["Compute $1 + 2$.", "$1+2=3$. \\boxed{3}"])


def test_loss_only_on_the_solution_and_eos(tokenizer):
    ids, labels = encode_example(tokenizer, "Q:1+2", "3")
    prompt = tokenizer("Q:1+2", add_special_tokens=False)["input_ids"]
    target = tokenizer(SEPARATOR + "3", add_special_tokens=False)["input_ids"]
    assert len(prompt) == 5 and len(target) == 2  # one token per character
    assert ids == prompt + target + [tokenizer.eos_token_id]
    assert labels == [-100] * 5 + target + [tokenizer.eos_token_id]


def test_collate_pads_right_and_masks_padding(tokenizer):
    a = ([5, 6, 7], [-100, 6, 7])
    b = ([8], [8])
    input_ids, mask, labels = collate([a, b], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert labels.tolist() == [[-100, 6, 7], [8, -100, -100]]


def test_learning_rate_ramps_then_decays_to_a_tenth():
    cfg = WarmupConfig(steps=110, learning_rate=1e-3, warmup_steps=10)
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(10, cfg) == pytest.approx(1e-3)
    assert learning_rate(60, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half-way: cos = 0
    assert learning_rate(110, cfg) == pytest.approx(1e-4)
    lrs = [learning_rate(s, cfg) for s in range(10, 111)]
    assert all(x >= y for x, y in itertools.pairwise(lrs))


def test_level_sampler_follows_the_weights():
    problems = make_splits(SyntheticConfig(train_per_level=30, test_per_level=5, seed=0,
                                           rl_per_level=(0, 0, 0, 0, 0)))["train"]
    draws = level_sampler(problems, (1.0, 0.0, 3.0, 0.0, 0.0), seed=1)
    counts = collections.Counter(next(draws)["level"] for _ in range(4000))
    assert set(counts) == {1, 3}  # zero weight: never drawn
    assert counts[3] / 4000 == pytest.approx(0.75, abs=0.03)
    first = [next(level_sampler(problems, (1, 1, 1, 1, 1), seed=5))["id"] for _ in range(3)]
    assert len(set(first)) == 1  # the same seed gives the same first draw
    with pytest.raises(ValueError, match="no training problems"):
        next(level_sampler([p for p in problems if p["level"] == 2], (1, 0, 1, 1, 1), seed=0))


def test_auroc_pinned_values():
    assert auroc([0.9, 0.8], [0.7, 0.85]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert auroc([0.5], [0.5]) == pytest.approx(0.5)  # a tie counts half
    assert auroc([0.1, 0.2], [0.3]) == pytest.approx(0.0)
    assert auroc([0.3], []) is None


def test_summarise_probe_pinned():
    rows = []
    for pid, level, outcomes in (("a", 1, [1, 1]), ("b", 1, [1, 0]), ("c", 5, [0, 0])):
        for i, ok in enumerate(outcomes):
            rows.append({"id": pid, "level": level, "correct": float(ok), "confidence": 0.9 if ok else 0.6 + 0.1 * i})
    s = summarise_probe(rows, group_size=2)
    assert s["levels"][1] == {"problems": 2, "accuracy": 0.75, "all_wrong_frac": 0.0, "all_correct_frac": 0.5}
    assert s["levels"][5] == {"problems": 1, "accuracy": 0.0, "all_wrong_frac": 1.0, "all_correct_frac": 0.0}
    assert s["all_wrong_frac"] == pytest.approx(1 / 3)
    assert s["confidence_correct_mean"] == pytest.approx(0.9)
    assert s["confidence_wrong_mean"] == pytest.approx((0.7 + 0.6 + 0.7) / 3)
    assert s["confidence_auroc"] == pytest.approx(1.0)


def _write_config(tmp_path, **warmup):
    cfg = {"model": {"name": "tiny", "prompt": "plain", "tiny": TINY.__dict__},
           "warmup": {"steps": 60, "batch_size": 8, "learning_rate": 1e-2, "warmup_steps": 3,
                      "torch_threads": 1, "level_weights": [1, 0, 0, 0, 0], **warmup}}
    path = tmp_path / "warmup.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_errors_name_the_key(tmp_path):
    path = _write_config(tmp_path, level_weights=[1, 1])
    with pytest.raises(ConfigError, match="warmup.level_weights"):
        load_warmup_file(path)
    path.write_text(yaml.safe_dump({"model": {"name": "m", "path": "x"}, "warmup": {}}))
    with pytest.raises(ConfigError, match="model.tiny"):
        load_warmup_file(path)
    path.write_text(yaml.safe_dump({"model": {"name": "m", "tiny": {}}, "warmup": {"stepz": 3}}))
    with pytest.raises(ConfigError, match=r"warmup\.stepz"):
        load_warmup_file(path)
    path.write_text(yaml.safe_dump({"model": {"name": "m", "tiny": {}}, "extra": 1}))
    with pytest.raises(ConfigError, match="extra"):
        load_warmup_file(path)


def test_cli_trains_saves_a_loadable_checkpoint_and_the_loss_falls(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    splits = make_splits(SyntheticConfig(train_per_level=20, test_per_level=4, seed=0, rl_per_level=(2, 2, 2, 2, 2)))
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(p) + "\n" for p in splits["train"]))
    out = tmp_path / "model"
    main(["--config", str(_write_config(tmp_path)), "--train", str(train_file), "--out", str(out), "--save-at", "30"])
    log = (out / "warmup_log.csv").read_text().splitlines()
    # --save-at: a copy after step 30 of 60, loadable, and different from the final model
    halfway = AutoModelForCausalLM.from_pretrained(out / "step30")
    assert AutoTokenizer.from_pretrained(out / "step30").vocab == AutoTokenizer.from_pretrained(out).vocab
    final_weights = dict(AutoModelForCausalLM.from_pretrained(out).named_parameters())
    assert any(not torch.equal(p, final_weights[n]) for n, p in halfway.named_parameters())
    assert log[0] == "step,loss,lr,seconds"
    losses = [float(line.split(",")[1]) for line in log[1:]]
    assert losses[-1] < 0.6 * losses[0]
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.hidden_size == 32
    assert tok.decode(tok("$1+2=3$", add_special_tokens=False)["input_ids"]) == "$1+2=3$"

    # The probe on the saved model: every level reported, rates in [0, 1], confidences in (0, 1].
    test = [p for p in splits["test"] if p["level"] == 1][:2] + [p for p in splits["test"] if p["level"] == 5][:2]
    torch.manual_seed(0)
    result = probe(out, test, prompt_style="plain", group_size=4, max_new_tokens=24)
    assert set(result["levels"]) == {1, 5}
    for stats in result["levels"].values():
        assert stats["problems"] == 2 and 0.0 <= stats["accuracy"] <= 1.0
    for key in ("confidence_correct_mean", "confidence_wrong_mean"):
        assert result[key] is None or 0.0 < result[key] <= 1.0


def test_cli_rejects_a_split_without_solutions(tmp_path):
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"id": "x", "problem": "Compute $1 + 1$.", "answer": "2", "level": 1}) + "\n")
    with pytest.raises(SystemExit, match="no `solution`"):
        main(["--config", str(_write_config(tmp_path)), "--train", str(test_file), "--out", str(tmp_path / "m")])


def test_model_config_round_trip(tmp_path):
    model, warmup = load_warmup_file(_write_config(tmp_path))
    assert isinstance(model, ModelConfig) and model.tiny == TINY
    assert warmup.level_weights == (1.0, 0.0, 0.0, 0.0, 0.0) and warmup.steps == 60


@pytest.mark.slow
def test_two_threads_train_the_same_model_twice_even_beside_a_busy_process(tmp_path):
    # The embedded warm-up runs on two threads (config/config.yaml): every RL run of every user with
    # those threads must start from one model. Two runs of the embedded model's size (its matrices are
    # large enough for MKL to split them between the threads), the second beside a process that keeps
    # a core busy (where MKL_DYNAMIC would lower MKL's thread count), give the same weights, bit for bit.
    import subprocess
    import sys
    import time

    splits = make_splits(SyntheticConfig(train_per_level=40, test_per_level=4, seed=0, rl_per_level=(2, 2, 2, 2, 2)))
    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(json.dumps(p) + "\n" for p in splits["train"]))
    tiny = {**TINY.__dict__, "hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 384}
    config = tmp_path / "warmup.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": "tiny", "prompt": "bare", "tiny": tiny},
                                      "warmup": {"steps": 25, "batch_size": 32, "learning_rate": 3e-3,
                                                 "warmup_steps": 3, "torch_threads": 2, "seed": 0}}))

    def warm_up(out):
        subprocess.run([sys.executable, "-m", "lens.warmup", "--config", str(config), "--train", str(train_file),
                        "--out", str(out)], check=True, capture_output=True)
        return (out / "model.safetensors").read_bytes()

    first = warm_up(tmp_path / "a")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        second = warm_up(tmp_path / "b")
    finally:
        busy.kill()
        busy.wait()
    assert first == second
