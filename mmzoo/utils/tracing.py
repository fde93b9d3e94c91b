import keras


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
