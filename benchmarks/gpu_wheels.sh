#!/usr/bin/env bash
# Wheels for benchmarks/gpu_check.sh on a GPU machine without network: the packages lens needs that
# such a machine's image lacks (it has torch, transformers 5.17, accelerate 1.15, pandas, pyarrow,
# numpy, sympy, pyyaml, tqdm, psutil, jinja2, xxhash, huggingface-hub, tokenizers, safetensors, and
# DeepSpeed's einops, msgpack, ninja, py-cpuinfo, nvidia-ml-py), pinned to the versions of this
# project's environment, plus DeepSpeed for the check's zero3 phase. mlflow is left out on purpose
# (tens of MB with its dependencies): without it lens.tracking warns once and the runs go on untracked.
#
#   bash benchmarks/gpu_wheels.sh            # -> .whl/ (git-ignored), Python 3.12, manylinux x86_64
#   WHEEL_DIR=dir PYTHON_VERSION=3.11 bash benchmarks/gpu_wheels.sh
#
# What it writes, all of which travels to the GPU machine as `.whl/` (15 wheels, 7.1 MiB; the device
# tool's working tree limit is 64 MiB): the 14 downloaded below, and deepspeed-0.19.8-py3-none-any.whl,
# built here from DeepSpeed's source distribution (PyPI has no wheel of it) with DS_BUILD_OPS=0: pure
# Python, no op compiled ahead. The zero3 phase needs no op (torch's AdamW, as the accelerate config
# names no DeepSpeed optimizer; no offload; no ZeRO++ quantisation); another path would JIT-compile its
# op there with nvcc and ninja. pyproject's `gpu` extra leaves deepspeed unpinned: 0.19.8 is the newest
# release (2026-10). Needs network (pip's index) here.
#
# gpu_check.sh installs them itself (pip --no-index --no-deps --target) when `import trl` (or, on a GPU,
# `import deepspeed`) fails.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
DEST=${WHEEL_DIR:-.whl}
PYVER=${PYTHON_VERSION:-3.12}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# name==version: lens's direct needs (pyproject.toml pins) and their dependencies missing there.
WHEELS=(
    trl==1.16.0
    datasets==5.2.0
    math-verify==0.9.0
    latex2sympy2_extended==1.11.0   # math-verify
    antlr4-python3-runtime==4.11.0  # latex2sympy2_extended (the version lm-eval[math] pins here)
    dill==0.4.1                     # datasets (<0.4.2)
    multiprocess==0.70.19           # datasets (<0.70.20)
    fsspec==2026.9.0                # datasets (<=2026.9.0); shadows the image's copy for these runs
    # deepspeed's Requires-Dist missing from the image (einops, msgpack, ninja, numpy, packaging, psutil,
    # py-cpuinfo, torch, tqdm are there), at this project's environment's versions
    hjson==3.1.0                    # deepspeed
    pydantic==2.14.4                # deepspeed (>=2.0.0)
    pydantic-core==2.50.5           # pydantic (==2.50.5)
    annotated-types==0.8.0          # pydantic (>=0.6.0)
    typing-inspection==0.4.5        # pydantic (>=0.4.4)
    typing-extensions==4.16.0       # pydantic, pydantic-core (>=4.16.0); shadows the image's copy for these runs
)
DEEPSPEED=deepspeed==0.19.8         # sdist only: built below
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$DEST" "${WHEELS[@]}"
# A pure-Python wheel (py3-none-any) from the source distribution; build isolation gives setup.py no
# torch, so it records no torch/CUDA version and DeepSpeed detects both at run time.
DS_BUILD_OPS=0 "$PYTHON" -m pip wheel --quiet --no-deps --no-binary deepspeed -w "$DEST" "$DEEPSPEED"
if ! compgen -G "$DEST/deepspeed-${DEEPSPEED#*==}-py3-none-any.whl" >/dev/null; then
    echo "expected a pure-Python deepspeed-${DEEPSPEED#*==}-py3-none-any.whl in $DEST" >&2; exit 1
fi
n=$(ls "$DEST"/*.whl | wc -l)
if [[ "$n" -ne $(( ${#WHEELS[@]} + 1 )) ]]; then
    echo "expected $(( ${#WHEELS[@]} + 1 )) wheels in $DEST, found $n" >&2; exit 1
fi
ls -l "$DEST"/*.whl | awk '{printf "%8.1f KiB  %s\n", $5/1024, $NF}'
du -ch "$DEST"/*.whl | tail -1
