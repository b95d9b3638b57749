#!/usr/bin/env bash
# The one-command GPU check (make gpu-check; README "GPU check"): set-up, neumat doctor,
# pytest -m gpu, the CUDA kernel under compute-sanitizer, neumat bench mlp and neumat bench
# frames on every device type slangpy offers there (--device vulkan --device cuda, with the
# slang and cuda infer backends side by side when CUDA is present), results in one folder.
#
#   scripts/gpu_check.sh [--quick]        (OUT=DIR: write there; default out/gpu_check)
#   scripts/gpu_check.sh --falcor         (make gpu-check-falcor: the Falcor half, below)
#
# On a bare GPU machine (Python 3.12, no network) it first unpacks what scripts/gpu_pack.sh put
# into .gpu/ here (slangpy, the wheels the image lacks, the Vulkan loader .debs; carry ".gpu"),
# and builds neumat with the CUDA kernels (NEUMAT_CUDA=ON) from this tree with the image's own
# torch, cupy, pybind11 and scikit-build-core. Without an NVIDIA GPU (nvidia-smi finds none) the
# GPU parts are skipped with that reason and the rest runs on this machine's .venv.
# --quick: 1080p only and fewer frames (GPU), or 512² (CPU); a smaller bench mlp.
# --falcor: a second device call on the same warm machine, carrying ".gpu-falcor" (falcorcomp's
# cp312 wheel, 59 MB: it does not fit in one call beside .gpu/; FALCOR=1 scripts/gpu_pack.sh):
# reuses the first call's set-up in /tmp, installs falcorcomp, then runs only the Falcor steps
# (pytest -m gpu tests/test_falcor.py, neumat falcor render --reference, neumat falcor bench).
# Files (8 at most, as the device tool returns them): gpu_check.md (summary: each step, status,
# seconds), gpu_check.log, doctor.txt, pytest_gpu.txt, bench_mlp.json, frames/bench.{json,md,png}.
# Each step has a time limit; a failing step is reported and the check goes on. Exit 1 if any
# step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
FALCOR=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --falcor) FALCOR=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $arg (use --quick or --falcor)" >&2; exit 2 ;;
  esac
done
OUTDIR=${OUT:-out/gpu_check}
mkdir -p "$OUTDIR/frames"
SUMMARY="$OUTDIR/gpu_check.md"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"
START=$(date +%s)
FAILED=0
log() { echo "[gpu-check $(date +%T)] $*" | tee -a "$LOG"; }

GPU=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  GPU=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
  NO_GPU_REASON=""
else
  NO_GPU_REASON="no NVIDIA GPU (nvidia-smi finds none)"
fi

PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
{
  echo "# neumat GPU check"
  echo
  echo "$(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git'), mode: $([ $FALCOR = 1 ] && echo falcor || { [ $QUICK = 1 ] && echo quick || echo full; })," \
       "GPU: ${GPU:-none — $NO_GPU_REASON}"
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---|"
} >"$SUMMARY"

# step NAME LIMIT_S COMMAND...: run it with a time limit, output appended to the log
step() {
  local name=$1 limit=$2 t0 rc status
  shift 2
  log "$name: $*"
  t0=$(date +%s)
  timeout "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  if [ $rc = 0 ]; then status=ok
  elif [ $rc = 124 ]; then status="timed out after ${limit} s"; FAILED=1
  else status="failed (exit $rc, see gpu_check.log)"; FAILED=1
  fi
  echo "| $name | $status | $(( $(date +%s) - t0 )) |" >>"$SUMMARY"
  log "$name: $status"
  LAST_RC=$rc
}
skip() { echo "| $1 | skipped: $2 | 0 |" >>"$SUMMARY"; log "$1: skipped: $2"; }

setup_gpu_machine() {
  set -e
  for f in .gpu/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
  mkdir -p /tmp/gpu-site
  tar -xJf .gpu/slangpy-cp312.tar.xz -C /tmp/gpu-site
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-site .gpu/wheels/*.whl
  PYTHONPATH=/tmp/gpu-site python3 -m pip install -q --no-deps --no-build-isolation --no-index \
    --target /tmp/gpu-neumat -C cmake.define.NEUMAT_CUDA=ON .
}

if [ -n "$GPU" ] && ! "$PY" -c "import slangpy" >/dev/null 2>&1; then
  if [ -d /tmp/gpu-site/slangpy ] && [ -d /tmp/gpu-neumat/neumat ] && [ ! -d .gpu ]; then
    skip "set-up" "reusing an earlier call's /tmp/gpu-site and /tmp/gpu-neumat on this machine"
    export PYTHONPATH=/tmp/gpu-neumat:/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  elif [ -d .gpu ]; then
    step "set-up (unpack .gpu/, build with NEUMAT_CUDA=ON)" 300 bash -c "$(declare -f setup_gpu_machine); setup_gpu_machine"
    export PYTHONPATH=/tmp/gpu-neumat:/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  else
    skip "set-up" "no .gpu/ folder: run scripts/gpu_pack.sh where pip works and carry .gpu"
  fi
else
  skip "set-up" "${GPU:+this machine already has slangpy}${NO_GPU_REASON:+$NO_GPU_REASON: using $PY}"
fi

# The Falcor half (--falcor): falcorcomp from .gpu-falcor/, its gpu tests, one render, one bench.
falcor_steps() {
  if [ -z "$GPU" ]; then skip "Falcor steps" "$NO_GPU_REASON"; return; fi
  if ! "$PY" -c "import falcorcomp" >/dev/null 2>&1; then
    local wheel
    wheel=$(ls .gpu-falcor/falcorcomp-*cp312*.whl 2>/dev/null | head -1)
    if [ -z "$wheel" ]; then
      skip "Falcor steps" "no .gpu-falcor/ wheel: run FALCOR=1 scripts/gpu_pack.sh where pip works and carry .gpu-falcor"
      return
    fi
    step "falcor set-up (falcorcomp into /tmp/gpu-falcor)" 180 \
      python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-falcor "$wheel"
    export PYTHONPATH=/tmp/gpu-falcor${PYTHONPATH:+:$PYTHONPATH}
  fi
  step "pytest -m gpu tests/test_falcor.py" 300 bash -c \
    "\"$PY\" -m pytest -m gpu -v -p no:cacheprovider -rs tests/test_falcor.py >'$OUTDIR/pytest_falcor.txt' 2>&1"
  step "neumat falcor render (leather, sphere, --reference)" 240 "$PY" -m neumat falcor render \
    assets/materials/leather.nmat --scene sphere --out "$OUTDIR/falcor.png" --reference
  step "neumat falcor bench (1080p)" 300 "$PY" -m neumat falcor bench assets/materials/leather.nmat \
    --out "$OUTDIR/falcor_bench.json"
}
# finish: the total time into the summary, exit 1 if any step failed
finish() {
  local total=$(( $(date +%s) - START ))
  { echo; echo "Total: ${total} s."; } >>"$SUMMARY"
  log "done in ${total} s; summary: $SUMMARY"
  exit $FAILED
}
if [ $FALCOR = 1 ]; then
  falcor_steps
  finish
fi

step "neumat doctor" 120 bash -c "\"$PY\" -m neumat doctor >'$OUTDIR/doctor.txt' 2>&1"
if [ -n "$GPU" ]; then
  step "pytest -m gpu" 300 bash -c "\"$PY\" -m pytest -m gpu -q -p no:cacheprovider --continue-on-collection-errors -rs tests >'$OUTDIR/pytest_gpu.txt' 2>&1"
else
  skip "pytest -m gpu" "$NO_GPU_REASON" && echo "skipped: $NO_GPU_REASON" >"$OUTDIR/pytest_gpu.txt"
fi
# The CUDA kernel under compute-sanitizer (shared-memory races between the tile phases, out-of-
# bounds accesses, barrier misuse): scripts/gpu_check_cuda_kernel.py, output in the log.
if [ -n "$GPU" ] && command -v compute-sanitizer >/dev/null 2>&1; then
  step "compute-sanitizer (CUDA kernel: memcheck, racecheck, synccheck)" 180 bash -c \
    "for t in memcheck racecheck synccheck; do echo \"== \$t\"; compute-sanitizer --tool \$t --error-exitcode 3 \"$PY\" scripts/gpu_check_cuda_kernel.py || exit 1; done"
else
  skip "compute-sanitizer" "${NO_GPU_REASON:-compute-sanitizer not on PATH}"
fi
if [ $QUICK = 1 ]; then MLP=(--samples 65536 --repeats 3); else MLP=(); fi
step "neumat bench mlp" 180 "$PY" -m neumat bench mlp "${MLP[@]}" --json "$OUTDIR/bench_mlp.json"
if [ -n "$GPU" ]; then
  if [ $QUICK = 1 ]; then RES=1920x1080; FR=(--frames 3 --warmup 1); else RES=1920x1080,3840x2160; FR=(--frames 10 --warmup 2); fi
else
  RES=512x512; FR=(--frames 2 --warmup 1)  # lavapipe: ~1 s per 512² frame with every technique
  [ $QUICK = 1 ] || log "bench frames: 1080p and 4K only on a GPU ($NO_GPU_REASON)"
fi
# Device types slangpy can create here (neumat.device.create; lavapipe's Vulkan without a GPU).
DEVICES=vulkan
if [ -n "$GPU" ]; then
  DEVICES=$("$PY" -c "from neumat import device as d
ok = []
for t in ('vulkan', 'cuda'):
    try:
        d.create(t, verify=False).close(); ok.append(t)
    except d.DeviceError as e:
        print(f'device type {t}: {e}', file=__import__('sys').stderr)
print(' '.join(ok))" 2>>"$LOG")
  log "device types: ${DEVICES:-none}"
fi
FRAMES=("$PY" -m neumat bench frames --resolutions "$RES" "${FR[@]}" --options all,no_hf,fp32 --out "$OUTDIR/frames")
if [[ " $DEVICES " == *" cuda "* ]]; then
  DEV_ARGS=(); for d in $DEVICES; do DEV_ARGS+=(--device "$d"); done
  step "neumat bench frames ($RES, ${DEVICES// / + }; infer slang, cuda)" 420 "${FRAMES[@]}" "${DEV_ARGS[@]}" \
    --infer-backend slang --infer-backend cuda
  if [ "$LAST_RC" != 0 ] && [[ " $DEVICES " == *" vulkan "* ]]; then  # keep the Vulkan numbers
    step "neumat bench frames ($RES, vulkan, after the failure above)" 300 "${FRAMES[@]}" --device vulkan
  fi
else
  step "neumat bench frames ($RES, ${DEVICES:-auto})" 300 "${FRAMES[@]}" ${DEVICES:+--device "$DEVICES"}
fi

finish
