"""Real data sets for mmzoo's recipes and tests."""

from mmzoo.datasets.fine_foods import FINE_FOODS_CLASSES
from mmzoo.datasets.fine_foods import load_fine_foods
from mmzoo.datasets.mnist import load_mnist
from mmzoo.datasets.real_spoken_digits import load_real_spoken_digits
from mmzoo.datasets.spoken_digits import load_spoken_digits

__all__ = [
    "FINE_FOODS_CLASSES",
    "load_fine_foods",
    "load_mnist",
    "load_real_spoken_digits",
    "load_spoken_digits",
]
