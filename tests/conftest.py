"""Shared test settings: nothing reaches the network, and tests run on the CPU. What test modules share
beside fixtures (paths, data writers, subprocess runners) is in helpers.py."""

import os

import pytest
from helpers import OFFLINE, write_known_tidy  # helpers imports nothing that reads these variables

# The one place the offline environment is set: here, before any test module imports transformers, datasets
# or huggingface_hub (each hub miss would otherwise wait ~34 s); subprocesses inherit it (helpers.subprocess_env).
for _var, _value in OFFLINE.items():
    os.environ.setdefault(_var, _value)
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def known_tidy(tmp_path_factory):
    """The tidy tables of the hand-chosen result set (helpers.write_known_tidy), built once; tests only read it."""
    return write_known_tidy(tmp_path_factory.mktemp("known"))
