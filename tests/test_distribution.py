"""Training past one device on Keras' own engines: `keras.distribution.
DataParallel` (JAX) and `tf.distribute.MirroredStrategy` (TensorFlow) on two
virtual CPU devices. The device count is fixed when the backend starts, so
each runs in a fresh process."""

import json
import os
import subprocess
import sys

import keras
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))

TRAIN = """
import json, sys
import keras, numpy as np
sys.path.insert(0, {tests!r})
from helpers import raw_batch, tiny_classifier

x, y = raw_batch(32)
{setup}
with scope:
    model = tiny_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
history = model.fit(x, y, batch_size=8, epochs=4, verbose=0)
probabilities = model.predict(x, batch_size=8, verbose=0)
print(json.dumps({{
    "loss": history.history["loss"],
    "accuracy": float(np.mean(probabilities.argmax(-1) == y)),
    "devices": devices,
}}))
"""

JAX_SETUP = """
import contextlib, jax
distribution = keras.distribution.DataParallel(devices=jax.devices())
keras.distribution.set_distribution(distribution)
scope = contextlib.nullcontext()
devices = len(jax.devices())
"""

TF_SETUP = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
scope = strategy.scope()
devices = strategy.num_replicas_in_sync
"""


def train_on_two_devices(setup, env=None):
    code = TRAIN.format(tests=TESTS, setup=setup)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, **(env or {})),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check(trained):
    assert trained["devices"] == 2
    loss = trained["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    assert trained["accuracy"] > 0.5  # chance: 0.25


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's engine")
def test_jax_data_parallel_on_two_virtual_devices():
    flags = os.environ.get("XLA_FLAGS", "")
    check(
        train_on_two_devices(
            JAX_SETUP,
            env={
                "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2"
            },
        )
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's engine"
)
def test_tf_mirrored_strategy_on_two_virtual_devices():
    check(train_on_two_devices(TF_SETUP))
