# What the rules need to find their inputs: the config (loaded and checked once, by lens.config),
# the resolved config of every job (held here, written by rule config_file), file names (from
# lens.layout) and the input functions of the rules.
#
# Nothing here writes a file: `snakemake -n` leaves the tree as it was, and a bad config fails it
# with lens.config's message (key and file) before any job starts.

import copy
import dataclasses
import re
import shlex
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from analysis import jobs as analysis_jobs
from lens import devices, engine, layout
from lens.config import (
    AlgorithmConfig,
    ConfigError,
    ModelConfig,
    TrainingConfig,
    dump_yaml,
    parse as parse_config,
    to_dict,
    workflow_config_from_dict,
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

R = CFG.results_dir.rstrip("/")
MODELS = list(CFG.models)
ALGOS = list(CFG.algorithms)
ABLATION_ALGOS = [a for a in CFG.ablation_algorithms if a not in ALGOS]
# Sweep arms (target `sweeps`): `lens/alpha-4` -> ("lens", {"alpha": 4.0}); a run of one lives at
# runs/{model}/lens/alpha-4/seed{seed}, so the rules' {algo} wildcard is the arm.
SWEEPS = {arm: (algo, params) for arm, algo, params in CFG.sweep_variants()}
SWEEP_ARMS = list(SWEEPS)
# Arms among the ablation arms (`grpo_shuffled/shuffle_frac-0.25`: the graded control) resolve the same way.
ARMS = {**SWEEPS, **{arm: (algo, params) for arm, algo, params in CFG.ablation_arms()}}
SEEDS = list(CFG.seeds)
SYNTH_DIR = f"{R}/data/synthetic"
# The arms of each analysis scope: the main target's, and the optional targets' (subfolders of
# tidy/, figures/ and tables/; lens.layout).
SCOPE_ALGOS = {"": ALGOS, "ablations/": ALGOS + ABLATION_ALGOS, "sweeps/": ["grpo"] + SWEEP_ARMS}
# The `ablations` target's models and seeds (`ablation_models`, `ablation_seeds`; default: all): its
# arms train there only, and its tables compare them with the main arms' runs there only.
ABLATION_MODELS, ABLATION_SEEDS = (list(v) for v in CFG.ablation_runs())

# Files, as Snakemake patterns ({model}, {algo}, {seed}, {benchmark}, {step} are wildcards).
RUN = f"{R}/{layout.RUN}"
START = f"{R}/{layout.START}"
RUN_EVAL = f"{RUN}/{layout.EVAL}"
# Step 0: the start's evaluation, and its copy in each run.
START_EVAL0 = layout.eval_dir(START, "{benchmark}", 0)
RUN_EVAL0 = layout.eval_dir(RUN, "{benchmark}", 0)
WARMUP_FILES = ("config.json", "model.safetensors", "tokenizer.json", "warmup_log.csv")
STANDIN_FILES = ("config.json", "model.safetensors", "tokenizer.json")
MERGED_CONFIG = f"{R}/config.yaml"  # the config the results came from, overlays merged: what REPORT.md summarises
TRACKING_URI_ARGS = f"--uri {shlex.quote(CFG.tracking.uri)}" if CFG.tracking.uri else ""


# A sweep arm holds a slash: without these, runs/{model}/{algo}/seed{seed} would also read
# runs/tiny/lens/alpha-4/seed0 as model `tiny/lens`, algo `alpha-4`.
wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    algo="|".join(re.escape(a) for a in ALGOS + ABLATION_ALGOS + SWEEP_ARMS),
    seed=r"\d+",
    scope="|".join(re.escape(s) for s in SCOPE_ALGOS),


def run_dir(model, algo, seed):
    return layout.run_dir(R, model, algo, seed)


def model_dir(model):
    """Where a model built here lives: its warm-up checkpoint (kind tiny) or stand-in (kind standin)."""
    kind = CFG.models[model].kind
    return f"{R}/{layout.MODEL.format(model=model)}/{'warmup' if kind == 'tiny' else 'standin'}"


# --------------------------------------------------------------------------------------------
# Resolved configs: one per job, held here; rule config_file writes each (a job reruns only when
# the text of its own config changes: editing alpha retrains the runs that read alpha)
# --------------------------------------------------------------------------------------------
def resolve(model, algo, seed):
    """lens.config's RunConfig; a model built here starts RL from its warm-up or stand-in directory.
    A sweep arm resolves as its algorithm with the swept value over the `algorithm:` section."""
    algo, params = ARMS.get(algo, (algo, None))
    try:
        cfg = CFG.resolve(model, algo, seed, source=CONFIG_SOURCE, params=params)
    except ConfigError as err:
        raise WorkflowError(f"invalid config: {err}") from None
    if CFG.models[model].kind != "hub":
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=model_dir(model), tiny=None))
    return cfg


RUNS = {
    (m, a, s): resolve(m, a, s)
    for m in MODELS
    for a in ALGOS + ABLATION_ALGOS + SWEEP_ARMS
    for s in SEEDS
    if a in ALGOS or a in SWEEP_ARMS or (m in ABLATION_MODELS and s in ABLATION_SEEDS)
}


def scope_runs(scope):
    """(model, algo, seed) of every run an analysis scope reads."""
    models, seeds = (ABLATION_MODELS, ABLATION_SEEDS) if scope == "ablations/" else (MODELS, SEEDS)
    return [(m, a, s) for (m, a, s) in RUNS if a in SCOPE_ALGOS[scope] and m in models and s in seeds]


def start_config(model, seed):
    """Step 0 is the same model for every algorithm: its evaluation config drops the algorithm and
    training sections (reset to defaults), so changing alpha or the learning rate keeps it."""
    cfg = resolve(model, "grpo", seed)
    return dataclasses.replace(cfg, algorithm=AlgorithmConfig(), training=TrainingConfig())


def _config_texts():
    """{path: text} of every file rule config_file writes."""
    texts = {f"{run_dir(m, a, s)}/{layout.RUN_CONFIG_FILE}": dump_yaml(cfg) for (m, a, s), cfg in RUNS.items()}
    for m, entry in CFG.models.items():
        texts.update(
            {f"{layout.start_dir(R, m, s)}/{layout.RUN_CONFIG_FILE}": dump_yaml(start_config(m, s)) for s in SEEDS}
        )
        if entry.kind == "hub":
            continue
        # Through the dataclasses: a canonical text (field order), whatever the YAML's key order.
        model = to_dict(
            parse_config(ModelConfig, {**entry.model, "name": m}, source=CONFIG_SOURCE, key=f"models.{m}.model")
        )
        if entry.kind == "tiny":
            # torch_threads stays in: the thread count decides the order of the kernels' sums, so
            # another count trains another model (and reruns the warm-up).
            section = {"model": model, "warmup": to_dict(CFG.warmup)}
        else:  # the stand-in's tokenizer is trained on the run's training problems (lens.tiny's CLI)
            section = {
                "model": model,
                "corpus": [to_dict(ds) for ds in CFG.data.train],
                "corpus_limit": 2000,
                "seed": 0,
            }
        texts[f"{model_dir(m)}.yaml"] = yaml.safe_dump(section, sort_keys=False)
    if CFG.synthetic is not None:
        texts[f"{SYNTH_DIR}.yaml"] = yaml.safe_dump(to_dict(CFG.synthetic), sort_keys=False)
    texts[MERGED_CONFIG] = f"# merged from: {CONFIG_SOURCE}\n{yaml.safe_dump(RAW, sort_keys=False)}"
    return texts


CONFIG_TEXTS = _config_texts()


def config_text(wc):
    return CONFIG_TEXTS[f"{R}/{wc.path}"]


def run_evals(model, algo, seed):
    """(benchmark, step) of every evaluation of one run, step 0 included."""
    cfg = RUNS[(model, algo, int(seed))]
    return [(ds.id, step) for step in [0, *cfg.eval_steps()] for ds in cfg.benchmarks_at(step)]


# The embedded run's warmed-up tiny models. Not the paper rehearsal's stand-ins: they rehearse a hub
# model's jobs, one evaluation job per checkpoint.
TINY_MODELS = [m for m in MODELS if CFG.models[m].kind == "tiny"]


def tiny_eval_steps():
    """Steps > 0 evaluated in every run of a tiny model, when all those runs share them (else None).

    Evaluating a tiny model costs less than a job's start-up (imports, model load), so each such run
    gets one evaluation job for all its steps after 0 (rule evaluate_run); hub models keep one job
    per step, which run in parallel on several GPUs."""
    schedules = {tuple(cfg.eval_steps()) for (m, _, _), cfg in RUNS.items() if m in TINY_MODELS}
    return list(next(iter(schedules))) if len(schedules) == 1 else None


def final_evaluations():
    """(last step, benchmark ids) when every run of a hub model or stand-in ends on the same step with
    the same several benchmarks (the curve set and the final sets: MATH-500 and the MATH test), else
    None. Those get one job per run for all of them (rule evaluate_final), so the model, and on GPUs
    vLLM's engine, is loaded once instead of once per benchmark."""
    plans = {
        (cfg.training.rollout_steps, tuple(ds.id for ds in cfg.benchmarks_at(cfg.training.rollout_steps)))
        for (m, _, _), cfg in RUNS.items()
        if m not in TINY_MODELS
    }
    if len(plans) != 1:
        return None
    step, ids = next(iter(plans))
    return (step, list(ids)) if len(ids) > 1 else None


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
def train_outputs(scope):
    return [f"{run_dir(m, a, s)}/{layout.DONE_FILE}" for (m, a, s) in scope_runs(scope)]


def eval_outputs(scope):
    return [
        f"{layout.eval_dir(run_dir(m, a, s), b, step)}/{layout.SAMPLES_FILE}"
        for (m, a, s) in scope_runs(scope)
        for b, step in run_evals(m, a, s)
    ]


def mlflow_markers(scope):
    """One per run: its evaluations are attached to its MLflow run (rule log_evals)."""
    return [f"{run_dir(m, a, s)}/{layout.EVALS_LOGGED}" for (m, a, s) in scope_runs(scope)]


def optional_target(scope):
    """Everything an optional target (`ablations`, `sweeps`) builds: its runs, trained, evaluated and
    logged, its tables and figures, and REPORT.md with its section."""
    return [
        *train_outputs(scope),
        *eval_outputs(scope),
        *mlflow_markers(scope),
        *table_files(scope),
        *figure_files(scope),
        f"{R}/REPORT.md",
    ]


def sweeps_target(wc):
    if not SWEEP_ARMS:
        raise WorkflowError(
            f"invalid config: {CONFIG_SOURCE}: sweeps: the `sweeps` target needs at least one "
            "entry {algorithm, parameter, values}"
        )
    return optional_target("sweeps/")


def collect_inputs(wc):
    return train_outputs(wc.scope) + eval_outputs(wc.scope)


def collect_only(wc):
    """analysis.collect's --models/--seeds where a scope reads fewer than every model and seed (the
    `ablations` scope under `ablation_models`/`ablation_seeds`): the runs folder holds them all."""
    if wc.scope != "ablations/":
        return ""
    # Arms among the ablation arms live in sweep folders: read those (--sweeps), but only the scope's arms.
    arms = [a for a in ABLATION_ALGOS if a in ARMS]
    return " ".join(
        [
            *([f"--models {' '.join(ABLATION_MODELS)}"] if ABLATION_MODELS != MODELS else []),
            *([f"--seeds {' '.join(map(str, ABLATION_SEEDS))}"] if ABLATION_SEEDS != SEEDS else []),
            *([f"--sweeps --algos {' '.join(SCOPE_ALGOS[wc.scope])}"] if arms else []),
        ]
    )


# --------------------------------------------------------------------------------------------
# Training and evaluation jobs
# --------------------------------------------------------------------------------------------
def dataset_files(datasets):
    """Local files a job reads: the synthetic splits (made by rule synthetic); hub ids need none."""
    return sorted({f"{SYNTH_DIR}/{ds.split}.jsonl" for ds in datasets if ds.name == "synthetic"})


def start_model_files(model):
    """The model built here (rule warmup or standin), or nothing for a hub model."""
    kind = CFG.models[model].kind
    names = WARMUP_FILES if kind == "tiny" else STANDIN_FILES if kind == "standin" else ()
    return [f"{model_dir(model)}/{name}" for name in names]


def benchmark_by_id(cfg, benchmark):
    for ds in list(cfg.evaluation.benchmarks) + list(cfg.evaluation.final_benchmarks):
        if ds.id == benchmark:
            return ds
    raise WorkflowError(f"benchmark {benchmark!r} is not configured for this run")


def run_config(wc):
    return RUNS[(wc.model, wc.algo, int(wc.seed))]


def train_inputs(wc):
    return {
        "config": f"{run_dir(wc.model, wc.algo, wc.seed)}/{layout.RUN_CONFIG_FILE}",
        "start": start_model_files(wc.model),
        "data": dataset_files(run_config(wc).data.train),
        # ancient: the experiment only has to exist; recreating its marker must not retrain everything.
        "experiment": ancient(f"{R}/mlflow_experiment_id"),
    }


def train_launcher(wc):
    """`python`, accelerate on several GPUs, or torchrun for several CPU processes (lens.engine)."""
    entry = CFG.models[wc.model]
    return engine.launcher(entry.training_gpus(), entry.training_processes(), entry.accelerate_config)


def train_engine_args(wc):
    """lens.train's check that the job runs the engine and process count it was launched for."""
    entry = CFG.models[wc.model]
    return engine.check_args(entry.training_gpus(), entry.training_processes(), entry.accelerate_config)


def train_threads(wc):
    """Cores a training job takes: its torch threads, times its processes on the CPU."""
    entry = CFG.models[wc.model]
    return (run_config(wc).training.torch_threads or 1) * (1 if entry.training_gpus() else entry.training_processes())


def local_gpus():
    """onstart of a local run: the GPU count Snakemake schedules with (lens.devices.workflow_gpus): the
    --resources gpu given, or this machine's, registered as if given; a WorkflowError naming the flag where
    the planned GPU jobs cannot run here."""

    def number(resource):  # Snakemake 9 holds resources as Resource objects
        value = getattr(resource, "value", resource)
        return None if value is None else int(value)

    given = number(workflow.global_resources.get("gpu"))
    asks = [number(job.resources.get("gpu", 0)) or 0 for job in workflow.dag.needrun_jobs()]
    try:
        count = devices.workflow_gpus(given, asks, devices.machine_devices())
    except devices.DeviceError as err:
        raise WorkflowError(f"GPUs: {err}") from None
    if given is None and any(asks):
        workflow.register_resource("gpu", count)
        print(f"GPUs: no --resources gpu given: jobs share this machine's {count} (one job per device set)")


def train_gpus(wc):
    return CFG.models[wc.model].training_gpus()


def eval_gpus(wc):
    """Evaluation runs on one GPU (vLLM or generate), or on the CPU for a model that trains there."""
    return min(train_gpus(wc), 1)


def eval_threads(wc):
    return RUNS[next(k for k in RUNS if k[0] == wc.model)].evaluation.torch_threads or 1


def start_eval_inputs(wc):
    cfg = start_config(wc.model, int(wc.seed))
    return {
        "config": f"{layout.start_dir(R, wc.model, wc.seed)}/{layout.RUN_CONFIG_FILE}",
        "start": start_model_files(wc.model),
        "data": dataset_files([benchmark_by_id(cfg, wc.benchmark)]),
    }


def start_checkpoint(wc):
    return start_config(wc.model, int(wc.seed)).model.path


def eval_inputs(wc):
    return {
        "config": f"{run_dir(wc.model, wc.algo, wc.seed)}/{layout.RUN_CONFIG_FILE}",
        "done": f"{run_dir(wc.model, wc.algo, wc.seed)}/{layout.DONE_FILE}",
        "data": dataset_files([benchmark_by_id(run_config(wc), wc.benchmark)]),
    }


def final_eval_inputs(wc):
    """evaluate_final's inputs: every benchmark of the last step."""
    cfg = run_config(wc)
    return {
        "config": f"{run_dir(wc.model, wc.algo, wc.seed)}/{layout.RUN_CONFIG_FILE}",
        "done": f"{run_dir(wc.model, wc.algo, wc.seed)}/{layout.DONE_FILE}",
        "data": dataset_files(cfg.benchmarks_at(cfg.training.rollout_steps)),
    }


def final_checkpoint(wc):
    from lens.train import checkpoint_path

    cfg = run_config(wc)
    return str(checkpoint_path(run_dir(wc.model, wc.algo, wc.seed), cfg.training.rollout_steps, cfg))


def parents_of(name):
    """params function: the directories of outputs `name` (a list), space-separated (--out DIR ...)."""
    return lambda wc, output: " ".join(str(Path(path).parent) for path in output[name])


def checkpoint_dir(wc):
    """lens.train's Hugging Face directory of the run's checkpoint at rollout step `wc.step`."""
    from lens.train import checkpoint_path

    return str(checkpoint_path(run_dir(wc.model, wc.algo, wc.seed), int(wc.step), run_config(wc)))


def step_n_samples(wc):
    return run_config(wc).n_samples_at(int(wc.step))


def run_eval_args(wc):
    """Params of the `evaluate_run` rule - checkpoints, output directories and samples of every step > 0."""
    from lens.train import checkpoint_path

    run, cfg = run_dir(wc.model, wc.algo, wc.seed), run_config(wc)
    steps = cfg.eval_steps()
    return {
        "checkpoints": " ".join(shlex.quote(str(checkpoint_path(run, s, cfg))) for s in steps),
        "outs": " ".join(layout.eval_dir(run, wc.benchmark, s) for s in steps),
        "n_samples": " ".join(str(cfg.n_samples_at(s)) for s in steps),
    }


def run_eval_summaries(wc):
    return [
        f"{layout.eval_dir(run_dir(wc.model, wc.algo, wc.seed), b, s)}/{layout.SUMMARY_FILE}"
        for b, s in run_evals(wc.model, wc.algo, wc.seed)
    ]


def log_eval_args(wc):
    return " ".join(f"--eval {b}:{s}" for b, s in run_evals(wc.model, wc.algo, wc.seed))


def parent_of(name):
    """params function: the directory of output `name` (a job's --out directory)."""
    return lambda wc, output: str(Path(output[name]).parent)


# --------------------------------------------------------------------------------------------
# Analysis: one job per script and scope (analysis/jobs.py: which scripts, and their options)
# --------------------------------------------------------------------------------------------
ANALYSIS_ARGS = analysis_jobs.options(CFG)
SCOPE_FIGURES = analysis_jobs.FIGURES
SCOPE_TABLES = analysis_jobs.tables(CFG)


def tidy_files(scope=""):
    return [
        f"{R}/tidy/{scope}{name}"
        for name in (layout.TRAIN_FILE, layout.EVAL_FILE, layout.NEGATIVE_FILE, layout.PAIRING_FILE)
    ]


def figure_files(scope=""):
    return [f"{R}/figures/{scope}{n}.{ext}" for n in SCOPE_FIGURES[scope] for ext in [*CFG.figures.formats, "csv"]]


def table_files(scope=""):
    return [f"{R}/tables/{scope}{n}.{ext}" for n in SCOPE_TABLES[scope] for ext in analysis_jobs.TABLE_FORMATS]


def report_sections(wc):
    """The optional sections' tables and figures (leaderboard: target `ablations`; sensitivity:
    `sweeps`) when this DAG builds that target (Snakemake's own target list), so REPORT.md waits for
    them. Otherwise the report does not depend on them: a plain `snakemake` never trains an optional
    target's runs, and analysis.report still writes the section of any tables already built."""
    targets = set(workflow.dag_settings.targets or ())
    return [
        f
        for target, scope in (("ablations", "ablations/"), ("sweeps", "sweeps/"))
        if target in targets
        for f in table_files(scope) + figure_files(scope)
    ]
