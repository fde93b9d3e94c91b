import os

import keras
import numpy as np
import pytest
from helpers import to_numpy

import mmzoo


def text_encoder():
    return mmzoo.models.TextEncoder(
        vocabulary_size=12,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=6,
        dropout=0.0,
    )


def image_encoder():
    return mmzoo.models.ImageEncoder(
        image_shape=(None, None, 3), filters=(4, 8, 8), hidden_dim=8
    )


def audio_encoder():
    return mmzoo.models.AudioEncoder(
        sample_rate=8000,
        num_mel_bins=16,
        fft_length=128,
        sequence_stride=64,
        filters=(4, 8),
        hidden_dim=8,
    )


def text_inputs(batch=2, steps=6):
    return {
        "token_ids": np.arange(batch * steps).reshape(batch, steps) % 12,
        "padding_mask": np.array([[1] * steps, [1, 1, 1] + [0] * (steps - 3)]),
    }


ENCODERS = {
    "text": (text_encoder, text_inputs),
    "image": (image_encoder, lambda: np.random.rand(2, 20, 16, 3)),
    "audio": (audio_encoder, lambda: np.random.randn(2, 1600) * 0.1),
}


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_outputs_and_config(kind):
    make, data = ENCODERS[kind]
    encoder = make()
    outputs = to_numpy(encoder(data()))
    assert outputs["pooled_output"].shape == (2, 8)
    assert outputs["sequence_output"].shape[0] == 2
    assert outputs["sequence_output"].shape[-1] == 8
    assert np.isfinite(outputs["pooled_output"]).all()
    config = encoder.get_config()
    assert encoder.__class__.from_config(config).get_config() == config
    assert encoder.count_params() > 0


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_keras_save_load(kind, tmp_path):
    make, data = ENCODERS[kind]
    encoder = make()
    x = data()
    expected = to_numpy(encoder(x))["pooled_output"]
    path = os.path.join(tmp_path, "encoder.keras")
    encoder.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored(x))["pooled_output"], expected, atol=1e-6
    )


def test_text_padding_is_ignored():
    encoder = text_encoder()
    x = text_inputs()
    pooled = to_numpy(encoder(x))["pooled_output"]
    x2 = {k: v.copy() for k, v in x.items()}
    x2["token_ids"][1, 3:] = 7  # change only padded tokens of row 1
    np.testing.assert_allclose(
        to_numpy(encoder(x2))["pooled_output"][1], pooled[1], atol=1e-5
    )
    # An all-padding row (a missing text) pools to zeros, not NaN.
    x3 = dict(x, padding_mask=np.zeros((2, 6)))
    np.testing.assert_array_equal(to_numpy(encoder(x3))["pooled_output"], 0)


def test_image_encoder_any_size_and_channels():
    encoder = mmzoo.models.ImageEncoder(
        filters=(4, 8, 8), hidden_dim=8, image_shape=(None, None, 1)
    )
    for size in [(1, 1), (28, 28), (33, 17)]:
        out = encoder(np.zeros((1,) + size + (1,)))
        assert tuple(out["pooled_output"].shape) == (1, 8)
    with pytest.raises(ValueError, match="channel"):
        mmzoo.models.ImageEncoder(image_shape=(28, 28, None))


def test_image_encoder_pooling():
    fixed = mmzoo.models.ImageEncoder((12, 12, 1), (4,), hidden_dim=8)
    assert fixed.pooling == "flatten"
    # Flatten keeps position: a shifted image pools differently.
    image = np.zeros((1, 12, 12, 1), "float32")
    image[0, :4, :4] = 1.0
    shifted = np.roll(image, 6, axis=2)
    a = to_numpy(fixed(image))["pooled_output"]
    b = to_numpy(fixed(shifted))["pooled_output"]
    assert not np.allclose(a, b)
    assert mmzoo.models.ImageEncoder((None, None, 1), (4,), 8).pooling == (
        "average"
    )
    with pytest.raises(ValueError, match="fixed height and width"):
        mmzoo.models.ImageEncoder((None, None, 1), pooling="flatten")
    with pytest.raises(ValueError, match="pooling"):
        mmzoo.models.ImageEncoder((8, 8, 1), pooling="max")


def test_audio_encoder_variable_length_and_sample_rate():
    encoder = audio_encoder()
    assert encoder.min_sequence_length == 128
    assert encoder.get_config()["sample_rate"] == 8000
    short = encoder(np.zeros((1, 128)))["sequence_output"]
    long = encoder(np.zeros((1, 8000)))["sequence_output"]
    assert short.shape[1] < long.shape[1]


def test_default_seed_cnn_filters():
    encoder = mmzoo.models.ImageEncoder(image_shape=(32, 32, 3))
    convs = [
        layer
        for layer in encoder.layers
        if isinstance(layer, keras.layers.Conv2D)
    ]
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)


@pytest.mark.parametrize("kind", sorted(ENCODERS))
def test_fit_reduces_loss(kind):
    make, data = ENCODERS[kind]
    encoder = make()
    x = data()
    x = keras.tree.map_structure(lambda v: np.concatenate([v] * 8), x)
    target = np.tile([[1.0], [-1.0]], (8, 1))
    head = keras.layers.Dense(1)(encoder.output["pooled_output"])
    model = keras.Model(encoder.input, head)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=20, batch_size=16, verbose=0)
    assert model.evaluate(x, target, verbose=0) < 0.7 * before
