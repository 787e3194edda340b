#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md, "When a GPU is lent"): `make device-check`, or `bash scripts/device_check.sh`.
#
# Runs `python -m lecture_utils.experiment.bench gpu-check` (lessons 01-08 and lesson 09's rates) from a copy of the working
# tree on a machine that cannot reach the network: nothing is installed or downloaded. It needs a python that holds
# torch, torchvision, numpy, filelock and tqdm (CHECK_PYTHON, else the checkout's .venv, else python3); the
# package itself is read from this tree. Fashion-MNIST comes from data/device-check/fashion-mnist/ (put there by
# `make device-data` and carried with the tree), else the Debian folder, else synthetic images of the same shape.
# The report (gpu-check.json) and the printed lines (gpu-check.log) go to $OUT when it is set, else to
# build/gpu-check/. About 3.5 minutes on one H100 by the estimate (scripts/device_check_budget.py); stopped after
# DEVICE_CHECK_TIMEOUT seconds (default 540) so that what it measured still comes back. Without CUDA it says so in
# one line and exits 0. Extra arguments go to gpu-check (e.g. `--device cpu --steps 1 --lessons 07 --no-plan`
# tries the check itself on a CPU).
set -u -o pipefail
cd "$(dirname "$0")/.."

out="${OUT:-build/gpu-check}"
mkdir -p "$out" || { echo "device-check: cannot create the report folder $out" >&2; exit 1; }

python="${CHECK_PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then
        python=.venv/bin/python
    else
        python=python3
    fi
fi
missing=$("$python" - <<'EOF' 2>/dev/null
import importlib.util
print(" ".join(m for m in ("torch", "torchvision", "numpy", "filelock", "tqdm") if importlib.util.find_spec(m) is None))
EOF
) || { echo "device-check: cannot run $python; set CHECK_PYTHON to a python that holds torch" >&2; exit 2; }
if [ -n "$missing" ]; then
    echo "device-check: $python lacks $missing; the check needs a python with torch, torchvision, numpy, filelock" \
         "and tqdm (docs/gpu.md, 'When a GPU is lent'); set CHECK_PYTHON to one" >&2
    exit 2
fi

data=()
for root in data/device-check/fashion-mnist /usr/share/datasets/fashion-mnist; do
    if [ -f "$root/train-images-idx3-ubyte.gz" ] || [ -f "$root/train-images-idx3-ubyte" ]; then
        data=(--data-root "$root")
        break
    fi
done

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PIP_NO_INDEX=1 HF_HUB_OFFLINE=1  # nothing online
unset LECTURE_FULL_SHRINK               # the projections are the lessons' full profile

if "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    {
        echo "device-check: $("$python" -c 'import sys, torch; print(sys.executable, "torch", torch.__version__)')"
        echo "device-check: data ${data[*]:-(none carried: synthetic images; the rates do not depend on the pixels)}"
        echo "device-check: report and log in $out"
        command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    } 2>&1 | tee "$out/gpu-check.log"
fi

timeout "${DEVICE_CHECK_TIMEOUT:-540}" "$python" -m lecture_utils.experiment.bench gpu-check --out "$out/gpu-check.json" \
    "${data[@]}" "$@" 2>&1 | tee -a "$out/gpu-check.log"
status=$?
if [ "$status" -eq 124 ]; then
    echo "device-check: stopped after ${DEVICE_CHECK_TIMEOUT:-540} s; the lines above are what it measured" \
         "(in $out/gpu-check.log); no JSON report" | tee -a "$out/gpu-check.log"
fi
exit "$status"
