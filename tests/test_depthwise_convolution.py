"""mmzoo's DepthwiseConv2D: window products on JAX's CPU backend, a
channels-first view on PyTorch, equal to Keras' layer (values and
gradients); Keras' own layer on TensorFlow."""

import keras
import numpy as np
import pytest

from mmzoo.utils import depthwise_convolution
from mmzoo.utils.depthwise_convolution import DepthwiseConv2D


def _pair(**kwargs):
    ours = DepthwiseConv2D(**kwargs)
    theirs = keras.layers.DepthwiseConv2D(**kwargs)
    return ours, theirs


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize(
    "kernel_size, strides, size",
    [(3, 1, 8), (3, 2, 8), (3, 2, 9), (5, 1, 9), (5, 2, 9)],
)
def test_equals_keras_layer(padding, kernel_size, strides, size):
    x = np.random.default_rng(size).standard_normal((2, size, size + 1, 4))
    x = x.astype("float32")
    ours, theirs = _pair(
        kernel_size=kernel_size,
        strides=strides,
        padding=padding,
        activation="relu6",
    )
    theirs.build(x.shape)
    ours.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [
        rng.standard_normal(w.shape).astype("float32") for w in theirs.weights
    ]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)),
        keras.ops.convert_to_numpy(theirs(x)),
        atol=1e-5,
    )


@pytest.mark.skipif(
    keras.config.backend() != "jax", reason="the window path is JAX's"
)
@pytest.mark.parametrize("strides", [1, 2])
def test_gradients_equal_keras_layer(strides):
    import jax

    x = np.random.default_rng(0).standard_normal((2, 9, 8, 3))
    x = x.astype("float32")
    ours, theirs = _pair(kernel_size=3, strides=strides, padding="same")
    theirs.build(x.shape)
    ours.build(x.shape)
    kernel = np.random.default_rng(1).standard_normal((3, 3, 3, 1))
    kernel = kernel.astype("float32")

    def loss(layer):
        def f(x, kernel, bias):
            out, _ = layer.stateless_call([kernel, bias], [], x)
            return (out**2).sum()

        bias = np.ones(3, "float32")
        return jax.grad(f, argnums=(0, 1, 2))(x, kernel, bias)

    for got, want in zip(loss(ours), loss(theirs)):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)


def test_the_window_path_runs_on_jax_only(monkeypatch):
    calls = []
    original = depthwise_convolution.window_depthwise_conv

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(depthwise_convolution, "window_depthwise_conv", spy)
    layer = DepthwiseConv2D(kernel_size=3, padding="same")
    layer(np.ones((1, 5, 5, 2), "float32"))
    assert bool(calls) == (keras.config.backend() == "jax")


def test_switch_keeps_weight_file_keys(tmp_path):
    inputs = keras.Input((6, 6, 2))
    outputs = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    model.save_weights(str(tmp_path / "before.weights.h5"))
    switched = depthwise_convolution.use_fast_convolutions(model)
    assert switched == (0 if keras.config.backend() == "tensorflow" else 1)
    model.load_weights(str(tmp_path / "before.weights.h5"))
