"""lens.trainer: LENS advantages inside TRL's GRPOTrainer, on a tiny model on the CPU.

    python -m pytest tests/test_trainer.py -q
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch
import trl

from lens.config import ALGORITHMS, LENS_FAMILY, AlgorithmConfig, RunConfig, TinyModelConfig, parse
from lens.objective import compute_advantages, sequence_confidence
from lens.rollout import (
    ROLLOUT_COLUMNS,
    kept_only_advantages,
    process_advantages,
    rollout_metrics,
    rollout_records,
    rollout_seed,
)
from lens.trainer import LensGRPOTrainer, needs_confidence, trl_loss_type
from lens.trl_config import batch_plan, grpo_config_kwargs
from lens.trl_contract import TRL_CONTRACT, check_trl_contract

METRICS = (
    "reward", "groups/all_wrong_frac", "groups/all_correct_frac", "groups/mixed_frac", "adv/nonzero_frac",
    *(f"adv/{what}/{kind}" for what in ("abs_mean", "grpo_abs_mean", "delta_vs_grpo")
      for kind in ("mixed", "all_wrong", "all_correct")),
)
PROMPTS = ["1+1=", "2+3=", "4+4=", "3+5="]


# --------------------------------------------------------------------------------------------
# TRL contract: fail loudly when the internals the subclass relies on change
# --------------------------------------------------------------------------------------------
def test_trl_is_the_pinned_version_and_contract_holds():
    assert trl.__version__ == "1.16.0", "lens.trainer was written against trl 1.16.0: re-check TRL_CONTRACT"
    check_trl_contract()  # raises with the list of changed internals


def test_contract_check_names_a_changed_method(monkeypatch):
    def changed(self, batch):  # renamed parameter, as a TRL refactor might do
        return batch

    monkeypatch.setattr(trl.GRPOTrainer, "_generate_and_score_completions", changed)
    with pytest.raises(RuntimeError, match="_generate_and_score_completions"):
        check_trl_contract()


def test_subclass_overrides_only_the_contracted_methods():
    own = {name for name, value in vars(LensGRPOTrainer).items() if inspect.isfunction(value)}
    trl_methods = {name for name in own if hasattr(trl.GRPOTrainer, name)}
    assert trl_methods == {"__init__", "_generate_and_score_completions", "_calculate_rewards", "_prepare_inputs",
                           "_get_train_sampler", "log", "_generate"}
    assert set(TRL_CONTRACT) >= trl_methods - {"__init__"}


def test_loss_type_per_algorithm():
    assert trl_loss_type("grpo") == "grpo"  # Eq. 3: per-sequence token mean, then mean over sequences
    assert trl_loss_type("lens") == "grpo"
    assert trl_loss_type("dr_grpo") == "dr_grpo"  # constant-length normaliser
    assert [a for a in ALGORITHMS if needs_confidence(a)] == list(LENS_FAMILY)


@pytest.mark.parametrize("algo,low,high", [("grpo", 0.2, 0.2), ("lens", 0.2, 0.2), ("ngrpo", 0.16, 0.24)])
def test_clipping_per_algorithm_reaches_trl(tmp_path, algo, low, high):
    # NGRPO's asymmetric clipping: ratio in [1 - 0.16, 1 + 0.24] (TRL's epsilon, epsilon_high).
    cfg = _run_cfg(algo, 1)
    kwargs = grpo_config_kwargs(cfg, batch_plan(cfg.training, 1), cuda=False, output_dir=tmp_path)
    assert (kwargs["epsilon"], kwargs["epsilon_high"]) == (low, high)
    args = trl.GRPOConfig(**kwargs)
    assert (args.epsilon, args.epsilon_high) == (low, high)


# --------------------------------------------------------------------------------------------
# Pure pieces: metrics and the gather/slice layout
# --------------------------------------------------------------------------------------------
def test_rollout_metrics_hand_computed():
    # objective.py's worked example (G = 4): a mixed and a negative group, plus an all-correct one.
    rewards = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    confidence = torch.tensor([[0.5, 0.8, 0.4, 0.2], [0.5, 0.25, 0.2, 0.1], [0.9, 0.9, 0.9, 0.9]])
    lens = compute_advantages("lens", rewards, confidence)
    grpo = compute_advantages("grpo", rewards, confidence)
    m = rollout_metrics(rewards, confidence, lens, grpo)
    assert m["groups/mixed_frac"] == pytest.approx(1 / 3)
    assert m["groups/all_wrong_frac"] == pytest.approx(1 / 3)
    assert m["groups/all_correct_frac"] == pytest.approx(1 / 3)
    assert m["adv/nonzero_frac"] == pytest.approx(8 / 12)  # mixed + negative samples
    assert m["confidence/correct_mean"] == pytest.approx((0.5 + 4 * 0.9) / 5)
    assert m["confidence/wrong_mean"] == pytest.approx((0.8 + 0.4 + 0.2 + 0.5 + 0.25 + 0.2 + 0.1) / 7)
    a_mixed = [1.491210, 0.645449, 0.454676, 0.391085]
    a_neg = [0.036024, 0.005642, 0.010851, 0.019531]
    assert m["adv/abs_mean/mixed"] == pytest.approx(sum(a_mixed) / 4, abs=1e-5)
    assert m["adv/abs_mean/all_wrong"] == pytest.approx(sum(a_neg) / 4, abs=1e-5)
    assert m["adv/abs_mean/all_correct"] == 0
    assert m["adv/grpo_abs_mean/mixed"] == pytest.approx(3 / 4 * 0.5 + 1.5 / 4, abs=1e-5)
    assert m["adv/grpo_abs_mean/all_wrong"] == 0
    delta = [abs(1.491210 - 1.5), abs(-0.645449 + 0.5), abs(-0.454676 + 0.5), abs(-0.391085 + 0.5)]
    assert m["adv/delta_vs_grpo/mixed"] == pytest.approx(sum(delta) / 4, abs=1e-5)
    assert m["adv/delta_vs_grpo/all_wrong"] == pytest.approx(sum(a_neg) / 4, abs=1e-5)


def test_rollout_metrics_without_confidence_or_wrong_answers_are_nan():
    rewards = torch.ones(2, 4)
    adv = torch.zeros(2, 4)
    m = rollout_metrics(rewards, None, adv, adv)
    assert math.isnan(m["confidence/correct_mean"]) and math.isnan(m["confidence/wrong_mean"])
    m = rollout_metrics(rewards, torch.full((2, 4), 0.5), adv, adv)
    assert m["confidence/correct_mean"] == pytest.approx(0.5) and math.isnan(m["confidence/wrong_mean"])


@pytest.mark.parametrize("processes", [1, 2, 3, 4, 6])
def test_groups_split_across_processes_match_the_single_process_advantages(processes):
    # 3 groups of G = 4 over P processes: with P = 4 or 6 a group straddles two processes, so each
    # process must see every process's rewards and confidences before it slices its own rows.
    g = torch.Generator().manual_seed(0)
    rewards = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1])
    confidence = torch.rand(12, generator=g)
    algo = AlgorithmConfig(name="lens")
    whole = compute_advantages("lens", rewards.view(3, 4), confidence.view(3, 4)).reshape(-1)
    n = 12 // processes
    pieces = [process_advantages(algo, rewards, confidence, 4, rank, n)[0] for rank in range(processes)]
    torch.testing.assert_close(torch.cat(pieces), whole)
    if n % 4:  # a process's own rows do not even form whole groups
        with pytest.raises(RuntimeError):
            process_advantages(algo, rewards[:n], confidence[:n], 4, 0, n)


# --------------------------------------------------------------------------------------------
# The trainer on a tiny model
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from lens.tiny import build_model, build_tokenizer

    cfg = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    tokenizer = build_tokenizer(cfg, PROMPTS)
    state = build_model(cfg, tokenizer, seed=0).state_dict()
    return cfg, tokenizer, state


def _run_cfg(algo: str, updates_per_rollout: int, **training) -> RunConfig:
    return parse(RunConfig, {
        "model": {"name": "tiny", "tiny": {}},
        "algorithm": {"name": algo},
        "training": {"prompts_per_rollout": 2 * updates_per_rollout, "num_generations": 4,
                     "updates_per_rollout": updates_per_rollout, "prompts_per_update": 2, "rollout_steps": 1,
                     "max_new_tokens": 8, "learning_rate": 1e-2, **training},
    })


def parity_reward(completions, **kwargs):
    """A deterministic stand-in verifier: mixed groups, independent of any answer format."""
    return [float(sum(map(ord, c)) % 2) for c in completions]


def always_wrong(completions, **kwargs):
    return [0.0] * len(completions)


def _trainer(tiny, tmp_path, algo, reward, updates_per_rollout=2, overrides=None, trainer_kwargs=None, **training):
    from datasets import Dataset
    from transformers import TrainerCallback

    from lens.tiny import build_model

    cfg_tiny, tokenizer, state = tiny
    model = build_model(cfg_tiny, tokenizer, seed=0)
    model.load_state_dict(state)
    cfg = _run_cfg(algo, updates_per_rollout, **training)
    plan = batch_plan(cfg.training, 1)
    kwargs = grpo_config_kwargs(cfg, plan, cuda=False, output_dir=tmp_path)
    kwargs.update({"save_strategy": "no", "logging_steps": 1, "seed": 0, **(overrides or {})})
    logs: list[dict] = []

    class Collect(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            logs_out.append(dict(logs))

    logs_out = logs
    dataset = Dataset.from_dict({"prompt": PROMPTS, "answer": ["2", "5", "8", "8"]})
    trainer = LensGRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=[reward],
                              args=trl.GRPOConfig(**kwargs), train_dataset=dataset, callbacks=[Collect()],
                              algorithm=cfg.algorithm, **(trainer_kwargs or {}))
    return trainer, logs


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _changed(before, model):
    return any(not torch.equal(before[k], v.detach()) for k, v in model.named_parameters())


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_every_algorithm_trains_and_logs(tiny, tmp_path, algo):
    torch.manual_seed(0)
    records = []
    trainer, logs = _trainer(tiny, tmp_path, algo, parity_reward, trainer_kwargs={"record_sink": records.append})
    before = _params(trainer.model)
    trainer.train()
    assert trainer.state.global_step == 2
    assert _changed(before, trainer.model), f"{algo}: two updates left every parameter unchanged"

    # The rollout's records: the advantages the loss used are the rule's on the recorded rewards and
    # confidences, group by group, and TRL's completions log holds the same ones.
    assert len(records) == 1
    rows = records[0]
    assert list(rows.columns) == ROLLOUT_COLUMNS and len(rows) == 4 * 4
    assert set(rows["step"]) == {1} and set(rows["rank"]) == {0}
    assert rows["group"].tolist() == [g for g in range(4) for _ in range(4)]
    assert rows["sample_idx"].tolist() == list(range(4)) * 4
    assert rows["reward"].tolist() == parity_reward(rows["completion"].tolist())  # the graded text is the record's
    assert set(rows["problem_id"]) == {""}  # this test dataset has no problem_id column
    rewards = torch.tensor(rows["reward"].to_numpy()).view(4, 4)
    confidence = torch.tensor(rows["confidence"].to_numpy()).view(4, 4)
    assert bool(((confidence > 0) & (confidence <= 1)).all())
    expected = compute_advantages(algo, rewards, confidence, seed=rollout_seed(0, 0),
                                  **AlgorithmConfig(name=algo).params())
    torch.testing.assert_close(torch.tensor(rows["advantage"].to_numpy()).view(4, 4), expected, rtol=1e-5, atol=1e-6)
    grpo = compute_advantages("grpo", rewards, confidence)
    torch.testing.assert_close(torch.tensor(rows["grpo_advantage"].to_numpy()).view(4, 4), grpo, rtol=1e-5, atol=1e-6)
    kinds = {0: "all_wrong", 4: "all_correct"}
    assert rows["group_type"].tolist() == [kinds.get(int(k), "mixed") for k in rewards.sum(1) for _ in range(4)]
    assert list(trainer._logs["advantages"]) == pytest.approx(rows["advantage"].tolist(), rel=1e-6, abs=1e-7)
    assert list(trainer._logs["extra"]["grpo_advantage"]) == pytest.approx(rows["grpo_advantage"].tolist(), abs=1e-6)
    first = logs[0]  # the rollout's metrics arrive with the first update's log
    missing = [m for m in METRICS if m not in first]
    assert not missing, f"{algo}: metrics not logged: {missing}"
    # Several updates per rollout: TRL's old log-probs give the confidence of every algorithm.
    assert 0 < first["confidence/wrong_mean"] <= 1
    fractions = first["groups/all_wrong_frac"] + first["groups/all_correct_frac"] + first["groups/mixed_frac"]
    assert fractions == pytest.approx(1.0)


@pytest.mark.parametrize("algo,moves", [("grpo", False), ("lens", True), ("lens_mixed_only", False)])
def test_all_wrong_groups_move_only_lens(tiny, tmp_path, algo, moves):
    torch.manual_seed(0)
    trainer, logs = _trainer(tiny, tmp_path, algo, always_wrong)
    before = _params(trainer.model)
    trainer.train()
    assert logs[0]["groups/all_wrong_frac"] == 1.0
    assert _changed(before, trainer.model) is moves
    if moves:
        assert logs[0]["adv/nonzero_frac"] > 0 and logs[0]["adv/delta_vs_grpo/all_wrong"] > 0
    else:
        assert logs[0]["adv/nonzero_frac"] == 0


def _count_logp_calls(trainer, monkeypatch):
    calls = []
    original = trainer._get_per_token_logps_and_entropies

    def counting(*args, **kwargs):
        calls.append(torch.is_grad_enabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer, "_get_per_token_logps_and_entropies", counting)
    return calls


@pytest.mark.parametrize("micro_batch_size", [None, 4])
@pytest.mark.parametrize("algo,extra", [("grpo", 0), ("lens", 1)])
def test_one_update_per_rollout_adds_a_forward_only_for_lens(tiny, tmp_path, monkeypatch, algo, extra,
                                                             micro_batch_size):
    # TRL computes no old log-probs with one update per rollout: LENS computes them once after
    # generation (no grad) and TRL reuses them as old log-probs; GRPO never reads them.
    torch.manual_seed(0)
    trainer, logs = _trainer(tiny, tmp_path, algo, parity_reward, updates_per_rollout=1,
                             micro_batch_size=micro_batch_size)
    micro_batches = trainer.args.gradient_accumulation_steps
    assert micro_batches == (1 if micro_batch_size is None else 2)
    calls = _count_logp_calls(trainer, monkeypatch)
    before = _params(trainer.model)
    trainer.train()
    assert trainer.state.global_step == 1
    assert calls.count(False) == extra
    assert calls.count(True) == micro_batches  # the update's own forward passes
    assert _changed(before, trainer.model)
    assert math.isfinite(logs[0]["loss"])
    assert (logs[0].get("confidence/wrong_mean") is not None) is (extra == 1)
    assert "groups/mixed_frac" in logs[0] and "adv/delta_vs_grpo/mixed" in logs[0]


def test_several_updates_reuse_trl_old_logps(tiny, tmp_path, monkeypatch):
    torch.manual_seed(0)
    trainer, _ = _trainer(tiny, tmp_path, "lens", parity_reward, updates_per_rollout=2)
    calls = _count_logp_calls(trainer, monkeypatch)
    trainer.train()
    assert calls.count(False) == 1  # TRL's old log-probs, shared with the confidence
    assert calls.count(True) == 2  # two updates


def test_confidence_is_the_rollout_policys_geometric_mean_probability(tiny, tmp_path, monkeypatch):
    """The confidences handed to compute_advantages equal exp(mean log p) under the initial model."""
    import lens.rollout as lens_rollout
    from lens.tiny import build_model

    torch.manual_seed(0)
    trainer, _ = _trainer(tiny, tmp_path, "lens", parity_reward, updates_per_rollout=1)
    seen = {}
    real_gen = LensGRPOTrainer._generate_and_score_completions

    def capture_gen(self, inputs):
        out = real_gen(self, inputs)
        seen["batch"] = {k: out[k].clone() for k in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask")}
        return out

    real_compute = lens_rollout.compute_advantages

    def capture_compute(algo, rewards, confidence, **kw):
        seen.setdefault("confidence", confidence.clone())
        return real_compute(algo, rewards, confidence, **kw)

    monkeypatch.setattr(LensGRPOTrainer, "_generate_and_score_completions", capture_gen)
    monkeypatch.setattr(lens_rollout, "compute_advantages", capture_compute)
    trainer.train()
    cfg_tiny, tokenizer, state = tiny
    initial = build_model(cfg_tiny, tokenizer, seed=0)
    initial.load_state_dict(state)
    b = seen["batch"]
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
    attn = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    with torch.no_grad():
        logits = initial(input_ids=ids, attention_mask=attn).logits[:, -b["completion_ids"].size(1) - 1:-1]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, b["completion_ids"].unsqueeze(-1)).squeeze(-1)
    expected = sequence_confidence(logp, b["completion_mask"])
    torch.testing.assert_close(seen["confidence"].reshape(-1), expected, rtol=1e-4, atol=1e-6)


def test_kept_only_advantages_hand_computed():
    # Two updates of two micro-batches of 2 sequences (accumulation 2), one process:
    #   update 0: [1, -1], [0, 0]  -> N = 4, K = 2, scale 2;  update 1: [0, 0], [0, 1] -> N = 4, K = 1, scale 4.
    batches = [torch.tensor(a) for a in ([1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0])]
    scaled = kept_only_advantages(batches, 2, lambda t: t)
    assert [a.tolist() for a in scaled] == [[2, -2], [0, 0], [0, 0], [0, 4]]
    # Two processes with the same local counts: N = 8, K = 4 and 2, so the same scales.
    scaled = kept_only_advantages(batches, 2, lambda t: 2 * t)
    assert [a.tolist() for a in scaled] == [[2, -2], [0, 0], [0, 0], [0, 4]]
    # Nothing kept: all zero, no division by zero.
    assert [a.tolist() for a in kept_only_advantages([torch.zeros(3)], 1, lambda t: t)] == [[0, 0, 0]]
    with pytest.raises(ValueError, match="whole updates"):
        kept_only_advantages(batches[:3], 2, lambda t: t)


def rewards_by_prompt(prompts, completions, **kwargs):
    """Group types set by hand (G = 4): "1+1=" and "3+5=" mixed (first sample right, r = [1, 0, 0, 0]),
    "2+3=" all wrong, "4+4=" all right. A group's samples arrive consecutively, before TRL's shuffle."""
    seen, rewards = set(), []
    for prompt in prompts:
        if prompt == "2+3=":
            rewards.append(0.0)
        elif prompt == "4+4=":
            rewards.append(1.0)
        else:
            rewards.append(0.0 if prompt in seen else 1.0)
        seen.add(prompt)
    return rewards


def _gradient(trainer, micro_batches, accumulation):
    trainer.model.zero_grad()
    trainer.current_gradient_accumulation_steps = accumulation
    for inputs in micro_batches:
        trainer._compute_loss(trainer.model, inputs).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


@pytest.mark.parametrize("updates_per_rollout,micro_batch_size", [(1, 4), (2, None)])
def test_reinforce_rej_update_equals_the_one_on_kept_prompts_only(tiny, tmp_path, updates_per_rollout,
                                                                  micro_batch_size):
    # One rollout of 4 prompts x G = 4 = 16 sequences: 2 mixed groups kept (8 sequences, A = +-1),
    # 1 all-wrong and 1 all-correct group filtered (A = 0).
    #   (1, 4): one update of 16 sequences in 4 micro-batches of 4: N = 16, K = 8, kept A = +-2;
    #   (2, None): two updates of 8 sequences each, one micro-batch each: kept A = +-8 / K_u, K_0 + K_1 = 8.
    # TRL's loss weighs each sequence of an update by 1/N; with kept A scaled by N/K the update's
    # gradient is the mean over its K kept sequences, the gradient on a batch of them alone.
    torch.manual_seed(0)
    trainer, _ = _trainer(tiny, tmp_path, "reinforce_rej", rewards_by_prompt, updates_per_rollout=updates_per_rollout,
                          prompts_per_rollout=4, prompts_per_update=4 // updates_per_rollout,
                          micro_batch_size=micro_batch_size)
    trainer.model.train()
    accumulation, steps = trainer.args.gradient_accumulation_steps, trainer.args.steps_per_generation
    assert (accumulation, steps) == ((4, 4) if updates_per_rollout == 1 else (1, 2))
    generation_batch = next(iter(trainer.get_train_dataloader()))
    micro_batches = []
    for _ in range(steps):
        micro_batches.append(trainer._prepare_inputs(generation_batch))
        trainer._step += 1
    advantages = torch.cat([b["advantages"] for b in micro_batches])
    assert (advantages != 0).sum().item() == 8
    kept_counts = []
    for u in range(updates_per_rollout):
        update = micro_batches[u * accumulation:(u + 1) * accumulation]
        adv = torch.cat([b["advantages"] for b in update])
        kept = adv != 0
        n, k = adv.numel(), int(kept.sum())
        kept_counts.append(k)
        assert torch.equal(adv[kept].abs(), torch.full((k,), n / k))  # +-N/K
        keys = ["prompt_ids", "prompt_mask", "completion_ids", "completion_mask"]
        keys += ["old_per_token_logps"] if "old_per_token_logps" in update[0] else []
        kept_only = {key: torch.cat([b[key] for b in update])[kept] for key in keys}
        kept_only["advantages"] = adv[kept].sign()  # the kept prompts' own A = +-1
        expected = _gradient(trainer, [kept_only], 1)
        got = _gradient(trainer, update, accumulation)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)
        # Without the rescaling (A = +-1 among the zeros), TRL's mean shrinks by the kept fraction K/N.
        unscaled = [{**b, "advantages": b["advantages"].sign()} for b in update]
        torch.testing.assert_close(_gradient(trainer, unscaled, accumulation), expected * k / n, rtol=1e-4, atol=1e-7)
    assert sum(kept_counts) == 8


def test_grpo_shuffled_is_seeded_by_run_seed_and_rollout_step(tiny, tmp_path, monkeypatch):
    import lens.rollout as lens_rollout

    # rollout_seed: run seed x 2^32 + optimizer step, distinct for every (seed, step).
    assert rollout_seed(0, 0) == 0 and rollout_seed(0, 2) == 2 and rollout_seed(3, 4) == 3 * 2**32 + 4
    with pytest.raises(ValueError):
        rollout_seed(-1, 0)
    # process_advantages hands the seed on; every process slices the same permutation.
    rewards, confidence = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 0]), torch.full((8,), 0.5)
    algo = AlgorithmConfig(name="grpo_shuffled")
    whole = compute_advantages("grpo_shuffled", rewards.view(2, 4), confidence.view(2, 4), seed=7).reshape(-1)
    pieces = [process_advantages(algo, rewards, confidence, 4, rank, 4, seed=7)[0] for rank in range(2)]
    torch.testing.assert_close(torch.cat(pieces), whole)
    # Two rollouts of two updates each: seeds from the run seed (0) and the optimizer step at generation.
    seeds = []
    real_compute = lens_rollout.compute_advantages

    def capture(algo, rewards, confidence, seed=0, **kw):
        if algo == "grpo_shuffled":
            seeds.append(seed)
        return real_compute(algo, rewards, confidence, seed=seed, **kw)

    monkeypatch.setattr(lens_rollout, "compute_advantages", capture)
    torch.manual_seed(0)
    trainer, _ = _trainer(tiny, tmp_path, "grpo_shuffled", parity_reward, updates_per_rollout=2, rollout_steps=2)
    trainer.train()
    assert trainer.state.global_step == 4
    assert seeds == [rollout_seed(0, 0), rollout_seed(0, 2)]


def test_reinforce_rej_refuses_a_kl_term():
    from lens.config import ConfigError

    with pytest.raises(ConfigError, match="training.kl_beta: must be 0 for reinforce_rej"):
        _run_cfg("reinforce_rej", 1, kl_beta=0.1)
    assert _run_cfg("grpo", 1, kl_beta=0.1).training.kl_beta == 0.1


def test_wrong_loss_type_is_rejected(tiny, tmp_path):
    with pytest.raises(ValueError, match="loss_type='grpo'"):
        _trainer(tiny, tmp_path, "lens", parity_reward, overrides={"loss_type": "dapo"})
    with pytest.raises(ValueError, match="scale_rewards"):
        _trainer(tiny, tmp_path, "lens", parity_reward, overrides={"scale_rewards": "group"})


def test_rollout_records_by_hand():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # (B=3, G=2): mixed, all wrong, all correct
    advantages = torch.tensor([[0.7, -0.7], [-0.1, 0.1], [0.0, 0.0]])
    grpo = torch.tensor([[0.7, -0.7], [0.0, 0.0], [0.0, 0.0]])
    rows = rollout_records(5, rewards, None, advantages, grpo, ["a", "a", "b", "b", "c", "c"],
                           ["x", "y", "z", "w", "u", "v"], [3, 1, 2, 2, 4, 4], n_local=3)
    assert list(rows.columns) == ROLLOUT_COLUMNS
    assert rows["step"].tolist() == [5] * 6
    assert rows["group"].tolist() == [0, 0, 1, 1, 2, 2] and rows["sample_idx"].tolist() == [0, 1, 0, 1, 0, 1]
    assert rows["rank"].tolist() == [0, 0, 0, 1, 1, 1]  # 3 samples per process: group 1 straddles both
    assert rows["group_type"].tolist() == ["mixed"] * 2 + ["all_wrong"] * 2 + ["all_correct"] * 2
    assert rows["advantage"].tolist() == pytest.approx([0.7, -0.7, -0.1, 0.1, 0.0, 0.0])
    assert rows["grpo_advantage"].tolist() == pytest.approx([0.7, -0.7, 0, 0, 0, 0])
    assert rows["confidence"].isna().all()  # no log-probs were computed
    assert rows["completion_tokens"].tolist() == [3, 1, 2, 2, 4, 4]
    with pytest.raises(ValueError, match="6 samples, but 5 problem ids"):
        rollout_records(5, rewards, None, advantages, grpo, ["a"] * 5, ["x"] * 6, [1] * 6, n_local=3)


def test_confidence_source_trainer_first_then_vllm():
    """p comes from TRL's recomputed pi_old by default, from vLLM's sampling log-probs where TRL has
    none or when asked (confidence_from: sampling); NaN sampling log-probs fall back to TRL's, else 0."""
    from types import SimpleNamespace

    fake = SimpleNamespace(algorithm=AlgorithmConfig(name="lens"), confidence_from="trainer")
    sampling = torch.tensor([[-0.5, float("nan"), -1.0], [-0.2, -0.3, 0.0]])
    old = torch.tensor([[-0.6, -0.7, -0.9], [-0.1, -0.4, -0.2]])
    assert LensGRPOTrainer._rollout_logps(fake, {"sampling_per_token_logps": sampling, "old_per_token_logps": old}) \
        is old
    got = LensGRPOTrainer._rollout_logps(fake, {"sampling_per_token_logps": sampling})
    torch.testing.assert_close(got, torch.tensor([[-0.5, 0.0, -1.0], [-0.2, -0.3, 0.0]]))
    assert LensGRPOTrainer._rollout_logps(fake, {"old_per_token_logps": old}) is old

    prefer_vllm = SimpleNamespace(algorithm=AlgorithmConfig(name="lens"), confidence_from="sampling")
    got = LensGRPOTrainer._rollout_logps(prefer_vllm, {"sampling_per_token_logps": sampling,
                                                      "old_per_token_logps": old})
    torch.testing.assert_close(got, torch.tensor([[-0.5, -0.7, -1.0], [-0.2, -0.3, 0.0]]))
    assert LensGRPOTrainer._rollout_logps(prefer_vllm, {"old_per_token_logps": old}) is old
    # GRPO never asks for a forward pass of its own.
    fake_grpo = SimpleNamespace(algorithm=AlgorithmConfig(name="grpo"), confidence_from="trainer")
    assert LensGRPOTrainer._rollout_logps(fake_grpo, {}) is None


# --------------------------------------------------------------------------------------------
# Seeds: the run seed reaches rollout sampling and TRL's update split whatever the engine reseeds
# --------------------------------------------------------------------------------------------
def _streams() -> tuple:
    """Draws from every stream rollouts use after the trainer's init: sampling (torch; vLLM's unseeded
    requests, numpy and random) and TRL's split of a rollout into updates (torch.randperm)."""
    import random

    import numpy as np

    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random(), torch.randperm(16).tolist()


def test_an_engine_reseed_in_init_leaves_each_run_seed_its_own_streams(tiny, tmp_path, monkeypatch):
    """vLLM's worker start reseeds the trainer's process with its index (TRL builds LLM(seed=process_index)
    after seeding with the run seed), simulated here at the end of TRL's __init__, where it starts vLLM."""
    from transformers import set_seed

    real_init = trl.GRPOTrainer.__init__

    def init_then_engine_reseed(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        set_seed(self.accelerator.process_index)

    monkeypatch.setattr(trl.GRPOTrainer, "__init__", init_then_engine_reseed)
    streams = {}
    for seed in (0, 1, 0):
        _trainer(tiny, tmp_path, "grpo", parity_reward, overrides={"seed": seed})
        streams.setdefault(seed, []).append(_streams())
    assert streams[0][0] == streams[0][1]  # the same seed reproduces
    # seeds 0 and 1 differ in every stream
    assert all(a != b for a, b in zip(streams[0][0], streams[1][0], strict=True))

    # The simulated reseed is real: TRL's own trainer leaves seeds 0 and 1 the same streams.
    plain = []
    for seed in (0, 1):
        trainer, _ = _trainer(tiny, tmp_path, "grpo", parity_reward, overrides={"seed": seed})
        trl.GRPOTrainer(model=trainer.model, processing_class=trainer.processing_class,
                        reward_funcs=[parity_reward], args=trainer.args, train_dataset=trainer.train_dataset)
        plain.append(_streams())
    assert plain[0] == plain[1]


def test_the_reseed_leaves_generate_runs_as_they_were(tiny, tmp_path):
    """Where nothing reseeds (transformers' generate), the trainer ends its init in the state TRL set:
    the embedded and rehearsal runs draw the numbers they drew before the reseed existed."""
    from accelerate.utils import set_seed

    trainer, _ = _trainer(tiny, tmp_path, "grpo", parity_reward, overrides={"seed": 3})
    torch.manual_seed(99)  # whatever came before: TRL's own init seeds
    trl.GRPOTrainer(model=trainer.model, processing_class=trainer.processing_class, reward_funcs=[parity_reward],
                    args=trainer.args, train_dataset=trainer.train_dataset)
    after_trl_init = _streams()
    set_seed(3, device_specific=True)  # what LensGRPOTrainer does after TRL's init
    assert _streams() == after_trl_init


def test_run_sampler_is_trls_order_over_every_pass():
    from trl.trainer.utils import RepeatSampler

    from lens.sampler import RunSampler, data_passes

    data = list(range(7))
    trl_sampler = RepeatSampler(data, mini_repeat_count=2, batch_size=3, repeat_count=2, seed=5)
    passes = [list(trl_sampler) for _ in range(3)]  # one TRL sampler across 3 epochs
    ours = RunSampler(data, 2, 3, 2, True, 5, passes=3)
    assert list(ours) == sum(passes, []) and len(ours) == 3 * len(trl_sampler)
    assert list(ours) == list(ours)  # a fresh sampler (a resumed job's) yields the same order
    # 7 prompts, 3 per rollout: 2 rollouts a pass (the 7th prompt is dropped, as TRL does).
    assert data_passes(7, 3, 4) == 2 and data_passes(7, 3, 5) == 3 and data_passes(7, 3, 1) == 1
    with pytest.raises(ValueError, match="fewer than one rollout"):
        data_passes(2, 3, 1)
