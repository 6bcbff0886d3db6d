"""The paper config's own code paths (issue: the paper's DAG, rehearsed): final-only benchmarks,
decontamination against every evaluation set, GPUs per model, TRL's vLLM importance-sampling
correction, one BOS on every engine, stand-in tokenizers, the base model's stop string."""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest
import yaml
from helpers import DATA, REPO, snakemake

from lens import evaluate
from lens.config import DatasetConfig, RunConfig, TinyModelConfig, parse
from lens.data import first_answer, format_prompt, load_problems, stop_strings, training_problems

needs_data = pytest.mark.skipif(not (DATA / "math" / "test.jsonl").exists(), reason=f"shared data not found at {DATA}")


def run_config(**sections) -> RunConfig:
    raw = {"model": {"name": "m", "path": "unused", "prompt": "chat"}, "algorithm": {"name": "grpo"}, **sections}
    return parse(RunConfig, raw, source="<test>")


# --------------------------------------------------------------------------------------------
# Final benchmarks: evaluated (a), and decontaminated against (b)
# --------------------------------------------------------------------------------------------
@needs_data
def test_final_only_benchmark_is_evaluable(tmp_path):
    from lens.tiny import save_tiny

    ckpt = save_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                     ["\\boxed{1}"], tmp_path / "tiny")
    raw = {"model": {"name": "m", "path": str(ckpt), "prompt": "plain"}, "algorithm": {"name": "grpo"},
           "evaluation": {"benchmarks": [{"name": "math500", "path": str(DATA / "math"), "limit": 2}],
                          "final_benchmarks": [{"name": "math", "path": str(DATA / "math"), "split": "test",
                                                "limit_per_level_subject": 1}],
                          "n_samples": 1, "max_new_tokens": 2, "batch_size": 64, "pass_k": [1], "torch_threads": 1}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    assert evaluate.main(["--config", str(tmp_path / "run.yaml"), "--out", str(out), "--benchmark", "math_test"]) == 0
    samples = pd.read_parquet(out / "samples.parquet")
    # one problem of each of the 5 levels x 7 subjects
    assert len(samples) == 35 and samples["level"].nunique() == 5 and samples["subject"].nunique() == 7
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--config", str(tmp_path / "run.yaml"), "--out", str(out), "--benchmark", "nope"])
    assert err.value.code == 2


@needs_data
def test_limit_per_level_subject_keeps_every_cell_and_is_deterministic():
    ds = DatasetConfig(name="math", path=str(DATA / "math"), split="test", limit_per_level_subject=2)
    first, again, other = load_problems(ds, seed=0), load_problems(ds, seed=0), load_problems(ds, seed=1)
    assert len(first) == 70 and [p["id"] for p in first] == [p["id"] for p in again]
    assert [p["id"] for p in first] != [p["id"] for p in other]
    cells = pd.Series([(p["level"], p["subject"]) for p in first]).value_counts()
    assert len(cells) == 35 and (cells == 2).all()


@needs_data
def test_decontamination_covers_final_benchmarks():
    """DAPO vs the MATH test set: the 973 exact and 410 prefix overlaps are dropped although MATH test is
    final-only."""
    cfg = run_config(
        data={"train": [{"name": "dapo", "path": str(DATA / "dapo" / "dapo_math_17k.jsonl"), "split": "train"}]},
        evaluation={"benchmarks": [{"name": "math500", "path": str(DATA / "math"), "limit": 5}],
                    "final_benchmarks": [{"name": "math", "path": str(DATA / "math"), "split": "test", "limit": 3}]})
    problems, report = training_problems(cfg)
    # exact: the counts "ignoring formatting" of docs/evaluation.md, 973 vs MATH test, 5 vs MATH-500;
    # prefix: what the second rule adds (every MATH-500 match is also a MATH test match)
    assert report["dropped_by_rule"] == {"math500": {"exact": 5, "prefix": 12},
                                         "math_test": {"exact": 973, "prefix": 410}}
    assert report["n_dropped"] == 1383 and len(problems) == 16666 - 1383
    test_texts = {" ".join(p["problem"].split()) for p in load_problems(
        DatasetConfig(name="math", path=str(DATA / "math"), split="test"))}
    assert not any(" ".join(p["problem"].split()) in test_texts for p in problems)


# --------------------------------------------------------------------------------------------
# GPUs per model (c)
# --------------------------------------------------------------------------------------------
def test_paper_dag_asks_8_gpus_for_llama_training():
    out = snakemake(REPO, "-n", "--configfile", "config/paper.yaml")
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = out.stdout.split("\nrule ")
    train = [j for j in jobs if j.startswith("train:") and "model=llama31_8b_instruct" in j]
    evals = [j for j in jobs if j.startswith("evaluate:") and "model=llama31_8b_instruct" in j]
    assert len(train) == 4 and all("gpu=8" in j for j in train)
    assert evals and all("gpu=1" in j for j in evals)


def test_launcher_follows_the_model_gpus(tmp_path):
    """Shell commands of the train rule: accelerate with 8 processes for the paper models."""
    out = snakemake(REPO, "-n", "-p", "--configfile", "config/paper.yaml", "--config", f"results_dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    launches = [" ".join(line.split()) for line in out.stdout.splitlines() if "-m lens.train" in line]
    assert len(launches) == 8
    # each job on 8 devices of its own (lens.devices), then accelerate with one process per device
    assert all(line.startswith("python -m lens.devices --gpus 8 -- accelerate launch --num_processes 8 "
                               "--config_file config/accelerate/zero3.yaml") for line in launches)
    # ... and every job checks at start that it runs ZeRO-3 on 8 processes (lens.engine)
    assert all("--engine-config config/accelerate/zero3.yaml --processes 8 >" in line for line in launches)


def test_cpu_processes_launch_under_torchrun(tmp_path):
    """A CPU model with `processes: 2` (the rehearsal's stand-ins): torch's launcher, a free port per
    job, the process count checked at start, and two cores reserved per job; `processes: 1` (here
    the Qwen stand-in) keeps one plain process."""
    overlay = tmp_path / "one-process.yaml"
    overlay.write_text(yaml.safe_dump({"models": {"qwen25_3b": {"processes": 1}}}))
    out = snakemake(REPO, "-n", "-p", "--configfile", "config/paper.yaml", "config/paper-rehearsal.yaml",
                    str(overlay), "--config", f"results_dir={tmp_path / 'results'}")
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = [j for j in out.stdout.split("\nrule ") if j.startswith("train:")]
    llama = [j for j in jobs if "model=llama31_8b_instruct" in j]
    qwen = [j for j in jobs if "model=qwen25_3b" in j]
    assert llama and qwen
    for job in llama:
        assert "python -m torch.distributed.run --standalone --nproc_per_node 2 -m lens.train" in job
        assert " --processes 2 >" in job and "threads: 2" in job and "accelerate" not in job
    for job in qwen:
        assert " python -m lens.train --config" in job and "--processes" not in job and "threads:" not in job


# --------------------------------------------------------------------------------------------
# TRL's vLLM importance-sampling correction (d)
# --------------------------------------------------------------------------------------------
def test_vllm_importance_sampling_correction_off_unless_configured(tmp_path):
    from lens.trl_config import batch_plan, grpo_config_kwargs

    for setting, expected in ((None, False), (True, True), (False, False)):
        training = {"engine": "vllm", "prompts_per_rollout": 4, "prompts_per_update": 1, "updates_per_rollout": 4}
        if setting is not None:
            training["vllm_importance_sampling_correction"] = setting
        cfg = run_config(training=training)
        kwargs = grpo_config_kwargs(cfg, batch_plan(cfg.training, 1), cuda=True, output_dir=tmp_path)
        assert kwargs["vllm_importance_sampling_correction"] is expected
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert paper["training"]["vllm_importance_sampling_correction"] is False


def test_trl_default_is_still_on():
    """Why the key exists: TRL turns the correction on by default (a change here may retire the key)."""
    from trl import GRPOConfig

    assert GRPOConfig.__dataclass_fields__["vllm_importance_sampling_correction"].default is True


# --------------------------------------------------------------------------------------------
# One BOS on every engine (e), stand-in tokenizers
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    from transformers import AutoTokenizer

    from lens.tiny import save_tiny

    out = {}
    texts = ["What is $1+2$?", "3", "Compute $\\frac{1}{2}$."]
    for family, arch in (("llama3", "llama"), ("qwen2", "qwen2")):
        path = save_tiny(TinyModelConfig(arch=arch, family=family, tokenizer="bpe", vocab_size=300), texts,
                         tmp_path_factory.mktemp(family))
        out[family] = AutoTokenizer.from_pretrained(path)
    return out


def test_llama3_standin_training_and_evaluation_see_the_same_prompt_tokens(standins):
    from lens.train import _strip_duplicate_bos

    tok = standins["llama3"]
    prompts = [format_prompt(text, "chat", tok) for text in ("What is $1+2$?", "Compute $x$.")]
    assert all(p.startswith("<|begin_of_text|><|start_header_id|>system") for p in prompts)
    training_ids = [tok(_strip_duplicate_bos(p, tok)).input_ids for p in prompts]  # what TRL tokenizes
    evaluation_ids = evaluate.prompt_token_ids(tok, prompts)
    assert training_ids == evaluation_ids
    for ids in evaluation_ids:
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    # the naive path would have doubled it: the chat template writes BOS and the tokenizer adds one
    assert tok(prompts[0]).input_ids[:2] == [tok.bos_token_id] * 2


def test_qwen2_standin_has_no_bos_and_plain_prompts_stay_plain(standins):
    tok = standins["qwen2"]
    assert tok.bos_token is None and tok.eos_token == tok.pad_token == "<|endoftext|>"
    prompt = format_prompt("What is $1+2$?", "plain", tok)
    assert evaluate.prompt_token_ids(tok, [prompt])[0] == tok(prompt).input_ids
    assert tok.decode(evaluate.prompt_token_ids(tok, [prompt])[0]) == prompt


def test_vllm_sampler_gets_token_ids_and_stop_strings(standins, monkeypatch):
    """vLLM cannot be installed here: a stand-in module records what the sampler hands to it."""
    seen = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            seen["params"] = kwargs

    class LLM:
        def __init__(self, **kwargs):
            seen["llm"] = kwargs

        def generate(self, prompts, params, use_tqdm=False):
            seen["prompts"] = prompts
            out = types.SimpleNamespace(text="\\boxed{3}", token_ids=[1, 2], finish_reason="stop")
            return [types.SimpleNamespace(outputs=[out] * params_n()) for _ in prompts]

    def params_n():
        return seen["params"]["n"]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", lambda path: standins["llama3"])
    cfg = run_config(model={"name": "m", "path": "x", "prompt": "chat"}, evaluation={"engine": "vllm"})
    sampler = evaluate.VLLMSampler("x", cfg)
    prompts = [format_prompt("What is $1+2$?", "chat", standins["llama3"])]
    result = sampler.sample(prompts, 2, seed=0, problem_seeds=[11])
    assert seen["prompts"] == [{"prompt_token_ids": evaluate.prompt_token_ids(standins["llama3"], prompts)[0]}]
    assert seen["prompts"][0]["prompt_token_ids"].count(standins["llama3"].bos_token_id) == 1
    assert seen["params"]["stop"] is None and seen["params"]["seed"] == 11 and len(result[0]) == 2
    plain = run_config(model={"name": "m", "path": "x", "prompt": "plain"}, evaluation={"engine": "vllm"})
    evaluate.VLLMSampler("x", plain).sample(["Question: 1+2?"], 1, seed=0, problem_seeds=[12])
    assert seen["params"]["stop"] == ["\nQuestion:"]


# --------------------------------------------------------------------------------------------
# The base model's prompt: stop at its next "Question:" (f)
# --------------------------------------------------------------------------------------------
def test_first_answer_cuts_at_the_next_question_for_plain_prompts_only():
    text = "So $x=3$. \\boxed{3}\nQuestion: What is 2+2?\nAnswer: \\boxed{4}"
    assert first_answer(text, "plain") == "So $x=3$. \\boxed{3}"
    assert first_answer(text, "chat") == text and first_answer("no stop", "plain") == "no stop"
    assert stop_strings("plain") == ("\nQuestion:",) and stop_strings("chat") == ()


def test_reward_and_evaluation_grade_the_first_answer(tmp_path):
    from lens.train import make_reward

    completion = "The answer is \\boxed{3}.\nQuestion: What is 2+2?\nAnswer: \\boxed{4}"
    reward = make_reward(5.0, "plain")
    assert reward([completion, completion], ["3", "4"]) == [1.0, 0.0]
    # a chat prompt has no such stop: the last box counts
    assert make_reward(5.0, "chat")([completion], ["4"]) == [1.0]

    class Sampler:
        tokenizer = None

        def sample(self, prompts, n, seed, problem_seeds=None):
            return [[(completion, 20, "stop")] * n for _ in prompts]

    problems = tmp_path / "bench.jsonl"
    problems.write_text("".join(json.dumps({"id": f"p{i}", "problem": "1+2?", "answer": a, "level": 1,
                                            "subject": "Algebra"}) + "\n" for i, a in enumerate(["3", "4"])))
    cfg = run_config(model={"name": "m", "path": "x", "prompt": "plain"},
                     evaluation={"benchmarks": [{"name": "math500", "path": str(problems), "split": "bench"}],
                                 "n_samples": 2, "pass_k": [1, 2]})
    summary = evaluate.evaluate_benchmark(cfg, cfg.evaluation.benchmarks[0], Sampler, "x", tmp_path / "out")
    graded = pd.read_parquet(tmp_path / "out" / "samples.parquet")
    assert graded.groupby("problem_id")["correct"].sum().to_dict() == {"p0": 2, "p1": 0}
    assert summary["accuracy"] == pytest.approx(0.5)


@needs_data
def test_every_seed_is_evaluated_on_the_same_subset(tmp_path):
    """Paired statistics pool seeds over shared problems: a subset must not depend on the run seed."""
    class Sampler:
        tokenizer = None

        def sample(self, prompts, n, seed, problem_seeds=None):
            return [[("\\boxed{1}", 3, "stop")] * n for _ in prompts]

    ids = []
    for seed in (0, 1, 7):
        cfg = run_config(seed=seed, model={"name": "m", "path": "x", "prompt": "plain"},
                         evaluation={"benchmarks": [{"name": "math500", "path": str(DATA / "math"), "limit": 10}],
                                     "n_samples": 1, "pass_k": [1]})
        evaluate.evaluate_benchmark(cfg, cfg.evaluation.benchmarks[0], Sampler, "x", tmp_path / f"s{seed}")
        ids.append(sorted(pd.read_parquet(tmp_path / f"s{seed}" / "samples.parquet")["problem_id"]))
    assert len(ids[0]) == 10 and ids[0] == ids[1] == ids[2]


def test_transformers_sampler_stops_at_the_stop_string(tmp_path):
    """generate() with stop_strings: a completion ends at "\\nQuestion:" and is reported as stopped."""
    from lens.tiny import save_tiny

    ckpt = save_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                     ["Question: 1\nAnswer: 2"], tmp_path / "tiny", seed=3)
    cfg = run_config(model={"name": "m", "path": str(ckpt), "prompt": "plain"},
                     evaluation={"max_new_tokens": 40, "temperature": 1.0, "torch_threads": 1})
    sampler = evaluate.TransformersSampler(str(ckpt), cfg)
    assert sampler.stops == ["\nQuestion:"]
    # Force the stop string: a model whose next token is always the next character of it.
    target = sampler.tokenizer("\nQuestion: x", add_special_tokens=False).input_ids
    import torch

    calls = []
    original = sampler.model.forward

    def scripted(*args, **kwargs):
        out = original(*args, **kwargs)  # keeps the cache bookkeeping real
        logits = torch.full_like(out.logits, -1e9)
        logits[:, -1, target[min(len(calls), len(target) - 1)]] = 0.0
        calls.append(1)
        out.logits = logits
        return out

    sampler.model.forward = scripted
    (text, n_tokens, reason), = sampler.sample(["Q"], 1, seed=0)[0]
    assert text == "\nQuestion:" and reason == "stop" and n_tokens == len("\nQuestion:")
    assert len(calls) == len("\nQuestion:")  # it stopped there, not at max_new_tokens (40)


def test_standin_cli_builds_a_loadable_model_and_rejects_bad_sections(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lens import tiny

    corpus = tmp_path / "train.jsonl"
    corpus.write_text(json.dumps({"id": "a", "problem": "What is $1+2$?", "answer": "3"}) + "\n")
    section = {"model": {"name": "llama31_8b_instruct", "prompt": "chat",
                         "tiny": {"arch": "llama", "family": "llama3", "tokenizer": "bpe", "vocab_size": 300,
                                  "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
               "corpus": [{"name": "math", "path": str(corpus), "split": "train"}], "seed": 0}
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(section))
    assert tiny.main(["--config", str(tmp_path / "ok.yaml"), "--out", str(tmp_path / "standin")]) == 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "standin")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "standin")
    assert tok.bos_token == "<|begin_of_text|>" and model.config.model_type == "llama"
    assert sorted(model.generation_config.eos_token_id) == sorted(
        tok.convert_tokens_to_ids(["<|eot_id|>", "<|end_of_text|>"]))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**section, "typo": 1}))
    assert tiny.main(["--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "x")]) == 2
    (tmp_path / "notiny.yaml").write_text(yaml.safe_dump({**section, "model": {"name": "m", "path": "p"}}))
    assert tiny.main(["--config", str(tmp_path / "notiny.yaml"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
