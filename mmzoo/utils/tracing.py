import keras
import numpy as np


def torch_compiling():
    """Whether `torch.compile` is tracing the current call (PyTorch
    backend, `jit_compile=True`): tensors' values are unknown, and Python
    it cannot trace breaks its graph.

    Example:
    ```python
    if not torch_compiling():
        check_values(keras.ops.convert_to_numpy(mask))
    ```
    """
    if keras.config.backend() != "torch":
        return False
    import torch

    return torch.compiler.is_compiling()


def concrete_numpy(x):
    """`x` as numpy if its values are known now, else `None`: a symbolic
    `KerasTensor`, a tensor traced by `jax.jit`, a `tf.function` or
    `torch.compile`."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor) or torch_compiling():
        # Values unknown; reading them would break torch.compile's graph.
        return None
    try:
        return np.asarray(keras.ops.convert_to_numpy(x))
    except Exception:  # a traced or graph tensor: values unknown
        return None
