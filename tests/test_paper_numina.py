"""config/paper-numina.yaml over config/paper.yaml: the paper's MATH + NuminaMath-1.5 setup (Tables 2-3).

Pins every key the overlay changes (an allow-list with the paper's reason), the structure it gives
(1 seed, MATH train + NuminaMath-1.5 by hub id, ~1,400 rollout steps, Table 2's two arms) and the
DAG of a dry run (a few seconds; no GPU, no network: hub ids are only named at parse time).
"""

from __future__ import annotations

import yaml
from helpers import PAPER, REPO, allowed_by, leaves, snakemake
from snakemake.utils import update_config

from analysis import paper_numbers, training_data
from lens import algorithms, datasets
from lens.config import load_run_config, workflow_config_from_dict

OVERLAY = REPO / "config" / "paper-numina.yaml"

# Every key the overlay may change, with the reason (lens-spec / the paper's Appendix D.1).
ALLOWED = {
    "results_dir": "its runs apart from paper.yaml's MATH + DAPO runs",
    "seeds": "the paper ran MATH + NuminaMath-1.5 with 1 seed",
    "ablation_algorithms": "Table 2's two arms only",
    "data.train[*].path": "DAPO-Math-17k -> NuminaMath-1.5 (MATH train stays)",
    "data.train[*].name": "DAPO-Math-17k -> NuminaMath-1.5",
    "training.rollout_steps": "~1,400 rollout steps for MATH + NuminaMath-1.5 (~1,600 for MATH + DAPO)",
    "tracking.experiment": "its own MLflow experiment",
}


def merged() -> dict:
    """What Snakemake builds from `--configfile config/paper.yaml config/paper-numina.yaml`."""
    config = {}
    for path in (PAPER, OVERLAY):
        update_config(config, yaml.safe_load(path.read_text()))
    return config


def test_overlay_changes_only_allowed_keys():
    paper, numina = leaves(yaml.safe_load(PAPER.read_text())), leaves(merged())
    changed = {k for k in paper.keys() | numina.keys() if paper.get(k, "<absent>") != numina.get(k, "<absent>")}
    for key in changed:
        assert any(allowed_by(key, a) for a in ALLOWED), f"config/paper-numina.yaml changes {key!r}, not allowed"
    unused = [a for a in ALLOWED if not any(allowed_by(k, a) for k in changed)]
    assert not unused, f"allow-list entries the overlay no longer uses: {unused}"


def test_overlay_is_tables_2_and_3_setup():
    cfg = workflow_config_from_dict(merged(), source="paper.yaml + paper-numina.yaml")
    paper = workflow_config_from_dict(yaml.safe_load(PAPER.read_text()), source="paper.yaml")
    assert cfg.seeds == (0,)
    assert [(d.name, d.path, d.split) for d in cfg.data.train] == [
        ("math", "EleutherAI/hendrycks_math", "train"), ("numina", "AI-MO/NuminaMath-1.5", "train")]
    assert all(d.path == datasets.get(d.name).hub_id for d in cfg.data.train)
    assert cfg.training.rollout_steps == 1400 and cfg.training.rollout_steps % cfg.evaluation.every == 0
    assert cfg.algorithms == ("grpo", "lens")
    assert set(cfg.algorithms) | set(cfg.ablation_algorithms) == set(algorithms.table_rows("tab_ablation"))
    assert cfg.results_dir != paper.results_dir
    # everything else is Table 1's setup: models, batch arithmetic, evaluation, decontamination
    assert cfg.models == paper.models and cfg.algorithm == paper.algorithm and cfg.evaluation == paper.evaluation
    assert cfg.data.decontaminate
    # the tables set these runs beside the paper's Tables 2 and 3, and not beside Table 1
    trained = training_data.TrainingData(tuple((d.name, d.split) for d in cfg.data.train))
    assert training_data.paper_comparable(trained, "table2")[0] and training_data.paper_comparable(trained, "table3")[0]
    assert not training_data.paper_comparable(trained, "table1")[0]
    assert set(paper_numbers.TRAINING_DATA["table3"]) == set(trained.datasets)


def test_dry_run_trains_one_seed_on_math_and_numina(tmp_path):
    results = tmp_path / "paper-numina"
    out = snakemake(REPO, "ablations", "-n", "--cores", "1", "--configfile", "config/paper.yaml",
                    "config/paper-numina.yaml", "--config", f"results_dir={results}")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    trains = {line.split("wildcards:")[1].strip() for line in out.stdout.splitlines()
              if "wildcards:" in line and "benchmark" not in line and "algo=" in line}
    arms = ("grpo", "lens", "lens_mixed_only", "lens_negative_only")
    assert trains == {f"model={m}, algo={a}, seed=0" for m in ("llama31_8b_instruct", "qwen25_3b") for a in arms}
    assert not results.exists()  # a dry run writes nothing
    configs = [results / "runs" / m / a / "seed0" / "config.yaml" for m in ("llama31_8b_instruct", "qwen25_3b")
               for a in arms]
    written = snakemake(REPO, *map(str, configs), "--cores", "1", "--configfile", "config/paper.yaml",
                        "config/paper-numina.yaml", "--config", f"results_dir={results}")
    assert written.returncode == 0, (written.stdout + written.stderr)[-3000:]  # rule config_file writes them
    for m in ("llama31_8b_instruct", "qwen25_3b"):
        for a in arms:
            run = load_run_config(results / "runs" / m / a / "seed0" / "config.yaml")
            assert [(d.name, d.split) for d in run.data.train] == [("math", "train"), ("numina", "train")]
            assert run.training.rollout_steps == 1400 and run.seed == 0
    assert not list((results / "runs").glob("*/*/seed1"))
