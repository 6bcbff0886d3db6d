"""lens.config: the one parser. Unknown keys, wrong types and bad values fail naming key and file."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from helpers import PAPER, REPO

from lens.config import (
    ALGORITHMS,
    LENS_FAMILY,
    PARAMS,
    ConfigError,
    RunConfig,
    TrainingConfig,
    WorkflowConfig,
    flatten,
    load_run_config,
    load_workflow_config,
    nearest,
    parse,
    write_run_config,
)

EMBEDDED = REPO / "config" / "config.yaml"


def minimal_run(**overrides) -> dict:
    raw = {"model": {"name": "m", "path": "some/model"}, "algorithm": {"name": "lens"}}
    raw.update(overrides)
    return raw


def test_minimal_run_config_takes_defaults():
    cfg = parse(RunConfig, minimal_run(), source="x.yaml")
    assert cfg.algorithm.alpha == 0.25
    assert cfg.training.num_generations == 16
    assert cfg.evaluation.pass_k == (1, 2, 4, 8, 16)
    assert cfg.seed == 0


def test_unknown_key_names_key_file_and_the_nearest_valid_key():
    with pytest.raises(ConfigError) as err:
        parse(RunConfig, minimal_run(training={"learning_rat": 1e-6}), source="runs/a.yaml")
    assert str(err.value) == ("runs/a.yaml: unknown key(s) ['training.learning_rat']; "
                              "did you mean 'training.learning_rate'?")
    # Nothing near: every valid key of the section is listed instead.
    with pytest.raises(ConfigError) as err:
        parse(RunConfig, minimal_run(zzz=1))
    assert "unknown key(s) ['zzz']; valid keys: ['algorithm', " in str(err.value)
    assert "did you mean" not in str(err.value)
    # Two typos, one near a key: the guess says which typo it answers, and the keys are listed for the other.
    with pytest.raises(ConfigError) as err:
        parse(RunConfig, minimal_run(algorithm={"name": "lens", "alhpa": 1.0, "qqq": 2}))
    msg = str(err.value)
    assert "did you mean 'algorithm.alpha' for 'algorithm.alhpa'?" in msg and "valid keys of algorithm: [" in msg


def test_nearest():
    assert nearest("lense", ["grpo", "lens", "nsr"]) == "lens"
    assert nearest("prompts_per_rolout", ["prompts_per_rollout", "prompts_per_update"]) == "prompts_per_rollout"
    assert nearest("xyz", ["grpo", "lens"]) is None


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"b\.yaml: training\.num_generations: expected an integer"):
        parse(RunConfig, minimal_run(training={"num_generations": "16"}), source="b.yaml")
    with pytest.raises(ConfigError, match=r"training\.gradient_checkpointing: expected true/false"):
        parse(RunConfig, minimal_run(training={"gradient_checkpointing": "yes"}), source="b.yaml")


def test_bool_is_not_an_int_and_numeric_strings_are_floats():
    with pytest.raises(ConfigError, match="expected an integer"):
        parse(RunConfig, minimal_run(seed=True))
    # YAML reads `3e-7` (no dot) as a string; it must still be a float.
    cfg = parse(RunConfig, yaml.safe_load("model: {name: m, path: p}\nalgorithm: {name: grpo}\n"
                                          "training: {learning_rate: 3e-7}"))
    assert cfg.training.learning_rate == pytest.approx(3e-7)


def test_unknown_algorithm_and_literal_values():
    with pytest.raises(ConfigError, match=r"unknown algorithm 'lense' \(did you mean 'lens'\?\)"):
        parse(RunConfig, minimal_run(algorithm={"name": "lense"}))
    with pytest.raises(ConfigError, match=r"algorithm\.std: 'pop' is not one of"):
        parse(RunConfig, minimal_run(algorithm={"name": "lens", "std": "pop"}))


def test_batch_arithmetic_must_divide():
    with pytest.raises(ConfigError, match="must equal prompts_per_rollout"):
        parse(RunConfig, minimal_run(training={"prompts_per_rollout": 128, "prompts_per_update": 30}))
    with pytest.raises(ConfigError, match="num_generations"):
        parse(TrainingConfig, {"num_generations": 1})


def test_missing_model_source_is_an_error():
    with pytest.raises(ConfigError, match="set `path`"):
        parse(RunConfig, {"model": {"name": "m"}, "algorithm": {"name": "grpo"}})
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        parse(RunConfig, {"algorithm": {"name": "grpo"}})


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_run_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(bad)


def test_paper_config_parses_and_resolves_every_run():
    wf = load_workflow_config(PAPER)
    assert set(wf.models) == {"llama31_8b_instruct", "qwen25_3b"}
    for model in wf.models:
        for algo in (*wf.algorithms, *wf.ablation_algorithms):
            run = wf.resolve(model, algo, 0)
            assert run.algorithm.name == algo and run.model.name == model


def test_resolve_applies_model_overrides_without_touching_shared_sections():
    wf = load_workflow_config(PAPER)
    llama = wf.resolve("llama31_8b_instruct", "lens", 0)
    qwen = wf.resolve("qwen25_3b", "lens", 0)
    assert llama.training.learning_rate == pytest.approx(3e-7)
    assert qwen.training.learning_rate == pytest.approx(1e-6)
    assert llama.training.max_new_tokens == qwen.training.max_new_tokens == 4096


def test_resolve_resets_parameters_an_algorithm_does_not_use():
    raw = yaml.safe_load(PAPER.read_text())
    raw["algorithm"]["alpha"] = 0.5
    wf = parse(WorkflowConfig, raw, source="paper-alpha.yaml")
    base = load_workflow_config(PAPER)
    for algo in ALGORITHMS:
        changed = wf.resolve("qwen25_3b", algo, 1) != base.resolve("qwen25_3b", algo, 1)
        # Only algorithms that read alpha see a different resolved config, so only they rerun.
        assert changed == (algo in ("lens", "lens_negative_only", "uniform_negative")), algo
    assert set(LENS_FAMILY) >= {"lens", "lens_negative_only"}


def test_resolve_rejects_unknown_model_and_algorithm():
    wf = load_workflow_config(PAPER)
    with pytest.raises(ConfigError, match="unknown model 'gpt'"):
        wf.resolve("gpt", "lens", 0)
    with pytest.raises(ConfigError, match="unknown algorithm 'ppo'"):
        wf.resolve("qwen25_3b", "ppo", 0)


def test_workflow_override_typo_fails_naming_model(tmp_path):
    raw = yaml.safe_load(PAPER.read_text())
    raw["models"]["qwen25_3b"]["training"]["learnig_rate"] = 1e-6
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_workflow_config(path)
    assert "typo.yaml" in str(err.value) and "learnig_rate" in str(err.value)


def test_workflow_rejects_unknown_algorithm_in_lists():
    raw = yaml.safe_load(PAPER.read_text())
    raw["algorithms"] = ["grpo", "lenz"]
    with pytest.raises(ConfigError, match=r"algorithms: unknown algorithm\(s\) \['lenz'\]"):
        parse(WorkflowConfig, raw, source="w.yaml")


def test_ablation_arms_are_algorithms_with_one_parameter_set():
    raw = yaml.safe_load(PAPER.read_text())
    cfg = parse(WorkflowConfig, {**raw, "ablation_algorithms": ["nsr", "grpo_shuffled/shuffle_frac-0.25"]},
                source="w.yaml")
    assert cfg.ablation_arms() == [("grpo_shuffled/shuffle_frac-0.25", "grpo_shuffled", {"shuffle_frac": 0.25})]
    run = cfg.resolve("qwen25_3b", "grpo_shuffled", 0, params={"shuffle_frac": 0.25})
    assert run.algorithm.shuffle_frac == 0.25 and cfg.resolve("qwen25_3b", "nsr", 0).algorithm.shuffle_frac == 1.0
    for arm, why in (("grpo_shuffled/alpha-0.5", r"grpo_shuffled does not read 'alpha'"),
                     ("grpo_shuffled/shuffle_frac-0.250", r"write the value as 'grpo_shuffled/shuffle_frac-0\.25'"),
                     ("grpo_shuffled/shuffle_frac-2", r"algorithm\.shuffle_frac: must be in \[0, 1\]"),
                     ("grpo_shuffle/shuffle_frac-0.5", r"unknown algorithm\(s\) \['grpo_shuffle/shuffle_frac-0\.5'\]")):
        with pytest.raises(ConfigError, match=why):
            parse(WorkflowConfig, {**raw, "ablation_algorithms": [arm]}, source="w.yaml")


def test_ablation_models_and_seeds_default_to_all_and_must_be_configured():
    raw = yaml.safe_load(PAPER.read_text())
    assert parse(WorkflowConfig, raw, source="w.yaml").ablation_runs() == (
        ("llama31_8b_instruct", "qwen25_3b"), (0, 1))
    cfg = parse(WorkflowConfig, {**raw, "ablation_models": ["qwen25_3b"], "ablation_seeds": [1]}, source="w.yaml")
    assert cfg.ablation_runs() == (("qwen25_3b",), (1,))
    with pytest.raises(ConfigError, match=r"w\.yaml: ablation_models: unknown model\(s\) \['qwen3'\]; configured: "
                                          r"\['llama31_8b_instruct', 'qwen25_3b'\]"):
        parse(WorkflowConfig, {**raw, "ablation_models": ["qwen3"]}, source="w.yaml")
    with pytest.raises(ConfigError, match=r"w\.yaml: ablation_seeds: \[2\] not in seeds \[0, 1\]"):
        parse(WorkflowConfig, {**raw, "ablation_seeds": [0, 2]}, source="w.yaml")


def test_processes_of_a_training_job_default_and_errors():
    raw = yaml.safe_load(PAPER.read_text())
    wf = parse(WorkflowConfig, raw, source="w.yaml")
    assert wf.models["llama31_8b_instruct"].training_processes() == 8  # one per GPU
    raw["models"]["llama31_8b_instruct"]["processes"] = 4
    with pytest.raises(ConfigError, match=r"w\.yaml: models\.llama31_8b_instruct\.processes: is 4 but a GPU job "
                       r"runs one process per GPU \(gpus: 8\)"):
        parse(WorkflowConfig, raw, source="w.yaml")
    raw["models"]["llama31_8b_instruct"].update(gpus=0, processes=0)
    with pytest.raises(ConfigError, match=r"models\.llama31_8b_instruct\.processes: must be >= 1"):
        parse(WorkflowConfig, raw, source="w.yaml")
    raw["models"]["llama31_8b_instruct"]["processes"] = 2  # CPU processes (torchrun)
    assert parse(WorkflowConfig, raw, source="w.yaml").models["llama31_8b_instruct"].training_processes() == 2
    del raw["models"]["llama31_8b_instruct"]["processes"]
    assert parse(WorkflowConfig, raw, source="w.yaml").models["llama31_8b_instruct"].training_processes() == 1


def test_run_config_round_trips_and_write_is_idempotent(tmp_path):
    run = load_workflow_config(PAPER).resolve("llama31_8b_instruct", "lens", 1)
    path = tmp_path / "runs" / "config.yaml"
    assert write_run_config(run, path) is True
    assert load_run_config(path) == run
    mtime = path.stat().st_mtime_ns
    assert write_run_config(run, path) is False  # unchanged: file untouched, Snakemake sees no change
    assert path.stat().st_mtime_ns == mtime


def test_flatten_gives_dotted_params():
    run = load_workflow_config(PAPER).resolve("qwen25_3b", "grpo", 0)
    flat = flatten(run)
    assert flat["training.learning_rate"] == pytest.approx(1e-6)
    assert flat["algorithm.name"] == "grpo"
    assert flat["model.path"] == "Qwen/Qwen2.5-3B"
    assert all(not isinstance(v, dict) for v in flat.values())


# Sweeps (target `sweeps`) --------------------------------------------------------------------
def _with_sweeps(tmp_path, sweeps) -> Path:
    raw = yaml.safe_load(PAPER.read_text())
    raw["sweeps"] = sweeps
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("sweep, key, why", [
    ({"algorithm": "lenz", "parameter": "alpha", "values": [1.0]}, "sweeps[0].algorithm", "unknown algorithm 'lenz'"),
    ({"algorithm": "grpo", "parameter": "alpha", "values": [1.0]}, "sweeps[0].parameter", "grpo does not read 'alpha'"),
    ({"algorithm": "lens", "parameter": "alpah", "values": [1.0]}, "sweeps[0].parameter", "lens does not read 'alpah'"),
    ({"algorithm": "lens", "parameter": "alpha", "values": ["high"]}, "sweeps[0].values[0]", "expected a number"),
    ({"algorithm": "lens", "parameter": "alpha", "values": [1, True]}, "sweeps[0].values[1]", "expected a number"),
    ({"algorithm": "lens", "parameter": "std", "values": ["sample", "median"]}, "sweeps[0].values[1]", "not one of"),
    ({"algorithm": "lens", "parameter": "alpha", "values": []}, "sweeps[0].values", "at least one value"),
    ({"algorithm": "lens", "parameter": "alpha", "values": 4}, "sweeps[0].values", "expected a list"),
    ({"algorithm": "lens", "parameter": "alpha", "values": [4, 4.0]}, "sweeps[0].values[1]", "repeats"),
    ({"algorithm": "lens", "parameter": "alpha"}, "sweeps[0].values", "missing required key"),
], ids=["unknown-algorithm", "parameter-not-read", "unknown-parameter", "string-for-float", "bool-for-float",
        "bad-literal", "empty-list", "not-a-list", "duplicate-value", "no-values"])
def test_sweep_errors_name_key_and_file(tmp_path, sweep, key, why):
    with pytest.raises(ConfigError) as err:
        load_workflow_config(_with_sweeps(tmp_path, [sweep]))
    assert "sweep.yaml" in str(err.value) and key in str(err.value) and why in str(err.value), str(err.value)


def test_sweep_needs_the_main_grpo_runs(tmp_path):
    raw = yaml.safe_load(_with_sweeps(tmp_path, [{"algorithm": "lens", "parameter": "alpha", "values": [1.0]}])
                         .read_text())
    raw["algorithms"] = ["lens"]
    with pytest.raises(ConfigError, match="sweeps: .*must list grpo"):
        parse(WorkflowConfig, raw, source="w.yaml")


def test_sweep_variants_resolve_to_the_swept_value(tmp_path):
    from lens.config import parse_sweep_arm, sweep_arm

    wf = load_workflow_config(_with_sweeps(tmp_path, [
        {"algorithm": "lens", "parameter": "alpha", "values": [0.25, 1, 4, 16]},
        {"algorithm": "lens", "parameter": "negative_norm", "values": ["standardize"]}]))
    variants = wf.sweep_variants()
    assert [arm for arm, _, _ in variants] == ["lens/alpha-0.25", "lens/alpha-1", "lens/alpha-4", "lens/alpha-16",
                                               "lens/negative_norm-standardize"]
    arm, algo, params = variants[2]
    run = wf.resolve("qwen25_3b", algo, 1, params=params)
    assert run.algorithm.name == "lens" and run.algorithm.alpha == 4.0 and isinstance(run.algorithm.alpha, float)
    # everything else is the main LENS run's config
    assert run == _with_alpha(wf.resolve("qwen25_3b", "lens", 1), 4.0)
    assert parse_sweep_arm(arm) == ("lens", "alpha", "4") and parse_sweep_arm("lens") is None
    assert parse_sweep_arm("qwen25_3b/lens") is None and parse_sweep_arm("lens/alpha-a/b") is None
    assert (sweep_arm("lens", "alpha", 1e-6) == "lens/alpha-1e-06"
            and sweep_arm("lens", "alpha", -0.5) == "lens/alpha--0.5")


def _with_alpha(run: RunConfig, alpha: float) -> RunConfig:
    import dataclasses

    return dataclasses.replace(run, algorithm=dataclasses.replace(run.algorithm, alpha=alpha))


@pytest.mark.slow  # every algorithm x parameter: 130 workflow configs parsed and resolved
def test_every_parameter_an_algorithm_reads_can_be_swept(tmp_path):
    """Generic over lens.algorithms: any parameter an algorithm reads is sweepable at its default,
    and its sweep run config holds the value; one it does not read is refused."""
    from lens import algorithms

    raw = yaml.safe_load(PAPER.read_text())
    for algo in algorithms.ALGORITHMS:
        for param in PARAMS:
            default = PARAMS[param].default
            sweep = {"algorithm": algo, "parameter": param, "values": [default]}
            reads = param in algorithms.read_params(algo)
            if not reads:
                with pytest.raises(ConfigError, match=rf"sweeps\[0\].parameter: {algo} does not read '{param}'"):
                    parse(WorkflowConfig, {**raw, "sweeps": [sweep]}, source="w.yaml")
                continue
            wf = parse(WorkflowConfig, {**raw, "sweeps": [sweep]}, source="w.yaml")
            ((arm, swept_algo, params),) = wf.sweep_variants()
            assert arm.startswith(f"{algo}/{param}-") and swept_algo == algo
            assert getattr(wf.resolve("qwen25_3b", algo, 0, params=params).algorithm, param) == default


def test_a_models_kind_is_one_field_checked_against_its_model():
    raw = yaml.safe_load(PAPER.read_text())
    wf = parse(WorkflowConfig, raw, source="w.yaml")
    assert {m.kind for m in wf.models.values()} == {"hub"}  # the default: a hub id or local directory
    assert wf.models["qwen25_3b"].training_gpus() == 8
    standin = copy.deepcopy(raw)
    standin["models"]["qwen25_3b"].update(kind="standin", gpus=None)
    with pytest.raises(ConfigError, match=r"w\.yaml: models\.qwen25_3b\.model: kind standin builds the model from "
                       r"`tiny`"):
        parse(WorkflowConfig, standin, source="w.yaml")
    standin["models"]["qwen25_3b"]["model"].update(path=None, tiny={"arch": "qwen2"})
    entry = parse(WorkflowConfig, standin, source="w.yaml").models["qwen25_3b"]
    assert entry.kind == "standin" and entry.training_gpus() == 0  # built here: trains on the CPU by default
    hub_with_tiny = copy.deepcopy(raw)
    hub_with_tiny["models"]["qwen25_3b"]["model"]["tiny"] = {"arch": "qwen2"}
    with pytest.raises(ConfigError, match=r"models\.qwen25_3b\.model: a hub model \(kind: hub, the default\) needs "
                       r"`path`"):
        parse(WorkflowConfig, hub_with_tiny, source="w.yaml")
    tiny = copy.deepcopy(standin)
    tiny["models"]["qwen25_3b"]["kind"] = "tiny"  # warmed up: paper.yaml has no warmup/synthetic sections
    with pytest.raises(ConfigError, match=r"models\.qwen25_3b\.kind: tiny models are warmed up"):
        parse(WorkflowConfig, tiny, source="w.yaml")
    standin["models"]["qwen25_3b"]["kind"] = "pretrained"
    with pytest.raises(ConfigError, match=r"models\.qwen25_3b\.kind: 'pretrained' is not one of"):
        parse(WorkflowConfig, standin, source="w.yaml")


def test_workflow_checks_the_accelerate_config_and_the_synthetic_location(tmp_path, monkeypatch):
    raw = yaml.safe_load(PAPER.read_text())
    raw["models"]["qwen25_3b"]["accelerate_config"] = "config/accelerate/nothere.yaml"
    with pytest.raises(ConfigError, match=r"models\.qwen25_3b\.accelerate_config: 'config/accelerate/nothere\.yaml' "
                       r"is not a file \(needed to launch 8 training processes\)"):
        parse(WorkflowConfig, raw, source="w.yaml")
    embedded = yaml.safe_load(EMBEDDED.read_text())
    embedded["evaluation"]["benchmarks"][0]["path"] = "elsewhere/synthetic"
    with pytest.raises(ConfigError, match=r"evaluation\.benchmarks\[0\]\.path: the synthetic benchmark is generated "
                       r"in 'results/data/synthetic'"):
        parse(WorkflowConfig, embedded, source="w.yaml")


def test_the_evaluation_schedule_of_a_run():
    raw = yaml.safe_load(EMBEDDED.read_text())
    raw["training"].update(rollout_steps=40, save_every=5)
    raw["evaluation"].update(every=15, n_samples=16, intermediate_n_samples=4,
                             final_benchmarks=[{"name": "math", "path": "m", "split": "test"}])
    run = parse(WorkflowConfig, raw, source="w.yaml").resolve("tiny_llama", "grpo", 0)
    assert run.eval_steps() == [15, 30, 40]  # every 15 steps, and the last
    assert [run.n_samples_at(s) for s in (0, 15, 40)] == [16, 4, 16]  # Pass@k at the start and the end
    assert [ds.id for ds in run.benchmarks_at(15)] == ["synthetic_test"]
    assert [ds.id for ds in run.benchmarks_at(40)] == ["synthetic_test", "math_test"]  # the final set last
    raw["evaluation"]["every"] = 12  # step 12 has no checkpoint (every 5 steps)
    with pytest.raises(ConfigError, match=r"w\.yaml: evaluation\.every: 12 evaluates steps without a checkpoint: "
                       r"it must be a multiple of training\.save_every \(5\)"):
        parse(WorkflowConfig, raw, source="w.yaml")


@pytest.mark.parametrize("uri", [None, "sqlite:///mlflow.db", "http://127.0.0.1", "https://tracking:5000"])
def test_a_tracking_server_needs_an_http_uri_with_host_and_port(uri):
    raw = yaml.safe_load(PAPER.read_text())
    raw["tracking"] = {"uri": uri, "server_store": "sqlite:////tmp/store.db"}
    why = r"the workflow starts `mlflow server` at tracking\.uri, which must then be http://HOST:PORT"
    with pytest.raises(ConfigError, match=rf"w\.yaml: tracking\.server_store: {why} \(got {re.escape(repr(uri))}\)"):
        parse(WorkflowConfig, raw, source="w.yaml")
    raw["tracking"]["uri"] = "http://127.0.0.1:5000"
    assert parse(WorkflowConfig, raw, source="w.yaml").tracking.server_store == "sqlite:////tmp/store.db"
