"""The lm-eval cross-check (lens.lm_eval_check) runs offline on a tiny model and the local MATH-500 file."""

import json
from pathlib import Path

import pytest
import yaml
from helpers import DATA

from lens import lm_eval_check
from lens.config import TinyModelConfig

MATH500 = DATA / "math" / "math500.jsonl"


def test_task_yaml_mirrors_lm_evals_minerva_task():
    import lm_eval

    ours = yaml.safe_load(lm_eval_check.TASK_YAML.read_text().replace("!function ", ""))
    theirs_dir = Path(lm_eval.__file__).parent / "tasks" / "minerva_math"
    theirs = yaml.safe_load((theirs_dir / "minerva_math_algebra.yaml").read_text().replace("!function ", ""))
    for key in ("doc_to_text", "process_results", "process_docs", "doc_to_target", "generation_kwargs",
                "metric_list", "num_fewshot", "fewshot_config", "output_type"):
        assert ours[key] == theirs[key], key
    assert ours["dataset_path"] == "json" and ours["test_split"] == "test"


def test_override_yaml_points_at_the_given_file(tmp_path):
    data = tmp_path / "m.jsonl"
    data.write_text("{}\n")
    written = lm_eval_check.write_task_yaml(tmp_path, data)
    cfg = yaml.safe_load(written.read_text())
    assert cfg == {"include": str(lm_eval_check.TASK_YAML), "task": "lens_minerva_math500",
                   "dataset_kwargs": {"data_files": {"test": str(data.resolve())}}}
    with pytest.raises(FileNotFoundError, match="not found"):
        lm_eval_check.write_task_yaml(tmp_path, tmp_path / "missing.jsonl")


@pytest.mark.slow
@pytest.mark.skipif(not MATH500.exists(), reason=f"shared data not found at {MATH500}")
def test_runs_offline_on_a_tiny_model(tmp_path, capsys):
    from lens.tiny import save_tiny

    ckpt = save_tiny(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                     ["Problem:\nSolution:"], tmp_path / "tiny", seed=0)
    out = tmp_path / "lm_eval"
    assert lm_eval_check.main(["--checkpoint", str(ckpt), "--data", str(MATH500), "--limit", "2",
                               "--max-gen-toks", "4", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["exact_match,none"] == 0.0 and printed["math_verify,none"] == 0.0  # a random model
    results = json.loads((out / "results.json").read_text())
    logged = results["samples"]["lens_minerva_math500"]
    first = json.loads(MATH500.open().readline())
    assert len(logged) == 2 and logged[0]["doc"]["problem"] == first["problem"]  # the local file was read
    # lm-eval's 4-shot Minerva prompt ends with the problem and "Solution:"
    prompt, gen_kwargs = logged[0]["arguments"][0]
    assert gen_kwargs["max_gen_toks"] == 4 and gen_kwargs["do_sample"] is False
    assert prompt.endswith("Problem:\n" + first["problem"] + "\n\nSolution:")
