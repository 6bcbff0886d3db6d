"""lens.data: loading the shared MATH/DAPO files, subsets, decontamination counts, prompts, failure paths."""

import json

import pytest
from helpers import DATA

from lens import data as lens_data
from lens.config import DatasetConfig, RunConfig, parse
from lens.data import (
    SCHEMA_KEYS,
    DataError,
    decontaminate,
    dedupe_dapo,
    format_prompt,
    load_dataset,
    load_problems,
    normalize_text,
    training_problems,
    unwrap_dapo_prompt,
)

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
    (tmp_path / "test.jsonl").write_text('{"id": "a", "answer": "1"}\n')
    with pytest.raises(DataError, match=r"test.jsonl:1: record lacks \['problem'\]"):
        load_problems(ds("synthetic", tmp_path))


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="unknown dataset name 'nosuchset'"):
        load_problems(DatasetConfig(name="nosuchset", path="x"))  # built directly: the config parser would refuse it


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
# No gold, no row: an evaluation set raises, naming the line; a training set drops and counts
# ---------------------------------------------------------------------------------------------
def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def math_row(i, **kw):
    return {"id": f"test/algebra/{i}.json", "problem": f"What is {i}+1?", "answer": str(i + 1), "level": 1,
            "subject": "Algebra", **kw}


def test_math500_row_with_null_answer_is_an_error_naming_file_and_line(tmp_path):
    file = write_jsonl(tmp_path / "math500.jsonl", [math_row(0), math_row(1, answer=None), math_row(2)])
    with pytest.raises(DataError, match=rf"^{file}:2: no gold answer \(answer is null\)"):
        load_problems(ds("math500", file))
    with pytest.raises(DataError, match=rf"^{file}:2: no gold answer"):
        load_problems(ds("math500", tmp_path))  # the directory form reads the same file


@pytest.mark.parametrize("answer, why", [("<absent>", r"no `answer` key"), ("", r"answer is ''"),
                                         (" \t", r"answer is ' \\t'")])
def test_evaluation_set_without_gold_names_the_line(tmp_path, answer, why):
    bad = {k: v for k, v in math_row(1).items() if k != "answer"}
    if answer != "<absent>":
        bad["answer"] = answer
    # a blank line before the bad row: the line number is the file's, not the row's index
    (tmp_path / "test.jsonl").write_text(json.dumps(math_row(0)) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=rf"test.jsonl:3: no gold answer \({why}\)"):
        load_problems(ds("math", tmp_path, "test"))


def test_hub_evaluation_row_without_gold_names_the_row(monkeypatch):
    rows = [{"unique_id": f"test/x/{i}.json", "problem": "p", "answer": a, "level": 1, "subject": "Algebra"}
            for i, a in enumerate(["1", "2", None])]
    monkeypatch.setattr(lens_data, "_hub_load", lambda ds, *args, **kw: rows)
    with pytest.raises(DataError, match=r"hub dataset 'HuggingFaceH4/MATH-500' \(test\) row 2: no gold answer"):
        load_problems(ds("math500", "HuggingFaceH4/MATH-500"))


def test_training_set_drops_rows_without_gold_and_counts_them(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [math_row(0), math_row(1, answer=None), math_row(2, answer=" "),
                                                   math_row(3)])
    problems, read = load_dataset(ds("math", train, "train"), training=True)
    assert [p["id"] for p in problems] == ["test/algebra/0.json", "test/algebra/3.json"]
    assert read == {"rows": 4, "dropped_by_filter": {"no_gold": 2}}
    bench = write_jsonl(tmp_path / "math500.jsonl", [math_row(7)])
    cfg = parse(RunConfig, {"model": {"name": "m", "path": "x"}, "algorithm": {"name": "grpo"},
                            "data": {"train": [{"name": "math", "path": str(train), "split": "train"}]},
                            "evaluation": {"benchmarks": [{"name": "math500", "path": str(bench)}]}}, source="test")
    problems, report = training_problems(cfg)
    assert len(problems) == 2 and report["loaded"] == {"math_train": 2} and report["rows"] == {"math_train": 4}
    assert report["dropped_by_filter"] == {"math_train": {"no_gold": 2}}
    # the evaluation sets a run is decontaminated against are evaluation sets: no gold is an error there
    write_jsonl(bench, [math_row(7, answer=None)])
    with pytest.raises(DataError, match=rf"{bench}:1: no gold answer"):
        training_problems(cfg)


# ---------------------------------------------------------------------------------------------
# NuminaMath-1.5: rows in its own schema, the same filters on a local file and the hub
# ---------------------------------------------------------------------------------------------
def numina(answer="5", question_type="math-word-problem", problem_is_valid="Yes", solution_is_valid="Yes",
           synthetic=False, problem="Find $x$ if $x - 1 = 4$.", without=()):
    row = {"problem": problem, "solution": "Add 1: $x = 5$.", "answer": answer, "problem_type": "Algebra",
           "question_type": question_type, "problem_is_valid": problem_is_valid,
           "solution_is_valid": solution_is_valid, "source": "olympiads", "synthetic": synthetic}
    return {k: v for k, v in row.items() if k not in without}


# (row, the rule that drops it or None): counted by hand below
NUMINA_ROWS = [
    (numina(), None),                                                        # 0 kept
    (numina(answer="proof", question_type="proof"), "answer_not_gradable"),  # 1 first rule that matches
    (numina(answer="notfound"), "answer_not_gradable"),                      # 2
    (numina(answer="  "), "no_gold"),                                        # 3 whitespace only
    (numina(answer=None, question_type="proof"), "no_gold"),                 # 4 null: gold rule first
    (numina(without=("answer",)), "no_gold"),                                # 5 no `answer` key at all
    (numina(answer="3", question_type="proof"), "proof_question"),           # 6 a proof with a stray answer
    (numina(answer="B", question_type="MCQ"), "multiple_choice"),            # 7
    (numina(problem_is_valid="No"), "problem_not_valid"),                    # 8
    (numina(solution_is_valid="Problem not solved"), "solution_not_valid"),  # 9
    (numina(synthetic=True, problem="Find $y$ if $2y = 6$.", answer="3"), None),  # 10 synthetic rows stay
    (numina(answer="PROOF "), "answer_not_gradable"),                        # 11 case and spaces ignored
    (numina(answer="\\frac{1}{2}", problem="Halve 1."), None),              # 12 kept
    (numina(question_type="MCQ", solution_is_valid="No"), "multiple_choice"),  # 13 counted once, first rule
]
NUMINA_DROPS = {"no_gold": 3, "answer_not_gradable": 3, "proof_question": 1, "multiple_choice": 2,
                "problem_not_valid": 1, "solution_not_valid": 1}
NUMINA_KEPT = [0, 10, 12]


def numina_rows():
    return [dict(r) for r, _ in NUMINA_ROWS]


def test_numina_hand_count_matches_the_table():
    assert {rule: sum(1 for _, r in NUMINA_ROWS if r == rule) for rule in NUMINA_DROPS} == NUMINA_DROPS
    assert [i for i, (_, r) in enumerate(NUMINA_ROWS) if r is None] == NUMINA_KEPT
    assert sum(NUMINA_DROPS.values()) + len(NUMINA_KEPT) == len(NUMINA_ROWS) == 14


def test_numina_local_jsonl_keeps_only_gradable_rows(tmp_path):
    file = write_jsonl(tmp_path / "train.jsonl", numina_rows())
    problems, read = load_dataset(ds("numina", file, "train"), training=True)
    assert read == {"rows": 14, "dropped_by_filter": NUMINA_DROPS}
    assert [p["id"] for p in problems] == ["numina-0000000", "numina-0000010", "numina-0000012"]
    assert problems[0] == {"id": "numina-0000000", "problem": "Find $x$ if $x - 1 = 4$.", "answer": "5",
                           "level": None, "subject": "Algebra", "source": "NuminaMath-1.5/olympiads"}
    assert [p["answer"] for p in problems] == ["5", "3", "\\frac{1}{2}"]
    # the directory form ({path}/{split}.jsonl) reads the same file
    assert load_problems(ds("numina", tmp_path, "train"), training=True) == problems
    # as an evaluation set, the first row without gold (line 4) is an error
    with pytest.raises(DataError, match=rf"{file}:4: no gold answer \(answer is '  '\)"):
        load_problems(ds("numina", file, "train"))


def test_numina_hub_rows_pass_the_same_filters(monkeypatch, tmp_path):
    calls = []

    def hub(ds_cfg, *args, **kwargs):
        calls.append((args, kwargs))
        # datasets gives every column of every row; a missing answer arrives as None
        return [{**numina(), **r, "answer": r.get("answer")} for r in numina_rows()]

    monkeypatch.setattr(lens_data, "_hub_load", hub)
    problems, read = load_dataset(ds("numina", "AI-MO/NuminaMath-1.5", "train"), training=True)
    assert calls == [(("AI-MO/NuminaMath-1.5",), {"split": "train"})]
    assert read == {"rows": 14, "dropped_by_filter": NUMINA_DROPS}
    local, _ = load_dataset(ds("numina", write_jsonl(tmp_path / "train.jsonl", numina_rows()), "train"), training=True)
    assert problems == local  # ids are source rows on both paths
    with pytest.raises(DataError, match=r"hub dataset 'AI-MO/NuminaMath-1.5' \(train\) row 3: no gold answer"):
        load_problems(ds("numina", "AI-MO/NuminaMath-1.5", "train"))


def test_numina_row_missing_a_schema_field_is_an_error(tmp_path):
    file = write_jsonl(tmp_path / "train.jsonl", [numina(), numina(without=("problem_is_valid",))])
    with pytest.raises(DataError, match=rf"{file}:2: record lacks \['problem_is_valid'\]"):
        load_problems(ds("numina", file, "train"), training=True)


def test_data_report_counts_every_numina_filter(tmp_path):
    train = write_jsonl(tmp_path / "numina.jsonl", numina_rows())
    # one kept Numina problem is also an evaluation problem: decontamination comes after the filters
    bench = write_jsonl(tmp_path / "math500.jsonl", [{"id": "b0", "problem": "Halve  1.", "answer": "0.5"}])
    cfg = parse(RunConfig, {"model": {"name": "m", "path": "x"}, "algorithm": {"name": "grpo"},
                            "data": {"train": [{"name": "numina", "path": str(train), "split": "train"}]},
                            "evaluation": {"benchmarks": [{"name": "math500", "path": str(bench)}]}}, source="test")
    problems, report = training_problems(cfg)
    assert [p["id"] for p in problems] == ["numina-0000000", "numina-0000010"]
    assert report["rows"] == {"numina_train": 14} and report["loaded"] == {"numina_train": 3}
    assert report["dropped_by_filter"] == {"numina_train": NUMINA_DROPS}
    assert report["dropped_by_benchmark"] == {"math500": 1} and report["n_after"] == 2
    assert json.loads(json.dumps(report)) == report  # what lens.train writes to data_report.json


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
    out = [p for p in dedupe_dapo(filled + [(p["problem"], p["answer"]) for p in dapo])
           if p["problem"][:7] != "filler "]
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


LONG = ("Two numbers are independently selected from the set of positive integers less than or equal to 5. "
        "What is the probability")  # 90 characters once normalised


def test_prefix_rule_by_hand():
    train = [{"id": "reworded_end", "problem": LONG + " that their sum is odd? Give m + n."},
             {"id": "punctuation", "problem": LONG.upper().replace(".", " ;") + " of anything else?"},
             {"id": "short_start", "problem": "Find all pairs (k, n) of positive integers for which 7^k - 3^n "
                                              "divides k^4 + n^2. Please give the sum of k + n."},
             {"id": "too_short", "problem": "Compute $34$."},
             {"id": "differs_early", "problem": LONG.replace("5", "6") + " that their sum is odd?"}]
    evals = {"set": [{"problem": LONG + " that their product is even?"},
                     {"problem": "Find all pairs $(k, n)$ of positive integers for which $7^{k}-3^{n}$ divides "
                                 "$k^{4}+n^{2}$."},  # 55 characters normalised: the start of short_start
                     {"problem": "Compute $3+4$."}]}  # "compute34" too, but under PREFIX_MIN_CHARS
    kept, report = decontaminate(train, evals)
    assert report["dropped_ids"] == ["reworded_end", "punctuation", "short_start"]
    assert [p["id"] for p in kept] == ["too_short", "differs_early"]
    assert report["dropped_by_rule"] == {"set": {"exact": 0, "prefix": 3}}
    assert lens_data.PREFIX_MIN_CHARS == 40 and lens_data.PREFIX_CHARS == 80


@needs_data
def test_math_train_vs_test_exact_rule_finds_exactly_the_four_known_duplicates():
    train = load_problems(ds("math", DATA / "math", "train"))
    test = load_problems(ds("math", DATA / "math", "test"))
    kept, report = decontaminate(train, {"math_test": test})
    known = ["train/algebra/517.json", "train/algebra/777.json", "train/algebra/2197.json", "train/geometry/6032.json"]
    assert set(known) <= set(report["dropped_ids"])
    # the prefix rule adds 90 near-variants (same setting, another question or other numbers)
    assert report["dropped_by_rule"] == {"math_test": {"exact": 4, "prefix": 90}}
    assert len(kept) == 7500 - 94


@needs_data
def test_dapo_contamination_counts_match_the_data_readme():
    dapo = load_problems(ds("dapo", DATA / "dapo", "train"))
    evals = {"math_test": load_problems(ds("math", DATA / "math", "test")),
             "math500": load_problems(ds("math500", DATA / "math"))}
    _, report = decontaminate(dapo, evals)
    # exact: the README's counts "ignoring formatting"; prefix: what the second rule adds
    assert report["dropped_by_rule"] == {"math_test": {"exact": 973, "prefix": 410},
                                         "math500": {"exact": 5, "prefix": 12}}
    assert report["n_after"] == 16666 - 973 - 410  # every MATH-500 match is also a MATH test match


NEW_SETS = {"aime24": "aime", "aime25": "aime", "amc23": "amc", "minerva": "minerva",
            "olympiadbench": "olympiadbench"}


@needs_data
@pytest.mark.parametrize("train_name,train_set", [("dapo", "dapo"), ("math", "math_train")])
def test_decontamination_catches_every_exact_and_prefix_pair_of_the_data_readme(train_name, train_set):
    """shared/data/overlaps.json lists each evaluation problem's copies in the training sets by the
    README's exact and prefix-80 match and by hand review: the two rules catch every pair of the
    first two kinds and drop nothing the file does not list."""
    overlaps = json.loads((DATA / "overlaps.json").read_text())
    path = DATA / "math" if train_name == "math" else DATA / "dapo"
    train = load_problems(ds(train_name, path, "train"))
    evals = {name: load_problems(ds(name, DATA / folder)) for name, folder in NEW_SETS.items()}
    _, report = decontaminate(train, evals)
    listed = {kind: {copy for name in NEW_SETS for copies in overlaps[name][train_set][kind].values()
                     for copy in copies}
              for kind in ("exact", "prefix80", "verified_same_problem")}
    dropped = set(report["dropped_ids"])
    assert listed["exact"] | listed["prefix80"] <= dropped
    assert dropped <= listed["exact"] | listed["prefix80"] | listed["verified_same_problem"]
    by_rule = report["dropped_by_rule"]
    assert by_rule["aime24"] == by_rule["aime25"] == by_rule["minerva"] == {"exact": 0, "prefix": 0}
    if train_name == "dapo":  # the README: AMC 2023 8 exact + 18 prefix-80 problems, OlympiadBench 9 + 37
        assert by_rule["amc23"] == {"exact": 7, "prefix": 27} and by_rule["olympiadbench"] == {"exact": 8, "prefix": 44}
    else:
        assert by_rule["amc23"] == {"exact": 0, "prefix": 0} and by_rule["olympiadbench"] == {"exact": 1, "prefix": 2}


def test_prefix_rule_on_numina_rows():
    """NuminaMath-1.5 can only be checked on users' machines (no hub here): the rule on rows in its
    schema, through the loader, as training_problems applies it."""
    amc = {"problem": "How many positive perfect squares less than $2023$ are divisible by $5$?"}  # 56 chars
    rows = [numina(problem="How many positive perfect squares less than 2023 are divisible by 5? "
                           "Fill in the blank with the number of such squares."),
            numina(problem="How many positive perfect cubes less than 2023 are divisible by 5?")]
    kept, report = decontaminate([lens_data._record(lens_data.numina_row(i, r), "NuminaMath-1.5")
                                  for i, r in enumerate(rows)], {"amc23_test": [amc]})
    assert report["dropped_ids"] == ["numina-0000000"] and [p["id"] for p in kept] == ["numina-0000001"]
    assert report["dropped_by_rule"] == {"amc23_test": {"exact": 0, "prefix": 1}}


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
    # the benchmark's limit of 10 is ignored: the 4 duplicates and 90 near-variants of the full test set go
    assert len(problems) == 7406 and report["n_dropped"] == 94 and report["loaded"] == {"math_train": 7500}
    assert report["dropped_by_rule"] == {"math_test": {"exact": 4, "prefix": 90}}
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
