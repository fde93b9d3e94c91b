"""Training past one device on Keras' own engines: `keras.distribution.
DataParallel` (JAX) and `tf.distribute.MirroredStrategy` (TensorFlow) on two
virtual CPU devices. The device count is fixed when the backend starts, so
each runs in a fresh process."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import mmzoo

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


MODEL_PARALLEL = """
import json, sys
import keras, numpy as np
sys.path.insert(0, {tests!r})
from test_whisper_transcript_classifier import (
    WINDOW_SECONDS, tiny_backbone, tiny_tokenizer, waveforms,
)
import mmzoo


def tiny_task():
    preprocessor = mmzoo.models.WhisperAudioToTextPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=WINDOW_SECONDS
        ),
        tokenizer=tiny_tokenizer(),
        decoder_sequence_length=8,
        language="en",
    )
    return mmzoo.models.WhisperAudioToText(tiny_backbone(0), preprocessor)


audio = waveforms(4)
alone = tiny_task()
x, y, sample_weight = alone.preprocessor(audio, [" yes", " no", " oui", " no"])
expected = keras.ops.convert_to_numpy(alone(x))

mesh = keras.distribution.DeviceMesh(
    shape=(1, 2),
    axis_names=("batch", "model"),
    devices=keras.distribution.list_devices(),
)
layout_map = mmzoo.models.WhisperBackbone.get_layout_map(mesh)
keras.distribution.set_distribution(
    keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    )
)
task = tiny_task()
specs = {{
    v.path: [str(axis) for axis in v.value.sharding.spec]
    for v in task.backbone.weights
}}
logits = keras.ops.convert_to_numpy(task(x))
texts = task.generate(audio[:2], max_length=10)
task.compile(optimizer=keras.optimizers.Adam(3e-2))
task.preprocessor = None
history = task.fit(
    x, y, sample_weight=sample_weight, batch_size=4, epochs=8, verbose=0
)
print(json.dumps({{
    "devices": len(keras.distribution.list_devices()),
    "specs": specs,
    "max_difference": float(np.max(np.abs(logits - expected))),
    "texts": len(texts),
    "loss": history.history["loss"],
}}))
"""


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="keras.distribution.ModelParallel: JAX",
)
def test_whisper_layout_map_splits_heads_and_feed_forward_on_two_devices():
    flags = os.environ.get("XLA_FLAGS", "")
    result = subprocess.run(
        [sys.executable, "-c", MODEL_PARALLEL.format(tests=TESTS)],
        env=dict(
            os.environ,
            XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=2",
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["devices"] == 2
    specs = trained["specs"]
    layer = "transformer_decoder_layer_0"
    # Split: heads, the feed-forward width, the embedding's hidden width.
    assert specs[f"{layer}/cross_attention/key/kernel"] == [
        "None",
        "model",
        "None",
    ]
    assert specs[f"{layer}/self_attention/attention_output/kernel"] == [
        "model",
        "None",
        "None",
    ]
    assert specs[
        "transformer_encoder_layer_1/feedforward_output_dense/kernel"
    ] == ["model", "None"]
    assert specs[
        "decoder_token_and_position_embedding/token_embedding/embeddings"
    ] == ["None", "model"]
    # Replicated: layer norms, convolutions, position embeddings.
    assert specs["encoder_layer_norm/gamma"] == ["None"]
    assert specs["encoder_token_embedding_conv_layer_1/kernel"] == [
        "None",
        "None",
        "None",
    ]
    split = [path for path, spec in specs.items() if "model" in spec]
    # Per encoder layer 6 attention weights (query, key, value and output
    # kernels, query and value biases) and 3 feed-forward ones; per decoder
    # layer twice the attention's; the token embedding.
    assert len(split) == 2 * (6 + 3) + 2 * (12 + 3) + 1, split
    # The same model: the split changes only the order of float sums.
    assert trained["max_difference"] < 1e-4
    assert trained["texts"] == 2
    loss = trained["loss"]
    assert loss[-1] < 0.75 * loss[0], loss


def test_layout_map_refuses_a_mesh_without_the_axes():
    mesh = keras.distribution.DeviceMesh(
        shape=(1,),
        axis_names=("data",),
        devices=["cpu:0"],
    )
    with pytest.raises(ValueError, match="'model' is not an axis"):
        mmzoo.models.WhisperBackbone.get_layout_map(mesh)
    with pytest.raises(ValueError, match="DeviceMesh"):
        mmzoo.models.WhisperBackbone.get_layout_map("mesh")


MULTI_PROCESS = """
import json, sys
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
import keras
keras.distribution.initialize(
    job_addresses={address!r}, num_processes=2, process_id=int(sys.argv[1])
)
import tensorflow as tf
sys.path.insert(0, {tests!r})
from helpers import raw_batch, tiny_classifier

devices = keras.distribution.list_devices()
keras.distribution.set_distribution(
    keras.distribution.DataParallel(devices=devices)
)
x, y = raw_batch(32)
# Each process reads its own half of every batch of 8 (Keras splits it).
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(
    8, drop_remainder=True
)
model = tiny_classifier()
model.compile(optimizer=keras.optimizers.Adam(1e-2))
history = model.fit(dataset, epochs=4, verbose=0)
print(json.dumps({{
    "process": jax.process_index(),
    "devices": len(devices),
    "local_devices": jax.local_device_count(),
    "loss": history.history["loss"],
}}))
"""


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's engine")
def test_jax_data_parallel_across_two_processes():
    # The multi-host recipe of the README, with two processes on this
    # machine talking over loopback (one CPU device each).
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    code = MULTI_PROCESS.format(address=f"localhost:{port}", tests=TESTS)
    env = dict(os.environ, KERAS_BACKEND="jax")
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(index)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in (0, 1)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["process"] for r in results] == [0, 1]
    assert all(r["devices"] == 2 and r["local_devices"] == 1 for r in results)
    # One model: both processes applied the same averaged gradients.
    np.testing.assert_allclose(results[0]["loss"], results[1]["loss"])
    loss = results[0]["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
