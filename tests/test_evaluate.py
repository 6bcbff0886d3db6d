"""lens.evaluate end to end on a tiny model: tables, summary, grading, resumption, errors."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import DATA

from analysis.stats import summarize
from lens import evaluate
from lens.answer_formats import plain_number
from lens.config import TinyModelConfig, load_run_config
from lens.rewards import grade_batch

pytestmark = pytest.mark.skipif(not (DATA / "math" / "math500.jsonl").exists(),
                                reason=f"shared data not found at {DATA}")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from lens.tiny import save_tiny

    out = tmp_path_factory.mktemp("tiny")
    return save_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                     ["\\boxed{12}"], out, seed=0)


def write_config(path: Path, checkpoint, *, benchmarks=None, **evaluation) -> Path:
    ev = {"benchmarks": benchmarks or [{"name": "math500", "path": str(DATA / "math"), "limit": 6}],
          "n_samples": 2, "max_new_tokens": 6, "batch_size": 2, "pass_k": [1, 2], "torch_threads": 1, **evaluation}
    raw = {"model": {"name": "tiny", "path": str(checkpoint), "prompt": "chat"}, "algorithm": {"name": "grpo"},
           "seed": 5, "evaluation": ev}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_end_to_end_twenty_math500_problems(tmp_path, tiny_checkpoint):
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint,
                            benchmarks=[{"name": "math500", "path": str(DATA / "math"), "limit": 20}],
                            batch_size=10, pass_k=[1, 2])
    out = tmp_path / "out"
    assert evaluate.main(["--config", str(cfg_path), "--out", str(out)]) == 0
    samples = pd.read_parquet(out / "samples.parquet")
    assert list(samples.columns) == evaluate.SAMPLE_COLUMNS
    assert len(samples) == 40 and samples["problem_id"].nunique() == 20
    assert sorted(samples["sample_idx"].unique()) == [0, 1]
    assert set(samples["finish_reason"]) <= {"stop", "length"}
    assert samples["completion_tokens"].between(1, 6).all()
    # "stop" exactly when fewer than max_new_tokens were produced or the last one was EOS
    assert (samples.loc[samples["completion_tokens"] < 6, "finish_reason"] == "stop").all()
    texts = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(texts) == 40
    # the stored grades are what grade_batch says about the stored texts
    answers = {p["id"]: p["answer"] for p in map(json.loads, (DATA / "math" / "math500.jsonl").open())}
    regraded = grade_batch([t["completion"] for t in texts], [answers[t["problem_id"]] for t in texts])
    assert [int(x) for x in regraded] == [t["correct"] for t in texts] == samples["correct"].tolist()
    summary = json.loads((out / "summary.json").read_text())
    expected = summarize(samples, (1, 2))
    assert {k: summary[k] for k in expected} == pytest.approx(expected)
    assert summary["n_problems"] == 20 and "accuracy/level_4_5" in summary and "pass@2" in summary
    assert summary["benchmark"] == "math500"


class FakeSampler:
    """Answers correctly in sample 0 and wrongly in sample 1, so the grades are known."""

    tokenizer = None

    def __init__(self, answers):
        self.answers = answers

    def sample(self, prompts, n, seed, problem_seeds=None):
        return [self.outputs(self.answers[prompt.split("Question: ", 1)[1].split("\nPlease put", 1)[0]], n)
                for prompt in prompts]

    def outputs(self, gold, n):
        return [(f"so $\\boxed{{{gold}}}$", 7, "stop"), ("\\boxed{\\text{no idea}}", 9, "length")][:n]


def test_grades_and_summary_with_known_answers(tmp_path):
    cfg_path = write_config(tmp_path / "run.yaml", "unused")
    raw = yaml.safe_load(cfg_path.read_text())
    raw["model"]["prompt"] = "plain"
    cfg_path.write_text(yaml.safe_dump(raw))
    cfg = load_run_config(cfg_path)
    problems = {p["problem"]: p["answer"] for p in map(json.loads, (DATA / "math" / "math500.jsonl").open())}
    summary = evaluate.evaluate_benchmark(cfg, cfg.evaluation.benchmarks[0], lambda: FakeSampler(problems),
                                          "fake", tmp_path / "out")
    samples = pd.read_parquet(tmp_path / "out" / "samples.parquet")
    assert samples.sort_values(["problem_id", "sample_idx"])["correct"].tolist() == [1, 0] * 6
    assert summary["accuracy"] == 0.5 and summary["pass@1"] == 0.5 and summary["pass@2"] == 1.0
    assert summary["finish_reason/length_frac"] == 0.5 and summary["completion_tokens/mean"] == 8.0


class MinervaSampler(FakeSampler):
    """n answers per problem: the gold rounded to 3 significant figures in \\times 10^{} form, then
    10 % off; so the set's own samples per problem and its tolerance rule both show in the grades."""

    def outputs(self, gold, n):
        mantissa, exponent = f"{float(gold):.2e}".split("e")
        right = f"$\\boxed{{{mantissa} \\times 10^{{{int(exponent)}}}}}$"
        return [(right if j == 0 else f"$\\boxed{{{float(gold) * 1.1}}}$", 5, "stop") for j in range(n)]


def test_a_sets_own_samples_and_answer_format(tmp_path):
    """Minerva's entry asks 3 samples (the run's default is 2), and its numbers grade with its tolerance."""
    rows = [json.loads(line) for line in (DATA / "minerva" / "minerva_math.jsonl").open()]
    numeric = [r for r in rows if "e" in r["answer"] and plain_number(r["answer"]) is not None][:4]  # 4.5e33
    path = tmp_path / "minerva.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in numeric))
    cfg_path = write_config(tmp_path / "run.yaml", "unused",
                            benchmarks=[{"name": "minerva", "path": str(path), "n_samples": 3}])
    raw = yaml.safe_load(cfg_path.read_text())
    raw["model"]["prompt"] = "plain"
    cfg_path.write_text(yaml.safe_dump(raw))
    cfg = load_run_config(cfg_path)
    answers = {r["problem"]: r["answer"] for r in numeric}
    summary = evaluate.evaluate_benchmark(cfg, cfg.evaluation.benchmarks[0], lambda: MinervaSampler(answers),
                                          "fake", tmp_path / "out")
    samples = pd.read_parquet(tmp_path / "out" / "samples.parquet").sort_values(["problem_id", "sample_idx"])
    assert summary["n_samples_per_problem"] == 3 and len(samples) == 3 * len(numeric)
    assert samples["correct"].tolist() == [1, 0, 0] * len(numeric)


def test_killed_midway_and_rerun_keeps_finished_chunks(tmp_path, tiny_checkpoint, monkeypatch):
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint)  # 6 problems in 3 chunks of 2
    out = tmp_path / "out"
    monkeypatch.setenv(evaluate.STOP_ENV, "1")
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--config", str(cfg_path), "--out", str(out)])
    assert stop.value.code == 75
    parts = sorted(p.name for p in (out / "parts").glob("chunk_*.parquet"))
    assert parts == ["chunk_00000.parquet"] and not (out / "samples.parquet").exists()
    first = out / "parts" / "chunk_00000.parquet"
    stamp = (first.stat().st_mtime_ns, first.stat().st_ino)
    kept = pd.read_parquet(first)

    monkeypatch.delenv(evaluate.STOP_ENV)
    sampled = []
    real = evaluate.TransformersSampler.sample
    def counting(self, prompts, n, seed, **kwargs):
        sampled.append(len(prompts))
        return real(self, prompts, n, seed, **kwargs)

    monkeypatch.setattr(evaluate.TransformersSampler, "sample", counting)
    evaluate.main(["--config", str(cfg_path), "--out", str(out)])
    assert sampled == [2, 2]  # only the two missing chunks were sampled
    assert (first.stat().st_mtime_ns, first.stat().st_ino) == stamp  # the finished chunk was not rewritten
    resumed = pd.read_parquet(out / "samples.parquet")
    assert len(resumed) == 12
    pd.testing.assert_frame_equal(resumed.iloc[:4].reset_index(drop=True), kept[evaluate.SAMPLE_COLUMNS])

    # per-chunk seeds: an uninterrupted run produces the same samples
    fresh = tmp_path / "fresh"
    evaluate.main(["--config", str(cfg_path), "--out", str(fresh)])
    pd.testing.assert_frame_equal(pd.read_parquet(fresh / "samples.parquet"), resumed)
    assert (fresh / "completions.jsonl").read_text() == (out / "completions.jsonl").read_text()


def test_rerun_with_other_settings_refuses_stale_parts(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    evaluate.main(["--config", str(write_config(tmp_path / "a.yaml", tiny_checkpoint)), "--out", str(out)])
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--config", str(write_config(tmp_path / "b.yaml", tiny_checkpoint, n_samples=3)),
                       "--out", str(out)])
    assert err.value.code == 2


def test_retrained_checkpoint_at_the_same_path_is_never_mixed_with_old_chunks(tmp_path, tiny_checkpoint):
    """A run retrained from other inputs rewrites its checkpoint under the same path: its evaluation
    must not resume from the old weights' chunks (refused, or replaced with --replace-stale)."""
    import shutil

    from lens.config import TinyModelConfig
    from lens.tiny import save_tiny

    checkpoint = tmp_path / "checkpoint-60"
    shutil.copytree(tiny_checkpoint, checkpoint)
    cfg_path = write_config(tmp_path / "run.yaml", checkpoint)
    out = tmp_path / "out"
    evaluate.main(["--config", str(cfg_path), "--out", str(out)])
    old_samples = pd.read_parquet(out / "samples.parquet")
    old_completions = (out / "completions.jsonl").read_text()

    # "Retrain": other weights written to the same directory.
    shutil.rmtree(checkpoint)
    save_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
              ["\\boxed{12}"], checkpoint, seed=1)
    assert evaluate.weights_stamp(str(checkpoint)) != json.loads((out / "parts" / "meta.json").read_text())["weights"]
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--config", str(cfg_path), "--out", str(out)])
    assert err.value.code == 2
    pd.testing.assert_frame_equal(pd.read_parquet(out / "samples.parquet"), old_samples)  # nothing lost

    evaluate.main(["--config", str(cfg_path), "--out", str(out), "--replace-stale"])
    fresh = tmp_path / "fresh"
    evaluate.main(["--config", str(cfg_path), "--out", str(fresh)])
    # The result is the new weights' evaluation, chunk for chunk, not the old one resumed.
    pd.testing.assert_frame_equal(pd.read_parquet(out / "samples.parquet"), pd.read_parquet(fresh / "samples.parquet"))
    assert (out / "completions.jsonl").read_text() == (fresh / "completions.jsonl").read_text()
    assert (out / "completions.jsonl").read_text() != old_completions  # the two models write different texts
    assert json.loads((out / "parts" / "meta.json").read_text())["weights"] == evaluate.weights_stamp(str(checkpoint))


def test_weights_stamp():
    assert evaluate.weights_stamp("meta-llama/Llama-3.1-8B-Instruct") is None  # a hub id: its name is its identity


def test_several_benchmarks_get_subdirectories(tmp_path, tiny_checkpoint):
    benches = [{"name": "math500", "path": str(DATA / "math"), "limit": 2},
               {"name": "math", "path": str(DATA / "math"), "split": "test", "limit": 2, "levels": [5]}]
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint, benchmarks=benches)
    evaluate.main(["--config", str(cfg_path), "--out", str(tmp_path / "all")])
    assert (tmp_path / "all" / "math500" / "samples.parquet").exists()
    hard = pd.read_parquet(tmp_path / "all" / "math_test" / "samples.parquet")
    assert set(hard["level"]) == {5} and len(hard) == 4
    evaluate.main(["--config", str(cfg_path), "--out", str(tmp_path / "one"), "--benchmark", "math_test"])
    assert (tmp_path / "one" / "samples.parquet").exists() and not (tmp_path / "one" / "math500").exists()


def test_named_benchmarks_in_one_process_each_into_its_own_out(tmp_path, tiny_checkpoint, capsys):
    # rule evaluate_final: the last checkpoint on MATH-500 and the MATH test, one model load; every
    # chunk has its own seed, so the samples are those of one job per benchmark
    benches = [{"name": "math500", "path": str(DATA / "math"), "limit": 2},
               {"name": "math", "path": str(DATA / "math"), "split": "test", "limit": 2, "levels": [5]}]
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint, benchmarks=benches)
    outs = [tmp_path / "a" / "math500" / "step2", tmp_path / "a" / "math_test" / "step2"]
    evaluate.main(["--config", str(cfg_path), "--benchmark", "math500", "math_test", "--out", *map(str, outs)])
    for bench, out in zip(("math500", "math_test"), outs, strict=True):
        alone = tmp_path / "alone" / bench
        evaluate.main(["--config", str(cfg_path), "--benchmark", bench, "--out", str(alone)])
        pd.testing.assert_frame_equal(pd.read_parquet(out / "samples.parquet"),
                                      pd.read_parquet(alone / "samples.parquet"))
    with pytest.raises(SystemExit) as err:  # one --out per benchmark
        evaluate.main(["--config", str(cfg_path), "--benchmark", "math500", "math_test", "--out", str(tmp_path / "x")])
    assert err.value.code == 2 and "give one --out per benchmark" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:  # several checkpoints and several benchmarks: which goes where?
        evaluate.main(["--config", str(cfg_path), "--checkpoint", str(tiny_checkpoint), str(tiny_checkpoint),
                       "--benchmark", "math500", "math_test", "--out", str(tmp_path / "x"), str(tmp_path / "y")])
    assert err.value.code == 2 and "not both" in capsys.readouterr().err


def test_argument_errors(tmp_path, tiny_checkpoint, capsys):
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint)
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--config", str(cfg_path), "--out", str(tmp_path / "o"), "--benchmark", "gsm8k"])
    assert err.value.code == 2 and "'gsm8k' is not configured" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate.main(["--config", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")])
    bad = write_config(tmp_path / "bad.yaml", tiny_checkpoint,
                       benchmarks=[{"name": "math500", "path": str(tmp_path / "nowhere")}])
    with pytest.raises(SystemExit):
        evaluate.main(["--config", str(bad), "--out", str(tmp_path / "o")])
    assert "no such file or directory" in capsys.readouterr().err


def test_unloadable_checkpoint_is_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint)
    with pytest.raises(SystemExit) as err:  # a hub id, offline (conftest sets HF_HUB_OFFLINE)
        evaluate.main(["--config", str(cfg_path), "--out", str(tmp_path / "o"), "--checkpoint", "nobody/no-model"])
    assert err.value.code == 2 and "cannot load checkpoint 'nobody/no-model'" in capsys.readouterr().err


def test_vllm_engine_without_vllm_is_a_clear_error(tmp_path, tiny_checkpoint, capsys):
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed")
    except ImportError:
        pass
    cfg_path = write_config(tmp_path / "run.yaml", tiny_checkpoint, engine="vllm")
    with pytest.raises(SystemExit) as err:
        evaluate.main(["--config", str(cfg_path), "--out", str(tmp_path / "o")])
    assert err.value.code == 2 and "vLLM is not installed" in capsys.readouterr().err


class FakeVLLM:
    """A stand-in for the vllm module (it cannot be installed without a GPU): records every request's
    SamplingParams; each answer names the seed it was sampled with."""

    requests: list = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.__dict__.update(kwargs)

    class LLM:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def generate(self, prompts, params, use_tqdm=False):
            from types import SimpleNamespace

            assert isinstance(params, list) and len(params) == len(prompts)  # one SamplingParams per problem
            FakeVLLM.requests.extend(params)
            return [SimpleNamespace(outputs=[SimpleNamespace(text=f"\\boxed{{{p.seed + j}}}", token_ids=[1, 2],
                                                             finish_reason="stop") for j in range(p.n)])
                    for p in params]


def test_vllm_seeds_are_per_problem_shared_across_checkpoints_not_problems(tmp_path, tiny_checkpoint, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", FakeVLLM)
    seeds = {}
    for run_seed, name in ((5, "a"), (5, "b"), (6, "c")):  # a, b: two checkpoints (arms) of run seed 5
        FakeVLLM.requests.clear()
        cfg_path = write_config(tmp_path / f"{name}.yaml", tiny_checkpoint, engine="vllm", batch_size=4)
        raw = yaml.safe_load(cfg_path.read_text())
        raw["seed"] = run_seed
        cfg_path.write_text(yaml.safe_dump(raw))
        cfg = load_run_config(cfg_path)
        evaluate.evaluate_benchmark(cfg, cfg.evaluation.benchmarks[0], lambda cfg=cfg: evaluate.VLLMSampler(
            str(tiny_checkpoint), cfg), str(tiny_checkpoint), tmp_path / name)
        ids = pd.read_parquet(tmp_path / name / "samples.parquet").drop_duplicates("problem_id")["problem_id"]
        seeds[name] = [r.seed for r in FakeVLLM.requests]
        assert seeds[name] == [evaluate.problem_seed(run_seed, "math500", pid) for pid in ids]
        assert all(r.n == 2 for r in FakeVLLM.requests)
    assert len(seeds["a"]) == 6 and len(set(seeds["a"])) == 6  # 6 problems in 2 chunks: 6 distinct seeds
    assert seeds["a"] == seeds["b"]  # the same problem, run seed and benchmark: the same noise in every arm
    assert not set(seeds["a"]) & set(seeds["c"])  # another run seed: other noise
    assert evaluate.problem_seed(5, "math500", "x") != evaluate.problem_seed(5, "math_test", "x")
    assert all(0 <= s < 2**31 - 2**16 for s in seeds["a"] + seeds["c"])
    meta = json.loads((tmp_path / "a" / "parts" / "meta.json").read_text())
    assert meta["seeds"] == "per problem"
