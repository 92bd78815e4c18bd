#!/usr/bin/env bash
# benchmarks/gpu_inference.py under JAX, then PyTorch, on a GPU machine without Keras or
# TensorFlow. Installs .whl/ (keras, namex, optree; typing_extensions if missing) into
# /tmp/site and writes $OUT/gpu_{jax,torch}.json (OUT: default benchmarks/results).
# Usage, from the repository root: bash benchmarks/gpu_inference.sh [SECONDS]
set -u
out=${OUT:-benchmarks/results}
w=".whl/keras-*.whl .whl/namex-*.whl .whl/optree-*.whl"
python3 -c 'import typing_extensions' 2>/dev/null || w="$w .whl/typing_extensions-*.whl"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site $w || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
rc=0
for b in jax torch; do
  echo "== KERAS_BACKEND=$b"
  KERAS_BACKEND=$b timeout 200 python3 benchmarks/gpu_inference.py --seconds "${1:-10}" \
    --reference benchmarks/results/unet_B1_reference.npz --out "$out/gpu_$b.json" \
    || { echo "== $b failed (exit $?)"; rc=1; }
done
exit $rc
