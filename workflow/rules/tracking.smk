# MLflow beyond the per-run logging of train.smk and evaluate.smk: the results folder's summary run
# (report, figures, tables as artifacts) and the tracking-server mode, in which the workflow runs
# `mlflow server` on the submitting host while it runs (Snakefile's onstart/onsuccess/onerror).

from lens.mlflow_server import start_workflow_server, stop_workflow_server
from lens.tracking import cluster_store_warning, where_to_browse


rule mlflow_summary:
    """The results folder's `summary` MLflow run: REPORT.md, figures and tables as artifacts."""
    conda:
        CONDA_ENV
    input:
        f"{R}/REPORT.md",
        figure_files(),
        table_files(),
        f"{R}/mlflow_experiment_id",
    output:
        f"{R}/{layout.SUMMARY_LOGGED}",
    params:
        name=shlex.quote(CFG.tracking.experiment),
    log:
        f"{R}/logs/mlflow_summary.log",
    shell:
        f"python -m lens.tracking log-summary --results-dir {R} --experiment {{params.name}} "
        f"{TRACKING_URI_ARGS} > {{log}} 2>&1 && touch {{output}}"
