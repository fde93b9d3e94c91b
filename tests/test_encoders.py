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
    if kind == "text":
        # A plain functional model over `encoder.input` needs every key of
        # its input dict, the optional `segment_ids` too (Keras' rule).
        x["segment_ids"] = np.zeros_like(x["token_ids"])
    target = np.tile([[1.0], [-1.0]], (8, 1))
    head = keras.layers.Dense(1)(encoder.output["pooled_output"])
    model = keras.Model(encoder.input, head)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    before = model.evaluate(x, target, verbose=0)
    model.fit(x, target, epochs=20, batch_size=16, verbose=0)
    assert model.evaluate(x, target, verbose=0) < 0.7 * before


def quiet_and_loud_clips():
    """A quiet clip with a silent half, and a loud one (8 kHz, 1600 samples).

    Under a floor taken over the whole batch, the loud clip would lift the
    quiet clip's floor above its own loudest bin.
    """
    rng = np.random.default_rng(1)
    quiet = 1e-3 * rng.standard_normal(1600)
    quiet[800:] = 0.0
    loud = 10.0 * rng.standard_normal(1600)
    return np.stack([quiet, loud]).astype("float32")


def test_audio_encoder_row_is_the_same_alone_and_in_a_batch():
    encoder = audio_encoder()
    clips = quiet_and_loud_clips()
    together = to_numpy(encoder(clips))
    for i in range(2):
        alone = to_numpy(encoder(clips[i : i + 1]))
        for key in ("sequence_output", "pooled_output"):
            np.testing.assert_allclose(
                alone[key][0], together[key][i], atol=1e-5, rtol=1e-5
            )
    # The log-mel floor is per clip: the quiet clip keeps its own dynamic
    # range (its silent half far below its loudest bin), while
    # MelSpectrogram's dB conversion floors it at the loud clip's max - 80.
    decibels = to_numpy(encoder.decibels(encoder.melspectrogram(clips)))
    quiet_db = decibels[0]
    assert quiet_db.min() >= quiet_db.max() - 80.0 - 1e-3
    assert quiet_db.min() < quiet_db.max() - 40.0
    keras_db = to_numpy(
        keras.layers.MelSpectrogram(
            fft_length=128,
            sequence_stride=64,
            sampling_rate=8000,
            num_mel_bins=16,
        )(clips)
    )
    assert keras_db[0].min() > quiet_db.min() + 40.0  # the batch's floor


def test_per_clip_decibels_equal_melspectrogram_for_one_clip():
    """For a batch of one clip, the fix is exactly Keras' dB conversion."""
    kwargs = dict(
        fft_length=128, sequence_stride=64, sampling_rate=8000, num_mel_bins=16
    )
    encoder = audio_encoder()
    for clip in quiet_and_loud_clips():
        clip = clip[None]
        expected = to_numpy(keras.layers.MelSpectrogram(**kwargs)(clip))
        ours = to_numpy(encoder.decibels(encoder.melspectrogram(clip)))
        np.testing.assert_array_equal(ours, expected)


def test_audio_encoder_top_db_config():
    encoder = mmzoo.models.AudioEncoder(
        sample_rate=8000, num_mel_bins=16, fft_length=128, filters=(4,),
        top_db=40.0,
    )
    assert encoder.get_config()["top_db"] == 40.0
    assert encoder.decibels.top_db == 40.0
    config = encoder.get_config()
    del config["top_db"]  # configs saved before `top_db` existed
    assert mmzoo.models.AudioEncoder.from_config(config).top_db == 80.0


channels_first_backends = pytest.mark.skipif(
    keras.config.backend() == "tensorflow",
    reason="TensorFlow has no channels_first Conv2D on CPU",
)


@pytest.fixture
def restore_data_format():
    data_format = keras.config.image_data_format()
    yield
    keras.config.set_image_data_format(data_format)


@channels_first_backends
@pytest.mark.parametrize("pooling", ["flatten", "average"])
def test_image_encoder_channels_first_matches_channels_last(
    pooling, restore_data_format
):
    last = mmzoo.models.ImageEncoder(
        (12, 10, 3), filters=(4, 8), hidden_dim=8, pooling=pooling
    )
    assert last.data_format == "channels_last"
    keras.config.set_image_data_format("channels_first")
    first = mmzoo.models.ImageEncoder(
        (3, 12, 10), filters=(4, 8), hidden_dim=8, pooling=pooling
    )
    assert first.data_format == "channels_first"
    first.set_weights(last.get_weights())
    images = np.random.default_rng(0).random((2, 12, 10, 3), "float32")
    expected = to_numpy(last(images))
    outputs = to_numpy(first(images.transpose(0, 3, 1, 2)))
    for key in expected:
        np.testing.assert_allclose(
            outputs[key], expected[key], atol=1e-5, rtol=1e-5
        )


@channels_first_backends
def test_encoders_keep_their_layout_under_a_global_channels_first(
    restore_data_format,
):
    image = mmzoo.models.ImageEncoder((12, 12, 1), filters=(4,), hidden_dim=8)
    audio = audio_encoder()
    images = np.random.default_rng(0).random((2, 12, 12, 1), "float32")
    clips = quiet_and_loud_clips()
    expected = (to_numpy(image(images)), to_numpy(audio(clips)))
    image_config = image.get_config()
    legacy_config = dict(image_config)
    del legacy_config["data_format"]  # as the shipped presets' configs
    keras.config.set_image_data_format("channels_first")
    for config in (image_config, legacy_config):
        revived = mmzoo.models.ImageEncoder.from_config(config)
        assert revived.data_format == "channels_last"
        revived.set_weights(image.get_weights())
        np.testing.assert_allclose(
            to_numpy(revived(images))["pooled_output"],
            expected[0]["pooled_output"],
            atol=1e-5,
        )
    # The audio encoder's (time, mel) plane is internal: always channels last.
    revived = mmzoo.models.AudioEncoder.from_config(audio.get_config())
    revived.set_weights(audio.get_weights())
    np.testing.assert_allclose(
        to_numpy(revived(clips))["pooled_output"],
        expected[1]["pooled_output"],
        atol=1e-5,
    )


def test_image_encoder_bad_data_format():
    with pytest.raises(ValueError, match="data_format"):
        mmzoo.models.ImageEncoder((8, 8, 1), data_format="nhwc")


@pytest.mark.parametrize("pooling", ["flatten", "average"])
def test_image_encoder_every_layer_follows_the_dtype_policy(pooling):
    encoder = mmzoo.models.ImageEncoder(
        (12, 12, 1), (4,), 8, pooling=pooling, dtype="mixed_bfloat16"
    )
    for layer in encoder._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        assert layer.dtype_policy.name == "mixed_bfloat16", layer.name
    outputs = encoder(np.zeros((2, 12, 12, 1), "float32"))
    for value in outputs.values():
        assert keras.backend.standardize_dtype(value.dtype) == "bfloat16"


def test_text_encoder_takes_and_ignores_segment_ids():
    encoder = text_encoder()
    x = text_inputs()
    assert sorted(encoder.input) == ["padding_mask", "segment_ids", "token_ids"]
    expected = to_numpy(encoder(x))
    for segment_ids in (np.zeros((2, 6), "int32"), np.ones((2, 6), "int32")):
        outputs = to_numpy(encoder(dict(x, segment_ids=segment_ids)))
        for key in expected:
            np.testing.assert_array_equal(outputs[key], expected[key])
    predicted = encoder.predict(
        dict(x, segment_ids=np.zeros((2, 6))), verbose=0
    )
    np.testing.assert_allclose(
        predicted["pooled_output"], expected["pooled_output"], atol=1e-6
    )


def test_backbone_takes_the_preprocessor_output_as_is():
    from helpers import raw_batch
    from helpers import tiny_backbone
    from helpers import tiny_preprocessor

    backbone = tiny_backbone()
    x = tiny_preprocessor()(raw_batch(4)[0])
    # keras-hub's rule: the preprocessor's output is the model's input.
    keras.tree.assert_same_structure(
        keras.tree.map_structure(lambda _: 0, x),
        keras.tree.map_structure(lambda _: 0, backbone.input),
    )
    without = {k: v for k, v in x.items() if k != "text"}
    without["text"] = {
        k: v for k, v in x["text"].items() if k != "segment_ids"
    }
    np.testing.assert_allclose(
        to_numpy(backbone(x))["fused_output"],
        to_numpy(backbone(without))["fused_output"],
        atol=1e-6,
    )


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_blocks_pool_equals_keras_max_pooling(data_format):
    """mmzoo's pool (strided slices, or `-inf` edges, on PyTorch) gives what
    Keras' `MaxPooling2D(padding="same")` gives, odd sizes included, on
    negative values too."""
    from mmzoo.models.encoders.conv_blocks import MaxPooling2D

    rng = np.random.default_rng(0)
    shapes = ((2, 7, 5, 3), (2, 8, 8, 3), (1, 1, 1, 2), (2, 3, 6, 6))
    for shape in shapes:
        for pool_size in (2, 3, (2, 3)):
            x = rng.standard_normal(shape).astype("float32") - 3.0
            layer = MaxPooling2D(
                pool_size, padding="same", data_format=data_format
            )
            keras_layer = keras.layers.MaxPooling2D(
                pool_size, padding="same", data_format=data_format
            )
            expected = to_numpy(keras_layer(x))
            for training in (False, True):  # two ways on PyTorch
                np.testing.assert_array_equal(
                    to_numpy(layer(x, training=training)), expected
                )
    assert isinstance(
        keras.layers.deserialize(keras.layers.serialize(layer)), MaxPooling2D
    )


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_pooled_conv_equals_keras_conv_then_pool(data_format, monkeypatch):
    """mmzoo's `Conv2D(pool_size=2)` (bias and ReLU after the pool) gives
    Keras' `Conv2D` then `MaxPooling2D(padding="same")`, with the same
    weights, and loads them from Keras' layer; in training too, and with
    the batch convolved in uneven chunks (PyTorch inference)."""
    from mmzoo.models.encoders import conv_blocks
    from mmzoo.models.encoders.conv_blocks import Conv2D

    # PyTorch inference convolves in chunks of at most 200 bytes of
    # output (4 float32 channels), as many examples as fit but at least 1.
    monkeypatch.setattr(conv_blocks, "_CHUNK_BYTES", 200)
    chunks = {
        (2, 7, 5, 3): [1, 1],  # 560 bytes each
        (2, 8, 6, 3): [1, 1],
        (1, 1, 1, 3): [1],
        (5, 3, 2, 3): [2, 2, 1],  # 96 each: 480 in 3 chunks
    }

    if (
        data_format == "channels_first"
        and keras.config.backend() == "tensorflow"
    ):
        pytest.skip("TensorFlow has no channels_first Conv2D on CPU")
    rng = np.random.default_rng(0)
    for shape in ((2, 7, 5, 3), (2, 8, 6, 3), (1, 1, 1, 3), (5, 3, 2, 3)):
        x = rng.standard_normal(shape).astype("float32")
        if data_format == "channels_first":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        kwargs = dict(padding="same", data_format=data_format)
        conv = keras.layers.Conv2D(4, 3, activation="relu", **kwargs)
        conv.build(x.shape)
        kernel, _ = conv.get_weights()
        # A bias of both signs: ReLU zeroes some maxima.
        conv.set_weights([kernel, rng.standard_normal(4).astype("float32")])
        pool = keras.layers.MaxPooling2D(2, **kwargs)
        expected = to_numpy(pool(conv(x)))
        pooled = Conv2D(4, 3, pool_size=2, activation="relu", **kwargs)
        pooled.build(x.shape)
        pooled.set_weights(conv.get_weights())
        convolutions = []
        convolution_op = pooled.convolution_op

        def counted(inputs, kernel):
            convolutions.append(inputs.shape[0])
            return convolution_op(inputs, kernel)

        pooled.convolution_op = counted
        for training in (False, True):
            outputs = pooled(x, training=training)
            np.testing.assert_allclose(to_numpy(outputs), expected, atol=1e-6)
        # Inference, then training (one convolution).
        expected_sizes = [shape[0], shape[0]]
        if keras.config.backend() == "torch":
            expected_sizes = chunks[shape] + [shape[0]]
        assert convolutions == expected_sizes
        assert tuple(pooled.compute_output_shape(x.shape)) == expected.shape
        # Without `pool_size` it is Keras' layer.
        plain = Conv2D(4, 3, activation="relu", **kwargs)
        plain.build(x.shape)
        plain.set_weights(conv.get_weights())
        np.testing.assert_array_equal(
            to_numpy(plain(x)), to_numpy(conv(x))
        )
    revived = keras.layers.deserialize(keras.layers.serialize(pooled))
    assert isinstance(revived, Conv2D) and revived.pool_size == 2
    with pytest.raises(ValueError, match="pool comes before"):
        Conv2D(4, 3, pool_size=2, activation="gelu")


def test_conv_blocks_train_as_keras_layers():
    """A training step through mmzoo's conv and pool (their own gradients
    on PyTorch and JAX) moves every weight as Keras' Conv2D then
    MaxPooling2D does, on odd sizes and at batch sizes PyTorch's inference
    would chunk."""
    from mmzoo.models.encoders.conv_blocks import Conv2D
    from mmzoo.models.encoders.conv_blocks import MaxPooling2D

    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 7, 5, 2)).astype("float32")
    y = rng.standard_normal((6, 3)).astype("float32")

    def model(*blocks):
        inputs = keras.Input((7, 5, 2))
        outputs = inputs
        for block in blocks:
            outputs = block(outputs)
        outputs = keras.layers.Flatten()(outputs)
        outputs = keras.layers.Dense(3)(outputs)
        return keras.Model(inputs, outputs)

    kwargs = dict(padding="same", activation="relu")
    reference = model(
        keras.layers.Conv2D(4, 3, **kwargs),
        keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(3, 3, **kwargs),
        keras.layers.MaxPooling2D(2, padding="same"),
    )
    fused = model(
        Conv2D(4, 3, pool_size=2, **kwargs),
        Conv2D(3, 3, pool_size=2, **kwargs),
    )
    separate = model(
        keras.layers.Conv2D(4, 3, **kwargs),
        MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(3, 3, **kwargs),
        MaxPooling2D(2, padding="same"),
    )
    weights = reference.get_weights()
    for m in (reference, fused, separate):
        m.set_weights(weights)
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        m.train_on_batch(x, y)
    for m in (fused, separate):
        for got, expected in zip(m.get_weights(), reference.get_weights()):
            np.testing.assert_allclose(got, expected, atol=1e-5)
    # The step moved the convolutions' weights.
    assert not np.allclose(reference.get_weights()[0], weights[0])


@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX's gradients")
def test_jax_pool_gradient_shares_ties():
    """In training on JAX, inputs tied for a window's maximum share its
    gradient equally (a constant map: quarters, halves on the odd edges,
    the whole in the odd corner); the gradient's sum is the upstream's."""
    import jax

    from mmzoo.models.encoders.conv_blocks import MaxPooling2D

    pool = MaxPooling2D(2, padding="same")
    upstream = np.arange(1, 13, dtype="float32").reshape(1, 3, 4, 1)

    def loss(x):
        return (pool(x, training=True) * upstream).sum()

    grad = np.asarray(jax.grad(loss)(np.zeros((1, 5, 7, 1), "float32")))
    share = np.ones((5, 7))
    share[:4, :6] = 0.25
    share[4, :6] = share[:4, 6] = 0.5
    expected = np.repeat(np.repeat(upstream[0, :, :, 0], 2, 0), 2, 1)
    np.testing.assert_allclose(grad[0, :, :, 0], expected[:5, :7] * share)
    np.testing.assert_allclose(grad.sum(), upstream.sum())


@pytest.mark.skipif(keras.config.backend() != "jax", reason="JAX's gradients")
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_narrow_convolution_gradients_equal_the_convolutions(padding):
    """The window products' gradients (JAX, inputs of a few channels)
    equal XLA's convolution gradients, for both paddings and a non-square
    kernel."""
    import jax

    from mmzoo.models.encoders.conv_blocks import _narrow_convolution

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 6, 3)).astype("float32")
    kernel = rng.standard_normal((5, 3, 3, 4)).astype("float32")
    weights = rng.standard_normal((2, 9, 6, 4)).astype("float32")
    if padding == "valid":
        weights = weights[:, :5, :4]

    def loss(convolve):
        return lambda x, k: (convolve(x, k) * weights).sum()

    got = jax.grad(
        loss(lambda x, k: _narrow_convolution(x, k, padding)), (0, 1)
    )(x, kernel)
    expected = jax.grad(
        loss(
            lambda x, k: keras.ops.conv(
                x, k, padding=padding, data_format="channels_last"
            )
        ),
        (0, 1),
    )(x, kernel)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(
    keras.config.backend() != "torch", reason="PyTorch's memory layouts"
)
def test_conv_blocks_copy_no_feature_map_on_pytorch():
    """On PyTorch mmzoo's conv and pool hand oneDNN channels-last tensors
    as channels-first views: nothing larger than the kernel is copied
    (Keras' layers copy every input twice), in training too."""
    import torch

    from mmzoo.models.encoders.conv_blocks import Conv2D
    from mmzoo.models.encoders.conv_blocks import MaxPooling2D

    x = np.random.default_rng(0).random((2, 9, 7, 3)).astype("float32")
    x = keras.ops.convert_to_tensor(x)
    conv = Conv2D(4, 3, pool_size=2, padding="same", activation="relu")
    conv.build(x.shape)
    pool = MaxPooling2D(2, padding="same")
    for layer, training in ((conv, False), (conv, True), (pool, True)):
        with torch.profiler.profile(record_shapes=True) as profile:
            outputs = layer(x, training=training)
        copied = [
            int(np.prod(event.input_shapes[0]))
            for event in profile.events()
            if event.name == "aten::copy_"
        ]
        assert all(size <= 4 * 3 * 3 * 3 for size in copied), copied
        assert outputs.is_contiguous()
    # Keras' own layer does copy the input (what the test would catch).
    with torch.profiler.profile(record_shapes=True) as profile:
        keras.layers.MaxPooling2D(2, padding="same")(x)
    assert [2, 3, 9, 7] in [
        list(event.input_shapes[0])
        for event in profile.events()
        if event.name == "aten::copy_"
    ]


def test_mel_spectrogram_equals_keras_layer():
    from mmzoo.models.encoders.mel_spectrogram import MelSpectrogram

    audio = np.random.default_rng(0).standard_normal((2, 3000))
    audio = audio.astype("float32")
    kwargs = dict(
        fft_length=256,
        sequence_stride=80,
        sampling_rate=8000,
        num_mel_bins=40,
        power_to_db=False,
    )
    layer = MelSpectrogram(**kwargs)
    expected = to_numpy(keras.layers.MelSpectrogram(**kwargs)(audio))
    np.testing.assert_array_equal(to_numpy(layer(audio)), expected)
    # In a tf.data pipeline it still runs on TensorFlow, as Keras' does
    # (another FFT: equal within 1e-4).
    tf = pytest.importorskip("tensorflow")
    mapped = tf.data.Dataset.from_tensor_slices(audio).batch(2).map(layer)
    np.testing.assert_allclose(
        next(iter(mapped)).numpy(), expected, rtol=1e-4, atol=1e-4
    )
