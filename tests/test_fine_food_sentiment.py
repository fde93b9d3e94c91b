"""The shipped `fine_food_sentiment_minilm` preset, on every backend."""

import os

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.presets import presets_root
from mmzoo.utils.preset_weights import DELTA_WEIGHTS_FILE

from helpers import FULL_EVALUATION_BACKEND

NAME = "fine_food_sentiment_minilm"

pytestmark = [
    pytest.mark.large,
    pytest.mark.skipif(
        not os.path.isdir(presets_root() / NAME),
        reason=f"{NAME} is not shipped in this checkout",
    ),
]


def test_preset_stores_only_what_the_package_lacks():
    folder = presets_root() / NAME
    files = sorted(
        os.path.relpath(os.path.join(root, f), folder)
        for root, _, names in os.walk(folder)
        for f in names
    )
    assert "model.weights.h5" not in files and DELTA_WEIGHTS_FILE in files
    size = sum(os.path.getsize(folder / f) for f in files)
    assert size < 5_000_000, (size, files)


# MiniLM on the 1,000 test reviews: on TensorFlow only (see helpers.py); the
# test below checks the recorded predictions on every backend.
@pytest.mark.one_backend(FULL_EVALUATION_BACKEND)
def test_preset_reaches_recorded_accuracy_and_beats_baseline():
    from mmzoo.datasets import load_fine_foods

    metadata = mmzoo.presets.preset_metadata(NAME)
    classifier = mmzoo.models.MultimodalClassifier.from_preset(NAME)
    _, (texts, labels) = load_fine_foods()
    logits = classifier.predict({"text": texts}, batch_size=64, verbose=0)
    accuracy = float(np.mean(logits.argmax(-1) == labels))
    print(
        f"{keras.backend.backend()}: {accuracy:.4f} (recorded "
        f"{metadata['test_accuracy']}, TF-IDF baseline "
        f"{metadata['baseline']['test_accuracy']})"
    )
    assert accuracy == pytest.approx(metadata["test_accuracy"], abs=0.005)
    assert accuracy >= metadata["baseline"]["test_accuracy"] + 0.03


def test_preset_loads_by_name_and_predicts_as_recorded():
    """On every backend: the recorded labels of the first test reviews."""
    from mmzoo.datasets import load_fine_foods
    from mmzoo.recipes.fine_food_sentiment import predicted_labels

    metadata = mmzoo.presets.preset_metadata(NAME)
    recorded = metadata["test_predictions"]["labels"]
    classifier = mmzoo.load(NAME)
    assert type(classifier) is mmzoo.models.MultimodalClassifier
    _, (texts, labels) = load_fine_foods()
    # 64 of the recorded reviews, one batch: MiniLM on a CPU is slow.
    got = predicted_labels(classifier, texts[:64], 64)
    differ = [i for i, (a, b) in enumerate(zip(got, recorded)) if a != b]
    # A review within float rounding of the boundary may flip.
    assert len(differ) <= 1, differ
    accuracy = np.mean(np.array(list(got), int) == labels[: len(got)])
    assert accuracy > 0.75  # 0.8125 recorded on these 64
