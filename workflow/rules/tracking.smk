# MLflow beyond the per-run logging of train.smk and evaluate.smk: the results folder's summary run
# (report, figures, tables as artifacts) and the tracking-server mode, in which the workflow runs
# `mlflow server` on the submitting host while it runs (Snakefile's onstart/onsuccess/onerror).

import atexit
import sys
from urllib.parse import urlparse

# The server's pid file and log (on the submitting host; jobs never read them).
SERVER_STATE_DIR = f"{R}/logs/mlflow-server"

if CFG.tracking.server_store is not None:
    _uri = urlparse(CFG.tracking.uri or "")
    if _uri.scheme != "http" or not _uri.hostname or not _uri.port:
        raise WorkflowError(f"invalid config: {CONFIG_SOURCE}: tracking.server_store: the workflow starts "
                            f"`mlflow server` at tracking.uri, which must then be http://HOST:PORT "
                            f"(got {CFG.tracking.uri!r})")


def start_tracking_server():
    """onstart: `mlflow server` at tracking.uri (backend store tracking.server_store, artifacts under
    results_dir), stopped when Snakemake exits however it ends; nothing without server_store."""
    if CFG.tracking.server_store is None:
        return
    from lens.tracking import start_server, stop_server

    try:
        pid = start_server(CFG.tracking.uri, CFG.tracking.server_store, f"{R}/mlartifacts", SERVER_STATE_DIR)
    except (RuntimeError, ValueError) as err:
        # Jobs would log nowhere; files stay the record, but say so loudly before anything runs.
        print(f"MLflow tracking server not started: {err}", file=sys.stderr)
        return
    if pid is not None:
        print(f"MLflow tracking server at {CFG.tracking.uri} (pid {pid}, store {CFG.tracking.server_store})")
        atexit.register(stop_tracking_server)  # also after an exception or Ctrl-C


def stop_tracking_server():
    if CFG.tracking.server_store is None:
        return
    from lens.tracking import stop_server

    if stop_server(SERVER_STATE_DIR):
        print(f"MLflow tracking server at {CFG.tracking.uri} stopped")


def summary_inputs():
    return [f"{R}/REPORT.md", *figure_files(), *table_files(MAIN_TABLES), f"{R}/mlflow_experiment_id"]


rule mlflow_summary:
    """The results folder's `summary` MLflow run: REPORT.md, figures and tables as artifacts."""
    conda:
        CONDA_ENV
    input:
        summary_inputs(),
    output:
        f"{R}/mlflow_summary_logged",
    params:
        results=R,
        name=shlex.quote(CFG.tracking.experiment),
        uri=lambda wc: f"--uri {tracking_uri_arg()}" if CFG.tracking.uri else "",
    log:
        f"{R}/logs/mlflow_summary.log",
    shell:
        "python -m lens.tracking log-summary --results-dir {params.results} --experiment {params.name} "
        "{params.uri} > {log} 2>&1 && touch {output}"
