"""lens.engine: a training job stops when it does not run the engine its accelerate config names."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
from helpers import REPO, tiny_cfg, tiny_run

from lens import engine

ACCELERATE = REPO / "config" / "accelerate"


def _state(kind: str, processes: int, zero: int | None = None, fsdp: int | None = None):
    return SimpleNamespace(distributed_type=SimpleNamespace(name=kind), num_processes=processes,
                           deepspeed_plugin=SimpleNamespace(zero_stage=zero) if zero is not None else None,
                           fsdp_plugin=SimpleNamespace(fsdp_version=fsdp) if fsdp is not None else None)


def test_expected_engines_of_the_shipped_configs():
    assert engine.expected(ACCELERATE / "zero3.yaml", 8) == engine.Engine("DEEPSPEED", 8, zero_stage=3)
    assert engine.expected(ACCELERATE / "fsdp2.yaml", 8) == engine.Engine("FSDP", 8, fsdp_version=2)
    assert engine.expected(ACCELERATE / "zero3_multinode.yaml", 16) == engine.Engine("DEEPSPEED", 16, zero_stage=3)


@pytest.mark.parametrize("state,ok", [
    (_state("DEEPSPEED", 8, zero=3), True),
    (_state("DEEPSPEED", 8, zero=2), False),  # another ZeRO stage
    (_state("MULTI_GPU", 8), False),  # DDP: DeepSpeed did not start
    (_state("DEEPSPEED", 4, zero=3), False),  # fewer processes
    (_state("NO", 1), False),  # one plain process
])
def test_check_against_zero3(state, ok):
    want = engine.expected(ACCELERATE / "zero3.yaml", 8)
    if ok:
        engine.check(want, engine.actual(state), "zero3.yaml")
    else:
        with pytest.raises(engine.EngineError, match=r"zero3.yaml asks for DEEPSPEED ZeRO-3 on 8 process\(es\), but "
                                                     r"this job runs"):
            engine.check(want, engine.actual(state), "zero3.yaml")


def test_check_against_fsdp2():
    want = engine.expected(ACCELERATE / "fsdp2.yaml", 8)
    engine.check(want, engine.actual(_state("FSDP", 8, fsdp=2)), "fsdp2.yaml")
    with pytest.raises(engine.EngineError, match=r"FSDP \(FSDP2\) on 8 .* runs FSDP \(FSDP1\) on 8"):
        engine.check(want, engine.actual(_state("FSDP", 8, fsdp=1)), "fsdp2.yaml")


def test_cpu_processes_without_a_config_are_plain_ddp():
    # torchrun on the CPU (models.<id>.processes with gpus 0): accelerate sees MULTI_CPU on that many
    want = engine.expected(None, 2)
    assert want == engine.Engine("MULTI_CPU", 2) and engine.expected(None, 1) == engine.Engine("NO", 1)
    engine.check(want, engine.actual(_state("MULTI_CPU", 2)), None)
    with pytest.raises(engine.EngineError, match=r"launched for MULTI_CPU on 3 process\(es\) \(--processes 3, "
                       r"torchrun on the CPU\), but it runs MULTI_CPU on 2 process\(es\)"):
        engine.check(engine.expected(None, 3), engine.actual(_state("MULTI_CPU", 2)), None)


def test_unreadable_config_is_an_engine_error(tmp_path):
    with pytest.raises(engine.EngineError, match="cannot read it"):
        engine.expected(tmp_path / "missing.yaml", 8)


@pytest.mark.slow
def test_a_zero3_job_on_a_cpu_stops_before_training(tmp_path, tmp_path_factory):
    """The real CLI: a job launched for ZeRO-3 on 8 processes that runs as one CPU process stops with
    both engines named, before its first step, and its MLflow run is marked FAILED."""
    pytest.importorskip("lens.data")
    from mlflow.tracking import MlflowClient

    run = tiny_run(tmp_path, tmp_path_factory, tiny_cfg(tmp_path, rollout_steps=2, save_every=2))
    results, run_dir = run.results, run.run_dir
    proc = subprocess.run([*run.python(), "--engine-config", str(ACCELERATE / "zero3.yaml"), "--processes", "8"],
                          cwd=REPO, env=run.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "engine error:" in proc.stderr
    assert "asks for DEEPSPEED ZeRO-3 on 8 process(es), but this job runs NO on 1 process(es)" in proc.stderr
    assert not (run_dir / "done").exists() and not list((run_dir / "checkpoints").glob("checkpoint-[1-9]*"))
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    assert MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow.db'}").get_run(run_id).info.status == "FAILED"
