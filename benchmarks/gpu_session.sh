#!/usr/bin/env bash
# One lent GPU machine, one call: the full SDC1 image end to end, then the `full` profile's
# training. Rehearse on CPU first (see --rehearse); run from the repository root with the
# wheels of .whl/ (keras and the project's pure-Python needs that the machine lacks).
#
#   [PROFILE=full-scratch-blends] [TRAIN_SEED=7] bash benchmarks/gpu_session.sh [--rehearse]
#
# 1. `radioseg pretrain --profile $PROFILE --until train` (default `full`, the recipe of
#    the shipped model; any recipe of radioseg_utils.workflows.pretrain.PRETRAIN_PROFILES
#    that starts from scratch; TRAIN_SEED: another random start on the same fields):
#    simulate and cut the training fields on all cores, train on the GPU for TRAIN_BUDGET
#    s; the model (without optimiser state), its log and TRAINED.json -> $OUT/trained/.
#    Tuning, calibration and the held-out scores run afterwards anywhere with
#    `radioseg pretrain --profile $PROFILE --trained <that folder>`, or the comparison
#    with the shipped model with `--compare <that folder>/model.keras`.
# 2. benchmarks/end_to_end.py with the time left: simulate a 32768² B1 1000 h field on
#    all cores, then `radioseg predict` on it under KERAS_BACKEND=jax, its stages on a
#    local dask cluster of one worker per core; record -> $OUT/end_to_end_gpu.json, stage
#    log lines -> $OUT/e2e_log_tail.txt.
# Everything writes as it goes, so a stage cut short still leaves what it measured.
set -u
start=$(date +%s)
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
LIMIT=${LIMIT:-580}          # seconds this script may take in all
E2E_SIZE=${E2E_SIZE:-32768}
PROFILE=${PROFILE:-full}
WORKERS=${WORKERS:-$(nproc)}
WORK=${WORK:-/tmp/radioseg-gpu}
if [ "${1:-}" = "--rehearse" ]; then  # CPU, no TensorFlow, small: the same code paths
  E2E_SIZE=2048; LIMIT=${LIMIT_REHEARSE:-900}; WORKERS=2; TRAIN_BUDGET=${TRAIN_BUDGET:-30}
  mkdir -p /tmp/notf/tensorflow
  echo 'raise ImportError("tensorflow blocked: rehearsing a machine without it")' \
    >/tmp/notf/tensorflow/__init__.py
  export PYTHONPATH=/tmp/notf:$PWD
else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export RADIOSEG_DATA=${RADIOSEG_DATA:-/nonexistent}
py=${PYTHON:-python3}
log() { echo "[$(( $(date +%s) - start )) s] $*"; }
log "$(nvidia-smi -L 2>/dev/null || echo 'no nvidia-smi')"
$py -c 'import jax, keras; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__)' \
  || exit 1

log "1. pretrain --profile $PROFILE --until train, training budget ${TRAIN_BUDGET:=180} s"
timeout $(( LIMIT - 60 )) $py -m radioseg_utils pretrain --profile "$PROFILE" --until train \
  ${TRAIN_SEED:+--train-seed "$TRAIN_SEED"} --workers "$WORKERS" --time-budget "$TRAIN_BUDGET" \
  --work-dir "$WORK/pretrain" --out "$OUT/trained" >"$OUT/trained.json" 2>"$WORK.train.err" \
  || { log "training stopped (exit $?)"; tail -5 "$WORK.train.err"; }
if [ ! -f "$OUT/trained/TRAINED.json" ]; then  # cut short: bring the last checkpoint's log
  mkdir -p "$OUT/trained"
  cp "$WORK/pretrain/models/unet/"{checkpoint.json,log.csv} "$OUT/trained/" 2>/dev/null
fi
grep -v "^INFO\|warnings.warn\|Warning" "$WORK.train.err" | tail -20 >"$OUT/train_err_tail.txt"
rm -rf "$WORK/pretrain"

left=$(( LIMIT - ($(date +%s) - start) ))
log "2. end to end, ${E2E_SIZE}², $WORKERS workers, ${left} s left"
timeout "$left" $py benchmarks/end_to_end.py --size "$E2E_SIZE" --workers "$WORKERS" \
  --work-dir "$WORK/e2e" --out "$OUT/end_to_end_gpu.json" 2>"$WORK.e2e.err" \
  || log "end to end stopped (exit $?)"
grep "radioseg_utils\|Error\|error" "$WORK.e2e.err" | tail -20 >"$OUT/e2e_log_tail.txt"
log "done"; ls -la "$OUT" "$OUT/trained"
