"""lens.devices: the GPUs a job owns on one machine, with stand-in device ids (no GPU here): disjoint
devices, a killed job frees its own, SLURM's jobs untouched. The workflow's jobs under it: tests/test_workflow.py."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

from lens.devices import DeviceError, acquire, machine_devices, try_acquire, workflow_gpus


def _wrapped(gpus: int, command: list[str], locks: Path, ids: str = "0,1,2", **env) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    environ.update({"LENS_DEVICES": ids, "LENS_DEVICE_LOCKS": str(locks), **env})
    return subprocess.Popen([sys.executable, "-m", "lens.devices", "--gpus", str(gpus), "--", *command], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def _wait_held(locks: Path, ids: list[str], count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = try_acquire(len(ids) - count + 1, ids, locks)
        if probe is None:
            return
        probe.release()
        time.sleep(0.05)
    raise AssertionError(f"{count} device(s) were never held")


def test_machine_devices_order(tmp_path):
    gpus = tmp_path / "gpus"
    (gpus / "0000:01:00.0").mkdir(parents=True)
    (gpus / "0000:02:00.0").mkdir()
    assert machine_devices({}, gpus) == ["0", "1"]
    assert machine_devices({"CUDA_VISIBLE_DEVICES": "4,5"}, gpus) == ["4", "5"]  # Snakemake's own share of the node
    assert machine_devices({"LENS_DEVICES": "7", "CUDA_VISIBLE_DEVICES": "4,5"}, gpus) == ["7"]
    if not shutil.which("nvidia-smi"):
        assert machine_devices({"CUDA_VISIBLE_DEVICES": ""}, tmp_path / "none") == []


def test_lock_folder_and_files_are_open_to_every_users_jobs(tmp_path):
    from lens.devices import lock_dir

    locks = lock_dir({"LENS_DEVICE_LOCKS": str(tmp_path / "locks")})
    assert locks.stat().st_mode & 0o7777 == 0o1777
    acquire(1, ["0"], locks).release()
    assert (locks / "gpu-0.lock").stat().st_mode & 0o777 == 0o666


def test_acquire_takes_free_devices_and_refuses_more_than_exist(tmp_path):
    ids = ["0", "1", "2"]
    first = acquire(2, ids, tmp_path)
    assert first.devices == ["0", "1"]
    assert try_acquire(2, ids, tmp_path) is None  # only one left: nothing is taken, nothing kept locked
    second = acquire(1, ids, tmp_path)
    assert second.devices == ["2"]
    first.release()
    third = acquire(2, ids, tmp_path)
    assert third.devices == ["0", "1"]
    with pytest.raises(DeviceError, match="asks for 4 GPU.*has 3.*--resources gpu=N"):
        acquire(4, ids, tmp_path)
    with pytest.raises(DeviceError, match="has none"):
        acquire(1, [], tmp_path)


def test_a_job_sees_its_devices_and_a_cpu_job_none(tmp_path):
    show = [sys.executable, "-c", "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"]
    out = _wrapped(2, show, tmp_path).communicate(timeout=60)
    assert out[0].strip() == "'0,1'" and "holds CUDA_VISIBLE_DEVICES=0,1" in out[1] and "released" in out[1]
    assert _wrapped(0, show, tmp_path).communicate(timeout=60)[0].strip() == "''"
    # Under SLURM the job's devices are SLURM's (GRES): nothing is taken or changed.
    slurm = _wrapped(1, show, tmp_path, SLURM_JOB_ID="42", CUDA_VISIBLE_DEVICES="3").communicate(timeout=60)
    assert slurm[0].strip() == "'3'" and "SLURM job 42" in slurm[1] and "holds CUDA_VISIBLE_DEVICES=3" in slurm[1]
    # More than the machine has: a clear error, exit 2, the command never runs.
    proc = _wrapped(4, show, tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == "" and "--resources gpu=N" in err


def test_exit_codes_pass_through(tmp_path):
    proc = _wrapped(1, [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)
    proc.communicate(timeout=60)
    assert proc.returncode == 3


def test_a_killed_job_frees_its_devices_and_waiting_jobs_take_them(tmp_path):
    ids = ["0", "1", "2"]
    holder = _wrapped(2, [sys.executable, "-c", "import time; time.sleep(120)"], tmp_path)
    _wait_held(tmp_path, ids, 2)
    assert try_acquire(2, ids, tmp_path) is None
    # A second job asking for 2 waits for them...
    waiter = _wrapped(2, [sys.executable, "-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"], tmp_path)
    time.sleep(1.5)
    assert waiter.poll() is None
    # ... and starts once the first is killed (SIGKILL to the wrapper and its command: nothing cleans up).
    child = subprocess.run(["pgrep", "-P", str(holder.pid)], capture_output=True, text=True).stdout.split()
    os.kill(holder.pid, signal.SIGKILL)
    time.sleep(0.5)
    assert try_acquire(3, ids, tmp_path) is None  # its command still runs: the devices stay held
    for pid in child:
        os.kill(int(pid), signal.SIGKILL)
    holder.wait(timeout=30)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0 and out.strip() in {"0,1", "0,2", "1,2"} and "waiting for 2 free GPU(s)" in err


def test_sigterm_reaches_the_command(tmp_path):
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGTERM, lambda *a: (print('terminated', flush=True), sys.exit(5)))\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = _wrapped(1, [sys.executable, "-c", script], tmp_path)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "terminated" in out and proc.returncode == 5
    acquire(3, ["0", "1", "2"], tmp_path).release()  # everything free again


def test_workflow_gpus_names_the_flag_or_takes_the_machines_count():
    assert workflow_gpus(None, [0, 0], []) == 0  # no GPU job: nothing to check
    assert workflow_gpus(None, [8, 1, 1], [str(i) for i in range(8)]) == 8  # the machine's count
    assert workflow_gpus(4, [1, 1], ["0", "1", "2", "3", "4"]) == 4
    with pytest.raises(DeviceError, match="ask for GPUs.*shows none.*--resources gpu=N"):
        workflow_gpus(None, [8], [])
    with pytest.raises(DeviceError, match="--resources gpu=16 but this machine has 8"):
        workflow_gpus(16, [8], [str(i) for i in range(8)])
    with pytest.raises(DeviceError, match="asks for 8 GPUs but --resources gpu=4"):
        workflow_gpus(4, [8], [str(i) for i in range(8)])
