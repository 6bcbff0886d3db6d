"""Does a training job run under the distributed engine its accelerate config asks for?

    python -m lens.train --config FILE --out DIR --engine-config config/accelerate/zero3.yaml --processes 8

accelerate 1.15 quietly falls back when an engine cannot start: with `--cpu` (or no GPU) it selects
neither DeepSpeed nor FSDP (`commands/launch.py`: `if args.use_deepspeed and not args.cpu`), so a
ZeRO-3 config can train as plain DDP or as one process, and nothing says so. lens.train therefore
compares, once TRL's Trainer has built its Accelerator, what the config asks for (`expected`) with
what the Accelerator runs (`actual`) and stops with an error naming both.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path


def launcher(gpus: int, processes: int, accelerate_config: str) -> str:
    """The command that starts a training job's processes, before `-m lens.train`: `python` for one;
    `accelerate launch` with one process per GPU; on the CPU torch's own launcher, which starts the
    processes over gloo (accelerate's --cpu starts one; `--standalone` picks a free port, so jobs side
    by side do not collide)."""
    if processes <= 1:
        return "python"
    if gpus:
        return f"accelerate launch --num_processes {processes} --config_file {shlex.quote(accelerate_config)}"
    return f"python -m torch.distributed.run --standalone --nproc_per_node {processes}"


def check_args(gpus: int, processes: int, accelerate_config: str) -> str:
    """lens.train's options for the check below: the engine and the process count the job was
    launched for; nothing for one process."""
    if processes <= 1:
        return ""
    if gpus:
        return f"--engine-config {shlex.quote(accelerate_config)} --processes {processes}"
    return f"--processes {processes}"


class EngineError(RuntimeError):
    """The job does not run under the engine its accelerate config names."""


@dataclass(frozen=True)
class Engine:
    kind: str  # accelerate's DistributedType name: DEEPSPEED, FSDP, MULTI_GPU, MULTI_CPU, NO, ...
    processes: int
    zero_stage: int | None = None  # DeepSpeed only
    fsdp_version: int | None = None  # FSDP only

    def describe(self) -> str:
        detail = {"DEEPSPEED": f" ZeRO-{self.zero_stage}", "FSDP": f" (FSDP{self.fsdp_version})"}.get(self.kind, "")
        return f"{self.kind}{detail} on {self.processes} process(es)"


def expected(config_file: str | Path | None, processes: int) -> Engine:
    """The engine an accelerate config file asks for, on `processes` processes (the launcher's
    --num_processes, which overrides the file's num_processes). No file: torchrun on the CPU, which
    accelerate sees as MULTI_CPU (plain DDP over gloo)."""
    import yaml

    if config_file is None:
        return Engine("MULTI_CPU" if processes > 1 else "NO", int(processes))
    path = Path(config_file)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise EngineError(f"accelerate config {path}: cannot read it ({err})") from None
    kind = str(raw.get("distributed_type", "NO")).upper()
    zero = (raw.get("deepspeed_config") or {}).get("zero_stage") if kind == "DEEPSPEED" else None
    version = (raw.get("fsdp_config") or {}).get("fsdp_version", 1) if kind == "FSDP" else None
    return Engine(kind, int(processes), int(zero) if zero is not None else None,
                  int(version) if version is not None else None)


def actual(state) -> Engine:
    """The engine an accelerate AcceleratorState (e.g. `trainer.accelerator.state`) runs."""
    kind = getattr(state.distributed_type, "name", str(state.distributed_type))
    deepspeed = getattr(state, "deepspeed_plugin", None)
    fsdp = getattr(state, "fsdp_plugin", None)
    return Engine(kind, int(state.num_processes),
                  int(deepspeed.zero_stage) if kind == "DEEPSPEED" and deepspeed is not None else None,
                  int(getattr(fsdp, "fsdp_version", 1)) if kind == "FSDP" and fsdp is not None else None)


def check(want: Engine, got: Engine, config_file: str | Path | None) -> None:
    """EngineError naming both engines unless `got` is `want` (kind, processes, ZeRO stage, FSDP version)."""
    if want != got and config_file is None:
        raise EngineError(f"the job was launched for {want.describe()} (--processes {want.processes}, torchrun on "
                          f"the CPU), but it runs {got.describe()}")
    if want != got:
        raise EngineError(f"{config_file} asks for {want.describe()}, but this job runs {got.describe()}: "
                          "start it with `accelerate launch --config_file` on machines where that engine "
                          "runs (DeepSpeed and FSDP need GPUs; on a CPU accelerate silently falls back)")
