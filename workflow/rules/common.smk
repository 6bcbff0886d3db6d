# What the rules need to find their inputs: the plan of the config (lens.plan: every run, its resolved
# config and evaluations, checked once by lens.config), file names (lens.layout), the input functions of
# the rules and the target lists.
#
# Nothing here writes a file: `snakemake -n` leaves the tree as it was, and a bad config fails it
# with lens.config's message (key and file) before any job starts.

import copy
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

from analysis import jobs as analysis_jobs
from lens import devices, engine, layout
from lens.config import ConfigError
from lens.plan import STANDIN_FILES, WARMUP_FILES, Plan

EMBEDDED_CONFIG = "config/config.yaml"
# Every job's software (used with `--sdm conda`; the README's commands use the project venv instead).
CONDA_ENV = "../envs/lens.yaml"


def _raw_config():
    """The config dict and the file(s) it came from.

    Snakemake merges `--configfile` files over the `configfile:` default (config/config.yaml), so
    `--configfile config/paper.yaml` alone would inherit the embedded benchmark's keys. The paper
    config is a complete config, not a patch: when config files are given on the command line,
    they (and any `--config` values) replace the default instead of extending it.

    Snakemake internals (checked against Snakemake 9.27.1): no public API says which config files came
    from the command line, or gives their merge without the `configfile:` default beneath it.
    """
    cli_files = [str(f) for f in workflow.overwrite_configfiles]
    if cli_files:
        return copy.deepcopy(workflow.config_settings.overwrite_config), ", ".join(cli_files)
    return copy.deepcopy(dict(config)), EMBEDDED_CONFIG


RAW, CONFIG_SOURCE = _raw_config()
try:
    PLAN = Plan(RAW, CONFIG_SOURCE)
except ConfigError as err:
    raise WorkflowError(f"invalid config: {err}") from None
config.clear()
config.update(RAW)

CFG, R, RUNS = PLAN.cfg, PLAN.results, PLAN.runs
MODELS, ALGOS, SEEDS, TINY_MODELS = PLAN.models, PLAN.algos, PLAN.seeds, PLAN.tiny_models
SCOPE_ALGOS = PLAN.scope_algos
SYNTH_DIR, MERGED_CONFIG, CONFIG_TEXTS = PLAN.synthetic_dir, PLAN.merged_config, PLAN.config_texts

# Files, as Snakemake patterns ({model}, {algo}, {seed}, {benchmark}, {step} are wildcards).
RUN = f"{R}/{layout.RUN}"
START = f"{R}/{layout.START}"
RUN_EVAL = f"{RUN}/{layout.EVAL}"
# Step 0: the start's evaluation, and its copy in each run.
START_EVAL0 = layout.eval_dir(START, "{benchmark}", 0)
RUN_EVAL0 = layout.eval_dir(RUN, "{benchmark}", 0)
TRACKING_URI_ARGS = f"--uri {shlex.quote(CFG.tracking.uri)}" if CFG.tracking.uri else ""


# A sweep arm holds a slash: without these, runs/{model}/{algo}/seed{seed} would also read
# runs/tiny/lens/alpha-4/seed0 as model `tiny/lens`, algo `alpha-4`.
wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    algo="|".join(re.escape(a) for a in ALGOS + PLAN.ablation_algos + PLAN.sweep_arms),
    seed=r"\d+",
    scope="|".join(re.escape(s) for s in SCOPE_ALGOS),


def run_dir(model, algo, seed):
    return layout.run_dir(R, model, algo, seed)


def config_text(wc):
    return CONFIG_TEXTS[f"{R}/{wc.path}"]


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
def train_outputs(scope):
    return [f"{run_dir(m, a, s)}/{layout.DONE_FILE}" for (m, a, s) in PLAN.scope_runs(scope)]


def eval_outputs(scope):
    return [
        f"{layout.eval_dir(run_dir(m, a, s), b, step)}/{layout.SAMPLES_FILE}"
        for (m, a, s) in PLAN.scope_runs(scope)
        for b, step in PLAN.run_evals(m, a, s)
    ]


def mlflow_markers(scope):
    """One per run: its evaluations are attached to its MLflow run (rule log_evals)."""
    return [f"{run_dir(m, a, s)}/{layout.EVALS_LOGGED}" for (m, a, s) in PLAN.scope_runs(scope)]


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
    if not PLAN.sweep_arms:
        raise WorkflowError(
            f"invalid config: {CONFIG_SOURCE}: sweeps: the `sweeps` target needs at least one "
            "entry {algorithm, parameter, values}"
        )
    return optional_target("sweeps/")


def collect_inputs(wc):
    return train_outputs(wc.scope) + eval_outputs(wc.scope)


# --------------------------------------------------------------------------------------------
# Training and evaluation jobs: input and params functions of a job's wildcards (lens.plan answers)
# --------------------------------------------------------------------------------------------
def run_of(wc):
    return wc.model, wc.algo, int(wc.seed)


def train_inputs(wc):
    # ancient: the experiment only has to exist; recreating its marker must not retrain everything.
    return {**PLAN.train_inputs(*run_of(wc)), "experiment": ancient(f"{R}/mlflow_experiment_id")}


def train_launcher(wc):
    """`python`, accelerate on several GPUs, or torchrun for several CPU processes (lens.engine)."""
    entry = CFG.models[wc.model]
    return engine.launcher(entry.training_gpus(), entry.training_processes(), entry.accelerate_config)


def train_engine_args(wc):
    """lens.train's check that the job runs the engine and process count it was launched for."""
    entry = CFG.models[wc.model]
    return engine.check_args(entry.training_gpus(), entry.training_processes(), entry.accelerate_config)


def schedule_gpus():
    """onstart: on a local run, the GPU count Snakemake schedules with (lens.devices.workflow_gpus): the
    --resources gpu given, or this machine's, registered as if given; a WorkflowError naming the flag where
    the planned GPU jobs cannot run here. False on an executor such as SLURM, which assigns devices itself.

    Snakemake internals (checked against Snakemake 9.27.1): whether jobs run locally, the jobs about to run
    and the GPUs given are known only to the workflow object, and registering a resource count has no
    public call."""
    if not workflow.local_exec:
        return False

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
    return True


def run_eval_args(wc):
    """Params of the `evaluate_run` rule - checkpoints, output directories and samples of every step > 0."""
    run, cfg = run_dir(*run_of(wc)), RUNS[run_of(wc)]
    steps = cfg.eval_steps()
    return {
        "checkpoints": " ".join(shlex.quote(PLAN.checkpoint(*run_of(wc), s)) for s in steps),
        "outs": " ".join(layout.eval_dir(run, wc.benchmark, s) for s in steps),
        "n_samples": " ".join(str(cfg.n_samples_at(s)) for s in steps),
    }


def run_eval_summaries(wc):
    run = run_dir(*run_of(wc))
    return [f"{layout.eval_dir(run, b, s)}/{layout.SUMMARY_FILE}" for b, s in PLAN.run_evals(*run_of(wc))]


def parent_of(name):
    """params function: the directory of output `name` (a job's --out directory)."""
    return lambda wc, output: str(Path(output[name]).parent)


def parents_of(name):
    """params function: the directories of outputs `name` (a list), space-separated (--out DIR ...)."""
    return lambda wc, output: " ".join(str(Path(path).parent) for path in output[name])


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
    target's runs, and analysis.report still writes the section of any tables already built.

    Snakemake internals (checked against Snakemake 9.27.1): the targets asked for on the command line
    have no public accessor."""
    targets = set(workflow.dag_settings.targets or ())
    return [
        f
        for target, scope in (("ablations", "ablations/"), ("sweeps", "sweeps/"))
        if target in targets
        for f in table_files(scope) + figure_files(scope)
    ]
