"""Real engines for the `cluster` tests (`make test-cluster`): a single-node SLURM cluster, a PostgreSQL
server and free ports. Nothing here skips: a missing package is an error, so a pass means it all ran.

Needs root and the Debian packages slurmctld, slurmd, slurm-client, munge, postgresql and chromium
(.ci/run installs them), and the `cluster` extra (snakemake-executor-plugin-slurm, psycopg2-binary).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import free_port

CLUSTER_SCRIPT = Path(__file__).resolve().parent / "slurm_cluster.sh"
PG_BIN = Path("/usr/lib/postgresql/15/bin")


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




@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """`make test-cluster` passes with nothing skipped: a skipped cluster test is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, but every cluster test must run: {report.longrepr}"
