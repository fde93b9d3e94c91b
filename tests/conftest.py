import fcntl
import os
import sys
import tempfile

import keras
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

# Backend-independent work (building datasets and caches, writing preset
# files, checks made in NumPy before any backend op) and the full-test-set
# accuracy of a shipped preset run on ONE backend: `@pytest.mark.one_backend`
# (TensorFlow) or `@pytest.mark.one_backend("torch")`. Everything that runs a
# model runs on all three; the other backends check a shipped preset's
# recorded predictions on a fixed subset of its test set.
DEFAULT_ONE_BACKEND = "tensorflow"

if keras.config.backend() == "tensorflow":
    import tensorflow as tf

    # The tests trace many small graphs; Grappler's graph rewrites cost more
    # than they save on them (about 10 % of the TensorFlow run, measured).
    # What the graphs compute is the same.
    tf.config.optimizer.set_experimental_options(
        {"disable_meta_optimizer": True}
    )


# The suite runs one pytest process per backend side by side
# (tests/run_all_backends.sh). Whisper's ONNX export by tf2onnx alone peaks
# at 11.7 GB; beside a process whose memory has grown through the suite
# (JAX's reaches 8 GB) it does not fit in the 24 GB of the CI machine (the
# kernel killed TensorFlow's pytest at 16.7 GB that way, twice). Tests
# marked `memory_heavy` run first in their process and take this file lock,
# so they run one at a time across the processes.
MEMORY_HEAVY_LOCK = os.path.join(
    tempfile.gettempdir(), "mmzoo-tests-memory-heavy.lock"
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "one_backend(name='tensorflow'): backend-independent test, run on "
        "that backend only",
    )
    config.addinivalue_line(
        "markers",
        "memory_heavy: peaks at many GB; runs while no other backend's "
        "memory-heavy test does",
    )


@pytest.fixture(autouse=True)
def _one_memory_heavy_test_at_a_time(request):
    if request.node.get_closest_marker("memory_heavy") is None:
        yield
        return
    with open(MEMORY_HEAVY_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_collection_modifyitems(config, items):
    # Memory-heavy tests first, while the process is small (the others
    # keep their order).
    items.sort(key=lambda item: item.get_closest_marker("memory_heavy") is None)
    backend = keras.config.backend()
    for item in items:
        marker = item.get_closest_marker("one_backend")
        if marker is None:
            continue
        wanted = marker.args[0] if marker.args else DEFAULT_ONE_BACKEND
        if wanted != backend:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"backend-independent: runs on {wanted} only"
                )
            )


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
