"""mmzoo.plots: the numbers behind the pictures, and the pictures drawn."""

import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_classifier

import mmzoo
from mmzoo import plots

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@pytest.fixture(scope="module")
def classifier():
    return tiny_classifier()  # attention fusion, text + image + audio


# The numbers are NumPy over the fusion's own output (the fusion is tested
# on every backend): one backend, torch (fastest with tiny models).
@pytest.mark.one_backend("torch")
def test_modality_weights_are_the_fusions_softmax(classifier):
    x, _ = raw_batch(6)
    weights = plots.modality_weights(classifier, x, batch_size=4)
    assert weights.shape == (6, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    # By hand, for the same features: the fusion's scores, head mean.
    features = classifier.preprocessor(x)
    outputs = classifier.backbone.predict(features, verbose=0)
    _, scores = classifier.backbone.fusion(
        outputs["modality_outputs"], return_attention_scores=True
    )
    expected = keras.ops.convert_to_numpy(scores).mean(axis=1)
    np.testing.assert_allclose(weights, expected, atol=1e-5)
    # A modality left out gets exactly 0; the rest share all the weight.
    without_audio = plots.modality_weights(
        classifier, {k: x[k] for k in ("text", "image")}
    )
    assert np.all(without_audio[:, 2] == 0.0)
    np.testing.assert_allclose(without_audio.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.one_backend
def test_pictures_are_drawn(classifier, tmp_path):
    x, y = raw_batch(8)
    weights = plots.modality_weights(classifier, x)
    figure = plots.plot_modality_weights(
        weights, y, classifier.backbone.modalities
    )
    assert len(figure.axes) == 2  # per example, per class
    bars = figure.axes[1].patches
    assert len(bars) == 3 * len(np.unique(y))
    figure.savefig(tmp_path / "weights.png")
    accuracies = plots.subset_accuracy(
        classifier, {k: x[k] for k in ("text", "image")}, y
    )
    assert list(accuracies) == [("text", "image"), ("text",), ("image",)]
    figure = plots.plot_subset_accuracy(accuracies, chance=0.25)
    figure.savefig(tmp_path / "subsets.png")
    assert (tmp_path / "subsets.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="must be \\(examples, modalities\\)"):
        plots.plot_modality_weights(weights[0])


@pytest.mark.one_backend
def test_other_fusions_are_refused(classifier):
    other = tiny_classifier(fusion=mmzoo.layers.ProjectionFusion(8))
    x, _ = raw_batch(2)
    with pytest.raises(ValueError, match="fuses with ProjectionFusion"):
        plots.modality_weights(other, x)
