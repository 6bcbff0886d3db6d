"""lens.algorithms: the one table of algorithms, declared on the advantage functions, and everything
that derives from it.

    python -m pytest tests/test_algorithms.py -q

Fails when an algorithm is declared only in part (a parameter the config does not know, a default that
differs from the config's, a declaration the torch-free reading cannot read), and adds a throwaway
algorithm with one decorated function to see it trained by lens.train and tabulated.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import textwrap

import pytest
from helpers import REPO, subprocess_env, write_known_runs

from lens import algorithms, config


def test_table_is_consistent():
    assert algorithms.check(config.PARAMS) == []


def test_dynamic_sampling_must_leave_its_fillers_out_of_the_mean(monkeypatch):
    broken = dataclasses.replace(algorithms.ALGORITHMS["grpo_dynamic"], drop_filtered=False)
    monkeypatch.setitem(algorithms.ALGORITHMS, "grpo_dynamic", broken)
    assert algorithms.check(config.PARAMS) == ["grpo_dynamic: dynamic sampling leaves its filler groups out of the "
                                               "loss mean: set drop_filtered"]


def test_a_parameter_the_config_does_not_know_is_named(monkeypatch):
    broken = dataclasses.replace(algorithms.ALGORITHMS["w_reinforce"], params=("lambda",))
    monkeypatch.setitem(algorithms.ALGORITHMS, "w_reinforce", broken)
    (problem,) = algorithms.check(config.PARAMS)
    assert problem.startswith("w_reinforce: unknown parameter(s) ['lambda']; lens.config.AlgorithmConfig has [")


@pytest.mark.parametrize("algo", list(algorithms.ALGORITHMS))
def test_every_entry_is_read_from_its_function_and_takes_the_configs_defaults(algo):
    from lens import objective

    spec = algorithms.ALGORITHMS[algo]
    fn = objective.ADVANTAGE_FNS[algo]
    assert fn is algorithms.FUNCTIONS[algo] is getattr(objective, spec.advantage)
    signature = inspect.signature(fn)
    positional = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    keywords = {p.name: p.default for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}
    assert positional == ["rewards", "confidence"], algo
    # A seeded algorithm's function also takes the per-rollout `seed` (not a config parameter).
    assert tuple(k for k in keywords if k != "seed") == spec.params and spec.seeded is ("seed" in keywords)
    for name in spec.params:
        assert keywords[name] == config.PARAMS[name].default, f"{algo}: default of {name} differs from the config's"


def test_the_source_reading_and_the_decorators_agree():
    from lens import objective

    assert list(objective.ADVANTAGE_FNS) == list(algorithms._declared(algorithms.SOURCE)) == list(algorithms.ALGORITHMS)
    # A second registration of a shipped id that says something else is refused, and changes nothing.
    with pytest.raises(RuntimeError, match="algorithm 'grpo': registered as .*label='Other'.* but objective.py"):
        algorithms.register("grpo", label="Other", color="#0072B2", marker="o")(objective.grpo_advantages)
    assert algorithms.get("grpo").label == "GRPO"


def test_a_declaration_the_source_reading_cannot_read_is_named(tmp_path):
    source = tmp_path / "rules.py"
    source.write_text('LABEL = "Mine"\n\n\n@register("mine", label=LABEL, color="#123456", marker="1")\n'
                      'def mine(rewards, confidence, *, eps=1e-6):\n    return rewards\n')
    with pytest.raises(ValueError, match=r"rules\.py:4: register\(\) takes one algorithm id and keyword literals"):
        algorithms._declared(source)
    source.write_text('@register("a", label="A", color="#000001", marker="1")\ndef a(rewards, confidence):\n    pass\n'
                      '\n\n@register("a", label="B", color="#000002", marker="2")\ndef b(rewards, confidence):\n'
                      '    pass\n')
    with pytest.raises(ValueError, match=r"rules\.py:6: algorithm 'a' is registered twice"):
        algorithms._declared(source)
    source.write_text('@register("t", lable="T", color="#000004", marker="4")\ndef t(rewards, confidence):\n    pass\n')
    with pytest.raises(ValueError, match=r"rules\.py:1: register\('t', \.\.\.\): .*keyword argument 'lable'"):
        algorithms._declared(source)
    source.write_text('@algorithms.register("s", label="S", color="#000003", marker="3", drop_filtered=True)\n'
                      'def s(rewards, confidence, *, std="sample", seed=0):\n    pass\n')
    assert algorithms._declared(source) == {"s": algorithms.Algorithm(
        "s", ("std",), "S", "#000003", "3", drop_filtered=True, seeded=True)}


def test_everything_derives_from_the_table():
    from analysis import style, tab_ablation
    from lens import trainer

    ids = tuple(algorithms.ALGORITHMS)
    assert tuple(config.ALGORITHMS) == ids and style.ALGO_ORDER == ids
    assert [f.name for f in dataclasses.fields(config.AlgorithmConfig)] == ["name", *config.PARAMS]
    assert config.AlgorithmConfig() == config.AlgorithmConfig(**{k: p.default for k, p in config.PARAMS.items()})
    for algo, spec in algorithms.ALGORITHMS.items():
        reads = {*spec.params, *(spec.clip or ()), *filter(None, [spec.gen_batches])}
        assert set(algorithms.read_params(algo)) == reads
        assert trainer.needs_confidence(algo) is spec.reads_confidence is (algo in config.LENS_FAMILY)
        assert trainer.trl_loss_type(algo) == spec.loss_type
        assert (style.algo_label(algo), style.algo_color(algo), style.algo_marker(algo)) == \
            (spec.label, spec.color, spec.marker)
    assert tab_ablation.ABLATION_ALGOS == ["grpo", "lens_mixed_only", "lens_negative_only", "lens"]


def test_config_errors_name_key_and_file():
    from lens.config import ConfigError, RunConfig, parse

    raw = {"model": {"name": "m", "tiny": {}}, "algorithm": {"name": "ngrpo", "clip_low": 1.5}}
    with pytest.raises(ConfigError, match=r"run\.yaml: algorithm\.clip_low: must be in \[0, 1\)"):
        parse(RunConfig, raw, source="run.yaml")
    raw["algorithm"] = {"name": "lens", "floor_factor": 1.0}
    with pytest.raises(ConfigError, match=r"run\.yaml: algorithm\.floor_factor: must be > 1"):
        parse(RunConfig, raw, source="run.yaml")
    raw["algorithm"] = {"name": "grpo_dynamic", "max_gen_batches": 0}
    with pytest.raises(ConfigError, match=r"run\.yaml: algorithm\.max_gen_batches: must be >= 1"):
        parse(RunConfig, raw, source="run.yaml")
    raw["algorithm"] = {"name": "lens", "wrong_scale": -0.5}
    with pytest.raises(ConfigError, match=r"run\.yaml: algorithm\.wrong_scale: must be >= 0"):
        parse(RunConfig, raw, source="run.yaml")
    raw["algorithm"] = {"name": "lens", "negative_norm": "zscore"}
    with pytest.raises(ConfigError, match=r"run\.yaml: algorithm\.negative_norm: 'zscore' is not one of"):
        parse(RunConfig, raw, source="run.yaml")
    raw["algorithm"] = {"name": "ngrpo", "lambda": 0.1}
    with pytest.raises(ConfigError, match=r"run\.yaml: unknown key\(s\) \['algorithm\.lambda'\]"):
        parse(RunConfig, raw, source="run.yaml")


# A throwaway algorithm added by one decorated function, then trained with lens.train on a tiny model and
# tabulated by the leaderboard and the ablation table. It runs in a fresh interpreter, so every module that
# derives from the table sees the new entry.
THROWAWAY = textwrap.dedent('''
    import sys
    from pathlib import Path

    from lens import algorithms, objective


    @algorithms.register("halved_grpo", label="Halved GRPO", color="#123456", marker="1")
    def halved_grpo_advantages(rewards, confidence, *, eps=1e-6, std="sample"):
        return 0.5 * objective.grpo_advantages(rewards, confidence, eps=eps, std=std)

    import pandas as pd

    from analysis import collect, tab_ablation, tab_leaderboard
    from lens import train
    from lens.config import RunConfig, parse, write_run_config

    work, runs_src = Path(sys.argv[1]), Path(sys.argv[2])
    run_dir = runs_src / "llama31_8b_instruct" / "halved_grpo" / "seed0"
    data = work / "data"
    data.mkdir()
    data.joinpath("train.jsonl").write_text("".join(
        '{"id": "s%d", "problem": "What is %d + %d?", "answer": "%d", "level": %d, "subject": "add", "source": "t"}\\n'
        % (i, i, i, 2 * i, 1 + i % 5) for i in range(8)))
    cfg = parse(RunConfig, {
        "model": {"name": "tiny", "prompt": "bare",
                  "tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
        "algorithm": {"name": "halved_grpo"},
        "data": {"train": [{"name": "synthetic", "path": str(data), "split": "train"}]},
        "training": {"prompts_per_rollout": 2, "num_generations": 4, "updates_per_rollout": 1,
                     "prompts_per_update": 2, "rollout_steps": 2, "save_every": 2, "max_new_tokens": 6,
                     "max_prompt_tokens": 64, "learning_rate": 1e-3, "torch_threads": 1},
        "tracking": {"uri": f"sqlite:///{work / 'mlflow.db'}"},
    }, source="throwaway.yaml")
    write_run_config(cfg, run_dir / "config.yaml")
    assert train.main(["--config", str(run_dir / "config.yaml"), "--out", str(run_dir)]) == 0
    metrics = pd.read_parquet(run_dir / "train_metrics.parquet")
    assert set(metrics["step"]) == {1, 2}, metrics
    # Its evaluation: LENS seed 0's samples stand in (an evaluation job is another test's subject).
    src = runs_src / "llama31_8b_instruct" / "lens" / "seed0" / "eval"
    for path in src.rglob("samples.parquet"):
        dest = run_dir / "eval" / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(path.read_bytes())
    collect.collect(runs_src, work / "tidy")
    boot = ["--tidy", str(work / "tidy"), "--bootstrap-samples", "50"]
    assert tab_leaderboard.main([*boot, "--out", str(work / "tables")]) == 0
    assert tab_ablation.main([*boot, "--out", str(work / "tables")]) == 0
''')


@pytest.mark.slow
def test_throwaway_algorithm_of_one_decorated_function_is_trained_and_tabulated(tmp_path):
    import pandas as pd

    runs = write_known_runs(tmp_path / "runs")
    script = tmp_path / "throwaway.py"
    script.write_text(THROWAWAY)
    env = subprocess_env(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, str(script), str(tmp_path), str(runs)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    board = pd.read_csv(tmp_path / "tables" / "tab_leaderboard.csv")
    assert set(board["algo"]) == {"grpo", "lens", "halved_grpo"}
    row = board.set_index("algo").loc["halved_grpo"]
    assert 0 <= row["all_wrong_frac"] <= 1  # from its own training run's metrics
    assert "Halved GRPO" in (tmp_path / "tables" / "tab_leaderboard.md").read_text()
    assert "Halved GRPO" in (tmp_path / "tables" / "tab_ablation.md").read_text()
