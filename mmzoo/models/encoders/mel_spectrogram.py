import importlib

import keras
from keras.src.utils.backend_utils import DynamicBackend

from mmzoo.utils.tracing import torch_compiling


class _ImportedBackend(DynamicBackend):
    """Keras' `DynamicBackend` with its modules imported once, ahead.

    Keras' own imports a module at every op it looks up, which
    `torch.compile` cannot trace.
    """

    def __init__(self, backend=None):
        super().__init__(backend)
        self._modules = {}
        self._module(self._backend)

    def _module(self, backend):
        if backend not in self._modules:
            self._modules[backend] = importlib.import_module(
                f"keras.src.backend.{backend}"
            )
        return self._modules[backend]

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._module(self._backend), name)


@keras.saving.register_keras_serializable(package="mmzoo")
class MelSpectrogram(keras.layers.MelSpectrogram):
    """`keras.layers.MelSpectrogram` that `torch.compile` traces whole.

    The same layer and results; only two lookups differ while
    `torch.compile` traces (`jit_compile=True` on PyTorch). Keras'
    preprocessing layers ask TensorFlow at every call whether they run in a
    tf.data graph, and import a backend module at every op: `torch.compile`
    cannot trace either, so it broke its graph there and compiled the
    encoders' layers one by one, until its recompile limit. Here the first
    check is skipped while `torch.compile` traces (a tf.data graph is never
    traced by it) and the modules are imported once.

    Example:
    ```python
    layer = MelSpectrogram(sampling_rate=8000, num_mel_bins=40)
    layer(np.zeros((2, 8000), "float32")).shape  # (2, 40, 16)
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backend = _ImportedBackend()

    def __call__(self, inputs, **kwargs):
        if torch_compiling():
            return keras.layers.Layer.__call__(self, inputs, **kwargs)
        return super().__call__(inputs, **kwargs)
