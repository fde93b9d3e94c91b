import keras


def switch_layer_classes(model, swaps, backend):
    """Gives every layer inside `model` whose exact class is a key of
    `swaps` that key's value (a subclass with the same weights and config)
    as its class, on `backend` only. Returns how many layers switched.

    Example:
    ```python
    switch_layer_classes(model, {keras.layers.Dense: MyDense}, "torch")
    ```
    """
    if keras.config.backend() != backend:
        return 0
    switched = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        swap = swaps.get(type(layer))
        if swap is not None:
            layer.__class__ = swap
            switched += 1
    return switched
