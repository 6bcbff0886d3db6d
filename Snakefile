# GRPO vs LENS (Feng et al., arXiv:2510.08696): the whole experiment as one Snakemake workflow.
#
#   snakemake --cores 2 --profile profiles/default                      # embedded CPU reproduction
#   snakemake --cores 32 --profile profiles/default --configfile config/paper.yaml --resources gpu=8   # the paper
#   snakemake -n --configfile config/paper.yaml                          # plan the paper's DAG
#
# Targets: all (report, figures, tables), figures, tables, ablations, sweeps. Layout: config/README.md.

import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# Rules run `python -m ...`: make that the interpreter running Snakemake (its virtual environment)
# whatever PATH says, so `.venv/bin/snakemake` works without activating the environment. With
# --use-conda a rule's environment still comes first (its activation prepends its own bin).
envvars:
    "PATH",


_search_path = os.environ["PATH"]
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), _search_path])


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/configs.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/tracking.smk"


rule all:
    input:
        f"{R}/REPORT.md",
        figure_files(),
        table_files(),
        mlflow_markers(""),
        f"{R}/{layout.SUMMARY_LOGGED}",
    default_target: True


rule figures:
    input:
        figure_files(),


rule tables:
    input:
        table_files(),


rule ablations:
    """Table 2's arms and the extra baselines (`ablation_algorithms`), trained, evaluated, tabulated
    (Table 2 layout and the leaderboard), and REPORT.md with the leaderboard section."""
    input:
        optional_target("ablations/"),


rule sweeps:
    """Sensitivity sweeps (`sweeps:`): one run per swept value and seed in its own directory
    (runs/{model}/{algo}/{param}-{value}/seed{seed}), trained, evaluated and logged like the main GRPO
    runs they are compared with (the sensitivity table and figure), and REPORT.md with the
    Sensitivity section."""
    input:
        sweeps_target,


onstart:
    # Not run by dry runs. A local run schedules GPU jobs with --resources gpu=N or, without it, with this
    # machine's count (lens.devices then gives each job its own devices); where GPU jobs cannot run here, the
    # error names the flag before any job starts. Executors such as SLURM assign devices themselves.
    if not schedule_gpus() and (warning := cluster_store_warning(CFG.tracking.uri, R)) is not None:
        print(warning, file=sys.stderr)
    # tracking.server_store set: `mlflow server` at tracking.uri while the workflow runs (pid and log in
    # results_dir/logs/mlflow-server), stopped when Snakemake exits however it ends.
    if CFG.tracking.server_store is not None:
        start_workflow_server(CFG.tracking.uri, CFG.tracking.server_store, R)


onsuccess:
    if CFG.tracking.server_store is not None:
        stop_workflow_server(CFG.tracking.uri, R)
    print(where_to_browse(R, CFG.tracking.uri, CFG.tracking.server_store))


onerror:
    if CFG.tracking.server_store is not None:
        stop_workflow_server(CFG.tracking.uri, R)
