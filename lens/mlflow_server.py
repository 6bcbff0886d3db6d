"""The MLflow tracking server's lifecycle: `mlflow server` started for a workflow's duration and stopped.

Tracking-server mode (`tracking.uri: http://HOST:PORT` with `tracking.server_store`): the workflow
runs `mlflow server` on the submitting host while it runs (Snakefile onstart/onsuccess/onerror:
`start_workflow_server` / `stop_workflow_server`); jobs on any node log to it over HTTP
(lens.tracking), and only the server touches the store. MLflow has no command that starts a
server in the background and stops it later: this module keeps its pid and log in a state folder,
returns once the server answers, and stops its whole process group.

    python -m lens.mlflow_server start|stop --uri http://HOST:PORT --store STORE --artifacts DIR --state-dir DIR

starts `mlflow server` (returns once it answers) or stops the one started with that state dir.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

log = logging.getLogger(__name__)

SERVER_PID_FILE = "server.pid"
SERVER_LOG_FILE = "server.log"


def answers(uri: str, timeout: float = 15.0) -> bool:
    """True if an MLflow server answers GET {uri}/health. A closed port fails at once; the generous timeout is
    for a server that is up but busy (a second worker still importing mlflow on a loaded 2-core machine kept
    /health waiting past 2 s, and a caller that took that for "no server" would start a second one)."""
    from urllib.request import urlopen

    try:
        with urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def server_command(uri: str, store: str, artifacts: str | Path, workers: int | None = None) -> list[str]:
    """`mlflow server` bound to the host and port of `uri`; one worker on a SQLite store (one writer)."""
    parsed = urlparse(uri)
    if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
        raise ValueError(f"tracking-server mode needs tracking.uri http://HOST:PORT, got {uri!r}")
    if workers is None:
        workers = 1 if store.startswith("sqlite:") else min(4, os.cpu_count() or 1)
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
            "--artifacts-destination", str(Path(artifacts).resolve()), "--serve-artifacts",
            "--host", parsed.hostname, "--port", str(parsed.port), "--workers", str(workers)]


def start_server(uri: str, store: str, artifacts: str | Path, state_dir: str | Path, *,
                 workers: int | None = None, timeout_s: float = 180.0) -> int | None:
    """Start `mlflow server` for `uri` and return its pid once it answers; None if one already answers
    there (it is used as it is). The pid and log live in `state_dir`."""
    state_dir = Path(state_dir)
    cmd = server_command(uri, store, artifacts, workers)
    if answers(uri):
        log.info("an MLflow server already answers at %s: using it", uri)
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    Path(artifacts).mkdir(parents=True, exist_ok=True)
    if store.startswith("sqlite:///"):
        Path(store[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / SERVER_LOG_FILE
    with log_path.open("ab") as log_file:
        # Its own session: a Ctrl-C at the terminal reaches Snakemake, which then stops the server.
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    (state_dir / SERVER_PID_FILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (state_dir / SERVER_PID_FILE).unlink(missing_ok=True)
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"mlflow server exited with code {proc.returncode} (log {log_path}):\n{tail}")
        if answers(uri):
            log.info("MLflow server up at %s (pid %d, store %s, artifacts %s)", uri, proc.pid, store, artifacts)
            return proc.pid
        time.sleep(0.5)
    stop_server(state_dir)
    raise RuntimeError(f"mlflow server did not answer at {uri} within {timeout_s:.0f} s (log {log_path})")


def stop_server(state_dir: str | Path, timeout_s: float = 30.0) -> bool:
    """Stop the server started with this state dir (its whole process group); False if none was running."""
    import signal

    pid_file = Path(state_dir) / SERVER_PID_FILE
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().strip())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        try:  # reap it when it is our child (started in this process)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    log.info("MLflow server (pid %d) stopped", pid)
    return True


def workflow_server_state_dir(results_dir: str | Path) -> Path:
    """Where the workflow's server keeps its pid file and log (on the submitting host)."""
    return Path(results_dir) / "logs" / "mlflow-server"


def start_workflow_server(uri: str, store: str, results_dir: str | Path) -> int | None:
    """The workflow's onstart in tracking-server mode: `mlflow server` at `uri` on `store`, artifacts in
    RESULTS/mlartifacts, stopped at exit however Snakemake ends; a server already answering is used
    as it is. A server that does not start is reported, not raised: files stay the record."""
    try:
        pid = start_server(uri, store, Path(results_dir) / "mlartifacts", workflow_server_state_dir(results_dir))
    except (RuntimeError, ValueError) as err:
        print(f"MLflow tracking server not started: {err}", file=sys.stderr)
        return None
    if pid is not None:
        print(f"MLflow tracking server at {uri} (pid {pid}, store {store})")
        import atexit

        atexit.register(stop_workflow_server, uri, results_dir)  # also after an exception or Ctrl-C
    return pid


def stop_workflow_server(uri: str, results_dir: str | Path) -> None:
    """The workflow's onsuccess/onerror: stop the server `start_workflow_server` started (if any)."""
    if stop_server(workflow_server_state_dir(results_dir)):
        print(f"MLflow tracking server at {uri} stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lens.mlflow_server", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--state-dir", required=True, type=Path, help="holds the server's pid file and log")
    parser.add_argument("--uri", help="http://HOST:PORT the server listens on (start)")
    parser.add_argument("--store", help="backend store URI: sqlite:///PATH or postgresql://... (start)")
    parser.add_argument("--artifacts", type=Path, help="artifact root on this host's disk (start)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.action == "stop":
        print("stopped" if stop_server(args.state_dir) else "no server was running")
        return 0
    if not (args.uri and args.store and args.artifacts):
        parser.error("start needs --uri, --store and --artifacts")
    try:
        pid = start_server(args.uri, args.store, args.artifacts, args.state_dir, workers=args.workers)
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"MLflow server at {args.uri}" + (f" (pid {pid})" if pid else " (already running)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
