import keras
import numpy as np
import pytest
from helpers import to_numpy

import mmzoo


def test_masked_average_pooling():
    pool = mmzoo.layers.MaskedAveragePooling()
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[1, 1, 0], [0, 0, 0]])
    out = to_numpy(pool(x, padding_mask=mask))
    np.testing.assert_allclose(out[0], x[0, :2].mean(0))
    np.testing.assert_array_equal(out[1], 0.0)  # nothing to average: 0
    np.testing.assert_allclose(to_numpy(pool(x)), x.mean(1))


def test_masked_average_pooling_gradient_is_finite_on_empty_rows():
    inputs = keras.Input((3, 4))
    mask = keras.Input((3,))
    out = mmzoo.layers.MaskedAveragePooling()(
        keras.layers.Dense(2)(inputs), padding_mask=mask
    )
    model = keras.Model([inputs, mask], out)
    model.compile("sgd", "mse")
    x = np.ones((2, 3, 4), "float32")
    m = np.array([[1, 0, 0], [0, 0, 0]], "float32")
    model.fit([x, m], np.ones((2, 2)), verbose=0)
    assert all(np.isfinite(to_numpy(w)).all() for w in model.weights)


def test_waveform_converter_pads_trims_and_serializes():
    converter = mmzoo.layers.WaveformConverter(sample_rate=8000, num_samples=5)
    out = to_numpy(converter(np.ones((2, 3), "float32")))
    np.testing.assert_array_equal(out, [[1, 1, 1, 0, 0]] * 2)
    out = to_numpy(converter(np.arange(14, dtype="float32").reshape(2, 7)))
    np.testing.assert_array_equal(out[0], [0, 1, 2, 3, 4])
    assert converter.audio_shape() == (5,)
    config = converter.get_config()
    restored = mmzoo.layers.WaveformConverter.from_config(config)
    assert (restored.sample_rate, restored.num_samples) == (8000, 5)
    with pytest.raises(ValueError, match="positive"):
        mmzoo.layers.WaveformConverter(num_samples=0)
