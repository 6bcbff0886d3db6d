"""The GPUs a job owns on one machine: CUDA_VISIBLE_DEVICES from one lock per device.

    python -m lens.devices --gpus G -- COMMAND [ARG ...]

Snakemake's `--resources gpu=N` only counts GPUs: it runs jobs side by side while their asks fit,
but assigns no device, so every job would open cuda:0 (and each vLLM engine asks for most of that
one device's memory). This wrapper takes G devices of this machine that no other running job holds,
exports them as CUDA_VISIBLE_DEVICES and runs COMMAND with them; the wrapper and COMMAND's process
hold an flock on one file per device, which the kernel drops when the last process holding it ends,
however it ends (SIGKILL included): a killed job frees its devices, and nothing is left to clean up.
docs/design.md says why this is written here: Snakemake has no device assignment for local jobs.

- G = 0: CUDA_VISIBLE_DEVICES="" (a CPU job sees no GPU) and no lock.
- Under SLURM (SLURM_JOB_ID set) the job's devices are SLURM's: GRES exports CUDA_VISIBLE_DEVICES
  for the job, and COMMAND runs as it is.
- This machine's devices: LENS_DEVICES (comma-separated ids: a subset, or stand-ins in tests), else
  an inherited CUDA_VISIBLE_DEVICES (the devices Snakemake itself was given), else one per entry of
  /proc/driver/nvidia/gpus (0 .. n-1). Locks live in LENS_DEVICE_LOCKS (default a folder under the
  system's temporary directory), one folder for every workflow on the machine.
- A job that asks for more devices than the machine has stops at once (exit 2); one whose devices
  are all held waits for them (Snakemake's --resources keeps that from happening when N is at most
  the machine's count).

Every job's log gets a line when it takes its devices and one when it gives them back.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEVICES_ENV = "LENS_DEVICES"
LOCKS_ENV = "LENS_DEVICE_LOCKS"
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
POLL_S = 2.0


class DeviceError(RuntimeError):
    """The job cannot be given the devices it asks for."""


def machine_devices(environ=os.environ, nvidia_dir: Path = NVIDIA_GPUS) -> list[str]:
    """The device ids jobs on this machine share (see the module docstring for the order)."""
    for name in (DEVICES_ENV, "CUDA_VISIBLE_DEVICES"):
        value = environ.get(name)
        if value is not None and value.strip():
            return [d.strip() for d in value.split(",") if d.strip()]
    if nvidia_dir.is_dir():
        return [str(i) for i in range(sum(1 for _ in nvidia_dir.iterdir()))]
    if shutil.which("nvidia-smi"):  # drivers that do not expose /proc/driver/nvidia
        try:
            listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i in range(sum(line.startswith("GPU ") for line in listing.splitlines()))]
    return []


def workflow_gpus(given: int | None, asks: list[int], devices: list[str]) -> int:
    """The GPU count a local Snakemake run schedules with: `given` (--resources gpu=N) or, without it,
    this machine's; DeviceError where the jobs' `asks` cannot run here (named flag and counts)."""
    needed = max(asks, default=0)
    if needed == 0:
        return given if given is not None else len(devices)
    count = f"{len(devices)} ({','.join(devices)})" if devices else "none"
    if not devices:
        raise DeviceError(f"{sum(a > 0 for a in asks)} job(s) ask for GPUs (up to {needed} each) but this machine "
                          f"shows none ({NVIDIA_GPUS} and nvidia-smi find no GPU, {DEVICES_ENV} is unset): run on a "
                          f"GPU machine with --resources gpu=N, or under SLURM (--profile profiles/slurm)")
    if given is not None and given > len(devices):
        raise DeviceError(f"--resources gpu={given} but this machine has {count} GPU(s): jobs would wait for "
                          f"devices that do not exist; give --resources gpu={len(devices)}")
    usable = given if given is not None else len(devices)
    if needed > usable:
        raise DeviceError(f"a job asks for {needed} GPUs but --resources gpu={usable} (this machine has {count}): "
                          "it would never start")
    return usable


def lock_dir(environ=os.environ) -> Path:
    path = Path(environ.get(LOCKS_ENV) or Path(tempfile.gettempdir()) / "lens-devices")
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        # Every user's jobs on a shared node lock the same files (the umask would keep others out).
        path.chmod(0o1777)
    return path


@dataclass
class Held:
    """Devices taken by `acquire`; the locks last while any process holding `fds` lives."""

    devices: list[str]
    fds: list[int]

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def try_acquire(gpus: int, devices: list[str], locks: Path) -> Held | None:
    """`gpus` of `devices` that nobody holds, locked now, or None (nothing kept locked then)."""
    taken: list[str] = []
    fds: list[int] = []
    for device in devices:
        if len(taken) == gpus:
            break
        fd = os.open(locks / f"gpu-{device}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.fchmod(fd, 0o666)  # past the umask; a file another user made is left as it is
        except PermissionError:
            pass
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        taken.append(device)
        fds.append(fd)
    held = Held(taken, fds)
    if len(taken) < gpus:
        held.release()
        return None
    return held


def acquire(gpus: int, devices: list[str], locks: Path, *, poll_s: float = POLL_S, log=None) -> Held:
    """`gpus` devices nobody else holds, waiting while they are all taken; DeviceError if the machine
    has fewer than `gpus`."""
    if gpus > len(devices):
        have = f"{len(devices)} ({','.join(devices)})" if devices else "none"
        raise DeviceError(f"the job asks for {gpus} GPU(s) but this machine has {have}: give Snakemake at most the "
                          f"machine's count with --resources gpu=N (or set {DEVICES_ENV} to the device ids to use)")
    waiting = False
    while True:
        held = try_acquire(gpus, devices, locks)
        if held is not None:
            return held
        if not waiting and log is not None:
            log(f"waiting for {gpus} free GPU(s) of {','.join(devices)} (all held by other jobs)")
            waiting = True
        time.sleep(poll_s)


def run(gpus: int, command: list[str], environ=None, *, log=None) -> int:
    """Run `command` with `gpus` devices of its own (module docstring); its exit code."""
    environ = dict(os.environ if environ is None else environ)
    log = log or (lambda msg: print(f"lens.devices: {msg}", file=sys.stderr, flush=True))
    if gpus < 0:
        raise DeviceError(f"--gpus must be >= 0, got {gpus}")
    held = None
    slurm = environ.get("SLURM_JOB_ID")
    if slurm:
        log(f"SLURM job {slurm} on {environ.get('SLURMD_NODENAME', '?')}: its devices are SLURM's (GRES)")
    elif gpus == 0:
        environ["CUDA_VISIBLE_DEVICES"] = ""
    else:
        held = acquire(gpus, machine_devices(environ), lock_dir(environ), log=log)
        environ["CUDA_VISIBLE_DEVICES"] = ",".join(held.devices)
    if gpus:
        log(f"pid {os.getpid()} holds CUDA_VISIBLE_DEVICES={environ.get('CUDA_VISIBLE_DEVICES', '')} "
            f"at {time.time():.3f}")
    try:
        # pass_fds: the command holds the locks too, so a killed wrapper does not free devices still in use.
        child = subprocess.Popen(command, env=environ, pass_fds=held.fds if held else ())
    except OSError as err:
        if held:
            held.release()
        raise DeviceError(f"cannot run {command[0]!r}: {err}") from None

    def forward(signum, _frame):
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    code = child.wait()
    if held:
        held.release()
    if gpus:
        log(f"pid {os.getpid()} released CUDA_VISIBLE_DEVICES={environ.get('CUDA_VISIBLE_DEVICES', '')} "
            f"at {time.time():.3f}")
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lens.devices", description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, required=True, help="devices the command gets (the rule's gpu resource)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run (python -m lens.devices --gpus G -- COMMAND ...)")
    try:
        return run(args.gpus, command)
    except DeviceError as err:
        print(f"lens.devices: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
