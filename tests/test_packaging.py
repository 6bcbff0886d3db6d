"""pyproject.toml and environment.yml install the same pins (conda cannot run on the CPU machines,
so this is the only check that the cluster environment stays in step).

Run: `python -m pytest tests/test_packaging.py -q`
"""

from __future__ import annotations

import pytest
import tomllib
import yaml
from helpers import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

PYPROJECT_EXTRAS = ("gpu", "dev")  # the extras environment.yml installs


def load_pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def load_environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def pyproject_requirements(pyproject: dict) -> list[str]:
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    return list(project["dependencies"]) + [req for extra in PYPROJECT_EXTRAS for req in extras[extra]]


def environment_pip(environment: dict) -> list[str]:
    pip_sections = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict) and "pip" in entry]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    return list(pip_sections[0])


def environment_requirements(environment: dict) -> list[str]:
    """The pip section without pip options and local installs (`-e .`)."""
    return [line for line in environment_pip(environment) if not line.startswith("-")]


def normalise(requirement: str) -> tuple:
    """Name (PEP 503), extras, specifier and marker: spelling differences such as lm_eval/lm-eval vanish."""
    parsed = Requirement(requirement)
    return (
        canonicalize_name(parsed.name),
        tuple(sorted(canonicalize_name(extra) for extra in parsed.extras)),
        str(SpecifierSet(str(parsed.specifier))),
        str(parsed.marker or ""),
    )


def requirement_mismatches(left: list[str], right: list[str]) -> tuple[list[str], list[str]]:
    """(in left but not right, in right but not left), compared after normalise()."""
    left_keys = {normalise(req): req for req in left}
    right_keys = {normalise(req): req for req in right}
    return (
        sorted(req for key, req in left_keys.items() if key not in right_keys),
        sorted(req for key, req in right_keys.items() if key not in left_keys),
    )


def test_environment_yml_installs_exactly_the_pyproject_pins():
    only_pyproject, only_environment = requirement_mismatches(
        pyproject_requirements(load_pyproject()), environment_requirements(load_environment())
    )
    assert not only_pyproject, f"in pyproject.toml but not environment.yml: {only_pyproject}"
    assert not only_environment, f"in environment.yml but not pyproject.toml: {only_environment}"


def test_requirement_lists_have_no_duplicates():
    for requirements in (pyproject_requirements(load_pyproject()), environment_requirements(load_environment())):
        names = [normalise(req)[0] for req in requirements]
        assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)


@pytest.mark.parametrize(
    "changed",
    [
        ["torch==2.12.0"],  # different version
        ["lm-eval==0.4.13"],  # extra dropped
        ["torch>=2.13.0"],  # pin loosened
    ],
)
def test_mismatch_detection_catches_drift(changed):
    pyproject = pyproject_requirements(load_pyproject())
    drifted = [req for req in pyproject if normalise(req)[0] != normalise(changed[0])[0]] + changed
    only_pyproject, only_environment = requirement_mismatches(pyproject, drifted)
    assert only_pyproject and only_environment == changed


def test_normalise_ignores_spelling_only():
    assert normalise("LM_Eval[Math]==0.4.13") == normalise("lm-eval[math]==0.4.13")
    assert normalise("math_verify==0.9.0") == normalise("Math-Verify == 0.9.0")
    assert normalise("torch==2.13.0") != normalise("torch==2.13.1")


def test_torch_is_pinned_exactly_everywhere():
    # Without an exact pin a dependency's `torch>=...` pulls a multi-GB CUDA build on CPU machines.
    for requirements in (pyproject_requirements(load_pyproject()), environment_requirements(load_environment())):
        torch_reqs = [Requirement(req) for req in requirements if normalise(req)[0] == "torch"]
        assert len(torch_reqs) == 1
        specifiers = list(torch_reqs[0].specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==" and "*" not in specifiers[0].version


def test_vllm_only_in_gpu_extra():
    project = load_pyproject()["project"]
    names = lambda reqs: {normalise(req)[0] for req in reqs}  # noqa: E731
    assert "vllm" not in names(project["dependencies"])
    assert "vllm" in names(project["optional-dependencies"]["gpu"])
    for extra, requirements in project["optional-dependencies"].items():
        if extra != "gpu":
            assert "vllm" not in names(requirements), extra


def test_environment_python_pip_and_project_install():
    environment = load_environment()
    conda_specs = [entry for entry in environment["dependencies"] if isinstance(entry, str)]
    assert "pip" in conda_specs
    pythons = [spec for spec in conda_specs if spec.startswith("python")]
    assert pythons == ["python=3.11"]
    requires_python = SpecifierSet(load_pyproject()["project"]["requires-python"])
    assert "3.11" in requires_python
    assert "-e ." in environment_pip(environment)


@pytest.mark.parametrize("name,version", [("deepspeed", "0.19.8"), ("snakemake-executor-plugin-slurm", "2.8.0")])
def test_gpu_engines_are_pinned_in_both_files(name, version):
    """DeepSpeed as the GPU check builds it; the SLURM plugin at or after 2.7.1 (before, a gpu=2 job ran as
    two one-GPU tasks: its issue 459), exactly the version the cluster tests run."""
    gpu = load_pyproject()["project"]["optional-dependencies"]["gpu"]
    for source, requirements in (("pyproject.toml [gpu]", gpu),
                                 ("environment.yml", environment_requirements(load_environment()))):
        pins = [Requirement(r) for r in requirements if canonicalize_name(Requirement(r).name) == name]
        assert len(pins) == 1, f"{source}: {name} listed {len(pins)} times"
        assert str(pins[0].specifier) == f"=={version}", f"{source}: {name}{pins[0].specifier}, not =={version}"
    cluster = load_pyproject()["project"]["optional-dependencies"]["cluster"]
    if name.startswith("snakemake"):
        assert f"{name}=={version}" in cluster  # the cluster tests run the pinned plugin
