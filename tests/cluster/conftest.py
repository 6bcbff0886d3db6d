"""Real engines for the `cluster` tests (`make test-cluster`): a single-node SLURM cluster, a PostgreSQL
server and free ports. Nothing here skips: a missing package is an error, so a pass means it all ran.

Needs root and the Debian packages slurmctld, slurmd, slurm-client, munge, postgresql and chromium
(.ci/run installs them), and the `cluster` extra (snakemake-executor-plugin-slurm, psycopg2-binary).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "tests" / "cluster" / "slurm_cluster.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
# Screenshots and other things worth looking at after a run (git-ignored).
ARTIFACTS = Path(os.environ.get("LENS_CLUSTER_ARTIFACTS", REPO / "build" / "cluster"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job_env(**extra: str) -> dict[str, str]:
    """The environment of the workflow and its jobs: the venv first on PATH, no hub access."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)


@pytest.fixture(scope="session")
def slurm():
    """SLURM_CONF of a running single-node cluster (started and stopped by tests/cluster/slurm_cluster.sh)."""
    state = Path(tempfile.mkdtemp(prefix="lens-slurm-"))
    env = dict(os.environ, SLURM_TEST_PORT=str(free_port()))
    proc = subprocess.run([str(CLUSTER_SCRIPT), "start", str(state)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield state / "slurm.conf"
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", str(state)], capture_output=True, text=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def _as_postgres(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=120,
                          **kwargs)


@pytest.fixture(scope="session")
def postgres():
    """The URI of a fresh database `mlflow` on a PostgreSQL 15 server started for the session (Debian's)."""
    assert (PG_BIN / "initdb").exists(), f"PostgreSQL 15 is missing ({PG_BIN}): apt-get install postgresql-15"
    data = Path(tempfile.mkdtemp(prefix="lens-pg-"))
    user = pwd.getpwnam("postgres")
    os.chown(data, user.pw_uid, user.pw_gid)
    port = free_port()
    proc = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data / "db"), "--auth=trust", "-U", "postgres",
                        "-E", "UTF8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "server.log"), "-w",
                        "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    assert proc.returncode == 0, proc.stdout + proc.stderr + (data / "server.log").read_text(errors="replace")
    try:
        proc = _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "mlflow")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


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
