#!/usr/bin/env bash
# Runs the test suite once per Keras backend (the backend is fixed per
# process) and fails if any backend fails. Extra arguments go to pytest.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
status=0
# The tests compile many small models: XLA's cheaper CPU optimisation makes
# jax compile about a third faster (the code tested is the same).
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true}"
for backend in jax torch tensorflow; do
    echo "=== KERAS_BACKEND=$backend ==="
    KERAS_BACKEND=$backend "$PYTHON" -m pytest -q -p no:cacheprovider --durations=15 "$@" tests
    code=$?
    if [ $code -ne 0 ]; then
        echo "=== $backend FAILED (pytest exit $code) ==="
        status=1
    fi
done
exit $status
