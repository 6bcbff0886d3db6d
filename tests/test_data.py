"""lens.data: loading the shared MATH/DAPO files, subsets, decontamination counts, prompts, failure paths."""

import json
from pathlib import Path

import pytest

from lens.config import DatasetConfig, parse, RunConfig
from lens.data import (
    DataError, SCHEMA_KEYS, decontaminate, dedupe_dapo, format_prompt, load_problems, normalize_text,
    training_problems, unwrap_dapo_prompt,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "math" / "test.jsonl").exists(), reason=f"shared data not found at {DATA}")


def ds(name, path, split="test", **kw):
    return DatasetConfig(name=name, path=str(path), split=split, **kw)


# ---------------------------------------------------------------------------------------------
# loading the shared data
# ---------------------------------------------------------------------------------------------
@needs_data
def test_math_splits_and_schema():
    train = load_problems(ds("math", DATA / "math", "train"))
    test = load_problems(ds("math", DATA / "math", "test"))
    m500 = load_problems(ds("math500", DATA / "math"))
    assert (len(train), len(test), len(m500)) == (7500, 5000, 500)
    for p in (train[0], test[0], m500[0]):
        assert tuple(p) == SCHEMA_KEYS
    assert test[0] == {"id": "test/algebra/1.json", "problem": test[0]["problem"], "answer": "2", "level": 3,
                       "subject": "Algebra", "source": "MATH"}
    assert sum(p["level"] is None for p in train) == 2  # the two "Level ?" records
    assert sum(p["level"] in (4, 5) for p in m500) == 262  # the paper's Level 4-5 subset
    assert {p["source"] for p in m500} == {"MATH-500"}
    # a file path works as well as the directory
    assert load_problems(ds("math500", DATA / "math" / "math500.jsonl")) == m500


@needs_data
def test_dapo_local():
    dapo = load_problems(ds("dapo", DATA / "dapo", "train"))
    assert len(dapo) == 16666
    assert dapo[0]["id"] == "dapo17k-00000" and dapo[0]["answer"] == "34" and dapo[0]["level"] is None
    assert {p["source"] for p in dapo} == {"DAPO-Math-17k"}


@needs_data
def test_limit_is_a_seeded_stable_subset_and_levels_filter():
    full = load_problems(ds("math500", DATA / "math"))
    a = load_problems(ds("math500", DATA / "math", limit=20), seed=1)
    b = load_problems(ds("math500", DATA / "math", limit=20), seed=1)
    c = load_problems(ds("math500", DATA / "math", limit=20), seed=2)
    assert a == b and a != c and len(a) == 20
    order = {p["id"]: i for i, p in enumerate(full)}
    assert [order[p["id"]] for p in a] == sorted(order[p["id"]] for p in a)  # source order kept
    hard = load_problems(ds("math500", DATA / "math", levels=(4, 5)))
    assert len(hard) == 262 and {p["level"] for p in hard} == {4, 5}
    hard10 = load_problems(ds("math500", DATA / "math", levels=(5,), limit=10), seed=0)
    assert len(hard10) == 10 and {p["level"] for p in hard10} == {5}
    assert len(load_problems(ds("math500", DATA / "math", limit=10_000))) == 500


def test_synthetic_keeps_only_schema_keys(tmp_path):
    rows = [{"id": "s1", "problem": "1+1", "answer": "2", "level": 1, "subject": "add", "source": "synthetic",
             "solution": "1+1=2"},
            {"id": "s2", "problem": "2*3", "answer": "6", "level": 2, "subject": "mul"}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    got = load_problems(ds("synthetic", tmp_path, "train"))
    assert got == [{"id": "s1", "problem": "1+1", "answer": "2", "level": 1, "subject": "add", "source": "synthetic"},
                   {"id": "s2", "problem": "2*3", "answer": "6", "level": 2, "subject": "mul", "source": "synthetic"}]


# ---------------------------------------------------------------------------------------------
# failure paths
# ---------------------------------------------------------------------------------------------
def test_missing_local_path_names_it(tmp_path):
    missing = tmp_path / "nope" / "math"
    with pytest.raises(DataError, match="no such file or directory.*nope"):
        load_problems(ds("math", missing))
    with pytest.raises(DataError, match="no such file or directory"):
        load_problems(ds("math", "../not/there"))


def test_directory_without_the_file(tmp_path):
    with pytest.raises(DataError, match="has no test.jsonl"):
        load_problems(ds("math", tmp_path))
    with pytest.raises(DataError, match="split 'validation' unknown"):
        load_problems(ds("math", tmp_path, "validation"))
    with pytest.raises(DataError, match="synthetic.*not found"):
        load_problems(ds("synthetic", tmp_path, "test"))


def test_bad_json_and_missing_keys(tmp_path):
    (tmp_path / "test.jsonl").write_text('{"id": "a", "problem": "p", "answer": "1"}\n{oops\n')
    with pytest.raises(DataError, match=r"test.jsonl:2: not valid JSON"):
        load_problems(ds("synthetic", tmp_path))
    (tmp_path / "test.jsonl").write_text('{"id": "a", "problem": "p"}\n')
    with pytest.raises(DataError, match=r"lacks \['answer'\]"):
        load_problems(ds("synthetic", tmp_path))


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown dataset name 'gsm8k'"):
        load_problems(DatasetConfig(name="gsm8k", path="x"))  # built directly: the config parser would refuse it


def test_hub_id_offline_fails_fast_with_local_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_problems(ds("math500", "HuggingFaceH4/MATH-500"))
    msg = str(err.value)
    assert "'HuggingFaceH4/MATH-500'" in msg and "offline" in msg and "math500.jsonl" in msg


def test_hub_id_unreachable_fails_with_local_hint(monkeypatch):
    # Online mode but the endpoint refuses connections: the probe answers at once.
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(DataError, match=r"BytedTsinghua-SIA/DAPO-Math-17k.*unreachable.*dapo_math_17k.jsonl"):
        load_problems(ds("dapo", "BytedTsinghua-SIA/DAPO-Math-17k", "train"))


def test_synthetic_is_never_a_hub_dataset():
    with pytest.raises(DataError, match="generated locally"):
        load_problems(ds("synthetic", "someone/synthetic"))


# ---------------------------------------------------------------------------------------------
# DAPO hub rows: unwrapping and deduplication as the shared copy was built
# ---------------------------------------------------------------------------------------------
def test_unwrap_dapo_prompt():
    wrapped = ("Solve the following math problem step by step. The last line of your response should be of the "
               "form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
               "What is $1+1$?\n\nRemember to put your answer on its own line after \"Answer:\".")
    assert unwrap_dapo_prompt(wrapped) == "What is $1+1$?"
    assert unwrap_dapo_prompt("What is 2?") == "What is 2?"


def test_dedupe_dapo_keeps_first_copy_and_drops_disagreeing_groups():
    rows = [("What is $x^2$ at 2?", "4"), ("Find $y$.", "1"), ("What is $x^2$ at 2?", "4"), ("Find $y$.", "2"),
            ("What is $x^{2}$ at 2?", "4"), ("Compute $3+4$. ", " 7")]
    out = dedupe_dapo(rows)
    # exact repeats merge (row 2 into row 0); a formatting variant (row 4) is a problem of its own
    assert [(p["id"], p["problem"], p["answer"]) for p in out] == [
        ("dapo17k-00000", "What is $x^2$ at 2?", "4"), ("dapo17k-00004", "What is $x^{2}$ at 2?", "4"),
        ("dapo17k-00005", "Compute $3+4$.", "7")]


@needs_data
def test_dedupe_dapo_reproduces_the_shared_file():
    dapo = load_problems(ds("dapo", DATA / "dapo", "train"))
    # the shared rows, each repeated, in release order: dedupe must give them back unchanged
    rows = [None] * 17917
    for p in dapo:
        rows[int(p["id"].split("-")[1])] = (p["problem"], p["answer"])
    filled = [r if r is not None else ("filler %d" % i, "1") for i, r in enumerate(rows)]
    out = [p for p in dedupe_dapo(filled + [(p["problem"], p["answer"]) for p in dapo]) if p["problem"][:7] != "filler "]
    assert out == dapo


# ---------------------------------------------------------------------------------------------
# decontamination
# ---------------------------------------------------------------------------------------------
def test_normalize_text_ignores_formatting_only():
    assert normalize_text("Let $x^2 = 4$ .") == normalize_text("Let  $x^{2}=4$.")
    assert normalize_text("a\\,b\\!c~d") == normalize_text("abcd")
    # a LaTeX line break followed by spaces is the same line break
    assert normalize_text("a \\\\  \nb") == normalize_text("a \\\\\nb") != normalize_text("a \\ b")
    assert normalize_text("Compute $\\tan 225^\\circ$.") != normalize_text("Compute $\\tan 22.5^\\circ.$")
    assert normalize_text("y = f(x)") != normalize_text("y = -f(x)")


def test_decontaminate_by_hand():
    train = [{"id": "t1", "problem": "What is $1+1$?"}, {"id": "t2", "problem": "Find $x$."},
             {"id": "t3", "problem": "Other."}]
    kept, report = decontaminate(train, {"a": [{"problem": "What is $1 + 1$?"}],
                                         "b": [{"problem": "What is 1+1?"}, {"problem": "Find x."}]})
    assert [p["id"] for p in kept] == ["t3"]
    assert report["n_before"] == 3 and report["n_after"] == 1 and report["n_dropped"] == 2
    assert report["dropped_by_benchmark"] == {"a": 1, "b": 2}
    assert report["dropped_ids"] == ["t1", "t2"]
    kept, report = decontaminate(train, [[{"problem": "Other ."}]])  # a plain list of sets works too
    assert [p["id"] for p in kept] == ["t1", "t2"] and report["dropped_by_benchmark"] == {"eval0": 1}


@needs_data
def test_math_train_vs_test_finds_exactly_the_four_known_duplicates():
    train = load_problems(ds("math", DATA / "math", "train"))
    test = load_problems(ds("math", DATA / "math", "test"))
    kept, report = decontaminate(train, {"math_test": test})
    assert sorted(report["dropped_ids"]) == sorted(["train/algebra/517.json", "train/algebra/777.json",
                                                    "train/algebra/2197.json", "train/geometry/6032.json"])
    assert len(kept) == 7496


@needs_data
def test_dapo_contamination_counts_match_the_data_readme():
    dapo = load_problems(ds("dapo", DATA / "dapo", "train"))
    evals = {"math_test": load_problems(ds("math", DATA / "math", "test")),
             "math500": load_problems(ds("math500", DATA / "math"))}
    _, report = decontaminate(dapo, evals)
    assert report["dropped_by_benchmark"] == {"math_test": 973, "math500": 5}
    assert report["n_after"] == 16666 - 973  # every MATH-500 match is also a MATH test match


def _run_config(tmp_path, decontaminate_flag=True, benchmarks=None):
    raw = {"model": {"name": "m", "path": "x"}, "algorithm": {"name": "grpo"}, "seed": 0,
           "data": {"train": [{"name": "math", "path": str(DATA / "math"), "split": "train"}],
                    "decontaminate": decontaminate_flag},
           "evaluation": {"benchmarks": benchmarks if benchmarks is not None else
                          [{"name": "math", "path": str(DATA / "math"), "split": "test", "limit": 10}]}}
    return parse(RunConfig, raw, source="test")


@needs_data
def test_training_problems_decontaminates_against_the_full_benchmark(tmp_path):
    problems, report = training_problems(_run_config(tmp_path))
    # the benchmark's limit of 10 is ignored: all 4 duplicates of the full test set go
    assert len(problems) == 7496 and report["n_dropped"] == 4 and report["loaded"] == {"math_train": 7500}
    problems, report = training_problems(_run_config(tmp_path, decontaminate_flag=False))
    assert len(problems) == 7500 and report["n_dropped"] == 0


def test_training_problems_needs_training_data():
    cfg = parse(RunConfig, {"model": {"name": "m", "path": "x"}, "algorithm": {"name": "grpo"}}, source="test")
    with pytest.raises(DataError, match="data.train is empty"):
        training_problems(cfg)


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------
def test_plain_prompt_exact():
    assert format_prompt("What is $1+1$?", "plain", None) == (
        "Question: What is $1+1$?\nPlease put your final answer within \\boxed{}.\nAnswer: Let's think step by step.")


def test_bare_prompt_is_the_problem_alone():
    assert format_prompt("Compute $5 + 3$.", "bare", None) == "Compute $5 + 3$.\n"


def test_chat_prompt_uses_the_tokenizer_template():
    from lens.config import TinyModelConfig
    from lens.tiny import build_tokenizer

    tok = build_tokenizer(TinyModelConfig(), ["abc"])
    assert format_prompt("What is $1+1$?", "chat", tok) == (
        "<|user|>What is $1+1$?\nPlease reason step by step, and put your final answer within \\boxed{}.\n"
        "<|assistant|>")


def test_prompt_errors():
    with pytest.raises(ValueError, match="chat template"):
        format_prompt("x", "chat", None)
    with pytest.raises(ValueError, match="unknown prompt style"):
        format_prompt("x", "fewshot", None)
