#!/usr/bin/env bash
# GPU check: lens.train for GRPO and for LENS on a randomly initialised model of Qwen2.5-3B's exact
# architecture (bf16 autocast, gradient checkpointing, transformers rollouts, gradient accumulation),
# then lens.evaluate on CUDA on LENS's final checkpoint. Prints seconds per rollout step per
# algorithm, the LENS/GRPO ratio and peak GPU memory. Before them (what no other machine can run comes
# first): the determinism phase, one seed trained twice (GRPO, 2 rollout steps, the 0.2 B model), which
# reports whether the two runs sampled the same rollouts, and vLLM's KV cache where vLLM is installed;
# and, right after prepare, the zero3 phase: the multi-GPU recipe's
# `accelerate launch --config_file config/accelerate/zero3.yaml -m lens.train ... --engine-config
# config/accelerate/zero3.yaml` on one process (DeepSpeed ZeRO-3) for a random 0.2 B Qwen2: 2 rollout
# steps ending at a checkpoint with 16-bit weights (model.safetensors) and ZeRO state, the same
# command resumed from it to a 3rd step (`resumed_from` 4), lens.evaluate on CUDA from the resumed
# run's final checkpoint (benchmarks/gpu_check.py, cmd_zero3). No network; estimated 6-7 minutes on
# one H100/H200 (not yet run on a GPU); each phase has its
# own time limit, and all of them together at most 8 minutes (GPU_CHECK_TIMEOUT_TOTAL).
#
#   bash benchmarks/gpu_check.sh                      # on the GPU machine (from the repo root)
#   GPU_CHECK_SMALL=1 bash benchmarks/gpu_check.sh    # same code path, tiny Qwen2, on a CPU (~1-2 min)
#
# The small mode cannot exercise ZeRO-3 (accelerate drops DeepSpeed on a CPU): its zero3 phase runs
# the same launch (with --cpu, as DeepSpeed need not be installed there) and passes only if lens.train's
# engine check stops the job with exit code 2 and a message naming both engines.
#
# What has to be carried to the GPU machine (it has torch, transformers, accelerate, but no network and
# none of trl, datasets, math-verify, deepspeed): the repository's working tree and `.whl/`, the wheels
# that `bash benchmarks/gpu_wheels.sh` writes here (git-ignored; 15 wheels, 7.1 MiB: trl, datasets,
# math-verify, deepspeed 0.19.8 built here as a pure-Python wheel, and their missing dependencies; with
# the device tool: carry [".whl"]). If `import trl, datasets, math_verify` (full mode: and deepspeed)
# fails, this script installs them from there into $GPU_CHECK_SITE without any index. No DeepSpeed op is
# compiled: the run uses torch's AdamW (no optimizer in the DeepSpeed config), no offload, no ZeRO++.
# mlflow is not needed: without it lens.tracking warns once and the runs go on untracked.
#
# Environment: GPU_CHECK_SMALL=1 (tiny mode), GPU_CHECK_WHEELS (default .whl), GPU_CHECK_DIR (work
# directory, emptied first; default: lens-gpu-check under the first of /tmp, /var/tmp, the repo's
# parent, /dev/shm with 48 GiB free, else the roomiest; below 48 GiB the final checkpoints leave out
# the optimizer state, GPU_CHECK_LIGHT_CHECKPOINT=1), OUT (if set: gpu_check.{json,txt,log} are
# written there), PYTHON (default .venv/bin/python if present, else python3),
# GPU_CHECK_TIMEOUT_{PREPARE,ZERO3,DETERMINISM,TRAIN,EVAL} (seconds per phase), GPU_CHECK_TIMEOUT_TOTAL (seconds
# for all phases together: a phase's limit is cut to what is left of it).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SMALL=${GPU_CHECK_SMALL:-0}
NEED_GIB=48        # full mode: the bf16 model (6 GB) and one final checkpoint (fp32 weights + AdamW state, 37 GB)
NEED_LIGHT_GIB=22  # the same with a model-only final checkpoint (12 GB), GPU_CHECK_LIGHT_CHECKPOINT=1
free_gib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 {print int($4 / 1048576)}'; }
if [[ "$SMALL" == 1 ]]; then
    WORK=${GPU_CHECK_DIR:-/tmp/lens-gpu-check-small}
    PREPARE_FLAGS=(--small)
    T_PREPARE=${GPU_CHECK_TIMEOUT_PREPARE:-120}; T_TRAIN=${GPU_CHECK_TIMEOUT_TRAIN:-180}; T_EVAL=${GPU_CHECK_TIMEOUT_EVAL:-120}
    T_ZERO3=${GPU_CHECK_TIMEOUT_ZERO3:-120}; T_DETERMINISM=${GPU_CHECK_TIMEOUT_DETERMINISM:-180}
    T_TOTAL=${GPU_CHECK_TIMEOUT_TOTAL:-900}
    NEED_MODULES='"trl", "datasets", "math_verify"'
else
    if [[ -z "${GPU_CHECK_DIR:-}" ]]; then
        # the first of these with room for the full checkpoints, else the roomiest
        best=/tmp best_free=-1
        for d in /tmp /var/tmp "$(dirname "$REPO")" /dev/shm; do
            f=$(free_gib "$d"); [[ -n "$f" && -w "$d" ]] || continue
            if (( f >= NEED_GIB )); then best=$d; break; fi
            if (( f > best_free )); then best=$d best_free=$f; fi
        done
        GPU_CHECK_DIR=$best/lens-gpu-check
    fi
    WORK=$GPU_CHECK_DIR
    PREPARE_FLAGS=()
    # expected (H200, estimates: never run): prepare ~35 s, zero3 ~1.5-2 min (three processes at ~20 s of start-up
    # each, 2 + 1 rollout steps, two ~3 GB checkpoints), determinism ~1 min (two 2-step runs of the 0.2 B model),
    # each training ~1.5 min (the final checkpoint's optimizer state is pruned once written), evaluate ~30 s.
    # The limits add up to the total cap (phase() also cuts a limit to what is left of it).
    T_PREPARE=${GPU_CHECK_TIMEOUT_PREPARE:-50}; T_ZERO3=${GPU_CHECK_TIMEOUT_ZERO3:-130}
    T_DETERMINISM=${GPU_CHECK_TIMEOUT_DETERMINISM:-70}; T_TRAIN=${GPU_CHECK_TIMEOUT_TRAIN:-95}
    T_EVAL=${GPU_CHECK_TIMEOUT_EVAL:-40}; T_TOTAL=${GPU_CHECK_TIMEOUT_TOTAL:-480}
    NEED_MODULES='"trl", "datasets", "math_verify", "deepspeed"'
fi
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export TOKENIZERS_PARALLELISM=false MLFLOW_ENABLE_ASYNC_LOGGING=false
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"   # lens/ and analysis/ need no install

rm -rf "$WORK"
mkdir -p "$WORK"
LOGS=("$WORK/gpu_check.log")
if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT"; LOGS+=("$OUT/gpu_check.log"); fi
exec > >(tee -a "${LOGS[@]}") 2>&1
echo "== LENS GPU check: mode $([[ "$SMALL" == 1 ]] && echo small || echo full), work dir $WORK, $(date -u +%FT%TZ)"

# Carried wheels, only if the packages are missing.
WHEELS=${GPU_CHECK_WHEELS:-.whl}
MISSING="import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ($NEED_MODULES,)))"
if ! "$PYTHON" -c "$MISSING"; then
    if ! compgen -G "$WHEELS/*.whl" >/dev/null; then
        echo "one of ${NEED_MODULES//\"/} is missing and no wheels in $WHEELS/ (run benchmarks/gpu_wheels.sh)"; exit 3
    fi
    SITE=${GPU_CHECK_SITE:-/tmp/lens-site}
    echo "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS/ into $SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$REPO:$SITE${PYTHONPATH#"$REPO"}"
fi
"$PYTHON" - <<'EOF'
import importlib.metadata as md, platform
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "absent"
print(f"python {platform.python_version()} | " + " | ".join(
    f"{m} {version(m)}" for m in ("torch", "transformers", "accelerate", "trl", "datasets", "math-verify",
                                  "tokenizers", "pandas", "pyarrow", "fsspec", "deepspeed", "pydantic")))
EOF
if [[ "$SMALL" != 1 ]]; then
    free=$(free_gib "$WORK")
    echo "free space under $WORK: ${free} GiB"
    if (( free < NEED_GIB )); then
        if (( free < NEED_LIGHT_GIB )); then
            echo "needs ~${NEED_GIB} GiB free (${NEED_LIGHT_GIB} at least) under the work directory: set GPU_CHECK_DIR"; exit 3
        fi
        echo "!! less than ${NEED_GIB} GiB: final checkpoints without optimizer state (GPU_CHECK_LIGHT_CHECKPOINT=1)"
        export GPU_CHECK_LIGHT_CHECKPOINT=1
    fi
fi

declare -A PHASE_S
CHECK_START=$SECONDS
phase() {  # phase NAME TIMEOUT CMD...: run with a time limit, record its wall time, stop the check on failure
    local name=$1 limit=$2; shift 2
    local start=$SECONDS rc=0 left=$((T_TOTAL - (SECONDS - CHECK_START))) note=""
    if (( left < limit )); then  # all phases together: T_TOTAL at most
        note=", cut from ${limit} s: ${T_TOTAL} s in all"; limit=$(( left > 1 ? left : 1 ))
    fi
    echo "== $name (limit ${limit} s${note})"
    timeout --kill-after=15 "$limit" "$@" || rc=$?
    PHASE_S[$name]=$((SECONDS - start))
    printf '{%s}\n' "$(for k in "${!PHASE_S[@]}"; do printf '"%s": %s,' "$k" "${PHASE_S[$k]}"; done | sed 's/,$//')" \
        >"$WORK/phases.json"
    if [[ $rc -ne 0 ]]; then
        [[ $rc -eq 124 || $rc -eq 137 ]] && echo "!! $name ran past its ${limit} s limit" || echo "!! $name failed (exit $rc)"
        "$PYTHON" benchmarks/gpu_check.py summary --work "$WORK" ${OUT:+--out "$OUT"} || true
        exit "$rc"
    fi
}

# The phases no other machine can run come first, so a cut-short check still has their figures.
phase prepare "$T_PREPARE" "$PYTHON" benchmarks/gpu_check.py prepare --work "$WORK" "${PREPARE_FLAGS[@]}"
phase zero3 "$T_ZERO3" "$PYTHON" benchmarks/gpu_check.py zero3 --work "$WORK"
phase determinism "$T_DETERMINISM" "$PYTHON" benchmarks/gpu_check.py determinism --work "$WORK"
phase train_grpo "$T_TRAIN" "$PYTHON" benchmarks/gpu_check.py train --work "$WORK" --algo grpo
phase train_lens "$T_TRAIN" "$PYTHON" benchmarks/gpu_check.py train --work "$WORK" --algo lens
phase evaluate "$T_EVAL" "$PYTHON" benchmarks/gpu_check.py evaluate --work "$WORK"
echo "== summary"
rc=0
"$PYTHON" benchmarks/gpu_check.py summary --work "$WORK" ${OUT:+--out "$OUT"} || rc=$?
exit "$rc"
