# Shared helpers: load and validate the config through lens.config (the project's only parser),
# write one resolved config per job (only when its content changes), and name every target file.
#
# Everything here runs when Snakemake parses the workflow, so a bad config fails at `snakemake -n`
# with lens.config's message (key and file) before any job starts.

import ast
import copy
import dataclasses
import re
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import analysis as _analysis_package
from lens import algorithms as algorithm_table
from lens.config import (
    AlgorithmConfig,
    ConfigError,
    ModelConfig,
    TrainingConfig,
    parse as parse_config,
    to_dict,
    workflow_config_from_dict,
    write_run_config,
    write_text_if_changed,
)

EMBEDDED_CONFIG = "config/config.yaml"
# Every job's software (used with `--sdm conda`; the README's commands use the project venv instead).
CONDA_ENV = "../envs/lens.yaml"


def _raw_config():
    """The config dict and the file(s) it came from.

    Snakemake merges `--configfile` files over the `configfile:` default (config/config.yaml), so
    `--configfile config/paper.yaml` alone would inherit the embedded benchmark's keys. The paper
    config is a complete config, not a patch: when config files are given on the command line,
    they (and any `--config` values) replace the default instead of extending it.
    """
    cli_files = [str(f) for f in workflow.overwrite_configfiles]
    if cli_files:
        return copy.deepcopy(workflow.config_settings.overwrite_config), ", ".join(cli_files)
    return copy.deepcopy(dict(config)), EMBEDDED_CONFIG


RAW, CONFIG_SOURCE = _raw_config()
try:
    CFG = workflow_config_from_dict(RAW, source=CONFIG_SOURCE)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
config.clear()
config.update(RAW)
# The keys this workflow file reads itself (structure only; lens.config checks every value).
validate(RAW, schema="../schemas/config.schema.yaml")

R = CFG.results_dir.rstrip("/")
MODELS = list(CFG.models)
ALGOS = list(CFG.algorithms)
ABLATION_ALGOS = [a for a in CFG.ablation_algorithms if a not in ALGOS]
# Sweep arms (target `sweeps`): `lens/alpha-4` -> ("lens", {"alpha": 4.0}); a run of one lives at
# runs/{model}/lens/alpha-4/seed{seed}, so the rules' {algo} wildcard is the arm.
SWEEPS = {arm: (algo, params) for arm, algo, params in CFG.sweep_variants()}
SWEEP_ARMS = list(SWEEPS)
SEEDS = list(CFG.seeds)
SYNTH_DIR = f"{R}/data/synthetic"


def _fail(key, why):
    raise WorkflowError(f"invalid config: {CONFIG_SOURCE}: {key}: {why}")


# --------------------------------------------------------------------------------------------
# Checks that need the workflow's view (file layout, starting checkpoints)
# --------------------------------------------------------------------------------------------
def _datasets():
    """(config key, DatasetConfig) of every dataset any run reads."""
    out = [(f"data.train[{i}]", ds) for i, ds in enumerate(CFG.data.train)]
    out += [(f"evaluation.benchmarks[{i}]", ds) for i, ds in enumerate(CFG.evaluation.benchmarks)]
    out += [(f"evaluation.final_benchmarks[{i}]", ds) for i, ds in enumerate(CFG.evaluation.final_benchmarks)]
    for name, entry in CFG.models.items():
        for key in ("benchmarks", "final_benchmarks"):
            for i, ds in enumerate(entry.evaluation.get(key, [])):
                out.append((f"models.{name}.evaluation.{key}[{i}]", ds))
    return out


for _key, _ds in _datasets():
    _name, _path = (_ds.name, _ds.path) if hasattr(_ds, "name") else (_ds.get("name"), _ds.get("path"))
    if _name == "synthetic":
        if CFG.synthetic is None:
            _fail(_key, "a synthetic dataset needs the `synthetic` section (the generator's settings)")
        if _path.rstrip("/") != SYNTH_DIR:
            _fail(f"{_key}.path", f"the synthetic benchmark is generated in {SYNTH_DIR!r} "
                  f"(results_dir + /data/synthetic); got {_path!r}")

for _name, _entry in CFG.models.items():
    if _entry.model.get("tiny") is not None and _entry.model.get("path") is not None:
        _fail(f"models.{_name}.model", "set `path` (a hub id or directory) or `tiny` (a model built here), not both")
    if _entry.training_gpus() > 1 and not Path(_entry.accelerate_config).is_file():
        _fail(f"models.{_name}.accelerate_config", f"{_entry.accelerate_config!r} is not a file "
              f"(needed to launch {_entry.training_gpus()} training processes)")


# --------------------------------------------------------------------------------------------
# Resolved configs (one file per job; rules get only what they use)
# --------------------------------------------------------------------------------------------
def run_dir(model, algo, seed):
    """A run's directory; `algo` is an algorithm id or a sweep arm ({algo}/{param}-{value})."""
    return f"{R}/runs/{model}/{algo}/seed{seed}"


# A sweep arm holds a slash: without these, runs/{model}/{algo}/seed{seed} would also read
# runs/tiny/lens/alpha-4/seed0 as model `tiny/lens`, algo `alpha-4`.
wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    algo="|".join(re.escape(a) for a in ALGOS + ABLATION_ALGOS + SWEEP_ARMS),
    seed=r"\d+",


def start_dir(model, seed):
    """Where the starting model (rollout step 0) is evaluated, once per model x seed."""
    return f"{R}/start/{model}/seed{seed}"


def warmup_dir(model):
    return f"{R}/models/{model}/warmup"


def standin_dir(model):
    return f"{R}/models/{model}/standin"


WARMUP_FILES = ("config.json", "model.safetensors", "tokenizer.json", "warmup_log.csv")
STANDIN_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def is_standin(model):
    """A tiny model without warm-up: built once (rule standin) and then loaded from its directory
    like the hub model it stands in for (config/paper-rehearsal.yaml)."""
    entry = CFG.models[model]
    return entry.model.get("tiny") is not None and not entry.warmup


def resolve(model, algo, seed):
    """lens.config's RunConfig; a tiny model starts RL from its warm-up checkpoint or stand-in directory.
    A sweep arm resolves as its algorithm with the swept value over the `algorithm:` section."""
    algo, params = SWEEPS.get(algo, (algo, None))
    try:
        cfg = CFG.resolve(model, algo, seed, source=CONFIG_SOURCE, params=params)
    except ConfigError as err:
        raise WorkflowError(f"invalid config: {err}") from None
    start = warmup_dir(model) if CFG.models[model].warmup else standin_dir(model) if is_standin(model) else None
    if start is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=start, tiny=None))
    return cfg


RUNS = {(m, a, s): resolve(m, a, s) for m in MODELS for a in ALGOS + ABLATION_ALGOS + SWEEP_ARMS for s in SEEDS}


def start_config(model, seed):
    """Step 0 is the same model for every algorithm: its evaluation config drops the algorithm and
    training sections (reset to defaults), so changing alpha or the learning rate keeps it."""
    cfg = resolve(model, "grpo", seed)
    return dataclasses.replace(cfg, algorithm=AlgorithmConfig(), training=TrainingConfig())


def eval_steps(cfg):
    """Rollout steps whose checkpoints are evaluated: every `evaluation.every` steps and the last."""
    t, every = cfg.training, cfg.evaluation.every
    steps = list(range(every, t.rollout_steps + 1, every))
    if t.rollout_steps not in steps:
        steps.append(t.rollout_steps)
    for step in steps:
        if step % t.save_every and step != t.rollout_steps:
            _fail("evaluation.every", f"step {step} has no checkpoint: evaluation.every ({every}) must be a "
                  f"multiple of training.save_every ({t.save_every})")
    return steps


def eval_n_samples(cfg, step):
    """Samples per problem at `step`: n_samples at step 0 and the last step (Pass@k), else
    evaluation.intermediate_n_samples when it is set."""
    ev = cfg.evaluation
    if step in (0, cfg.training.rollout_steps) or ev.intermediate_n_samples is None:
        return ev.n_samples
    return ev.intermediate_n_samples


# The embedded run's warmed-up tiny models. Not the paper rehearsal's stand-ins: they rehearse a hub
# model's jobs, one evaluation job per checkpoint.
TINY_MODELS = [m for m in MODELS if CFG.models[m].warmup]


def tiny_eval_steps():
    """Steps > 0 evaluated in every run of a tiny model, when all those runs share them (else None).

    Evaluating a tiny model costs less than a job's start-up (imports, model load), so each such run
    gets one evaluation job for all its steps after 0 (rule evaluate_run); hub models keep one job
    per step, which run in parallel on several GPUs."""
    schedules = {tuple(eval_steps(cfg)) for (m, _, _), cfg in RUNS.items() if m in TINY_MODELS}
    return list(next(iter(schedules))) if len(schedules) == 1 else None


def _write_configs():
    for (m, a, s), cfg in RUNS.items():
        write_run_config(cfg, f"{run_dir(m, a, s)}/config.yaml")
    for m in MODELS:
        for s in SEEDS:
            write_run_config(start_config(m, s), f"{start_dir(m, s)}/config.yaml")
        if CFG.models[m].warmup:
            # Through the dataclasses: a canonical text (field order), whatever the YAML's key order.
            model = to_dict(parse_config(ModelConfig, {**CFG.models[m].model, "name": m}, source=CONFIG_SOURCE,
                                  key=f"models.{m}.model"))
            # torch_threads stays in: the thread count decides the order of the kernels' sums, so
            # another count trains another model (and reruns the warm-up).
            warmup = to_dict(CFG.warmup)
            write_text_if_changed(yaml.safe_dump({"model": model, "warmup": warmup}, sort_keys=False),
                              f"{R}/models/{m}/warmup.yaml")
        elif is_standin(m):
            # The stand-in's tokenizer is trained on the run's training problems (lens.tiny's CLI).
            model = to_dict(parse_config(ModelConfig, {**CFG.models[m].model, "name": m}, source=CONFIG_SOURCE,
                                  key=f"models.{m}.model"))
            corpus = [to_dict(ds) for ds in CFG.data.train]
            write_text_if_changed(yaml.safe_dump({"model": model, "corpus": corpus, "corpus_limit": 2000, "seed": 0},
                                                 sort_keys=False), f"{R}/models/{m}/standin.yaml")
    if CFG.synthetic is not None:
        write_text_if_changed(yaml.safe_dump(to_dict(CFG.synthetic), sort_keys=False), f"{R}/data/synthetic.yaml")
    # The config the results came from, overlays merged (config/paper.yaml + paper-rehearsal.yaml):
    # what REPORT.md summarises.
    write_text_if_changed(f"# merged from: {CONFIG_SOURCE}\n{yaml.safe_dump(RAW, sort_keys=False)}", MERGED_CONFIG)


MERGED_CONFIG = f"{R}/config.yaml"


_write_configs()


# --------------------------------------------------------------------------------------------
# Inputs of the jobs
# --------------------------------------------------------------------------------------------
def dataset_files(datasets):
    """Local files a job reads: the synthetic splits (made by rule synthetic); hub ids need none."""
    return sorted({f"{SYNTH_DIR}/{ds.split}.jsonl" for ds in datasets if ds.name == "synthetic"})


def start_model_files(model):
    """The warm-up checkpoint (the `warmup` rule's) or the stand-in (the `standin` rule's), else nothing."""
    if CFG.models[model].warmup:
        return [f"{warmup_dir(model)}/{f}" for f in WARMUP_FILES]
    if is_standin(model):
        return [f"{standin_dir(model)}/{f}" for f in STANDIN_FILES]
    return []


def benchmarks(cfg, step):
    """Benchmarks evaluated at `step`: the curve sets always, the costly final sets at the last step."""
    final = list(cfg.evaluation.final_benchmarks) if step == cfg.training.rollout_steps else []
    out, seen = [], set()
    for ds in list(cfg.evaluation.benchmarks) + final:
        if ds.id not in seen:
            seen.add(ds.id)
            out.append(ds)
    return out


def benchmark_by_id(cfg, benchmark):
    for ds in list(cfg.evaluation.benchmarks) + list(cfg.evaluation.final_benchmarks):
        if ds.id == benchmark:
            return ds
    raise WorkflowError(f"benchmark {benchmark!r} is not configured for this run")


def train_gpus(model):
    """GPUs of one training job of this model: `models.<name>.gpus` (tiny models: 0, the CPU)."""
    return CFG.models[model].training_gpus()


def eval_gpus(model):
    """Evaluation runs on one GPU (vLLM or generate), or on the CPU for a model that trains there."""
    return min(train_gpus(model), 1)


def train_processes(model):
    """Processes of one training job: one per GPU, or `models.<name>.processes` on the CPU (default 1)."""
    return CFG.models[model].training_processes()


def train_launcher(model):
    """`python` for one process; several: accelerate with one process per GPU, or on the CPU torch's
    own launcher (gloo; `--standalone` picks a free port, so jobs side by side do not collide)."""
    n = train_processes(model)
    if n <= 1:
        return "python"
    if train_gpus(model):
        return (f"accelerate launch --num_processes {n} "
                f"--config_file {shlex.quote(CFG.models[model].accelerate_config)}")
    return f"python -m torch.distributed.run --standalone --nproc_per_node {n}"


def train_threads(model, cfg):
    """Cores a training job takes: its torch threads, times its processes on the CPU."""
    return threads_of(cfg.training.torch_threads) * (1 if train_gpus(model) else train_processes(model))


def train_engine_args(model):
    """lens.train's check that the job runs the engine and process count it was launched for
    (lens.engine), or nothing for one process."""
    n = train_processes(model)
    if n <= 1:
        return ""
    if train_gpus(model):
        return f"--engine-config {shlex.quote(CFG.models[model].accelerate_config)} --processes {n}"
    return f"--processes {n}"


def threads_of(value):
    return value or 1


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
def eval_outputs(algos):
    out = []
    for (m, a, s), cfg in RUNS.items():
        if a not in algos:
            continue
        for step in [0] + eval_steps(cfg):
            for ds in benchmarks(cfg, step):
                out.append(f"{run_dir(m, a, s)}/eval/{ds.id}/step{step}/samples.parquet")
    return out


def mlflow_markers(algos):
    """One per run: its evaluations are attached to its MLflow run (rule log_evals)."""
    return [f"{run_dir(m, a, s)}/eval/mlflow_logged" for (m, a, s) in RUNS if a in algos]


def train_outputs(algos):
    return [f"{run_dir(m, a, s)}/done" for (m, a, s) in RUNS if a in algos]


def curve_benchmark():
    """The benchmark of the training curves and Pass@k tables (the first evaluated every N steps)."""
    first = CFG.evaluation.benchmarks or CFG.evaluation.final_benchmarks
    return first[0].id if first else None


def level_benchmark():
    """Accuracy by level reads the full final set when there is one (MATH test), else the curve set."""
    first = CFG.evaluation.final_benchmarks or CFG.evaluation.benchmarks
    return first[0].id if first else None


def tracking_uri_arg():
    return shlex.quote(CFG.tracking.uri) if CFG.tracking.uri else "''"


def print_locations():
    """Where the results are and how to browse them; printed when a run succeeds."""
    from lens.tracking import results_ui_url, store_uri

    root = Path(R).resolve()
    store = CFG.tracking.server_store or CFG.tracking.uri or store_uri(root)
    local = "--host 127.0.0.1 --port 5000"
    if CFG.tracking.uri and CFG.tracking.uri.startswith("http") and not CFG.tracking.server_store:
        ui = "the tracking server's UI"  # a server the workflow did not start: it is still up
        base = CFG.tracking.uri
    elif CFG.tracking.server_store:  # the workflow's server has stopped: browse its store locally
        ui = f".venv/bin/mlflow server --backend-store-uri {store} --artifacts-destination {root / 'mlartifacts'} {local}"
        base = "http://127.0.0.1:5000"
    else:
        ui = ("make mlflow-ui" if root == Path("results").resolve() and not CFG.tracking.uri else
              f".venv/bin/mlflow ui --backend-store-uri {store} {local}")
        base = "http://127.0.0.1:5000"
    # MLflow 3.17 opens an experiment on its GenAI overview unless the link asks for "Model training".
    url = results_ui_url(root, base)
    lines = [
        "",
        f"Report:        {root / 'REPORT.md'}",
        f"Figures:       {root / 'figures'}",
        f"Tables:        {root / 'tables'}",
        f"MLflow store:  {store}",
        f"MLflow UI:     {ui}",
        f"               then open {url}",
        "",
    ]
    print("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Job inputs and options (used by the rule files)
# --------------------------------------------------------------------------------------------
def train_inputs(wc):
    cfg = RUNS[(wc.model, wc.algo, int(wc.seed))]
    return {
        "config": f"{run_dir(wc.model, wc.algo, wc.seed)}/config.yaml",
        "start": start_model_files(wc.model),
        "data": dataset_files(cfg.data.train),
        # ancient: the experiment only has to exist; recreating its marker must not retrain everything.
        "experiment": ancient(f"{R}/mlflow_experiment_id"),
    }


def eval_threads(model):
    return threads_of(RUNS[next(k for k in RUNS if k[0] == model)].evaluation.torch_threads)


def start_eval_inputs(wc):
    cfg = start_config(wc.model, int(wc.seed))
    return {
        "config": f"{start_dir(wc.model, wc.seed)}/config.yaml",
        "start": start_model_files(wc.model),
        "data": dataset_files([benchmark_by_id(cfg, wc.benchmark)]),
    }


def eval_inputs(wc):
    cfg = RUNS[(wc.model, wc.algo, int(wc.seed))]
    return {
        "config": f"{run_dir(wc.model, wc.algo, wc.seed)}/config.yaml",
        "done": f"{run_dir(wc.model, wc.algo, wc.seed)}/done",
        "data": dataset_files([benchmark_by_id(cfg, wc.benchmark)]),
    }


def checkpoint_dir(wc):
    """lens.train's Hugging Face directory of the run's checkpoint at rollout step `wc.step`."""
    from lens.train import checkpoint_path

    run = run_dir(wc.model, wc.algo, wc.seed)
    return str(checkpoint_path(run, int(wc.step), RUNS[(wc.model, wc.algo, int(wc.seed))]))


def run_eval_args(wc):
    """Params of the `evaluate_run` rule - checkpoints, output directories and samples of every step > 0."""
    from lens.train import checkpoint_path

    run, cfg = run_dir(wc.model, wc.algo, wc.seed), RUNS[(wc.model, wc.algo, int(wc.seed))]
    steps = eval_steps(cfg)
    return {"checkpoints": " ".join(shlex.quote(str(checkpoint_path(run, s, cfg))) for s in steps),
            "outs": " ".join(f"{run}/eval/{wc.benchmark}/step{s}" for s in steps),
            "n_samples": " ".join(str(eval_n_samples(cfg, s)) for s in steps)}


def parent_of(name):
    """params function: the directory of output `name` (a job's --out directory)."""
    return lambda wc, output: str(Path(output[name]).parent)


def run_of_done(wc, input):
    """params function: the run directory, from the job's `done` input."""
    return str(Path(input.done).parent)


def run_evals(model, algo, seed):
    """(benchmark, step) of every evaluation of one run, step 0 included."""
    cfg = RUNS[(model, algo, int(seed))]
    return [(ds.id, step) for step in [0] + eval_steps(cfg) for ds in benchmarks(cfg, step)]


FIG = CFG.figures
_FIG_OPTS = f"--formats {' '.join(FIG.formats)} --dpi {FIG.dpi}"
_BOOT = f"--bootstrap-samples {FIG.bootstrap_samples}"


def _bench(benchmark):
    return f"--benchmark {benchmark}" if benchmark else ""


FIGURE_ARGS = {
    "fig_accuracy_by_level": f"{_bench(level_benchmark())} {_BOOT} {_FIG_OPTS}",
    "fig_training_curves": f"{_bench(curve_benchmark())} {_BOOT} {_FIG_OPTS}",
    "fig_pass_at_k": f"{_bench(curve_benchmark())} --k-max {CFG.evaluation.n_samples} {_BOOT} {_FIG_OPTS}",
    "fig_negative_group_ratio": f"--algos {' '.join(ALGOS)} --smoothing-window {FIG.smoothing_window} {_FIG_OPTS}",
    "fig_weight_function": _FIG_OPTS,
    "fig_confident_mistakes": _FIG_OPTS,
}
_PASS_K = " ".join(str(k) for k in CFG.evaluation.pass_k)
TABLE_ARGS = {
    "tab_pass_at_k": f"{_bench(curve_benchmark())} --k {_PASS_K} --algos {' '.join(ALGOS)} {_BOOT}",
    "tab_accuracy_by_level": f"{_bench(level_benchmark())} {_BOOT}",
    "tab_ablation": f"{_bench(curve_benchmark())} --k {_PASS_K} {_BOOT}",
    "tab_confident_mistakes": "--top 10",
}
# Table 2 needs the ablation arms: part of `all` when they are main algorithms (the embedded
# config), else of the optional `ablations` target.
ABLATION_ARMS = set(algorithm_table.table_rows("tab_ablation"))
MAIN_TABLES = [t for t in TABLE_ARGS if t != "tab_ablation" or ABLATION_ARMS <= set(ALGOS)]
# The `ablations` target's outputs over every arm trained (results/{tables,figures}/ablations/).
ABLATION_TABLE_ARGS = {
    "tab_ablation": TABLE_ARGS["tab_ablation"],
    "tab_leaderboard": f"{_bench(level_benchmark())} --k-max {CFG.evaluation.n_samples} {_BOOT}",
}
ABLATION_FIGURE_ARGS = {
    "fig_leaderboard": f"{_bench(level_benchmark())} --k-max {CFG.evaluation.n_samples} {_BOOT} {_FIG_OPTS}",
}
# The `sweeps` target's outputs (results/{tables,figures}/sweeps/): one row per swept value.
_ARMS = f"--arms {' '.join(shlex.quote(a) for a in SWEEP_ARMS)}" if SWEEP_ARMS else ""
SWEEP_TABLE_ARGS = {"tab_sensitivity": f"{_bench(level_benchmark())} {_ARMS} {_BOOT}"}
SWEEP_FIGURE_ARGS = {"fig_sensitivity": f"{_bench(level_benchmark())} {_ARMS} {_BOOT} {_FIG_OPTS}"}
# REPORT.md gets the leaderboard section when the `ablations` target is built, the Sensitivity
# section when the `sweeps` target is (its rule then waits for those outputs); analysis.report
# includes whatever of them exists on disk. The requested targets are not known while the
# Snakefile is parsed (workflow.dag_settings is set afterwards), so the command line is read:
# `snakemake ablations ...`.
_DAG = getattr(workflow, "dag_settings", None)


def _requested(target):
    return target in (getattr(_DAG, "targets", None) or ()) or target in sys.argv[1:]


ABLATIONS_REQUESTED = _requested("ablations")
SWEEPS_REQUESTED = _requested("sweeps")
if SWEEPS_REQUESTED and not SWEEP_ARMS:
    _fail("sweeps", "the `sweeps` target needs at least one entry {algorithm, parameter, values}")


ANALYSIS_DIR = Path(_analysis_package.__file__).parent


def analysis_code(module):
    """The files `python -m analysis.<module>` runs: the script and every analysis module it imports,
    transitively. The analysis rules take them as inputs, so editing a figure script or
    analysis/style.py reruns exactly the jobs that run it (the training code, lens/, is not among them)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        path = ANALYSIS_DIR / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "analysis":
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis."):
                todo.append(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                todo += [a.name.split(".")[1] for a in node.names if a.name.startswith("analysis.")]
    return sorted(str(ANALYSIS_DIR / f"{name}.py") for name in seen)


def figure_files(names=FIGURE_ARGS):
    return [f"{R}/figures/{n}.{ext}" for n in names for ext in [*FIG.formats, "csv"]]


def table_files(names):
    return [f"{R}/tables/{n}.{ext}" for n in names for ext in ("md", "tex", "csv")]


def ablation_files():
    """Every output of the `ablations` target's analysis: its tables and figures."""
    tables = [f"{R}/tables/ablations/{n}.{ext}" for n in ABLATION_TABLE_ARGS for ext in ("md", "tex", "csv")]
    figures = [f"{R}/figures/ablations/{n}.{ext}" for n in ABLATION_FIGURE_ARGS for ext in [*FIG.formats, "csv"]]
    return [*tables, *figures]


def sweep_files():
    """Every output of the `sweeps` target's analysis: the sensitivity table and figure."""
    tables = [f"{R}/tables/sweeps/{n}.{ext}" for n in SWEEP_TABLE_ARGS for ext in ("md", "tex", "csv")]
    figures = [f"{R}/figures/sweeps/{n}.{ext}" for n in SWEEP_FIGURE_ARGS for ext in [*FIG.formats, "csv"]]
    return [*tables, *figures]


def collect_inputs(algos):
    return train_outputs(algos) + eval_outputs(algos)
