import keras
import numpy as np
import pytest

import mmzoo


def _masked_rows_and_columns(out):
    zero = out == 0
    rows = np.all(zero, axis=2)  # (batch, time): whole time steps masked
    columns = np.all(zero, axis=1)  # (batch, freq): whole bins masked
    return rows, columns


def test_masks_bands_in_training_only():
    layer = mmzoo.layers.SpecAugment(
        time_masks=2,
        time_mask_width=10,
        freq_masks=2,
        freq_mask_width=6,
        seed=1,
    )
    x = np.random.default_rng(0).uniform(1, 2, (16, 50, 20)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    # Every value is either untouched or 0, and every 0 lies in a masked
    # time step or a masked bin (the bands are whole rows and columns).
    changed = out != x
    assert np.all(out[changed] == 0)
    rows, columns = _masked_rows_and_columns(out)
    np.testing.assert_array_equal(changed, rows[:, :, None] | columns[:, None])
    assert rows.sum(1).max() <= 2 * 10 and columns.sum(1).max() <= 2 * 6
    # Over 16 examples something is masked, and not everything.
    assert 0 < changed.mean() < 0.6
    # Fresh draws on every call.
    again = keras.ops.convert_to_numpy(layer(x, training=True))
    assert not np.array_equal(again, out)


def test_bands_are_contiguous():
    layer = mmzoo.layers.SpecAugment(
        time_masks=1, time_mask_width=8, freq_masks=0, seed=3
    )
    x = np.ones((32, 40, 10), "float32")
    rows, columns = _masked_rows_and_columns(
        keras.ops.convert_to_numpy(layer(x, training=True))
    )
    assert not columns.any()
    for row in rows:
        where = np.flatnonzero(row)
        if where.size:
            assert where[-1] - where[0] + 1 == where.size <= 8


def test_four_dimensional_input_and_no_masks():
    layer = mmzoo.layers.SpecAugment(
        time_masks=1, time_mask_width=5, freq_masks=1, freq_mask_width=5
    )
    x = np.ones((4, 30, 12, 3), "float32")
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert out.shape == x.shape
    # A masked cell is masked in every channel.
    assert np.all((out == 0).all(-1) == (out == 0).any(-1))
    off = mmzoo.layers.SpecAugment(time_masks=0, freq_masks=0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(off(x, training=True)), x
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"time_masks": -1}, {"freq_mask_width": 2.5}, {"time_masks": True}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="non-negative int"):
        mmzoo.layers.SpecAugment(**kwargs)


def test_config_round_trip():
    layer = mmzoo.layers.SpecAugment(time_masks=3, freq_mask_width=4, seed=7)
    clone = mmzoo.layers.SpecAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(layer)
    )
    assert isinstance(restored, mmzoo.layers.SpecAugment)


def _audio_encoder(**kwargs):
    return mmzoo.models.AudioEncoder(
        sample_rate=8000,
        num_mel_bins=16,
        fft_length=128,
        sequence_stride=64,
        filters=(4,),
        hidden_dim=8,
        **kwargs,
    )


def test_audio_encoder_spec_augment_changes_training_only(tmp_path):
    spec = {"time_masks": 2, "time_mask_width": 5, "freq_masks": 2}
    encoder = _audio_encoder(spec_augment=spec)
    plain = _audio_encoder()
    plain.set_weights(encoder.get_weights())  # no weights of its own
    audio = np.random.default_rng(0).normal(size=(4, 4000)).astype("float32")
    inference = keras.ops.convert_to_numpy(encoder(audio)["pooled_output"])
    np.testing.assert_allclose(
        inference,
        keras.ops.convert_to_numpy(plain(audio)["pooled_output"]),
        atol=1e-6,
    )
    training = keras.ops.convert_to_numpy(
        encoder(audio, training=True)["pooled_output"]
    )
    assert np.abs(training - inference).max() > 1e-4
    assert encoder.get_config()["spec_augment"]["time_masks"] == 2
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    restored = keras.saving.load_model(path)
    assert restored.spec_augment_layer is not None
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(audio)["pooled_output"]),
        inference,
        atol=1e-6,
    )


def test_mixed_bfloat16_jit_compile_fit():
    keras.config.set_dtype_policy("mixed_bfloat16")
    inputs = keras.Input((20, 8))
    x = mmzoo.layers.SpecAugment(time_masks=1, time_mask_width=4)(inputs)
    outputs = keras.layers.Dense(3, dtype="float32")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # torch.compile costs about 45 s per model on 2 CPU cores: on torch
        # it runs in test_fusion_layers' mixed-precision test only.
        jit_compile=keras.backend.backend() != "torch",
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 20, 8)).astype("float32")
    history = model.fit(x, rng.integers(0, 3, 8), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # The encoder with SpecAugment fits under the same policy (compiled
    # where compiling a whole encoder is quick: not torch on 2 CPU cores).
    encoder = _audio_encoder(
        spec_augment={"time_masks": 1, "time_mask_width": 4}
    )
    inputs = keras.Input((4000,))
    outputs = keras.layers.Dense(3, dtype="float32")(
        encoder(inputs)["pooled_output"]
    )
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=keras.backend.backend() != "torch",
    )
    x = rng.normal(size=(8, 4000)).astype("float32")
    history = model.fit(x, rng.integers(0, 3, 8), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
