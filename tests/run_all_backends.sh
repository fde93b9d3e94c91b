#!/usr/bin/env bash
# Runs the test suite once per Keras backend (the backend is fixed per
# process) and fails if any backend fails. Extra arguments go to pytest.
#
# The backends run side by side, `MMZOO_TEST_JOBS` at a time (default: the
# number of CPU cores, at most 3): most of a test's time is single-threaded
# Python (tracing, compiling, building small models), so on two cores two
# pytest processes take little more than one each. Each backend writes its
# own log (and its own pytest temporary folder), printed whole when it
# ends. `MMZOO_TEST_JOBS=1` runs them one after the other.
set -u
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
# The tests compile many small models, and JAX compiles every op it runs
# eagerly: XLA's cheaper CPU code generation (no LLVM optimisation, the
# classic emitters, one codegen split) compiles about 40 % faster than the
# default (measured on keras-hub's contract tests); the code tested is the
# same.
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1}"
cores=$(nproc 2>/dev/null || echo 1)
jobs="${MMZOO_TEST_JOBS:-$((cores < 3 ? cores : 3))}"
# Longest first, so the shorter ones fill the other slot.
backends=(tensorflow jax torch)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_backend() {
    local backend=$1
    local start=$SECONDS
    KERAS_BACKEND=$backend "$PYTHON" -m pytest -q -p no:cacheprovider \
        --durations=15 --basetemp="$logs/tmp-$backend" "${@:2}" tests \
        > "$logs/$backend.log" 2>&1
    local code=$?
    {
        echo "=== KERAS_BACKEND=$backend ($((SECONDS - start)) s) ==="
        cat "$logs/$backend.log"
        if [ $code -ne 0 ]; then
            echo "=== $backend FAILED (pytest exit $code) ==="
        fi
    } > "$logs/$backend.report"
    echo $code > "$logs/$backend.rc"
}

status=0
for backend in "${backends[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
    run_backend "$backend" "$@" &
done
wait
for backend in "${backends[@]}"; do
    cat "$logs/$backend.report"
    [ "$(cat "$logs/$backend.rc")" = 0 ] || status=1
done
exit $status
