#!/usr/bin/env bash
# Runs the test suite once per Keras backend (the backend is fixed per
# process) and fails if any backend fails. Extra arguments go to pytest.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
status=0
# The tests compile many small models, and JAX compiles every op it runs
# eagerly: XLA's cheaper CPU code generation (no LLVM optimisation, the
# classic emitters, one codegen split) compiles about 40 % faster than the
# default (measured on keras-hub's contract tests); the code tested is the
# same.
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1}"
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
