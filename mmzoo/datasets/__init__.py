"""Real data sets for mmzoo's recipes and tests."""

from mmzoo.datasets.av_digits import AV_DIGITS_VERSION
from mmzoo.datasets.av_digits import load_av_digits
from mmzoo.datasets.cifar10 import CIFAR10_CLASSES
from mmzoo.datasets.cifar10 import load_cifar10
from mmzoo.datasets.fashion_mnist import FASHION_MNIST_CLASSES
from mmzoo.datasets.fashion_mnist import load_fashion_mnist
from mmzoo.datasets.fine_foods import FINE_FOODS_CLASSES
from mmzoo.datasets.fine_foods import load_fine_foods
from mmzoo.datasets.mnist import load_mnist
from mmzoo.datasets.real_spoken_digits import load_real_spoken_digits
from mmzoo.datasets.spoken_digits import load_spoken_digits
from mmzoo.datasets.synthesised_digits import load_synthesised_digits
from mmzoo.datasets.voice_prompts import load_voice_prompts

__all__ = [
    "AV_DIGITS_VERSION",
    "load_av_digits",
    "CIFAR10_CLASSES",
    "load_cifar10",
    "FASHION_MNIST_CLASSES",
    "load_fashion_mnist",
    "FINE_FOODS_CLASSES",
    "load_fine_foods",
    "load_mnist",
    "load_real_spoken_digits",
    "load_spoken_digits",
    "load_synthesised_digits",
    "load_voice_prompts",
]
