#!/usr/bin/env bash
# Wheels for benchmarks/gpu_check.sh on a GPU machine without network: the packages lens needs that
# such a machine's image lacks (it has torch, transformers 5.17, accelerate 1.15, pandas, pyarrow,
# numpy, sympy, pyyaml, tqdm, psutil, jinja2, xxhash, huggingface-hub, tokenizers, safetensors),
# pinned to the versions of this project's environment. mlflow is left out on purpose (tens of MB
# with its dependencies): without it lens.tracking warns once and the runs go on untracked.
#
#   bash benchmarks/gpu_wheels.sh            # -> .whl/ (git-ignored), Python 3.12, manylinux x86_64
#   WHEEL_DIR=dir PYTHON_VERSION=3.11 bash benchmarks/gpu_wheels.sh
#
# gpu_check.sh installs them itself (pip --no-index --no-deps --target) when `import trl` fails.
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
)
mkdir -p "$DEST"
rm -f "$DEST"/*.whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$DEST" "${WHEELS[@]}"
n=$(ls "$DEST"/*.whl | wc -l)
if [[ "$n" -ne "${#WHEELS[@]}" ]]; then
    echo "expected ${#WHEELS[@]} wheels in $DEST, found $n" >&2; exit 1
fi
ls -l "$DEST"/*.whl | awk '{printf "%8.1f KiB  %s\n", $5/1024, $NF}'
du -ch "$DEST"/*.whl | tail -1
