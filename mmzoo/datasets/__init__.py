"""Real data sets for mmzoo's recipes: MNIST digits and spoken digits."""

from mmzoo.datasets.mnist import load_mnist
from mmzoo.datasets.spoken_digits import load_spoken_digits

__all__ = ["load_mnist", "load_spoken_digits"]
