"""The embedded benchmark (lens.synthetic): levels, worked solutions, fixed disjoint splits, grading."""

import json
import re

import pytest
import yaml

from lens.config import ConfigError, DatasetConfig, SyntheticConfig
from lens.synthetic import LEVELS, enumerate_level, load_synthetic_config, main, make_splits

SMALL = SyntheticConfig(train_per_level=40, test_per_level=10, seed=7, rl_per_level=(2, 4, 6, 8, 10))
SCHEMA = {"id", "problem", "answer", "level", "subject", "source"}


def _value(problem: str) -> int:
    """Evaluate the problem's LaTeX expression independently of the generator."""
    expr = re.fullmatch(r"Compute \$(.+)\$\.", problem).group(1)
    return eval(expr.replace("\\times", "*"), {"__builtins__": {}})  # digits, +, * only


def test_pinned_problems_of_every_level():
    by_id = {p["id"]: p for lvl in LEVELS for p in enumerate_level(lvl)}
    assert by_id["synthetic-L1-9+2"]["solution"] == "9+2=11 \\boxed{11}"
    assert by_id["synthetic-L2-7+8+9"]["solution"] == "7+8=15 15+9=24 \\boxed{24}"
    assert by_id["synthetic-L3-6*7+5"]["problem"] == "Compute $6 \\times 7 + 5$."
    assert by_id["synthetic-L3-6*7+5"]["solution"] == "6*7=42 42+5=47 \\boxed{47}"
    assert by_id["synthetic-L4-6*7+8*3"]["solution"] == "6*7=42 8*3=24 42+24=66 \\boxed{66}"
    assert by_id["synthetic-L5-56*3"]["solution"] == "50*3=150 6*3=18 150+18=168 \\boxed{168}"
    assert by_id["synthetic-L5-56*3"]["answer"] == "168"


@pytest.mark.parametrize("level", LEVELS)
def test_every_answer_is_the_value_and_every_solution_has_a_step_before_the_box(level):
    problems = list(enumerate_level(level))
    assert len({p["id"] for p in problems}) == len(problems)
    for p in problems:
        assert p["level"] == level and p["source"] == "synthetic"
        assert int(p["answer"]) == _value(p["problem"])
        *steps, box = p["solution"].split(" ")
        assert box == f"\\boxed{{{p['answer']}}}"
        assert len(steps) >= 1
        for step in steps:  # each step is a true equation: digits, + and * only
            lhs, rhs = step.split("=")
            assert re.fullmatch(r"\d+[+*]\d+", lhs) and eval(lhs, {"__builtins__": {}}) == int(rhs)
        assert steps[-1].split("=")[1] == p["answer"]  # the last step computes the answer


def test_levels_grow_in_steps():
    steps = {lvl: next(enumerate_level(lvl))["solution"].count("=") for lvl in LEVELS}
    assert [steps[lvl] for lvl in LEVELS] == [1, 2, 2, 3, 3]
    assert len(next(enumerate_level(5))["solution"]) > len(next(enumerate_level(1))["solution"])


def test_splits_are_disjoint_sized_and_fixed_by_seed():
    splits = make_splits(SMALL)
    train, rl, test = splits["train"], splits["rl"], splits["test"]
    for lvl in LEVELS:
        assert sum(p["level"] == lvl for p in test) == 10
        assert sum(p["level"] == lvl for p in rl) == SMALL.rl_per_level[lvl - 1]
    # Level 1 has only 81 problems: all but the 10 test ones could go to train, 40 are asked for.
    assert sum(p["level"] == 1 for p in train) == 40
    train_ids, test_ids = {p["id"] for p in train}, {p["id"] for p in test}
    assert not train_ids & test_ids
    assert not {p["problem"] for p in train} & {p["problem"] for p in test}
    assert {p["id"] for p in rl} <= train_ids
    assert all(set(p) == SCHEMA for p in test + rl)
    assert all(set(p) == SCHEMA | {"solution"} for p in train)
    assert make_splits(SMALL) == splits
    other = make_splits(SyntheticConfig(train_per_level=40, test_per_level=10, seed=8, rl_per_level=(2, 4, 6, 8, 10)))
    assert {p["id"] for p in other["test"]} != test_ids


def test_small_levels_give_what_they_have():
    cfg = SyntheticConfig(train_per_level=5000, test_per_level=20, seed=0, rl_per_level=(0, 0, 0, 0, 0))
    train = make_splits(cfg)["train"]
    assert sum(p["level"] == 1 for p in train) == 81 - 20


def test_extra_test_problems_come_from_outside_train_and_leave_the_other_splits_alone():
    # Level 4 has 8**4 = 4096 problems: 10 test + 40 train leave 4046 that no split uses.
    extra = SyntheticConfig(train_per_level=40, test_per_level=10, seed=7, rl_per_level=(2, 4, 6, 8, 10),
                            extra_test_per_level=(0, 0, 0, 25, 0))
    base, more = make_splits(SMALL), make_splits(extra)
    assert more["train"] == base["train"] and more["rl"] == base["rl"]
    assert [p for p in more["test"] if p in base["test"]] == base["test"]  # the original ones, in their order
    added = [p for p in more["test"] if p not in base["test"]]
    assert len(added) == 25 and {p["level"] for p in added} == {4}
    assert not {p["problem"] for p in added} & {p["problem"] for p in more["train"]}
    assert len({p["id"] for p in more["test"]}) == len(more["test"])
    # Level 1 (81 problems, 10 test + 40 train) has 31 left: 32 is one too many, named with the level.
    with pytest.raises(ConfigError, match=r"extra_test_per_level: level 1 has 31 problems"):
        make_splits(SyntheticConfig(train_per_level=40, test_per_level=10, rl_per_level=(0,) * 5,
                                    extra_test_per_level=(32, 0, 0, 0, 0)))
    with pytest.raises(ConfigError, match="extra_test_per_level"):
        make_splits(SyntheticConfig(extra_test_per_level=(0, -1, 0, 0, 0)))


def test_bad_settings_fail_clearly():
    with pytest.raises(ConfigError, match="rl_per_level"):
        make_splits(SyntheticConfig(rl_per_level=(1, 2, 3)))
    with pytest.raises(ValueError, match="level 1 has 81 problems"):
        make_splits(SyntheticConfig(test_per_level=81, rl_per_level=(0, 0, 0, 0, 0)))


def test_cli_reads_only_the_synthetic_section(tmp_path):
    # A full workflow file: every other section may change (even be invalid) without mattering here.
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "figures": {"dpi": "not checked here"},
        "synthetic": {"train_per_level": 12, "test_per_level": 3, "seed": 1, "rl_per_level": [1, 1, 1, 1, 1]},
    }))
    main(["--config", str(cfg_file), "--out", str(tmp_path / "a")])
    section = tmp_path / "section.yaml"
    section.write_text(yaml.safe_dump({"train_per_level": 12, "test_per_level": 3, "seed": 1,
                                       "rl_per_level": [1, 1, 1, 1, 1]}))
    main(["--config", str(section), "--out", str(tmp_path / "b")])
    for split, n in (("train", 60), ("rl", 5), ("test", 15)):
        a = (tmp_path / "a" / f"{split}.jsonl").read_text()
        assert a == (tmp_path / "b" / f"{split}.jsonl").read_text()
        assert len([json.loads(line) for line in a.splitlines()]) == n
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"synthetic": {"train_per_levl": 3}}))
    with pytest.raises(ConfigError, match=r"synthetic\.train_per_levl"):
        load_synthetic_config(bad)


def test_loader_reads_the_splits_in_the_problem_schema(tmp_path):
    from lens.data import load_problems

    main(["--config", _section(tmp_path), "--out", str(tmp_path / "syn")])
    for split in ("train", "rl", "test"):
        problems = load_problems(DatasetConfig(name="synthetic", path=str(tmp_path / "syn"), split=split))
        assert problems and all(set(p) == SCHEMA for p in problems)
        assert {p["level"] for p in problems} == set(LEVELS)


def test_answers_grade_correct_with_the_project_grader():
    from lens.rewards import grade_batch

    problems = [p for lvl in LEVELS for p in list(enumerate_level(lvl))[:: 97][:6]]
    golds = [p["answer"] for p in problems]
    assert grade_batch([p["solution"] for p in problems], golds) == [1.0] * len(problems)
    # Off by one in the box, or a right intermediate value without the box: wrong.
    off = [p["solution"].replace(f"\\boxed{{{p['answer']}}}", f"\\boxed{{{int(p['answer']) + 1}}}") for p in problems]
    assert grade_batch(off, golds) == [0.0] * len(problems)


def _section(tmp_path) -> str:
    path = tmp_path / "synthetic.yaml"
    path.write_text(yaml.safe_dump({"train_per_level": 8, "test_per_level": 4, "seed": 3,
                                    "rl_per_level": [1, 2, 3, 4, 5]}))
    return str(path)
