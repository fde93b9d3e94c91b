"""The shipped `fashion_mnist_cnn` preset, on the Fashion-MNIST test set."""

import os

import numpy as np
import pytest

import mmzoo
from mmzoo.datasets import fashion_mnist
from mmzoo.datasets import load_fashion_mnist
from mmzoo.models import MultimodalClassifier

NAME = "fashion_mnist_cnn"


@pytest.mark.skipif(
    not os.path.isdir(fashion_mnist.DEBIAN_DIR),
    reason="needs Debian's dataset-fashion-mnist",
)
def test_reaches_recorded_test_accuracy():
    metadata = mmzoo.presets.preset_metadata(NAME)
    recorded = metadata["test_accuracy"]["fashion_mnist_test"]
    classifier = mmzoo.load(NAME)
    assert type(classifier) is MultimodalClassifier
    images, labels = load_fashion_mnist("test")
    logits = classifier.predict({"image": images}, batch_size=500, verbose=0)
    accuracy = np.mean(logits.argmax(-1) == labels)
    assert abs(accuracy - recorded) <= 0.005
    assert recorded >= 0.90
    # The seed's CNN: filters 32/64/128.
    assert tuple(classifier.backbone.encoders["image"].filters) == (32, 64, 128)
