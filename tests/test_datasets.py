"""lens.datasets: the one table of datasets agrees with the code that reads it and the config that names it."""


import pytest
import yaml
from helpers import REPO

from lens import config, data, datasets


def test_table_is_consistent():
    assert datasets.check() == []


def test_every_reader_the_table_names_exists_in_lens_data():
    for name, spec in datasets.DATASETS.items():
        assert data._READERS[name] is getattr(data, spec.reader)
        if spec.hub_reader:
            assert data._HUB_READERS[name] is getattr(data, spec.hub_reader)
        else:
            assert name not in data._HUB_READERS
    assert set(data._READERS) == set(datasets.DATASETS)


def test_config_names_come_from_the_table():
    assert config.DATASETS == tuple(datasets.DATASETS)
    with pytest.raises(config.ConfigError, match="unknown dataset 'nosuchset'"):
        config.parse(config.DatasetConfig, {"name": "nosuchset", "path": "x"}, source="test")


def test_paper_configs_name_the_tables_hub_ids():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    numina = yaml.safe_load((REPO / "config" / "paper-numina.yaml").read_text())
    entries = [*paper["data"]["train"], *paper["evaluation"]["benchmarks"], *paper["evaluation"]["final_benchmarks"],
               *numina["data"]["train"]]
    for entry in entries:
        assert entry["path"] == datasets.get(entry["name"]).hub_id


def test_filters_by_hand():
    keep = {"problem": "p", "answer": "5", "question_type": "math-word-problem", "problem_is_valid": "Yes",
            "solution_is_valid": "Yes"}
    assert datasets.first_drop("numina", keep) is None
    assert datasets.first_drop("numina", {**keep, "answer": " NotFound"}) == "answer_not_gradable"
    assert datasets.first_drop("numina", {**keep, "question_type": "proof"}) == "proof_question"
    assert datasets.first_drop("numina", {**keep, "question_type": "MCQ"}) == "multiple_choice"
    assert datasets.first_drop("numina", {**keep, "problem_is_valid": "No"}) == "problem_not_valid"
    assert datasets.first_drop("numina", {**keep, "solution_is_valid": None}) == "solution_not_valid"
    # synthetic rows are kept (docs/evaluation.md: the paper names the whole release)
    assert datasets.first_drop("numina", {**keep, "synthetic": True}) is None
    # the other datasets have no filters beyond the gold rule
    assert datasets.first_drop("math", {**keep, "question_type": "MCQ"}) is None
    assert datasets.filter_names("math") == ("no_gold",)
    assert datasets.filter_names("numina")[0] == "no_gold"


@pytest.mark.parametrize("answer, gold", [("5", True), (0, True), ("0", True), ("", False), ("  \n", False),
                                          (None, False)])
def test_has_gold(answer, gold):
    assert datasets.has_gold(answer) is gold


def test_labels():
    assert datasets.training_data_label([("math", "train"), ("numina", "train")]) == "MATH train + NuminaMath-1.5"
    assert datasets.training_data_label([("math", "train"), ("dapo", "train")]) == "MATH train + DAPO-Math-17k"
    assert [datasets.benchmark_label(b) for b in ("math500", "math_test", "synthetic_test", "numina_train", "x_y")] == [
        "MATH-500", "MATH test", "synthetic test", "NuminaMath-1.5", "x_y"]
    assert datasets.label("nosuchset", "test") == "nosuchset"
    with pytest.raises(ValueError, match="unknown dataset name 'nosuchset'"):
        datasets.get("nosuchset")
