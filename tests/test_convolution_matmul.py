"""`mmzoo.utils.convolution_matmul`: dense products as 1×1 convolutions on
PyTorch, the same results as Keras' `Dense` and `EinsumDense`."""

import keras
import numpy as np
import pytest
from helpers import to_numpy

from mmzoo.utils import convolution_matmul as cm
from mmzoo.utils.convolution_matmul import use_convolution_matmuls

TORCH = keras.config.backend() == "torch"


def _kernels_used(fn):
    """(convolutions, matrix products, copies) PyTorch ran in `fn()`."""
    import torch

    with torch.profiler.profile() as profile:
        fn()
    names = [event.name for event in profile.events()]
    convolutions = names.count("aten::convolution")
    products = sum(
        names.count(n) for n in ("aten::mm", "aten::bmm", "aten::matmul")
    )
    return convolutions, products, names.count("aten::copy_")


def test_contracted_axes():
    assert cm._contracted_axes("abc,cde->abde") == 1  # attention's query
    assert cm._contracted_axes("abcd,cde->abe") == 2  # attention's output
    assert cm._contracted_axes("ab,bc->ac") == 1
    assert cm._contracted_axes("abc,cd->abd") == 1
    assert cm._contracted_axes("abc,dc->abd") is None  # kernel transposed
    assert cm._contracted_axes("abc,ce->abec") is None
    assert cm._contracted_axes("...b,bc->...c") is None


@pytest.mark.parametrize("rows", [3, 700])
def test_layers_equal_keras_layers(rows):
    """Both sides of `MIN_ROWS` (700 rows: the convolution on PyTorch),
    with a bias and an activation, the same weights as Keras' layers."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, rows, 24)).astype("float32")
    x4 = x.reshape(1, rows, 4, 6)
    cases = (
        (keras.layers.Dense, dict(units=16, activation="gelu"), x),
        (
            keras.layers.EinsumDense,
            dict(
                equation="abc,cde->abde",
                output_shape=(None, 4, 5),
                bias_axes="de",
            ),
            x,
        ),
        (
            keras.layers.EinsumDense,
            dict(equation="abcd,cde->abe", output_shape=(None, 16)),
            x4,
        ),
        # Not a dense form: Keras' einsum.
        (
            keras.layers.EinsumDense,
            dict(equation="abc,dc->abd", output_shape=(None, 6)),
            x,
        ),
    )
    for keras_class, kwargs, inputs in cases:
        reference = keras_class(**kwargs)
        expected = to_numpy(reference(inputs))
        if keras_class is keras.layers.Dense:
            layer = cm.Dense(**kwargs)
        else:
            layer = cm.EinsumDense(**kwargs)
        layer.build(inputs.shape)
        layer.set_weights(reference.get_weights())
        got = to_numpy(layer(inputs))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        if TORCH:
            convolutions, products, copies = _kernels_used(
                lambda: layer(inputs)
            )
            dense_form = kwargs.get("equation") != "abc,dc->abd"
            convolved = dense_form and rows >= cm.MIN_ROWS
            assert convolutions == (1 if convolved else 0)
            assert (products == 0) == convolved
            if convolved:
                # The kernel goes to oneDNN as it is stored: no copy.
                assert copies == 0


def test_mixed_precision_keeps_keras_product():
    """bfloat16 computations stay Keras' (the convolution only pays for
    float32), with the same results as Keras' layer."""
    x = np.random.default_rng(0).standard_normal((600, 8)).astype("float32")
    reference = keras.layers.Dense(4, dtype="mixed_bfloat16")
    layer = cm.Dense(4, dtype="mixed_bfloat16")
    expected = to_numpy(reference(x))
    layer.build(x.shape)
    layer.set_weights(reference.get_weights())
    np.testing.assert_array_equal(to_numpy(layer(x)), expected)
    if TORCH:
        assert _kernels_used(lambda: layer(x))[0] == 0


def test_use_convolution_matmuls_switches_classes_not_weights(tmp_path):
    """Only PyTorch switches; the model's weights file is the same."""
    inputs = keras.Input((None, 8))
    hidden = keras.layers.Dense(6, name="dense")(inputs)
    outputs = keras.layers.EinsumDense(
        "abc,cd->abd", output_shape=(None, 3), name="einsum"
    )(hidden)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((2, 300, 8)).astype("f4")
    expected = to_numpy(model(x))
    model.save_weights(tmp_path / "before.weights.h5")
    switched = use_convolution_matmuls(model)
    assert switched == (2 if TORCH else 0)
    classes = {type(layer) for layer in model.layers[1:]}
    if TORCH:
        assert classes == {cm.Dense, cm.EinsumDense}
    else:
        assert classes == {keras.layers.Dense, keras.layers.EinsumDense}
    np.testing.assert_allclose(to_numpy(model(x)), expected, atol=1e-5)
    model.save_weights(tmp_path / "after.weights.h5")
    other = keras.models.clone_model(model)
    other.load_weights(tmp_path / "before.weights.h5")
    np.testing.assert_allclose(to_numpy(other(x)), expected, atol=1e-5)
    import h5py

    def keys(path):
        names = []
        with h5py.File(path) as f:
            f.visit(names.append)
        return names

    assert keys(tmp_path / "before.weights.h5") == keys(
        tmp_path / "after.weights.h5"
    )


def test_whisper_encoders_use_the_convolutions():
    """mmzoo's Whisper models switch their dense layers on PyTorch."""
    from helpers import TINY_WHISPER

    import mmzoo

    encoder = mmzoo.models.WhisperAudioEncoder(**TINY_WHISPER)
    dense = [
        layer
        for layer in encoder._flatten_layers(recursive=True)
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))
    ]
    assert dense
    expected = (
        (cm.Dense, cm.EinsumDense)
        if TORCH
        else (keras.layers.Dense, keras.layers.EinsumDense)
    )
    assert all(type(layer) in expected for layer in dense)
