"""Helpers of the `cluster` tests (tests/cluster) beside tests/helpers.py's (the repository, free ports, the
jobs' offline environment: `subprocess_env`): the cluster script, PostgreSQL, SQL reads of an MLflow backend
store. The fixtures that start the engines are in conftest.py."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import REPO

CLUSTER_SCRIPT = REPO / "tests" / "cluster" / "slurm_cluster.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Screenshots and other things worth looking at after a run (git-ignored).
ARTIFACTS = Path(os.environ.get("LENS_CLUSTER_ARTIFACTS", REPO / "build" / "cluster"))


def new_database(server_uri: str, name: str) -> str:
    """Create database `name` on the PostgreSQL server of `server_uri` (…/mlflow) and return its URI."""
    import psycopg2

    conn = psycopg2.connect(server_uri)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return server_uri.rsplit("/", 1)[0] + f"/{name}"


def stored_metrics(store: str) -> dict[tuple[str, str, int], list[float]]:
    """Every value of the backend store's metrics table by (run id, metric, step), read with SQL:
    what the server wrote, not what MLflow's client API makes of it."""
    query = "SELECT run_uuid, key, step, value FROM metrics"
    if store.startswith("sqlite:///"):
        import sqlite3

        with sqlite3.connect(store[len("sqlite:///"):]) as conn:
            rows = conn.execute(query).fetchall()
    else:
        import psycopg2

        conn = psycopg2.connect(store)
        with conn.cursor() as cur:
            cur.execute(query)
            rows = cur.fetchall()
        conn.close()
    out: dict[tuple[str, str, int], list[float]] = {}
    for run_id, key, step, value in rows:
        out.setdefault((run_id, key, int(step)), []).append(float(value))
    return out
