import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmzoo")
class PerClipDecibels(keras.layers.Layer):
    """Power to decibels, floored `top_db` below each clip's own loudest bin.

    `y = max(10·log10(max(S, min_power)), max_clip(10·log10(max(S,
    min_power))) - top_db)`, where the maximum runs over every axis but the
    first (the clip), so a clip's output never depends on the other clips in
    its batch. `keras.layers.MelSpectrogram(power_to_db=True)` takes that
    maximum over the whole batch instead: a quiet clip beside a loud one
    gets a floor set by the loud one. For a batch of one clip the two agree
    exactly (same operations, same order).

    Args:
        top_db: float. The dynamic range kept below each clip's maximum, in
            dB.
        min_power: float. Powers below it are clipped to it before the
            logarithm (`-100 dB` for the default `1e-10`).
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: a `(batch, ...)` tensor of non-negative powers.

    Returns:
        A tensor of the same shape, in dB.

    Example:
    ```python
    layer = PerClipDecibels(top_db=80.0)
    layer(np.array([[1.0, 1e-12], [1e-4, 1e-12]]))  # [[0, -80], [-40, -100]]
    ```
    """

    def __init__(self, top_db=80.0, min_power=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.top_db = top_db
        self.min_power = min_power

    def call(self, inputs):
        log_spec = 10.0 * ops.log10(ops.maximum(inputs, self.min_power))
        if self.top_db is None:
            return log_spec
        axes = tuple(range(1, len(inputs.shape)))
        peak = ops.amax(log_spec, axis=axes, keepdims=True)
        return ops.maximum(log_spec, peak - self.top_db)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"top_db": self.top_db, "min_power": self.min_power})
        return config
