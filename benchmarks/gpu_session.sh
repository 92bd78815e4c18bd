#!/usr/bin/env bash
# One lent GPU machine, one call: the full SDC1 image end to end, then the `full` profile's
# training. Rehearse on CPU first (see --rehearse); run from the repository root with the
# wheels of .whl/ (keras and the project's pure-Python needs that the machine lacks).
#
#   [PROFILE=full-scratch-blends] [TRAIN_SEED=7 | TRAIN_SEEDS="1 2 3"] \
#     bash benchmarks/gpu_session.sh [--rehearse]
#
# 1. `radioseg pretrain --profile $PROFILE --until train` (default `full`, the recipe of
#    the shipped model; any recipe of radioseg_utils.workflows.pretrain.PRETRAIN_PROFILES
#    that starts from scratch; TRAIN_SEED: another random start on the same fields):
#    simulate and cut the training fields on all cores, train on the GPU for TRAIN_BUDGET
#    s; the model (without optimiser state), its log and TRAINED.json -> $OUT/trained/.
#    TRAIN_SEEDS: one start per seed on the same fields (simulated once), each for
#    TRAIN_BUDGET s while the time lasts -> $OUT/trained_seed<N>/.
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

train_start() {  # $1: training seed ("": the field seed), $2: the folder under $OUT
  local dest="$OUT/$2" left=$(( LIMIT - 60 - ($(date +%s) - start) ))
  [ "$left" -gt 0 ] || { log "no time left for $2"; return; }
  log "1. pretrain --profile $PROFILE --until train ${1:+--train-seed $1 }-> $2," \
    "training budget $TRAIN_BUDGET s"
  timeout "$left" $py -m radioseg_utils pretrain --profile "$PROFILE" --until train \
    ${1:+--train-seed "$1"} --workers "$WORKERS" --time-budget "$TRAIN_BUDGET" \
    --work-dir "$WORK/pretrain" --out "$dest" >"$dest.json" 2>"$WORK.$2.err" \
    || { log "training stopped (exit $?)"; tail -5 "$WORK.$2.err"; }
  if [ ! -f "$dest/TRAINED.json" ]; then  # cut short: bring the last checkpoint's log
    mkdir -p "$dest"
    cp "$WORK/pretrain/models/unet/"{checkpoint.json,log.csv} "$dest/" 2>/dev/null
  fi
  grep -v "^INFO\|warnings.warn\|Warning" "$WORK.$2.err" | tail -20 >"$dest.err_tail.txt"
  rm -rf "$WORK/pretrain/models"  # the next start keeps the fields and the cutouts
}
: "${TRAIN_BUDGET:=180}"
if [ -n "${TRAIN_SEEDS:-}" ]; then
  for seed in $TRAIN_SEEDS; do train_start "$seed" "trained_seed$seed"; done
else
  train_start "${TRAIN_SEED:-}" trained
fi
rm -rf "$WORK/pretrain"

left=$(( LIMIT - ($(date +%s) - start) ))
log "2. end to end, ${E2E_SIZE}², $WORKERS workers, ${left} s left"
timeout "$left" $py benchmarks/end_to_end.py --size "$E2E_SIZE" --workers "$WORKERS" \
  --work-dir "$WORK/e2e" --out "$OUT/end_to_end_gpu.json" 2>"$WORK.e2e.err" \
  || log "end to end stopped (exit $?)"
grep "radioseg_utils\|Error\|error" "$WORK.e2e.err" | tail -20 >"$OUT/e2e_log_tail.txt"
log "done"; ls -la "$OUT" "$OUT"/trained*/
